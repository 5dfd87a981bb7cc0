import { describe, expect, it } from 'vitest';
import { SyncError } from './errors.ts';
import { later, PROPAGATION_WINDOW_MS, retryWhilePropagating, withinPropagation } from './propagation.ts';

// Pure logic with a fake clock and sleep (no AWS involved): the test bed's propagation switches
// exercise the same code for real in e2e/unkind.
function clock(start: number) {
  let t = start;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

const T0 = Date.parse('2026-12-07T10:00:00Z');
const iso = (t: number) => new Date(t).toISOString();

describe('withinPropagation', () => {
  it('is true for five minutes after a change, and false without one', () => {
    expect(withinPropagation(iso(T0), T0 + 1_000)).toBe(true);
    expect(withinPropagation(iso(T0), T0 + PROPAGATION_WINDOW_MS - 1)).toBe(true);
    expect(withinPropagation(iso(T0), T0 + PROPAGATION_WINDOW_MS)).toBe(false);
    expect(withinPropagation(undefined, T0)).toBe(false);
    expect(withinPropagation('not a time', T0)).toBe(false);
    // A time far in the future (a skewed or forged status) does not hold retries open.
    expect(withinPropagation(iso(T0 + 3600_000), T0)).toBe(false);
  });

  it('later picks the later of two times, either may be missing', () => {
    expect(later(iso(T0), iso(T0 + 1))).toBe(iso(T0 + 1));
    expect(later(undefined, iso(T0))).toBe(iso(T0));
    expect(later(iso(T0), 'junk')).toBe(iso(T0));
    expect(later(undefined, undefined)).toBeUndefined();
  });
});

describe('retryWhilePropagating', () => {
  const denied = () => new SyncError('AccessDenied', 'GetSecretValue was denied: not authorized');

  it('retries a denial soon after an access change until it passes', async () => {
    const c = clock(T0 + 2_000);
    let calls = 0;
    const out = await retryWhilePropagating(
      async () => {
        calls++;
        if (c.now() < T0 + 6_000) throw denied();
        return 'synced';
      },
      { changedAt: () => iso(T0), deadline: T0 + 30_000, now: c.now, sleep: c.sleep },
    );
    expect(out).toBe('synced');
    expect(calls).toBe(4); // waits 1 s, 2 s, 3 s
  });

  it('hands over to Lambda at the deadline: retryable, saying what it waits for', async () => {
    const c = clock(T0 + 2_000);
    const err = await retryWhilePropagating(
      async () => {
        throw denied();
      },
      { changedAt: () => iso(T0), deadline: T0 + 10_000, now: c.now, sleep: c.sleep },
    ).catch((e: unknown) => e as SyncError);
    expect(err).toMatchObject({ reason: 'AccessDenied', retryable: true });
    expect(err.message).toMatch(/IAM role or policy changed \d+s ago .* retrying$/);
  });

  it('long after any change, an AccessDenied is final and says what to check', async () => {
    const c = clock(T0 + PROPAGATION_WINDOW_MS + 1);
    let calls = 0;
    const err = await retryWhilePropagating(
      async () => {
        calls++;
        throw denied();
      },
      { changedAt: () => iso(T0), deadline: c.now() + 30_000, now: c.now, sleep: c.sleep },
    ).catch((e: unknown) => e as SyncError);
    expect(calls).toBe(1);
    expect(err).toMatchObject({ reason: 'AccessDenied', retryable: false });
    expect(err.message).toContain("check the secret's resource policy, its KMS key policy, SCPs");
  });

  it('learns the change time during the run (it comes with the SecretSync)', async () => {
    const c = clock(T0 + 2_000);
    let changed: string | undefined;
    let calls = 0;
    const out = await retryWhilePropagating(
      async () => {
        calls++;
        changed = iso(T0);
        if (calls < 2) throw new SyncError('Unauthorized', 'the API server did not accept the token');
        return 'ok';
      },
      { changedAt: () => changed, deadline: T0 + 30_000, now: c.now, sleep: c.sleep },
    );
    expect(out).toBe('ok');
  });

  it('waits for a 401 before anything says when access changed (the access entry may be new), then hands over', async () => {
    const c = clock(T0);
    let calls = 0;
    const err = await retryWhilePropagating(
      async () => {
        calls++;
        throw new SyncError('Unauthorized', 'the API server did not accept the token');
      },
      { changedAt: () => undefined, deadline: T0 + 10_000, now: c.now, sleep: c.sleep },
    ).catch((e: unknown) => e as SyncError);
    expect(calls).toBeGreaterThan(2);
    expect(err).toMatchObject({ reason: 'Unauthorized', retryable: true });
    expect(err.message).toContain("the function's access entry may be new");
    // An AccessDenied with no known change is final at once.
    const denial = await retryWhilePropagating(
      async () => {
        throw denied();
      },
      { changedAt: () => undefined, deadline: T0 + 10_000, now: c.now, sleep: c.sleep },
    ).catch((e: unknown) => e as SyncError);
    expect(denial).toMatchObject({ reason: 'AccessDenied', retryable: false });
  });

  it('passes every other failure through at once', async () => {
    const c = clock(T0);
    const err = new SyncError('InvalidKey', 'bad key');
    await expect(
      retryWhilePropagating(
        async () => {
          throw err;
        },
        { changedAt: () => iso(T0), deadline: T0 + 30_000, now: c.now, sleep: c.sleep },
      ),
    ).rejects.toBe(err);
  });
});
