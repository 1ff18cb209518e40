/**
 * Collects single requests into batches of up to `maxBatch` items, waiting at most `maxWaitMs`
 * after the first item of a batch arrives. One batch runs at a time, so a slow model applies
 * backpressure to its callers instead of piling up concurrent runs.
 */
export class DynamicBatcher<I, O> {
  private pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch: number,
    private readonly maxWaitMs: number,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch) {
        this.flush();
      } else if (this.timer === undefined) {
        this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
      }
    });
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.running = this.running.then(async () => {
        try {
          const out = await this.run(batch.map((b) => b.item));
          if (out.length !== batch.length) throw new Error(`batch runner returned ${out.length} results for ${batch.length} items`);
          batch.forEach((b, i) => b.resolve(out[i] as O));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      });
    }
  }
}
