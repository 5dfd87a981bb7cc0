// The EventBridge rule manager (rule, target) and the Lambda permission manager it relies on, through
// the generic ensure / remove, against a real moto server. As in provision.ts, the permission is
// ensured before the rule, so EventBridge never delivers to a function that would refuse it.
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
import { ACCOUNT, type MotoKit, sampleDesired, sampleSync, startMotoKit } from './test-support.ts';

let kit: MotoKit;
beforeAll(async () => {
  kit = await startMotoKit();
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const events = () => kit.clients.events;
const lambda = () => kit.clients.lambda;

/** A desired state whose role and function exist (the permission lives on the function). */
async function fresh(name: string, suspend = false): Promise<DesiredState> {
  const d = sampleDesired({ sync: sampleSync({ name, suspend }) });
  await ensure(roleManager, kit.env, d.role, d.owner);
  await ensure(functionManager, kit.env, d.function, d.owner);
  kit.reset();
  return d;
}

/** Permission, then rule, as provision.ts does; whether either wrote anything. */
async function ensureRule(d: DesiredState): Promise<{ changed: boolean }> {
  const permission = await ensure(permissionManager, kit.env, d.permission, d.owner);
  const rule = await ensure(ruleManager, kit.env, d.rule, d.owner);
  expect(rule.latest.rule.Arn).toBe(d.rule.arn);
  return { changed: permission.changed || rule.changed };
}
const removeRule = (d: DesiredState) => remove(ruleManager, kit.env, d.rule.arn, d.owner);

async function statement(functionName: string) {
  const { Policy } = await lambda().send(new GetPolicyCommand({ FunctionName: functionName }));
  return (JSON.parse(Policy ?? '{}') as { Statement: Record<string, unknown>[] }).Statement;
}

describe('EventBridge rule and Lambda permission: ensure against moto', () => {
  it('creates permission, rule and target', async () => {
    const d = await fresh('create');
    expect(await ensureRule(d)).toEqual({ changed: true });
    expect(kit.mutations()).toEqual(['AddPermission', 'PutRule', 'PutTargets']);
    // A rule just created has no targets to list.
    expect(kit.commands()).toEqual(['GetPolicy', 'AddPermission', 'DescribeRule', 'PutRule', 'PutTargets']);
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

  it('makes no writes on a second pass', async () => {
    const d = await fresh('steady');
    await ensureRule(d);
    kit.reset();
    expect(await ensureRule(d)).toEqual({ changed: false });
    expect(kit.commands()).toEqual(['GetPolicy', 'DescribeRule', 'ListTagsForResource', 'ListTargetsByRule']);
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

  it('refuses a same-named rule without our tags, and leaves it untouched', async () => {
    const d = await fresh('squatted');
    const pattern = JSON.stringify({ source: ['my.app'] });
    await events().send(new PutRuleCommand({ Name: d.rule.name, EventPattern: pattern }));
    kit.reset();
    await expect(ensure(ruleManager, kit.env, d.rule, d.owner)).rejects.toThrow(NotOursError);
    expect(await removeRule(d)).toBe('not-ours');
    expect(kit.mutations()).toEqual([]);
    expect((await events().send(new DescribeRuleCommand({ Name: d.rule.name }))).EventPattern).toBe(pattern);
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
