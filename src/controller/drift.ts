// Which SecretSyncs need the controller, decided from the inventory (aws/inventory.ts) without
// reading any one resource: a settled SecretSync (Ready for its generation) gets a full pass only
// when what the lists show differs from what it needs — a resource missing or changed, the secret's
// stage moved without the function (a lost change event), consent or the secret gone, the plan
// changed (settings, code, cluster, the secret's key) — or when its deep check is due; the backstop
// resync only invokes its function. Everything else is the work queue's (new, changed, failing).

import { createHash } from 'node:crypto';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import type { FunctionCode } from './aws/desired.ts';
import { type ControllerSettings, desiredState, type ResolvedSecretRef, regionOf } from './aws/desired.ts';
import { ruleDiffers } from './aws/event-rule.ts';
import { type Inventory, listedSecret, type RegionInventory } from './aws/inventory.ts';
import { samePolicy } from './aws/policy.ts';
import type { ResolvedSource } from './aws/source.ts';
import type { ClusterState } from './deps.ts';
import { settled } from './informer.ts';
import { missedChange, nextResyncAt } from './invocation.ts';
import type { Known, RecordedKind, ResourceRecord } from './manager.ts';
import { kubePlan, type Plan, type PlanKnown, plannedRecords } from './provision.ts';

/** Why the inventory queues a SecretSync; merged when queued twice before its pass runs. */
export interface Intent {
  /** What differs (for the log line); a full pass. */
  differs: string[];
  /** The deep check is due: a full pass. */
  deep: boolean;
  /** Only the backstop resync is due: invoke the function, read nothing. */
  resync: boolean;
}

export const mergeIntents = (a: Intent | undefined, b: Intent): Intent =>
  a === undefined
    ? b
    : {
        differs: [...new Set([...a.differs, ...b.differs])],
        deep: a.deep || b.deep,
        resync: a.resync || b.resync,
      };

/** Needs a full pass (not only the backstop invoke). */
export const isFull = (i: Intent): boolean => i.deep || i.differs.length > 0;

/** The plan as a pass would make it from today's inputs (the target's uid and state aside). */
export function planOf(
  ss: SecretSync,
  inputs: {
    settings: ControllerSettings;
    code: FunctionCode;
    cluster: { endpoint: string; certificateAuthorityData: string };
    secret: ResolvedSecretRef;
  },
): Plan {
  const aws = desiredState({ sync: ss, ...inputs });
  const target = { name: ss.spec.target.name ?? ss.metadata.name, type: ss.spec.target.type };
  return { aws, ...kubePlan(ss, aws, { ...target, uid: undefined, known: false }) };
}

/**
 * What status.provisionedHash records: everything the plan writes, and the role's unique id (the
 * access entry is bound to it). Not the target's uid, nor the function's zip (its SHA-256 is in).
 */
export function planHash(plan: Plan, roleId: string | undefined): string {
  const { zip: _zip, ...code } = plan.aws.function.code;
  const content = {
    aws: { ...plan.aws, function: { ...plan.aws.function, code } },
    role: plan.role,
    binding: plan.binding,
    target: { namespace: plan.target.namespace, name: plan.target.name, type: plan.target.type },
    roleId,
  };
  return createHash('sha256').update(JSON.stringify(content)).digest('base64url').slice(0, 32);
}

/** A fixed fraction in [0, 1) per SecretSync: where in each deep period its check falls. */
function phaseOf(ss: SecretSync): number {
  const h = createHash('sha256')
    .update(`deep ${ss.metadata.uid ?? ss.metadata.name}`)
    .digest();
  return h.readUInt32BE(0) / 2 ** 32;
}

/**
 * When the deep check of a SecretSync is due: the first of its slots (its phase + k × period) at
 * least half a period after the last check. Slots spread a thousand SecretSyncs made together
 * evenly over the period; the half period keeps a SecretSync just provisioned from being read again.
 */
export function deepCheckAt(ss: SecretSync, periodMs: number): number {
  const checked = Date.parse(ss.status?.checkedTime ?? '');
  if (Number.isNaN(checked)) return 0;
  const phase = phaseOf(ss) * periodMs;
  const earliest = checked + periodMs / 2;
  return phase + Math.ceil((earliest - phase) / periodMs) * periodMs;
}

/**
 * Why a settled SecretSync needs the controller now, from the inventory alone; undefined when
 * nothing does. Consent is the caller's (it may read SecretSyncPolicies): `source` is returned for it.
 */
