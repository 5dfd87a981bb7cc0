import { describe, expect, it } from 'vitest';
import { CLUSTER_UNAVAILABLE_AFTER_MS, ClusterWatch } from './cluster-state.ts';

const GOOD = { endpoint: 'https://k8s.example', certificateAuthorityData: 'Q0E=', authenticationMode: 'API' };
const T0 = Date.parse('2025-01-01T00:00:00Z');

/** A watch on a clock the test moves. */
function watch(unavailableAfterMs?: number) {
  let now = T0;
  const w = new ClusterWatch({ now: () => now, ...(unavailableAfterMs ? { unavailableAfterMs } : {}) });
  return { w, advance: (ms: number) => (now += ms) };
}

describe('ClusterWatch', () => {
  it('defaults to a five-minute window', () => {
    expect(CLUSTER_UNAVAILABLE_AFTER_MS).toBe(5 * 60_000);
  });

  it('before any answer: nothing known, not (yet) unavailable', () => {
    const { w } = watch();
    expect(w.state()).toEqual({});
    expect(w.unavailable()).toBe(false);
  });

  it('a first failure before any good answer: unavailable at once', () => {
    const { w } = watch();
    expect(w.failed('AccessDeniedException: no')).toEqual({ unavailable: true, failingSince: new Date(T0) });
    expect(w.state()).toEqual({
      failingSince: new Date(T0).toISOString(),
      error: 'AccessDeniedException: no',
    });
  });

  it('failures after a good answer keep its values until failures have lasted the window', () => {
    const { w, advance } = watch();
    w.succeeded(GOOD);
    advance(10_000);
    const since = new Date(T0 + 10_000);
    // NotFound is a failure like any other: the window applies.
    expect(w.failed('ResourceNotFoundException: gone')).toEqual({ unavailable: false, failingSince: since });
    advance(CLUSTER_UNAVAILABLE_AFTER_MS - 1);
    expect(w.failed('503')).toEqual({ unavailable: false, failingSince: since });
    expect(w.state()).toEqual({ ...GOOD, failingSince: since.toISOString() });

    advance(1);
    expect(w.failed('503')).toEqual({ unavailable: true, failingSince: since });
    expect(w.state()).toEqual({ ...GOOD, failingSince: since.toISOString(), error: '503' });
    expect(w.secondsSinceGood()).toBe(10 + CLUSTER_UNAVAILABLE_AFTER_MS / 1000);
  });

  it('measures the window between answers, not at read time: one slow failure is not many', () => {
    const { w, advance } = watch(60_000);
    w.succeeded(GOOD);
    w.failed('503');
    advance(10 * 60_000);
    expect(w.unavailable()).toBe(false);
    expect(w.state().error).toBeUndefined();
  });

  it('a good answer clears the failure and takes the new values', () => {
    const { w, advance } = watch(60_000);
    w.succeeded(GOOD);
    advance(1_000);
    w.failed('503');
    advance(60_000);
    expect(w.failed('503').unavailable).toBe(true);
    advance(5_000);
    const moved = { ...GOOD, endpoint: 'https://moved.example' };
    expect(w.succeeded(moved)).toBe(65_000);
    expect(w.unavailable()).toBe(false);
    expect(w.state()).toEqual(moved);
    expect(w.secondsSinceGood()).toBe(0);

    // The next failure starts a new window.
    advance(1_000);
    expect(w.failed('throttled')).toEqual({ unavailable: false, failingSince: new Date(T0 + 67_000) });
  });

  it('recovery from never having had a good answer', () => {
    const { w, advance } = watch();
    w.failed('no credentials');
    advance(3_000);
    expect(w.secondsSinceGood()).toBe(3);
    expect(w.succeeded(GOOD)).toBe(3_000);
    expect(w.state()).toEqual(GOOD);
  });
});
