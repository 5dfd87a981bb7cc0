import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, type KubeConfig, V1MicroTime } from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  addFault,
  auditEvents,
  clearFaults,
  controllerCalls,
  controllerIdentity,
  deleteAndFinalize,
  metric,
  resetAwsCalls,
  startControllerWith,
  type TestController,
} from './controller-helpers.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  firstInventory,
  getSecretSync,
  idle,
  secretData,
  waitReady,
} from './controller-support.ts';
import { adminKubeConfig, freshNamespace } from './support.ts';

const NS_TAG = 'secretsync.io/namespaces';
/** The controller's lease timing (controller.ts): renew/retry every 2 s, lease 15 s. */
const RETRY_PERIOD_MS = 2_000;

/** A tagged AWS secret and a SecretSync for it in `ns`. */
async function secretSyncIn(ns: string, name: string, value = 'v1'): Promise<void> {
  const secretId = `rt/${ns}/${name}`;
  await createAwsSecret(secretId, JSON.stringify({ value }), [{ Key: NS_TAG, Value: ns }]);
  await applySecretSync(ns, name, { source: { secretId }, target: { name } });
}

async function firstSync(ns: string, name: string, value = 'v1'): Promise<void> {
  await idle();
  await eventually(`first sync of ${ns}/${name}`, async () =>
    (await secretData(ns, name))?.value === value ? true : undefined,
  );
}

