// The cluster as eks:DescribeCluster last answered it. EKS's control-plane API blips (5xx,
// throttling, a credential refresh), and the endpoint, CA and authentication mode almost never
// change, so a failed answer keeps the last good ones in use. The cluster counts as unavailable only
// when there never was a good answer, or when nothing but failures has come back for a whole window:
// one failed call must not turn every SecretSync ClusterUnavailable and back.

import type { ClusterState } from './deps.ts';

/** How long DescribeCluster may keep failing before SecretSyncs report ClusterUnavailable. */
export const CLUSTER_UNAVAILABLE_AFTER_MS = 5 * 60_000;

/** A good DescribeCluster answer: what the functions and the access-entry check need. */
export interface ClusterAnswer {
  endpoint?: string;
  certificateAuthorityData?: string;
  authenticationMode: string;
}

export class ClusterWatch {
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #startedAt: number;
  #good: ClusterAnswer | undefined;
  #lastGoodAt: number | undefined;
  #failingSince: number | undefined;
  #lastFailureAt: number | undefined;
  #lastError: string | undefined;

  constructor(opts: { unavailableAfterMs?: number; now?: () => number } = {}) {
    this.#windowMs = opts.unavailableAfterMs ?? CLUSTER_UNAVAILABLE_AFTER_MS;
    this.#now = opts.now ?? Date.now;
    this.#startedAt = this.#now();
  }

  /** Records a good answer; returns how long DescribeCluster had been failing before it (0 if not). */
  succeeded(answer: ClusterAnswer): number {
    const now = this.#now();
    const failedForMs = this.#failingSince === undefined ? 0 : now - this.#failingSince;
    this.#good = { ...answer };
    this.#lastGoodAt = now;
    this.#failingSince = undefined;
    this.#lastFailureAt = undefined;
    this.#lastError = undefined;
    return failedForMs;
  }

  /** Records a failed answer (any error: NotFound and AccessDenied too). */
  failed(error: string): { unavailable: boolean; failingSince: Date } {
    const now = this.#now();
    this.#failingSince ??= now;
    this.#lastFailureAt = now;
    this.#lastError = error;
    return { unavailable: this.unavailable(), failingSince: new Date(this.#failingSince) };
  }

  /**
   * Never a good answer, or failures observed across the whole window. Measured between answers,
   * not against the clock at read time: a slow check never makes one failure look like many.
   */
  unavailable(): boolean {
    if (this.#failingSince === undefined || this.#lastFailureAt === undefined) return false;
    return this.#good === undefined || this.#lastFailureAt - this.#failingSince >= this.#windowMs;
  }

  /** Seconds without a good answer: since the last one, or since start before the first. */
  secondsSinceGood(): number {
    return (this.#now() - (this.#lastGoodAt ?? this.#startedAt)) / 1000;
  }

  /** What a pass reads: the last good values, and `error` only while the cluster is unavailable. */
  state(): ClusterState {
    return {
      ...this.#good,
      ...(this.#failingSince !== undefined
        ? { failingSince: new Date(this.#failingSince).toISOString() }
        : {}),
      ...(this.unavailable() ? { error: this.#lastError } : {}),
    };
  }
}
