// Every AWS manager through the generic ensure / remove against moto (with the test bed's EKS
// access-entry emulation in front of it), one table row per manager: create; a second ensure writes
// nothing; each managed field edited out of band is repaired with exactly the write it needs and the
// next ensure writes nothing; a same-named resource that is not ours (untagged, or tagged for another
// cluster ARN: the same cluster name in another region) is refused by ensure and left by remove;
// remove deletes, and again finds it gone. The generic walk's own decisions are unit-tested in
// manager.test.ts; each manager's particulars in aws/*.moto.test.ts.

import {
  DeleteRetentionPolicyCommand,
  DescribeLogGroupsCommand,
  TagResourceCommand as LogsTagResourceCommand,
  UntagResourceCommand as LogsUntagResourceCommand,
  PutRetentionPolicyCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  CreateClusterCommand,
  DescribeAccessEntryCommand,
  TagResourceCommand as EksTagResourceCommand,
  UntagResourceCommand as EksUntagResourceCommand,
  UpdateAccessEntryCommand,
} from '@aws-sdk/client-eks';
import {
  DescribeRuleCommand,
  DisableRuleCommand,
  TagResourceCommand as EventsTagResourceCommand,
  UntagResourceCommand as EventsUntagResourceCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  AttachRolePolicyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  DeleteRolePolicyCommand,
  GetRoleCommand,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
  TagRoleCommand,
  UntagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  UpdateRoleCommand,
} from '@aws-sdk/client-iam';
import {
  AddPermissionCommand,
  DeleteFunctionEventInvokeConfigCommand,
  GetFunctionCommand,
  GetFunctionEventInvokeConfigCommand,
  GetPolicyCommand,
  TagResourceCommand as LambdaTagResourceCommand,
  UntagResourceCommand as LambdaUntagResourceCommand,
  PutFunctionEventInvokeConfigCommand,
  RemovePermissionCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AccessEntryStore, createEksInterceptor } from '../../e2e/testbed/eks-access-entries.ts';
import { LAMBDA_TRUST } from '../../e2e/testbed/test-front-door.ts';
import { accessEntryManager, ROLE_ID_TAG, withRoleId } from './aws/access-entry.ts';
import type { AwsEnv } from './aws/clients.ts';
import type { DesiredState } from './aws/desired.ts';
import { ruleManager } from './aws/event-rule.ts';
import { roleManager } from './aws/iam-role.ts';
import { invokeConfigManager } from './aws/invoke-config.ts';
import { functionManager } from './aws/lambda-function.ts';
import { permissionManager } from './aws/lambda-permission.ts';
import { logGroupManager } from './aws/log-group.ts';
import { ruleTargetManager } from './aws/rule-target.ts';
import type { Tags } from './aws/tags.ts';
import {
  ACCOUNT,
  functionCode,
  inOtherCluster,
  type MotoKit,
  otherClusterTags,
  type RecordedCall,
  sampleDesired,
  sampleSync,
  startMotoKit,
} from './aws/test-support.ts';
import { NotOursError } from './errors.ts';
import { type Ensured, ensure, type Manager, type Removal, remove } from './manager.ts';
import { type Owner, TAG } from './naming.ts';

let kit: MotoKit;
const CLUSTER = 'prod-eu';
/** Someone else's role, for a function edited to run as it. */
const OTHER_ROLE = `arn:aws:iam::${ACCOUNT}:role/someone-elses-role`;
const QUEUE = `arn:aws:sqs:us-east-1:${ACCOUNT}:someone-elses-queue`;

