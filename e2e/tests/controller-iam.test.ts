import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  TagResourceCommand,
} from '@aws-sdk/client-secrets-manager';
import { type EvaluationResult, isWildcardOnlyAction, runSimulation } from '@cloud-copilot/iam-simulate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningController } from '../../src/controller/controller.ts';
import { controllerIdentityPolicy } from '../../src/controller/iam-policy.ts';
import type { ResourceNames } from '../../src/controller/naming.ts';
import { type CallRecord, namesFor, patchSecretSync } from './controller-helpers.ts';
import {
  api,
  applySecretSync,
  condition,
  eventually,
  getSecretSync,
  idle,
  secretData,
  startTestController,
  waitReady,
} from './controller-support.ts';
import { bed, control, customObjects, freshNamespace } from './support.ts';

/**
 * Every AWS call the controller makes in a realistic run, checked against the IAM policy the project
 * generates for it (`secretsync iam-policy`). moto authorizes nothing, so here an IAM policy simulator
 * (@cloud-copilot/iam-simulate) plays AWS's part: each recorded call becomes the IAM action(s) AWS
 * authorizes it with and the resource ARN it names, and each must be Allowed.
 *
 * The test's own AWS calls use another access key than the controller's (moto accepts any), so the
 * front door's log tells them apart; the functions' calls carry their roles' assumed-role keys.
 */

const ACCOUNT = '123456789012';
const NS_TAG = 'secretsync.io/namespaces';
const HARNESS = { accessKeyId: 'AKIATESTHARNESS00001', secretAccessKey: 'x' };
const sm = () =>
  new SecretsManagerClient({ endpoint: bed().aws.url, region: bed().aws.region, credentials: HARNESS });

interface FrontDoorCall extends CallRecord {
  region: string;
}

/** One authorization AWS makes for a call: action, resource and the request's condition keys. */
interface Authorization {
  action: string;
  resource: string;
  context?: Record<string, string>;
  /** Not the call's own action: AWS also checks it for what the call does (tags on create, PassRole). */
  implied?: boolean;
  /** Set when the log does not name this resource and it was inferred (all candidates are checked). */
  inferred?: string;
}

interface Derived {
  call: FrontDoorCall;
  /** Empty for calls that need no permission (sts:GetCallerIdentity). */
  authorizations: Authorization[];
}

