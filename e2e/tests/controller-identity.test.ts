import { CloudWatchLogsClient, DescribeLogGroupsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeAccessEntryCommand, EKSClient } from '@aws-sdk/client-eks';
import { DescribeRuleCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameOfArn, regionOfArn } from '../../src/controller/aws/arn.ts';
import type { ResourceRecord } from '../../src/controller/manager.ts';
import { clusterArn, parseClusterArn } from '../../src/controller/naming.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import { spawnController } from '../faults/controller-process.ts';
import { type ClusterInfo, startExtraCluster, stopExtraCluster } from '../testbed/cluster.ts';
import {
  awsCalls,
  deleteAndFinalize,
  isRead,
  readyIs,
  reconcileUntil,
  resetAwsCalls,
  startControllerWith,
  type TestController,
} from './controller-helpers.ts';
import {
  api,
  applySecretSync,
  condition,
  eventually,
  getSecretSync,
  idle,
  secretData,
} from './controller-support.ts';
import { bed, core, freshNamespace, rbac, statusOf } from './support.ts';

/**
 * The controller's identity is its cluster's ARN, and what it provisioned is torn down from the
 * records in status: two clusters of one name in two regions never touch each other's resources,
 * and changing --region, --iam-path or --name-prefix moves everything with nothing left behind.
 */

const OTHER_REGION = 'us-east-1';
const cfg = (region = bed().aws.region) => ({
  endpoint: bed().aws.url,
  region,
  credentials: bed().aws.credentials,
});

async function createSecret(region: string, name: string, value: object): Promise<string> {
  const sm = new SecretsManagerClient(cfg(region));
  return (await sm.send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }))).ARN!;
}

async function putSecret(arn: string, value: object): Promise<string> {
  const sm = new SecretsManagerClient(cfg(regionOfArn(arn)));
  return (await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: JSON.stringify(value) })))
    .VersionId!;
}

/** Whether the thing a record names still exists where it was created. */
async function exists(r: ResourceRecord, namespace: string): Promise<boolean> {
  const swallow404 = (p: Promise<unknown>) =>
    p.then(
      () => true,
      (err: unknown) => {
        const name = (err as Error).name;
        if (statusOf(err) === 404 || /NotFound|NoSuchEntity/.test(name)) return false;
        throw err;
      },
    );
  switch (r.kind) {
    case 'IAMRole': {
      const name = r.id.slice(r.id.lastIndexOf('/') + 1);
      return new IAMClient(cfg())
        .send(new GetRoleCommand({ RoleName: name }))
        .then((o) => o.Role?.Arn === r.id)
        .catch(() => false);
    }
    case 'Function':
      return swallow404(
        new LambdaClient(cfg(regionOfArn(r.id))).send(
          new GetFunctionCommand({ FunctionName: nameOfArn(r.id) }),
        ),
      );
    case 'EventRule':
      return swallow404(
        new EventBridgeClient(cfg(regionOfArn(r.id))).send(
          new DescribeRuleCommand({ Name: nameOfArn(r.id) }),
        ),
      );
    case 'LogGroup': {
      const name = nameOfArn(r.id);
      const out = await new CloudWatchLogsClient(cfg(regionOfArn(r.id))).send(
        new DescribeLogGroupsCommand({ logGroupNamePrefix: name }),
      );
      return (out.logGroups ?? []).some((g) => g.logGroupName === name);
    }
    case 'AccessEntry': {
      const { region, name } = parseClusterArn(r.cluster ?? '');
      return swallow404(
        new EKSClient(cfg(region)).send(
          new DescribeAccessEntryCommand({ clusterName: name, principalArn: r.id }),
        ),
      );
    }
    case 'Role':
      return swallow404(rbac().readNamespacedRole({ namespace, name: r.id.split('/')[1]! }));
    case 'RoleBinding':
      return swallow404(rbac().readNamespacedRoleBinding({ namespace, name: r.id.split('/')[1]! }));
    case 'Secret':
      return swallow404(core().readNamespacedSecret({ namespace, name: r.id.split('/')[1]! }));
  }
}

const records = (ss: SecretSync | undefined) => (ss?.status?.resources ?? []) as ResourceRecord[];

