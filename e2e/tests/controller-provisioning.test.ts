import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CloudWatchLogsClient,
  DescribeLogGroupsCommand,
  ListTagsForResourceCommand as ListLogTagsCommand,
  type LogGroup,
} from '@aws-sdk/client-cloudwatch-logs';
import { DescribeAccessEntryCommand, EKSClient, ListAccessEntriesCommand } from '@aws-sdk/client-eks';
import {
  DescribeRuleCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTagsForResourceCommand as ListRuleTagsCommand,
  ListTargetsByRuleCommand,
} from '@aws-sdk/client-eventbridge';
import {
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  ListRoleTagsCommand,
  paginateListRoles,
} from '@aws-sdk/client-iam';
import {
  GetFunctionCommand,
  GetPolicyCommand,
  LambdaClient,
  ListTagsCommand,
  paginateListFunctions,
} from '@aws-sdk/client-lambda';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownedBy } from '../../src/controller/naming.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import { kmsCall } from '../testbed/kms-state.ts';
import {
  awsCalls,
  type CallRecord,
  deleteAndFinalize,
  isRead,
  namesFor,
  readyIs,
  reconcileUntil,
  resetAwsCalls,
  startControllerWith,
  type TestController,
  testbedClusterArn,
} from './controller-helpers.ts';
import {
  applySecretSync,
  condition,
  eventually,
  firstInventory,
  getSecretSync,
  idle,
  secretData,
  ZIP,
} from './controller-support.ts';
import { awsConfig, bed, core, freshNamespace, rbac, statusOf } from './support.ts';

/**
 * DESIGN §4, read back from the test bed: one SecretSync is applied, driven to Ready and its first
 * sync, and every provisioned thing is compared whole against what §4 says it may be — documents,
 * not substrings. The AWS calls of that first provisioning are counted, and the delete leaves
 * nothing with this SecretSync's tags behind.
 */

const iam = () => new IAMClient(awsConfig());
const lambda = () => new LambdaClient(awsConfig());
const events = () => new EventBridgeClient(awsConfig());
const eks = () => new EKSClient(awsConfig());
const logs = () => new CloudWatchLogsClient(awsConfig());
const sm = () => new SecretsManagerClient(awsConfig());

const tagMap = (list: { Key?: string; Value?: string }[] | undefined) =>
  Object.fromEntries((list ?? []).map((t) => [t.Key, t.Value]));

/** KMS through the front door (the project has no KMS client). */
const kms = <T>(operation: string, input: object): Promise<T> => kmsCall<T>(bed().aws, operation, input);

/** The whole ownership tag set DESIGN §4 puts on every AWS resource. */
const ownership = (ss: SecretSync) => ({
  // The cluster's ARN, not its name: a same-named cluster in another region is another owner.
  'secretsync.io/cluster': testbedClusterArn(),
  'secretsync.io/namespace': ss.metadata.namespace,
  'secretsync.io/name': ss.metadata.name,
  'secretsync.io/uid': ss.metadata.uid,
  'app.kubernetes.io/managed-by': 'secretsync',
});

/** Calls grouped by who made them and what they were, for the table the closing note quotes. */
function tally(calls: CallRecord[]) {
  const admin = bed().aws.credentials.accessKeyId;
  const rows = new Map<
    string,
    { caller: string; service: string; operation: string; kind: string; status: string; n: number }
  >();
  for (const c of calls) {
    const caller = c.accessKeyId === admin ? 'controller' : 'function';
    const kind = isRead(c.operation) ? 'read' : 'mutating';
    const key = `${caller} ${c.service} ${c.operation} ${c.status}`;
    const row = rows.get(key) ?? {
      caller,
      service: c.service,
      operation: c.operation,
      kind,
      status: String(c.status),
      n: 0,
    };
    row.n++;
    rows.set(key, row);
  }
  return [...rows.values()].sort(
    (a, b) =>
      a.caller.localeCompare(b.caller) ||
      a.kind.localeCompare(b.kind) ||
      a.service.localeCompare(b.service) ||
      a.operation.localeCompare(b.operation),
  );
}

