import { DeleteAccessEntryCommand, DescribeAccessEntryCommand, EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient, ListRulesCommand } from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient, PutRolePolicyCommand, paginateListRoles } from '@aws-sdk/client-iam';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { INLINE_POLICY_NAME } from '../../src/controller/aws/desired.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import {
  awsCalls,
  type CallRecord,
  controllerCalls,
  deleteAndFinalize,
  namesFor,
  patchSecretSyncStatus,
  readyIs,
  reconcileUntil,
  resetAwsCalls,
  startControllerWith,
  type TestController,
} from '../tests/controller-helpers.ts';
import {
  api,
  applySecretSync,
  condition,
  createAwsSecret,
  getSecretSync,
  idle,
  secretData,
} from '../tests/controller-support.ts';
import { logLines, putValue, syncedTo } from '../tests/lambda-support.ts';
import { awsConfig, bed, control, customObjects, freshNamespace } from '../tests/support.ts';

/**
 * `make test-unkind`: the product against an AWS as unkind as the real one (e2e/testbed/unkind.ts) —
 * IAM and access-entry propagation delays at their defaults (2–6 s and 2–5 s, jittered), Lambda's
 * 4 KB environment, quotas enforced. Everything must work with no manual step. Figures (time to the
 * first sync, AWS calls per SecretSync) are printed, never asserted: benchmarks measure, tests check.
 */

const iam = () => new IAMClient(awsConfig());
const lambda = () => new LambdaClient(awsConfig());
const events = () => new EventBridgeClient(awsConfig());
const eks = () => new EKSClient(awsConfig());

const unkind = (body: unknown) =>
  control('unkind', { method: 'POST', body: JSON.stringify(body) }) as Promise<Record<string, unknown>>;
const account = (quotas: Record<string, number>) =>
  control('account', { method: 'POST', body: JSON.stringify({ quotas }) });
const ROLES = 'iam/L-FE177D64';
const RULES = 'events/L-244521F2';

async function countRoles(): Promise<number> {
  let n = 0;
  for await (const page of paginateListRoles({ client: iam() }, {})) n += page.Roles?.length ?? 0;
  return n;
}

async function countRules(): Promise<number> {
  let n = 0;
  let NextToken: string | undefined;
  do {
    const out = await events().send(new ListRulesCommand({ NextToken }));
    n += out.Rules?.length ?? 0;
    NextToken = out.NextToken;
  } while (NextToken);
  return n;
}

const exists = (p: Promise<unknown>) =>
  p.then(
    () => true,
    (err: { name?: string }) => {
      if (/NotFound|NoSuchEntity/.test(err.name ?? '')) return false;
      throw err;
    },
  );

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};

const refusals = (calls: CallRecord[], operation: string) =>
  calls.filter((c) => c.operation === operation && c.status >= 400 && c.status < 500 && !c.fault).length;

