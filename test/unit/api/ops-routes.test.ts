import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { Metrics } from '../../../src/observability/metrics.ts';
import { openSqliteStore } from '../../../src/state/sqlite/index.ts';

describe('API: /metrics, /readyz, retry', () => {
  const store = openSqliteStore(':memory:');
  const metrics = new Metrics(store);
  let ready = true;
  let base = '';
  let server: ReturnType<ReturnType<typeof createApp>['listen']>;
  beforeAll(async () => {
    await store.enqueue([{ studyInstanceUID: '1.2.3', source: 'cli' }, { studyInstanceUID: '1.2.4', source: 'cli' }]);
    const job = (await store.claim(Date.now()))!;
    await store.fail(job.studyInstanceUID, 'UPSTREAM_UNAVAILABLE', 'fhir answered 503', undefined);
    metrics.setProvider('cpu', 'm@1');
    metrics.observeTimings({ infer: 12, 'write.pacs': 3 });
    metrics.upstreamError('fhir', 503);
    const app = createApp({
      store,
      shadow: false,
      status: () => ({ provider: 'cpu', model: 'm@1' }),
      metrics: { contentType: metrics.contentType, text: () => metrics.text() },
      ready: async () => ({ ready, checks: { pacs: { ok: true }, fhir: ready ? { ok: true } : { ok: false, detail: 'UPSTREAM_UNAVAILABLE: down' } } }),
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await store.close();
  });

  it('/metrics exposes jobs by state, stage latency, upstream errors and the execution provider', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('pacs_triage_jobs{state="failed"} 1');
    expect(text).toContain('pacs_triage_jobs{state="queued"} 1');
    expect(text).toMatch(/pacs_triage_stage_seconds_count\{stage="infer"\} 1/);
    expect(text).toContain('pacs_triage_upstream_errors_total{target="fhir",status="503"} 1');
    expect(text).toContain('pacs_triage_execution_provider{provider="cpu",model="m@1"} 1');
  });

  it('/readyz is 200 when every check passes, 503 with the failing check otherwise', async () => {
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    ready = false;
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'not ready', checks: { fhir: { ok: false, detail: 'UPSTREAM_UNAVAILABLE: down' } } });
    ready = true;
  });

  it('POST /api/studies/:uid/retry queues a failed job (202) and refuses a running one (409)', async () => {
    const failed = (await store.jobs({ state: 'failed' }))[0]!.studyInstanceUID;
    const res = await fetch(`${base}/api/studies/${failed}/retry`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect(await store.get(failed)).toMatchObject({ state: 'queued', attempts: 0 });
    const running = (await store.claim(Date.now()))!.studyInstanceUID;
    expect((await fetch(`${base}/api/studies/${running}/retry`, { method: 'POST' })).status).toBe(409);
  });
});
