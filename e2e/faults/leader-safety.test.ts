import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type LeaderElector, startLeaderElection } from '../../src/controller/leader.ts';
import {
  api,
  createAwsSecret,
  eventually,
  startControllerWith,
  type TestController,
  waitReady,
} from '../tests/controller-support.ts';
import { adminKubeConfig, bed, control, customObjects, freshNamespace } from '../tests/support.ts';
import { type KubeProxy, startKubeProxy } from './kube-proxy.ts';

/**
 * Leader election against the real API server, with what makes two leaders in practice: replicas
 * whose clocks disagree by an hour, Lease requests that hang, and a leader that loses its Lease in
 * the middle of a pass. Short lease timings (3 s / 2 s / 0.5 s) keep it quick; the checks are about
 * who leads, never about how fast.
 */
const LEASE = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const HOUR = 3_600_000;
const silent = pino({ level: 'silent' });

const electors: LeaderElector[] = [];
let proxy: KubeProxy | undefined;
afterEach(async () => {
  for (const e of electors.splice(0)) await e.stop({ release: false });
  await proxy?.close();
  proxy = undefined;
});

function elect(namespace: string, name: string, identity: string, skewMs = 0, kc = adminKubeConfig()) {
  const e = startLeaderElection({
    kc,
    namespace,
    name,
    identity,
    ...LEASE,
    log: silent,
    onStartedLeading: () => {},
    onStoppedLeading: () => {},
    clock: { wall: () => Date.now() + skewMs, monotonic: () => performance.now() + skewMs },
  });
  electors.push(e);
  return e;
}

/** Samples who leads every 50 ms for `ms`; fails at once if two lead together. */
async function watchLeaders(all: Record<string, LeaderElector>, ms: number): Promise<Set<string>> {
  const seen = new Set<string>();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const leading = Object.entries(all)
      .filter(([, e]) => e.isLeader())
      .map(([id]) => id);
    expect(leading.length, `leaders at once: ${leading.join(', ')}`).toBeLessThanOrEqual(1);
    for (const id of leading) seen.add(id);
    await sleep(50);
  }
  return seen;
}

