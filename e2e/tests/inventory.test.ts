import { randomBytes } from 'node:crypto';
import { DeleteAccessEntryCommand, DescribeAccessEntryCommand, EKSClient } from '@aws-sdk/client-eks';
import { DescribeRuleCommand, DisableRuleCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DeleteFunctionCommand, GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient, UntagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  awsCalls,
  broadenInlinePolicy,
  type CallRecord,
  namesFor,
  patchSecretSyncStatus,
} from './controller-helpers.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  firstInventory,
  getSecretSync,
  idle,
  startControllerWith,
  type TestController,
  waitReady,
} from './controller-support.ts';
import { awsConfig, bed, freshNamespace } from './support.ts';

/**
 * The inventory pass with its own timers, as it runs in a cluster, its period shortened to 2 s. What
 * a list shows is repaired within one inventory period; what only a read shows is not, until the
 * SecretSync's deep check comes due (drift.ts deepCheckAt, unit-tested; here made due by dating the
 * last check back); consent withdrawn tears down within one period — and a SecretSync at rest costs
 * list calls only: no pass right after it became Ready. The deep period is long enough that no deep
 * check falls due by itself while the file runs.
 */
const RESYNC_MS = 2_000;
const DEEP_MS = 10 * 60_000;
const NS_TAG = 'secretsync.io/namespaces';

const lambda = () => new LambdaClient(awsConfig());
const events = () => new EventBridgeClient(awsConfig());
const eks = () => new EKSClient(awsConfig());
const exists = (p: Promise<unknown>) =>
  p.then(
    () => true,
    (e: Error) => {
      if (/NotFound|NoSuchEntity/.test(e.name)) return false;
      throw e;
    },
  );

