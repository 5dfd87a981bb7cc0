import { describe, expect, it } from 'vitest';
import type { TagDiff, Tags } from './aws/tags.ts';
import { NotOursError, RetryLaterError } from './errors.ts';
import { ensure, type Health, inspect, type Manager, READY, remove, waitUntilHealthy } from './manager.ts';
import { type Owner, ownedBy, ownershipTags, TAG } from './naming.ts';

// The generic ensure / remove / waitUntilHealthy over a tiny in-memory manager: every decision the
// walk makes (refuse, replace, wait, create, update, tag) and nothing of any API. The AWS managers
// run the same walk against moto in managers.moto.test.ts.

const owner: Owner = {
  clusterArn: 'arn:aws:eks:us-east-1:123456789012:cluster/prod',
  namespace: 'payments',
  name: 'db',
  uid: 'uid-1',
};
const ours = ownershipTags(owner);

interface Thing {
  name: string;
  size: number;
  /** Cannot be changed in place. */
  zone: string;
  tags: Tags;
  health: Health;
  /** Incremented on every create, so a replacement is visible. */
  generation: number;
}
type Desired = Pick<Thing, 'name' | 'size' | 'zone' | 'tags'>;

class NotFound extends Error {
  override readonly name = 'NotFoundError';
}

/** An in-memory API and a manager over it; `log` has every call, writes as `verb:detail`. */
function fake(opts: { owned?: boolean; deleteIsFinal?: boolean } = {}) {
  const store = new Map<string, Thing>();
  const log: string[] = [];
  let generation = 0;
  /** What `create` and `update` leave the thing in (e.g. busy, as Lambda after an update). */
  let after: Health = READY;
  /** Applied to each read: what a concurrent writer did meanwhile. */
  const onRead: ((t: Thing | undefined) => Thing | undefined)[] = [];
  const copy = (t: Thing): Thing => ({ ...t, tags: { ...t.tags } });
  const manager: Manager<null, string, Desired, Thing> = {
    title: 'thing',
    id: (d) => d.name,
    describe: (name) => `"${name}"`,
    async read(_env, name) {
      log.push('read');
      const hook = onRead.shift();
      const t = store.get(name);
      const seen = hook ? hook(t) : t;
      return seen && copy(seen);
    },
    ...(opts.owned === false ? {} : { owned: (l: Thing, o: Owner) => ownedBy(l.tags, o) }),
    async create(_env, d) {
      log.push(`create:${d.name}`);
      const t = { ...d, tags: { ...d.tags }, health: after, generation: ++generation };
      store.set(d.name, t);
      return copy(t);
    },
    replaceBecause: (d, l) => (l.zone === d.zone ? undefined : `its zone is ${l.zone}`),
    diff: (d, l) => (l.size === d.size ? [] : ['size']),
    async update(_env, d, l, fields) {
      log.push(`update:${fields.join(',')}`);
      const t = store.get(l.name) as Thing;
      t.size = d.size;
      t.health = after;
      return copy(t);
    },
    tags: {
      desired: (d) => d.tags,
      of: (l) => l.tags,
      async write(_env, l, diff) {
        log.push(`tags:${JSON.stringify(diff)}`);
        const t = store.get(l.name) as Thing;
        Object.assign(t.tags, diff.set);
        for (const k of diff.remove) delete t.tags[k];
      },
    },
    health: (l) => l.health,
    async delete(_env, l, name) {
      log.push(`delete:${name}`);
      if (!store.delete(l.name)) throw new NotFound(`${name} is gone`);
    },
    ...(opts.deleteIsFinal ? { deleteIsFinal: true } : {}),
  };
  const put = (t: Partial<Thing> & { name: string }) => {
    const thing: Thing = { size: 1, zone: 'a', tags: { ...ours }, health: READY, generation: 0, ...t };
    store.set(t.name, thing);
    return thing;
  };
  return {
    manager,
    store,
    log,
    put,
    onRead,
    setAfter: (h: Health) => {
      after = h;
    },
    /** The calls that write. */
    writes: () => log.filter((l) => l !== 'read'),
  };
}

const desired = (over: Partial<Desired> = {}): Desired => ({
  name: 'x',
  size: 1,
  zone: 'a',
  tags: { ...ours },
  ...over,
});
const failed = (recreate: boolean): Health => ({
  state: 'failed',
  code: 'InternalError',
  message: 'it broke',
  recreate,
});
const busy: Health = { state: 'busy', message: 'is being updated' };