describe('an AWS as unkind as the real one', () => {
  let c: TestController;
  let home: string;
  const made: [string, string][] = [];

  beforeAll(async () => {
    const settings = await unkind({ enabled: true });
    expect(settings.enabled).toBe(true);
    home = await freshNamespace('unkind');
    c = await startControllerWith({
      args: ['--tenancy=allow-all', `--namespaces=${home}`],
      logLevel: 'warn',
    });
  });
  afterAll(async () => {
    await control('unkind', { method: 'DELETE' }).catch(() => {});
    await control('account', { method: 'DELETE' }).catch(() => {});
    // Torn down for real where there are few (teardown has its own tests); the 50 are deleted with
    // their finalizers dropped — their AWS side stays in this run's moto — so no later test's
    // controller inherits them, and the run does not spend a minute and a half on their teardown.
    for (const [ns, name] of made.filter(([ns]) => ns !== home))
      await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
    for (const [namespace, name] of made.filter(([ns]) => ns === home)) {
      await customObjects()
        .deleteNamespacedCustomObject({ ...api, namespace, name })
        .catch(() => {});
      await customObjects()
        .patchNamespacedCustomObject(
          { ...api, namespace, name, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        )
        .catch(() => {});
    }
  });

  /** Every SecretSync Synced=True, as the informer and the queue get there by themselves (one LIST a second). */
  async function allSynced(ns: string, names: string[], timeoutMs: number): Promise<SecretSync[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = (await customObjects().listNamespacedCustomObject({ ...api, namespace: ns })) as {
        items: SecretSync[];
      };
      const wanted = list.items.filter((ss) => names.includes(ss.metadata.name));
      if (wanted.length === names.length && wanted.every((ss) => condition(ss, 'Synced')?.status === 'True'))
        return wanted;
      if (Date.now() > deadline) {
        const waiting = wanted.filter((ss) => condition(ss, 'Synced')?.status !== 'True');
        throw new Error(
          `${waiting.length} of ${names.length} not synced: ${waiting
            .slice(0, 3)
            .map(
              (ss) =>
                `${ss.metadata.name} Ready=${condition(ss, 'Ready')?.reason} Synced=${condition(ss, 'Synced')?.reason}`,
            )
            .join('; ')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  it('50 new SecretSyncs reach Ready and their first sync lands, through every propagation delay', {
    timeout: 600_000,
  }, async () => {
    const N = 50;
    const names = Array.from({ length: N }, (_, i) => `app-${String(i).padStart(2, '0')}`);
    for (const name of names)
      await createAwsSecret(`unkind/${home}/${name}`, JSON.stringify({ password: name }));
    await resetAwsCalls();
    for (const name of names) {
      await applySecretSync(home, name, { source: { secretId: `unkind/${home}/${name}` } });
      made.push([home, name]);
    }
    const synced = await allSynced(home, names, 540_000);

    for (const ss of synced) {
      expect(condition(ss, 'Ready')?.status).toBe('True');
      expect(ss.status?.accessChangedTime).toBeDefined();
      expect(await secretData(home, ss.metadata.name)).toEqual({ password: ss.metadata.name });
    }
    // The delays really bit: Lambda refused roles not yet assumable, EKS principals not yet known,
    // Secrets Manager denied functions whose role had not propagated (or the access entry had not).
    const calls = await awsCalls();
    const ctl = await controllerCalls();
    const bit = {
      createFunctionRefused: refusals(ctl, 'CreateFunction'),
      accessEntryRefused: refusals(ctl, 'CreateAccessEntry'),
      getSecretValueDenied: refusals(
        calls.filter((x) => x.accessKeyId !== bed().aws.credentials.accessKeyId),
        'GetSecretValue',
      ),
    };
    expect(bit.createFunctionRefused + bit.accessEntryRefused + bit.getSecretValueDenied).toBeGreaterThan(0);

    const seconds = synced.map(
      (ss) =>
        (Date.parse(condition(ss, 'Synced')?.lastTransitionTime ?? '') -
          Date.parse(ss.metadata.creationTimestamp ?? '')) /
        1000,
    );
    const figures = {
      secretSyncs: N,
      firstSyncSeconds: { p50: percentile(seconds, 50), max: Math.max(...seconds) },
      controllerAwsCallsPerSecretSync: +(ctl.length / N).toFixed(1),
      ...bit,
    };
    process.stdout.write(`[unkind] ${JSON.stringify(figures)}\n`);
  });

  /** The function's JSON log records with `message` (e.g. its propagation waits), newest last. */
  async function logRecords(fn: string, msg: string): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (const l of await logLines(fn)) {
      if (l.stream !== 'stdout' || !l.text.startsWith('{')) continue;
      const r = JSON.parse(l.text) as Record<string, unknown>;
      if (r.message === msg) out.push(r);
    }
    return out;
  }

  /** Changes the AWS value and waits for the target to hold it; the function's own waits are returned. */
  async function changeAndFollow(ns: string, name: string, fn: string, value: string) {
    const arn = (await getSecretSync(ns, name))?.status?.secretArn as string;
    const version = await putValue(arn, JSON.stringify({ password: value }));
    await idle();
    const ss = await syncedTo({ ns, name }, version);
    expect(await secretData(ns, name)).toEqual({ password: value });
    return { ss, waits: await logRecords(fn, 'denied soon after an access change; waiting for AWS') };
  }

  it('a role policy restored by the controller denies the next sync for a while: the function waits it out', {
    timeout: 120_000,
  }, async () => {
    // Long enough that the event's run certainly meets it.
    await unkind({ iamPropagationMs: [4000, 6000] });
    const name = 'app-00';
    const { roleName, functionName } = namesFor(home, name);
    const before = (await getSecretSync(home, name))?.status?.accessChangedTime;
    // Someone edits the inline policy by hand; the controller's next pass restores it.
    await iam().send(
      new PutRolePolicyCommand({
        RoleName: roleName,
        PolicyName: INLINE_POLICY_NAME,
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
        }),
      }),
    );
    await c.reconcileNow(`${home}/${name}`);
    const after = (await getSecretSync(home, name))?.status?.accessChangedTime;
    expect(Date.parse(after ?? '')).toBeGreaterThan(Date.parse(before ?? ''));

    // A change arrives seconds later: GetSecretValue is denied until the restored policy propagates.
    const { ss, waits } = await changeAndFollow(home, name, functionName, 'after-policy');
    expect(waits.filter((w) => w.reason === 'AccessDenied').length).toBeGreaterThan(0);
    expect(condition(ss, 'Synced')?.status).toBe('True');
  });

  it('an access entry re-created by the controller is not honoured at once: the function waits for it', {
    timeout: 120_000,
  }, async () => {
    await unkind({ accessEntryPropagationMs: [4000, 5000] });
    const name = 'app-01';
    const { functionName } = namesFor(home, name);
    const roleArn = (await getSecretSync(home, name))?.status?.roleArn as string;
    await eks().send(new DeleteAccessEntryCommand({ clusterName: bed().clusterName, principalArn: roleArn }));
    await c.reconcileNow(`${home}/${name}`);
    const entry = await eks().send(
      new DescribeAccessEntryCommand({ clusterName: bed().clusterName, principalArn: roleArn }),
    );
    expect(entry.accessEntry?.principalArn).toBe(roleArn);

    // The change's run is refused (401) until the new entry is honoured; it waits rather than fail.
    const { waits } = await changeAndFollow(home, name, functionName, 'after-entry');
    expect(waits.filter((w) => w.reason === 'Unauthorized').length).toBeGreaterThan(0);
  });

  it('100 mappings of the longest allowed names sync: the mapping is not in the 4 KB environment', {
    timeout: 120_000,
  }, async () => {
    const keys = Array.from({ length: 100 }, (_, i) => ({
      from: `${String(i).padStart(3, '0')}${'f'.repeat(253)}`,
      to: `${String(i).padStart(3, '0')}${'t'.repeat(250)}`,
    }));
    const value = Object.fromEntries(keys.map((k) => [k.from, `v${k.from.slice(0, 3)}`]));
    // The environment limit, not propagation, is under test here.
    await unkind({ enabled: false });
    onTestFinished(() => unkind({ enabled: true }).then(() => undefined));
    const name = 'many-keys';
    await createAwsSecret(`unkind/${home}/${name}`, JSON.stringify(value));
    await applySecretSync(home, name, { source: { secretId: `unkind/${home}/${name}` }, target: { keys } });
    made.push([home, name]);
    await allSynced(home, [name], 110_000);
    const data = (await secretData(home, name)) ?? {};
    expect(Object.keys(data)).toHaveLength(100);
    expect(data[keys[99]!.to]).toBe('v099');
  });

  it('a role Lambda truly cannot assume: Provisioning while IAM may still propagate, then RoleNotAssumable; fixed, it goes on', {
    timeout: 180_000,
  }, async () => {
    const ns = await freshNamespace('unassumable');
    const name = 'app';
    const { roleName, functionName } = namesFor(ns, name);
    await unkind({ unassumableRoles: [roleName] });
    try {
      await createAwsSecret(`unkind/${ns}/${name}`, JSON.stringify({ k: 'v' }));
      await applySecretSync(ns, name, { source: { secretId: `unkind/${ns}/${name}` } });
      made.push([ns, name]);
      const waiting = await reconcileUntil(c, ns, name, (ss) => ss?.status?.accessChangedTime !== undefined);
      expect(condition(waiting, 'Ready')).toMatchObject({ status: 'False', reason: 'Provisioning' });
      expect(condition(waiting, 'Ready')?.message).toContain('cannot be assumed by Lambda');

      // Ten minutes later (the role's change time moved back, as the clock would): a verdict.
      const tenMinutesAgo = new Date(Date.now() - 600_000).toISOString().replace(/\.\d+Z$/, 'Z');
      await patchSecretSyncStatus(ns, name, { status: { accessChangedTime: tenMinutesAgo } });
      const stuck = await reconcileUntil(c, ns, name, readyIs('False', 'RoleNotAssumable'));
      expect(condition(stuck, 'Ready')?.message).toMatch(/trust policy .* SCP or permissions boundary/);
      expect(await exists(lambda().send(new GetFunctionCommand({ FunctionName: functionName })))).toBe(false);
    } finally {
      await unkind({ unassumableRoles: [] });
    }
    const ready = await reconcileUntil(c, ns, name, readyIs('True', 'Ready'), 90_000);
    expect(ready?.status?.functionArn).toBeDefined();
  });

  it('quotas: a SecretSync over the rule or the role quota is refused and leaves nothing; raised, it goes on', {
    timeout: 180_000,
  }, async () => {
    const ns = await freshNamespace('quota');
    const name = 'app';
    const names = namesFor(ns, name);
    await createAwsSecret(`unkind/${ns}/${name}`, JSON.stringify({ k: 'v' }));
    await applySecretSync(ns, name, { source: { secretId: `unkind/${ns}/${name}` } });
    made.push([ns, name]);
    const nothingLeft = async () => {
      expect(await exists(iam().send(new GetRoleCommand({ RoleName: names.roleName })))).toBe(false);
      expect(await exists(lambda().send(new GetFunctionCommand({ FunctionName: names.functionName })))).toBe(
        false,
      );
      const rules = await events().send(new ListRulesCommand({ NamePrefix: names.ruleName }));
      expect(rules.Rules ?? []).toEqual([]);
    };

    // The bus is full: nothing is created at all.
    await account({ [RULES]: await countRules(), [ROLES]: 10_000 });
    const rulesFull = await reconcileUntil(c, ns, name, readyIs('False', 'QuotaExceeded'));
    expect(condition(rulesFull, 'Ready')?.message).toContain('EventBridge rules per event bus is full');
    expect(condition(rulesFull, 'Ready')?.message).toContain('--quota-code L-244521F2');
    await nothingLeft();

    // The account's roles are full: the rule created first is removed again.
    await account({ [RULES]: 10_000, [ROLES]: await countRoles() });
    const rolesFull = await reconcileUntil(c, ns, name, readyIs('False', 'QuotaExceeded'));
    expect(condition(rolesFull, 'Ready')?.message).toContain('IAM roles per account is full');
    await nothingLeft();

    await account({ [RULES]: 10_000, [ROLES]: 10_000 });
    await reconcileUntil(c, ns, name, readyIs('True', 'Ready'), 90_000);
  });
});
