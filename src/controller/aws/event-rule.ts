// The EventBridge rule for the one secret, its one target (the function) and the Lambda permission
// that lets EventBridge invoke the function for this rule only. PutRule replaces the whole rule
// (it would reset the description or state we left out), so it is sent complete, and only on drift.

import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  type DescribeRuleCommandOutput,
  type EventBridgeClient,
  ListTagsForResourceCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  TagResourceCommand,
  type Target,
  UntagResourceCommand,
} from '@aws-sdk/client-eventbridge';
import {
  AddPermissionCommand,
  GetPolicyCommand,
  type LambdaClient,
  RemovePermissionCommand,
} from '@aws-sdk/client-lambda';
import { type OwnerRef, ownedBy } from '../naming.ts';
import type { AwsClients } from './clients.ts';
import type { DesiredPermission, DesiredRule, DesiredTarget } from './desired.ts';
import { AwsError, aws, isNotFound, NotOursError } from './errors.ts';
import { canonicalJson, sameJson, samePolicy } from './policy.ts';
import { diffTags, fromTagList, toTagList } from './tags.ts';

export interface RuleResult {
  arn: string;
  changed: boolean;
}

const KIND = 'EventBridge rule';

/** Rule, then permission, then target: EventBridge never delivers to a function that would refuse it. */
export async function ensureRule(
  clients: Pick<AwsClients, 'events' | 'lambda'>,
  desired: DesiredRule,
  owner: OwnerRef,
): Promise<RuleResult> {
  const { events, lambda } = clients;
  const Name = desired.name;
  const ctx = (operation: string) => ({ operation, resource: Name });
  const rule = await describeRule(events, Name);
  let changed = false;
  let arn = desired.arn;
  if (rule === undefined) {
    const out = await aws(ctx('PutRule'), () =>
      events.send(new PutRuleCommand({ ...ruleInput(desired), Tags: toTagList(desired.tags) })),
    );
    arn = out.RuleArn ?? arn;
    changed = true;
  } else {
    arn = rule.Arn ?? arn;
    const tags = await listTags(events, arn, Name);
    if (!ownedBy(tags, owner)) throw new NotOursError(KIND, ctx('ListTagsForResource'));
    if (
      !sameJson(rule.EventPattern ?? '', desired.eventPattern) ||
      rule.State !== desired.state ||
      (rule.Description ?? '') !== desired.description
    ) {
      await aws(ctx('PutRule'), () => events.send(new PutRuleCommand(ruleInput(desired))));
      changed = true;
    }
    const diff = diffTags(desired.tags, tags);
    if (Object.keys(diff.set).length > 0) {
      const Tags = toTagList(diff.set);
      await aws(ctx('TagResource'), () => events.send(new TagResourceCommand({ ResourceARN: arn, Tags })));
      changed = true;
    }
    if (diff.remove.length > 0) {
      const TagKeys = diff.remove;
      await aws(ctx('UntagResource'), () =>
        events.send(new UntagResourceCommand({ ResourceARN: arn, TagKeys })),
      );
      changed = true;
    }
  }
  if (await ensurePermission(lambda, desired.permission, desired.target.arn)) changed = true;
  if (await ensureTarget(events, Name, desired.target)) changed = true;
  return { arn, changed };
}

/** Removes the targets, then the rule. The Lambda permission is deleted with the function. */
export async function deleteRule(
  clients: Pick<AwsClients, 'events'>,
  names: { ruleName: string },
  owner: OwnerRef,
): Promise<{ gone: boolean }> {
  const { events } = clients;
  const Name = names.ruleName;
  const rule = await describeRule(events, Name);
  if (rule === undefined) return { gone: true };
  const tags = await listTags(events, rule.Arn ?? '', Name);
  if (!ownedBy(tags, owner))
    throw new NotOursError(KIND, { operation: 'ListTagsForResource', resource: Name });
  // EventBridge refuses to delete a rule that still has targets.
  const ids = (await listTargets(events, Name)).map((t) => t.Id as string);
  if (ids.length > 0) await removeTargets(events, Name, ids);
  await aws({ operation: 'DeleteRule', resource: Name }, () => events.send(new DeleteRuleCommand({ Name })));
  return { gone: (await describeRule(events, Name)) === undefined };
}

function ruleInput(desired: DesiredRule) {
  return {
    Name: desired.name,
    EventPattern: desired.eventPattern,
    State: desired.state,
    Description: desired.description,
  };
}

