import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../../src/adapters/http/breaker.ts';
import { TriageError } from '../../../../src/domain/errors.ts';

describe('CircuitBreaker', () => {
  const transient = (): Promise<never> => Promise.reject(new TriageError('UPSTREAM_UNAVAILABLE', 'down'));
  it('opens after N consecutive transient failures, fails fast while open, lets one trial through after openMs', async () => {
    let now = 0;
    const b = new CircuitBreaker('fhir', { failureThreshold: 3, openMs: 1000, now: () => now });
    const states: string[] = [];
    b.onChange = (s) => states.push(s);
    for (let i = 0; i < 3; i++) await expect(b.call(transient)).rejects.toMatchObject({ message: 'down' });
    expect(b.state).toBe('open');
    let called = 0;
    await expect(b.call(async () => ++called)).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryAfterS: 1, message: /circuit open after 3 consecutive failures \(last: down\)/ });
    expect(called).toBe(0);
    now = 1000;
    expect(b.state).toBe('half-open');
    await expect(b.call(transient)).rejects.toMatchObject({ message: 'down' }); // the trial fails: open again
    expect(b.state).toBe('open');
    now = 2000;
    expect(await b.call(async () => 'ok')).toBe('ok');
    expect(b.state).toBe('closed');
    expect(states).toEqual(['open', 'open', 'closed']);
  });
  it('a terminal answer (4xx) is the upstream working: it resets the count', async () => {
    const b = new CircuitBreaker('pacs', { failureThreshold: 2, openMs: 1000 });
    await expect(b.call(transient)).rejects.toBeDefined();
    await expect(b.call(() => Promise.reject(new TriageError('UPSTREAM_REJECTED', 'bad')))).rejects.toBeDefined();
    await expect(b.call(transient)).rejects.toBeDefined();
    expect(b.state).toBe('closed');
  });
});
