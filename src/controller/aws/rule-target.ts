// The rule's one target: the function, with EventBridge's delivery retry policy. Ensured after the
// Lambda permission. The rule is ours, so other targets are drift; PutTargets replaces the whole
// target, so a field someone added (an input transformer, a DLQ) is drift too: the complete target
// is compared. Part of the rule: removed with it, never recorded on its own.

import { PutTargetsCommand, type Target } from '@aws-sdk/client-eventbridge';
import type { Manager } from '../manager.ts';
import { nameOfArn } from './arn.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredTarget } from './desired.ts';
import { aws } from './errors.ts';
import { eventsOf, failedEntries, listTargets, removeTargets } from './event-rule.ts';
import { canonicalJson } from './policy.ts';

export interface RuleTargetDesired extends DesiredTarget {
  ruleArn: string;
}

export const ruleTargetManager: Manager<AwsEnv, string, RuleTargetDesired, Target[]> = {
  title: 'target of EventBridge rule',
  id: (d) => d.ruleArn,
  describe: nameOfArn,
  // A rule without targets has none to diff: ours is created (the same PutTargets an update sends).
  read: async (env, ruleArn) => {
    const targets = await listTargets(eventsOf(env, ruleArn), nameOfArn(ruleArn));
    return targets.length > 0 ? targets : undefined;
  },
  async create(env, d) {
    await put(env, d);
    return [targetInput(d)];
  },
  diff(d, targets) {
    const ours = targets.find((t) => t.Id === d.id);
    const same =
      targets.length === 1 && ours !== undefined && canonicalJson(ours) === canonicalJson(targetInput(d));
    return same ? [] : ['target'];
  },
  async update(env, d, targets) {
    const others = targets.filter((t) => t.Id !== d.id).map((t) => t.Id as string);
    if (others.length > 0) await removeTargets(eventsOf(env, d.ruleArn), nameOfArn(d.ruleArn), others);
    const ours = targets.find((t) => t.Id === d.id);
    if (ours === undefined || canonicalJson(ours) !== canonicalJson(targetInput(d))) await put(env, d);
    return [targetInput(d)];
  },
  async delete(env, targets, ruleArn) {
    const ids = targets.map((t) => t.Id as string);
    if (ids.length > 0) await removeTargets(eventsOf(env, ruleArn), nameOfArn(ruleArn), ids);
  },
};

function targetInput(d: DesiredTarget): Target {
  return {
    Id: d.id,
    Arn: d.arn,
    RetryPolicy: {
      MaximumRetryAttempts: d.maximumRetryAttempts,
      MaximumEventAgeInSeconds: d.maximumEventAgeInSeconds,
    },
  };
}

async function put(env: AwsEnv, d: RuleTargetDesired): Promise<void> {
  const Rule = nameOfArn(d.ruleArn);
  const out = await aws({ operation: 'PutTargets', resource: Rule }, () =>
    eventsOf(env, d.ruleArn).send(new PutTargetsCommand({ Rule, Targets: [targetInput(d)] })),
  );
  failedEntries('PutTargets', Rule, out.FailedEntries);
}
