// Client-side rate limits on the controller's AWS calls, one token bucket per service (and region,
// where AWS counts per region). Pure: the clock is passed in; the SDK middleware that waits lives in
// clients.ts.

/** The services the controller calls, as named in --aws-rate-limits. */
export const AWS_SERVICES = ['iam', 'lambda', 'events', 'logs', 'eks', 'secretsmanager', 'tagging'] as const;
export type AwsService = (typeof AWS_SERVICES)[number];

/** Requests per second per service; 0 = unlimited. */
export type RateLimits = Record<AwsService, number>;

/**
 * Defaults, well below what AWS throttles at, because the account's budget is shared with every
 * other tool in it (Terraform, CloudFormation, CI) and bursts are what AWS throttles first:
 * - iam 5: IAM is global (one budget for the account, all regions), its control plane is
 *   eventually consistent, and AWS documents no rate but throttles write bursts early. A resync of
 *   300 SecretSyncs (the default EventBridge rule quota) reads ~3 IAM entities each: 900 calls,
 *   3 minutes at 5/s, well inside the 10-minute resync period.
 * - lambda 10: Lambda's documented control-plane quota is 15/s per region (excluding Invoke,
 *   GetFunction, GetPolicy, which the bucket leaves out too: clients.ts); 10 leaves a third for
 *   deployments.
 * - events 10, eks 5: EventBridge and EKS control-plane APIs throttle per account and region at
 *   modest rates (EKS access-entry calls especially); a SecretSync needs few of them per pass.
 * - logs 5: CloudWatch Logs documents 5/s per account and region for CreateLogGroup,
 *   DescribeLogGroups, PutRetentionPolicy and DeleteLogGroup.
 * - secretsmanager 20: DescribeSecret's quota is in the thousands per second, but it is shared with
 *   every application reading secrets; the controller needs one call per pass.
 * - tagging 5: the Resource Groups Tagging API (GetResources, the inventory's one listing of
 *   functions, rules and log groups by our tag) throttles per account and region at low single
 *   digits per second; the inventory needs N/100 calls per kind per period.
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  iam: 5,
  lambda: 10,
  events: 10,
  logs: 5,
  eks: 5,
  secretsmanager: 20,
  tagging: 5,
};

/** The burst a bucket holds: one second's worth, at least one request. */
export const burstOf = (rate: number): number => Math.max(1, Math.ceil(rate));

/**
 * A token bucket, reserving as Go's rate.Limiter does: each `take` spends a token now, possibly going
 * into debt, and returns how long the caller must wait for it — so waiters are served in order and a
 * burst is smoothed to exactly `rate` per second after the first `burst` requests.
 */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #last: number;

  constructor(rate: number, burst: number, nowMs: number) {
    if (!(rate > 0) || !(burst >= 1)) throw new Error(`token bucket needs rate > 0, burst ≥ 1`);
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#last = nowMs;
  }

  /** Takes one token; returns the milliseconds to wait before using it (0: go now). */
  take(nowMs: number): number {
    const now = Math.max(nowMs, this.#last); // a clock that steps back refills nothing
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.rate);
  }
}

/**
 * The buckets of one controller process. AWS counts requests per account and region, so each
 * regional service gets one bucket per region; IAM is a global service (one endpoint, one budget
 * for the whole account), so its bucket is shared by every region's IAM client. (The controller
 * already sends every EKS call to the cluster's region.)
 */
export class RateLimiters {
  readonly #limits: RateLimits;
  readonly #now: () => number;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(limits: RateLimits, now: () => number = () => performance.now()) {
    this.#limits = limits;
    this.#now = now;
  }

  /** Milliseconds the next request to `service` in `region` must wait; 0 when unlimited. */
  reserve(service: AwsService, region: string): number {
    const rate = this.#limits[service];
    if (!(rate > 0)) return 0;
    const key = service === 'iam' ? service : `${service}/${region}`;
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(rate, burstOf(rate), this.#now());
      this.#buckets.set(key, bucket);
    }
    return bucket.take(this.#now());
  }
}

/**
 * Parses "iam=5,lambda=10" (requests per second, decimals allowed, 0 = unlimited) over the
 * defaults: a service not named keeps its default, so limiting one never lifts the others. "" keeps
 * every default. Returns every problem found, for the caller to report at once.
 */
export function parseRateLimits(
  text: string,
  defaults: RateLimits = DEFAULT_RATE_LIMITS,
): { limits: RateLimits; problems: string[] } {
  const limits = { ...defaults };
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = /^([a-z0-9]+)\s*=\s*(\S+)$/.exec(entry);
    if (!m) {
      problems.push(`"${entry}" is not service=requests-per-second`);
      continue;
    }
    const [, service, value] = m as unknown as [string, string, string];
    if (!(AWS_SERVICES as readonly string[]).includes(service)) {
      problems.push(`unknown service "${service}" (one of ${AWS_SERVICES.join(', ')})`);
      continue;
    }
    if (seen.has(service)) problems.push(`${service} is given twice`);
    seen.add(service);
    const rate = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isFinite(rate) || rate > 10_000) {
      problems.push(`${service}=${value}: the rate must be a number of requests per second, 0-10000`);
      continue;
    }
    limits[service as AwsService] = rate;
  }
  return { limits, problems };
}

/** The canonical text of a set of limits, e.g. for the start-up log line. */
export const formatRateLimits = (limits: RateLimits): string =>
  AWS_SERVICES.map((s) => `${s}=${limits[s]}`).join(',');