async function describeRule(
  events: EventBridgeClient,
  Name: string,
): Promise<DescribeRuleCommandOutput | undefined> {
  try {
    return await aws({ operation: 'DescribeRule', resource: Name }, () =>
      events.send(new DescribeRuleCommand({ Name })),
    );
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function listTags(events: EventBridgeClient, ResourceARN: string, name: string) {
  const out = await aws({ operation: 'ListTagsForResource', resource: name }, () =>
    events.send(new ListTagsForResourceCommand({ ResourceARN })),
  );
  return fromTagList(out.Tags);
}

async function listTargets(events: EventBridgeClient, Rule: string): Promise<Target[]> {
  const targets: Target[] = [];
  let NextToken: string | undefined;
  do {
    const out = await aws({ operation: 'ListTargetsByRule', resource: Rule }, () =>
      events.send(new ListTargetsByRuleCommand({ Rule, ...(NextToken ? { NextToken } : {}) })),
    );
    targets.push(...(out.Targets ?? []));
    NextToken = out.NextToken;
  } while (NextToken);
  return targets;
}

function targetInput(desired: DesiredTarget): Target {
  return {
    Id: desired.id,
    Arn: desired.arn,
    RetryPolicy: {
      MaximumRetryAttempts: desired.maximumRetryAttempts,
      MaximumEventAgeInSeconds: desired.maximumEventAgeInSeconds,
    },
  };
}

/** Our target exactly as desired, and no other: the rule is ours, so other targets are drift. */
async function ensureTarget(
  events: EventBridgeClient,
  Rule: string,
  desired: DesiredTarget,
): Promise<boolean> {
  const targets = await listTargets(events, Rule);
  const wanted = targetInput(desired);
  const others = targets.filter((t) => t.Id !== desired.id).map((t) => t.Id as string);
  const ours = targets.find((t) => t.Id === desired.id);
  let changed = false;
  if (others.length > 0) {
    await removeTargets(events, Rule, others);
    changed = true;
  }
  // PutTargets replaces the whole target, so a field someone added (an input transformer, a DLQ)
  // counts as drift too: compare the complete target.
  if (ours === undefined || canonicalJson(ours) !== canonicalJson(wanted)) {
    const out = await aws({ operation: 'PutTargets', resource: Rule }, () =>
      events.send(new PutTargetsCommand({ Rule, Targets: [wanted] })),
    );
    failedEntries('PutTargets', Rule, out.FailedEntries);
    changed = true;
  }
  return changed;
}

async function removeTargets(events: EventBridgeClient, Rule: string, Ids: string[]): Promise<void> {
  const out = await aws({ operation: 'RemoveTargets', resource: Rule }, () =>
    events.send(new RemoveTargetsCommand({ Rule, Ids })),
  );
  failedEntries('RemoveTargets', Rule, out.FailedEntries);
}

// PutTargets and RemoveTargets report per-entry failures in a successful (200) answer.
function failedEntries(
  operation: string,
  rule: string,
  failed:
    | { TargetId?: string | undefined; ErrorCode?: string | undefined; ErrorMessage?: string | undefined }[]
    | undefined,
): void {
  const first = failed?.[0];
  if (first === undefined) return;
  throw new AwsError(
    'AwsRequestFailed',
    `${operation} ${rule}: target ${first.TargetId}: ${first.ErrorCode ?? ''} ${first.ErrorMessage ?? ''}`.trim(),
    { operation, resource: rule },
    first.ErrorCode === undefined ? {} : { code: first.ErrorCode },
  );
}

/** The function's resource-policy statement as Lambda stores it after AddPermission. */
function permissionStatement(desired: DesiredPermission, functionArn: string) {
  return {
    Sid: desired.statementId,
    Effect: 'Allow',
    Principal: { Service: desired.principal },
    Action: desired.action,
    Resource: functionArn,
    Condition: {
      StringEquals: { 'AWS:SourceAccount': desired.sourceAccount },
      ArnLike: { 'AWS:SourceArn': desired.sourceArn },
    },
  };
}

/**
 * Our statement in the function's resource policy, added when missing and replaced (remove, add)
 * when it differs. Statements others added are not ours to judge and stay.
 */
async function ensurePermission(
  lambda: LambdaClient,
  desired: DesiredPermission,
  functionArn: string,
): Promise<boolean> {
  const FunctionName = desired.functionName;
  const ctx = (operation: string) => ({ operation, resource: `${FunctionName}/${desired.statementId}` });
  const current = await currentStatement(lambda, FunctionName, desired.statementId);
  const wanted = permissionStatement(desired, functionArn);
  if (current !== undefined && samePolicy({ Statement: [current] }, { Statement: [wanted] })) return false;
  if (current !== undefined) {
    await aws(ctx('RemovePermission'), () =>
      lambda.send(new RemovePermissionCommand({ FunctionName, StatementId: desired.statementId })),
    ).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
  await aws(ctx('AddPermission'), () =>
    lambda.send(
      new AddPermissionCommand({
        FunctionName,
        StatementId: desired.statementId,
        Action: desired.action,
        Principal: desired.principal,
        SourceArn: desired.sourceArn,
        SourceAccount: desired.sourceAccount,
      }),
    ),
  );
  return true;
}

async function currentStatement(lambda: LambdaClient, FunctionName: string, sid: string): Promise<unknown> {
  let policy: string | undefined;
  try {
    const out = await aws({ operation: 'GetPolicy', resource: FunctionName }, () =>
      lambda.send(new GetPolicyCommand({ FunctionName })),
    );
    policy = out.Policy;
  } catch (err) {
    // A function without any resource policy answers ResourceNotFoundException.
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const doc = JSON.parse(policy ?? '{}') as { Statement?: unknown };
  const statements = Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];
  return statements.find((s: unknown) => (s as { Sid?: unknown }).Sid === sid);
}