beforeAll(async () => {
  kit = await startMotoKit();
  const { motoUrl, region, accountId, credentials } = kit.aws.endpoint;
  kit.aws.use(
    createEksInterceptor({ motoUrl, region, accountId, store: new AccessEntryStore(), credentials }),
  );
  await kit.clients.eks.send(
    new CreateClusterCommand({
      name: CLUSTER,
      roleArn: `arn:aws:iam::${accountId}:role/eks-cluster`,
      resourcesVpcConfig: {},
    }),
  );
  await kit.clients.iam.send(
    new CreateRoleCommand({ RoleName: 'someone-elses-role', AssumeRolePolicyDocument: LAMBDA_TRUST }),
  );
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const iam = () => kit.clients.iam;
const logs = () => kit.clients.logs;
const lambda = () => kit.clients.lambda;
const events = () => kit.clients.events;
const eks = () => kit.clients.eks;

/** One out-of-band edit and the writes that repair it. */
interface Drift {
  what: string;
  edit(d: DesiredState): Promise<unknown>;
  /** The mutating calls of the repair, in order; empty when the edit is not ours to judge. */
  repair: string[];
  /** The input of the repair's last call, exactly. */
  input?(d: DesiredState): Record<string, unknown>;
}

/** One manager's row of the table. */
interface Row<I, D, L> {
  manager: Manager<AwsEnv, I, D, L>;
  /** Creates what the thing needs (role, function) and returns its desired state. */
  prepare(d: DesiredState): Promise<D>;
  creates: string[];
  deletes: string[];
  /** Asked of AWS directly, not through the manager. */
  exists(d: DesiredState): Promise<boolean>;
  drifts: Drift[];
  /** Kinds with ownership tags: the desired state under other tags, for a same-named squatter. */
  retag?(desired: D, tags: Tags): D;
  /**
   * False for a sub-resource that is not recorded and goes with its parent (the rule's targets, which
   * are removed with the rule): that row has no remove test.
   */
  standalone?: false;
}

/** A row with its types erased, so that the table can hold every manager. */
interface Subject {
  title: string;
  row: Omit<Row<unknown, unknown, unknown>, 'manager' | 'prepare' | 'retag'>;
  owned: boolean;
  start(name: string): Promise<Handle>;
}
interface Handle {
  d: DesiredState;
  ensure(owner?: Owner): Promise<Ensured<unknown>>;
  remove(owner?: Owner): Promise<Removal>;
  /** Creates a same-named thing tagged `tags` (with the manager's own create: only its tags differ). */
  squat(tags: Tags): Promise<void>;
  /** The tags of what is there now (through the manager's read). */
  tags(): Promise<Tags | undefined>;
}

function subject<I, D, L>(row: Row<I, D, L>): Subject {
  const { manager: m, prepare, retag, ...rest } = row;
  return {
    title: m.title,
    row: rest,
    owned: m.owned !== undefined,
    async start(name) {
      const d = sampleDesired({ sync: sampleSync({ name }), settings: { clusterName: CLUSTER } });
      const desired = await prepare(d);
      const id = m.id(desired);
      kit.reset();
      return {
        d,
        ensure: (owner = d.owner) => ensure(m, kit.env, desired, owner),
        remove: (owner = d.owner) => remove(m, kit.env, id, owner),
        async squat(tags) {
          if (!retag) throw new Error(`${m.title} has no tags of its own`);
          await m.create(kit.env, retag(desired, tags));
        },
        async tags() {
          const latest = await m.read(kit.env, id);
          return latest === undefined ? undefined : m.tags?.of(latest);
        },
      };
    },
  };
}

/** Whether the call finds the thing: false on AWS's NotFound, whatever the service calls it. */
async function found(call: Promise<unknown>): Promise<boolean> {
  try {
    await call;
    return true;
  } catch (err) {
    if (/NotFound|NoSuchEntity/.test((err as Error).name)) return false;
    throw err;
  }
}

/** The four tag edits every tagged kind gets: only our keys are ours to repair. */
function tagDrifts(
  [tag, untag]: [string, string],
  api: {
    tag(d: DesiredState, tags: Tags): Promise<unknown>;
    untag(d: DesiredState, keys: string[]): Promise<unknown>;
  },
): Drift[] {
  return [
    { what: 'one of our tags removed', edit: (d) => api.untag(d, [TAG.uid]), repair: [tag] },
    {
      what: 'one of our tags changed',
      edit: (d) => api.tag(d, { [TAG.managedBy]: 'someone-else' }),
      repair: [tag],
    },
    {
      what: 'a tag of ours we do not set added',
      edit: (d) => api.tag(d, { 'secretsync.io/stale': 'x' }),
      repair: [untag],
    },
    {
      what: 'tags of others added (left alone)',
      edit: (d) => api.tag(d, { 'cost-centre': '42' }),
      repair: [],
    },
  ];
}

const WIDE_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'secretsmanager:*', Resource: '*' }],
});
let policies = 0;