describe('controller provisioning: apply → every resource exists with exactly the permissions of DESIGN §4', () => {
  let c: TestController;
  const made: [string, string][] = [];
  const account = () => bed().aws.accountId;
  const region = () => bed().aws.region;
  const zipSha256 = createHash('sha256').update(readFileSync(ZIP)).digest('base64');

  beforeAll(async () => {
    // The informer watches an empty namespace: every pass is one the test drives, so the call log
    // between apply and Ready holds exactly the passes of the first provisioning.
    const home = await freshNamespace('prov-ctl');
    c = await startControllerWith({ args: ['--tenancy=allow-all', `--namespaces=${home}`] });
    await firstInventory(c);
  });
  afterAll(async () => {
    for (const [ns, name] of made) await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
  });

  /** A secret, a SecretSync for it, driven to Ready and its first Synced; returns the passes' calls. */
  async function provision(prefix: string, createSecret: (secretId: string) => Promise<string>) {
    const ns = await freshNamespace(prefix);
    const name = 'app';
    const secretId = `${prefix}/${ns}/db`;
    const arn = await createSecret(secretId);
    await idle();
    await resetAwsCalls();
    await applySecretSync(ns, name, { source: { secretId }, target: { name: 'db-creds' } });
    made.push([ns, name]);
    let passes = 0;
    await reconcileUntil(c, ns, name, (x) => {
      passes++;
      return readyIs('True', 'Ready')(x);
    });
    await idle();
    const ss = await eventually('Synced=True', async () => {
      const x = await getSecretSync(ns, name);
      return condition(x, 'Synced')?.status === 'True' ? x : undefined;
    });
    const calls = await awsCalls();
    return { ns, name, secretId, arn, ss, calls, passes, names: namesFor(ns, name) };
  }

  const expectedPolicy = (arn: string, stem: string, decrypt?: object) => ({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'ReadSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: arn },
      ...(decrypt ? [decrypt] : []),
      {
        Sid: 'WriteOwnLogs',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: `arn:aws:logs:${region()}:${account()}:log-group:/aws/lambda/${stem}:*`,
      },
    ],
  });

  async function inlinePolicies(roleName: string) {
    const names = (await iam().send(new ListRolePoliciesCommand({ RoleName: roleName }))).PolicyNames ?? [];
    const docs: Record<string, unknown> = {};
    for (const PolicyName of names) {
      const out = await iam().send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName }));
      docs[PolicyName] = JSON.parse(decodeURIComponent(out.PolicyDocument ?? '{}'));
    }
    return docs;
  }

  it('a JSON secret under the AWS-managed key: every part exactly as §4, then a delete leaves nothing', async () => {
    const value = JSON.stringify({ username: 'app', password: 'p1', port: 5432 });
    const s = await provision('prov', async (secretId) => {
      const out = await sm().send(new CreateSecretCommand({ Name: secretId, SecretString: value }));
      return out.ARN!;
    });
    const { ns, name, arn, ss, names } = s;
    const stem = names.stem;
    const tags = ownership(ss);
    const roleArn = `arn:aws:iam::${account()}:role/secretsync/${stem}`;
    const functionArn = `arn:aws:lambda:${region()}:${account()}:function:${stem}`;
    const ruleArn = `arn:aws:events:${region()}:${account()}:rule/${stem}`;
    const description = `secretsync: ${ns}/${name} in cluster ${bed().clusterName} (${region()})`;

    // ── The first provisioning's AWS calls ──
    const table = tally(s.calls);
    console.log(
      `first provisioning of ${ns}/${name}: ${s.passes} reconcile pass(es), ${s.calls.length} AWS calls\n` +
        table
          .map(
            (r) =>
              `  ${r.caller.padEnd(10)} ${r.kind.padEnd(8)} ${r.service.padEnd(14)} ${r.operation.padEnd(22)} HTTP ${r.status}  ×${r.n}`,
          )
          .join('\n'),
    );
    const admin = bed().aws.credentials.accessKeyId;
    const controller = s.calls.filter((x) => x.accessKeyId === admin);
    const fn = s.calls.filter((x) => x.accessKeyId !== admin);
    const writes = controller.filter((x) => !isRead(x.operation)).map((x) => x.operation);
    // Each exactly once: tags go with the creates, the function is invoked once for the first sync.
    expect(writes.sort()).toEqual(
      [
        'CreateRole',
        'PutRolePolicy',
        'CreateLogGroup',
        'PutRetentionPolicy',
        'CreateFunction',
        'PutFunctionEventInvokeConfig',
        'PutRule',
        'AddPermission',
        'PutTargets',
        'CreateAccessEntry',
        'Invoke',
      ].sort(),
    );
    // One pass: the inventory (taken before) listed none of its things, so role, log group, function
    // and access entry are created without a read; the secret is read fresh (a user's change), and
    // the rule (PutRule would overwrite one made since the list: 400 ResourceNotFoundException in
    // EventBridge's JSON protocol). Then it invokes the function.
    expect(s.passes).toBe(1);
    const LISTS = ['ListSecrets', 'ListRules', 'GetResources', 'ListRoles', 'ListAccessEntries'];
    expect(
      controller
        .filter((x) => isRead(x.operation) && !LISTS.includes(x.operation))
        .map((x) => `${x.operation} ${x.status}`),
    ).toEqual([
      'DescribeSecret 200',
      // The rule first (the smallest quota: over it, nothing is created), its target later, once
      // the function exists (no ListTargetsByRule: the rule was created this pass).
      'DescribeRule 400',
      // Nothing to ask about the function's invoke config and permission: it was created this pass.
    ]);
    // The controller never reads a secret value. The function makes no AWS call but GetSecretValue
    // on its one ARN: once to sync, once after the write to confirm the version did not move meanwhile.
    expect(controller.filter((x) => x.operation === 'GetSecretValue')).toEqual([]);
    expect(fn.map((x) => `${x.operation} ${x.resource}`)).toEqual([
      `GetSecretValue ${arn}`,
      `GetSecretValue ${arn}`,
    ]);

    // ── IAM role ──
    const role = (await iam().send(new GetRoleCommand({ RoleName: names.roleName }))).Role!;
    expect(role).toMatchObject({
      Path: '/secretsync/',
      RoleName: stem,
      Arn: roleArn,
      Description: description,
    });
    expect(role.PermissionsBoundary).toBeUndefined();
    expect(JSON.parse(decodeURIComponent(role.AssumeRolePolicyDocument!))).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': account() } },
        },
      ],
    });
    expect(tagMap(role.Tags)).toEqual(tags);
    expect(await inlinePolicies(names.roleName)).toEqual({ secretsync: expectedPolicy(arn, stem) });
    const attached = await iam().send(new ListAttachedRolePoliciesCommand({ RoleName: names.roleName }));
    expect(attached.AttachedPolicies ?? []).toEqual([]);

    // ── Lambda function ──
    const got = await lambda().send(new GetFunctionCommand({ FunctionName: names.functionName }));
    const cfg = got.Configuration!;
    expect(cfg).toMatchObject({
      FunctionName: stem,
      FunctionArn: functionArn,
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Role: roleArn,
      MemorySize: 128,
      Timeout: 30,
      Architectures: ['arm64'],
      PackageType: 'Zip',
      Description: description,
      CodeSha256: zipSha256,
      State: 'Active',
    });
    expect(cfg.VpcConfig?.SubnetIds ?? []).toEqual([]);
    // Only what reaches the API server: the spec (stage, mapping, policy, target) is read at run time.
    expect(cfg.Environment?.Variables).toEqual({
      SECRETSYNC_SECRET_ARN: arn,
      SECRETSYNC_CLUSTER_NAME: bed().clusterName,
      SECRETSYNC_API_ENDPOINT: bed().apiUrl.replace(/\/+$/, ''),
      SECRETSYNC_CA: bed().caPem.replace(/-----[A-Z ]+-----|\s/g, ''),
      SECRETSYNC_NAMESPACE: ns,
      SECRETSYNC_SYNC_NAME: name,
    });
    expect(got.Tags).toEqual(tags);
    const policy = JSON.parse(
      (await lambda().send(new GetPolicyCommand({ FunctionName: names.functionName }))).Policy!,
    ) as { Statement: unknown[] };
    expect(policy.Statement).toEqual([
      {
        Sid: 'secretsync-events',
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'lambda:InvokeFunction',
        Resource: functionArn,
        Condition: {
          StringEquals: { 'AWS:SourceAccount': account() },
          ArnLike: { 'AWS:SourceArn': ruleArn },
        },
      },
    ]);

    // ── EventBridge rule, its one target ──
    const rule = await events().send(new DescribeRuleCommand({ Name: names.ruleName }));
    expect(rule).toMatchObject({ Name: stem, Arn: ruleArn, State: 'ENABLED', Description: description });
    expect(rule.ScheduleExpression).toBeUndefined();
    expect(JSON.parse(rule.EventPattern!)).toEqual({
      source: ['aws.secretsmanager'],
      'detail-type': ['Secret Label Updated'],
      resources: [arn],
      detail: { labelUpdated: ['AWSCURRENT'] },
    });
    const targets = await events().send(new ListTargetsByRuleCommand({ Rule: names.ruleName }));
    expect(targets.Targets).toEqual([
      {
        Id: 'secretsync',
        Arn: functionArn,
        RetryPolicy: { MaximumRetryAttempts: 20, MaximumEventAgeInSeconds: 3600 },
      },
    ]);
    expect(tagMap((await events().send(new ListRuleTagsCommand({ ResourceARN: ruleArn }))).Tags)).toEqual(
      tags,
    );

    // ── Log group ──
    const groups = await logs().send(
      new DescribeLogGroupsCommand({ logGroupNamePrefix: names.logGroupName }),
    );
    expect(groups.logGroups?.map((g) => [g.logGroupName, g.retentionInDays])).toEqual([
      [`/aws/lambda/${stem}`, 30],
    ]);
    const groupArn = groups.logGroups![0]!.arn!.replace(/:\*$/, '');
    expect((await logs().send(new ListLogTagsCommand({ resourceArn: groupArn }))).tags).toEqual(tags);

    // ── EKS access entry ──
    const entry = (
      await eks().send(
        new DescribeAccessEntryCommand({ clusterName: bed().clusterName, principalArn: roleArn }),
      )
    ).accessEntry!;
    expect(entry).toMatchObject({
      clusterName: bed().clusterName,
      principalArn: roleArn,
      type: 'STANDARD',
      username: `secretsync:${ns}:${name}`,
    });
    expect(entry.kubernetesGroups ?? []).toEqual([]);
    expect(entry.tags).toEqual({ ...tags, 'secretsync.io/role-id': role.RoleId });
    // No access policy is ever associated (EKS access policies would grant cluster-wide powers).
    expect(s.calls.filter((x) => /AccessPolic/.test(x.operation))).toEqual([]);

    // ── Kubernetes: Role, RoleBinding, target Secret ──
    const kubeRole = await rbac().readNamespacedRole({ name: names.rbacName, namespace: ns });
    expect(kubeRole.rules).toEqual([
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['db-creds'],
        verbs: ['get', 'patch', 'update'],
      },
      {
        apiGroups: ['secretsync.io'],
        resources: ['secretsyncs'],
        resourceNames: [name],
        verbs: ['get'],
      },
      {
        apiGroups: ['secretsync.io'],
        resources: ['secretsyncs/status'],
        resourceNames: [name],
        verbs: ['patch'],
      },
    ]);
    const binding = await rbac().readNamespacedRoleBinding({ name: names.rbacName, namespace: ns });
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: names.rbacName,
    });
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `secretsync:${ns}:${name}` },
    ]);
    const target = await core().readNamespacedSecret({ namespace: ns, name: 'db-creds' });
    expect(target.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'secretsync',
      'secretsync.io/secretsync': name,
    });
    expect(target.type).toBe('Opaque');
    expect(await secretData(ns, 'db-creds')).toEqual({ username: 'app', password: 'p1', port: '5432' });

    // ── Status names what was provisioned ──
    expect(ss.status).toMatchObject({
      observedGeneration: ss.metadata.generation,
      targetName: 'db-creds',
      secretArn: arn,
      roleArn,
      functionArn,
      ruleArn,
      accessEntryUsername: `secretsync:${ns}:${name}`,
      syncedKeys: 3,
    });

    // ── Delete → nothing with this SecretSync's tags is left anywhere ──
    // The same listing before the delete finds exactly one of each (so an empty one after means gone).
    expect(await everythingOwnedBy({ namespace: ns, name })).toEqual({
      roles: [roleArn],
      functions: [functionArn],
      rules: [ruleArn],
      logGroups: [`/aws/lambda/${stem}`],
      accessEntries: [roleArn],
    });
    await resetAwsCalls();
    await deleteAndFinalize(c, ns, name);
    const teardown = await awsCalls();
    console.log(
      `teardown of ${ns}/${name}: ${teardown.length} AWS calls\n` +
        tally(teardown)
          .map(
            (r) =>
              `  ${r.caller.padEnd(10)} ${r.kind.padEnd(8)} ${r.service.padEnd(14)} ${r.operation.padEnd(22)} HTTP ${r.status}  ×${r.n}`,
          )
          .join('\n'),
    );
    // Each thing deleted once, in reverse order of creation; the permission goes with the function.
    expect(teardown.filter((x) => !isRead(x.operation)).map((x) => x.operation)).toEqual([
      'DeleteAccessEntry',
      'RemoveTargets',
      'DeleteRule',
      'DeleteFunction',
      'DeleteLogGroup',
      'DeleteRolePolicy',
      'DeleteRole',
    ]);
    made.splice(
      made.findIndex(([a, b]) => a === ns && b === name),
      1,
    );
    const left = await everythingOwnedBy({ namespace: ns, name });
    expect(left).toEqual({ roles: [], functions: [], rules: [], logGroups: [], accessEntries: [] });
    expect(
      statusOf(
        await rbac()
          .readNamespacedRole({ name: names.rbacName, namespace: ns })
          .catch((e) => e),
      ),
    ).toBe(404);
    expect(
      statusOf(
        await rbac()
          .readNamespacedRoleBinding({ name: names.rbacName, namespace: ns })
          .catch((e) => e),
      ),
    ).toBe(404);
    // deletionPolicy defaults to Retain: the Secret and its data stay.
    expect(await secretData(ns, 'db-creds')).toEqual({ username: 'app', password: 'p1', port: '5432' });
  });

  it('a secret under a customer KMS key: the policy gains exactly kms:Decrypt on that key via Secrets Manager', async () => {
    const key = await kms<{ KeyMetadata: { KeyId: string; Arn: string } }>('CreateKey', {
      Description: 'secretsync provisioning test',
    });
    const keyArn = key.KeyMetadata.Arn;
    expect(keyArn).toMatch(new RegExp(`^arn:aws:kms:${region()}:${account()}:key/`));
    const decrypt = {
      Sid: 'DecryptSecret',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: keyArn,
      Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${region()}.amazonaws.com` } },
    };

    // The key named by ARN, and by bare key id: both grant on exactly that key's ARN.
    for (const [prefix, kmsKeyId] of [
      ['kmsarn', keyArn],
      ['kmsid', key.KeyMetadata.KeyId],
    ] as const) {
      const s = await provision(prefix, async (secretId) => {
        const out = await sm().send(
          new CreateSecretCommand({ Name: secretId, SecretString: '{"k":"v"}', KmsKeyId: kmsKeyId }),
        );
        return out.ARN!;
      });
      expect(await inlinePolicies(s.names.roleName), `KmsKeyId given as ${prefix}`).toEqual({
        secretsync: expectedPolicy(s.arn, s.names.stem, decrypt),
      });
      expect(await secretData(s.ns, 'db-creds')).toEqual({ k: 'v' });
    }

    // Named by alias: IAM cannot name a key by alias, so the grant is on the account's keys that
    // carry that alias (kms:ResourceAliases), still only via Secrets Manager.
    const alias = `alias/secretsync-test-${Date.now()}`;
    await kms('CreateAlias', { AliasName: alias, TargetKeyId: key.KeyMetadata.KeyId });
    const s = await provision('kmsalias', async (secretId) => {
      const out = await sm().send(
        new CreateSecretCommand({ Name: secretId, SecretString: '{"k":"v"}', KmsKeyId: alias }),
      );
      return out.ARN!;
    });
    expect(await inlinePolicies(s.names.roleName)).toEqual({
      secretsync: expectedPolicy(s.arn, s.names.stem, {
        Sid: 'DecryptSecret',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: `arn:aws:kms:${region()}:${account()}:key/*`,
        Condition: {
          StringEquals: { 'kms:ViaService': `secretsmanager.${region()}.amazonaws.com` },
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': alias },
        },
      }),
    });
  });
});

/** Every AWS resource of the kinds §4 provisions whose ownership tags name namespace/name — listed whole, filtered by tag. */
async function everythingOwnedBy(o: { namespace: string; name: string }) {
  const owner = { clusterArn: testbedClusterArn(), ...o };
  const roles: string[] = [];
  for await (const page of paginateListRoles({ client: iam() }, {})) {
    for (const r of page.Roles ?? []) {
      const t = await iam().send(new ListRoleTagsCommand({ RoleName: r.RoleName! }));
      if (ownedBy(tagMap(t.Tags) as Record<string, string>, owner)) roles.push(r.Arn!);
    }
  }
  const functions: string[] = [];
  for await (const page of paginateListFunctions({ client: lambda() }, {})) {
    for (const f of page.Functions ?? []) {
      const t = await lambda().send(new ListTagsCommand({ Resource: f.FunctionArn! }));
      if (ownedBy(t.Tags, owner)) functions.push(f.FunctionArn!);
    }
  }
  const rules: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await events().send(new ListRulesCommand({ ...(NextToken ? { NextToken } : {}) }));
    for (const r of page.Rules ?? []) {
      const t = await events().send(new ListRuleTagsCommand({ ResourceARN: r.Arn! }));
      if (ownedBy(tagMap(t.Tags) as Record<string, string>, owner)) rules.push(r.Arn!);
    }
    NextToken = page.NextToken;
  } while (NextToken);
  const logGroups: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await logs().send(new DescribeLogGroupsCommand({ ...(nextToken ? { nextToken } : {}) }));
    for (const g of page.logGroups ?? ([] as LogGroup[])) {
      const t = await logs().send(new ListLogTagsCommand({ resourceArn: g.arn!.replace(/:\*$/, '') }));
      if (ownedBy(t.tags, owner)) logGroups.push(g.logGroupName!);
    }
    nextToken = page.nextToken;
  } while (nextToken);
  const accessEntries: string[] = [];
  let token: string | undefined;
  do {
    const page = await eks().send(
      new ListAccessEntriesCommand({
        clusterName: bed().clusterName,
        ...(token ? { nextToken: token } : {}),
      }),
    );
    for (const principalArn of page.accessEntries ?? []) {
      const e = await eks().send(
        new DescribeAccessEntryCommand({ clusterName: bed().clusterName, principalArn }),
      );
      if (ownedBy(e.accessEntry?.tags, owner)) accessEntries.push(principalArn);
    }
    token = page.nextToken;
  } while (token);
  return { roles, functions, rules, logGroups, accessEntries };
}
