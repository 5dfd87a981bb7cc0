import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BackoffHint, WorkQueue } from './workqueue.ts';

describe('WorkQueue (pure logic, no I/O)', () => {
  it('processes a key once however often it is added while queued', async () => {
    const q = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    q.add('a/x');
    q.add('a/x');
    q.add('a/y');
    q.add('a/x');
    q.start(async (k) => {
      seen.push(k);
      return undefined;
    });
    await sleep(20);
    expect(seen).toEqual(['a/x', 'a/y']);
  });

  it('never processes one key twice at once, and reprocesses a key added during processing', async () => {
    const q = new WorkQueue({ concurrency: 4 });
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    q.start(async () => {
      runs++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(20);
      running--;
      return undefined;
    });
    q.add('k');
    await sleep(5);
    q.add('k');
    q.add('k');
    await sleep(80);
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('bounds concurrency across keys', async () => {
    const q = new WorkQueue({ concurrency: 3 });
    let running = 0;
    let maxRunning = 0;
    q.start(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(10);
      running--;
      return undefined;
    });
    for (let i = 0; i < 20; i++) q.add(`k${i}`);
    await sleep(150);
    expect(maxRunning).toBe(3);
  });

  it('backs off exponentially per key with jitter, capped, and resets on success', () => {
    let r = 0;
    const q = new WorkQueue({
      concurrency: 1,
      baseDelayMs: 100,
      maxDelayMs: 1000,
      jitter: 0.5,
      random: () => r,
    });
    expect(q.backoffFor('k')).toBe(100);
    r = 1;
    expect(q.backoffFor('k')).toBe(50);
    // A Retry-After hint is a floor, jittered upwards: [400, 600] here.
    expect(q.backoffFor('k', 400)).toBe(600);
    r = 0;
    expect(q.backoffFor('k', 400)).toBe(400);
  });

  it('doubles the delay per failure of a key up to the cap, each drawn from [d/2, d]', async () => {
    const draws = [0, 1, 0.5, 0, 0, 0, 0];
    const q = new WorkQueue({
      concurrency: 1,
      baseDelayMs: 10,
      maxDelayMs: 60,
      jitter: 0.5,
      random: () => draws.shift() ?? 0,
    });
    const delays: number[] = [];
    q.onError = (_k, _e, d) => delays.push(d);
    q.start(async () => {
      throw new Error('AWS is down');
    });
    q.add('k');
    for (let i = 0; i < 200 && delays.length < 6; i++) await sleep(10);
    await q.shutdown();
    // 10·1, 20·½, 40·¾, then 60 (the cap) every time.
    expect(delays.slice(0, 6)).toEqual([10, 10, 30, 60, 60, 60]);
  });

  it('keys throttled together with one Retry-After hint come back spread out, none before the hint', async () => {
    const q = new WorkQueue({ concurrency: 50, baseDelayMs: 10, jitter: 0.5 });
    const delays: number[] = [];
    q.onError = (_k, _e, d) => delays.push(d);
    let first = true;
    q.start(async () => {
      if (first) throw new BackoffHint('throttled', 2_000);
      return undefined;
    });
    for (let i = 0; i < 50; i++) q.add(`k${i}`);
    await sleep(20);
    first = false;
    await q.shutdown();
    expect(delays).toHaveLength(50);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(2_000);
      expect(d).toBeLessThanOrEqual(3_000);
    }
    expect(new Set(delays).size).toBeGreaterThan(40);
  });

  it('retries a failing key after its backoff and honours a minimum delay hint', async () => {
    const q = new WorkQueue({ concurrency: 1, baseDelayMs: 10, jitter: 0 });
    const delays: number[] = [];
    q.onError = (_k, _e, d) => delays.push(d);
    let calls = 0;
    q.start(async () => {
      calls++;
      if (calls === 1) throw new Error('boom');
      if (calls === 2) throw new BackoffHint('throttled', 30);
      return undefined;
    });
    q.add('k');
    await sleep(120);
    expect(calls).toBe(3);
    expect(delays).toEqual([10, 30]);
    expect(q.failures('k')).toBe(0);
  });

  it('a pass supersedes the pending retry: a failure followed by a watch event is retried once, not twice', async () => {
    const q = new WorkQueue({ concurrency: 1, baseDelayMs: 40, jitter: 0 });
    let calls = 0;
    q.start(async () => {
      calls++;
      if (calls === 1) throw new Error('throttled');
      return undefined;
    });
    q.add('k');
    await sleep(5);
    // The failed pass wrote status; its watch event brings the key back before the backoff is up.
    q.add('k');
    await sleep(100);
    expect(calls).toBe(2);
  });

  it('drains in-flight work on shutdown and takes no more', async () => {
    const q = new WorkQueue({ concurrency: 1 });
    let done = 0;
    q.start(async () => {
      await sleep(30);
      done++;
      return undefined;
    });
    q.add('a');
    q.add('b');
    await sleep(5);
    await q.shutdown();
    expect(done).toBe(1);
    q.add('c');
    await sleep(40);
    expect(done).toBe(1);
  });
});

describe('WorkQueue priorities (pure logic, no I/O)', () => {
  const order = async (fill: (q: WorkQueue) => void) => {
    const q = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    fill(q);
    q.start(async (k) => {
      seen.push(k);
      return undefined;
    });
    await sleep(20);
    return seen;
  };

  it('takes high keys before low ones, each in arrival order', async () => {
    expect(
      await order((q) => {
        for (const k of ['l1', 'l2', 'l3']) q.add(k, 'low');
        q.add('h1');
        q.add('h2', 'high');
        q.add('l4', 'low');
      }),
    ).toEqual(['h1', 'h2', 'l1', 'l2', 'l3', 'l4']);
  });

  it('a low key added again as high moves ahead once; a high key is not demoted', async () => {
    expect(
      await order((q) => {
        for (const k of ['a', 'b', 'c']) q.add(k, 'low');
        q.add('c');
        q.add('c');
        q.add('d');
        q.add('d', 'low');
      }),
    ).toEqual(['c', 'd', 'a', 'b']);
  });

  it('a key that comes back while processing runs again before the low backlog', async () => {
    const q = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    q.start(async (k) => {
      seen.push(k);
      if (k === 'new' && seen.length === 1) q.add('new');
      await sleep(1);
      return undefined;
    });
    q.add('new');
    for (let i = 0; i < 5; i++) q.add(`old${i}`, 'low');
    await sleep(60);
    expect(seen.slice(0, 3)).toEqual(['new', 'new', 'old0']);
    expect(q.depth).toBe(0);
  });
});
