import { afterEach, describe, expect, it, vi } from 'vitest';
import { Ticker } from '../../../src/compose/serve.ts';
import { loadConfig } from '../../../src/config/load.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('Ticker (serve\'s schedule on plain timers)', () => {
  it('runs at start and then every interval, of any length (no cron: 90 s is 90 s)', async () => {
    vi.useFakeTimers();
    const runs: number[] = [];
    const ticker = new Ticker(90_000, async () => {
      runs.push(Date.now());
    });
    const start = Date.now();
    ticker.start();
    await vi.advanceTimersByTimeAsync(90_000 * 3);
    await ticker.stop();
    expect(runs.map((t) => t - start)).toEqual([0, 90_000, 180_000, 270_000]);
  });

  it('never runs twice at once: a tick during a slow run is skipped, and stop waits for the run in progress', async () => {
    vi.useFakeTimers();
    let active = 0;
    let most = 0;
    let runs = 0;
    const ticker = new Ticker(1_000, async () => {
      active++;
      most = Math.max(most, active);
      runs++;
      await new Promise((r) => setTimeout(r, 2_500));
      active--;
    });
    ticker.start();
    await vi.advanceTimersByTimeAsync(5_100);
    expect(most).toBe(1);
    expect(runs).toBe(2); // t=0 (until 2.5 s) and t=3 s (until 5.5 s); the ticks at 1, 2, 4 and 5 s found it busy
    const stopped = ticker.stop();
    expect(ticker.busy).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    await stopped;
    expect(active).toBe(0);
  });

  it('ingest.pollIntervalS takes more than 59 s (the node-cron limit is gone)', () => {
    expect(loadConfig({ env: {}, overrides: { ingest: { pollIntervalS: 300 } } }).ingest.pollIntervalS).toBe(300);
  });
});
