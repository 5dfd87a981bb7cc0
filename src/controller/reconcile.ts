import { createHash } from 'node:crypto';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { RETRYABLE_BY_DEFAULT } from '../lambda/errors.ts';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import { deleteAccessEntry, ensureAccessEntry } from './aws/access-entry.ts';
import type { AwsClients } from './aws/clients.ts';
import { type ControllerSettings, desiredState, type FunctionCode, regionOf } from './aws/desired.ts';
import {
  AwsError,
  AwsServerError,
  aws,
  NotOursError,
  RetryLaterError,
  SecretNotFoundError,
  ThrottledError,
} from './aws/errors.ts';
import { deleteRule, ensureRule } from './aws/event-rule.ts';
import { deleteRole, ensureRole } from './aws/iam-role.ts';
import { deleteFunction, ensureFunction, ensureInvokeConfig, waitUntilReady } from './aws/lambda-function.ts';
import { deleteLogGroup, ensureLogGroup } from './aws/log-group.ts';
import { resolveSource } from './aws/source.ts';
import { parseDuration } from './config.ts';
import { isNotFound } from './kube/apply.ts';
import { deleteRbac, ensureRbac } from './kube/rbac.ts';
import {
  applyStatus,
  type ControllerStatus,
  FINALIZER,
  getSecretSync,
  recordEvent,
  setFinalizer,
} from './kube/secretsyncs.ts';
import { deleteTargetSecret, ensureTargetSecret } from './kube/target-secret.ts';
import type { Metrics } from './metrics.ts';
import { MANAGED_BY, type Owner, resourceNames } from './naming.ts';
import {
  decideTenancy,
  needsNamespaceLabels,
  POLICY_API,
  policyGrants,
  type SecretSyncPolicy,
  type TenancyMode,
  tagGrants,
} from './tenancy.ts';
import { BackoffHint, type ProcessResult } from './workqueue.ts';

/**
 * One pass over one SecretSync, controller-runtime style: the key is the only input, the world is
 * re-read, every provisioned thing has an idempotent ensure (read → diff → write what differs),
 * and the pass ends with "done", "again after d", or an error (retried with backoff). Status is
 * written once per pass — also when it failed — and not at all when nothing changed.
 */
export const FORCE_SYNC_ANNOTATION = 'secretsync.io/force-sync';

/** Ready reasons, a fixed list (README: troubleshooting). */
export const READY_REASONS = [
  'Ready',
  'Suspended',
  'Provisioning',
  'SecretNotFound',
  'SecretScheduledForDeletion',
  'CrossAccountUnsupported',
  'PolicyDenied',
  'Conflict',
  'ClusterAuthModeUnsupported',
  'ClusterUnavailable',
  'AccessDenied',
  'AwsError',
  'KubernetesError',
] as const;
export type ReadyReason = (typeof READY_REASONS)[number];

export interface ClusterState {
  endpoint?: string;
  certificateAuthorityData?: string;
  authenticationMode?: string;
  /** Set when DescribeCluster failed. */
  error?: string;
}

export interface ReconcileDeps {
  kube: { custom: CustomObjectsApi; core: CoreV1Api; rbac: RbacAuthorizationV1Api };
  /** Clients for the region of a SecretSync's secret; EKS always in the cluster's region. */
  awsFor: (region: string) => AwsClients;
  settings: ControllerSettings;
  code: FunctionCode;
  cluster: () => ClusterState;
  tenancy: TenancyMode;
  log: Logger;
  metrics?: Metrics;
  identity: string;
  clusterRecheckMs: number;
  now?: () => number;
  /** How long a pass waits for a function it created or updated to become active (default 8 s). */
  functionWaitMs?: number;
}

class Stop extends Error {
  readonly reason: ReadyReason;
  readonly requeueAfterMs: number | undefined;
  constructor(reason: ReadyReason, message: string, requeueAfterMs?: number) {
    super(message);
    this.reason = reason;
    this.requeueAfterMs = requeueAfterMs;
  }
}

const SLOW_RETRY_MS = 5 * 60_000;
const ACCESS_ENTRY_MODES = new Set(['API', 'API_AND_CONFIG_MAP']);