const ensureRole = async (d: DesiredState) =>
  (await ensure(roleManager, kit.env, d.role, d.owner)).latest.role.RoleId as string;
const ensureFunction = async (d: DesiredState) => {
  await ensureRole(d);
  await ensure(functionManager, kit.env, d.function, d.owner);
};
const configure = (d: DesiredState, edit: Record<string, unknown>) =>
  lambda().send(new UpdateFunctionConfigurationCommand({ FunctionName: d.function.name, ...edit }));
const putInvokeConfig = (d: DesiredState, edit: Record<string, unknown>) =>
  lambda().send(
    new PutFunctionEventInvokeConfigCommand({
      FunctionName: d.function.name,
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      ...edit,
    }),
  );
const permit = (d: DesiredState, StatementId: string, edit: Record<string, unknown>) =>
  lambda().send(
    new AddPermissionCommand({
      FunctionName: d.function.name,
      StatementId,
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceArn: d.rule.arn,
      SourceAccount: ACCOUNT,
      ...edit,
    }),
  );
const unpermit = (d: DesiredState) =>
  lambda().send(
    new RemovePermissionCommand({ FunctionName: d.function.name, StatementId: 'secretsync-events' }),
  );
const putRule = (d: DesiredState, edit: Record<string, unknown>) =>
  events().send(
    new PutRuleCommand({
      Name: d.rule.name,
      EventPattern: d.rule.eventPattern,
      State: 'ENABLED',
      Description: d.rule.description,
      ...edit,
    }),
  );
const ensureRuleOnly = (d: DesiredState) => ensure(ruleManager, kit.env, d.rule, d.owner);
/** The target's desired state, as provision.ts builds it. */
const ruleTarget = (d: DesiredState) => ({ ...d.rule.target, ruleArn: d.rule.arn });
const listTargets = async (d: DesiredState) =>
  (await events().send(new ListTargetsByRuleCommand({ Rule: d.rule.name }))).Targets ?? [];
const target = (d: DesiredState) => ({
  Id: 'secretsync',
  Arn: d.function.arn,
  RetryPolicy: { MaximumRetryAttempts: 20, MaximumEventAgeInSeconds: 3600 },
});
const updateEntry = (d: DesiredState, edit: Record<string, unknown>) =>
  eks().send(new UpdateAccessEntryCommand({ clusterName: CLUSTER, principalArn: d.role.arn, ...edit }));
const entryArn = async (d: DesiredState) =>
  (await eks().send(new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn: d.role.arn })))
    .accessEntry?.accessEntryArn as string;