describe('controller settings change: --region, --iam-path, --name-prefix', () => {
  let c: TestController | undefined;
  let ns: string;
  const name = 'app';
  afterAll(async () => {
    if (c) await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
  });

  it('moves every SecretSync: the old resources are gone, the new ones Ready and syncing', async () => {
    ns = await freshNamespace('moved');
    const secretName = `moved/${ns}/db`;
    // The same secret name in both regions: a SecretSync that names its secret by name follows --region.
    await createSecret(bed().aws.region, secretName, { password: 'eu' });
    const usArn = await createSecret(OTHER_REGION, secretName, { password: 'us' });
    await applySecretSync(ns, name, { source: { secretId: secretName } });

    // The informer watches an empty namespace: every pass is one the test drives (reconcileUntil).
    const idleNs = await freshNamespace('moved-idle');
    c = await startControllerWith({ args: ['--tenancy=allow-all', `--namespaces=${idleNs}`] });
    const before = (await reconcileUntil(c, ns, name, readyIs('True'))) as SecretSync;
    await idle();
    await eventually('first sync', async () =>
      (await secretData(ns, name))?.password === 'eu' ? true : undefined,
    );
    const old = records(before);
    expect(old).toHaveLength(8);
    await c.stop();

    c = await startControllerWith({
      args: [
        '--tenancy=allow-all',
        `--namespaces=${idleNs}`,
        `--region=${OTHER_REGION}`,
        `--cluster-region=${bed().aws.region}`,
        '--iam-path=/secretsync/moved/',
        '--name-prefix=moved',
      ],
    });
    const after = (await reconcileUntil(
      c,
      ns,
      name,
      (ss) => readyIs('True')(ss) && records(ss).length === 8 && ss?.status?.secretArn === usArn,
    )) as SecretSync;
    const now = records(after);
    // Everything but the target moved: new identities, in the new region and under the new path/prefix.
    for (const r of now.filter((x) => x.kind !== 'Secret')) {
      expect(old.some((o) => o.kind === r.kind && o.id === r.id)).toBe(false);
    }
    expect(now.find((r) => r.kind === 'Function')?.id).toMatch(
      new RegExp(`^arn:aws:lambda:${OTHER_REGION}:\\d+:function:moved-`),
    );
    expect(now.find((r) => r.kind === 'IAMRole')?.id).toMatch(/:role\/secretsync\/moved\/moved-/);
    expect(now.find((r) => r.kind === 'Role')?.id).toBe(`${ns}/moved-${name}`);
    for (const r of now) expect(await exists(r, ns)).toBe(true);
    // …and nothing of the old is left: not in AWS, not in the cluster.
    for (const r of old.filter((x) => x.kind !== 'Secret'))
      expect(await exists(r, ns), `${r.kind} ${r.id}`).toBe(false);

    // The first sync under the new settings wrote the us-east-1 value; a change there arrives too.
    await idle();
    await eventually('us value', async () =>
      (await secretData(ns, name))?.password === 'us' ? true : undefined,
    );
    await putSecret(usArn, { password: 'us-2' });
    await idle();
    await eventually('us change', async () =>
      (await secretData(ns, name))?.password === 'us-2' ? true : undefined,
    );

    await deleteAndFinalize(c, ns, name);
    for (const r of now.filter((x) => x.kind !== 'Secret'))
      expect(await exists(r, ns), `${r.kind} ${r.id}`).toBe(false);
  });
});

