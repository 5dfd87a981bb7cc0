import { mkdirSync, writeFileSync } from 'node:fs';
import {
  CloudWatchLogsClient,
  DescribeLogGroupsCommand,
  ListTagsForResourceCommand as ListLogTags,
} from '@aws-sdk/client-cloudwatch-logs';
import { EKSClient, paginateListAccessEntries } from '@aws-sdk/client-eks';
import {
  EventBridgeClient,
  ListRulesCommand,
  ListTagsForResourceCommand as ListRuleTags,
  ListTargetsByRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateRoleCommand,
  DeleteRoleCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  ListRolesCommand,
  ListRoleTagsCommand,
} from '@aws-sdk/client-iam';
import {
  GetPolicyCommand,
  LambdaClient,
  ListTagsCommand,
  paginateListFunctions,
} from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG } from '../../src/controller/naming.ts';
import { type CallRecord, namesFor } from '../tests/controller-helpers.ts';
import {
  api,
  applySecretSync,
  condition,
  eventually,
  getSecretSync,
  secretData,
} from '../tests/controller-support.ts';
import { awsConfig, bed, control, customObjects, freshNamespace } from '../tests/support.ts';
import { type ControllerProcess, spawnController } from './controller-process.ts';

/**
 * Crash convergence. The controller runs as its own process and is SIGKILLed at every boundary
 * between the AWS steps of provisioning and of teardown — once with the step not done (the call
 * held before it reaches AWS) and once with the step done but unacknowledged (held after) — then
 * restarted. After each restart: the SecretSync reaches Ready with its value (or is fully gone),
 * nothing is duplicated, nothing is leaked, and the finalizer goes only when everything has gone.
 *
 * Kill points are taken from a fault-free run (the mutating calls it makes, in order), so a new
 * provisioning step becomes a new kill point without editing this test.
 */

const HARNESS = { accessKeyId: 'AKIACRASHHARNESS0001', secretAccessKey: 'x' };
const harness = () => ({ ...awsConfig(), credentials: HARNESS });
const isWrite = (op: string) => !/^(Get|Describe|List)/.test(op);

interface KillPoint {
  service: string;
  operation: string;
  /** Which call of that operation (1-based) within the run. */
  occurrence: number;
  phase: 'hold-before' | 'hold-after';
}

const calls = () => control<CallRecord[]>('calls');
const controllerKey = () => bed().aws.credentials.accessKeyId;

async function controllerWrites(since: number): Promise<CallRecord[]> {
  return (await calls()).filter(
    (c) => c.seq > since && c.accessKeyId === controllerKey() && isWrite(c.operation),
  );
}
const lastSeq = async () => (await calls()).at(-1)?.seq ?? 0;

/** The writes of a run as kill points: the Nth call of each operation, in the order they came. */
function killPointsOf(writes: CallRecord[]): Omit<KillPoint, 'phase'>[] {
  const seen = new Map<string, number>();
  return writes.map((c) => {
    const key = `${c.service}:${c.operation}`;
    const occurrence = (seen.get(key) ?? 0) + 1;
    seen.set(key, occurrence);
    return { service: c.service, operation: c.operation, occurrence };
  });
}

