import {
  CloudWatchLogsClient,
  DeleteLogGroupCommand,
  DescribeLogGroupsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { DeleteAccessEntryCommand, DescribeAccessEntryCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  DisableRuleCommand,
  EventBridgeClient,
  ListTargetsByRuleCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  GetRoleCommand,
  IAMClient,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import {
  DeleteFunctionCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import {
  SecretsManagerClient,
  TagResourceCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-secrets-manager';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import {
  auditEvents,
  awsCalls,
  broadenInlinePolicy,
  clearFaults,
  controllerCalls,
  controllerIdentity,
  deleteAndFinalize,
  isRead,
  metric,
  namesFor,
  opsOf,
  patchSecretSync,
  patchSecretSyncStatus,
  readyIs,
  reconcileUntil,
  resetAwsCalls,
  setAuthMode,
  startControllerWith,
  type TestController,
  writesOf,
} from './controller-helpers.ts';
import {
  api,
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  firstInventory,
  getSecretSync,
  idle,
  secretData,
} from './controller-support.ts';
import { awsConfig, bed, core, customObjects, freshNamespace, rbac, statusOf } from './support.ts';

const NS_TAG = 'secretsync.io/namespaces';
const iam = () => new IAMClient(awsConfig());
const lambda = () => new LambdaClient(awsConfig());
const events = () => new EventBridgeClient(awsConfig());
const eks = () => new EKSClient(awsConfig());
const logs = () => new CloudWatchLogsClient(awsConfig());
const sm = () => new SecretsManagerClient(awsConfig());

/** 'exists' or the error name an AWS read answers with. */
const existence = (p: Promise<unknown>) =>
  p.then(
    () => 'exists',
    (e: { name?: string }) => e.name ?? 'error',
  );
/** The HTTP status of a Kubernetes read: 200 or the error's. */
const kubeStatus = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (e: unknown) => statusOf(e),
  );

describe('controller reconcile, called directly against a real API server and moto', () => {
  let c: TestController;
  let username: string;
  /** Every SecretSync a test made, finalized after the suite so later files start clean. */
  const made: [string, string][] = [];

  beforeAll(async () => {
    // The informer watches only an empty namespace: every pass in these tests is one we call, so
    // the call log holds exactly what each pass did.
    const home = await freshNamespace('ctl');
    const id = await controllerIdentity(home);
    username = id.username;
    // Its own inventory pass runs once, at start (and when a test asks): a periodic one would add
    // its list calls to the passes the tests count.
    c = await startControllerWith({
      kc: id.kc,
      args: ['--tenancy=tag', `--namespaces=${home}`],
      config: { resyncMs: 3_600_000 },
    });
    await firstInventory(c);
  });
  afterEach(async () => {
    await clearFaults();
  });
  afterAll(async () => {
    for (const [ns, name] of made) await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
  });

  const key = (ns: string, name: string) => `${ns}/${name}`;

  /** A tagged AWS secret and a SecretSync in a fresh namespace (not reconciled yet). */
  async function create(prefix: string, spec: Record<string, unknown> = {}, tagFor?: string) {
    const ns = await freshNamespace(prefix);
    const name = 'app';
    const secretId = `${prefix}/${ns}/app`;
    const arn = await createAwsSecret(secretId, JSON.stringify({ user: 'u', password: 'p1' }), [
      { Key: NS_TAG, Value: tagFor ?? ns },
    ]);
    await applySecretSync(ns, name, { source: { secretId }, target: { name: 'creds' }, ...spec });
    made.push([ns, name]);
    return { ns, name, secretId, arn, names: namesFor(ns, name) };
  }

  /** Reconciles to Ready and waits for the first sync to land (Synced=True, function idle). */
  async function provision(prefix: string, spec: Record<string, unknown> = {}) {
    const s = await create(prefix, spec);
    await reconcileUntil(c, s.ns, s.name, readyIs('True'));
    await idle();
    const ss = await eventually('Synced=True', async () => {
      const x = await getSecretSync(s.ns, s.name);
      return condition(x, 'Synced')?.status === 'True' ? x : undefined;
    });
    return { ...s, ss };
  }

  /** One pass; returns the controller's AWS calls during it. */
  async function pass(ns: string, name: string) {
    await resetAwsCalls();
    const result = await c.reconcileNow(key(ns, name));
    return { result, calls: await controllerCalls() };
  }

  const invokes = async () => (await controllerCalls()).filter((x) => x.operation === 'Invoke').length;

  it('is idempotent: a full pass only reads, and records only that it checked everything', async () => {
    const s = await provision('steady');
    const auditMark = auditEvents(username).length;

    const first = await pass(s.ns, s.name);
    const second = await pass(s.ns, s.name);
    for (const p of [first, second]) {
      expect(writesOf(p.calls), 'mutating AWS calls in a steady-state pass').toEqual([]);
      expect(p.calls.every((x) => isRead(x.operation))).toBe(true);
    }
    // Both passes read the same things: one read per provisioned thing's state, nothing more.
    expect(opsOf(second.calls)).toEqual(opsOf(first.calls));
    const perPass = first.calls.length;
    console.log(`full pass: ${perPass} AWS reads per SecretSync: ${opsOf(first.calls).join(', ')}`);
    expect(opsOf(first.calls)).toEqual(
      [
        'DescribeSecret', // source: ARN, KMS key, tenancy tag
        'GetRole',
        'ListRolePolicies',
        'GetRolePolicy',
        'ListAttachedRolePolicies',
        'DescribeLogGroups',
        'ListTagsForResource', // log group
        'GetFunction',
        'GetFunctionEventInvokeConfig', // Lambda's retries and on-failure destination
        'DescribeRule',
        'ListTagsForResource', // rule
        'GetPolicy', // the Lambda permission
        'ListTargetsByRule',
        'DescribeAccessEntry',
      ].sort(),
    );

    // The Kubernetes side of the same two passes: reads, and one status write each that records
    // when everything was last read (status.checkedTime) — nothing else changes.
    await new Promise((r) => setTimeout(r, 300));
    const kube = auditEvents(username)
      .slice(auditMark)
      .filter((e) => e.objectRef?.namespace === s.ns);
    const kubeWrites = kube.filter((e) => !['get', 'list', 'watch'].includes(e.verb));
    expect(kubeWrites.map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource}`)).toEqual(
      kubeWrites.length === 0 ? [] : kubeWrites.map(() => 'patch secretsyncs/status'),
    );
    const kubeReads = kube
      .filter((e) => ['get', 'list', 'watch'].includes(e.verb))
      .map((e) => `${e.verb} ${e.objectRef?.resource}`)
      .sort();
    console.log(`full pass: ${kubeReads.length / 2} Kubernetes reads per pass: ${kubeReads.join(', ')}`);
    expect(kubeReads).toEqual(
      [
        'get roles',
        'get rolebindings',
        'get secretsyncs',
        'get roles',
        'get rolebindings',
        'get secretsyncs',
      ].sort(),
    );
    const after = (await getSecretSync(s.ns, s.name))!;
    expect(Date.parse(after.status!.checkedTime!)).toBeGreaterThan(Date.now() - 60_000);
    expect(after.status?.provisionedHash).toMatch(/^[\w-]{32}$/);
  });

  it('at rest the inventory pass makes list calls only, and queues nothing', async () => {
    const s = await provision('rest');
    const key = `${s.ns}/${s.name}`;
    await resetAwsCalls();
    const r = await c.inventoryNow([(await getSecretSync(s.ns, s.name))!]);
    const calls = await controllerCalls();
    console.log(`inventory pass: ${calls.length} AWS calls: ${opsOf(calls).join(', ')}`);
    expect([...new Set(opsOf(calls))]).toEqual(
      ['GetResources', 'ListAccessEntries', 'ListRoles', 'ListRules', 'ListSecrets'].sort(),
    );
    expect(r.inventory.failed).toEqual([]);
    expect(r.queued.get(key), 'a SecretSync just checked, nothing differing').toEqual(undefined);
    expect(await c.reconcileNow(key)).toBeUndefined();
  });

  it('a deep check reads only what the lists do not show', async () => {
    const s = await provision('deep');
    const key = `${s.ns}/${s.name}`;
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await patchSecretSyncStatus(s.ns, s.name, { status: { checkedTime: dayAgo } });
    const intent = (await c.inventoryNow([(await getSecretSync(s.ns, s.name))!])).queued.get(key);
    expect(intent).toEqual({ differs: [], deep: true, resync: false });
    const { calls } = await pass(s.ns, s.name);
    expect(writesOf(calls)).toEqual([]);
    console.log(`deep check: ${calls.length} AWS reads: ${opsOf(calls).join(', ')}`);
    expect(opsOf(calls)).toEqual(
      [
        'GetRole', // boundary and tags (ListRoles shows neither)
        'ListRolePolicies',
        'GetRolePolicy',
        'ListAttachedRolePolicies',
        'DescribeLogGroups', // retention (the Tagging API listed it with its tags)
        'GetFunction', // configuration, code, State
        'GetFunctionEventInvokeConfig',
        'ListTagsForResource', // rule (ListRules listed pattern and state)
        'GetPolicy',
        'ListTargetsByRule',
        'DescribeAccessEntry',
      ].sort(),
    );
    expect(Date.parse((await getSecretSync(s.ns, s.name))!.status!.checkedTime!)).toBeGreaterThan(
      Date.now() - 60_000,
    );
  });

  describe('drift repair: one pass fixes each out-of-band change with exactly the write it needs', () => {
    let s: Awaited<ReturnType<typeof provision>>;
    beforeAll(async () => {
      s = await provision('drift');
    });

    it('function MemorySize changed → one UpdateFunctionConfiguration', async () => {
      const FunctionName = s.names.functionName;
      const want = (await lambda().send(new GetFunctionConfigurationCommand({ FunctionName }))).MemorySize;
      await lambda().send(new UpdateFunctionConfigurationCommand({ FunctionName, MemorySize: 1024 }));
      const { calls } = await pass(s.ns, s.name);
      expect(opsOf(writesOf(calls))).toEqual(['UpdateFunctionConfiguration']);
      const now = await lambda().send(new GetFunctionConfigurationCommand({ FunctionName }));
      expect(now.MemorySize).toBe(want);
      // moto finishes the update at once, so Ready stays True (AWS would report InProgress a moment).
      expect(readyIs('True', 'Ready')(await getSecretSync(s.ns, s.name))).toBe(true);
      expect(writesOf((await pass(s.ns, s.name)).calls)).toEqual([]);
    });

    it('role inline policy broadened → one PutRolePolicy restoring it', async () => {
      const policy = await broadenInlinePolicy(s.names.roleName);
      const { calls } = await pass(s.ns, s.name);
      expect(opsOf(writesOf(calls))).toEqual(['PutRolePolicy']);
      expect(await policy.restored()).toBe(true);
      expect(writesOf((await pass(s.ns, s.name)).calls)).toEqual([]);
    });

    it('rule disabled → one PutRule re-enabling it', async () => {
      const Name = s.names.ruleName;
      await events().send(new DisableRuleCommand({ Name }));
      const { calls } = await pass(s.ns, s.name);
      expect(opsOf(writesOf(calls))).toEqual(['PutRule']);
      expect((await events().send(new DescribeRuleCommand({ Name }))).State).toBe('ENABLED');
      expect(writesOf((await pass(s.ns, s.name)).calls)).toEqual([]);
    });

    it('RoleBinding deleted → created again, no AWS write', async () => {
      await rbac().deleteNamespacedRoleBinding({ name: s.names.rbacName, namespace: s.ns });
      const mark = auditEvents(username).length;
      const { calls } = await pass(s.ns, s.name);
      expect(writesOf(calls)).toEqual([]);
      const rb = await rbac().readNamespacedRoleBinding({ name: s.names.rbacName, namespace: s.ns });
      expect(rb.subjects?.[0]?.name).toBe(`secretsync:${s.ns}:${s.name}`);
      await new Promise((r) => setTimeout(r, 300));
      const kubeWrites = auditEvents(username)
        .slice(mark)
        .filter((e) => e.objectRef?.namespace === s.ns && !['get', 'list', 'watch'].includes(e.verb))
        .filter((e) => e.objectRef?.resource !== 'secretsyncs') // the pass's status (checkedTime)
        .map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.name}`);
      // Created by POST (never applied over a same-named binding made meanwhile).
      expect(kubeWrites).toEqual([`create rolebindings/${s.names.rbacName}`]);
    });
  });

  it('force-sync: each new annotation value invokes once, and only once', async () => {
    const s = await provision('force');
    await patchSecretSync(s.ns, s.name, { metadata: { annotations: { 'secretsync.io/force-sync': '1' } } });
    await pass(s.ns, s.name);
    expect(await invokes()).toBe(1);
    expect((await getSecretSync(s.ns, s.name))?.status?.lastForceSync).toBe('1');

    await pass(s.ns, s.name);
    expect(await invokes(), 'the same value again').toBe(0);

    await patchSecretSync(s.ns, s.name, { metadata: { annotations: { 'secretsync.io/force-sync': '2' } } });
    await pass(s.ns, s.name);
    expect(await invokes()).toBe(1);
    expect((await getSecretSync(s.ns, s.name))?.status?.lastForceSync).toBe('2');
    expect(metric(await c.metricsText(), 'secretsync_invocations_total', { trigger: 'force-sync' })).toBe(2);
  });

  it('backstop resync: the inventory pass asks for it once the interval has passed; it only invokes', async () => {
    const s = await provision('resync', { resyncInterval: '1m' });
    const key = `${s.ns}/${s.name}`;
    const before = metric(await c.metricsText(), 'secretsync_invocations_total', { trigger: 'resync' });
    // Not due yet: nothing asked.
    const now = async () => (await c.inventoryNow([(await getSecretSync(s.ns, s.name))!])).queued.get(key);
    expect(await now()).toBeUndefined();

    const twoMinutesAgo = new Date(Date.now() - 120_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await patchSecretSyncStatus(s.ns, s.name, { status: { lastInvokeTime: twoMinutesAgo } });
    expect(await now()).toEqual({ differs: [], deep: false, resync: true });
    const due = await pass(s.ns, s.name);
    expect(opsOf(due.calls), 'nothing read: the function reads').toEqual(['Invoke']);
    expect(metric(await c.metricsText(), 'secretsync_invocations_total', { trigger: 'resync' })).toBe(
      before + 1,
    );
    const ss = await getSecretSync(s.ns, s.name);
    expect(Date.parse(ss!.status!.lastInvokeTime!)).toBeGreaterThan(Date.now() - 30_000);

    // The function ran with that trigger and the listed version: the target holds that version,
    // untouched, so it read nothing from Secrets Manager.
    await idle();
    const fnLines = async () => {
      const res = await fetch(`${bed().aws.url}/_testbed/logs?function=${s.names.functionName}`);
      return ((await res.json()) as { text: string }[])
        .map((l) => l.text)
        .filter((t) => t.includes('"message":"sync"'));
    };
    const valueReads = async () =>
      (await awsCalls()).filter((x) => x.operation === 'GetSecretValue' && x.resource === s.arn).length;
    expect(await valueReads(), 'GetSecretValue in an intact backstop run').toBe(0);
    const intact = (await fnLines()).at(-1);
    expect(intact).toContain('"trigger":"resync"');
    expect(intact).toContain('"unchanged":true');

    // A hand edit of a synced key (another field manager takes it over): the next backstop run
    // reads the value and puts the key back.
    await core().patchNamespacedSecret(
      {
        namespace: s.ns,
        name: 'creds',
        fieldManager: 'kubectl-edit',
        body: { data: { password: Buffer.from('edited').toString('base64') } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await patchSecretSyncStatus(s.ns, s.name, { status: { lastInvokeTime: twoMinutesAgo } });
    expect(await now()).toEqual({ differs: [], deep: false, resync: true });
    await pass(s.ns, s.name);
    await idle();
    expect(await valueReads(), 'the edited target made the function read').toBeGreaterThan(0);
    expect(await secretData(s.ns, 'creds')).toEqual({ user: 'u', password: 'p1' });
    expect((await fnLines()).at(-1)).not.toContain('"unchanged":true');
  });

  it('suspend disables the rule and stops invocations; resuming re-enables it', async () => {
    const s = await provision('suspend');
    const Name = s.names.ruleName;
    await patchSecretSync(s.ns, s.name, {
      spec: { suspend: true },
      metadata: { annotations: { 'secretsync.io/force-sync': 'while-suspended' } },
    });
    const suspended = await pass(s.ns, s.name);
    expect(opsOf(writesOf(suspended.calls))).toEqual(['PutRule']);
    expect((await events().send(new DescribeRuleCommand({ Name }))).State).toBe('DISABLED');
    let ss = await getSecretSync(s.ns, s.name);
    expect(condition(ss, 'Ready')).toMatchObject({ status: 'True', reason: 'Suspended' });
    // Another pass while suspended: still nothing invoked, nothing written.
    const again = await pass(s.ns, s.name);
    expect(writesOf(again.calls)).toEqual([]);

    await patchSecretSync(s.ns, s.name, { spec: { suspend: false } });
    const resumed = await pass(s.ns, s.name);
    expect((await events().send(new DescribeRuleCommand({ Name }))).State).toBe('ENABLED');
    ss = await getSecretSync(s.ns, s.name);
    expect(condition(ss, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    // The force-sync asked for while suspended is served on resume, once.
    expect(opsOf(writesOf(resumed.calls))).toEqual(['Invoke', 'PutRule']);
    expect(ss?.status?.lastForceSync).toBe('while-suspended');
  });

  it('Conflict: a same-named role without our tags is left untouched and nothing else is left', async () => {
    const ns = await freshNamespace('conflict');
    const names = namesFor(ns, 'app');
    const foreignPolicy = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
    };
    await iam().send(
      new CreateRoleCommand({
        RoleName: names.roleName,
        Path: names.rolePath,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
        Tags: [{ Key: 'team', Value: 'someone-else' }],
      }),
    );
    await iam().send(
      new PutRolePolicyCommand({
        RoleName: names.roleName,
        PolicyName: 'theirs',
        PolicyDocument: JSON.stringify(foreignPolicy),
      }),
    );
    const roleBefore = (await iam().send(new GetRoleCommand({ RoleName: names.roleName }))).Role!;
    const secretId = `conflict/${ns}/app`;
    await createAwsSecret(secretId, '{"a":"b"}', [{ Key: NS_TAG, Value: ns }]);
    await applySecretSync(ns, 'app', { source: { secretId } });
    made.push([ns, 'app']);

    await resetAwsCalls();
    const ss = await reconcileUntil(c, ns, 'app', readyIs('False', 'Conflict'));
    expect(condition(ss, 'Ready')?.message).toContain(names.roleName);
    // The rule comes first (the smaller quota); created this pass, it is removed again at the conflict.
    // (An inventory taken before their role existed did not list it: then CreateRole is tried
    // first, and IAM refuses it, 409 — nothing written.)
    const calls = await controllerCalls();
    expect(opsOf(writesOf(calls).filter((x) => x.status < 400))).toEqual(['DeleteRule', 'PutRule']);
    for (const refused of writesOf(calls).filter((x) => x.status >= 400))
      expect([refused.operation, refused.status]).toEqual(['CreateRole', 409]);
    const rule = await events()
      .send(new DescribeRuleCommand({ Name: names.ruleName }))
      .catch((e: Error) => e);
    expect((rule as Error).name).toBe('ResourceNotFoundException');

    const roleAfter = (await iam().send(new GetRoleCommand({ RoleName: names.roleName }))).Role!;
    expect(roleAfter.Tags).toEqual(roleBefore.Tags);
    expect(roleAfter.AssumeRolePolicyDocument).toEqual(roleBefore.AssumeRolePolicyDocument);
    expect((await iam().send(new ListRolePoliciesCommand({ RoleName: names.roleName }))).PolicyNames).toEqual(
      ['theirs'],
    );
    // One request at a time: a second one started early could reject before it is awaited.
    for (const call of [
      () => lambda().send(new GetFunctionConfigurationCommand({ FunctionName: names.functionName })),
      () => events().send(new DescribeRuleCommand({ Name: names.ruleName })),
    ])
      expect(await existence(call())).toBe('ResourceNotFoundException');
    expect(await kubeStatus(rbac().readNamespacedRole({ name: names.rbacName, namespace: ns }))).toBe(404);

    // A Warning Event says why.
    const evs = await core().listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=app' });
    expect(evs.items.some((e) => e.reason === 'Conflict' && e.type === 'Warning')).toBe(true);

    // Deleting the SecretSync still leaves their role alone.
    await resetAwsCalls();
    await deleteAndFinalize(c, ns, 'app');
    expect(writesOf(await controllerCalls()).filter((x) => x.resource === names.roleName)).toEqual([]);
    expect(await existence(iam().send(new GetRoleCommand({ RoleName: names.roleName })))).toBe('exists');
    await iam().send(new DeleteRolePolicyCommand({ RoleName: names.roleName, PolicyName: 'theirs' }));
    await iam().send(new DeleteRoleCommand({ RoleName: names.roleName }));
  });

  describe('a cluster without access entries', () => {
    let c2: TestController | undefined;
    afterEach(async () => {
      await setAuthMode('API_AND_CONFIG_MAP');
      await c2?.stop();
      c2 = undefined;
    });

    it('ClusterAuthModeUnsupported: no AWS call at all, and recovery once the mode is fixed', async () => {
      await setAuthMode('CONFIG_MAP');
      // The mode is read at start and every --cluster-check-period: a fresh instance sees it.
      const home = await freshNamespace('ctl2');
      c2 = await startControllerWith({
        args: ['--tenancy=tag', `--namespaces=${home}`, '--cluster-check-period=10s'],
      });
      const s = await create('authmode');
      await resetAwsCalls();
      const ss = await reconcileUntil(c2, s.ns, s.name, readyIs('False', 'ClusterAuthModeUnsupported'));
      expect(condition(ss, 'Ready')?.message).toContain('CONFIG_MAP');
      expect(await controllerCalls(), 'not even a read').toEqual([]);
      expect(ss?.metadata.finalizers ?? []).toEqual([]);

      // Fixed: the next cluster check sees it, and the first sync runs (target created first).
      await setAuthMode('API_AND_CONFIG_MAP');
      await reconcileUntil(c2, s.ns, s.name, readyIs('True', 'Ready'), 40_000);
      await idle();
      await eventually('first sync', async () =>
        (await secretData(s.ns, 'creds'))?.password === 'p1' ? true : undefined,
      );
    });
  });

  it('SecretNotFound: no AWS write, no finalizer; provisioned once the secret exists', async () => {
    const ns = await freshNamespace('missing');
    await applySecretSync(ns, 'app', { source: { secretId: `missing/${ns}/nothing-here` } });
    made.push([ns, 'app']);
    await resetAwsCalls();
    const ss = await reconcileUntil(c, ns, 'app', readyIs('False', 'SecretNotFound'));
    expect(opsOf(await controllerCalls())).toEqual(['DescribeSecret']);
    expect(ss?.metadata.finalizers ?? []).toEqual([]);

    // The secret appears: the next pass provisions and the first sync lands.
    await createAwsSecret(`missing/${ns}/nothing-here`, '{"k":"v"}', [{ Key: NS_TAG, Value: ns }]);
    await reconcileUntil(c, ns, 'app', readyIs('True', 'Ready'));
    await idle();
    await eventually('first sync', async () => ((await secretData(ns, 'app'))?.k === 'v' ? true : undefined));
  });

  it('tenancy by tag: denied → nothing; consent → provisioned and synced; withdrawn → torn down', async () => {
    const other = await freshNamespace('tenant-a');
    const s = await create('tenant-b', {}, other);
    await resetAwsCalls();
    let ss = await reconcileUntil(c, s.ns, s.name, readyIs('False', 'PolicyDenied'));
    expect(condition(ss, 'Ready')?.message).toContain(s.ns);
    expect(writesOf(await controllerCalls())).toEqual([]);
    expect(ss?.metadata.finalizers ?? []).toEqual([]);

    // The secret's owner consents.
    await sm().send(
      new TagResourceCommand({ SecretId: s.arn, Tags: [{ Key: NS_TAG, Value: `${other},${s.ns}` }] }),
    );
    await reconcileUntil(c, s.ns, s.name, readyIs('True', 'Ready'));
    await idle();
    await eventually('first sync', async () =>
      (await secretData(s.ns, 'creds'))?.password === 'p1' ? true : undefined,
    );

    // Consent withdrawn: the sync path is torn down, the Secret's data stays.
    await sm().send(new UntagResourceCommand({ SecretId: s.arn, TagKeys: [NS_TAG] }));
    ss = await reconcileUntil(c, s.ns, s.name, readyIs('False', 'PolicyDenied'));
    const n = s.names;
    expect(await existence(iam().send(new GetRoleCommand({ RoleName: n.roleName })))).toBe(
      'NoSuchEntityException',
    );
    expect(
      await existence(lambda().send(new GetFunctionConfigurationCommand({ FunctionName: n.functionName }))),
    ).toBe('ResourceNotFoundException');
    expect(await existence(events().send(new DescribeRuleCommand({ Name: n.ruleName })))).toBe(
      'ResourceNotFoundException',
    );
    const roleArn = `arn:aws:iam::${bed().aws.accountId}:role${n.rolePath}${n.roleName}`;
    expect(
      await existence(
        eks().send(new DescribeAccessEntryCommand({ clusterName: bed().clusterName, principalArn: roleArn })),
      ),
    ).toBe('ResourceNotFoundException');
    const groups = await logs().send(new DescribeLogGroupsCommand({ logGroupNamePrefix: n.logGroupName }));
    expect(groups.logGroups ?? []).toEqual([]);
    expect(await kubeStatus(rbac().readNamespacedRole({ name: n.rbacName, namespace: s.ns }))).toBe(404);
    expect(await kubeStatus(rbac().readNamespacedRoleBinding({ name: n.rbacName, namespace: s.ns }))).toBe(
      404,
    );
    expect((await secretData(s.ns, 'creds'))?.password).toBe('p1');
    expect(ss?.metadata.finalizers ?? []).toEqual([]);
    expect(ss?.status?.roleArn).toBeUndefined();
    expect(ss?.status?.functionArn).toBeUndefined();

    // A pass after the teardown changes nothing.
    const quiet = await pass(s.ns, s.name);
    expect(writesOf(quiet.calls)).toEqual([]);
  });

  describe('deletion', () => {
    async function deleteIt(s: { ns: string; name: string }) {
      await customObjects().deleteNamespacedCustomObject({ ...api, namespace: s.ns, name: s.name });
      await reconcileUntil(c, s.ns, s.name, (x) => x === undefined);
    }
    const gone = async (n: ReturnType<typeof namesFor>) => {
      expect(await existence(iam().send(new GetRoleCommand({ RoleName: n.roleName })))).toBe(
        'NoSuchEntityException',
      );
      expect(
        await existence(lambda().send(new GetFunctionConfigurationCommand({ FunctionName: n.functionName }))),
      ).toBe('ResourceNotFoundException');
    };

    it('deletionPolicy Delete removes the target Secret', async () => {
      const s = await provision('del', { deletionPolicy: 'Delete' });
      expect(await secretData(s.ns, 'creds')).toBeDefined();
      await deleteIt(s);
      expect(await secretData(s.ns, 'creds')).toBeUndefined();
      await gone(s.names);
    });

    it('deletionPolicy Retain keeps the target Secret', async () => {
      const s = await provision('retain', { deletionPolicy: 'Retain' });
      await deleteIt(s);
      expect((await secretData(s.ns, 'creds'))?.password).toBe('p1');
      await gone(s.names);
    });

    it('finalizes when someone else already deleted the AWS resources', async () => {
      const s = await provision('gone');
      const n = s.names;
      const roleArn = s.ss.status!.roleArn!;
      await eks().send(
        new DeleteAccessEntryCommand({ clusterName: bed().clusterName, principalArn: roleArn }),
      );
      const targets = await events().send(new ListTargetsByRuleCommand({ Rule: n.ruleName }));
      const ids = (targets.Targets ?? []).map((t) => t.Id!);
      if (ids.length) await events().send(new RemoveTargetsCommand({ Rule: n.ruleName, Ids: ids }));
      await events().send(new DeleteRuleCommand({ Name: n.ruleName }));
      await lambda().send(new DeleteFunctionCommand({ FunctionName: n.functionName }));
      await logs().send(new DeleteLogGroupCommand({ logGroupName: n.logGroupName }));
      for (const PolicyName of (await iam().send(new ListRolePoliciesCommand({ RoleName: n.roleName })))
        .PolicyNames ?? [])
        await iam().send(new DeleteRolePolicyCommand({ RoleName: n.roleName, PolicyName }));
      await iam().send(new DeleteRoleCommand({ RoleName: n.roleName }));

      await resetAwsCalls();
      await deleteIt(s);
      expect(writesOf(await controllerCalls()), 'nothing left to delete').toEqual([]);
      expect((await secretData(s.ns, 'creds'))?.password).toBe('p1');
    });
  });

  it('records a Kubernetes Event for a Ready transition', async () => {
    const s = await provision('events');
    const ss = (await getSecretSync(s.ns, s.name)) as SecretSync;
    const evs = await core().listNamespacedEvent({
      namespace: s.ns,
      fieldSelector: `involvedObject.name=${s.name}`,
    });
    const ready = evs.items.find((e) => e.reason === 'Ready');
    expect(ready, `events: ${evs.items.map((e) => e.reason).join(', ')}`).toBeDefined();
    expect(ready).toMatchObject({
      type: 'Normal',
      involvedObject: { kind: 'SecretSync', name: s.name, uid: ss.metadata.uid },
      source: { component: 'secretsync-controller' },
    });
    // A steady pass records nothing new.
    await pass(s.ns, s.name);
    const again = await core().listNamespacedEvent({
      namespace: s.ns,
      fieldSelector: `involvedObject.name=${s.name}`,
    });
    expect(again.items.length).toBe(evs.items.length);
  });

  // Last in this file, so it covers every pass above: the controller's own identity (a
  // ServiceAccount token, not the admin certificate the tests use) tells its requests apart.
  it('never gets, lists or watches a Secret (audit log)', async () => {
    await new Promise((r) => setTimeout(r, 500));
    const mine = auditEvents(username);
    expect(mine.length).toBeGreaterThan(100);
    const onSecrets = mine.filter((e) => e.objectRef?.resource === 'secrets' && !e.objectRef.subresource);
    // It does create targets and delete them (deletionPolicy Delete) — and nothing else on Secrets.
    expect(new Set(onSecrets.map((e) => e.verb))).toEqual(new Set(['create', 'delete']));
    expect(onSecrets.filter((e) => ['get', 'list', 'watch'].includes(e.verb))).toEqual([]);
  });
});