describe('ensure (in-memory manager: pure logic)', () => {
  it('creates what is absent, and reports the new thing’s health', async () => {
    const f = fake();
    f.setAfter(busy);
    const out = await ensure(f.manager, null, desired(), owner);
    expect(out).toMatchObject({ created: true, changed: true, health: busy, latest: { size: 1 } });
    expect(out.replaced).toBeUndefined();
    expect(f.log).toEqual(['read', 'create:x']);
  });

  it('writes nothing when the thing is as desired', async () => {
    const f = fake();
    f.put({ name: 'x' });
    const out = await ensure(f.manager, null, desired(), owner);
    expect(out).toMatchObject({ created: false, changed: false, health: READY });
    expect(f.log).toEqual(['read']);
  });

  it('updates exactly the fields that differ, and returns the state the update answered', async () => {
    const f = fake();
    f.put({ name: 'x', size: 1 });
    f.setAfter(busy);
    const out = await ensure(f.manager, null, desired({ size: 2 }), owner);
    expect(f.writes()).toEqual(['update:size']);
    expect(out).toMatchObject({ changed: true, created: false, latest: { size: 2 }, health: busy });
  });

  it('replaceBecause → deletes and creates again, saying why', async () => {
    const f = fake();
    f.put({ name: 'x', zone: 'b', size: 7 });
    const out = await ensure(f.manager, null, desired({ zone: 'a' }), owner);
    expect(f.writes()).toEqual(['delete:x', 'create:x']);
    expect(out).toMatchObject({ created: true, changed: true, replaced: 'its zone is b' });
    expect(f.store.get('x')).toMatchObject({ zone: 'a', size: 1, generation: 1 });
  });

  it('replaces even when the delete finds it already gone (NotFound is ignored)', async () => {
    const f = fake();
    f.put({ name: 'x', zone: 'b' });
    // Someone deleted it between our read and our delete.
    f.onRead.push((t) => {
      f.store.delete('x');
      return t;
    });
    const out = await ensure(f.manager, null, desired(), owner);
    expect(f.writes()).toEqual(['delete:x', 'create:x']);
    expect(out.replaced).toBe('its zone is b');
  });

  it('failed with recreate → deletes and creates again, with code and reason as `replaced`', async () => {
    const f = fake();
    f.put({ name: 'x', health: failed(true) });
    const out = await ensure(f.manager, null, desired(), owner);
    expect(f.writes()).toEqual(['delete:x', 'create:x']);
    expect(out).toMatchObject({ created: true, replaced: 'InternalError: it broke', health: READY });
  });

  it('failed without recreate → kept, updated like any other, and reported failed', async () => {
    const f = fake();
    f.put({ name: 'x', size: 1, health: failed(false) });
    const out = await ensure(f.manager, null, desired({ size: 3 }), owner);
    expect(f.writes()).toEqual(['update:size']);
    expect(out.replaced).toBeUndefined();
    expect(out.created).toBe(false);
    // The update left it ready.
    expect(out.health).toEqual(READY);
    const untouched = fake();
    untouched.put({ name: 'x', health: failed(false) });
    expect((await ensure(untouched.manager, null, desired(), owner)).health).toEqual(failed(false));
    expect(untouched.writes()).toEqual([]);
  });

  it('busy → RetryLaterError(Busy) without a write: AWS allows one update at a time', async () => {
    const f = fake();
    f.put({ name: 'x', size: 1, health: busy });
    const err = await ensure(f.manager, null, desired({ size: 2 }), owner).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect(err).toMatchObject({ reason: 'Busy', afterMs: 3_000, message: 'thing "x" is being updated' });
    expect(f.writes()).toEqual([]);
  });

  it('busy but to be replaced → replaced (a delete is no update)', async () => {
    const f = fake();
    f.put({ name: 'x', zone: 'b', health: busy });
    expect((await ensure(f.manager, null, desired(), owner)).replaced).toBe('its zone is b');
    expect(f.writes()).toEqual(['delete:x', 'create:x']);
  });

  it('not ours → NotOursError before anything else, however broken or different the thing is', async () => {
    const other = { ...owner, clusterArn: 'arn:aws:eks:eu-west-1:123456789012:cluster/prod' };
    for (const [why, tags] of [
      ['untagged', { team: 'x' }],
      ['another cluster ARN', ownershipTags(other)],
      ['another namespace', ownershipTags({ ...owner, namespace: 'billing' })],
    ] as const) {
      for (const state of [{}, { zone: 'b' }, { size: 9 }, { health: busy }, { health: failed(true) }]) {
        const f = fake();
        f.put({ name: 'x', tags: { ...tags }, ...state });
        const err = await ensure(f.manager, null, desired(), owner).catch((e: unknown) => e);
        expect(err, `${why} ${JSON.stringify(state)}`).toBeInstanceOf(NotOursError);
        expect((err as Error).message).toBe(
          `thing "x" exists but is not tagged as this SecretSync's; refusing to modify or delete it`,
        );
        expect(f.writes(), why).toEqual([]);
      }
    }
  });

  it('never refuses a sub-resource (a manager without `owned`): its parent is ours', async () => {
    const f = fake({ owned: false });
    f.put({ name: 'x', tags: {}, size: 1 });
    await ensure(f.manager, null, desired({ size: 2, tags: {} }), owner);
    expect(f.writes()).toEqual(['update:size']);
  });

  it('adopts an older uid of the same SecretSync and re-tags only the uid', async () => {
    const f = fake();
    f.put({ name: 'x', tags: { ...ours, [TAG.uid]: 'uid-0' } });
    const out = await ensure(f.manager, null, desired(), owner);
    expect(f.writes()).toEqual([`tags:${JSON.stringify({ set: { [TAG.uid]: 'uid-1' }, remove: [] })}`]);
    expect(out.changed).toBe(true);
  });

  it('diffs our tag keys only: others’ and AWS’s tags are neither compared nor removed', async () => {
    const f = fake();
    const foreign = {
      'cost-centre': '42',
      'aws:cloudformation:stack-name': 's',
      'app.kubernetes.io/name': 'x',
    };
    f.put({
      name: 'x',
      tags: { ...ours, ...foreign, [TAG.managedBy]: 'someone-else', 'secretsync.io/stale': 'y' },
    });
    f.put({ name: 'y', tags: { ...ours, ...foreign } });
    await ensure(f.manager, null, desired({ name: 'y' }), owner);
    expect(f.writes()).toEqual([]);
    await ensure(f.manager, null, desired(), owner);
    expect(f.writes()).toEqual([
      `tags:${JSON.stringify({ set: { [TAG.managedBy]: 'secretsync' }, remove: ['secretsync.io/stale'] })}`,
    ]);
    expect(f.store.get('x')?.tags).toEqual({ ...ours, ...foreign });
  });

  it('writes tags after the update, on the thing the update returned', async () => {
    const f = fake();
    f.put({ name: 'x', size: 1, tags: { ...ours, [TAG.uid]: 'uid-0' } });
    const tags = f.manager.tags as NonNullable<typeof f.manager.tags>;
    const written: Thing[] = [];
    const m = {
      ...f.manager,
      tags: {
        ...tags,
        write: (env: null, l: Thing, diff: TagDiff) => {
          written.push(l);
          return tags.write(env, l, diff);
        },
      },
    };
    const out = await ensure(m, null, desired({ size: 2 }), owner);
    expect(written.map((l) => l.size)).toEqual([2]);
    expect(f.writes()).toEqual([
      'update:size',
      `tags:${JSON.stringify({ set: { [TAG.uid]: 'uid-1' }, remove: [] })}`,
    ]);
    expect(out.changed).toBe(true);
  });

  it('skips the read when the caller knows the thing is absent', async () => {
    const f = fake();
    const out = await ensure(f.manager, null, desired(), owner, { absent: true });
    expect(f.log).toEqual(['create:x']);
    expect(out.created).toBe(true);
  });
});