describe('two clusters of the same name in two regions of one account', () => {
  let extra: ClusterInfo;
  let extraKc: KubeConfig;
  let a: TestController | undefined;
  let b: ReturnType<typeof spawnController> | undefined;
  const ns = `twin-${Date.now().toString(36)}`;
  const name = 'db';
  const B_KEY = 'AKIATESTBEDCLUSTERB01';

  beforeAll(async () => {
    extra = await startExtraCluster(bed().aws.url, { region: OTHER_REGION });
    extraKc = new KubeConfig();
    extraKc.loadFromFile(extra.kubeconfigPath);
  }, 180_000);
  afterAll(async () => {
    await b?.kill('SIGTERM');
    if (a) await deleteAndFinalize(a, ns, name).catch(() => {});
    await a?.stop();
    await stopExtraCluster(bed().aws.url, { region: OTHER_REGION }).catch(() => {});
  });

  const extraGet = async (): Promise<SecretSync | undefined> =>
    (await extraKc
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ ...api, namespace: ns, name })
      .catch(() => undefined)) as SecretSync | undefined;
  const extraTarget = async () => {
    const s = await extraKc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: ns, name })
      .catch(() => undefined);
    return s?.data?.password ? Buffer.from(s.data.password, 'base64').toString() : undefined;
  };

  it('both sync the same secret; neither reads-modifies or deletes the other’s; deleting one leaves the other working', async () => {
    expect(extra.clusterName).toBe(bed().clusterName);
    // The same namespace/name SecretSync in each cluster, for the same AWS secret: every regional
    // resource (function, rule, log group) of both lands in the secret's region.
    const arn = await createSecret(bed().aws.region, `twin/${ns}/db`, { password: 'one' });
    await core().createNamespace({ body: { metadata: { name: ns } } });
    await extraKc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
    await applySecretSync(ns, name, { source: { secretId: arn } });
    await extraKc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...api,
      namespace: ns,
      body: {
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'SecretSync',
        metadata: { name },
        spec: { source: { secretId: arn } },
      },
    });
    await resetAwsCalls();

    // Cluster A's controller in this process (the test bed's admin key), B's as its own process with
    // its own access key, so the front door's record tells their calls apart.
    // A's informer watches an empty namespace: every pass of A's is one the test drives.
    a = await startControllerWith({
      args: ['--tenancy=allow-all', `--namespaces=${await freshNamespace('twin-idle')}`],
    });
    b = spawnController(['--tenancy=allow-all', `--namespaces=${ns}`, `--region=${OTHER_REGION}`], {
      KUBECONFIG: extra.kubeconfigPath,
      AWS_ACCESS_KEY_ID: B_KEY,
      AWS_REGION: OTHER_REGION,
    });
    await b.started;
    const inA = (await reconcileUntil(a, ns, name, readyIs('True'))) as SecretSync;
    const inB = await eventually(
      'B Ready',
      async () => {
        const ss = await extraGet();
        return condition(ss, 'Ready')?.status === 'True' ? ss : undefined;
      },
      90_000,
    );

    const A = records(inA);
    const B = records(inB);
    const ownIds = (rs: ResourceRecord[]) =>
      rs.filter((r) => !['Role', 'RoleBinding', 'Secret'].includes(r.kind));
    // Distinct identities for every AWS resource, and the access entries in each cluster's own region.
    for (const r of ownIds(A))
      expect(ownIds(B).some((x) => x.id === r.id && x.cluster === r.cluster)).toBe(false);
    expect(A.find((r) => r.kind === 'AccessEntry')?.cluster).toBe(
      clusterArn({
        partition: 'aws',
        region: bed().aws.region,
        accountId: bed().aws.accountId,
        name: bed().clusterName,
      }),
    );
    expect(B.find((r) => r.kind === 'AccessEntry')?.cluster).toBe(
      clusterArn({
        partition: 'aws',
        region: OTHER_REGION,
        accountId: bed().aws.accountId,
        name: bed().clusterName,
      }),
    );

    // Both follow a change.
    await idle();
    await putSecret(arn, { password: 'two' });
    await idle();
    await eventually(
      'A synced',
      async () => ((await secretData(ns, name))?.password === 'two' ? true : undefined),
      60_000,
    );
    await eventually('B synced', async () => ((await extraTarget()) === 'two' ? true : undefined), 60_000);

    // Neither wrote to the other's resources (names are unique per cluster ARN; the front door saw every call).
    const stems = (rs: ResourceRecord[]) =>
      ownIds(rs)
        .filter((r) => r.kind !== 'AccessEntry')
        .map((r) => (r.kind === 'IAMRole' ? r.id.slice(r.id.lastIndexOf('/') + 1) : nameOfArn(r.id)));
    const admin = bed().aws.credentials.accessKeyId;
    const calls = await awsCalls();
    const writesBy = (key: string) => calls.filter((x) => x.accessKeyId === key && !isRead(x.operation));
    expect(writesBy(B_KEY).length).toBeGreaterThan(0);
    for (const stem of stems(A))
      expect(writesBy(B_KEY).filter((x) => x.resource?.includes(stem))).toEqual([]);
    for (const stem of stems(B))
      expect(writesBy(admin).filter((x) => x.resource?.includes(stem))).toEqual([]);

    // Deleting B's SecretSync removes B's everything, and A keeps working.
    await extraKc
      .makeApiClient(CustomObjectsApi)
      .deleteNamespacedCustomObject({ ...api, namespace: ns, name });
    await eventually('B gone', async () => ((await extraGet()) === undefined ? true : undefined), 90_000);
    for (const r of ownIds(B)) expect(await exists(r, ns), `${r.kind} ${r.id}`).toBe(false);
    for (const r of ownIds(A)) expect(await exists(r, ns), `${r.kind} ${r.id}`).toBe(true);
    await reconcileUntil(a, ns, name, readyIs('True'));
    await putSecret(arn, { password: 'three' });
    await idle();
    await eventually(
      'A still syncs',
      async () => ((await secretData(ns, name))?.password === 'three' ? true : undefined),
      60_000,
    );
    expect((await getSecretSync(ns, name))?.status?.roleArn).toBe(inA.status?.roleArn);
  });
});
