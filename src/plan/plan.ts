// `secretsync plan`: everything the controller would create for one SecretSync, computed by the
// functions the controller creates it with (drift.ts planOf: desired.ts desiredState and
// provision.ts kubePlan), so the plan cannot drift from what a pass does. Pure: what would need AWS
// or the API server (the secret's full ARN and KMS key, the cluster's endpoint and CA, the
// SecretSync's uid, the role's unique id) is given, or shown as a marked placeholder.

import { withRoleId } from '../controller/aws/access-entry.ts';
import {
  type ClusterAccess,
  type ControllerSettings,
  clusterArnOf,
  type FunctionCode,
  type ResolvedSecretRef,
  regionOf,
} from '../controller/aws/desired.ts';
import { planOf } from '../controller/drift.ts';
import { roleBody } from '../controller/kube/role.ts';
import { roleBindingBody } from '../controller/kube/role-binding.ts';
import type { InspectedState } from '../controller/manager.ts';
import type { Plan } from '../controller/provision.ts';
import { ENV, SECRET_ARN } from '../lambda/config.ts';
import type { SecretSync } from '../shared/secretsync.generated.ts';

/** A value the controller learns only when it provisions. */
export const placeholder = (what: string) => `<resolved at provisioning: ${what}>`;

export const ITEM_KINDS = [
  'IAMRole',
  'LogGroup',
  'Function',
  'EventInvokeConfig',
  'LambdaPermission',
  'EventRule',
  'EventRuleTarget',
  'AccessEntry',
  'Role',
  'RoleBinding',
  'Secret',
] as const;
export type ItemKind = (typeof ITEM_KINDS)[number];

export interface PlanItem {
  kind: ItemKind;
  /** AWS name, the access entry's principal ARN, or namespace/name in the cluster. */
  name: string;
  arn?: string;
  /** The controller's desired state of it (policies and patterns as JSON objects). */
  desired: Record<string, unknown>;
  note?: string;
  /** With --check. */
  state?: InspectedState;
  differences?: string[];
}

export interface PlanReport {
  secretSync: { namespace: string; name: string };
  cluster: { name: string; arn: string };
  account: string;
  /** Where the function, role's policy, rule and log group point: the secret's region. */
  region: string;
  secretArn: string;
  checked: boolean;
  /** Placeholders used and what --check found beside the items (tenancy, a missing secret). */
  notes: string[];
  items: PlanItem[];
}

export interface PlanInputs {
  sync: SecretSync;
  settings: ControllerSettings;
  code: FunctionCode;
  /** eks:DescribeCluster's answer; placeholders without it. */
  cluster?: ClusterAccess | undefined;
  /** DescribeSecret's answer; without it, the secretId when it is a full ARN, else a placeholder. */
  secret?: ResolvedSecretRef | undefined;
  /** The customer-managed KMS key (--kms-key) when `secret` is not given. */
  kmsKeyId?: string | undefined;
  /** The role's unique id, once it exists (the access entry's role-id tag). */
  roleId?: string | undefined;
  checked?: boolean;
  notes?: string[];
}

export interface BuiltPlan {
  report: PlanReport;
  /** The controller's plan the report shows (with the access entry bound to `roleId`). */
  plan: Plan;
}

export function buildPlan(inputs: PlanInputs): BuiltPlan {
  const { settings } = inputs;
  const notes = [...(inputs.notes ?? [])];
  const { secretId } = inputs.sync.spec.source;
  const region = regionOf(inputs.sync, settings.region);
  let secret = inputs.secret;
  if (!secret) {
    const arn = SECRET_ARN.test(secretId)
      ? secretId
      : `arn:${settings.partition}:secretsmanager:${region}:${settings.accountId}:secret:${secretId}-${placeholder('the 6 characters Secrets Manager appended to the name')}`;
    secret = { arn, kmsKeyId: inputs.kmsKeyId };
    if (arn !== secretId)
      notes.push('The secret ARN comes from secretsmanager:DescribeSecret at provisioning.');
    if (inputs.kmsKeyId === undefined)
      notes.push(
        'Shown as if the secret used the AWS-managed key: with a customer-managed KMS key (DescribeSecret at provisioning; --kms-key here), the role also gets DecryptSecret (kms:Decrypt via Secrets Manager only).',
      );
  }
  const cluster = inputs.cluster ?? {
    endpoint: placeholder('the API endpoint from eks:DescribeCluster'),
    certificateAuthorityData: '',
  };
  if (!inputs.cluster)
    notes.push("The cluster's endpoint and CA come from eks:DescribeCluster at provisioning.");
  const uid = inputs.sync.metadata.uid ?? placeholder("the SecretSync's metadata.uid");
  if (!inputs.sync.metadata.uid)
    notes.push("The SecretSync's uid (ownership tags, owner references) is the API server's to give.");
  const sync = { ...inputs.sync, metadata: { ...inputs.sync.metadata, uid } };

  const planned = planOf(sync, { settings, code: inputs.code, cluster, secret });
  // The CA is compacted from DescribeCluster's PEM (toEnv): a placeholder has nothing to compact.
  if (!inputs.cluster)
    planned.aws.function.environment[ENV.ca] = placeholder('the cluster CA from eks:DescribeCluster');
  const plan: Plan = {
    ...planned,
    aws: {
      ...planned.aws,
      accessEntry: withRoleId(
        planned.aws.accessEntry,
        inputs.roleId ?? placeholder("the role's unique id (RoleId), once it exists"),
      ),
    },
  };
  return {
    plan,
    report: {
      secretSync: { namespace: sync.metadata.namespace as string, name: sync.metadata.name as string },
      cluster: { name: settings.clusterName, arn: clusterArnOf(settings) },
      account: settings.accountId,
      region: plan.aws.region,
      secretArn: plan.aws.secretArn,
      checked: inputs.checked ?? false,
      notes,
      items: itemsOf(plan),
    },
  };
}

