/**
 * A work queue keyed by namespace/name, in the manner of client-go's: a key is queued at most once;
 * a key added while it is being processed is processed again afterwards (never twice at once);
 * failures back off per key, exponentially with jitter; a pass cancels the key's pending delayed
 * add (every pass schedules its own); bounded concurrency; graceful drain.
 *
 * Two priorities, as controller-runtime's priority queue: `low` for passes the inventory asks
 * for (drift, deep checks, backstop resyncs of SecretSyncs already Ready), `high` for everything
 * else. A new or changed SecretSync therefore never waits behind a pass over
 * a thousand settled ones; a low key added again as high moves ahead.
 */
export interface QueueOptions {
  concurrency: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** 0..1: each delay is drawn uniformly from [d·(1−jitter), d]. */
  jitter?: number;
  random?: () => number;
}

export type Priority = 'high' | 'low';

export type ProcessResult = { requeueAfterMs?: number } | undefined;
export type Processor = (key: string) => Promise<ProcessResult>;

/** Thrown by a processor to back off at least this long (throttling with a retry-after hint). */
export class BackoffHint extends Error {
  readonly minDelayMs: number;
  constructor(message: string, minDelayMs: number) {
    super(message);
    this.minDelayMs = minDelayMs;
  }
}

export class WorkQueue {
  readonly #opts: Required<QueueOptions>;
  readonly #high: string[] = [];
  readonly #low: string[] = [];
  /** Queued keys and the list each waits in. */
  readonly #queued = new Map<string, Priority>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #process: Processor | undefined;
  #active = 0;
  #stopped = false;
  #drained: (() => void) | undefined;
  onError: (key: string, err: unknown, delayMs: number) => void = () => {};
  onProcessed: (key: string, ms: number, ok: boolean) => void = () => {};

  constructor(opts: QueueOptions) {
    this.#opts = {
      baseDelayMs: 1000,
      maxDelayMs: 5 * 60_000,
      jitter: 0.5,
      random: Math.random,
      ...opts,
    };
  }

  get depth(): number {
    return this.#high.length + this.#low.length;
  }

  get inFlight(): number {
    return this.#active;
  }

  start(process: Processor): void {
    this.#process = process;
    this.#pump();
  }

  add(key: string, priority: Priority = 'high'): void {
    if (this.#stopped) return;
    if (this.#processing.has(key)) {
      // Processed again afterwards, ahead of low keys: whatever brought it back happened meanwhile.
      this.#dirty.add(key);
      return;
    }
    const queued = this.#queued.get(key);
    if (queued === 'high' || (queued === 'low' && priority === 'low')) return;
    if (queued === 'low') this.#low.splice(this.#low.indexOf(key), 1);
    this.#queued.set(key, priority);
    (priority === 'high' ? this.#high : this.#low).push(key);
    this.#pump();
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /**
   * The delay the next failure of `key` will wait. A minimum (AWS's Retry-After) is jittered upwards,
   * into [min, min·(1+jitter)]: keys throttled together with the same hint must not all return at
   * the same instant and be throttled together again.
   */
  backoffFor(key: string, minDelayMs = 0): number {
    const n = this.#failures.get(key) ?? 0;
    const d = Math.min(this.#opts.maxDelayMs, this.#opts.baseDelayMs * 2 ** n);
    const r = this.#opts.random();
    const jittered = d * (1 - this.#opts.jitter * r);
    const floor = minDelayMs * (1 + this.#opts.jitter * r);
    return Math.round(Math.max(floor, jittered));
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Stops taking work, cancels timers, and resolves when in-flight work is done. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#high.length = 0;
    this.#low.length = 0;
    this.#queued.clear();
    if (this.#active === 0) return;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
  }

  #pump(): void {
    while (!this.#stopped && this.#process && this.#active < this.#opts.concurrency && this.depth > 0) {
      const key = (this.#high.length > 0 ? this.#high : this.#low).shift()!;
      this.#queued.delete(key);
      // A pass supersedes the key's pending delayed add (a backoff retry or a requeue-after): it
      // re-reads the world and schedules its own. Otherwise a failed pass whose status write
      // brings the key straight back (watch event) is retried twice — by the event and the timer.
      const pending = this.#timers.get(key);
      if (pending) {
        clearTimeout(pending.timer);
        this.#timers.delete(key);
      }
      this.#processing.add(key);
      this.#active++;
      void this.#run(key);
    }
  }

  async #run(key: string): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.#process!(key);
      this.#failures.delete(key);
      this.onProcessed(key, performance.now() - started, true);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const delay = this.backoffFor(key, err instanceof BackoffHint ? err.minDelayMs : 0);
      this.#failures.set(key, (this.#failures.get(key) ?? 0) + 1);
      this.onProcessed(key, performance.now() - started, false);
      this.onError(key, err, delay);
      this.addAfter(key, delay);
    } finally {
      this.#processing.delete(key);
      this.#active--;
      if (this.#dirty.delete(key)) this.add(key);
      if (this.#stopped && this.#active === 0) this.#drained?.();
      this.#pump();
    }
  }
}
