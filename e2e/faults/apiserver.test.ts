import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallRecord, metric, namesFor } from '../tests/controller-helpers.ts';
import {
  api,
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  idle,
  secretData,
  startControllerWith,
  type TestController,
} from '../tests/controller-support.ts';
import { awsConfig, bed, control, customObjects, freshNamespace } from '../tests/support.ts';
import { type KubeProxy, startKubeProxy } from './kube-proxy.ts';

/**
 * The API server goes away and comes back; a watch ends with 410 Gone; SecretSync requests fail for
 * a while. The controller must miss no SecretSync (created or deleted meanwhile), must not redo
 * work for SecretSyncs that did not change, and a change event that reached the function while
 * the API server was down must still arrive in the Secret (Lambda retries, then the controller's
 * missed-change check).
 */

const controllerKey = () => bed().aws.credentials.accessKeyId;
const calls = () => control<CallRecord[]>('calls');
const lastSeq = async () => (await calls()).at(-1)?.seq ?? 0;
const controllerCallsSince = async (since: number) =>
  (await calls()).filter((c) => c.seq > since && c.accessKeyId === controllerKey());
const apiserver = (action: 'stop' | 'start' | 'restart-etcd') =>
  control('apiserver', { method: 'POST', body: JSON.stringify({ action }) });