describe('the controller’s AWS calls are all allowed by its generated IAM policy', () => {
  let controller: RunningController | undefined;
  const syncs: { ns: string; name: string; names: ResourceNames }[] = [];
  const secretArns = new Map<string, string>();
  let calls: FrontDoorCall[] = [];

  const policy = () =>
    controllerIdentityPolicy({
      accountId: ACCOUNT,
      clusterRegion: bed().aws.region,
      clusterName: bed().clusterName,
      regions: [],
      iamPath: '/secretsync/',
      namePrefix: 'secretsync',
    });

  async function awsSecret(name: string, value: object, namespaces: string): Promise<string> {
    const out = await sm().send(
      new CreateSecretCommand({
        Name: name,
        SecretString: JSON.stringify(value),
        Tags: [{ Key: NS_TAG, Value: namespaces }],
      }),
    );
    secretArns.set(name, out.ARN!);
    return out.ARN!;
  }

  async function apply(ns: string, name: string, spec: Record<string, unknown>) {
    await applySecretSync(ns, name, spec);
    syncs.push({ ns, name, names: namesFor(ns, name) });
  }

  async function deleteAndWait(ns: string, name: string) {
    await customObjects()
      .deleteNamespacedCustomObject({ ...api, namespace: ns, name })
      .catch(() => {});
    await eventually(`${ns}/${name} gone`, async () =>
      (await getSecretSync(ns, name)) === undefined ? true : undefined,
    );
  }

  beforeAll(async () => {
    const a = await freshNamespace('iam-a');
    const b = await freshNamespace('iam-b');
    const db = await awsSecret(`iam/${a}/db`, { username: 'app', password: 'first' }, a);
    await awsSecret(`iam/${a}/paused`, { token: 't' }, a);
    await awsSecret(`iam/${b}/api`, { key: 'k1' }, b);
    const withdrawn = await awsSecret(`iam/${b}/withdrawn`, { key: 'w' }, `${b} team-*`);
    await awsSecret(`iam/${b}/denied`, { key: 'd' }, 'someone-else');

    // The log starts with the controller: its start-up calls (GetCallerIdentity, DescribeCluster) count.
    await control('calls', { method: 'DELETE' });
    controller = await startTestController(['--tenancy=tag', `--namespaces=${a},${b}`]);

    await apply(a, 'db', {
      source: { secretId: `iam/${a}/db` },
      target: { name: 'db-creds', keys: [{ from: 'password', to: 'DB_PASSWORD' }] },
    });
    await apply(a, 'paused', { source: { secretId: `iam/${a}/paused` }, suspend: true });
    await apply(b, 'api', {
      source: { secretId: `iam/${b}/api` },
      mergePolicy: 'Replace',
      deletionPolicy: 'Delete',
    });
    await apply(b, 'withdrawn', { source: { secretId: withdrawn } });
    await apply(b, 'denied', { source: { secretId: `iam/${b}/denied` } });

    for (const [ns, name] of [
      [a, 'db'],
      [a, 'paused'],
      [b, 'api'],
      [b, 'withdrawn'],
    ] as const)
      await waitReady(ns, name, 90_000);
    await eventually('denied by tenancy', async () =>
      condition(await getSecretSync(b, 'denied'), 'Ready')?.reason === 'PolicyDenied' ? true : undefined,
    );
    await eventually('first sync', async () =>
      (await secretData(a, 'db-creds'))?.DB_PASSWORD === 'first' ? true : undefined,
    );

    // A change in AWS (the function's work, not the controller's), then a force-sync (the controller's).
    await sm().send(
      new PutSecretValueCommand({ SecretId: db, SecretString: JSON.stringify({ password: 'second' }) }),
    );
    await idle();
    await eventually('the change', async () =>
      (await secretData(a, 'db-creds'))?.DB_PASSWORD === 'second' ? true : undefined,
    );
    await patchSecretSync(a, 'db', { metadata: { annotations: { 'secretsync.io/force-sync': 'iam-test' } } });
    await eventually('force-sync served', async () =>
      (await getSecretSync(a, 'db'))?.status?.lastForceSync === 'iam-test' ? true : undefined,
    );

    // A delete with deletionPolicy Delete.
    await deleteAndWait(b, 'api');

    // Tenancy teardown: the secret's owner withdraws consent. The controller would see it at its next
    // resync; an annotation makes it look now.
    await sm().send(
      new TagResourceCommand({ SecretId: withdrawn, Tags: [{ Key: NS_TAG, Value: 'team-*' }] }),
    );
    await patchSecretSync(b, 'withdrawn', { metadata: { annotations: { 'example.com/look': 'now' } } });
    await eventually(
      'torn down after consent was withdrawn',
      async () => {
        const ss = await getSecretSync(b, 'withdrawn');
        const ready = condition(ss, 'Ready');
        return ready?.reason === 'PolicyDenied' && !ss?.metadata.finalizers?.length ? true : undefined;
      },
      60_000,
    );

    // Clean up the rest through the controller too (its teardown calls count).
    for (const [ns, name] of [
      [a, 'db'],
      [a, 'paused'],
      [b, 'withdrawn'],
      [b, 'denied'],
    ] as const)
      await deleteAndWait(ns, name);
    await idle();
    await controller.stop();
    controller = undefined;
    calls = await control<FrontDoorCall[]>('calls');
  }, 300_000);

  afterAll(async () => {
    await controller?.stop();
  });

  const controllerCalls = () => calls.filter((c) => c.accessKeyId === bed().aws.credentials.accessKeyId);

  /** The AWS authorizations behind one recorded call (SDK operation → IAM action, path/name → ARN). */
  function derive(call: FrontDoorCall): Derived {
    const region = call.region;
    const arn = {
      role: (name: string) => `arn:aws:iam::${ACCOUNT}:role/secretsync/${name}`,
      fn: (nameOrArn: string) =>
        nameOrArn.startsWith('arn:')
          ? nameOrArn
          : `arn:aws:lambda:${region}:${ACCOUNT}:function:${nameOrArn}`,
      rule: (name: string) => `arn:aws:events:${region}:${ACCOUNT}:rule/${name}`,
      logGroup: (name: string) => `arn:aws:logs:${region}:${ACCOUNT}:log-group:${name}`,
      cluster: (name: string) => `arn:aws:eks:${bed().aws.region}:${ACCOUNT}:cluster/${name}`,
      // EKS names an access entry by cluster, principal type, account, role name (no path) and a uuid.
      entry: (cluster: string, principalArn: string) =>
        `arn:aws:eks:${bed().aws.region}:${ACCOUNT}:access-entry/${cluster}/role/${ACCOUNT}/${principalArn.split('/').pop()}/00000000-0000-0000-0000-000000000000`,
      secret: (id: string) =>
        id.startsWith('arn:')
          ? id
          : (secretArns.get(id) ?? `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${id}-AbCdEf`),
    };
    const own = (action: string, resource: string): Authorization => ({ action, resource });
    // The inventory pass's list calls name no resource: AWS authorizes them on "*" alone.
    const listOnStar = [
      'iam:ListRoles',
      'tag:GetResources',
      'events:ListRules',
      'secretsmanager:ListSecrets',
    ];
    // The Tagging API signs as "tagging"; its IAM actions are "tag:…".
    const listAction = `${call.service === 'tagging' ? 'tag' : call.service}:${call.operation}`;
    if (listOnStar.includes(listAction)) return { call, authorizations: [own(listAction, '*')] };
    const implied = (action: string, resource: string, context?: Record<string, string>): Authorization => ({
      action,
      resource,
      implied: true,
      ...(context ? { context } : {}),
    });
    const passToLambda = (roleArn: string) =>
      implied('iam:PassRole', roleArn, { 'iam:PassedToService': 'lambda.amazonaws.com' });
    const r = call.resource;
    const op = call.operation;
    const needs = (what: string): string => {
      if (r === undefined)
        throw new Error(`${call.service}:${op} (${call.method} ${call.path}) names no ${what}`);
      return r;
    };

    switch (call.service) {
      case 'sts':
        if (op === 'GetCallerIdentity') return { call, authorizations: [] };
        break;
      case 'iam': {
        const role = arn.role(needs('role'));
        if (op === 'CreateRole')
          return { call, authorizations: [own('iam:CreateRole', role), implied('iam:TagRole', role)] };
        return { call, authorizations: [own(`iam:${op}`, role)] };
      }
      case 'lambda': {
        if (op === 'TagResource' || op === 'UntagResource' || op === 'ListTags')
          return { call, authorizations: [own(`lambda:${op}`, arn.fn(needs('function')))] };
        const fnArn = arn.fn(needs('function'));
        // The function's role has the function's name (one stem per SecretSync).
        const roleOf = arn.role(fnArn.split(':').pop()!);
        switch (op) {
          case 'Invoke':
            return { call, authorizations: [own('lambda:InvokeFunction', fnArn)] };
          case 'GetFunction':
            // Tags (the ownership check) come back only to a caller allowed lambda:ListTags.
            return {
              call,
              authorizations: [own('lambda:GetFunction', fnArn), implied('lambda:ListTags', fnArn)],
            };
          case 'CreateFunction':
            return {
              call,
              authorizations: [
                own('lambda:CreateFunction', fnArn),
                implied('lambda:TagResource', fnArn),
                passToLambda(roleOf),
              ],
            };
          case 'UpdateFunctionConfiguration':
            return { call, authorizations: [own(`lambda:${op}`, fnArn), passToLambda(roleOf)] };
          default:
            return { call, authorizations: [own(`lambda:${op}`, fnArn)] };
        }
      }
      case 'events': {
        if (r === undefined && ['ListTagsForResource', 'TagResource', 'UntagResource'].includes(op)) {
          // The front door records `Name`/`Rule`, not EventBridge's `ResourceARN`: the call named one
          // of this run's rules (every rule the controller has is one), so each must be allowed.
          return {
            call,
            authorizations: syncs.map((s) => ({
              ...own(`events:${op}`, arn.rule(s.names.ruleName)),
              inferred: 'one of the run’s rules',
            })),
          };
        }
        const rule = needs('rule');
        const ruleArn = rule.startsWith('arn:') ? rule : arn.rule(rule);
        if (op === 'PutRule')
          return {
            call,
            authorizations: [own('events:PutRule', ruleArn), implied('events:TagResource', ruleArn)],
          };
        return { call, authorizations: [own(`events:${op}`, ruleArn)] };
      }
      case 'logs': {
        if (op === 'DescribeLogGroups') return { call, authorizations: [own('logs:DescribeLogGroups', '*')] };
        const group = needs('log group');
        const groupArn = group.startsWith('arn:') ? group.replace(/:\*$/, '') : arn.logGroup(group);
        if (op === 'CreateLogGroup')
          return {
            call,
            authorizations: [own('logs:CreateLogGroup', groupArn), implied('logs:TagResource', groupArn)],
          };
        return { call, authorizations: [own(`logs:${op}`, groupArn)] };
      }
      case 'eks': {
        if (op === 'TagResource' || op === 'UntagResource')
          return { call, authorizations: [own(`eks:${op}`, needs('access entry ARN'))] };
        const cluster = needs('cluster');
        if (op === 'DescribeCluster' || op === 'ListAccessEntries')
          return { call, authorizations: [own(`eks:${op}`, arn.cluster(cluster))] };
        const principal = decodeURIComponent(call.path.split('/access-entries/')[1] ?? '');
        if (op === 'CreateAccessEntry') {
          // Authorized on the cluster; the tags on the new entry need eks:TagResource on it. The
          // principal is in the body, which the log does not keep: one of the run's roles.
          return {
            call,
            authorizations: [
              own('eks:CreateAccessEntry', arn.cluster(cluster)),
              ...syncs.map((s) => ({
                ...implied('eks:TagResource', arn.entry(cluster, arn.role(s.names.roleName))),
                inferred: 'the new entry, of one of the run’s roles',
              })),
            ],
          };
        }
        if (!principal) throw new Error(`eks:${op} without a principal in ${call.path}`);
        return { call, authorizations: [own(`eks:${op}`, arn.entry(cluster, principal))] };
      }
      case 'secretsmanager':
        return { call, authorizations: [own(`secretsmanager:${op}`, arn.secret(needs('secret')))] };
    }
    throw new Error(`no IAM mapping for ${call.service}:${op} (${call.method} ${call.path})`);
  }

  async function decide(a: Authorization): Promise<EvaluationResult> {
    const [service, name] = a.action.split(':') as [string, string];
    const resource = (await isWildcardOnlyAction(service, name)) ? '*' : a.resource;
    const out = await runSimulation(
      {
        request: {
          principal: `arn:aws:sts::${ACCOUNT}:assumed-role/secretsync-controller/controller`,
          action: a.action,
          resource: { resource, accountId: ACCOUNT },
          contextVariables: a.context ?? {},
        },
        identityPolicies: [{ name: 'secretsync-controller', policy: policy() }],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    if (out.resultType === 'error')
      throw new Error(`${a.action} on ${resource}: ${JSON.stringify(out.errors)}`);
    if (out.resultType !== 'single') throw new Error(`${a.action}: ${resource} is not one resource`);
    return out.overallResult;
  }

  /** A resource with the per-run parts replaced, for the summary. */
  const pattern = (resource: string) =>
    resource
      .replace(/secretsync-[a-z0-9-]+-[0-9a-f]{8}\b/g, 'secretsync-<ns>-<name>-<hash>')
      .replace(/secret:iam\/[^:]+$/, 'secret:<name>-<suffix>')
      .replace(/\/[0-9a-f-]{36}$/, '/<uuid>');

  it('ran the workload the test meant (provision, suspend, invoke, delete, withdraw, deny)', () => {
    const ops = new Set(controllerCalls().map((c) => `${c.service}:${c.operation}`));
    for (const op of [
      'sts:GetCallerIdentity',
      'eks:DescribeCluster',
      'secretsmanager:DescribeSecret',
      'iam:CreateRole',
      'iam:PutRolePolicy',
      'logs:CreateLogGroup',
      'logs:PutRetentionPolicy',
      'lambda:CreateFunction',
      'events:PutRule',
      'lambda:AddPermission',
      'events:PutTargets',
      'eks:CreateAccessEntry',
      'lambda:Invoke',
      'eks:DeleteAccessEntry',
      'events:RemoveTargets',
      'events:DeleteRule',
      'lambda:DeleteFunction',
      'logs:DeleteLogGroup',
      'iam:DeleteRolePolicy',
      'iam:DeleteRole',
    ])
      expect(ops, op).toContain(op);
    // The test's own calls used the harness key and are not counted as the controller's.
    const harness = calls.filter((c) => c.accessKeyId === HARNESS.accessKeyId).map((c) => c.operation);
    expect(harness).toEqual(expect.arrayContaining(['PutSecretValue', 'TagResource']));
    const ownOps = controllerCalls().map((c) => c.operation);
    expect(ownOps).not.toContain('PutSecretValue');
  });

  it('every call is allowed, and none reads a secret value', async () => {
    const own = controllerCalls();
    expect(own.length).toBeGreaterThan(50);
    expect(own.filter((c) => /GetSecretValue/.test(c.operation))).toEqual([]);

    const derived = own.map(derive);
    const denied: string[] = [];
    const summary = new Map<string, { count: number; decision: string; note: string }>();
    for (const d of derived) {
      const key0 = `${d.call.service}:${d.call.operation}`;
      const counted = new Set<string>();
      if (d.authorizations.length === 0) {
        const row = summary.get(key0) ?? { count: 0, decision: 'no IAM permission needed', note: '' };
        row.count++;
        summary.set(key0, row);
        continue;
      }
      for (const a of d.authorizations) {
        const decision = await decide(a);
        if (decision !== 'Allowed')
          denied.push(
            `${key0} → ${a.action} on ${a.resource}${a.context ? ` ${JSON.stringify(a.context)}` : ''}: ${decision}`,
          );
        const key = `${a.action.padEnd(36)} ${pattern(a.resource)}`;
        const note = [
          a.implied ? `implied by ${key0}` : '',
          a.inferred ? `resource inferred: ${a.inferred}` : '',
        ]
          .filter(Boolean)
          .join('; ');
        const row = summary.get(key) ?? { count: 0, decision, note };
        if (!counted.has(key)) row.count++;
        counted.add(key);
        if (decision !== 'Allowed') row.decision = decision;
        summary.set(key, row);
      }
    }
    const lines = [...summary.entries()]
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([k, v]) => `  ${k}  ×${v.count}  ${v.decision}${v.note ? `  (${v.note})` : ''}`);
    console.log(
      `controller IAM: ${own.length} AWS calls, ${summary.size} distinct (action, resource pattern) pairs, simulated against the generated policy:\n${lines.join('\n')}`,
    );
    expect([...new Set(denied)]).toEqual([]);
  });

  it('the policy grants nothing like iam:* or Resource "*" on a write', () => {
    for (const s of policy().Statement) {
      for (const a of s.Action) expect(a, s.Sid).not.toContain('*');
      if (s.Resource.includes('*'))
        for (const a of s.Action) expect(a, s.Sid).toMatch(/^[a-z0-9]+:(Describe|List|Get)/);
    }
  });
});
