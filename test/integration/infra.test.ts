/**
 * Proves the test infrastructure itself: a real Orthanc with DICOMweb (auth, QIDO-RS,
 * WADO-RS, STOW-RS, restart on the same storage, crash) and the sandbox FHIR server
 * (transactions, search, conditional create, faults, bearer auth).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { startFhirServer, type RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import { ORTHANC_USER_METADATA } from '../../src/sandbox/orthanc-config.ts';
import { makeSyntheticCt, OrthancServer, useOrthanc } from '../harness/orthanc.ts';
import { requireOrthanc } from '../harness/require-servers.ts';

/** A CT sample: the pydicom fixtures when another change has added them, else a synthetic one. */
function ctSample(): Buffer {
  const dir = new URL('../fixtures/pydicom/', import.meta.url);
  if (existsSync(dir)) {
    const name = readdirSync(dir)
      .filter((n) => /^CT.*\.dcm$/i.test(n))
      .sort()[0];
    if (name) return readFileSync(new URL(name, dir));
  }
  return makeSyntheticCt({ patientId: 'INFRA-0001', accessionNumber: 'INFRA-ACC-1', rows: 128, columns: 128 }).buffer;
}

describe.skipIf(!requireOrthanc())('Orthanc harness (real Orthanc + DICOMweb)', () => {
  const orthanc = useOrthanc();
  const sample = ctSample();
  let studyUid = '';
  let seriesUid = '';
  let sopUid = '';

  it('starts with auth enabled and the DICOMweb plugin loaded', async () => {
    const system = await orthanc.json<{ Version: string; HttpPort: number }>('/system');
    expect(system.HttpPort).toBe(orthanc.httpPort);
    expect(await orthanc.json<string[]>('/plugins')).toContain('dicom-web');
    const anonymous = await fetch(`${orthanc.baseUrl}/system`);
    expect(anonymous.status).toBe(401);
    await anonymous.arrayBuffer();
  });

  it('stores a DICOM instance through POST /instances', async () => {
    const stored = await orthanc.uploadInstance(sample);
    expect(stored.Status).toBe('Success');
    const tags = await orthanc.json<Record<string, string>>(`/instances/${stored.ID}/simplified-tags`);
    studyUid = tags.StudyInstanceUID ?? '';
    seriesUid = tags.SeriesInstanceUID ?? '';
    sopUid = tags.SOPInstanceUID ?? '';
    expect(studyUid).toMatch(/^[0-9.]+$/);
    expect((await orthanc.uploadInstance(sample)).Status).toBe('AlreadyStored');
  });

  it('QIDO-RS finds the study with auth and answers 401 without', async () => {
    const res = await fetch(`${orthanc.dicomWebUrl}/studies?StudyInstanceUID=${studyUid}`, {
      headers: { authorization: orthanc.authorization, accept: 'application/dicom+json' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/dicom+json');
    const studies = (await res.json()) as Record<string, { Value?: unknown[] }>[];
    expect(studies).toHaveLength(1);
    expect(studies[0]?.['0020000D']?.Value).toEqual([studyUid]);

    const anonymous = await fetch(`${orthanc.dicomWebUrl}/studies`, { headers: { accept: 'application/dicom+json' } });
    expect(anonymous.status).toBe(401);
    await anonymous.arrayBuffer();
    const wrong = await fetch(`${orthanc.dicomWebUrl}/studies`, {
      headers: { authorization: `Basic ${Buffer.from(`${orthanc.auth.username}:wrong`).toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    await wrong.arrayBuffer();
  });

  it('WADO-RS returns the instance as multipart/related application/dicom', async () => {
    const res = await orthanc.request(`/dicom-web/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}`, {
      headers: { accept: 'multipart/related; type="application/dicom"' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^multipart\/related/);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBeGreaterThan(sample.length);
    expect(body.includes(Buffer.from('DICM'))).toBe(true);
    expect(body.includes(Buffer.from(sopUid))).toBe(true);
  });

  it("declares pacs-triage's user metadata, so a priority can be stored on a study", async () => {
    const [study] = await orthanc.json<{ ID: string }[]>('/tools/lookup', { method: 'POST', body: studyUid });
    const path = `/studies/${study?.ID}/metadata/PacsTriagePriority`;
    const put = await orthanc.request(path, { method: 'PUT', body: 'stat' });
    expect(put.status).toBe(200);
    await put.arrayBuffer();
    expect(await (await orthanc.request(path)).text()).toBe('stat');
  });

  it('STOW-RS stores a second study', async () => {
    const ct = makeSyntheticCt({ patientId: 'INFRA-0002' });
    await orthanc.stow([ct.buffer]);
    const studies = await orthanc.json<unknown[]>(`/dicom-web/studies?StudyInstanceUID=${ct.studyInstanceUid}`);
    expect(studies).toHaveLength(1);
  });

  it('keeps the stored studies across a graceful stop and restart', async () => {
    const before = await orthanc.statistics();
    const port = orthanc.httpPort;
    const code = await orthanc.stop();
    expect(code).toBe(0);
    expect(orthanc.running).toBe(false);
    await expect(fetch(`${orthanc.baseUrl}/system`)).rejects.toThrow();
    await orthanc.start();
    expect(orthanc.httpPort).toBe(port);
    expect(await orthanc.statistics()).toMatchObject({ CountStudies: before.CountStudies, CountInstances: before.CountInstances });
    const studies = await orthanc.json<unknown[]>(`/dicom-web/studies?StudyInstanceUID=${studyUid}`);
    expect(studies).toHaveLength(1);
  });

  it('survives SIGKILL (crash) with the storage intact', async () => {
    await orthanc.kill();
    expect(orthanc.running).toBe(false);
    await orthanc.start();
    const studies = await orthanc.json<unknown[]>(`/dicom-web/studies?StudyInstanceUID=${studyUid}`);
    expect(studies).toHaveLength(1);
  });
});

describe.skipIf(!requireOrthanc())('docker/orthanc/orthanc.json', () => {
  const file = JSON.parse(readFileSync(new URL('../../docker/orthanc/orthanc.json', import.meta.url), 'utf8')) as Record<string, unknown>;

  it('declares the UserMetadata pacs-triage writes', () => {
    expect(file.UserMetadata).toEqual(ORTHANC_USER_METADATA);
  });

  it('is accepted by the real Orthanc (paths, ports and users replaced by the harness)', async () => {
    const { StorageDirectory: _storage, IndexDirectory: _index, HttpPort: _http, DicomPort: _dicom, RegisteredUsers: _users, Plugins: _plugins, LuaScripts, ...rest } = file;
    // The image's Lua scripts live under /etc in the container; here they are read from the repo.
    const lua = ((LuaScripts as string[] | undefined) ?? []).map((p) => fileURLToPath(new URL(`../../docker/orthanc/${path.basename(p)}`, import.meta.url)));
    const server = new OrthancServer({ dicomServer: false, extraConfig: { ...rest, ...(lua.length > 0 ? { LuaScripts: lua } : {}) } });
    try {
      await server.start();
      expect(await server.json<string[]>('/plugins')).toContain('dicom-web');
    } finally {
      await server.cleanup();
    }
  });
});

describe('sandbox FHIR server (@medplum/fhir-router on HTTP)', () => {
  let fhir: RunningFhirServer;
  const MRN = 'urn:pacs-triage:synthetic:mrn';
  const json = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };

  beforeAll(async () => {
    fhir = await startFhirServer({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await fhir?.close();
  });

  async function get<T>(path: string): Promise<T> {
    const res = await fetch(`${fhir.url}/${path}`, { headers: { accept: 'application/fhir+json' } });
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
    const body = (await res.json()) as T;
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body;
  }

  it('runs a transaction with a Patient and an Observation that references it', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:6b1d7a5e-0f0e-4c53-9d7e-1f2a3b4c5d6e',
          resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'INFRA-0001' }], name: [{ family: 'Infra', given: ['Test'] }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '59408-5' }] },
            subject: { reference: 'urn:uuid:6b1d7a5e-0f0e-4c53-9d7e-1f2a3b4c5d6e' },
            effectiveDateTime: '2024-03-01T10:00:00Z',
            valueQuantity: { value: 91, unit: '%' },
          },
          request: { method: 'POST', url: 'Observation' },
        },
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
            subject: { reference: 'urn:uuid:6b1d7a5e-0f0e-4c53-9d7e-1f2a3b4c5d6e' },
            effectiveDateTime: '2024-03-02T10:00:00Z',
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    const res = await fetch(fhir.url, { method: 'POST', headers: json, body: JSON.stringify(bundle) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
    const out = (await res.json()) as Bundle;
    expect(out.type).toBe('transaction-response');
    expect(out.entry?.map((e) => e.response?.status)).toEqual(['201', '201', '201']);
    const patient = out.entry?.[0]?.resource as Patient;
    expect((out.entry?.[1]?.resource as Observation).subject?.reference).toBe(`Patient/${patient.id}`);
  });

  it('searches Patient by identifier (system|value)', async () => {
    const found = await get<Bundle<Patient>>(`Patient?identifier=${encodeURIComponent(`${MRN}|INFRA-0001`)}`);
    expect(found.type).toBe('searchset');
    expect(found.total).toBe(1);
    expect(found.entry?.[0]?.resource?.name?.[0]?.family).toBe('Infra');
    const none = await get<Bundle>(`Patient?identifier=${encodeURIComponent(`${MRN}|NOBODY`)}`);
    expect(none.total).toBe(0);
  });

  it('searches Observation by subject and code, sorted by date', async () => {
    const patient = (await get<Bundle<Patient>>(`Patient?identifier=${encodeURIComponent(`${MRN}|INFRA-0001`)}`)).entry?.[0]?.resource;
    const spo2 = await get<Bundle<Observation>>(
      `Observation?subject=Patient/${patient?.id}&code=${encodeURIComponent('http://loinc.org|59408-5')}&_sort=-date`,
    );
    expect(spo2.entry?.map((e) => e.resource?.valueQuantity?.value)).toEqual([91]);
    const all = await get<Bundle<Observation>>(`Observation?patient=${patient?.id}&_sort=-date`);
    expect(all.entry?.map((e) => e.resource?.effectiveDateTime)).toEqual(['2024-03-02T10:00:00Z', '2024-03-01T10:00:00Z']);
    const later = await get<Bundle<Observation>>(`Observation?subject=Patient/${patient?.id}&date=ge2024-03-02`);
    expect(later.total).toBe(1);
  });

  it('rejects unknown search parameters instead of matching nothing', async () => {
    const res = await fetch(`${fhir.url}/Observation?subjekt=Patient/1`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('conditional create (If-None-Exist) twice gives one resource', async () => {
    const body = JSON.stringify({ resourceType: 'Patient', identifier: [{ system: MRN, value: 'INFRA-COND' }] });
    const headers = { ...json, 'if-none-exist': `identifier=${MRN}|INFRA-COND` };
    const first = await fetch(`${fhir.url}/Patient`, { method: 'POST', headers, body });
    const second = await fetch(`${fhir.url}/Patient`, { method: 'POST', headers, body });
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\//);
    expect(second.status).toBe(200);
    expect(((await first.json()) as Patient).id).toBe(((await second.json()) as Patient).id);
    const found = await get<Bundle>(`Patient?identifier=${encodeURIComponent(`${MRN}|INFRA-COND`)}`);
    expect(found.total).toBe(1);
  });

  it('conditional update creates, then updates the same resource', async () => {
    const url = `${fhir.url}/Patient?identifier=${encodeURIComponent(`${MRN}|INFRA-UPD`)}`;
    const mk = (gender: string) => JSON.stringify({ resourceType: 'Patient', identifier: [{ system: MRN, value: 'INFRA-UPD' }], gender });
    const a = await fetch(url, { method: 'PUT', headers: json, body: mk('female') });
    const b = await fetch(url, { method: 'PUT', headers: json, body: mk('male') });
    expect([a.status, b.status]).toEqual([201, 200]);
    const pa = (await a.json()) as Patient;
    const pb = (await b.json()) as Patient;
    expect(pb.id).toBe(pa.id);
    expect((await get<Patient>(`Patient/${pa.id}`)).gender).toBe('male');
  });

  it('fault switch: next requests answer 503/429, hang, then recover', async () => {
    fhir.faults.failNext(1, 503).failNext(1, 429, { retryAfterSeconds: 2 });
    const r1 = await fetch(`${fhir.url}/Patient`);
    const r2 = await fetch(`${fhir.url}/Patient`);
    expect([r1.status, r2.status]).toEqual([503, 429]);
    expect(r2.headers.get('retry-after')).toBe('2');
    await Promise.all([r1.arrayBuffer(), r2.arrayBuffer()]);
    fhir.faults.hangNext(1);
    await expect(fetch(`${fhir.url}/Patient`, { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect(fhir.faults.pending).toBe(0);
    fhir.faults.reset();
    expect((await fetch(`${fhir.url}/Patient`)).status).toBe(200);
  });

  it('bearer auth when a token is configured', async () => {
    const secured = await startFhirServer({ bearerToken: 'sandbox-token-123' });
    try {
      const anonymous = await fetch(`${secured.url}/Patient`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toContain('Bearer');
      const ok = await fetch(`${secured.url}/Patient`, { headers: { authorization: 'Bearer sandbox-token-123' } });
      expect(ok.status).toBe(200);
      expect((await fetch(`${secured.url}/metadata`)).status).toBe(200);
    } finally {
      await secured.close();
    }
  });
});

describe('requireOrthanc()', () => {
  it('throws in CI when Orthanc is missing, and returns false locally', () => {
    const saved = { bin: process.env.ORTHANC_BIN, ci: process.env.CI };
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      process.env.ORTHANC_BIN = '/nonexistent/Orthanc';
      process.env.CI = 'true';
      expect(() => requireOrthanc()).toThrow(/CI is set/);
      delete process.env.CI;
      expect(requireOrthanc()).toBe(false);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('SKIPPING'));
    } finally {
      warn.mockRestore();
      for (const [k, v] of [['ORTHANC_BIN', saved.bin], ['CI', saved.ci]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
