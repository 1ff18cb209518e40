import type { Job } from '../domain/records.ts';

export interface PoolOptions<O> {
  concurrency: number;
  /** Takes the next due job from the store (the store is the queue: nothing is buffered here). */
  claim: () => Promise<Job | undefined>;
  run: (job: Job) => Promise<O>;
  /**
   * How long an idle worker sleeps before looking again when nobody wakes it: the latest a
   * retry that came due is picked up. New work wakes the workers at once (`wake`).
   */
  idleMs: number;
  /**
   * When the earliest waiting job comes due (ms since epoch): an idle worker sleeps until then
   * when that is sooner than idleMs, so a study settling for ingest.stableAgeS starts on time.
   */
  nextDue?: () => Promise<number | undefined>;
  onOutcome?: (outcome: O) => void;
  /** A `run` that throws is a bug (runJob records every failure); the pool keeps going. */
  onError?: (err: unknown) => void;
}

/**
 * The worker pool of `serve`: `concurrency` loops that claim and run jobs independently of
 * ingest. Ingest used to run the queue dry inside its own timer tick, so a study enqueued
 * during a long burst waited for the whole burst, and one enqueued by the webhook waited for the
 * next tick; here workers never wait for ingest and are woken the moment something is enqueued.
 * Backpressure is the store itself: a worker claims only when it is free, so at most
 * `concurrency` studies are in memory whatever the backlog.
 */
export class WorkerPool<O> {
  private stopping = false;
  private running = 0;
  private loops: Promise<void>[] = [];
  private sleepers: (() => void)[] = [];
  /** Set when a wake arrives while every worker is busy: the next one to finish looks again at once. */
  private pending = false;

  constructor(private readonly options: PoolOptions<O>) {}

  /** Jobs being run now. */
  get inFlight(): number {
    return this.running;
  }

  start(): void {
    if (this.loops.length > 0) return;
    this.loops = Array.from({ length: this.options.concurrency }, () => this.loop());
  }

  /** Something was enqueued (or came due): idle workers look now. */
  wake(): void {
    this.pending = true;
    const sleepers = this.sleepers;
    this.sleepers = [];
    for (const resolve of sleepers) resolve();
  }

  /**
   * Claims no more; waits for the jobs in hand up to `timeoutMs`. True when they all finished,
   * false when some were still running (their leases expire and another worker takes them).
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.wake();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const drained = Promise.all(this.loops).then(() => true as const);
    try {
      return await Promise.race([drained, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.pending = false;
      let job: Job | undefined;
      let failed = false;
      try {
        job = await this.options.claim();
      } catch (err) {
        failed = true;
        this.options.onError?.(err);
      }
      if (!job) {
        // After a failed claim (a broken store), the whole nap: a due job would otherwise make
        // the next one come at once, and the one after, a thousand times a second.
        if (!this.pending || failed) await this.sleep(failed);
        continue;
      }
      this.running++;
      try {
        // Not `onOutcome?.(await run(job))`: an absent onOutcome would skip evaluating the run.
        const outcome = await this.options.run(job);
        this.options.onOutcome?.(outcome);
      } catch (err) {
        this.options.onError?.(err);
      } finally {
        this.running--;
      }
    }
  }

  private async napMs(): Promise<number> {
    let due: number | undefined;
    try {
      due = await this.options.nextDue?.();
    } catch (err) {
      this.options.onError?.(err);
    }
    if (due === undefined) return this.options.idleMs;
    // +1: a timer may fire a hair early; the claim compares with <=.
    return Math.max(1, Math.min(this.options.idleMs, due - Date.now() + 1));
  }

  private async sleep(full = false): Promise<void> {
    const ms = full ? this.options.idleMs : await this.napMs();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        // Off the list when the timer fired: an idle pool must not collect one entry per nap.
        this.sleepers = this.sleepers.filter((s) => s !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.push(done);
    });
  }
}