const TABLE: Subject[] = [
  subject({
    manager: roleManager,
    prepare: async (d) => d.role,
    creates: ['CreateRole', 'PutRolePolicy'],
    deletes: ['DeleteRolePolicy', 'DeleteRole'],
    exists: (d) => found(iam().send(new GetRoleCommand({ RoleName: d.role.name }))),
    retag: (desired, tags) => ({ ...desired, tags }),
    drifts: [
      {
        what: 'trust policy',
        edit: (d) =>
          iam().send(
            new UpdateAssumeRolePolicyCommand({
              RoleName: d.role.name,
              PolicyDocument: JSON.stringify({
                Version: '2012-10-17',
                Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole' }],
              }),
            }),
          ),
        repair: ['UpdateAssumeRolePolicy'],
        input: (d) => ({ RoleName: d.role.name, PolicyDocument: d.role.assumeRolePolicyDocument }),
      },
      {
        what: 'description',
        edit: (d) => iam().send(new UpdateRoleCommand({ RoleName: d.role.name, Description: 'edited' })),
        repair: ['UpdateRole'],
        input: (d) => ({ RoleName: d.role.name, Description: d.role.description }),
      },
      {
        what: 'permissions boundary (added)',
        edit: (d) =>
          iam().send(
            new PutRolePermissionsBoundaryCommand({
              RoleName: d.role.name,
              PermissionsBoundary: 'arn:aws:iam::aws:policy/PowerUserAccess',
            }),
          ),
        repair: ['DeleteRolePermissionsBoundary'],
        input: (d) => ({ RoleName: d.role.name }),
      },
      {
        what: 'inline policy (widened)',
        edit: (d) =>
          iam().send(
            new PutRolePolicyCommand({
              RoleName: d.role.name,
              PolicyName: 'secretsync',
              PolicyDocument: WIDE_POLICY,
            }),
          ),
        repair: ['PutRolePolicy'],
        input: (d) => ({
          RoleName: d.role.name,
          PolicyName: 'secretsync',
          PolicyDocument: d.role.inlinePolicyDocument,
        }),
      },
      {
        what: 'inline policy (deleted)',
        edit: (d) =>
          iam().send(new DeleteRolePolicyCommand({ RoleName: d.role.name, PolicyName: 'secretsync' })),
        repair: ['PutRolePolicy'],
      },
      {
        what: 'another inline policy',
        edit: (d) =>
          iam().send(
            new PutRolePolicyCommand({
              RoleName: d.role.name,
              PolicyName: 'extra',
              PolicyDocument: WIDE_POLICY,
            }),
          ),
        repair: ['DeleteRolePolicy'],
        input: (d) => ({ RoleName: d.role.name, PolicyName: 'extra' }),
      },
      {
        what: 'an attached managed policy',
        async edit(d) {
          const { Policy } = await iam().send(
            new CreatePolicyCommand({ PolicyName: `extra-${++policies}`, PolicyDocument: WIDE_POLICY }),
          );
          await iam().send(new AttachRolePolicyCommand({ RoleName: d.role.name, PolicyArn: Policy?.Arn }));
        },
        repair: ['DetachRolePolicy'],
      },
      ...tagDrifts(['TagRole', 'UntagRole'], {
        tag: (d, tags) =>
          iam().send(
            new TagRoleCommand({
              RoleName: d.role.name,
              Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
            }),
          ),
        untag: (d, TagKeys) => iam().send(new UntagRoleCommand({ RoleName: d.role.name, TagKeys })),
      }),
    ],
  }),
  subject({
    manager: logGroupManager,
    prepare: async (d) => d.logGroup,
    creates: ['CreateLogGroup', 'PutRetentionPolicy'],
    deletes: ['DeleteLogGroup'],
    exists: async (d) => {
      const out = await logs().send(new DescribeLogGroupsCommand({ logGroupNamePrefix: d.logGroup.name }));
      return out.logGroups?.some((g) => g.logGroupName === d.logGroup.name) ?? false;
    },
    retag: (desired, tags) => ({ ...desired, tags }),
    drifts: [
      {
        what: 'retention (changed)',
        edit: (d) =>
          logs().send(
            new PutRetentionPolicyCommand({ logGroupName: d.logGroup.name, retentionInDays: 3653 }),
          ),
        repair: ['PutRetentionPolicy'],
        input: (d) => ({ logGroupName: d.logGroup.name, retentionInDays: 30 }),
      },
      {
        what: 'retention (removed: never expire)',
        edit: (d) => logs().send(new DeleteRetentionPolicyCommand({ logGroupName: d.logGroup.name })),
        repair: ['PutRetentionPolicy'],
      },
      ...tagDrifts(['TagResource', 'UntagResource'], {
        tag: (d, tags) => logs().send(new LogsTagResourceCommand({ resourceArn: d.logGroup.arn, tags })),
        untag: (d, tagKeys) =>
          logs().send(new LogsUntagResourceCommand({ resourceArn: d.logGroup.arn, tagKeys })),
      }),
    ],
  }),
  subject({
    manager: functionManager,
    prepare: async (d) => {
      await ensureRole(d);
      return d.function;
    },
    creates: ['CreateFunction'],
    deletes: ['DeleteFunction'],
    exists: (d) => found(lambda().send(new GetFunctionCommand({ FunctionName: d.function.name }))),
    retag: (desired, tags) => ({ ...desired, tags }),
    drifts: [
      ...(
        [
          ['memory', { MemorySize: 1024 }, (d) => ({ MemorySize: d.function.memoryMb })],
          ['timeout', { Timeout: 3 }, (d) => ({ Timeout: d.function.timeoutSeconds })],
          ['description', { Description: 'edited' }, (d) => ({ Description: d.function.description })],
          ['handler', { Handler: 'main.handler' }, (d) => ({ Handler: d.function.handler })],
          ['runtime', { Runtime: 'nodejs22.x' }, (d) => ({ Runtime: d.function.runtime })],
          ['execution role', { Role: OTHER_ROLE }, (d) => ({ Role: d.function.roleArn })],
          [
            'environment',
            { Environment: { Variables: { NODE_OPTIONS: '--inspect' } } },
            (d) => ({ Environment: { Variables: d.function.environment } }),
          ],
          [
            'VPC (attached)',
            { VpcConfig: { SubnetIds: ['subnet-1'], SecurityGroupIds: ['sg-1'] } },
            () => ({ VpcConfig: { SubnetIds: [], SecurityGroupIds: [] } }),
          ],
        ] satisfies [string, Record<string, unknown>, (d: DesiredState) => Record<string, unknown>][]
      ).map(
        ([what, edit, repaired]): Drift => ({
          what,
          edit: (d) => configure(d, edit),
          repair: ['UpdateFunctionConfiguration'],
          input: (d) => ({ FunctionName: d.function.name, ...repaired(d) }),
        }),
      ),
      {
        what: 'code',
        edit: (d) =>
          lambda().send(
            new UpdateFunctionCodeCommand({
              FunctionName: d.function.name,
              ZipFile: functionCode('export const handler = async () => "mine";').zip,
            }),
          ),
        repair: ['UpdateFunctionCode'],
        input: (d) => ({
          FunctionName: d.function.name,
          ZipFile: d.function.code.zip,
          Architectures: ['arm64'],
        }),
      },
      // Not the architecture: moto ignores Architectures in UpdateFunctionCode, so it cannot be
      // edited out of band here (lambda-function.moto.test.ts changes it from our side).
      ...tagDrifts(['TagResource', 'UntagResource'], {
        tag: (d, Tags) => lambda().send(new LambdaTagResourceCommand({ Resource: d.function.arn, Tags })),
        untag: (d, TagKeys) =>
          lambda().send(new LambdaUntagResourceCommand({ Resource: d.function.arn, TagKeys })),
      }),
    ],
  }),
  subject({
    manager: invokeConfigManager,
    prepare: async (d) => {
      await ensureFunction(d);
      return d.invokeConfig;
    },
    creates: ['PutFunctionEventInvokeConfig'],
    deletes: ['DeleteFunctionEventInvokeConfig'],
    exists: (d) =>
      found(lambda().send(new GetFunctionEventInvokeConfigCommand({ FunctionName: d.function.name }))),
    drifts: [
      ...(
        [
          ['retries', { MaximumRetryAttempts: 0 }],
          ['maximum event age', { MaximumEventAgeInSeconds: 60 }],
          ['on-failure destination (added)', { DestinationConfig: { OnFailure: { Destination: QUEUE } } }],
          ['on-success destination (added)', { DestinationConfig: { OnSuccess: { Destination: QUEUE } } }],
        ] as const
      ).map(
        ([what, edit]): Drift => ({
          what,
          edit: (d) => putInvokeConfig(d, edit),
          repair: ['PutFunctionEventInvokeConfig'],
          input: (d) => ({
            FunctionName: d.function.name,
            MaximumRetryAttempts: d.invokeConfig.maximumRetryAttempts,
            MaximumEventAgeInSeconds: d.invokeConfig.maximumEventAgeInSeconds,
            DestinationConfig: {},
          }),
        }),
      ),
      {
        what: 'config (deleted)',
        edit: (d) =>
          lambda().send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: d.function.name })),
        repair: ['PutFunctionEventInvokeConfig'],
      },
    ],
  }),
  subject({
    manager: permissionManager,
    prepare: async (d) => {
      await ensureFunction(d);
      return d.permission;
    },
    creates: ['AddPermission'],
    deletes: ['RemovePermission'],
    exists: async (d) => {
      try {
        const { Policy } = await lambda().send(new GetPolicyCommand({ FunctionName: d.function.name }));
        const { Statement } = JSON.parse(Policy ?? '{}') as { Statement?: { Sid?: string }[] };
        return Statement?.some((s) => s.Sid === 'secretsync-events') ?? false;
      } catch (err) {
        if ((err as Error).name === 'ResourceNotFoundException') return false;
        throw err;
      }
    },
    drifts: [
      {
        what: 'source ARN (widened to every rule)',
        async edit(d) {
          await unpermit(d);
          await permit(d, 'secretsync-events', { SourceArn: `arn:aws:events:us-east-1:${ACCOUNT}:rule/*` });
        },
        repair: ['RemovePermission', 'AddPermission'],
        input: (d) => ({
          FunctionName: d.function.name,
          StatementId: 'secretsync-events',
          Action: 'lambda:InvokeFunction',
          Principal: 'events.amazonaws.com',
          SourceArn: d.rule.arn,
          SourceAccount: ACCOUNT,
        }),
      },
      {
        what: 'source account (dropped)',
        async edit(d) {
          await unpermit(d);
          await permit(d, 'secretsync-events', { SourceAccount: undefined });
        },
        repair: ['RemovePermission', 'AddPermission'],
      },
      { what: 'statement (removed)', edit: unpermit, repair: ['AddPermission'] },
      {
        what: 'a statement of others added (left alone)',
        edit: (d) =>
          permit(d, 'someone-else', { SourceArn: `arn:aws:events:us-east-1:${ACCOUNT}:rule/other` }),
        repair: [],
      },
    ],
  }),
  subject({
    manager: ruleManager,
    prepare: async (d) => d.rule,
    // The rule alone: its target is ruleTargetManager's (next row).
    creates: ['PutRule'],
    deletes: ['DeleteRule'],
    exists: (d) => found(events().send(new DescribeRuleCommand({ Name: d.rule.name }))),
    retag: (desired, tags) => ({ ...desired, tags }),
    drifts: [
      ...(
        [
          [
            'event pattern',
            (d) => putRule(d, { EventPattern: JSON.stringify({ source: ['aws.secretsmanager'] }) }),
          ],
          ['description', (d) => putRule(d, { Description: 'edited' })],
          ['state (disabled)', (d) => events().send(new DisableRuleCommand({ Name: d.rule.name }))],
        ] satisfies [string, Drift['edit']][]
      ).map(
        ([what, edit]): Drift => ({
          what,
          edit,
          repair: ['PutRule'],
          input: (d) => ({
            Name: d.rule.name,
            EventPattern: d.rule.eventPattern,
            State: 'ENABLED',
            Description: d.rule.description,
          }),
        }),
      ),
      ...tagDrifts(['TagResource', 'UntagResource'], {
        tag: (d, tags) =>
          events().send(
            new EventsTagResourceCommand({
              ResourceARN: d.rule.arn,
              Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
            }),
          ),
        untag: (d, TagKeys) =>
          events().send(new EventsUntagResourceCommand({ ResourceARN: d.rule.arn, TagKeys })),
      }),
    ],
  }),
  subject({
    manager: ruleTargetManager,
    prepare: async (d) => {
      await ensureRuleOnly(d);
      return ruleTarget(d);
    },
    creates: ['PutTargets'],
    deletes: [], // no remove test: see `standalone`
    standalone: false,
    exists: async (d) => (await listTargets(d)).some((t) => t.Id === 'secretsync'),
    drifts: [
      {
        what: 'retry policy (changed)',
        edit: (d) =>
          events().send(
            new PutTargetsCommand({
              Rule: d.rule.name,
              Targets: [{ ...target(d), RetryPolicy: { MaximumRetryAttempts: 185 } }],
            }),
          ),
        repair: ['PutTargets'],
        input: (d) => ({ Rule: d.rule.name, Targets: [target(d)] }),
      },
      {
        what: 'target (removed)',
        edit: (d) => events().send(new RemoveTargetsCommand({ Rule: d.rule.name, Ids: ['secretsync'] })),
        repair: ['PutTargets'],
        input: (d) => ({ Rule: d.rule.name, Targets: [target(d)] }),
      },
      {
        what: 'another target (added)',
        edit: (d) =>
          events().send(new PutTargetsCommand({ Rule: d.rule.name, Targets: [{ Id: 'spy', Arn: QUEUE }] })),
        repair: ['RemoveTargets'],
        input: (d) => ({ Rule: d.rule.name, Ids: ['spy'] }),
      },
      {
        // PutTargets replaces the whole target: a field someone added is drift too.
        what: 'dead-letter queue (added)',
        edit: (d) =>
          events().send(
            new PutTargetsCommand({
              Rule: d.rule.name,
              Targets: [{ ...target(d), DeadLetterConfig: { Arn: QUEUE } }],
            }),
          ),
        repair: ['PutTargets'],
        input: (d) => ({ Rule: d.rule.name, Targets: [target(d)] }),
      },
    ],
  }),
  subject({
    manager: accessEntryManager,
    prepare: async (d) => withRoleId(d.accessEntry, await ensureRole(d)),
    creates: ['CreateAccessEntry'],
    deletes: ['DeleteAccessEntry'],
    exists: (d) =>
      found(eks().send(new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn: d.role.arn }))),
    retag: (desired, tags) => ({ ...desired, tags }),
    drifts: [
      ...(
        [
          ['username', { username: 'admin' }],
          ['Kubernetes groups', { kubernetesGroups: ['cluster-admins'] }],
        ] as const
      ).map(
        ([what, edit]): Drift => ({
          what,
          edit: (d) => updateEntry(d, edit),
          repair: ['UpdateAccessEntry'],
          input: (d) => ({
            clusterName: CLUSTER,
            principalArn: d.role.arn,
            username: d.accessEntry.username,
            kubernetesGroups: [],
          }),
        }),
      ),
      {
        // The entry is bound to the role id it was created for: a changed record means another role.
        what: 'role id (re-created)',
        edit: async (d) =>
          eks().send(
            new EksTagResourceCommand({
              resourceArn: await entryArn(d),
              tags: { [ROLE_ID_TAG]: 'AROAOTHER' },
            }),
          ),
        repair: ['DeleteAccessEntry', 'CreateAccessEntry'],
      },
      ...tagDrifts(['TagResource', 'UntagResource'], {
        tag: async (d, tags) =>
          eks().send(new EksTagResourceCommand({ resourceArn: await entryArn(d), tags })),
        untag: async (d, tagKeys) =>
          eks().send(new EksUntagResourceCommand({ resourceArn: await entryArn(d), tagKeys })),
      }),
    ],
  }),
];

