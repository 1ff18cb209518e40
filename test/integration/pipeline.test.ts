/**
 * The foundation path end to end against the real servers: demo studies STOWed into a real
 * Orthanc, their FHIR context in the sandbox FHIR server, `run-once` through the CLI, then
 * everything read back from the servers themselves.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import { PRIORITY_METADATA, type OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import { readSr } from '../../src/pipeline/encode/sr-read.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import type { RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { cli, waitFor } from '../harness/cli.ts';
import { startRig, type Rig } from '../harness/rig.ts';

const DEMO = 'test/fixtures/demo';
const CT = 'test/fixtures/pydicom/CT_small.dcm';



describe.skipIf(!requireOrthanc())('end to end: Orthanc + FHIR server → run-once → SR, RiskAssessment, priority', () => {
  let rig: Rig;
  let fhir: RunningFhirServer;
  let dicomweb: DicomWebClient;
  let rest: OrthancClient;
  let configFile: string;
  let storePath: string;
  const demoFiles = readdirSync(path.join(DEMO, 'dicom')).filter((f) => f.endsWith('.dcm')).map((f) => path.join(DEMO, 'dicom', f));
  const demoStudies = demoFiles.map((f) => String(readPart10(readFileSync(f))['StudyInstanceUID']));
  const ctStudy = String(readPart10(readFileSync(CT))['StudyInstanceUID']);

  async function stableStudies(): Promise<number> {
    const changes = await rest.changes(0, 1000);
    return changes.changes.filter((c) => c.changeType === 'StableStudy').length;
  }
  async function srInstances(study: string) {
    return (await dicomweb.studyInstances(study)).filter((i) => i.Modality === 'SR');
  }
  async function riskAssessments(): Promise<Record<string, unknown>[]> {
    const res = await fetch(`${fhir.url}/RiskAssessment?_count=200`);
    const bundle = (await res.json()) as { entry?: { resource: Record<string, unknown> }[] };
    return (bundle.entry ?? []).map((e) => e.resource);
  }

  beforeAll(async () => {
    rig = await startRig('e2e');
    ({ fhir, dicomweb, rest, storePath } = rig);
    await dicomweb.store(undefined, [...demoFiles, CT].map((f) => readFileSync(f)));
    await waitFor('StableStudy for every study', async () => ((await stableStudies()) >= demoFiles.length + 1 ? true : undefined));
    configFile = rig.config('config.json');
  }, 120_000);

  afterAll(async () => {
    await rig?.close();
  });

  it('processes every chest study, skips the CT with a reason, and writes SR, RiskAssessment and priority', async () => {
    const run = await cli(['run-once', '--config', configFile, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as { enqueued: number; done: number; skipped: number; failed: number };
    expect(summary).toMatchObject({ enqueued: demoFiles.length + 1, done: demoFiles.length, skipped: 1, failed: 0 });

    const store = openSqliteStore(storePath);
    try {
      const ct = await store.get(ctStudy);
      expect(ct?.state).toBe('skipped');
      expect(ct?.reason).toMatch(/no series matches the selection rules.*CT/);

      const risks = await riskAssessments();
      expect(risks).toHaveLength(demoFiles.length);
      for (const study of demoStudies) {
        const result = await store.latestResult(study);
        expect(result, study).toBeDefined();
        if (!result) continue;
        // One SR, in the source study, in a series of its own.
        const srs = await srInstances(study);
        expect(srs).toHaveLength(1);
        const sr = srs[0]!;
        expect(sr.SOPInstanceUID).toBe(result.srSopInstanceUID);
        const sources = (await dicomweb.studyInstances(study)).filter((i) => i.Modality !== 'SR');
        expect(sources.map((s) => s.SeriesInstanceUID)).not.toContain(sr.SeriesInstanceUID);
        // Read back with dcmjs: the model's findings.
        const doc = readSr(await dicomweb.retrieveInstance(study, sr.SeriesInstanceUID, sr.SOPInstanceUID));
        expect(doc.studyInstanceUID).toBe(study);
        expect(doc.findings.map((f) => [f.code, f.positive])).toEqual(result.findings.map((f) => [f.code, f.positive]));
        doc.findings.forEach((f, i) => expect(f.probability).toBeCloseTo(result.findings[i]!.probability, 6));
        // The priority in Orthanc's metadata.
        const orthancId = await rest.findStudy(study);
        expect(await rest.studyMetadata(orthancId!, PRIORITY_METADATA)).toBe(result.priority);
        // One RiskAssessment, for the right patient, based on resources that exist.
        expect(result.written).toEqual({ pacs: true, fhir: true, metadata: true });
        // The job record says which selection rule took the image, on which attributes.
        expect(result.selectedBy).toEqual({ rule: 'adult frontal chest radiograph', attributes: ['Modality', 'BodyPartExamined'] });
        const risk = risks.find((r) => `${String((r['identifier'] as { value: string }[]).find((i) => i.value.startsWith('urn:oid:'))?.value)}` === `urn:oid:${sr.SOPInstanceUID}`);
        expect(risk, `RiskAssessment naming SR ${sr.SOPInstanceUID}`).toBeDefined();
        const subject = (risk!['subject'] as { reference: string }).reference;
        expect(subject).toMatch(/^Patient\//);
        const basis = (risk!['basis'] as { reference: string }[] | undefined) ?? [];
        expect(basis.length).toBeGreaterThan(0);
        for (const b of basis) {
          expect(b.reference).toMatch(/^(DiagnosticReport|Observation|ServiceRequest)\//);
          const res = await fetch(`${fhir.url}/${b.reference}`);
          expect(res.status, b.reference).toBe(200);
          expect(((await res.json()) as { subject?: { reference?: string } }).subject?.reference).toBe(subject);
        }
      }
    } finally {
      await store.close();
    }
  });

  it('a second run-once writes nothing new', async () => {
    const before = { risks: (await riskAssessments()).length, srs: (await Promise.all(demoStudies.map(srInstances))).flat().length };
    // Our own SRs made Orthanc report each study stable again: they come back as jobs…
    await waitFor('StableStudy after our SRs', async () => ((await stableStudies()) >= 2 * demoFiles.length + 1 ? true : undefined));
    const run = await cli(['run-once', '--config', configFile, '--json']);
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as { outcomes: { status: string; unchanged?: boolean }[] };
    // …and end as "unchanged", writing nothing.
    expect(summary.outcomes.filter((o) => o.status === 'done').every((o) => o.unchanged === true)).toBe(true);
    const after = { risks: (await riskAssessments()).length, srs: (await Promise.all(demoStudies.map(srInstances))).flat().length };
    expect(after).toEqual(before);
  });

  function copyWithUids(file: string, n: number): Uint8Array {
    const ds = readPart10(readFileSync(file));
    ds['StudyInstanceUID'] = `1.2.826.0.1.3680043.10.999.${n}.1`;
    ds['SeriesInstanceUID'] = `1.2.826.0.1.3680043.10.999.${n}.1.1`;
    ds['SOPInstanceUID'] = `1.2.826.0.1.3680043.10.999.${n}.1.1.1`;
    if (n === 1) delete ds['PixelData'];
    return writePart10(ds);
  }

  async function storeAndWait(part10: Uint8Array): Promise<void> {
    const stable = await stableStudies();
    await dicomweb.store(undefined, [part10]);
    await waitFor('the new study to be stable', async () => ((await stableStudies()) > stable ? true : undefined));
  }

  it('a study whose pixel data cannot be read fails at once with its reason, in the job list', async () => {
    await storeAndWait(copyWithUids(demoFiles[0]!, 1));
    const run = await cli(['run-once', '--config', configFile, '--json']);
    expect(run.code).toBe(1);
    const jobs = await cli(['jobs', '--config', configFile, '--state', 'failed']);
    expect(jobs.stdout).toMatch(/failed\s+live\s+1\.2\.826\.0\.1\.3680043\.10\.999\.1\.1 .*DICOM_NO_PIXEL_DATA/);
  });

  it('a FHIR outage is retried with its reason visible, then the study completes when FHIR is back', async () => {
    await storeAndWait(copyWithUids(demoFiles[1]!, 2));
    const uid = '1.2.826.0.1.3680043.10.999.2.1';
    fhir.faults.failNext(1000, 503);
    try {
      const run = await cli(['run-once', '--config', configFile, '--json']);
      expect(run.code).toBe(1);
    } finally {
      fhir.faults.reset();
    }
    let store = openSqliteStore(storePath);
    const waiting = await store.get(uid);
    await store.close();
    expect(waiting).toMatchObject({ state: 'queued', errorCode: 'UPSTREAM_UNAVAILABLE' });
    expect(waiting?.reason).toMatch(/fhir .*503/);
    // The job is due again after its backoff (2 s at most for a first retry).
    await new Promise((r) => setTimeout(r, Math.max(0, (waiting?.nextAttemptAt ?? 0) - Date.now() + 50)));
    const again = await cli(['run-once', '--config', configFile, '--json']);
    expect(again.code).toBe(0);
    store = openSqliteStore(storePath);
    expect((await store.get(uid))?.state).toBe('done');
    expect((await store.latestResult(uid))?.written).toEqual({ pacs: true, fhir: true, metadata: true });
    await store.close();
  });

  it('backfill finds the studies of a date range by QIDO-RS and reprocesses them; unchanged ones write nothing', async () => {
    const before = (await riskAssessments()).length;
    const run = await cli(['backfill', '--since', '1990-01-01', '--config', configFile, '--json']);
    const summary = JSON.parse(run.stdout) as { found: number; done: number; unchanged: number; skipped: number; failed: number };
    // The demo studies, the CT and the two made in the tests above; the one without pixel data fails again.
    expect(summary.found).toBe(demoFiles.length + 3);
    expect(summary).toMatchObject({ skipped: 1, failed: 1 });
    expect(summary.unchanged).toBeGreaterThanOrEqual(demoFiles.length);
    expect(run.code).toBe(1);
    expect((await riskAssessments()).length).toBe(before);
    expect((await cli(['backfill', '--since', '2026-13-01', '--config', configFile])).code).toBe(2);
  });

  it('jobs retry queues a failed study again; jobs list shows it', async () => {
    const uid = '1.2.826.0.1.3680043.10.999.1.1';
    const retry = await cli(['jobs', 'retry', uid, '--config', configFile]);
    expect(retry.stdout.trim()).toBe(`${uid}: queued`);
    const list = await cli(['jobs', 'list', '--state', 'queued', '--config', configFile]);
    expect(list.stdout).toContain(uid);
    expect((await cli(['jobs', 'retry', '9.9.9', '--config', configFile])).code).toBe(1);
  });

  it('with fhir.writeOrderPriority the priority goes to the order, and that write does not make the study run again', async () => {
    const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as { fhir: Record<string, unknown> };
    cfg.fhir['writeOrderPriority'] = true;
    const orderConfig = configFile.replace(/\.json$/, '-order.json');
    writeFileSync(orderConfig, JSON.stringify(cfg));
    const accession = String(readPart10(readFileSync(demoFiles[0]!))['AccessionNumber']);
    const order = async (): Promise<{ priority?: string; meta: { versionId: string } }> => {
      const bundle = (await (await fetch(`${fhir.url}/ServiceRequest?_count=200`)).json()) as { entry: { resource: { identifier?: { value?: string }[]; priority?: string; meta: { versionId: string } } }[] };
      const found = bundle.entry.map((e) => e.resource).find((r) => (r.identifier ?? []).some((i) => i.value === accession));
      if (!found) throw new Error('the demo order is missing');
      return found;
    };
    const before = await order();
    await storeAndWait(copyWithUids(demoFiles[0]!, 3));
    const uid = '1.2.826.0.1.3680043.10.999.3.1';
    const first = await cli(['process', uid, '--config', orderConfig]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const store = openSqliteStore(storePath);
    const result = await store.latestResult(uid);
    await store.close();
    const after = await order();
    expect(after.priority).toBe(result?.priority);
    expect(after.meta.versionId).not.toBe(before.meta.versionId);
    expect(result?.orderPriority).toEqual({ ref: expect.stringMatching(/^ServiceRequest\//), fromVersion: before.meta.versionId, toVersion: after.meta.versionId });
    // Our SR made the study stable again; the rerun sees only our own write on the order: unchanged.
    const again = await cli(['process', uid, '--config', orderConfig, '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'done', unchanged: true });
    expect(await srInstances(uid)).toHaveLength(1);
  });
});