describe('controller runtime: leader election, throttling, shutdown', () => {
  /** Controllers a test started; stopped after it, whatever happened. */
  const running: TestController[] = [];
  const cleanup: [TestController, string, string][] = [];
  afterEach(async () => {
    await clearFaults();
    // A test's controllers stop with it: their periodic resync must not show up in the next test's calls.
    for (const c of running.splice(0)) await c.stop().catch(() => {});
  });
  afterAll(async () => {
    // reconcile still works on a stopped controller: finalize what the tests made, directly.
    for (const [c, ns, name] of cleanup) await deleteAndFinalize(c, ns, name).catch(() => {});
  });

  async function start(args: string[], kc?: KubeConfig) {
    const c = await startControllerWith({ args: ['--tenancy=tag', ...args], ...(kc ? { kc } : {}) });
    running.push(c);
    return c;
  }

  it('leader election: one leader works; when it stops, the other takes over and reconciles', async () => {
    const leaseNs = await freshNamespace('lease');
    const watched = await freshNamespace('le');
    const leaseName = `secretsync-${randomBytes(3).toString('hex')}`;
    const args = (id: string) => [
      '--leader-elect=true',
      `--leader-election-namespace=${leaseNs}`,
      `--lease-name=${leaseName}`,
      `--identity=${id}`,
      `--namespaces=${watched}`,
    ];
    const byId: Record<string, TestController> = {
      'ctl-a': await start(args('ctl-a')),
      'ctl-b': await start(args('ctl-b')),
    };
    const leases = adminKubeConfig().makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ name: leaseName, namespace: leaseNs })).spec?.holderIdentity;
    const leaderGauge = async (c: TestController) => metric(await c.metricsText(), 'secretsync_leader');

    const first = await eventually('a lease holder', async () => {
      const h = await holder().catch(() => undefined);
      return h === 'ctl-a' || h === 'ctl-b' ? h : undefined;
    });
    const leader = byId[first]!;
    const standby = byId[first === 'ctl-a' ? 'ctl-b' : 'ctl-a']!;
    // Several renew periods later it is still the only one working.
    await sleep(3 * RETRY_PERIOD_MS);
    expect(await holder()).toBe(first);
    expect([await leaderGauge(leader), await leaderGauge(standby)]).toEqual([1, 0]);

    await secretSyncIn(watched, 'one');
    cleanup.push([standby, watched, 'one']);
    await waitReady(watched, 'one');
    await firstSync(watched, 'one');
    expect(
      metric(await leader.metricsText(), 'secretsync_reconcile_total', { result: 'success' }),
    ).toBeGreaterThan(0);
    expect(metric(await standby.metricsText(), 'secretsync_reconcile_total', { result: 'success' })).toBe(0);

    // The leader stops (releasing the lease): the standby takes over within a couple of retry periods.
    const stoppedAt = Date.now();
    await leader.stop();
    const second = await eventually('the standby to take over', async () => {
      const h = await holder();
      return h && h !== first && (await leaderGauge(standby)) === 1 ? h : undefined;
    });
    const takeoverMs = Date.now() - stoppedAt;
    console.log(`leader election: ${second} took over ${takeoverMs} ms after ${first} stopped`);
    expect(second).not.toBe(first);
    expect(takeoverMs).toBeLessThan(3 * RETRY_PERIOD_MS);

    await secretSyncIn(watched, 'two', 'v2');
    cleanup.push([standby, watched, 'two']);
    await waitReady(watched, 'two');
    await firstSync(watched, 'two', 'v2');
    expect(
      metric(await standby.metricsText(), 'secretsync_reconcile_total', { result: 'success' }),
    ).toBeGreaterThan(0);
  });

  it('a replica replaced as leader stops working, and works again once it wins the lease back', async () => {
    const leaseNs = await freshNamespace('lease');
    const watched = await freshNamespace('le');
    const leaseName = `secretsync-${randomBytes(3).toString('hex')}`;
    const c = await start([
      '--leader-elect=true',
      `--leader-election-namespace=${leaseNs}`,
      `--lease-name=${leaseName}`,
      '--identity=ctl-solo',
      `--namespaces=${watched}`,
    ]);
    const leases = adminKubeConfig().makeApiClient(CoordinationV1Api);
    const read = () => leases.readNamespacedLease({ name: leaseName, namespace: leaseNs });
    const gauge = async () => metric(await c.metricsText(), 'secretsync_leader');
    await eventually('leading', async () => ((await gauge()) === 1 ? true : undefined));

    // Someone else holds a live lease (as after a partition longer than the lease): it steps down.
    const lease = await read();
    await leases.replaceNamespacedLease({
      name: leaseName,
      namespace: leaseNs,
      body: {
        ...lease,
        spec: { ...lease.spec, holderIdentity: 'usurper', renewTime: new V1MicroTime(Date.now()) },
      },
    });
    await eventually('stepped down', async () => ((await gauge()) === 0 ? true : undefined), 10_000);

    // The usurper never renews: after the lease duration the replica leads again, and works.
    await eventually('leading again', async () => ((await gauge()) === 1 ? true : undefined), 30_000);
    expect((await read()).spec?.holderIdentity).toBe('ctl-solo');
    await secretSyncIn(watched, 'again');
    cleanup.push([c, watched, 'again']);
    await waitReady(watched, 'again');
    await firstSync(watched, 'again');
  });

  it('throttled CreateRole (twice): the SDK retries and the SecretSync reaches Ready', async () => {
    const ns = await freshNamespace('throttle');
    const c = await start([`--namespaces=${ns}`]);
    await resetAwsCalls();
    await addFault({ service: 'iam', operation: 'CreateRole', kind: 'throttle', nth: [1, 2] });
    await secretSyncIn(ns, 'app');
    cleanup.push([c, ns, 'app']);
    await waitReady(ns, 'app');
    await firstSync(ns, 'app');
    const creates = (await controllerCalls()).filter((x) => x.operation === 'CreateRole');
    expect(creates.map((x) => [x.status, x.fault ?? null])).toEqual([
      [400, 'throttle'],
      [400, 'throttle'],
      [200, null],
    ]);
  });

  it('throttled beyond the SDK retries: the pass fails, the queue backs off, the next pass succeeds', async () => {
    const ns = await freshNamespace('throttle2');
    const c = await start([`--namespaces=${ns}`]);
    await resetAwsCalls();
    await addFault({ service: 'iam', operation: 'CreateRole', kind: 'throttle', nth: [1, 2, 3, 4] });
    await secretSyncIn(ns, 'app');
    cleanup.push([c, ns, 'app']);
    const ss = await eventually(
      'Ready=True',
      async () => {
        const s = await getSecretSync(ns, 'app');
        return condition(s, 'Ready')?.status === 'True' ? s : undefined;
      },
      60_000,
    );
    expect(ss.status?.roleArn).toBeDefined();
    await firstSync(ns, 'app');
    const creates = (await controllerCalls()).filter((x) => x.operation === 'CreateRole');
    // Three attempts in the first pass (the SDK's), two in the next (one throttled, one created).
    expect(creates.map((x) => x.fault ?? 'ok')).toEqual([
      'throttle',
      'throttle',
      'throttle',
      'throttle',
      'ok',
    ]);
    const text = await c.metricsText();
    expect(metric(text, 'secretsync_reconcile_total', { result: 'error' })).toBeGreaterThanOrEqual(1);
  });

  it('after a restart, the settled SecretSyncs are not read again (the inventory lists them); a new one is provisioned at once', async () => {
    const ns = await freshNamespace('prio');
    const settled = ['o1', 'o2', 'o3', 'o4', 'o5'];
    const first = await start([`--namespaces=${ns}`]);
    for (const n of settled) {
      await secretSyncIn(ns, n);
      cleanup.push([first, ns, n]);
    }
    for (const n of settled) await waitReady(ns, n);
    await first.stop();
    await resetAwsCalls();
    // One pass at a time, IAM slowed: a start-up pass over five settled SecretSyncs would show.
    const c = await start([`--namespaces=${ns}`, '--concurrency=1', '--aws-rate-limits=iam=2']);
    await firstInventory(c);
    await secretSyncIn(ns, 'new');
    cleanup.push([c, ns, 'new']);
    await waitReady(ns, 'new', 90_000);
    await new Promise((r) => setTimeout(r, 2_000));
    const named = (name: string) => (x: { resource?: string }) =>
      (x.resource ?? '').includes(`secretsync-${ns}-${name}-`);
    const calls = await controllerCalls();
    for (const n of settled)
      expect(
        calls.filter(named(n)).map((x) => x.operation),
        n,
      ).toEqual([]);
    // The new one: created without reads (the inventory did not list its things).
    const own = calls.filter(named('new')).map((x) => x.operation);
    expect(own).toContain('CreateRole');
    expect(own).not.toContain('GetRole');
    // What the restart read instead: the lists, once.
    expect(calls.filter((x) => x.operation === 'ListRoles')).toHaveLength(1);
  });

  it('graceful shutdown: stop() drains in-flight reconciles, then nothing more is called', async () => {
    const ns = await freshNamespace('shutdown');
    const home = await freshNamespace('ctl');
    const id = await controllerIdentity(home);
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const n of names) await secretSyncIn(ns, n);
    await resetAwsCalls();
    const c = await start([`--namespaces=${ns}`], id.kc);
    for (const n of names) cleanup.push([c, ns, n]);

    // Stop as soon as passes are provisioning (mid-flight: a first pass makes ~20 AWS calls).
    await eventually(
      'reconciles in flight',
      async () => ((await controllerCalls()).some((x) => x.operation === 'CreateRole') ? true : undefined),
      30_000,
    );
    const stopCalledAt = Date.now();
    await c.stop();
    const stoppedAt = Date.now();
    const atStop = await controllerCalls();
    console.log(
      `graceful shutdown: stop() took ${stoppedAt - stopCalledAt} ms; ${
        atStop.filter((x) => x.time >= stopCalledAt).length
      } AWS calls drained after stop() was called`,
    );
    expect(
      atStop.filter((x) => x.time >= stopCalledAt).length,
      'in-flight passes ran to their end after stop() was called',
    ).toBeGreaterThan(0);

    // Longer than a Pending function's requeue (3 s) and a failed pass's first backoff.
    await sleep(5_000);
    const late = (await controllerCalls()).filter((x) => x.time > stoppedAt);
    expect(late.map((x) => x.operation)).toEqual([]);
    const lateKube = auditEvents(id.username).filter(
      (e) => Date.parse(e.requestReceivedTimestamp) > stoppedAt && e.verb !== 'watch',
    );
    expect(lateKube.map((e) => `${e.verb} ${e.objectRef?.resource}`)).toEqual([]);
  });
});