describe('leader election: clocks, hung requests, a lost lease mid-pass', () => {
  it('followers an hour ahead or behind neither take a live lease nor wait an hour for a dead one', async () => {
    const ns = await freshNamespace('skew');
    const a = elect(ns, 'lease', 'a');
    await eventually('a leads', async () => (a.isLeader() ? true : undefined));
    const ahead = elect(ns, 'lease', 'ahead', HOUR);
    const behind = elect(ns, 'lease', 'behind', -HOUR);
    // Three lease durations: a renews, nobody else leads (an hour-ahead clock compared with a's
    // renewTime would have taken over at once).
    const seen = await watchLeaders({ a, ahead, behind }, 3 * LEASE.leaseDurationMs);
    expect([...seen]).toEqual(['a']);

    // a crashes (the Lease is not released): one of the skewed followers takes over after the lease
    // duration as each sees it (an hour-behind clock compared with renewTime would wait an hour).
    await a.stop({ release: false });
    const next = await watchLeaders({ ahead, behind }, LEASE.leaseDurationMs + 4 * LEASE.retryPeriodMs);
    expect(next.size).toBe(1);
    const [winner] = [...next];
    const other = winner === 'ahead' ? behind : ahead;
    await (winner === 'ahead' ? ahead : behind).stop({ release: false });
    const last = await watchLeaders({ other }, LEASE.leaseDurationMs + 4 * LEASE.retryPeriodMs);
    expect([...last]).toEqual(['other']);
  });

  it('a leader whose Lease requests hang steps down before another replica can take over', async () => {
    const ns = await freshNamespace('hang');
    proxy = await startKubeProxy(bed().kubeconfigPath);
    const a = elect(ns, 'lease', 'a', 0, proxy.kubeConfig());
    await eventually('a leads', async () => (a.isLeader() ? true : undefined));
    const b = elect(ns, 'lease', 'b');
    await watchLeaders({ a, b }, LEASE.leaseDurationMs);
    expect(a.isLeader()).toBe(true);

    // The API server stops answering a's Lease requests. Its requests time out inside the renew
    // deadline, so it steps down before its Lease can have expired for b, and b takes over.
    proxy.hangLeases(true);
    const seen = await watchLeaders({ a, b }, LEASE.leaseDurationMs + 4 * LEASE.retryPeriodMs);
    expect(a.isLeader()).toBe(false);
    expect(b.isLeader()).toBe(true);
    expect(seen).toEqual(new Set(['a', 'b']));
    proxy.hangLeases(false);
  });

  describe('a controller that loses its Lease in the middle of a pass', () => {
    let c: TestController | undefined;
    afterAll(async () => {
      await control('faults', { method: 'DELETE' });
      await c?.stop();
    });

    it('sends no write after the loss, to AWS or Kubernetes, and works again once it leads again', async () => {
      const leaseNs = await freshNamespace('lease');
      const ns = await freshNamespace('midpass');
      const leaseName = `secretsync-${randomBytes(3).toString('hex')}`;
      c = await startControllerWith({
        args: [
          '--tenancy=allow-all',
          '--leader-elect=true',
          `--leader-election-namespace=${leaseNs}`,
          `--lease-name=${leaseName}`,
          '--identity=ctl',
          `--namespaces=${ns}`,
        ],
        logLevel: 'warn',
      });
      const leases = adminKubeConfig().makeApiClient(CoordinationV1Api);
      await eventually('ctl leads', async () => {
        const l = await leases
          .readNamespacedLease({ name: leaseName, namespace: leaseNs })
          .catch(() => undefined);
        return l?.spec?.holderIdentity === 'ctl' ? true : undefined;
      });

      // The pass is held at CreateFunction for 8 s (done and answered late, as a slow endpoint).
      const { accessKeyId } = bed().aws.credentials;
      await control('faults', {
        method: 'POST',
        body: JSON.stringify({
          operation: 'CreateFunction',
          kind: 'delay',
          delayMs: 8000,
          accessKeyId,
          nth: [1],
        }),
      });
      const arn = await createAwsSecret(`midpass/${randomBytes(4).toString('hex')}`, '{"a":"1"}');
      await customObjects().createNamespacedCustomObject({
        ...api,
        namespace: ns,
        body: {
          apiVersion: 'secretsync.io/v1alpha1',
          kind: 'SecretSync',
          metadata: { name: 'db' },
          spec: { source: { secretId: arn } },
        },
      });
      type Call = { time: number; service: string; operation: string; accessKeyId?: string; fault?: string };
      await eventually('the pass to reach CreateFunction', async () =>
        (await control<Call[]>('calls')).some((x) => x.operation === 'CreateFunction' && x.fault === 'delay')
          ? true
          : undefined,
      );

      // Another replica's live Lease (as after a partition): ctl steps down at its next renewal.
      const lease = await leases.readNamespacedLease({ name: leaseName, namespace: leaseNs });
      await leases.replaceNamespacedLease({
        name: leaseName,
        namespace: leaseNs,
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: 'usurper', renewTime: new V1MicroTime(Date.now()) },
        },
      });
      await eventually('ctl steps down', async () =>
        /secretsync_leader 0/.test(await c!.metricsText()) ? true : undefined,
      );
      const lostAt = Date.now();
      const before = (await customObjects().getNamespacedCustomObject({
        ...api,
        namespace: ns,
        name: 'db',
      })) as {
        metadata: { resourceVersion: string };
      };

      // The held CreateFunction returns; the pass goes on — and sends nothing more.
      await sleep(8000 + 2000);
      const writes = (await control<Call[]>('calls')).filter(
        (x) => x.time > lostAt && x.accessKeyId === accessKeyId && !/^(Get|List|Describe)/.test(x.operation),
      );
      expect(writes.map((x) => `${x.service}.${x.operation}`)).toEqual([]);
      const after = (await customObjects().getNamespacedCustomObject({
        ...api,
        namespace: ns,
        name: 'db',
      })) as {
        metadata: { resourceVersion: string };
      };
      expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
      // Not for want of trying: the pass went on and its next write was refused.
      expect(c.logs.join('\n')).toContain(
        'write not sent: its pass belongs to a leadership term that has ended',
      );

      // The usurper never renews: ctl leads again after the lease duration, and finishes the job.
      await waitReady(ns, 'db', 60_000);
    });
  });
});
