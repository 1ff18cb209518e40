import type { Logger } from 'pino';
import type { DicomWebClient } from '../../adapters/dicomweb/client.ts';
import type { OrthancClient } from '../../adapters/orthanc/client.ts';
import type { Config, IngestMode } from '../../config/schema.ts';
import type { Store } from '../../state/ports.ts';
import { pollDicomWebQido } from './dicomweb-qido.ts';
import type { FolderWatcher } from './folder.ts';
import { pollOrthancChanges } from './orthanc-changes.ts';
import type { OwnSeries } from './own-writes.ts';

/** The ingest modes that run: `ingest.modes`, else orthanc-changes for an Orthanc PACS and dicomweb-qido for any other. */
export function ingestModes(config: Config): IngestMode[] {
  if (config.ingest.modes) return [...config.ingest.modes];
  return config.pacs?.kind === 'dicomweb' ? ['dicomweb-qido'] : ['orthanc-changes'];
}

/**
 * One pass of the polling modes (orthanc-changes, dicomweb-qido, folder); the webhook is served
 * by the API. Without a PACS (the folder mode alone) `dicomweb` is absent. `own` keeps our
 * own write-back from re-enqueueing a study when ingest.stableAgeS reads every instance.
 * Returns how many studies were enqueued.
 */
export async function pollIngest(
  config: Config,
  servers: { dicomweb?: DicomWebClient | undefined; orthanc?: OrthancClient | undefined; folder?: FolderWatcher | undefined },
  store: Store,
  log: Logger,
  own?: { isOwnSeries: OwnSeries; ownInstances?: { has(orthancInstanceId: string): boolean } },
  /** Which polling modes this replica may run now (the others are another replica's). */
  may: (mode: IngestMode) => boolean = () => true,
): Promise<number> {
  let enqueued = 0;
  const modes = ingestModes(config).filter(may);
  if (modes.includes('orthanc-changes') && servers.orthanc) {
    const stableAgeMs = config.ingest.stableAgeS === undefined ? undefined : Math.round(config.ingest.stableAgeS * 1000);
    enqueued += await pollOrthancChanges(servers.orthanc, store, { batch: config.ingest.changesBatch, stableAgeMs, ...own }, log);
  }
  if (modes.includes('dicomweb-qido') && servers.dicomweb) enqueued += await pollDicomWebQido(servers.dicomweb, store, config.ingest.qido, log);
  if (modes.includes('folder') && servers.folder) enqueued += await servers.folder.pass(store, log);
  return enqueued;
}