describe('inspect (ensure without writing: secretsync plan --check)', () => {
  it('missing, not ours, exists, differs — reading only', async () => {
    const f = fake();
    expect(await inspect(f.manager, null, desired(), owner)).toEqual({ state: 'missing', differences: [] });
    f.put({ name: 'x', tags: {} });
    expect(await inspect(f.manager, null, desired(), owner)).toMatchObject({ state: 'not-ours' });
    f.put({ name: 'x' });
    expect(await inspect(f.manager, null, desired(), owner)).toMatchObject({
      state: 'exists',
      differences: [],
    });
    f.put({ name: 'x', size: 2, tags: { ...ours, [TAG.uid]: 'uid-0', 'secretsync.io/old': 'y' } });
    expect(await inspect(f.manager, null, desired(), owner)).toMatchObject({
      state: 'differs',
      differences: ['size', `tags: ${TAG.uid}`, 'tags removed: secretsync.io/old'],
    });
    f.put({ name: 'x', zone: 'b', health: failed(true) });
    expect((await inspect(f.manager, null, desired(), owner)).differences).toEqual([
      'replaced: its zone is b',
    ]);
    f.put({ name: 'x', health: failed(true) });
    expect((await inspect(f.manager, null, desired(), owner)).differences).toEqual([
      'replaced: InternalError: it broke',
    ]);
    expect(f.writes()).toEqual([]);
  });

  it('does not read what the caller knows is absent (its parent is missing)', async () => {
    const f = fake();
    f.put({ name: 'x' });
    expect(await inspect(f.manager, null, desired(), owner, { absent: true })).toMatchObject({
      state: 'missing',
    });
    expect(f.log).toEqual([]);
  });
});

