/**
 * The results other systems read, against the real servers: the demo studies in a real Orthanc,
 * their FHIR context in the sandbox FHIR server, the pipeline through the CLI (`run-once`,
 * `process <uid>`), then what was written read back from the servers themselves.
 *
 *  - The same study processed twice — again with the job store that remembers it, and again from
 *    a fresh job store that does not — gives the same SR SOP Instance UID (one SR in the study)
 *    and the same RiskAssessment (one, same id).
 *  - A new model version (the shipped model copied, only `version` changed in manifest.json; the
 *    manifest's sha256 covers only the .onnx) gives a new SR that names the earlier one in
 *    Predecessor Documents Sequence (read back with readSr), and a second RiskAssessment.
 *    Each SR of the study has its own Instance Number in the shared SR series.
 *  - Every SR in Orthanc passes dciodvfy with zero errors and dsrdump reads its TID 1500 tree;
 *    every resource on the FHIR server passes R4 validation (Medplum's validateResource and the
 *    required-binding check) with zero problems.
 *  - A 2-frame source image: Orthanc's QIDO-RS gives its NumberOfFrames, and the SR refers to
 *    frame 1 (the frame the model read) in the region and the Image Library.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import type { InstanceMeta } from '../../src/domain/types.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import { readSr } from '../../src/pipeline/encode/sr-read.ts';
import { COMPREHENSIVE_3D_SR_SOP_CLASS_UID } from '../../src/pipeline/encode/sr.ts';
import { startFhirServer, type RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import { startOrthanc, type OrthancServer } from '../../src/sandbox/orthanc.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { ACCEPTED_DCIODVFY_WARNING, dciodvfy, dsrdump, fhirProblems } from '../harness/validators.ts';
import { cli, waitFor } from '../harness/cli.ts';

const DEMO = 'test/fixtures/demo';
const MODEL = 'models/cxr-triage';
const UID_ROOT = '1.2.826.0.1.3680043.10.999';



type FhirResource = Record<string, unknown> & { resourceType: string; id: string; identifier?: { system: string; value: string }[] };

describe.skipIf(!requireOrthanc())('results other systems read: idempotent, superseded with a predecessor, valid', () => {
  let orthanc: OrthancServer;
  let fhir: RunningFhirServer;
  let dicomweb: DicomWebClient;
  let dir: string;
  const demoFiles = readdirSync(path.join(DEMO, 'dicom'))
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(DEMO, 'dicom', f));
  const demoStudies = demoFiles.map((f) => String(readPart10(readFileSync(f))['StudyInstanceUID']));
  /** demo01: pneumothorax, found with a region. */
  const study = demoStudies[0]!;

  /** A config file: this Orthanc and FHIR server, the given job store and model folder. */
  function config(name: string, options: { store: string; modelDir?: string }): string {
    const file = path.join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        pacs: { baseUrl: orthanc.baseUrl, auth: orthanc.auth },
        fhir: { baseUrl: fhir.url },
        store: { path: path.join(dir, options.store) },
        uidRoot: UID_ROOT,
        ...(options.modelDir ? { model: { dir: options.modelDir } } : {}),
      }),
    );
    return file;
  }

  async function srInstances(uid: string): Promise<InstanceMeta[]> {
    return (await dicomweb.studyInstances(uid)).filter((i) => i.Modality === 'SR');
  }
  async function search(type: string): Promise<FhirResource[]> {
    const res = await fetch(`${fhir.url}/${type}?_count=500`);
    expect(res.status, `search ${type}`).toBe(200);
    const bundle = (await res.json()) as { entry?: { resource: FhirResource }[] };
    return (bundle.entry ?? []).map((e) => e.resource);
  }
  /** RiskAssessments that name the SR with this SOP Instance UID (their secondary identifier). */
  async function riskAssessmentsFor(srSop: string): Promise<FhirResource[]> {
    return (await search('RiskAssessment')).filter((r) => (r.identifier ?? []).some((i) => i.value === `urn:oid:${srSop}`));
  }
  async function processStudy(configFile: string): Promise<{ status: string; unchanged?: boolean; sr?: string }> {
    const run = await cli(['process', study, '--config', configFile, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout).toBe(0);
    return JSON.parse(run.stdout) as { status: string; unchanged?: boolean; sr?: string };
  }

  let firstSr: InstanceMeta;
  let firstRa: FhirResource;

  beforeAll(async () => {
    orthanc = await startOrthanc({ dicomServer: false });
    fhir = await startFhirServer();
    await fhir.seed(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8')));
    dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    const rest = new OrthancClient({ baseUrl: orthanc.baseUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    try {
      await dicomweb.store(undefined, demoFiles.map((f) => readFileSync(f)));
      await waitFor('StableStudy for every demo study', async () =>
        (await rest.changes(0, 1000)).changes.filter((c) => c.changeType === 'StableStudy').length >= demoFiles.length ? true : undefined,
      );
    } finally {
      rest.close();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-results-'));
    const run = await cli(['run-once', '--config', config('first', { store: 'jobs.sqlite' }), '--json']);
    if (run.code !== 0) throw new Error(`run-once exited ${run.code}: ${run.stdout}${run.stderr}`);
    const summary = JSON.parse(run.stdout) as { done: number };
    if (summary.done !== demoFiles.length) throw new Error(`run-once: ${run.stdout}`);
  }, 180_000);

  afterAll(async () => {
    dicomweb?.close();
    await fhir?.close();
    await orthanc?.cleanup();
  });

  it('the first run wrote one SR per demo study and one RiskAssessment naming it', async () => {
    for (const uid of demoStudies) {
      const srs = await srInstances(uid);
      expect(srs, uid).toHaveLength(1);
      expect(await riskAssessmentsFor(srs[0]!.SOPInstanceUID), uid).toHaveLength(1);
    }
    firstSr = (await srInstances(study))[0]!;
    firstRa = (await riskAssessmentsFor(firstSr.SOPInstanceUID))[0]!;
    expect(firstSr!.SOPClassUID).toBe(COMPREHENSIVE_3D_SR_SOP_CLASS_UID);
    expect(firstSr!.SOPInstanceUID.startsWith(`${UID_ROOT}.`)).toBe(true);
    // demo01's SR carries the region the OHIF test draws
    const doc = readSr(await dicomweb.retrieveInstance(study, firstSr!.SeriesInstanceUID, firstSr!.SOPInstanceUID));
    expect(doc.findings.filter((f) => f.region).map((f) => f.code)).toEqual(['pneumothorax']);
    expect(doc.predecessors).toEqual([]);
    expect(doc.instanceNumber).toBe(1);
    // unverified, as the SR says, with a narrative that says so first
    expect(firstRa['status']).toBe('preliminary');
    expect((firstRa['text'] as { status: string; div: string })).toMatchObject({ status: 'generated', div: expect.stringContaining('Preliminary AI triage result') });
  });

  it('the same study processed twice gives the same SR SOP Instance UID and the same RiskAssessment', async () => {
    const before = { ra: (await search('RiskAssessment')).length, prov: (await search('Provenance')).length, dev: (await search('Device')).length };

    // Again, with the job store that remembers the result: nothing to do.
    const again = await processStudy(config('first', { store: 'jobs.sqlite' }));
    expect(again).toMatchObject({ status: 'done', unchanged: true, sr: firstSr.SOPInstanceUID });

    // Again from scratch (a fresh job store: inference, encoding and both writes all run again):
    // the result key is the same, so are the SR UIDs and the FHIR identifiers.
    const fresh = await processStudy(config('fresh', { store: 'fresh.sqlite' }));
    expect(fresh).toMatchObject({ status: 'done', unchanged: false, sr: firstSr.SOPInstanceUID });
    const store = openSqliteStore(path.join(dir, 'fresh.sqlite'));
    try {
      expect((await store.latestResult(study))?.written).toEqual({ pacs: true, fhir: true, metadata: true });
    } finally {
      await store.close();
    }

    const srs = await srInstances(study);
    expect(srs.map((s) => s.SOPInstanceUID)).toEqual([firstSr.SOPInstanceUID]);
    expect(srs[0]!.SeriesInstanceUID).toBe(firstSr.SeriesInstanceUID);
    const ras = await riskAssessmentsFor(firstSr.SOPInstanceUID);
    expect(ras.map((r) => r.id)).toEqual([firstRa.id]);
    expect(ras[0]!.identifier).toEqual(firstRa.identifier);
    const after = { ra: (await search('RiskAssessment')).length, prov: (await search('Provenance')).length, dev: (await search('Device')).length };
    expect(after).toEqual(before);
  });

  it('a new model version gives a new SR that names the earlier one as predecessor, and a second RiskAssessment', async () => {
    const modelDir = path.join(dir, 'model-1.0.1');
    cpSync(MODEL, modelDir, { recursive: true });
    const manifestPath = path.join(modelDir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { version: string };
    expect(manifest.version).toBe('1.0.0');
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, version: '1.0.1' }, null, 2));

    const out = await processStudy(config('v2', { store: 'jobs.sqlite', modelDir }));
    expect(out.status).toBe('done');
    expect(out.unchanged).toBe(false);
    expect(out.sr).not.toBe(firstSr.SOPInstanceUID);

    const srs = await srInstances(study);
    expect(srs).toHaveLength(2);
    const second = srs.find((s) => s.SOPInstanceUID === out.sr)!;
    expect(second).toBeDefined();
    // Same model (same Device UID), so the same SR series; a new instance in it.
    expect(second.SeriesInstanceUID).toBe(firstSr.SeriesInstanceUID);
    const doc = readSr(await dicomweb.retrieveInstance(study, second.SeriesInstanceUID, second.SOPInstanceUID));
    expect(doc.predecessors).toEqual([
      {
        studyInstanceUID: study,
        seriesInstanceUID: firstSr.SeriesInstanceUID,
        sopInstanceUID: firstSr.SOPInstanceUID,
        sopClassUID: COMPREHENSIVE_3D_SR_SOP_CLASS_UID,
      },
    ]);
    // two SRs in one series: each its own Instance Number (as QIDO-RS reports them too)
    expect(doc.instanceNumber).toBe(2);
    expect(srs.map((s) => [s.SOPInstanceUID === firstSr.SOPInstanceUID ? 'first' : 'second', s.InstanceNumber]).sort()).toEqual([['first', 1], ['second', 2]]);
    const ds = readPart10(await dicomweb.retrieveInstance(study, second.SeriesInstanceUID, second.SOPInstanceUID));
    expect(ds['ContributingEquipmentSequence']).toEqual([expect.objectContaining({ SoftwareVersions: expect.arrayContaining(['1.0.1']) })]);

    const newRas = await riskAssessmentsFor(second.SOPInstanceUID);
    expect(newRas).toHaveLength(1);
    expect(newRas[0]!.id).not.toBe(firstRa.id);
    expect(await riskAssessmentsFor(firstSr.SOPInstanceUID)).toHaveLength(1); // the earlier one stays
    expect((newRas[0]!['method'] as { text: string }).text).toMatch(/1\.0\.1$/);
    // its performer is a Device for the version that produced it (the earlier Device stays 1.0.0)
    const performer = (newRas[0]!['performer'] as { reference: string }).reference;
    const device = (await (await fetch(`${fhir.url}/${performer}`)).json()) as { version: { value: string }[] };
    expect(device.version).toEqual([{ value: '1.0.1' }]);
    expect((firstRa['performer'] as { reference: string }).reference).not.toBe(performer);
    expect((await search('RiskAssessment')).length).toBe(demoStudies.length + 1);

    // …and processing it again with the new version writes nothing new.
    expect(await processStudy(config('v2', { store: 'jobs.sqlite', modelDir }))).toMatchObject({ unchanged: true, sr: second.SOPInstanceUID });
    expect(await srInstances(study)).toHaveLength(2);
  });

  it('every SR in Orthanc passes dciodvfy with zero errors, and dsrdump reads its TID 1500 tree', async () => {
    const all = (await Promise.all(demoStudies.map(srInstances))).flat();
    expect(all).toHaveLength(demoStudies.length + 1);
    for (const sr of all) {
      const file = path.join(dir, `${sr.SOPInstanceUID}.dcm`);
      writeFileSync(file, await dicomweb.retrieveInstance(sr.StudyInstanceUID, sr.SeriesInstanceUID, sr.SOPInstanceUID));
      const result = dciodvfy(file);
      expect(result.output, sr.SOPInstanceUID).toContain('Comprehensive3DSR');
      expect(result.errors, result.output).toEqual([]);
      for (const w of result.warnings) expect(w, result.output).toMatch(ACCEPTED_DCIODVFY_WARNING);
      const tree = dsrdump(file);
      expect(tree).toContain('<CONTAINER:(,,"Imaging Measurement Report")=SEPARATE>');
      expect(tree).toContain('Verification Flag   : UNVERIFIED');
      // every finding is in the tree, as a measurement group or as a qualitative evaluation
      expect(readSr(readFileSync(file)).findings).toHaveLength(4);
    }
  });

  it('every resource on the FHIR server passes R4 validation and the required bindings with zero problems', async () => {
    const written = [...(await search('Device')), ...(await search('RiskAssessment')), ...(await search('Provenance'))];
    // three Devices (the model at 1.0.0 and at 1.0.1, the service); a RiskAssessment and a Provenance per result
    expect(written.map((r) => r.resourceType).sort()).toEqual([
      'Device',
      'Device',
      'Device',
      ...Array<string>(demoStudies.length + 1).fill('Provenance'),
      ...Array<string>(demoStudies.length + 1).fill('RiskAssessment'),
    ]);
    for (const r of written) expect(fhirProblems(r), `${r.resourceType}/${r.id}`).toEqual([]);
    // the references between them resolve on the server
    for (const p of written.filter((r) => r.resourceType === 'Provenance')) {
      for (const ref of [...(p['target'] as { reference: string }[]), ...(p['agent'] as { who: { reference: string } }[]).map((a) => a.who)]) {
        expect((await fetch(`${fhir.url}/${ref.reference}`)).status, ref.reference).toBe(200);
      }
    }
  });

  it('a 2-frame source image (Multi-frame Grayscale Word SC): QIDO-RS gives NumberOfFrames, and the SR refers to frame 1 in the region and the Image Library (dciodvfy: 0 errors)', async () => {
    const ds = readPart10(readFileSync(demoFiles[0]!));
    const uid = `${UID_ROOT}.77.1`;
    ds['StudyInstanceUID'] = uid;
    ds['SeriesInstanceUID'] = `${uid}.1`;
    ds['SOPInstanceUID'] = `${uid}.1.1`;
    // A multi-frame SOP Class (CR's IOD has no Multi-frame Module); still Modality CR, so the series is selected.
    ds['SOPClassUID'] = '1.2.840.10008.5.1.4.1.1.7.3';
    ds['NumberOfFrames'] = '2';
    const stored = ds['PixelData'];
    const pixels = ArrayBuffer.isView(stored) ? new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength) : new Uint8Array((stored as ArrayBuffer[])[0]!);
    const twice = new Uint8Array(pixels.length * 2);
    twice.set(pixels, 0);
    twice.set(pixels, pixels.length);
    ds['PixelData'] = [twice.buffer];
    const rest = new OrthancClient({ baseUrl: orthanc.baseUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    try {
      const stable = (await rest.changes(0, 1000)).changes.filter((c) => c.changeType === 'StableStudy').length;
      await dicomweb.store(undefined, [writePart10(ds)]);
      await waitFor('the 2-frame study to be stable', async () => ((await rest.changes(0, 1000)).changes.filter((c) => c.changeType === 'StableStudy').length > stable ? true : undefined));
    } finally {
      rest.close();
    }
    const source = (await dicomweb.studyInstances(uid)).find((i) => i.Modality !== 'SR')!;
    expect(source.NumberOfFrames).toBe(2);

    const run = await cli(['process', uid, '--config', config('first', { store: 'jobs.sqlite' }), '--json']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const [sr] = await srInstances(uid);
    const file = path.join(dir, 'multi-frame-sr.dcm');
    writeFileSync(file, await dicomweb.retrieveInstance(uid, sr!.SeriesInstanceUID, sr!.SOPInstanceUID));
    const result = dciodvfy(file);
    expect(result.errors, result.output).toEqual([]);
    for (const w of result.warnings) expect(w, result.output).toMatch(ACCEPTED_DCIODVFY_WARNING);
    const doc = readSr(readFileSync(file));
    expect(doc.imageLibrary).toEqual([{ sopClassUID: source.SOPClassUID, sopInstanceUID: source.SOPInstanceUID, frameNumber: 1 }]);
    expect(doc.findings.filter((f) => f.region).map((f) => f.region!.frameNumber)).toEqual([1]);
  });
});
