/**
 * The sandbox FHIR server narrows searches and remembers matcher answers (src/sandbox/
 * fhir-server.ts, SandboxRepository.search) so that it does not set the benchmark's pace; the
 * answers must stay medplum's own: the same entries, in the same order, with the same total.
 */
import { readFileSync } from 'node:fs';
import { parseSearchRequest, type SearchRequest } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFhirApp, type FhirApp } from '../../../src/sandbox/fhir-server.ts';

let fhir: FhirApp;
const ids = (b: Bundle): string[] => (b.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);
/** medplum's MemoryRepository.search over every stored resource, as if no narrowing existed. */
const plain = (req: SearchRequest): Promise<Bundle> => MemoryRepository.prototype.search.call(fhir.repo, req) as Promise<Bundle>;

beforeAll(async () => {
  fhir = createFhirApp();
  await fhir.seed(JSON.parse(readFileSync('test/fixtures/demo/fhir-bundle.json', 'utf8')) as Bundle);
});

describe('sandbox FHIR searches', () => {
  it('give medplum\'s own answers: entries, order and total, for narrowed, filtered and sorted searches, asked twice', async () => {
    const patients = (await plain(parseSearchRequest('Patient'))).entry?.map((e) => e.resource as Resource & { identifier?: { system?: string; value?: string }[] }) ?? [];
    expect(patients.length).toBeGreaterThan(1);
    const queries: string[] = [];
    for (const p of patients) {
      const id = p.identifier?.[0];
      queries.push(
        `Patient?identifier=${id?.system}|${id?.value}`,
        `Patient?identifier=${id?.system}|${id?.value?.toLowerCase()}`,
        `ServiceRequest?subject=Patient/${p.id}`,
        `DiagnosticReport?subject=Patient/${p.id}&date=ge2000-01-01&_sort=-date&_count=20`,
        `Observation?subject=Patient/${p.id}&code=http://loinc.org|59408-5,http://loinc.org|8310-5,http://loinc.org|8867-4&date=ge2000-01-01&_sort=-date&_count=50`,
        `Observation?subject=Patient/${p.id}&_sort=date`,
        `Observation?subject=Patient/${p.id}&_sort=-date&_count=2&_offset=1`,
      );
    }
    queries.push('RiskAssessment?identifier=urn:x|nothing', 'Provenance?_tag=urn:x|nothing', 'Observation?subject=Patient/not-there');
    let answered = 0;
    for (const q of queries) {
      const [type, query] = q.split('?') as [string, string];
      const req = parseSearchRequest(type as never, Object.fromEntries(new URLSearchParams(query)));
      const expected = await plain(req);
      if ((expected.entry?.length ?? 0) > 0) answered++;
      for (let round = 0; round < 2; round++) {
        const got = await fhir.repo.search(req);
        expect(ids(got), q).toEqual(ids(expected));
        expect(got.total, q).toBe(expected.total);
      }
    }
    // Most of them find something: the comparison is not one of empty bundles.
    expect(answered).toBeGreaterThanOrEqual(patients.length * 4);
  });
});