/**
 * The SecretSyncPolicy that grants `namespace` the secret, if any: one cluster-wide list per call,
 * and the Namespace's labels only when some policy has a namespaceSelector. No CRD installed (404)
 * means no policies.
 */
async function grantingPolicy(
  deps: ReconcileDeps,
  namespace: string,
  secret: { name: string; arn: string },
): Promise<string | undefined> {
  let policies: SecretSyncPolicy[];
  try {
    const list = (await deps.kube.custom.listClusterCustomObject({ ...POLICY_API })) as {
      items?: SecretSyncPolicy[];
    };
    policies = list.items ?? [];
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  if (policies.length === 0) return undefined;
  let labels: Record<string, string> | undefined;
  if (needsNamespaceLabels(policies)) {
    const ns = await deps.kube.core.readNamespace({ name: namespace });
    labels = ns.metadata?.labels ?? {};
  }
  return policyGrants(policies, namespace, labels, secret);
}

export async function reconcile(deps: ReconcileDeps, key: string): Promise<ProcessResult> {
  const [namespace, name] = key.split('/') as [string, string];
  const ss = await getSecretSync(deps.kube.custom, namespace, name);
  if (!ss) return undefined;
  const log = deps.log.child({ namespace, name });
  const owner: Owner = {
    clusterName: deps.settings.clusterName,
    namespace,
    name,
    uid: ss.metadata.uid ?? '',
  };
  const names = resourceNames(owner, { prefix: deps.settings.namePrefix, iamPath: deps.settings.iamPath });
  const region = regionOf(ss, deps.settings.region);
  const clients = deps.awsFor(region);
  const partition = deps.settings.partition;
  const roleArn = `arn:${partition}:iam::${deps.settings.accountId}:role${names.rolePath}${names.roleName}`;

  if (ss.metadata.deletionTimestamp) {
    if (!ss.metadata.finalizers?.includes(FINALIZER)) return undefined;
    const gone = await teardown(deps, ss, clients, owner, names, roleArn, {
      target: ss.spec.deletionPolicy === 'Delete',
    });
    if (!gone) return { requeueAfterMs: 5_000 };
    await setFinalizer(deps.kube.custom, ss, false);
    log.info('cleaned up; finalizer removed');
    return undefined;
  }

  const targetName = ss.spec.target.name ?? name;
  // observedGeneration and targetName move only when a pass provisioned everything: they record
  // what the AWS side and the target reflect (the Ready condition carries the generation it saw).
  const base = {
    observedGeneration: ss.status?.observedGeneration,
    targetName: ss.status?.targetName,
    targetUid: ss.status?.targetUid,
    accessEntryUsername: names.eksUsername,
    lastInvokeTime: ss.status?.lastInvokeTime,
    lastForceSync: ss.status?.lastForceSync,
  } satisfies Partial<ControllerStatus>;

  const finish = async (st: ControllerStatus) => {
    const out = await applyStatus(deps.kube.custom, ss, st);
    if (out.transition) {
      const warn = out.transition.to !== 'True';
      await recordEvent(
        deps.kube.core,
        ss,
        warn ? 'Warning' : 'Normal',
        out.transition.reason,
        st.ready.message,
        deps.identity,
      ).catch((err: unknown) => log.warn({ err: String(err) }, 'could not record an Event'));
    }
  };

  try {
    // The cluster must authenticate IAM principals through access entries.
    const cluster = deps.cluster();
    if (cluster.error || !cluster.endpoint || !cluster.certificateAuthorityData) {
      throw new Stop(
        'ClusterUnavailable',
        `DescribeCluster ${deps.settings.clusterName} failed: ${cluster.error ?? 'no endpoint'}`,
        deps.clusterRecheckMs,
      );
    }
    if (!ACCESS_ENTRY_MODES.has(cluster.authenticationMode ?? 'CONFIG_MAP')) {
      throw new Stop(
        'ClusterAuthModeUnsupported',
        `cluster ${deps.settings.clusterName} uses authentication mode ${cluster.authenticationMode ?? 'CONFIG_MAP'}; ` +
          'secretsync needs EKS access entries: aws eks update-cluster-config --name <cluster> --access-config authenticationMode=API_AND_CONFIG_MAP',
        deps.clusterRecheckMs,
      );
    }

    // Resolve the source (metadata only: DescribeSecret, never GetSecretValue).
    const source = await resolveSource(clients.secretsManager, ss.spec.source.secretId).catch(
      (err: unknown) => {
        if (err instanceof SecretNotFoundError) {
          throw new Stop(
            'SecretNotFound',
            `AWS secret ${ss.spec.source.secretId} was not found in ${region}`,
            SLOW_RETRY_MS,
          );
        }
        throw err;
      },
    );
    const sourceAccount = source.arn.split(':')[4];
    if (sourceAccount !== deps.settings.accountId) {
      throw new Stop(
        'CrossAccountUnsupported',
        `AWS secret ${source.arn} is in account ${sourceAccount}; its change events go to that account's event bus, so only secrets of account ${deps.settings.accountId} can be synced`,
        SLOW_RETRY_MS,
      );
    }

    // Tenancy: the secret's tag, else a SecretSyncPolicy (read only when the tag does not allow).
    // Withdrawn consent or a withdrawn grant tears the sync path down (the target Secret stays).
    const grantedByPolicy =
      deps.tenancy === 'tag' && !tagGrants(namespace, source.tags)
        ? await grantingPolicy(deps, namespace, source)
        : undefined;
    const decision = decideTenancy(deps.tenancy, namespace, source, grantedByPolicy);
    if (!decision.allowed) {
      if (ss.metadata.finalizers?.includes(FINALIZER)) {
        const gone = await teardown(deps, ss, clients, owner, names, roleArn, { target: false });
        if (gone) await setFinalizer(deps.kube.custom, ss, false);
        else throw new Stop('PolicyDenied', `${decision.why}; removing what was provisioned`, 5_000);
      }
      throw new Stop('PolicyDenied', decision.why, SLOW_RETRY_MS);
    }
    if (source.deletedDate) {
      throw new Stop(
        'SecretScheduledForDeletion',
        `AWS secret ${source.arn} is scheduled for deletion (since ${source.deletedDate.toISOString()}); restore it to resume syncing`,
        SLOW_RETRY_MS,
      );
    }

    // Finalizer before the first AWS write.
    await setFinalizer(deps.kube.custom, ss, true);

    const desired = desiredState({
      sync: ss,
      settings: deps.settings,
      code: deps.code,
      cluster: { endpoint: cluster.endpoint, certificateAuthorityData: cluster.certificateAuthorityData },
      secret: { arn: source.arn, kmsKeyId: source.kmsKeyId },
    });
    const role = await ensureRole(clients, desired.role, owner);
    await ensureLogGroup(clients, desired.logGroup, owner);
    const fn = await ensureFunction(clients, desired.function, owner);
    await ensureInvokeConfig(clients, desired.function, fn);
    const rule = await ensureRule(clients, desired.rule, owner);
    await ensureAccessEntry(clients, desired.accessEntry, owner, role.roleId);

    const labels = {
      'app.kubernetes.io/managed-by': MANAGED_BY,
      'secretsync.io/secretsync': name,
    };
    await ensureRbac(deps.kube.rbac, {
      namespace,
      name: names.rbacName,
      secretSyncName: name,
      targetName,
      username: names.eksUsername,
      labels,
    });
    // Creating the target is needed before the first sync (also the first after a tenancy teardown,
    // which drops lastInvokeTime), and again if the function found it missing. status.targetName
    // alone cannot tell: passes that stopped early (PolicyDenied, SecretNotFound, …) record it too.
    const syncedReason = ss.status?.conditions?.find((c) => c.type === 'Synced')?.reason;
    const beforeFirstSync = !ss.spec.suspend && !ss.status?.lastInvokeTime;
    // spec.target.name changed: the new Secret is filled below; the old one goes if deletionPolicy says so.
    const oldTarget = ss.status?.targetName;
    const targetMoved = oldTarget !== undefined && oldTarget !== targetName;
    if (targetMoved && ss.spec.deletionPolicy === 'Delete') {
      const out = await deleteTargetSecret(deps.kube.core, namespace, oldTarget, ss.status?.targetUid);
      if (out === 'not-ours')
        log.info({ secret: oldTarget }, 'old target Secret was not created by us; kept');
    }
    if (targetMoved) base.targetUid = undefined;
    let recreated = false;
    if (beforeFirstSync || targetMoved || oldTarget === undefined || syncedReason === 'TargetMissing') {
      const made = await ensureTargetSecret(deps.kube.core, {
        namespace,
        name: targetName,
        type: ss.spec.target.type,
        labels,
      });
      recreated = made.outcome === 'created';
      // Recorded even if this pass fails later: it is what makes the Secret ours to delete.
      if (made.outcome === 'created') base.targetUid = made.uid;
    }

    const provisioned: ControllerStatus = {
      ...base,
      observedGeneration: ss.metadata.generation,
      targetName,
      secretArn: source.arn,
      roleArn: role.arn,
      functionArn: fn.arn,
      ruleArn: rule.arn,
      ready: {
        status: 'False',
        reason: 'Provisioning',
        message: 'waiting for the function to become active',
      },
    };
    // A function created or updated in this pass: wait a little for it here rather than repeat
    // the whole pass (14 reads) a few seconds later.
    if (!fn.ready && (await waitUntilReady(clients, names.functionName, deps.functionWaitMs ?? 8_000)))
      fn.ready = true;
    if (!fn.ready) {
      // Not complete: the function's update is still running and the sync it needs waits for the
      // next pass, so generation and target are not recorded as done yet (else that sync is lost).
      await finish({
        ...provisioned,
        observedGeneration: base.observedGeneration,
        targetName: base.targetName,
      });
      return { requeueAfterMs: 3_000 };
    }

    // Invocations: first sync, force-sync, backstop resync (asynchronous; the function reports).
    const now = (deps.now ?? Date.now)();
    let requeueAfterMs: number | undefined;
    if (!ss.spec.suspend) {
      const forceSync = ss.metadata.annotations?.[FORCE_SYNC_ANNOTATION];
      // A spec change since the last complete pass syncs now, not at the next change event — when it
      // changed what the function does (mapping, stage, policy, target all live in its environment)
      // or the rule (resumed: changes while it was disabled were missed), in this pass or in an
      // earlier pass of this generation that did not complete (the Ready condition records the
      // generation it saw). A controller-side change (resyncInterval) invokes nothing.
      const readySaw = ss.status?.conditions?.find((c) => c.type === 'Ready')?.observedGeneration;
      const specChanged =
        ss.status?.observedGeneration !== undefined &&
        ss.status.observedGeneration !== ss.metadata.generation &&
        (fn.changed || rule.changed || readySaw === ss.metadata.generation);
      const trigger = invocationTrigger(
        ss,
        now,
        forceSync,
        recreated
          ? 'target-recreated'
          : specChanged
            ? 'spec-changed'
            : missedChange(ss, source, now)
              ? 'missed-change'
              : undefined,
      );
      if (trigger) {
        await aws({ operation: 'Invoke', resource: fn.arn }, () =>
          clients.lambda.send(
            new InvokeCommand({
              FunctionName: names.functionName,
              InvocationType: 'Event',
              Payload: Buffer.from(JSON.stringify({ trigger })),
            }),
          ),
        );
        deps.metrics?.invocations.inc({ trigger });
        log.info({ trigger }, 'invoked the function');
        provisioned.lastInvokeTime = iso(now);
        if (forceSync !== undefined) provisioned.lastForceSync = forceSync;
      }
      const due = nextResyncAt(ss, provisioned.lastInvokeTime);
      if (due !== undefined) requeueAfterMs = Math.max(1_000, due - now);
    }

    await finish({
      ...provisioned,
      ready: ss.spec.suspend
        ? {
            status: 'True',
            reason: 'Suspended',
            message: 'provisioned; the rule is disabled and no resync runs while suspended',
          }
        : {
            status: 'True',
            reason: 'Ready',
            message: `function ${names.functionName} syncs ${source.arn} into Secret ${targetName} on every change`,
          },
    });
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  } catch (err) {
    const { ready, result, rethrow } = classify(err);
    log[rethrow ? 'warn' : 'info']({ reason: ready.reason, detail: ready.message }, 'not ready');
    // After a tenancy teardown nothing is provisioned: drop the ARNs and the invoke record, so a
    // renewed consent starts with a first sync again.
    const kept = ready.reason === 'PolicyDenied' ? { lastInvokeTime: undefined } : keepArns(ss);
    await finish({ ...base, ...kept, ready }).catch((e: unknown) =>
      log.warn({ err: String(e) }, 'could not write status'),
    );
    if (rethrow) throw rethrow;
    return result;
  }
}

function classify(err: unknown): {
  ready: ControllerStatus['ready'];
  result?: ProcessResult;
  rethrow?: Error;
} {
  if (err instanceof Stop) {
    return {
      ready: { status: 'False', reason: err.reason, message: err.message },
      result: err.requeueAfterMs === undefined ? undefined : { requeueAfterMs: err.requeueAfterMs },
    };
  }
  if (err instanceof RetryLaterError) {
    return {
      ready: { status: 'False', reason: 'Provisioning', message: err.message },
      result: { requeueAfterMs: err.afterMs },
    };
  }
  if (err instanceof NotOursError) {
    return {
      ready: {
        status: 'False',
        reason: 'Conflict',
        message: `${err.message}; rename or delete it, or tag it as ours`,
      },
      result: { requeueAfterMs: SLOW_RETRY_MS },
    };
  }
  if (err instanceof ThrottledError) {
    return {
      ready: { status: 'Unknown', reason: 'AwsError', message: err.message },
      rethrow: new BackoffHint(err.message, err.retryAfterMs ?? 0),
    };
  }
  if (err instanceof AwsError) {
    const reason: ReadyReason = err.reason === 'AccessDenied' ? 'AccessDenied' : 'AwsError';
    const status = err instanceof AwsServerError ? 'Unknown' : 'False';
    return { ready: { status, reason, message: err.message }, rethrow: err };
  }
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e.code === 'number') {
    const msg = typeof e.body === 'string' ? e.body.slice(0, 300) : (e.message ?? String(err));
    return {
      ready: {
        status: 'False',
        reason: 'KubernetesError',
        message: `Kubernetes API: HTTP ${e.code}: ${msg}`,
      },
      rethrow: err as Error,
    };
  }
  return {
    ready: { status: 'Unknown', reason: 'AwsError', message: (err as Error).message ?? String(err) },
    rethrow: err instanceof Error ? err : new Error(String(err)),
  };
}