describe('remove (in-memory manager: pure logic)', () => {
  it('deletes what is ours and confirms it gone by reading again', async () => {
    const f = fake();
    f.put({ name: 'x' });
    expect(await remove(f.manager, null, 'x', owner)).toBe('gone');
    expect(f.log).toEqual(['read', 'delete:x', 'read']);
    expect(f.store.has('x')).toBe(false);
  });

  it('is gone without a delete when there is nothing', async () => {
    const f = fake();
    expect(await remove(f.manager, null, 'x', owner)).toBe('gone');
    expect(f.log).toEqual(['read']);
  });

  it('leaves what is not ours (untagged, another cluster ARN), and deletes nothing', async () => {
    const other = { ...owner, clusterArn: 'arn:aws:eks:eu-west-1:123456789012:cluster/prod' };
    for (const tags of [{}, ownershipTags(other)]) {
      const f = fake();
      f.put({ name: 'x', tags });
      expect(await remove(f.manager, null, 'x', owner)).toBe('not-ours');
      expect(f.writes()).toEqual([]);
      expect(f.store.has('x')).toBe(true);
    }
  });

  it('takes something else found under the name (`matches` says no) for gone, and leaves it', async () => {
    const f = fake();
    f.put({ name: 'x', zone: 'b' });
    const m = { ...f.manager, matches: (l: Thing) => l.zone === 'a' };
    expect(await remove(m, null, 'x', owner)).toBe('gone');
    expect(f.writes()).toEqual([]);
    expect(f.store.has('x')).toBe(true);
  });

  it('is pending while the thing is still there after its delete (AWS deletes asynchronously)', async () => {
    const f = fake();
    const t = f.put({ name: 'x' });
    f.onRead.push((seen) => seen);
    f.onRead.push(() => t);
    expect(await remove(f.manager, null, 'x', owner)).toBe('pending');
  });

  it('is gone when the delete finds nothing (deleted meanwhile)', async () => {
    const f = fake();
    const t = f.put({ name: 'x' });
    f.onRead.push(() => {
      f.store.delete('x');
      return t;
    });
    expect(await remove(f.manager, null, 'x', owner)).toBe('gone');
    expect(f.log).toEqual(['read', 'delete:x', 'read']);
  });

  it('maps a NotOursError from the delete itself to not-ours; other errors propagate', async () => {
    const f = fake();
    f.put({ name: 'x' });
    const refusing = {
      ...f.manager,
      delete: async () => {
        throw new NotOursError('thing', 'x', 'was re-created by someone else');
      },
    };
    expect(await remove(refusing, null, 'x', owner)).toBe('not-ours');
    const broken = {
      ...f.manager,
      delete: async () => {
        throw new Error('AccessDenied');
      },
    };
    await expect(remove(broken, null, 'x', owner)).rejects.toThrow('AccessDenied');
  });

  it('trusts a final delete without reading back', async () => {
    const f = fake({ deleteIsFinal: true });
    f.put({ name: 'x' });
    expect(await remove(f.manager, null, 'x', owner)).toBe('gone');
    expect(f.log).toEqual(['read', 'delete:x']);
  });
});

describe('waitUntilHealthy (in-memory manager: pure logic)', () => {
  const sleeps = () => {
    const slept: number[] = [];
    return { slept, sleep: async (ms: number) => void slept.push(ms) };
  };

  it('polls until the thing is no longer busy', async () => {
    const f = fake();
    const t = f.put({ name: 'x', health: busy });
    const { slept, sleep } = sleeps();
    f.onRead.push(
      (s) => s,
      (s) => s,
    );
    f.onRead.push(() => ({ ...t, health: READY }));
    expect(await waitUntilHealthy(f.manager, null, 'x', 10_000, sleep)).toEqual(READY);
    expect(slept).toEqual([500, 1_000, 1_500]);
  });

  it('stops within its budget and reports the last health seen', async () => {
    const f = fake();
    f.put({ name: 'x', health: busy });
    const { slept, sleep } = sleeps();
    expect(await waitUntilHealthy(f.manager, null, 'x', 3_000, sleep)).toEqual(busy);
    expect(slept).toEqual([500, 1_000, 1_500]);
    expect(await waitUntilHealthy(f.manager, null, 'x', 100, sleep)).toBeUndefined();
  });

  it('reports failure at once, and undefined when the thing vanished', async () => {
    const f = fake();
    f.put({ name: 'x', health: failed(true) });
    const { slept, sleep } = sleeps();
    expect(await waitUntilHealthy(f.manager, null, 'x', 10_000, sleep)).toEqual(failed(true));
    expect(slept).toEqual([500]);
    f.store.delete('x');
    expect(await waitUntilHealthy(f.manager, null, 'x', 10_000, sleep)).toBeUndefined();
  });
});
