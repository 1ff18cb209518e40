/** What the benchmarks share: demo studies under new UIDs, an SR watcher on Orthanc's changes feed, process CPU and RSS. */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import { deriveUid } from '../../src/domain/uids.ts';

export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
export const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

/** Demo studies under new UIDs derived from a tag and an index (the same call gives the same study). */
export function studyMaker(demoDir: string): (tag: string, i: number) => { uid: string; part10: Uint8Array } {
  const demoFiles = readdirSync(path.join(demoDir, 'dicom')).filter((f) => f.endsWith('.dcm')).sort().map((f) => readFileSync(path.join(demoDir, 'dicom', f)));
  return (tag, i) => {
    const ds = readPart10(demoFiles[i % demoFiles.length]!);
    const key = `bench ${tag} ${i}`;
    ds['StudyInstanceUID'] = deriveUid('2.25', key, 'tracking:study');
    ds['SeriesInstanceUID'] = deriveUid('2.25', key, 'tracking:series');
    ds['SOPInstanceUID'] = deriveUid('2.25', key, 'tracking:sop');
    return { uid: String(ds['StudyInstanceUID']), part10: writePart10(ds) };
  };
}

/** Watches Orthanc's /changes for new SR instances; resolves arrival times per study. */
export class SrWatcher {
  private since = 0;
  readonly arrived = new Map<string, number>();
  /** 50 ms while latency is measured; longer during the burst, where its own load on Orthanc and this process would count against the pipeline. */
  intervalMs = 50;
  /** When Orthanc first declared each study stable: the floor under any ingest mode's latency. */
  readonly stable = new Map<string, number>();
  private readonly studyUids = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly rest: OrthancClient) {}
  async start(): Promise<void> {
    this.since = (await this.rest.changes(0, 1)).last;
    const tick = async (): Promise<void> => {
      try {
        await this.poll();
      } catch (err) {
        process.stderr.write(`  SR watcher: ${(err as Error).message}; polling again\n`);
      }
      this.timer = setTimeout(() => void tick(), this.intervalMs);
    };
    await tick();
  }
  private async poll(): Promise<void> {
    {
      const page = await this.rest.changes(this.since, 1000);
      const now = performance.now();
      for (const c of page.changes) {
        if (c.changeType === 'StableStudy') {
          const study = await this.rest.http.json<{ MainDicomTags?: { StudyInstanceUID?: string } }>({ path: `studies/${c.orthancId}` }).catch(() => undefined);
          const uid = study?.MainDicomTags?.StudyInstanceUID;
          if (uid && !this.stable.has(uid)) this.stable.set(uid, now);
          continue;
        }
        if (c.changeType !== 'NewInstance') continue;
        // From Orthanc's index, not the file (simplified-tags reads and parses it): the watcher's
        // own load on Orthanc counts against the pipeline.
        const series = await this.rest.instanceSeries(c.orthancId);
        if (series === undefined) continue;
        if (series.modality !== 'SR') continue;
        let uid = this.studyUids.get(series.orthancStudyId);
        if (uid === undefined) {
          uid = await this.rest.studyInstanceUID(series.orthancStudyId);
          if (uid !== undefined) this.studyUids.set(series.orthancStudyId, uid);
        }
        if (uid && !this.arrived.has(uid)) this.arrived.set(uid, now);
      }
      this.since = page.last;
    }
  }
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
  async waitFor(uids: string[], timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (uids.some((u) => !this.arrived.has(u))) {
      if (Date.now() > end) throw new Error(`${uids.filter((u) => !this.arrived.has(u)).length} SRs did not arrive in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** CPU time (user + system) a process has used so far, in ms (/proc/<pid>/stat, 100 ticks a second). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return round(Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024);
}
