/** The contract of the smaller ports: the seen-set and cursors, the audit log (append-only), job listing and counts. */
import { describe, expect, it } from 'vitest';
import type { StoreEngine } from './engine.ts';

const ref = (uid: string) => ({ studyInstanceUID: uid, source: 'dicomweb-qido' as const });

export function recordsContract(engine: StoreEngine): void {
  describe(`${engine.name}: seen-set, audit log, counts`, () => {
    it('enqueues only unseen or changed studies, sets the cursor in the same call, and forgets old entries', async () => {
      let now = 1_000;
      const store = await engine.open(() => now);
      expect(await store.enqueueUnseen('qido', [{ ref: ref('1.1'), fingerprint: 'a' }, { ref: ref('1.2'), fingerprint: 'a' }], { name: 'qido.until', value: '10' })).toEqual([ref('1.1'), ref('1.2')]);
      expect(await store.getCursor('qido.until')).toBe('10');
      now = 2_000;
      expect(await store.enqueueUnseen('qido', [{ ref: ref('1.1'), fingerprint: 'a' }, { ref: ref('1.2'), fingerprint: 'b' }, { ref: ref('1.2'), fingerprint: 'b' }])).toEqual([ref('1.2')]);
      expect(await store.enqueueUnseen('other', [{ ref: ref('1.1'), fingerprint: 'a' }])).toEqual([ref('1.1')]);
      expect((await store.jobs()).map((j) => j.studyInstanceUID).sort()).toEqual(['1.1', '1.2']);
      expect(await store.pruneSeen('qido', 1_500)).toBe(0);
      expect(await store.pruneSeen('qido', 2_001)).toBe(2);
      expect(await store.enqueueUnseen('qido', [{ ref: ref('1.1'), fingerprint: 'a' }])).toEqual([ref('1.1')]);
      await store.close();
    });

    it('the audit log keeps every entry in order and refuses changes and deletions', async () => {
      let now = 5;
      const store = await engine.open(() => now++);
      const entry = { target: 'pacs', action: 'store-sr', studyInstanceUID: '1.1', resource: 'SR 2.25.1', resultKey: 'k', modelVersion: 'm@1', outcome: 'ok' as const };
      await store.audit(entry);
      await store.audit({ ...entry, target: 'fhir', action: 'transaction', outcome: 'error', detail: 'UPSTREAM_UNAVAILABLE 503' });
      await store.audit({ ...entry, studyInstanceUID: '1.2' });
      const log = await store.auditLog({ studyInstanceUID: '1.1' });
      expect(log.map((e) => [e.target, e.outcome, e.detail])).toEqual([['pacs', 'ok', undefined], ['fhir', 'error', 'UPSTREAM_UNAVAILABLE 503']]);
      expect(log[0]!.at).toBeLessThan(log[1]!.at);
      expect(await store.auditLog()).toHaveLength(3);
      await expect(engine.exec(store, `UPDATE audit SET outcome = 'ok'`)).rejects.toThrow(/append-only/);
      await expect(engine.exec(store, `DELETE FROM audit`)).rejects.toThrow(/append-only/);
      expect(await store.auditLog()).toHaveLength(3);
      await store.close();
    });

    it('counts jobs by state and lists them newest first, by state', async () => {
      let now = 100;
      const store = await engine.open(() => now++);
      await store.enqueue([ref('1.1'), ref('1.2'), ref('1.3')]);
      await store.claim(Number.MAX_SAFE_INTEGER, undefined, '1.2');
      await store.fail('1.2', 'DICOM_UNREADABLE', 'not DICOM', undefined);
      await store.claim(Number.MAX_SAFE_INTEGER, undefined, '1.3');
      expect(await store.countByState()).toEqual({ queued: 1, running: 1, done: 0, failed: 1, skipped: 0 });
      expect((await store.jobs()).map((j) => j.studyInstanceUID)).toEqual(['1.3', '1.2', '1.1']);
      expect((await store.jobs({ state: 'failed' })).map((j) => [j.studyInstanceUID, j.errorCode])).toEqual([['1.2', 'DICOM_UNREADABLE']]);
      // Pages, as the worklist's: the same order, a count for the filter.
      expect((await store.jobs({ limit: 2 })).map((j) => j.studyInstanceUID)).toEqual(['1.3', '1.2']);
      expect((await store.jobs({ limit: 2, offset: 2 })).map((j) => j.studyInstanceUID)).toEqual(['1.1']);
      expect(await store.countJobs()).toBe(3);
      expect(await store.countJobs({ state: 'queued' })).toBe(1);
      await store.close();
    });

    it('keeps a result\'s selectedBy (the rule and attributes that chose its image) as written: an optional field, no migration', async () => {
      const store = await engine.open(() => 1_000);
      await store.enqueue([ref('1.1')]);
      const selectedBy = { rule: 'chest radiograph named in a description', attributes: ['Modality', 'ProtocolName'] };
      await store.saveResult({ resultKey: 'k1', studyInstanceUID: '1.1', createdAt: 1, priority: 'stat', selectedBy } as never);
      expect((await store.latestResult('1.1'))?.selectedBy).toEqual(selectedBy);
      expect((await store.study('1.1'))?.result?.selectedBy).toEqual(selectedBy);
      await store.close();
    });

    it('prunes ended jobs older than the cut; running and queued ones, results and the audit log stay', async () => {
      let now = 1_000;
      const store = await engine.open(() => now);
      await store.enqueue([ref('1.1'), ref('1.2'), ref('1.3'), ref('1.4')]);
      await store.claim(now, undefined, '1.1');
      await store.saveResult({ resultKey: 'k1', studyInstanceUID: '1.1', createdAt: 1, priority: 'stat' } as never);
      await store.finish('1.1', 'done', undefined);
      await store.claim(now, undefined, '1.2');
      await store.fail('1.2', 'NOT_FOUND', 'gone', undefined);
      await store.claim(now, undefined, '1.3');
      await store.audit({ target: 'pacs', action: 'store-sr', studyInstanceUID: '1.1', resource: 'SR', resultKey: 'k1', modelVersion: 'm@1', outcome: 'ok' });
      now = 5_000;
      expect(await store.pruneJobs(1_001)).toBe(2);
      expect((await store.jobs()).map((j) => j.studyInstanceUID).sort()).toEqual(['1.3', '1.4']);
      expect((await store.latestResult('1.1'))?.resultKey).toBe('k1');
      expect(await store.auditLog()).toHaveLength(1);
      expect(await store.pruneJobs(1_001)).toBe(0);
      await store.close();
    });

    it('finish and fail with an owner only while that owner holds the lease (a run taken over by another worker does not decide)', async () => {
      let now = 1_000;
      const store = await engine.open(() => now);
      await store.enqueue([ref('1.1')]);
      await store.claim(now, { owner: 'a', leaseMs: 100 });
      now = 1_200;
      expect(await store.claim(now, { owner: 'b', leaseMs: 1_000 })).toMatchObject({ leaseOwner: 'b', attempts: 2 });
      expect(await store.finish('1.1', 'done', undefined, undefined, 'a')).toBe(false);
      expect(await store.fail('1.1', 'INTERNAL', 'x', undefined, 'a')).toBe(false);
      expect(await store.get('1.1')).toMatchObject({ state: 'running', leaseOwner: 'b' });
      expect(await store.finish('1.1', 'done', undefined, { total: 5 }, 'b')).toBe(true);
      expect(await store.get('1.1')).toMatchObject({ state: 'done', timings: { total: 5 } });
      await store.close();
    });

    it('a StudyInstanceUID that is not a DICOM UID becomes one failed INVALID_UID job per distinct value, never claimed or requeued', async () => {
      const now = 1_000;
      const store = await engine.open(() => now);
      const hostile = ['../../etc/passwd', '<script>alert(1)</script>', '1.2.3.04', 'x'.repeat(500)];
      await store.enqueue([...hostile.map((uid) => ({ studyInstanceUID: uid, source: 'orthanc-changes' as const })), ref('1.2.3')], { name: 'c', value: '5' });
      await store.enqueue([{ studyInstanceUID: hostile[0]!, source: 'webhook' }]); // the same value again: still one row
      const jobs = await store.jobs();
      expect(jobs).toHaveLength(5);
      const rejected = jobs.filter((j) => j.errorCode === 'INVALID_UID');
      expect(rejected).toHaveLength(4);
      for (const j of rejected) {
        expect(j.studyInstanceUID).toMatch(/^invalid:[0-9a-f]{16}$/);
        expect(j.state).toBe('failed');
        expect(j.reason!.length).toBeLessThan(200);
      }
      expect(rejected.map((j) => j.reason).join('\n')).toContain(JSON.stringify('<script>alert(1)</script>'));
      expect(await store.getCursor('c')).toBe('5');
      expect((await store.claim(Number.MAX_SAFE_INTEGER))?.studyInstanceUID).toBe('1.2.3');
      expect(await store.claim(Number.MAX_SAFE_INTEGER)).toBeUndefined();
      expect((await store.requeue(rejected[0]!.studyInstanceUID))?.state).toBe('failed');
      expect(await store.claim(Number.MAX_SAFE_INTEGER)).toBeUndefined();
      await store.close();
    });

    it('a study the watched folder ingested is not re-run by another source (our own SR announced by the PACS)', async () => {
      let now = 1_000;
      const store = await engine.open(() => now);
      await store.enqueue([{ studyInstanceUID: '1.2.9', source: 'folder' }]);
      await store.claim(now);
      await store.finish('1.2.9', 'done', undefined);
      now = 2_000;
      await store.enqueue([{ studyInstanceUID: '1.2.9', source: 'orthanc-changes' }]);
      expect(await store.get('1.2.9')).toMatchObject({ source: 'folder', state: 'done' });
      // The folder itself may bring it back (a re-drop with changed files).
      await store.enqueue([{ studyInstanceUID: '1.2.9', source: 'folder' }]);
      expect((await store.get('1.2.9'))?.state).toBe('queued');
      await store.close();
    });
  });
}