describe('crash convergence: SIGKILL at every step of provisioning and teardown', () => {
  let ns: string;
  let controller: ControllerProcess | undefined;
  let secretArn: string;
  let n = 0;
  const figures = {
    provisioningSteps: [] as string[],
    teardownSteps: [] as string[],
    provisioningPoints: 0,
    teardownPoints: 0,
    survived: 0,
    restarts: 0,
  };

  const start = async () => {
    controller = spawnController(['--tenancy=allow-all', `--namespaces=${ns}`, '--resync-period=10m']);
    figures.restarts++;
    await controller.started;
  };

  const apply = (name: string) =>
    applySecretSync(ns, name, { source: { secretId: secretArn }, target: { name } });

  const ready = (name: string, timeoutMs = 90_000) =>
    eventually(
      `${ns}/${name} Ready with its value`,
      async () => {
        const ss = await getSecretSync(ns, name);
        if (condition(ss, 'Ready')?.status !== 'True') return undefined;
        const data = await secretData(ns, name);
        return data?.password === 'hunter2-crash' ? ss : undefined;
      },
      timeoutMs,
    );

  const gone = (name: string, timeoutMs = 90_000) =>
    eventually(
      `${ns}/${name} deleted`,
      async () => ((await getSecretSync(ns, name)) ? undefined : true),
      timeoutMs,
    );

  /** Holds the chosen call, waits for the controller to reach it, kills the controller there. */
  async function killAt(p: KillPoint, since: number, trigger: () => Promise<unknown>) {
    await control('faults', {
      method: 'POST',
      body: JSON.stringify({
        service: p.service,
        operation: p.operation,
        accessKeyId: controllerKey(),
        nth: [p.occurrence],
        kind: p.phase,
      }),
    });
    await trigger();
    await eventually(
      `the controller to reach ${p.operation} #${p.occurrence} (${p.phase})`,
      async () => ((await calls()).some((c) => c.seq > since && c.fault === p.phase) ? true : undefined),
      60_000,
    );
    await controller!.kill('SIGKILL');
    await control('faults', { method: 'DELETE' });
  }

  /**
   * What the controller owns in AWS for this namespace, found by name (every name starts with the
   * namespace's stem) and checked by tag: one of each per live SecretSync, each tagged for it, one
   * rule target, one invoke permission, one inline policy.
   */
  async function awsProblems(live: string[]): Promise<string[]> {
    const stemPrefix = `secretsync-${ns}-`;
    const expected = new Map(live.map((name) => [namesFor(ns, name).stem, name]));
    const iam = new IAMClient(harness());
    const lambda = new LambdaClient(harness());
    const events = new EventBridgeClient(harness());
    const logs = new CloudWatchLogsClient(harness());
    const eks = new EKSClient(harness());
    const problems: string[] = [];
    const owner = (what: string, name: string, tags: Record<string, string | undefined>) => {
      const want = expected.get(name);
      if (!want) problems.push(`leaked ${what} ${name}`);
      else if (tags[TAG.namespace] !== ns || tags[TAG.name] !== want)
        problems.push(`${what} ${name} tagged ${JSON.stringify(tags)}`);
    };
    const tagMap = (list?: { Key?: string; Value?: string }[]) =>
      Object.fromEntries((list ?? []).map((t) => [t.Key ?? '', t.Value]));

    const roles = (
      (await iam.send(new ListRolesCommand({ PathPrefix: '/secretsync/', MaxItems: 1000 }))).Roles ?? []
    ).filter((r) => r.RoleName!.startsWith(stemPrefix));
    for (const r of roles) {
      owner(
        'role',
        r.RoleName!,
        tagMap((await iam.send(new ListRoleTagsCommand({ RoleName: r.RoleName! }))).Tags),
      );
      const inline =
        (await iam.send(new ListRolePoliciesCommand({ RoleName: r.RoleName! }))).PolicyNames ?? [];
      const attached =
        (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: r.RoleName! }))).AttachedPolicies ??
        [];
      if (inline.length !== 1 || attached.length !== 0)
        problems.push(
          `role ${r.RoleName} has ${inline.length} inline and ${attached.length} attached policies`,
        );
    }
    const functions = [];
    for await (const page of paginateListFunctions({ client: lambda }, {}))
      functions.push(...(page.Functions ?? []).filter((f) => f.FunctionName!.startsWith(stemPrefix)));
    for (const f of functions) {
      owner(
        'function',
        f.FunctionName!,
        (await lambda.send(new ListTagsCommand({ Resource: f.FunctionArn! }))).Tags ?? {},
      );
      const policy = JSON.parse(
        (await lambda.send(new GetPolicyCommand({ FunctionName: f.FunctionName! }))).Policy ?? '{}',
      );
      if ((policy.Statement ?? []).length !== 1)
        problems.push(`function ${f.FunctionName} has ${(policy.Statement ?? []).length} permissions`);
    }
    const rules = (await events.send(new ListRulesCommand({ NamePrefix: stemPrefix }))).Rules ?? [];
    for (const r of rules) {
      owner('rule', r.Name!, tagMap((await events.send(new ListRuleTags({ ResourceARN: r.Arn! }))).Tags));
      const targets = (await events.send(new ListTargetsByRuleCommand({ Rule: r.Name! }))).Targets ?? [];
      if (targets.length !== 1) problems.push(`rule ${r.Name} has ${targets.length} targets`);
    }
    const groups =
      (await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: `/aws/lambda/${stemPrefix}` })))
        .logGroups ?? [];
    for (const g of groups) {
      const arn = g.logGroupArn!.replace(/:\*$/, '');
      owner(
        'log group',
        g.logGroupName!.slice('/aws/lambda/'.length),
        (await logs.send(new ListLogTags({ resourceArn: arn }))).tags ?? {},
      );
    }
    const entries: string[] = [];
    for await (const page of paginateListAccessEntries({ client: eks }, { clusterName: bed().clusterName }))
      entries.push(...(page.accessEntries ?? []).filter((a) => a.includes(`:role/secretsync/${stemPrefix}`)));
    for (const e of entries) {
      const name = e.split('/').at(-1)!;
      if (!expected.has(name)) problems.push(`leaked access entry ${e}`);
    }
    const count = (what: string, found: number) => {
      if (found !== live.length) problems.push(`${found} ${what} for ${live.length} SecretSyncs`);
    };
    count('roles', roles.length);
    count('functions', functions.length);
    count('rules', rules.length);
    count('log groups', groups.length);
    count('access entries', entries.length);
    return problems;
  }

  const live: string[] = [];
  let provisioning: Omit<KillPoint, 'phase'>[] = [];
  let teardown: Omit<KillPoint, 'phase'>[] = [];

  beforeAll(async () => {
    ns = await freshNamespace('crash');
    const sm = new SecretsManagerClient(harness());
    secretArn = (
      await sm.send(
        new CreateSecretCommand({ Name: `crash/${ns}`, SecretString: '{"password":"placeholder"}' }),
      )
    ).ARN!;
    await sm.send(
      new PutSecretValueCommand({ SecretId: secretArn, SecretString: '{"password":"hunter2-crash"}' }),
    );
    await start();
    // A fault-free run of each: its writes are the kill points.
    let since = await lastSeq();
    await apply('calibrate');
    await ready('calibrate');
    await fetch(`${bed().aws.url}/_testbed/idle`);
    provisioning = killPointsOf(await controllerWrites(since));
    since = await lastSeq();
    await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'calibrate' });
    await gone('calibrate');
    teardown = killPointsOf(await controllerWrites(since));
    expect(await awsProblems([])).toEqual([]);
  }, 300_000);

  afterAll(async () => {
    await control('faults', { method: 'DELETE' });
    if (!controller || controller.child.exitCode !== null || controller.child.signalCode !== null)
      await start();
    for (const name of live)
      await customObjects()
        .deleteNamespacedCustomObject({ ...api, namespace: ns, name })
        .catch(() => {});
    for (const name of live) await gone(name).catch(() => {});
    await controller?.kill('SIGTERM');
    mkdirSync(new URL('./.results/', import.meta.url), { recursive: true });
    writeFileSync(new URL('./.results/crash.json', import.meta.url), `${JSON.stringify(figures, null, 2)}\n`);
    process.stdout.write(`crash convergence: ${JSON.stringify(figures)}\n`);
  }, 300_000);

  it('has at least 20 kill points between AWS steps', () => {
    const step = (p: Omit<KillPoint, 'phase'>) => `${p.service}:${p.operation}#${p.occurrence}`;
    figures.provisioningSteps = provisioning.map(step);
    figures.teardownSteps = teardown.map(step);
    figures.provisioningPoints = provisioning.length * 2;
    figures.teardownPoints = teardown.length * 2;
    expect(provisioning.length * 2 + teardown.length * 2).toBeGreaterThanOrEqual(20);
    // The steps themselves, for the record: roles, policies, functions, rules, permissions, entries.
    expect(provisioning.map((p) => p.operation)).toEqual(
      expect.arrayContaining(['CreateRole', 'CreateFunction', 'PutRule', 'PutTargets']),
    );
    expect(teardown.map((p) => p.operation)).toEqual(
      expect.arrayContaining(['DeleteRole', 'DeleteFunction', 'DeleteRule']),
    );
  });

  it('provisioning: killed before or after each step, restarted, the SecretSync becomes Ready once, nothing duplicated or leaked', async () => {
    for (const point of provisioning) {
      for (const phase of ['hold-before', 'hold-after'] as const) {
        const name = `p${++n}`;
        const since = await lastSeq();
        await killAt({ ...point, phase }, since, () => apply(name));
        live.push(name);
        await start();
        await ready(name);
        expect(await awsProblems(live)).toEqual([]);
        figures.survived++;
      }
    }
  }, 900_000);

  it('teardown: killed before or after each step, restarted, the SecretSync goes only when all it owned has gone', async () => {
    for (const point of teardown) {
      for (const phase of ['hold-before', 'hold-after'] as const) {
        const name = live.shift()!; // a Ready SecretSync from the provisioning points
        expect(name).toBeDefined();
        const since = await lastSeq();
        await killAt({ ...point, phase }, since, () =>
          customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name }),
        );
        // Dead controller, finalizer still there: the SecretSync must still exist.
        const stuck = await getSecretSync(ns, name);
        expect(stuck?.metadata?.finalizers ?? []).toContain('secretsync.io/cleanup');
        await start();
        await gone(name);
        // The finalizer went: nothing of it may remain, and everything of the others must.
        expect(await awsProblems(live)).toEqual([]);
        figures.survived++;
      }
    }
  }, 900_000);

  it('the leak and duplicate check itself fails on a leaked role and a second rule target', async () => {
    // The controller would repair the extra target (its start-up passes may still be running): stop it
    // so the check sees what was planted. afterAll starts it again for the clean-up.
    await controller!.kill('SIGTERM');
    const iam = new IAMClient(harness());
    const stray = `secretsync-${ns}-stray-00000000`;
    await iam.send(
      new CreateRoleCommand({ RoleName: stray, Path: '/secretsync/', AssumeRolePolicyDocument: '{}' }),
    );
    const events = new EventBridgeClient(harness());
    const rule = namesFor(ns, live[0]!).ruleName;
    await events.send(
      new PutTargetsCommand({
        Rule: rule,
        Targets: [{ Id: 'extra', Arn: 'arn:aws:sqs:eu-west-1:123456789012:q' }],
      }),
    );
    try {
      expect(await awsProblems(live)).toEqual(
        expect.arrayContaining([`leaked role ${stray}`, `rule ${rule} has 2 targets`]),
      );
    } finally {
      await iam.send(new DeleteRoleCommand({ RoleName: stray }));
      await events.send(new RemoveTargetsCommand({ Rule: rule, Ids: ['extra'] }));
    }
  });
});
