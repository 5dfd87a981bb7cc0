// The EventBridge rule for the one secret. PutRule replaces the whole rule (it would reset the
// description or state we left out), so it is sent complete, and only on drift. Its one target (the
// function, rule-target.ts) is ensured after the Lambda permission (lambda-permission.ts), which is
// ensured after the rule: the permission is granted only for a rule that is ours, and EventBridge
// never delivers to a function that would refuse it. Deleting the rule removes its targets first.

import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  type DescribeRuleCommandOutput,
  type EventBridgeClient,
  ListTagsForResourceCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  RemoveTargetsCommand,
  type Rule,
  TagResourceCommand,
  type Target,
  UntagResourceCommand,
} from '@aws-sdk/client-eventbridge';
import { isNotFound } from '../errors.ts';
import { type Manager, recordedByArn } from '../manager.ts';
import { ownedBy } from '../naming.ts';
import { nameOfArn, regionOfArn } from './arn.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredRule } from './desired.ts';
import { AwsError, aws } from './errors.ts';
import { sameJson } from './policy.ts';
import { fromTagList, type Tags, toTagList } from './tags.ts';

export interface LatestRule {
  rule: DescribeRuleCommandOutput;
  tags: Tags;
}

export const eventsOf = (env: AwsEnv, arn: string) => env.clients(regionOfArn(arn)).events;

export const ruleManager: Manager<AwsEnv, string, DesiredRule, LatestRule> = {
  title: 'EventBridge rule',
  recorded: recordedByArn('EventRule'),
  id: (d) => d.arn,
  describe: nameOfArn,
  async read(env, arn) {
    const Name = nameOfArn(arn);
    try {
      const rule = await aws({ operation: 'DescribeRule', resource: Name }, () =>
        eventsOf(env, arn).send(new DescribeRuleCommand({ Name })),
      );
      return await withTags(env, arn, rule);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  },
  // ListRules shows what DescribeRule does, tags aside.
  async fromListed(env, arn, listed) {
    try {
      return await withTags(env, arn, { ...(listed as Rule), $metadata: {} });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  },
  owned: (l, owner) => ownedBy(l.tags, owner),
  async create(env, d) {
    const events = eventsOf(env, d.arn);
    const out = await aws({ operation: 'PutRule', resource: d.name }, () =>
      events.send(new PutRuleCommand({ ...ruleInput(d), Tags: toTagList(d.tags) })),
    );
    return { rule: { ...ruleInput(d), Arn: out.RuleArn ?? d.arn, $metadata: {} }, tags: d.tags };
  },
  diff: (d, l) => (ruleDiffers(d, l.rule) ? ['rule'] : []),
  async update(env, d) {
    await aws({ operation: 'PutRule', resource: d.name }, () =>
      eventsOf(env, d.arn).send(new PutRuleCommand(ruleInput(d))),
    );
    return undefined;
  },
  tags: {
    desired: (d) => d.tags,
    of: (l) => l.tags,
    async write(env, l, diff) {
      const ResourceARN = l.rule.Arn as string;
      const events = eventsOf(env, ResourceARN);
      const ctx = (operation: string) => ({ operation, resource: l.rule.Name });
      if (Object.keys(diff.set).length > 0) {
        const Tags = toTagList(diff.set);
        await aws(ctx('TagResource'), () => events.send(new TagResourceCommand({ ResourceARN, Tags })));
      }
      if (diff.remove.length > 0) {
        await aws(ctx('UntagResource'), () =>
          events.send(new UntagResourceCommand({ ResourceARN, TagKeys: diff.remove })),
        );
      }
    },
  },
  async delete(env, _l, arn) {
    const events = eventsOf(env, arn);
    const Name = nameOfArn(arn);
    // EventBridge refuses to delete a rule that still has targets.
    const ids = (await listTargets(events, Name)).map((t) => t.Id as string);
    if (ids.length > 0) await removeTargets(events, Name, ids);
    await aws({ operation: 'DeleteRule', resource: Name }, () =>
      events.send(new DeleteRuleCommand({ Name })),
    );
  },
};

/** Pattern, state or description differ (DescribeRule and ListRules show all three). */
export const ruleDiffers = (d: DesiredRule, rule: Rule): boolean =>
  !sameJson(rule.EventPattern ?? '', d.eventPattern) ||
  rule.State !== d.state ||
  (rule.Description ?? '') !== d.description;

async function withTags(env: AwsEnv, arn: string, rule: DescribeRuleCommandOutput): Promise<LatestRule> {
  const tags = await aws({ operation: 'ListTagsForResource', resource: nameOfArn(arn) }, () =>
    eventsOf(env, arn).send(new ListTagsForResourceCommand({ ResourceARN: rule.Arn ?? arn })),
  );
  return { rule, tags: fromTagList(tags.Tags) };
}

function ruleInput(d: DesiredRule) {
  return { Name: d.name, EventPattern: d.eventPattern, State: d.state, Description: d.description };
}

export async function listTargets(events: EventBridgeClient, Rule: string): Promise<Target[]> {
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

export async function removeTargets(events: EventBridgeClient, Rule: string, Ids: string[]): Promise<void> {
  const out = await aws({ operation: 'RemoveTargets', resource: Rule }, () =>
    events.send(new RemoveTargetsCommand({ Rule, Ids })),
  );
  failedEntries('RemoveTargets', Rule, out.FailedEntries);
}

// PutTargets and RemoveTargets report per-entry failures in a successful (200) answer.
export function failedEntries(
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
