/**
 * A reader's accept is durable work: recorded with the verdict, written to the EHR by the
 * verifications pass (RiskAssessment final with If-Match on the version read, then the
 * Provenance naming the reader), retried while the FHIR server is away or the RiskAssessment is
 * not written yet, and never written twice.
 */
import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../src/domain/errors.ts';
import type { StoredResult } from '../../../src/domain/records.ts';
import type { FhirResource } from '../../../src/domain/types.ts';
import { AI_NOTE, resultIdentifier } from '../../../src/pipeline/encode/fhir.ts';
import { drainVerifications, type VerificationDeps } from '../../../src/pipeline/verify.ts';
import type { Store } from '../../../src/state/ports.ts';
import { openSqliteStore } from '../../../src/state/sqlite/index.ts';

const UID = '1.2.826.0.1.3680043.10.543.1';
const lease = { owner: 'w1', leaseMs: 60_000 };
const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function result(extra: Partial<StoredResult> = {}): StoredResult {
  return {
    resultKey: 'k1',
    studyInstanceUID: UID,
    sourceSopInstanceUIDs: [`${UID}.1.1`],
    srSopInstanceUID: `${UID}.9.1`,
    srSeriesInstanceUID: `${UID}.9`,
    priority: 'urgent',
    findings: [{ code: 'pneumothorax', display: 'Pneumothorax', probability: 0.8, threshold: 0.5, positive: true }],
    modelId: 'cxr-triage',
    modelVersion: '1.0.0',
    executionProvider: 'cpu',
    createdAt: 1,
    written: { pacs: true, fhir: true, metadata: true },
    notes: [],
    riskAssessmentRef: 'RiskAssessment/ra1',
    ...extra,
  };
}

/** A FHIR server holding one preliminary RiskAssessment: records every call, fails as told. */
class FakeFhir {
  ra: FhirResource = { resourceType: 'RiskAssessment', id: 'ra1', meta: { versionId: '1' }, status: 'preliminary', identifier: [resultIdentifier('k1')], note: [{ text: AI_NOTE }] };
  provenances = new Map<string, FhirResource>();
  calls: string[] = [];
  fail = { unavailable: 0, missing: 0 };
  port = {
    findRiskAssessments: async (key: string): Promise<FhirResource[]> => {
      this.calls.push(`find ${key}`);
      if (this.fail.missing-- > 0) return [];
      return [this.ra];
    },
    update: async (resource: FhirResource): Promise<FhirResource> => {
      this.calls.push(`update ${resource.id} ${String(resource['status'])} if-match ${resource.meta?.versionId}`);
      if (this.fail.unavailable-- > 0) throw new TriageError('UPSTREAM_UNAVAILABLE', 'fhir 503', { status: 503 });
      this.ra = { ...resource, meta: { versionId: String(Number(resource.meta?.versionId) + 1) } };
      return this.ra;
    },
    transaction: async (bundle: FhirResource): Promise<FhirResource> => {
      const entry = (bundle['entry'] as { resource: FhirResource; request: { ifNoneExist: string } }[])[0]!;
      this.calls.push(`provenance ${entry.request.ifNoneExist}`);
      if (!this.provenances.has(entry.request.ifNoneExist)) this.provenances.set(entry.request.ifNoneExist, entry.resource);
      return { resourceType: 'Bundle' };
    },
  };
}

async function setup(r: StoredResult = result()): Promise<{ store: Store; fhir: FakeFhir; deps: VerificationDeps }> {
  const store = openSqliteStore(':memory:');
  await store.saveResult(r);
  const fhir = new FakeFhir();
  return { store, fhir, deps: { store, fhir: fhir.port, shadow: false, software: { name: 'pacs-triage', version: '0.1.0' }, log: undefined } };
}

const accept = { studyInstanceUID: UID, findingCode: 'pneumothorax', verdict: 'accept' as const, by: 'Dr. A', resultKey: 'k1' };