describe('the inventory pass, on its own timers', () => {
  let c: TestController;
  let ns = '';
  const controllerKey = () => bed().aws.credentials.accessKeyId;
  const callsFor = async (resource: string, since: number): Promise<CallRecord[]> =>
    (await awsCalls()).filter(
      (x) => x.seq > since && x.accessKeyId === controllerKey() && x.resource?.includes(resource),
    );
  const lastSeq = async () => (await awsCalls()).at(-1)?.seq ?? 0;

  async function provisioned(name: string) {
    const id = randomBytes(4).toString('hex');
    const arn = await createAwsSecret(`inventory/${id}/${name}`, '{"k":"v1"}', [{ Key: NS_TAG, Value: ns }]);
    await applySecretSync(ns, name, { source: { secretId: arn } });
    await waitReady(ns, name);
    await eventually(`${name} Synced`, async () =>
      condition(await getSecretSync(ns, name), 'Synced')?.status === 'True' ? true : undefined,
    );
    return { arn, names: namesFor(ns, name) };
  }

  beforeAll(async () => {
    ns = await freshNamespace('inventory');
    c = await startControllerWith({
      args: ['--tenancy=tag', `--namespaces=${ns}`],
      config: { resyncMs: RESYNC_MS, deepResyncMs: DEEP_MS },
      logLevel: 'info',
    });
    await firstInventory(c);
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('a new SecretSync: no read a list or a create answered, and none again once Ready', async () => {
    const before = await lastSeq();
    const s = await provisioned('quiet');
    await idle();
    const provisioning = (await callsFor(s.names.stem, before)).map((x) => x.operation);
    console.log(`provisioning one SecretSync: ${provisioning.length} calls: ${provisioning.join(', ')}`);
    // The inventory listed neither role, log group, function nor access entry: each is created
    // without a read first. The rule is read (PutRule would overwrite one made since the list).
    for (const op of ['GetRole', 'DescribeLogGroups', 'DescribeAccessEntry', 'ListRolePolicies'])
      expect(provisioning, op).not.toContain(op);
    // One pass: the rule read once, and nothing read again after the first sync.
    expect(provisioning.filter((op) => op === 'DescribeRule')).toHaveLength(1);
    expect(provisioning.filter((op) => op === 'ListTargetsByRule')).toEqual([]);
    const since = await lastSeq();
    // Three inventory periods, well inside the first deep check (at least 10 s after provisioning).
    await new Promise((r) => setTimeout(r, 3 * RESYNC_MS + 500));
    expect((await callsFor(s.names.stem, since)).map((x) => x.operation)).toEqual([]);
    const lists = (await awsCalls()).filter((x) => x.seq > since && x.accessKeyId === controllerKey());
    expect([...new Set(lists.map((x) => x.operation))].sort()).toEqual(
      ['GetResources', 'ListAccessEntries', 'ListRoles', 'ListRules', 'ListSecrets'].sort(),
    );
  });

  it('deleted out of band (function, access entry) or disabled (rule): repaired within one period', async () => {
    const s = await provisioned('listed');
    const clusterName = bed().clusterName;
    const principalArn = (await getSecretSync(ns, 'listed'))!.status!.roleArn!;
    await lambda().send(new DeleteFunctionCommand({ FunctionName: s.names.functionName }));
    await eks().send(new DeleteAccessEntryCommand({ clusterName, principalArn }));
    await events().send(new DisableRuleCommand({ Name: s.names.ruleName }));
    const t0 = Date.now();
    await eventually(
      'function, access entry and rule back',
      async () => {
        const fn = await exists(
          lambda().send(new GetFunctionCommand({ FunctionName: s.names.functionName })),
        );
        const entry = await exists(eks().send(new DescribeAccessEntryCommand({ clusterName, principalArn })));
        const rule = await events().send(new DescribeRuleCommand({ Name: s.names.ruleName }));
        return fn && entry && rule.State === 'ENABLED' ? true : undefined;
      },
      30_000,
    );
    console.log(`listed drift repaired ${((Date.now() - t0) / 1000).toFixed(1)} s after it happened`);
    const line = c.logs.find((l) => l.includes('inventory: full pass') && l.includes('"listed"'));
    expect(line).toBeDefined();
    const differs = (JSON.parse(line!) as { differs: string[] }).differs;
    expect(differs).toEqual(
      expect.arrayContaining(['function missing', 'access entry missing', 'rule differs']),
    );
    await waitReady(ns, 'listed');
  });

  it('what only a read shows (an inline policy broadened) waits for the deep check, which repairs it', async () => {
    const s = await provisioned('deep');
    const { restored: same } = await broadenInlinePolicy(s.names.roleName);
    // Three inventory periods: the lists show no inline policy, so nothing is done.
    await new Promise((r) => setTimeout(r, 3 * RESYNC_MS + 500));
    expect(await same()).toBe(false);
    // Its deep check comes due (the last one dated back a day, as if its slot had come).
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await patchSecretSyncStatus(ns, 'deep', { status: { checkedTime: dayAgo } });
    const t0 = Date.now();
    await eventually('policy restored', async () => ((await same()) ? true : undefined), 30_000);
    // By the deep check: the lists show nothing of an inline policy.
    const passes = c.logs
      .map(
        (l) =>
          JSON.parse(l) as { name?: string; msg: string; time: number; deep?: boolean; differs?: string[] },
      )
      .filter((l) => l.name === 'deep' && l.msg === 'inventory: full pass' && l.time >= t0);
    expect(passes[0]).toMatchObject({ deep: true, differs: [] });
    console.log(
      `deep drift repaired ${((Date.now() - t0) / 1000).toFixed(1)} s after its deep check came due`,
    );
  }, 60_000);

  it('consent withdrawn: torn down within one period (the listed tag, confirmed by a fresh read)', async () => {
    const s = await provisioned('consent');
    await new SecretsManagerClient(awsConfig()).send(
      new UntagResourceCommand({ SecretId: s.arn, TagKeys: [NS_TAG] }),
    );
    const t0 = Date.now();
    const ss = await eventually(
      'PolicyDenied',
      async () => {
        const x = await getSecretSync(ns, 'consent');
        return condition(x, 'Ready')?.reason === 'PolicyDenied' ? x : undefined;
      },
      30_000,
    );
    expect(ss.status?.functionArn).toBeUndefined();
    expect(await exists(lambda().send(new GetFunctionCommand({ FunctionName: s.names.functionName })))).toBe(
      false,
    );
    console.log(`consent withdrawal acted on ${((Date.now() - t0) / 1000).toFixed(1)} s after it`);
  });
});