const lastMutation = (calls: RecordedCall[]) =>
  calls.filter((c) => !/^(Get|Describe|List)/.test(c.command)).at(-1);

// Each test gets its own SecretSync (name = row + test), so the rows share one moto without meeting.
let serial = 0;
const nameFor = (title: string) => `${title.toLowerCase().replace(/[^a-z]+/g, '-')}-${++serial}`;

describe.each(TABLE.map((s) => [s.title, s] as const))(
  '%s (generic ensure / remove against moto)',
  (_, s) => {
    const start = () => s.start(nameFor(s.title));

    it('creates it', async () => {
      const h = await start();
      const out = await h.ensure();
      expect(out).toMatchObject({ created: true, changed: true, health: { state: 'ready' } });
      expect(out.replaced).toBeUndefined();
      expect(kit.mutations()).toEqual(s.row.creates);
      expect(await s.row.exists(h.d)).toBe(true);
    });

    it('writes nothing on a second ensure', async () => {
      const h = await start();
      await h.ensure();
      kit.reset();
      expect(await h.ensure()).toMatchObject({ created: false, changed: false, health: { state: 'ready' } });
      expect(kit.mutations()).toEqual([]);
    });

    for (const drift of s.row.drifts) {
      const writes = drift.repair.length === 0 ? 'no write' : drift.repair.join(' + ');
      it(`repairs ${drift.what} out of band with ${writes}, then writes nothing`, async () => {
        const h = await start();
        await h.ensure();
        await drift.edit(h.d);
        kit.reset();
        expect((await h.ensure()).changed).toBe(drift.repair.length > 0);
        expect(kit.mutations()).toEqual(drift.repair);
        if (drift.input) expect(lastMutation(kit.calls)?.input).toEqual(drift.input(h.d));
        kit.reset();
        await h.ensure();
        expect(kit.mutations()).toEqual([]);
      });
    }

    if (s.owned) {
      for (const [whose, tagsOf] of [
        ['without our tags', () => ({ team: 'someone' })],
        ['tagged for another cluster ARN (same name, another region)', otherClusterTags],
      ] as const) {
        it(`refuses a same-named one ${whose}: ensure throws, remove leaves it, nothing written`, async () => {
          const h = await start();
          const tags = tagsOf(h.d.owner);
          await h.squat(tags);
          kit.reset();
          await expect(h.ensure()).rejects.toThrow(NotOursError);
          expect(await h.remove()).toBe('not-ours');
          expect(kit.mutations()).toEqual([]);
          expect(await s.row.exists(h.d)).toBe(true);
          expect(await h.tags()).toMatchObject(tags);
        });
      }

      it('is not ours as seen by the controller of a same-named cluster in another region', async () => {
        const h = await start();
        await h.ensure();
        const other = inOtherCluster(h.d.owner);
        kit.reset();
        await expect(h.ensure(other)).rejects.toThrow(NotOursError);
        expect(await h.remove(other)).toBe('not-ours');
        expect(kit.mutations()).toEqual([]);
        expect(await s.row.exists(h.d)).toBe(true);
      });
    }

    if (s.row.standalone ?? true) {
      it('removes it for good; removing again finds it gone and writes nothing', async () => {
        const h = await start();
        await h.ensure();
        kit.reset();
        expect(await h.remove()).toBe('gone');
        expect(kit.mutations()).toEqual(s.row.deletes);
        expect(await s.row.exists(h.d)).toBe(false);
        kit.reset();
        expect(await h.remove()).toBe('gone');
        expect(kit.mutations()).toEqual([]);
      });
    }
  },
);

