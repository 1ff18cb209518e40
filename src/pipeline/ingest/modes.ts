import type { Logger } from 'pino';
import type { DicomWebClient } from '../../adapters/dicomweb/client.ts';
import type { OrthancClient } from '../../adapters/orthanc/client.ts';
import type { Config, IngestMode } from '../../config/schema.ts';
import type { JobStore } from '../../state/store.ts';
import { pollDicomWebQido } from './dicomweb-qido.ts';
import { pollOrthancChanges } from './orthanc-changes.ts';

/** The ingest modes that run: `ingest.modes`, else orthanc-changes for an Orthanc PACS and dicomweb-qido for any other. */
export function ingestModes(config: Config): IngestMode[] {
  if (config.ingest.modes) return [...config.ingest.modes];
  return config.pacs?.kind === 'dicomweb' ? ['dicomweb-qido'] : ['orthanc-changes'];
}

/**
 * One pass of the polling modes (orthanc-changes, dicomweb-qido); the webhook is served by the
 * API and the folder by its own watcher. Returns how many studies were enqueued.
 */
export async function pollIngest(
  config: Config,
  servers: { dicomweb: DicomWebClient; orthanc?: OrthancClient },
  store: JobStore,
  log: Logger,
): Promise<number> {
  let enqueued = 0;
  const modes = ingestModes(config);
  if (modes.includes('orthanc-changes') && servers.orthanc) enqueued += await pollOrthancChanges(servers.orthanc, store, config.ingest.changesBatch, log);
  if (modes.includes('dicomweb-qido')) enqueued += await pollDicomWebQido(servers.dicomweb, store, config.ingest.qido, log);
  return enqueued;
}