export function inventoryIntent(
  ss: SecretSync,
  inv: Inventory,
  ctx: {
    settings: ControllerSettings;
    code: FunctionCode;
    cluster: ClusterState;
    now: number;
    deepMs: number;
  },
): { intent: Intent | undefined; source: ResolvedSource | undefined } {
  if (!settled(ss)) return { intent: undefined, source: undefined };
  const differs: string[] = [];
  const region = regionOf(ss, ctx.settings.region);
  const lists = inv.regions.get(region);
  const source = listedSecret(lists, ss.spec.source.secretId, ss.status?.secretArn);
  const { endpoint, certificateAuthorityData } = ctx.cluster;
  if (ctx.cluster.error !== undefined || !endpoint || !certificateAuthorityData)
    differs.push('cluster unavailable');
  else if (lists?.secrets && !source) differs.push('secret not listed');
  else if (source?.deletedDate) differs.push('secret scheduled for deletion');
  else if (source) {
    const plan = planOf(ss, { ...ctx, cluster: { endpoint, certificateAuthorityData }, secret: source });
    differs.push(...listDifferences(plan, inv, lists));
    const role = inv.roles?.get(plan.aws.role.name);
    if (inv.roles && role && ss.status?.provisionedHash !== planHash(plan, role.RoleId))
      differs.push('plan changed (settings, code, cluster or secret key)');
    if (!ss.spec.suspend && missedChange(ss, source, ctx.now)) differs.push('change event missed');
  }
  const deep = ctx.now >= deepCheckAt(ss, ctx.deepMs);
  const due = nextResyncAt(ss, ss.status?.lastInvokeTime);
  const resync = !ss.spec.suspend && due !== undefined && due <= ctx.now;
  const intent =
    differs.length > 0 || deep || resync ? { differs: [...new Set(differs)], deep, resync } : undefined;
  return { intent, source };
}

/** What the lists show differing from the plan; a list that failed shows nothing. */
function listDifferences(plan: Plan, inv: Inventory, lists: RegionInventory | undefined): string[] {
  const out: string[] = [];
  const { aws } = plan;
  if (inv.roles) {
    const role = inv.roles.get(aws.role.name);
    if (!role) out.push('IAM role missing');
    else if (
      role.Arn !== aws.role.arn ||
      (role.Description ?? '') !== aws.role.description ||
      !samePolicy(role.AssumeRolePolicyDocument ?? '{}', aws.role.assumeRolePolicyDocument)
    )
      out.push('IAM role differs');
  }
  if (lists?.logGroups && !lists.logGroups.has(aws.logGroup.name)) out.push('log group missing');
  if (lists?.functions && !lists.functions.has(aws.function.name)) out.push('function missing');
  const rule = lists?.rules?.get(aws.rule.name);
  if (lists?.rules && !rule) out.push('rule missing');
  else if (rule && ruleDiffers(aws.rule, rule)) out.push('rule differs');
  if (inv.accessEntries && !inv.accessEntries.has(aws.accessEntry.principalArn))
    out.push('access entry missing');
  return out;
}

/**
 * What the inventory tells a pass about its plan's things: what no list showed, and status has no
 * record of (a record is written before each create, so a thing made since the list has one), is
 * created without a read first; with `useListed` (a pass the inventory asked for), a rule or log
 * group as listed skips a read. The rule is never created unread: PutRule would overwrite one made since.
 */
export function knownFrom(
  inv: Inventory | undefined,
  plan: Plan,
  useListed: boolean,
  recorded: (r: ResourceRecord) => boolean,
): PlanKnown {
  if (!inv) return {};
  const { aws } = plan;
  const lists = inv.regions.get(aws.region);
  const records = new Map(plannedRecords(plan).map((r) => [r.kind, r]));
  const unlisted = (
    list: { has(k: string): boolean } | undefined,
    key: string,
    kind: RecordedKind,
  ): Known => {
    const record = records.get(kind);
    return list && !list.has(key) && record && !recorded(record) ? { unlisted: true } : {};
  };
  const listed = (v: unknown): Known => (useListed && v !== undefined ? { listed: v } : {});
  return {
    rule: listed(lists?.rules?.get(aws.rule.name)),
    role: unlisted(inv.roles, aws.role.name, 'IAMRole'),
    logGroup: {
      ...unlisted(lists?.logGroups, aws.logGroup.name, 'LogGroup'),
      ...listed(lists?.logGroups?.get(aws.logGroup.name)),
    },
    function: unlisted(lists?.functions, aws.function.name, 'Function'),
    accessEntry: unlisted(inv.accessEntries, aws.accessEntry.principalArn, 'AccessEntry'),
  };
}