// The target with its rule, as provision.ts ensures them: the target's read is skipped when the rule
// was created in this pass, and removing the rule takes its targets along.
describe('EventBridge rule target with its rule', () => {
  const start = async () => {
    const d = sampleDesired({
      sync: sampleSync({ name: nameFor('rule target') }),
      settings: { clusterName: CLUSTER },
    });
    kit.reset();
    return d;
  };

  it('on a rule created in this pass ({absent: true}): PutTargets without ListTargetsByRule; then no write', async () => {
    const d = await start();
    const rule = await ensureRuleOnly(d);
    expect(rule.created).toBe(true);
    const out = await ensure(ruleTargetManager, kit.env, ruleTarget(d), d.owner, { absent: rule.created });
    expect(out).toMatchObject({ created: true, changed: true });
    expect(kit.commands()).toEqual(['DescribeRule', 'PutRule', 'PutTargets']);
    expect(kit.calls.at(-1)?.input).toEqual({ Rule: d.rule.name, Targets: [target(d)] });
    expect(await listTargets(d)).toEqual([target(d)]);
    kit.reset();
    expect(await ensure(ruleTargetManager, kit.env, ruleTarget(d), d.owner)).toMatchObject({
      changed: false,
    });
    expect(kit.commands()).toEqual(['ListTargetsByRule']);
  });

  it("removing the rule removes its targets (ours and another's) first, then the rule", async () => {
    const d = await start();
    await ensureRuleOnly(d);
    await ensure(ruleTargetManager, kit.env, ruleTarget(d), d.owner);
    await events().send(new PutTargetsCommand({ Rule: d.rule.name, Targets: [{ Id: 'spy', Arn: QUEUE }] }));
    kit.reset();
    expect(await remove(ruleManager, kit.env, d.rule.arn, d.owner)).toBe('gone');
    expect(kit.mutations()).toEqual(['RemoveTargets', 'DeleteRule']);
    expect(kit.calls.find((c) => c.command === 'RemoveTargets')?.input).toEqual({
      Rule: d.rule.name,
      Ids: ['secretsync', 'spy'],
    });
    expect(await found(events().send(new DescribeRuleCommand({ Name: d.rule.name })))).toBe(false);
  });
});