const json = (text: string): unknown => JSON.parse(text);

/** The report's items, in the order the controller provisions their kinds, parts after their whole. */
function itemsOf(plan: Plan): PlanItem[] {
  const { role, logGroup, function: fn, invokeConfig, permission, rule, accessEntry } = plan.aws;
  const { name: roleName, arn: roleArn, ...roleRest } = role;
  const { name: _lgName, arn: _lgArn, ...logGroupRest } = logGroup;
  const { name: fnName, arn: fnArn, code, ...fnRest } = fn;
  const { name: ruleName, arn: ruleArn, target, ...ruleRest } = rule;
  const kubeName = (m: { namespace: string; name: string }) => `${m.namespace}/${m.name}`;
  return [
    {
      kind: 'IAMRole',
      name: roleName,
      arn: roleArn,
      desired: {
        ...roleRest,
        assumeRolePolicyDocument: json(role.assumeRolePolicyDocument),
        inlinePolicyDocument: json(role.inlinePolicyDocument),
      },
    },
    { kind: 'LogGroup', name: logGroup.name, arn: logGroup.arn, desired: { ...logGroupRest } },
    {
      kind: 'Function',
      name: fnName,
      arn: fnArn,
      desired: { ...fnRest, codeSha256: code.sha256, codeSize: code.zip.length },
    },
    { kind: 'EventInvokeConfig', name: fnName, desired: { ...invokeConfig } },
    { kind: 'LambdaPermission', name: `${fnName}/${permission.statementId}`, desired: { ...permission } },
    {
      kind: 'EventRule',
      name: ruleName,
      arn: ruleArn,
      desired: { ...ruleRest, eventPattern: json(rule.eventPattern) },
    },
    { kind: 'EventRuleTarget', name: `${ruleName}/${target.id}`, desired: { ...target } },
    {
      kind: 'AccessEntry',
      name: accessEntry.principalArn,
      desired: { ...accessEntry, accessPolicies: [] },
    },
    { kind: 'Role', name: kubeName(plan.role), desired: { ...roleBody(plan.role) } },
    { kind: 'RoleBinding', name: kubeName(plan.binding), desired: { ...roleBindingBody(plan.binding) } },
    {
      kind: 'Secret',
      name: kubeName(plan.target),
      desired: { type: plan.target.type, labels: plan.target.labels },
      note: 'created empty when missing; its data is written by the function only. Neither the controller nor plan reads it (--check reads its metadata only).',
    },
  ];
}

/** Human text: one section per item, documents as indented JSON. */
export function formatPlan(r: PlanReport): string {
  const out: string[] = [
    `secretsync plan: SecretSync ${r.secretSync.namespace}/${r.secretSync.name}`,
    `  cluster ${r.cluster.arn}, account ${r.account}, region ${r.region}`,
    `  secret  ${r.secretArn}`,
    r.checked
      ? '  checked against AWS and the cluster (read-only)'
      : '  not checked: no AWS or cluster call was made (--check reads them)',
  ];
  if (r.notes.length > 0) out.push('', 'Notes:', ...r.notes.map((n) => `  - ${n}`));
  for (const item of r.items) {
    out.push('', `${item.kind} ${item.name}${item.state ? `  [${item.state}]` : ''}`);
    if (item.arn) out.push(`  arn: ${item.arn}`);
    for (const [k, v] of Object.entries(item.desired)) out.push(field(k, v));
    if (item.note) out.push(`  (${item.note})`);
    if (item.differences && item.differences.length > 0)
      out.push(`  differences: ${item.differences.join('; ')}`);
  }
  if (r.checked) {
    const count = (s: InspectedState) => r.items.filter((i) => i.state === s).length;
    out.push(
      '',
      `${count('exists')} exist as planned, ${count('differs')} differ, ${count('missing')} missing, ${count('not-ours')} not ours`,
    );
  }
  return `${out.join('\n')}\n`;
}

function field(key: string, value: unknown): string {
  if (value === undefined) return `  ${key}: (none)`;
  if (value === null || typeof value !== 'object') return `  ${key}: ${String(value)}`;
  if (Array.isArray(value) && value.length === 0) return `  ${key}: []`;
  return `  ${key}:\n${JSON.stringify(value, null, 2).replace(/^/gm, '    ')}`;
}
