/**
 * Verifications (SQLite migration 10, PostgreSQL 5): an accept records its verification with the
 * verdict, one per result; claimed under a lease, retried, failed; an accept after a failure
 * queues it again. Exact rows, the same on every engine.
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../../../../src/state/ports.ts';
import type { StoreEngine } from './engine.ts';

const lease = { owner: 'w1', leaseMs: 1_000 };

export function verificationContract(engine: StoreEngine): void {
  async function open(): Promise<{ store: Store; now: () => number }> {
    let t = 10_000;
    const now = (): number => (t += 10);
    return { store: await engine.open(now), now };
  }
  const accept = (key: string | undefined, by = 'AB', verdict: 'accept' | 'reject' = 'accept') => ({
    studyInstanceUID: '1.1',
    findingCode: 'pneumothorax',
    verdict,
    by,
    ...(key ? { resultKey: key } : {}),
  });

  describe(`${engine.name}: verifications`, () => {
    it('an accept records a pending verification of its result; a reject, or an accept without a result, none', async () => {
      const { store } = await open();
      const f = await store.addFeedback(accept('key-1'));
      await store.addFeedback(accept('key-2', 'CD', 'reject'));
      await store.addFeedback(accept(undefined));
      expect(await store.verifications()).toEqual([
        { resultKey: 'key-1', studyInstanceUID: '1.1', reader: 'AB', verifiedAt: f.createdAt, feedbackId: f.id, state: 'pending', attempts: 0, nextAttemptAt: f.createdAt, requestedAt: f.createdAt, updatedAt: f.createdAt },
      ]);
      // A second accept of the same result changes nothing: the first reader verified it.
      await store.addFeedback(accept('key-1', 'EF'));
      expect((await store.getVerification('key-1'))?.reader).toBe('AB');
      expect(await store.getVerification('key-2')).toBeUndefined();
      await store.close();
    });

    it('claims under a lease, once; an expired lease is claimed again; retry, done and failed as told', async () => {
      const { store } = await open();
      await store.addFeedback(accept('key-1'));
      await store.addFeedback({ ...accept('key-2'), studyInstanceUID: '1.2' });
      const first = await store.claimVerification(Number.MAX_SAFE_INTEGER - 10_000, lease);
      expect(first).toMatchObject({ resultKey: 'key-1', state: 'running', attempts: 1 });
      const second = await store.claimVerification(Number.MAX_SAFE_INTEGER - 10_000, lease);
      expect(second?.resultKey).toBe('key-2');
      expect(await store.claimVerification(Number.MAX_SAFE_INTEGER - 10_000, lease)).toBeUndefined();
      // Both leases ran out (a crashed runner): claimed again.
      expect((await store.claimVerification(Number.MAX_SAFE_INTEGER, lease))?.attempts).toBe(2);
      await store.failVerification('key-1', 'UPSTREAM_UNAVAILABLE', 'fhir 503', 50_000);
      expect(await store.getVerification('key-1')).toMatchObject({ state: 'pending', nextAttemptAt: 50_000, errorCode: 'UPSTREAM_UNAVAILABLE', lastError: 'fhir 503' });
      await store.finishVerification('key-1', 'RiskAssessment/ra-1/_history/2');
      expect(await store.getVerification('key-1')).toMatchObject({ state: 'done', outcome: 'RiskAssessment/ra-1/_history/2', doneAt: expect.any(Number) });
      expect(await store.getVerification('key-1')).not.toHaveProperty('errorCode');
      await store.failVerification('key-2', 'INTERNAL', 'refused', undefined);
      expect((await store.verifications({ state: 'failed' })).map((v) => v.resultKey)).toEqual(['key-2']);
      expect((await store.verifications({ studyInstanceUID: '1.2' })).map((v) => v.resultKey)).toEqual(['key-2']);
      // An accept after the failure queues it again, with the new reader.
      await store.addFeedback({ ...accept('key-2', 'GH'), studyInstanceUID: '1.2' });
      expect(await store.getVerification('key-2')).toMatchObject({ state: 'pending', attempts: 0, reader: 'GH' });
      expect(await store.getVerification('key-2')).not.toHaveProperty('errorCode');
      await store.close();
    });

    it('survives a restart: the pending verification is there for the next process', async () => {
      const { store } = await open();
      await store.addFeedback(accept('key-1'));
      const again = await engine.reopen(store);
      expect((await again.claimVerification(Number.MAX_SAFE_INTEGER, lease))?.resultKey).toBe('key-1');
      await again.close();
    });
  });
}