describe('verification on accept: durable work', () => {
  it('writes the RiskAssessment final (If-Match on the version read) and one Provenance naming the reader; done once', async () => {
    const { store, fhir, deps } = await setup();
    await store.addFeedback(accept);
    expect(await drainVerifications(deps, policy, lease)).toEqual([{ status: 'done', outcome: 'RiskAssessment/ra1/_history/2' }]);
    expect(fhir.calls).toEqual(['find k1', 'update ra1 final if-match 1', 'provenance _tag=urn:pacs-triage:verification|k1']);
    expect(fhir.ra['status']).toBe('final');
    const provenance = [...fhir.provenances.values()][0]!;
    expect(provenance['target']).toEqual([{ reference: 'RiskAssessment/ra1/_history/2' }]);
    expect(JSON.stringify(provenance['agent'])).toContain('"display":"Dr. A"');
    expect((await store.auditLog()).map((a) => [a.action, a.outcome])).toEqual([
      ['verify-risk-assessment', 'ok'],
      ['verification-provenance', 'ok'],
    ]);
    // Nothing is due any more; another accept of the same result does not verify again.
    await store.addFeedback({ ...accept, by: 'Dr. B' });
    expect(await drainVerifications(deps, policy, lease)).toEqual([]);
    expect(fhir.calls).toHaveLength(3);
  });

  it('the FHIR server away: retried with backoff until it answers; a retry after the update writes no second version', async () => {
    const { store, fhir, deps } = await setup();
    await store.addFeedback(accept);
    fhir.fail.unavailable = 1;
    const [first] = await drainVerifications(deps, policy, lease);
    expect(first).toMatchObject({ status: 'failed', code: 'UPSTREAM_UNAVAILABLE', retryAt: expect.any(Number) });
    expect(await store.getVerification('k1')).toMatchObject({ state: 'pending', attempts: 1, errorCode: 'UPSTREAM_UNAVAILABLE' });
    // The update lands, then the Provenance's transaction fails (a crash between the two writes).
    const transaction = fhir.port.transaction;
    fhir.port.transaction = async () => {
      throw new TriageError('UPSTREAM_UNAVAILABLE', 'fhir 503', { status: 503 });
    };
    await sleep(5);
    expect(await drainVerifications(deps, policy, lease)).toMatchObject([{ status: 'failed', code: 'UPSTREAM_UNAVAILABLE' }]);
    expect(fhir.ra['status']).toBe('final');
    fhir.port.transaction = transaction;
    await sleep(5);
    expect(await drainVerifications(deps, policy, lease)).toEqual([{ status: 'done', outcome: 'RiskAssessment/ra1/_history/2' }]);
    // The final version is not updated again: the failed update and the one that worked, no third.
    expect(fhir.calls.filter((c) => c.startsWith('update'))).toEqual(['update ra1 final if-match 1', 'update ra1 final if-match 1']);
    expect(fhir.provenances.size).toBe(1);
    expect((await store.getVerification('k1'))?.attempts).toBe(3);
  });

  it('waits while the RiskAssessment is not written yet (not a failure), then verifies it', async () => {
    const { store, fhir, deps } = await setup(result({ written: { pacs: true, fhir: false, metadata: true } }));
    await store.addFeedback(accept);
    expect(await drainVerifications(deps, policy, lease)).toEqual([{ status: 'failed', code: 'CONFLICT', reason: 'waiting for the result’s RiskAssessment to be written', retryAt: expect.any(Number) }]);
    expect(fhir.calls).toEqual([]);
    await store.saveResult(result());
    fhir.fail.missing = 1; // the server's search does not show it yet
    await sleep(5);
    expect(await drainVerifications(deps, policy, lease)).toMatchObject([{ status: 'failed', code: 'CONFLICT', retryAt: expect.any(Number) }]);
    await sleep(5);
    expect(await drainVerifications(deps, policy, lease)).toEqual([{ status: 'done', outcome: 'RiskAssessment/ra1/_history/2' }]);
  });

  it('nothing to write: no FHIR patient, shadow mode, a retracted RiskAssessment — done with the reason', async () => {
    const skipped = await setup(result({ notes: ['fhir skipped: no Patient'], written: { pacs: true, fhir: false, metadata: true } }));
    await skipped.store.addFeedback(accept);
    expect(await drainVerifications(skipped.deps, policy, lease)).toEqual([{ status: 'done', outcome: 'nothing written: the result has no RiskAssessment (no FHIR patient)' }]);
    const shadow = await setup();
    await shadow.store.addFeedback(accept);
    expect(await drainVerifications({ ...shadow.deps, shadow: true }, policy, lease)).toEqual([{ status: 'done', outcome: 'nothing written: shadow mode (no RiskAssessment was written)' }]);
    const retracted = await setup();
    retracted.fhir.ra = { ...retracted.fhir.ra, status: 'entered-in-error' };
    await retracted.store.addFeedback(accept);
    expect(await drainVerifications(retracted.deps, policy, lease)).toEqual([{ status: 'done', outcome: 'nothing written: the RiskAssessment was retracted (entered in error)' }]);
    expect(retracted.fhir.calls).toEqual(['find k1']);
  });

  it('a terminal refusal fails the verification with its reason; an accept after it queues it again', async () => {
    const { store, fhir, deps } = await setup();
    await store.addFeedback(accept);
    fhir.port.update = async () => {
      throw new TriageError('UPSTREAM_REJECTED', 'fhir 422', { status: 422 });
    };
    expect(await drainVerifications(deps, policy, lease)).toEqual([{ status: 'failed', code: 'UPSTREAM_REJECTED', reason: 'fhir 422' }]);
    expect((await store.getVerification('k1'))?.state).toBe('failed');
    await store.addFeedback(accept);
    expect((await store.getVerification('k1'))?.state).toBe('pending');
  });
});
