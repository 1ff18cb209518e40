import { TriageError } from '../../domain/errors.ts';

export interface BreakerOptions {
  /** Consecutive retryable failures that open the circuit. */
  failureThreshold: number;
  /** How long it stays open before one trial call is let through (half-open). */
  openMs: number;
  now?: () => number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 5, openMs: 30_000 };

/**
 * A circuit breaker per upstream ("pacs", "fhir"): after `failureThreshold` consecutive
 * retryable failures (5xx, 429, timeouts, refused connections) calls fail at once with
 * UPSTREAM_UNAVAILABLE for `openMs`, so a dead server costs a worker no timeout; then one trial
 * call decides whether it closes again. Terminal answers (4xx) are the upstream working: they
 * reset the count.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;
  private lastError: string | undefined;
  private readonly now: () => number;
  /** Called whenever the state changes (metrics, logs). */
  onChange: ((state: BreakerState) => void) | undefined;

  constructor(
    readonly name: string,
    private readonly options: BreakerOptions = DEFAULT_BREAKER,
  ) {
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.options.openMs ? 'half-open' : 'open';
  }

  /** Milliseconds until a trial call is allowed (0 when closed or half-open). */
  get retryInMs(): number {
    return this.openedAt === undefined ? 0 : Math.max(0, this.options.openMs - (this.now() - this.openedAt));
  }

  /** Throws UPSTREAM_UNAVAILABLE while open; otherwise lets the call through (one trial when half-open). */
  before(): void {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.trialInFlight)) {
      throw new TriageError(
        'UPSTREAM_UNAVAILABLE',
        `${this.name}: circuit open after ${this.failures} consecutive failures${this.lastError ? ` (last: ${this.lastError})` : ''}; next try in ${Math.ceil(this.retryInMs / 1000)} s`,
        { where: this.name, retryAfterS: Math.max(1, Math.ceil(this.retryInMs / 1000)) },
      );
    }
    if (state === 'half-open') this.trialInFlight = true;
  }

  /** How the call ended: a retryable failure counts towards opening; anything else closes. */
  after(retryableFailure: boolean, detail?: string): void {
    this.trialInFlight = false;
    if (retryableFailure) {
      this.lastError = detail?.slice(0, 200);
      this.failure();
    }
    else this.success();
  }

  async call<T>(run: () => Promise<T>): Promise<T> {
    this.before();
    try {
      const value = await run();
      this.after(false);
      return value;
    } catch (err) {
      this.after(err instanceof TriageError && err.retryable, (err as Error).message);
      throw err;
    }
  }

  private success(): void {
    const was = this.state;
    this.failures = 0;
    this.openedAt = undefined;
    if (was !== 'closed') this.onChange?.('closed');
  }

  private failure(): void {
    this.failures++;
    if (this.state === 'half-open' || this.failures >= this.options.failureThreshold) {
      this.openedAt = this.now();
      this.onChange?.('open');
    }
  }
}
