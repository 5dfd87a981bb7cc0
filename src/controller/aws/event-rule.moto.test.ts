// The EventBridge rule manager, the Lambda permission manager and the rule target manager, through
// the generic ensure / remove, against a real moto server. As in provision.ts: the rule (ownership
// checked), then the permission for it, then the target, so EventBridge is never let in for a rule
// that is not ours and never delivers to a function that would refuse it.
import {
  DescribeRuleCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-eventbridge';
import { AddPermissionCommand, GetPolicyCommand, RemovePermissionCommand } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NotOursError } from '../errors.ts';
import { ensure, remove } from '../manager.ts';
import { TAG } from '../naming.ts';
import type { DesiredState } from './desired.ts';
import { ruleManager } from './event-rule.ts';
import { roleManager } from './iam-role.ts';
import { functionManager } from './lambda-function.ts';
import { permissionManager } from './lambda-permission.ts';
import { ruleTargetManager } from './rule-target.ts';
import { ACCOUNT, type MotoKit, sampleDesired, sampleSync, startMotoKit } from './test-support.ts';

let kit: MotoKit;
beforeAll(async () => {
  kit = await startMotoKit();
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const events = () => kit.clients.events;
const lambda = () => kit.clients.lambda;

/**
 * A desired state whose role exists, and its function too unless `fn` is false (the permission lives
 * on the function).
 */
async function fresh(name: string, { fn = true } = {}): Promise<DesiredState> {
  const d = sampleDesired({ sync: sampleSync({ name }) });
  await ensure(roleManager, kit.env, d.role, d.owner);
  if (fn) await ensure(functionManager, kit.env, d.function, d.owner);
  kit.reset();
  return d;
}

/**
 * Rule, then permission, then target, as provision.ts does (the permission is not read for a
 * function created in this pass, nor the targets of a rule created in it); whether any wrote.
 */
async function ensureRule(d: DesiredState, { functionCreated = false } = {}): Promise<{ changed: boolean }> {
  const rule = await ensure(ruleManager, kit.env, d.rule, d.owner);
  expect(rule.latest.rule.Arn).toBe(d.rule.arn);
  const permission = await ensure(permissionManager, kit.env, d.permission, d.owner, {
    absent: functionCreated,
  });
  const target = { ...d.rule.target, ruleArn: d.rule.arn };
  const routed = await ensure(ruleTargetManager, kit.env, target, d.owner, { absent: rule.created });
  return { changed: rule.changed || permission.changed || routed.changed };
}
const removeRule = (d: DesiredState) => remove(ruleManager, kit.env, d.rule.arn, d.owner);

async function statement(functionName: string) {
  const { Policy } = await lambda().send(new GetPolicyCommand({ FunctionName: functionName }));
  return (JSON.parse(Policy ?? '{}') as { Statement: Record<string, unknown>[] }).Statement;
}

describe('EventBridge rule, Lambda permission and rule target: ensure against moto', () => {
  it('creates rule, permission and target, in that order', async () => {
    const d = await fresh('create');
    expect(await ensureRule(d)).toEqual({ changed: true });
    expect(kit.mutations()).toEqual(['PutRule', 'AddPermission', 'PutTargets']);
    // A rule just created has no tags to compare and no targets to list.
    expect(kit.commands()).toEqual(['DescribeRule', 'PutRule', 'GetPolicy', 'AddPermission', 'PutTargets']);
    const rule = await events().send(new DescribeRuleCommand({ Name: d.rule.name }));
    expect(JSON.parse(rule.EventPattern ?? '')).toEqual({
      source: ['aws.secretsmanager'],
      'detail-type': ['Secret Label Updated'],
      resources: [d.secretArn],
      detail: { labelUpdated: ['AWSCURRENT'] },
    });
    expect(rule.State).toBe('ENABLED');
    const { Targets } = await events().send(new ListTargetsByRuleCommand({ Rule: d.rule.name }));
    expect(Targets).toEqual([
      {
        Id: 'secretsync',
        Arn: d.function.arn,
        RetryPolicy: { MaximumRetryAttempts: 20, MaximumEventAgeInSeconds: 3600 },
      },
    ]);
    expect(await statement(d.function.name)).toEqual([
      expect.objectContaining({
        Sid: 'secretsync-events',
        Principal: { Service: 'events.amazonaws.com' },
        Condition: {
          ArnLike: { 'AWS:SourceArn': d.rule.arn },
          StringEquals: { 'AWS:SourceAccount': ACCOUNT },
        },
      }),
    ]);
  });

  it('for a function created in the same pass, adds the permission without reading the policy', async () => {
    const d = await fresh('new-function', { fn: false });
    const fn = await ensure(functionManager, kit.env, d.function, d.owner);
    expect(fn.created).toBe(true);
    kit.reset();
    expect(await ensureRule(d, { functionCreated: fn.created })).toEqual({ changed: true });
    expect(kit.commands()).toEqual(['DescribeRule', 'PutRule', 'AddPermission', 'PutTargets']);
    expect((await statement(d.function.name)).map((s) => s.Sid)).toEqual(['secretsync-events']);
    kit.reset();
    expect(await ensureRule(d)).toEqual({ changed: false });
    expect(kit.mutations()).toEqual([]);
  });

  it('makes no writes on a second pass', async () => {
    const d = await fresh('steady');
    await ensureRule(d);
    kit.reset();
    expect(await ensureRule(d)).toEqual({ changed: false });
    expect(kit.commands()).toEqual(['DescribeRule', 'ListTagsForResource', 'GetPolicy', 'ListTargetsByRule']);
  });

  it('repairs an edited pattern with one PutRule carrying the whole rule', async () => {
    const d = await fresh('pattern');
    await ensureRule(d);
    const wide = JSON.stringify({ source: ['aws.secretsmanager'] });
    await events().send(new PutRuleCommand({ Name: d.rule.name, EventPattern: wide, State: 'ENABLED' }));
    kit.reset();
    await ensureRule(d);
    expect(kit.mutations()).toEqual(['PutRule']);
    expect(kit.calls.find((c) => c.command === 'PutRule')?.input).toEqual({
      Name: d.rule.name,
      EventPattern: d.rule.eventPattern,
      State: 'ENABLED',
      Description: d.rule.description,
    });
  });

  it('disables the rule when the SecretSync is suspended, and enables it again', async () => {
    const d = await fresh('suspend');
    await ensureRule(d);
    const suspended = sampleDesired({ sync: sampleSync({ name: 'suspend', suspend: true }) });
    kit.reset();
    await ensureRule(suspended);
    expect(kit.mutations()).toEqual(['PutRule']);
    expect((await events().send(new DescribeRuleCommand({ Name: d.rule.name }))).State).toBe('DISABLED');
    kit.reset();
    await ensureRule(d);
    expect(kit.mutations()).toEqual(['PutRule']);
    expect((await events().send(new DescribeRuleCommand({ Name: d.rule.name }))).State).toBe('ENABLED');
  });

  it('repairs the target, and removes a target someone added', async () => {
    const d = await fresh('targets');
    await ensureRule(d);
    await events().send(
      new PutTargetsCommand({
        Rule: d.rule.name,
        Targets: [
          { Id: 'secretsync', Arn: d.function.arn, RetryPolicy: { MaximumRetryAttempts: 185 } },
          { Id: 'spy', Arn: `arn:aws:sqs:us-east-1:${ACCOUNT}:spy` },
        ],
      }),
    );
    kit.reset();
    await ensureRule(d);
    expect(kit.mutations()).toEqual(['RemoveTargets', 'PutTargets']);
    expect(kit.calls.find((c) => c.command === 'RemoveTargets')?.input.Ids).toEqual(['spy']);
    kit.reset();
    await ensureRule(d);
    expect(kit.mutations()).toEqual([]);
  });

  it('re-adds a permission whose SourceArn was changed; others’ statements stay', async () => {
    const d = await fresh('permission');
    await ensureRule(d);
    const FunctionName = d.function.name;
    await lambda().send(new RemovePermissionCommand({ FunctionName, StatementId: 'secretsync-events' }));
    for (const [StatementId, SourceArn] of [
      ['secretsync-events', `arn:aws:events:us-east-1:${ACCOUNT}:rule/*`],
      ['someone-else', `arn:aws:events:us-east-1:${ACCOUNT}:rule/other`],
    ] as const) {
      await lambda().send(
        new AddPermissionCommand({
          FunctionName,
          StatementId,
          Action: 'lambda:InvokeFunction',
          Principal: 'events.amazonaws.com',
          SourceArn,
        }),
      );
    }
    kit.reset();
    await ensureRule(d);
    expect(kit.mutations()).toEqual(['RemovePermission', 'AddPermission']);
    const sids = (await statement(FunctionName)).map((s) => s.Sid).sort();
    expect(sids).toEqual(['secretsync-events', 'someone-else']);
    kit.reset();
    await ensureRule(d);
    expect(kit.mutations()).toEqual([]);
  });

  it('repairs a removed tag with one TagResource', async () => {
    const d = await fresh('tags');
    await ensureRule(d);
    await events().send(new UntagResourceCommand({ ResourceARN: d.rule.arn, TagKeys: [TAG.managedBy] }));
    kit.reset();
    await ensureRule(d);
    expect(kit.mutations()).toEqual(['TagResource']);
  });

  it('refuses a same-named rule without our tags before any permission is added, and leaves it untouched', async () => {
    const d = await fresh('squatted');
    const pattern = JSON.stringify({ source: ['my.app'] });
    await events().send(new PutRuleCommand({ Name: d.rule.name, EventPattern: pattern }));
    const theirs = { Id: 'theirs', Arn: `arn:aws:sqs:us-east-1:${ACCOUNT}:theirs` };
    await events().send(new PutTargetsCommand({ Rule: d.rule.name, Targets: [theirs] }));
    kit.reset();
    await expect(ensureRule(d)).rejects.toThrow(NotOursError);
    // Refused on the rule's read: the permission and the targets were not even looked at.
    expect(kit.commands()).toEqual(['DescribeRule', 'ListTagsForResource']);
    expect(await removeRule(d)).toBe('not-ours');
    expect(kit.mutations()).toEqual([]);
    expect(kit.commands()).not.toContain('AddPermission');
    // The function has no resource policy at all: EventBridge may not invoke it for that rule.
    await expect(
      lambda().send(new GetPolicyCommand({ FunctionName: d.function.name })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect((await events().send(new DescribeRuleCommand({ Name: d.rule.name }))).EventPattern).toBe(pattern);
    const { Targets } = await events().send(new ListTargetsByRuleCommand({ Rule: d.rule.name }));
    expect(Targets).toEqual([theirs]);
  });
});

describe('EventBridge rule: remove against moto', () => {
  it('removes targets, then the rule; a second delete is a quiet no-op', async () => {
    const d = await fresh('doomed');
    await ensureRule(d);
    kit.reset();
    expect(await removeRule(d)).toBe('gone');
    expect(kit.mutations()).toEqual(['RemoveTargets', 'DeleteRule']);
    kit.reset();
    expect(await removeRule(d)).toBe('gone');
    expect(kit.commands()).toEqual(['DescribeRule']);
  });
});