describe('API server restarts, 410 Gone and outages', () => {
  let ns: string;
  let proxy: KubeProxy;
  let controller: TestController | undefined;
  let secretArn: string;
  const figures: Record<string, number> = {};

  const apply = (name: string) =>
    applySecretSync(ns, name, { source: { secretId: secretArn }, target: { name } });
  const synced = (name: string, value: string, timeoutMs = 120_000) =>
    eventually(
      `${ns}/${name} Ready with ${value}`,
      async () => {
        const ss = await getSecretSync(ns, name);
        if (condition(ss, 'Ready')?.status !== 'True') return undefined;
        return (await secretData(ns, name))?.token === value ? true : undefined;
      },
      timeoutMs,
    );
  const gone = (name: string) =>
    eventually(
      `${ns}/${name} deleted`,
      async () => ((await getSecretSync(ns, name)) ? undefined : true),
      120_000,
    );
  /** How often the controller created each SecretSync's role: exactly once, whatever happened. */
  const createRoleCounts = async (names: string[], since: number) => {
    const creates = (await controllerCallsSince(since)).filter((c) => c.operation === 'CreateRole');
    return names.map((n) => creates.filter((c) => c.resource === namesFor(ns, n).roleName).length);
  };

  beforeAll(async () => {
    ns = await freshNamespace('apisrv');
    secretArn = await createAwsSecret(`apisrv/${ns}`, '{"token":"v1"}');
    proxy = await startKubeProxy(bed().kubeconfigPath);
  });

  afterAll(async () => {
    proxy.blockSecretSyncs(false);
    await controller?.stop();
    controller = await startControllerWith({
      args: ['--tenancy=allow-all', `--namespaces=${ns}`, '--concurrency=8'],
      logLevel: 'warn',
    });
    const list = (await customObjects().listNamespacedCustomObject({ ...api, namespace: ns })) as {
      items: { metadata: { name: string } }[];
    };
    for (const i of list.items)
      await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: i.metadata.name });
    for (const i of list.items) await gone(i.metadata.name).catch(() => {});
    await controller.stop();
    await proxy.close();
    process.stdout.write(`api server faults: ${JSON.stringify(figures)}\n`);
  }, 300_000);

  it('a restart in the middle of provisioning: every SecretSync Ready, each role created once', async () => {
    controller = await startControllerWith({
      kc: proxy.kubeConfig(),
      args: ['--tenancy=allow-all', `--namespaces=${ns}`, '--concurrency=8', '--resync-period=10m'],
      logLevel: 'warn',
    });
    const since = await lastSeq();
    const names = Array.from({ length: 12 }, (_, i) => `a${i}`);
    for (const n of names) await apply(n);
    await eventually('provisioning under way', async () =>
      (await controllerCallsSince(since)).some((c) => c.operation === 'CreateFunction') ? true : undefined,
    );
    await control('restart-apiserver', { method: 'POST' });
    for (const n of names) await synced(n, 'v1');
    expect(await createRoleCounts(names, since)).toEqual(names.map(() => 1));
  });

  it('a watch ended with 410 Gone: the controller lists again and redoes nothing for unchanged SecretSyncs', async () => {
    // A controller started now, through the proxy, with nothing pending: its first pass over the
    // 12 (reads only) leaves no retry timer behind that could fire during the check below.
    await controller?.stop();
    controller = await startControllerWith({
      kc: proxy.kubeConfig(),
      args: ['--tenancy=allow-all', `--namespaces=${ns}`, '--concurrency=8', '--resync-period=10m'],
      logLevel: 'warn',
    });
    // Let that pass finish: no controller call for 3 s.
    await idle();
    await eventually(
      'the controller to go quiet',
      async () => {
        const seq = await lastSeq();
        await new Promise((r) => setTimeout(r, 3_000));
        return (await controllerCallsSince(seq)).length === 0 ? true : undefined;
      },
      60_000,
    );
    const before = proxy.requests.length;
    const since = await lastSeq();
    expect(proxy.expireWatches()).toBeGreaterThanOrEqual(1);
    await eventually('a fresh list and watch of SecretSyncs', async () => {
      const after = proxy.requests.slice(before).filter((r) => r.path.endsWith('/secretsyncs'));
      return after.some((r) => !r.watch) && after.some((r) => r.watch) ? true : undefined;
    });
    // Give a storm, if there were one, time to show.
    await new Promise((r) => setTimeout(r, 3_000));
    // (DescribeCluster is the controller's periodic cluster check, not SecretSync work.)
    const aws = (await controllerCallsSince(since)).filter((c) => c.operation !== 'DescribeCluster');
    figures.awsCallsAfter410 = aws.length;
    expect(aws.map((c) => c.operation)).toEqual([]);
  });

  it('SecretSyncs created and deleted while the controller cannot reach them are all handled when it can', async () => {
    const since = await lastSeq();
    proxy.blockSecretSyncs(true);
    proxy.expireWatches();
    const added = ['b0', 'b1', 'b2', 'b3'];
    const removed = ['a0', 'a1', 'a2'];
    for (const n of added) await apply(n);
    for (const n of removed)
      await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: n });
    await new Promise((r) => setTimeout(r, 3_000));
    // Nothing happened yet: the controller could not see them.
    expect((await getSecretSync(ns, 'a0'))?.metadata.deletionTimestamp).toBeDefined();
    proxy.blockSecretSyncs(false);
    for (const n of added) await synced(n, 'v1');
    for (const n of removed) await gone(n);
    expect(await createRoleCounts(added, since)).toEqual(added.map(() => 1));
    const deletes = (await controllerCallsSince(since)).filter((c) => c.operation === 'DeleteRole');
    expect(deletes.map((c) => c.resource).sort()).toEqual(
      removed.map((n) => namesFor(ns, n).roleName).sort(),
    );
  });

  it('etcd and the API server restarted together: new SecretSyncs still become Ready', async () => {
    const since = await lastSeq();
    const names = ['c0', 'c1', 'c2'];
    for (const n of names) await apply(n);
    await apiserver('restart-etcd');
    for (const n of names) await synced(n, 'v1');
    expect(await createRoleCounts(names, since)).toEqual(names.map(() => 1));
  });

  it('a change that reaches the function while the API server is down arrives once it is back', async () => {
    // A controller with a short resync, so its next pass comes soon after the outage.
    await controller?.stop();
    controller = await startControllerWith({
      args: ['--tenancy=allow-all', `--namespaces=${ns}`, '--concurrency=8', '--resync-period=10s'],
      logLevel: 'warn',
    });
    const fn = namesFor(ns, 'b0').functionName;
    const invocationsBefore = (await control<{ functionName: string }[]>('invocations')).length;
    await apiserver('stop');
    try {
      await new SecretsManagerClient(awsConfig()).send(
        new PutSecretValueCommand({ SecretId: secretArn, SecretString: '{"token":"v2"}' }),
      );
      await idle(); // the change event and all of Lambda's retries have run, against a dead API server
    } finally {
      await apiserver('start');
    }
    const runs = (await control<{ functionName: string; ok: boolean; attempts: unknown[] }[]>('invocations'))
      .slice(invocationsBefore)
      .filter((i) => i.functionName === fn);
    expect(runs.length).toBeGreaterThanOrEqual(1);
    // Retryable: Lambda ran it again (1 + its retries), each attempt failing on the API server.
    expect(runs[0]!.ok).toBe(false);
    expect(runs[0]!.attempts.length).toBeGreaterThan(1);
    figures.attemptsDuringOutage = runs[0]!.attempts.length;
    // Nothing more will come from AWS: the controller notices the target is behind and invokes.
    for (const n of ['b0', 'b1', 'b2', 'b3', 'c0']) await synced(n, 'v2', 180_000);
    expect(
      metric(await controller!.metricsText(), 'secretsync_invocations_total', { trigger: 'missed-change' }),
    ).toBeGreaterThanOrEqual(5);
  }, 300_000);
});
