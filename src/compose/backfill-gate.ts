/**
 * Caps the backfill jobs `serve` runs at once (worker.backfillConcurrency): a worker about to
 * claim takes a backfill slot if one is free and then claims in the usual order; without a free
 * slot it claims live studies and retries only. Taking the slot before the claim (and giving it
 * back when the claim brought something else) keeps the cap exact while several workers claim
 * at the same time.
 */
import type { Job } from '../domain/records.ts';
import type { ClaimOrder } from '../state/ports.ts';

export type Claim = (order: ClaimOrder) => Promise<Job | undefined>;

export interface BackfillGate {
  /** Claims with `order` while a backfill slot is free, `urgent-only` otherwise. */
  claim(order: () => ClaimOrder): Promise<Job | undefined>;
  /** Runs a claimed job, giving its slot back when it was backfill. */
  run<O>(job: Job, work: () => Promise<O>): Promise<O>;
  /** Backfill jobs claimed and not finished. */
  readonly running: number;
}

export function backfillGate(limit: number, claim: Claim): BackfillGate {
  let running = 0;
  return {
    get running() {
      return running;
    },
    async claim(order) {
      if (running >= limit) return claim('urgent-only');
      running++;
      let job: Job | undefined;
      try {
        job = await claim(order());
      } finally {
        if (job?.class !== 'backfill') running--;
      }
      return job;
    },
    async run(job, work) {
      try {
        return await work();
      } finally {
        if (job.class === 'backfill') running--;
      }
    },
  };
}

/** worker.backfillConcurrency, or half of worker.concurrency rounded up. */
export function backfillLimit(worker: { concurrency: number; backfillConcurrency?: number | undefined }): number {
  return worker.backfillConcurrency ?? Math.ceil(worker.concurrency / 2);
}
