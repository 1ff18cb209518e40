/** Per-stage wall time of one job, in ms (one decimal), summed when a stage runs twice. */
export type Timed = <T>(stage: string, run: () => Promise<T>) => Promise<T>;

export function stageTimer(timings: Record<string, number>): Timed {
  return async (stage, run) => {
    const start = performance.now();
    try {
      return await run();
    } finally {
      timings[stage] = (timings[stage] ?? 0) + Math.round((performance.now() - start) * 10) / 10;
    }
  };
}
