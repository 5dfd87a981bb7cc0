import { describe, expect, it } from 'vitest';
import {
  AWS_SERVICES,
  burstOf,
  DEFAULT_RATE_LIMITS,
  formatRateLimits,
  parseRateLimits,
  RateLimiters,
  TokenBucket,
} from './rate-limit.ts';

describe('TokenBucket (fake clock)', () => {
  it('lets a burst through at once, then spaces requests at the rate', () => {
    const b = new TokenBucket(5, 5, 0);
    expect([0, 0, 0, 0, 0].map((t) => b.take(t))).toEqual([0, 0, 0, 0, 0]);
    // Reserved in order: the 6th waits one interval, the 7th two.
    expect(b.take(0)).toBe(200);
    expect(b.take(0)).toBe(400);
    expect(b.take(0)).toBe(600);
  });

  it('refills with time, never beyond the burst', () => {
    const b = new TokenBucket(2, 2, 0);
    expect(b.take(0)).toBe(0);
    expect(b.take(0)).toBe(0);
    expect(b.take(250)).toBe(250); // half a token back; the other half in 250 ms
    // An idle minute refills only up to the burst.
    expect(b.take(60_000)).toBe(0);
    expect(b.take(60_000)).toBe(0);
    expect(b.take(60_000)).toBe(500);
  });

  it('a waiter that goes at its reserved time never exceeds rate·t + burst in any window', () => {
    const rate = 3;
    const burst = 3;
    const b = new TokenBucket(rate, burst, 0);
    // 100 requests arriving at random moments over 10 s; each goes when its reservation says.
    let seed = 7;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const arrivals = Array.from({ length: 100 }, () => Math.floor(rand() * 10_000)).sort((a, c) => a - c);
    const sent = arrivals.map((t) => t + b.take(t));
    for (const start of sent) {
      const inWindow = sent.filter((t) => t >= start && t < start + 1000).length;
      expect(inWindow).toBeLessThanOrEqual(rate + burst);
    }
    // And the long-run rate holds: the last goes no earlier than (n − burst) / rate seconds in.
    expect(sent.at(-1)).toBeGreaterThanOrEqual(((100 - burst) / rate) * 1000 - 1);
  });

  it('does not refill when the clock steps back', () => {
    const b = new TokenBucket(1, 1, 1000);
    expect(b.take(1000)).toBe(0);
    expect(b.take(0)).toBe(1000);
  });

  it('refuses a zero rate or burst (zero means no bucket at all)', () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow();
    expect(() => new TokenBucket(1, 0, 0)).toThrow();
  });
});

describe('RateLimiters', () => {
  it('one bucket per service and region; IAM, a global service, one for all regions; 0 = unlimited', () => {
    let now = 0;
    const l = new RateLimiters({ ...DEFAULT_RATE_LIMITS, iam: 1, lambda: 1, logs: 0 }, () => now);
    expect(l.reserve('iam', 'eu-west-1')).toBe(0);
    expect(l.reserve('iam', 'us-east-1')).toBe(1000);
    expect(l.reserve('lambda', 'eu-west-1')).toBe(0);
    expect(l.reserve('lambda', 'us-east-1')).toBe(0);
    expect(l.reserve('lambda', 'eu-west-1')).toBe(1000);
    for (let i = 0; i < 100; i++) expect(l.reserve('logs', 'eu-west-1')).toBe(0);
    now = 5_000;
    expect(l.reserve('iam', 'eu-west-1')).toBe(0);
  });

  it('a burst of one second’s worth, at least one request', () => {
    expect(burstOf(5)).toBe(5);
    expect(burstOf(2.5)).toBe(3);
    expect(burstOf(0.2)).toBe(1);
  });
});

describe('parseRateLimits', () => {
  it('overrides the named services, keeps the defaults of the others', () => {
    expect(parseRateLimits('')).toEqual({ limits: DEFAULT_RATE_LIMITS, problems: [] });
    expect(parseRateLimits(' iam=2 , logs=0,secretsmanager=0.5 ')).toEqual({
      limits: { ...DEFAULT_RATE_LIMITS, iam: 2, logs: 0, secretsmanager: 0.5 },
      problems: [],
    });
  });

  it('round-trips its canonical text, and knows every service', () => {
    const text = formatRateLimits(DEFAULT_RATE_LIMITS);
    expect(text).toBe('iam=5,lambda=10,events=10,logs=5,eks=5,secretsmanager=20,tagging=5');
    expect(parseRateLimits(text, { ...DEFAULT_RATE_LIMITS, iam: 99 }).limits).toEqual(DEFAULT_RATE_LIMITS);
    for (const s of AWS_SERVICES) expect(DEFAULT_RATE_LIMITS[s]).toBeGreaterThan(0);
  });

  it('reports every problem', () => {
    expect(parseRateLimits('iam=-1,s3=4,lambda,events=1e3,logs=2,logs=3,eks=20000').problems).toEqual([
      'iam=-1: the rate must be a number of requests per second, 0-10000',
      'unknown service "s3" (one of iam, lambda, events, logs, eks, secretsmanager, tagging)',
      '"lambda" is not service=requests-per-second',
      'events=1e3: the rate must be a number of requests per second, 0-10000',
      'logs is given twice',
      'eks=20000: the rate must be a number of requests per second, 0-10000',
    ]);
  });
});
