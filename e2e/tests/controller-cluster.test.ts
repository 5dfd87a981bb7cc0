import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../testbed/process.ts';
import {
  addFault,
  clearFaults,
  deleteAndFinalize,
  metric,
  readyIs,
  reconcileUntil,
  startControllerWith,
  type TestController,
} from './controller-helpers.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  idle,
  secretData,
  waitReady,
} from './controller-support.ts';
import { core, freshNamespace } from './support.ts';

/**
 * eks:DescribeCluster failing on the real front door: the controller keeps the last good endpoint,
 * CA and authentication mode, SecretSyncs stay Ready and /readyz stays 200; only failures that
 * outlast the window (or a start without any good answer) make SecretSyncs ClusterUnavailable.
 */

const NS_TAG = 'secretsync.io/namespaces';
/** The cluster check, far below the flag's 10 s minimum, so a test sees many checks in seconds. */
const CHECK_MS = 500;
const FAIL_DESCRIBE_CLUSTER = { service: 'eks', operation: 'DescribeCluster', kind: '503', rate: 1 } as const;

async function secretSyncIn(ns: string, name: string, value: string): Promise<void> {
  const secretId = `cluster/${ns}/${name}`;
  await createAwsSecret(secretId, JSON.stringify({ value }), [{ Key: NS_TAG, Value: ns }]);
  await applySecretSync(ns, name, { source: { secretId }, target: { name } });
}

async function synced(ns: string, name: string, value: string): Promise<void> {
  await idle();
  await eventually(`sync of ${ns}/${name}`, async () =>
    (await secretData(ns, name))?.value === value ? true : undefined,
  );
}

const readyz = async (port: number) => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;

const reasonsOfEvents = async (ns: string) =>
  (await core().listNamespacedEvent({ namespace: ns })).items.map((e) => `${e.type}/${e.reason}`);

/** Log lines (pino JSON) with this message. */
const logged = (c: TestController, msg: string) =>
  c.logs.filter((l) => (JSON.parse(l) as { msg?: string }).msg === msg);

const KEPT = 'DescribeCluster failed; keeping the last good endpoint, CA and authentication mode';
const UNAVAILABLE = 'DescribeCluster failed; SecretSyncs report ClusterUnavailable';
const RECOVERED = 'DescribeCluster answers again';

describe('controller: a failing DescribeCluster', () => {
  const running: TestController[] = [];
  const cleanup: [TestController, string, string][] = [];
  afterEach(async () => {
    await clearFaults();
    for (const c of running.splice(0)) await c.stop().catch(() => {});
  });
  afterAll(async () => {
    // reconcile still works on a stopped controller (finalizing needs no DescribeCluster).
    for (const [c, ns, name] of cleanup) await deleteAndFinalize(c, ns, name).catch(() => {});
  });

  async function start(ns: string, clusterUnavailableAfterMs?: number) {
    const healthPort = await freePort();
    const c = await startControllerWith({
      args: ['--tenancy=tag', `--namespaces=${ns}`, `--health-port=${healthPort}`],
      config: { clusterCheckMs: CHECK_MS },
      ...(clusterUnavailableAfterMs !== undefined ? { clusterUnavailableAfterMs } : {}),
    });
    running.push(c);
    return { c, healthPort };
  }

  it('blips: the last good answer is kept, SecretSyncs stay Ready and provision, no Event, /readyz 200', async () => {
    const ns = await freshNamespace('clu');
    const { c, healthPort } = await start(ns);
    await secretSyncIn(ns, 'one', 'v1');
    cleanup.push([c, ns, 'one']);
    await waitReady(ns, 'one');
    await synced(ns, 'one', 'v1');

    await addFault(FAIL_DESCRIBE_CLUSTER);
    // Several checks fail (each after the SDK's own retries).
    await eventually('four failed cluster checks', async () =>
      logged(c, KEPT).length >= 4 ? true : undefined,
    );
    expect(await readyz(healthPort)).toBe(200);
    const ss = await reconcileUntil(c, ns, 'one', () => true);
    expect(condition(ss, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });

    // A SecretSync created meanwhile is provisioned with the kept endpoint and CA, and its function syncs.
    await secretSyncIn(ns, 'two', 'v2');
    cleanup.push([c, ns, 'two']);
    await waitReady(ns, 'two');
    await synced(ns, 'two', 'v2');
    // The checks kept failing meanwhile (a new SecretSync is provisioned in about a check period).
    await eventually('still failing all along', async () => (logged(c, KEPT).length > 4 ? true : undefined));
    expect(logged(c, UNAVAILABLE)).toEqual([]);
    expect(await readyz(healthPort)).toBe(200);
    expect(metric(await c.metricsText(), 'secretsync_cluster_answer_age_seconds')).toBeGreaterThan(1);

    await clearFaults();
    await eventually('a good answer again', async () => (logged(c, RECOVERED).length > 0 ? true : undefined));
    expect(metric(await c.metricsText(), 'secretsync_cluster_answer_age_seconds')).toBeLessThan(2);
    expect(await reasonsOfEvents(ns)).not.toContain('Warning/ClusterUnavailable');
    for (const name of ['one', 'two'])
      expect(condition(await reconcileUntil(c, ns, name, () => true), 'Ready')?.status).toBe('True');
  });

  it('failures outlasting the window: ClusterUnavailable with an Event, /readyz still 200; recovery', async () => {
    const ns = await freshNamespace('clu');
    const { c, healthPort } = await start(ns, 2_000);
    await secretSyncIn(ns, 'app', 'v1');
    cleanup.push([c, ns, 'app']);
    await waitReady(ns, 'app');

    await addFault(FAIL_DESCRIBE_CLUSTER);
    const down = await reconcileUntil(c, ns, 'app', readyIs('False', 'ClusterUnavailable'), 30_000);
    expect(condition(down, 'Ready')?.message).toMatch(/^DescribeCluster \S+ failing since \d{4}-\d\d-\d\dT/);
    expect(logged(c, KEPT).length, 'tolerated first').toBeGreaterThan(0);
    expect(logged(c, UNAVAILABLE).length).toBeGreaterThan(0);
    expect(await readyz(healthPort)).toBe(200);
    await eventually('a ClusterUnavailable Event', async () =>
      (await reasonsOfEvents(ns)).includes('Warning/ClusterUnavailable') ? true : undefined,
    );

    await clearFaults();
    await reconcileUntil(c, ns, 'app', readyIs('True', 'Ready'), 30_000);
    expect(logged(c, RECOVERED).length).toBeGreaterThan(0);
    expect(await readyz(healthPort)).toBe(200);
  });

  it('no good answer since start: ClusterUnavailable at once, /readyz 200; recovery at the next good answer', async () => {
    const ns = await freshNamespace('clu');
    await addFault(FAIL_DESCRIBE_CLUSTER);
    const { c, healthPort } = await start(ns);
    await secretSyncIn(ns, 'app', 'v1');
    cleanup.push([c, ns, 'app']);
    const ss = await reconcileUntil(c, ns, 'app', readyIs('False', 'ClusterUnavailable'), 30_000);
    expect(ss?.metadata.finalizers ?? [], 'nothing provisioned').toEqual([]);
    expect(await readyz(healthPort)).toBe(200);

    await clearFaults();
    await reconcileUntil(c, ns, 'app', readyIs('True', 'Ready'), 30_000);
    await synced(ns, 'app', 'v1');
  });
});