function keepArns(ss: SecretSync): Partial<ControllerStatus> {
  const s = ss.status ?? {};
  return {
    ...(s.secretArn ? { secretArn: s.secretArn } : {}),
    ...(s.roleArn ? { roleArn: s.roleArn } : {}),
    ...(s.functionArn ? { functionArn: s.functionArn } : {}),
    ...(s.ruleArn ? { ruleArn: s.ruleArn } : {}),
  };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** How long a change event has to reach the function before a pass calls it missed. */
export const EVENT_GRACE_MS = 60_000;
/** How long Lambda's own retries of a transient failure take (about 1 + 2 minutes) before a pass tries again. */
export const RETRY_GRACE_MS = 5 * 60_000;
// Transient failures (the function's retryable reasons) plus Forbidden: the controller restores the
// function's RBAC in the same pass, so running it again may succeed.
const TRANSIENT = new Set<string>([...RETRYABLE_BY_DEFAULT, 'Forbidden']);

/**
 * Whether the AWS secret moved on without the function: the stage points at a version the target
 * does not hold, and either the function has not run since the secret last changed (the event was
 * lost — EventBridge gave up, or the API server was down through all of Lambda's retries) or its
 * last run failed transiently and Lambda's retries are over. Costs nothing: DescribeSecret is read
 * every pass anyway. A permanent failure (InvalidKey, TooLarge…) waits for the next change.
 */
export function missedChange(
  ss: SecretSync,
  source: { stageVersions: Record<string, string>; lastChangedDate: Date | undefined },
  now: number,
): boolean {
  const current = source.stageVersions[ss.spec.source.versionStage ?? 'AWSCURRENT'];
  if (!current || current === ss.status?.syncedVersionId) return false;
  const since = (t: string | undefined) => now - (t ? Date.parse(t) : 0);
  if (since(ss.status?.lastInvokeTime) < EVENT_GRACE_MS) return false;
  const lastRun = ss.status?.lastSyncTime ? Date.parse(ss.status.lastSyncTime) : 0;
  const changed = source.lastChangedDate?.getTime() ?? 0;
  if (lastRun < changed) return now - changed >= EVENT_GRACE_MS;
  const synced = ss.status?.conditions?.find((c) => c.type === 'Synced');
  return synced?.status === 'False' && TRANSIENT.has(synced.reason) && now - lastRun >= RETRY_GRACE_MS;
}

/** Why to invoke the function now, if at all. */
export function invocationTrigger(
  ss: SecretSync,
  now: number,
  forceSync: string | undefined,
  changed: 'target-recreated' | 'spec-changed' | 'missed-change' | undefined,
): string | undefined {
  if (!ss.status?.lastInvokeTime) return 'first-sync';
  if (forceSync !== undefined && forceSync !== ss.status.lastForceSync) return 'force-sync';
  if (changed) return changed;
  const due = nextResyncAt(ss, ss.status.lastInvokeTime);
  if (due !== undefined && due <= now) return 'resync';
  return undefined;
}

/**
 * When the backstop resync is due: lastInvoke + interval, jittered by up to −10% with a value
 * fixed per SecretSync (so the desired state does not change from pass to pass, and a thousand
 * SecretSyncs created together do not all resync in the same second).
 */
export function nextResyncAt(ss: SecretSync, lastInvokeTime: string | undefined): number | undefined {
  const interval = parseDuration(ss.spec.resyncInterval) ?? 0;
  if (interval <= 0 || !lastInvokeTime) return undefined;
  const h = createHash('sha256')
    .update(ss.metadata.uid ?? ss.metadata.name)
    .digest();
  const jitter = (h.readUInt16BE(0) / 0xffff) * 0.1;
  return Date.parse(lastInvokeTime) + Math.round(interval * (1 - jitter));
}

/** Removes the AWS side (reverse order) and the RBAC; the target Secret only when asked. True when all is gone. */
async function teardown(
  deps: ReconcileDeps,
  ss: SecretSync,
  clients: AwsClients,
  owner: Owner,
  names: ReturnType<typeof resourceNames>,
  roleArn: string,
  opts: { target: boolean },
): Promise<boolean> {
  const log = deps.log.child({ namespace: owner.namespace, name: owner.name });
  const steps: [string, () => Promise<{ gone: boolean }>][] = [
    [
      'access entry',
      () =>
        deleteAccessEntry(clients, { clusterName: deps.settings.clusterName, principalArn: roleArn }, owner),
    ],
    ['rule', () => deleteRule(clients, { ruleName: names.ruleName }, owner)],
    ['function', () => deleteFunction(clients, { functionName: names.functionName }, owner)],
    ['log group', () => deleteLogGroup(clients, { logGroupName: names.logGroupName }, owner)],
    ['role', () => deleteRole(clients, { roleName: names.roleName }, owner)],
  ];
  let allGone = true;
  for (const [what, step] of steps) {
    try {
      const { gone } = await step();
      if (!gone) allGone = false;
    } catch (err) {
      // A same-named resource without our tags was never ours: leave it, and do not wait for it.
      if (err instanceof NotOursError) {
        log.warn({ resource: what }, 'not ours; left in place');
        continue;
      }
      if (err instanceof RetryLaterError) {
        allGone = false;
        continue;
      }
      throw err;
    }
  }
  await deleteRbac(deps.kube.rbac, owner.namespace, names.rbacName);
  if (opts.target) {
    const target = ss.spec.target.name ?? owner.name;
    const out = await deleteTargetSecret(deps.kube.core, owner.namespace, target, ss.status?.targetUid);
    if (out === 'not-ours')
      log.info({ secret: target }, 'target Secret existed before this SecretSync; kept');
  }
  return allGone;
}
