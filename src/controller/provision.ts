// The ordered list of what a SecretSync gets, and the two walks over it: provisioning forward
// (recording each identity in status before creating it), removal backward (from those records,
// never from names recomputed with today's settings). A record that today's plan no longer has —
// --region, --iam-path or --name-prefix changed, the target was renamed — is removed once its
// successor is in place.

import type { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { accessEntryManager, withRoleId } from './aws/access-entry.ts';
import type { AwsEnv } from './aws/clients.ts';
import type { DesiredState, identitiesOf } from './aws/desired.ts';
import { QuotaExceededError } from './aws/errors.ts';
import { ruleManager } from './aws/event-rule.ts';
import { roleManager } from './aws/iam-role.ts';
import { invokeConfigManager } from './aws/invoke-config.ts';
import { functionManager, type LatestFunction } from './aws/lambda-function.ts';
import { permissionManager } from './aws/lambda-permission.ts';
import { logGroupManager } from './aws/log-group.ts';
import { ruleTargetManager } from './aws/rule-target.ts';
import { NotOursError, RetryLaterError } from './errors.ts';
import { childLabels, ownerReference, parseChildId } from './kube/children.ts';
import { type DesiredRole as DesiredKubeRole, roleManager as kubeRoleManager } from './kube/role.ts';
import { type DesiredRoleBinding, roleBindingManager } from './kube/role-binding.ts';
import { type DesiredTarget, targetSecretManager } from './kube/target-secret.ts';
import {
  type Ensured,
  ensure,
  type Known,
  type Manager,
  RECORDED_KINDS,
  type RecordedKind,
  type Removal,
  type ResourceRecord,
  remove,
} from './manager.ts';
import type { Owner } from './naming.ts';

export interface Envs {
  aws: AwsEnv;
  kube: { core: CoreV1Api; rbac: RbacAuthorizationV1Api };
}

/** Everything one SecretSync should have. */
export interface Plan {
  aws: DesiredState;
  role: DesiredKubeRole;
  binding: DesiredRoleBinding;
  target: DesiredTarget;
}

/** The records of one SecretSync, keyed by kind and identity, in provisioning order. */
export class Records {
  #list: ResourceRecord[];
  constructor(list: readonly ResourceRecord[] | undefined) {
    this.#list = [...(list ?? [])];
  }
  static key = (r: ResourceRecord) => `${r.kind} ${r.cluster ?? ''} ${r.id}`;
  get list(): ResourceRecord[] {
    const order = (r: ResourceRecord) => RECORDED_KINDS.indexOf(r.kind);
    return [...this.#list].sort((a, b) => order(a) - order(b));
  }
  has(r: ResourceRecord): boolean {
    return this.#list.some((x) => Records.key(x) === Records.key(r));
  }
  find(kind: RecordedKind, id: string): ResourceRecord | undefined {
    return this.#list.find((x) => x.kind === kind && x.id === id);
  }
  /** Adds, or replaces the record of the same identity. */
  put(r: ResourceRecord): void {
    this.drop(r);
    this.#list.push(r);
  }
  drop(r: ResourceRecord): void {
    this.#list = this.#list.filter((x) => Records.key(x) !== Records.key(r));
  }
}

const recordOf = <Env, I, D, L>(m: Manager<Env, I, D, L>, desired: D): ResourceRecord =>
  (m.recorded as NonNullable<typeof m.recorded>).toRecord(m.id(desired));

/** The records the plan's things will have (the target's uid is learnt when it is created). */
export function plannedRecords(plan: Plan): ResourceRecord[] {
  return [
    recordOf(roleManager, plan.aws.role),
    recordOf(logGroupManager, plan.aws.logGroup),
    recordOf(functionManager, plan.aws.function),
    recordOf(ruleManager, plan.aws.rule),
    recordOf(accessEntryManager, plan.aws.accessEntry),
    recordOf(kubeRoleManager, plan.role),
    recordOf(roleBindingManager, plan.binding),
    recordOf(targetSecretManager, { ...plan.target, uid: undefined }),
  ];
}

/** What the pass knows of each top-level thing without reading it (drift.ts knownFrom). */
export interface PlanKnown {
  rule?: Known;
  role?: Known;
  logGroup?: Known;
  function?: Known;
  accessEntry?: Known;
}

export interface Provisioned {
  roleArn: string;
  /** The role's unique id (the access entry is bound to it). */
  roleId: string;
  fn: Ensured<LatestFunction>;
  ruleArn: string;
  /** The target Secret was created by this pass. */
  targetCreated: boolean;
  /** The function was created (or re-created) by this pass. */
  functionCreated: boolean;
}

/**
 * Ensures everything, forward. The identities are written to status (`persist`) before the first
 * create, so a crash after it leaves nothing teardown does not know of. `accessChanged` is called as
 * soon as the function's role, its policies or its access entry were written: AWS applies those with
 * a delay, and denials soon after are waited out (outcome.ts, the function's propagation.ts).
 */
export async function provision(
  envs: Envs,
  plan: Plan,
  owner: Owner,
  records: Records,
  hooks: { persist: () => Promise<void>; accessChanged: () => void; iamWaitMs: number },
  known: PlanKnown = {},
): Promise<Provisioned> {
  // Not the target: its record says it exists (the reconcile then trusts it without a GET), so it is
  // recorded once created or found — a crash before that leaves a Secret teardown keeps, the safe side.
  const planned = plannedRecords(plan).filter((r) => r.kind !== 'Secret');
  if (planned.some((r) => !records.has(r))) {
    for (const r of planned) if (!records.has(r)) records.put(r);
    await hooks.persist();
  }
  // The two things with quotas first, the smaller first: rules per bus (300, shared with every other
  // rule there), then roles per account (1000). A SecretSync over the rule quota creates nothing; one
  // over the role quota — or meeting a same-named role that is not ours — has only the rule it just
  // created to undo: no half-provisioned leftovers while it waits for a person.
  const rule = await ensure(ruleManager, envs.aws, plan.aws.rule, owner, known.rule);
  const role = await ensure(roleManager, envs.aws, plan.aws.role, owner, known.role).catch(
    async (err: unknown) => {
      if ((err instanceof QuotaExceededError || err instanceof NotOursError) && rule.created)
        await remove(ruleManager, envs.aws, ruleManager.id(plan.aws.rule), owner);
      throw err;
    },
  );
  if (role.changed) hooks.accessChanged();
  // A role this pass wrote is refused by Lambda and EKS for a few seconds: waited for here, at one or
  // two calls a try, rather than by a requeue that repeats every read of the pass.
  const waitIam = role.changed ? hooks.iamWaitMs : 0;
  await ensure(logGroupManager, envs.aws, plan.aws.logGroup, owner, known.logGroup);
  const fn = await whileIamPropagates(waitIam, () =>
    ensure(functionManager, envs.aws, plan.aws.function, owner, known.function),
  );
  // A function created (or re-created) in this pass has neither: no need to ask.
  const absent = { absent: fn.created };
  await ensure(invokeConfigManager, envs.aws, plan.aws.invokeConfig, owner, absent);
  // The permission for the rule (ownership checked above), then the target: EventBridge is never
  // allowed in for a rule that is not ours, and never delivers to a function that would refuse it.
  await ensure(permissionManager, envs.aws, plan.aws.permission, owner, absent);
  const target = { ...plan.aws.rule.target, ruleArn: plan.aws.rule.arn };
  await ensure(ruleTargetManager, envs.aws, target, owner, { absent: rule.created });
  const roleId = role.latest.role.RoleId as string;
  const entry = await whileIamPropagates(waitIam, () =>
    ensure(accessEntryManager, envs.aws, withRoleId(plan.aws.accessEntry, roleId), owner, known.accessEntry),
  );
  if (entry.changed) hooks.accessChanged();
  await ensure(kubeRoleManager, envs.kube, plan.role, owner);
  await ensure(roleBindingManager, envs.kube, plan.binding, owner);
  const secret = await ensure(targetSecretManager, envs.kube, plan.target, owner);
  // Recorded at once: the uid is what makes the Secret ours to delete.
  if (secret.created) records.put(recordOf(targetSecretManager, { ...plan.target, uid: secret.latest.uid }));
  return {
    roleArn: role.latest.role.Arn ?? plan.aws.role.arn,
    roleId,
    fn,
    ruleArn: rule.latest.rule.Arn ?? plan.aws.rule.arn,
    targetCreated: secret.created,
    functionCreated: fn.created,
  };
}

/** Runs `step`, trying again while AWS answers IamPropagation, for up to `budgetMs` (1, 2, 3… s apart). */
async function whileIamPropagates<T>(budgetMs: number, step: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      const wait = 1_000 * attempt;
      const propagating = err instanceof RetryLaterError && err.reason === 'IamPropagation';
      if (!propagating || Date.now() + wait > deadline) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

type Remover = (r: ResourceRecord, owner: Owner) => Promise<Removal>;

/** One remover per recorded kind. */
export function removers(envs: Envs): Record<RecordedKind, Remover> {
  const of =
    <Env, I, D, L>(m: Manager<Env, I, D, L>, env: Env): Remover =>
    (r, owner) =>
      remove(m, env, (m.recorded as NonNullable<typeof m.recorded>).fromRecord(r), owner);
  return {
    IAMRole: of(roleManager, envs.aws),
    LogGroup: of(logGroupManager, envs.aws),
    Function: of(functionManager, envs.aws),
    EventRule: of(ruleManager, envs.aws),
    AccessEntry: of(accessEntryManager, envs.aws),
    Role: of(kubeRoleManager, envs.kube),
    RoleBinding: of(roleBindingManager, envs.kube),
    Secret: of(targetSecretManager, envs.kube),
  };
}

/**
 * Removes `which` in reverse provisioning order and drops the records of what is gone (or was never
 * ours). Secrets are deleted only when `deleteTarget` (deletionPolicy Delete) and no other SecretSync
 * writes them (`sharedWith`), otherwise just forgotten. True when nothing is left.
 */
export async function removeRecorded(
  envs: Envs,
  records: Records,
  which: readonly ResourceRecord[],
  owner: Owner,
  opts: { deleteTarget: boolean; log: Logger; sharedWith?: (secretName: string) => string[] },
): Promise<boolean> {
  const remover = removers(envs);
  let allGone = true;
  for (const kind of [...RECORDED_KINDS].reverse()) {
    for (const r of which.filter((x) => x.kind === kind)) {
      if (kind === 'Secret' && !opts.deleteTarget) {
        records.drop(r);
        continue;
      }
      const others = kind === 'Secret' ? (opts.sharedWith?.(parseChildId(r.id).name) ?? []) : [];
      if (others.length > 0) {
        opts.log.info(
          { kind, id: r.id, others },
          'another SecretSync still writes this target; left in place',
        );
        records.drop(r);
        continue;
      }
      let out: Removal;
      try {
        out = await remover[kind](r, owner);
      } catch (err) {
        if (!(err instanceof RetryLaterError)) throw err;
        out = 'pending';
      }
      if (out === 'pending') allGone = false;
      else records.drop(r);
      if (out === 'not-ours') opts.log.info({ kind, id: r.id }, 'not ours; left in place');
    }
  }
  return allGone;
}

/** The kube side of the plan: Role, RoleBinding and target, owned by the SecretSync. */
export function kubePlan(
  ss: { apiVersion: string; kind: string; metadata: { name: string; namespace: string; uid?: string } },
  aws: DesiredState,
  target: { name: string; type: string; uid: string | undefined; known: boolean },
): Omit<Plan, 'aws'> {
  const { namespace, name } = ss.metadata;
  const meta = {
    namespace,
    name: aws.names.rbacName,
    labels: childLabels(name),
    owner: ownerReference({ apiVersion: ss.apiVersion, kind: ss.kind, name, uid: ss.metadata.uid ?? '' }),
  };
  return {
    role: { ...meta, secretSyncName: name, targetName: target.name },
    binding: { ...meta, roleName: aws.names.rbacName, username: aws.names.eksUsername },
    target: { namespace, ...target, labels: childLabels(name) },
  };
}

/**
 * The records of what today's settings would name — for teardown when status lost its records
 * (restored from a backup without status); harmless otherwise, as only what is ours is deleted.
 */
export function todaysRecords(ids: ReturnType<typeof identitiesOf>, clusterArn: string, namespace: string) {
  const { names } = ids;
  return [
    { kind: 'IAMRole', id: ids.roleArn },
    { kind: 'LogGroup', id: ids.logGroupArn },
    { kind: 'Function', id: ids.functionArn },
    { kind: 'EventRule', id: ids.ruleArn },
    { kind: 'AccessEntry', id: ids.roleArn, cluster: clusterArn },
    { kind: 'Role', id: `${namespace}/${names.rbacName}` },
    { kind: 'RoleBinding', id: `${namespace}/${names.rbacName}` },
  ] satisfies ResourceRecord[];
}
