// One pass over one SecretSync, controller-runtime style: the key is the only input and the world is
// re-read; the pass reads as a list — preconditions (cluster, source, tenancy), ensure every manager
// in order (provision.ts), decide the invocation (invocation.ts), write status. It ends with "done",
// "again after d", or an error (retried with backoff). Status is written once per pass — also when
// it failed — and not at all when nothing changed.

import type { Logger } from 'pino';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import type { AwsClients, AwsEnv } from './aws/clients.ts';
import { clusterArnOf, identitiesOf, regionOf } from './aws/desired.ts';
import { listedSecret } from './aws/inventory.ts';
import type { ReconcileDeps } from './deps.ts';
import { type Intent, isFull, knownFrom, planHash, planOf } from './drift.ts';
import { settled } from './informer.ts';
import { decideTrigger, FORCE_SYNC_ANNOTATION, functionUsable, invoke, stageVersion } from './invocation.ts';
import {
  applyStatus,
  type ControllerStatus,
  FINALIZER,
  getSecretSync,
  setFinalizer,
} from './kube/secretsyncs.ts';
import type { ResourceRecord } from './manager.ts';
import { type Owner, resourceNames } from './naming.ts';
import { classify, Stop } from './outcome.ts';
import {
  checkCluster,
  checkNotDeleted,
  checkSource,
  checkTargetFree,
  tenancyDenial,
} from './preconditions.ts';
import { type Envs, plannedRecords, provision, Records, removeRecorded, todaysRecords } from './provision.ts';
import type { ProcessResult } from './workqueue.ts';

export type { ReconcileDeps } from './deps.ts';
export { READY_REASONS, type ReadyReason } from './outcome.ts';
export { FORCE_SYNC_ANNOTATION };

/**
 * `intent` is set when the inventory asked for the pass (drift.ts): for a SecretSync still settled,
 * the secret's metadata and the listed rule and log group come from the inventory, and a backstop
 * resync alone only invokes. Without it (a change in the cluster, a retry) everything is read fresh.
 */
export async function reconcile(deps: ReconcileDeps, key: string, intent?: Intent): Promise<ProcessResult> {
  const [namespace, name] = key.split('/') as [string, string];
  const ss = await getSecretSync(deps.kube.custom, namespace, name);
  if (!ss) return undefined;
  const pass = startPass(deps, ss);
  if (ss.metadata.deletionTimestamp) return finalize(pass);
  const inventory = deps.inventory?.();
  const fromInventory = intent !== undefined && settled(ss);
  if (fromInventory && !isFull(intent)) return resyncOnly(pass);
  if (fromInventory) pass.log.info({ differs: intent.differs, deep: intent.deep }, 'inventory: full pass');

  try {
    checkTargetFree(deps, ss);
    const cluster = checkCluster(deps);
    const listed = fromInventory
      ? listedSecret(inventory?.regions.get(pass.region), ss.spec.source.secretId, ss.status?.secretArn)
      : undefined;
    let source = listed ?? (await checkSource(deps, ss, pass.clients, pass.region));
    let denied = await tenancyDenial(deps, namespace, source);
    // What a list showed may lag (ListSecrets): consent withdrawn or the secret deleted is read again.
    if (listed && (denied !== undefined || source.deletedDate)) {
      source = await checkSource(deps, ss, pass.clients, pass.region);
      denied = await tenancyDenial(deps, namespace, source);
    }
    if (denied !== undefined) return await withdraw(pass, denied);
    checkNotDeleted(source);
    await setFinalizer(deps.kube.custom, ss, true);

    const targetName = ss.spec.target.name ?? name;
    const recorded = pass.records.find('Secret', `${namespace}/${targetName}`);
    // The target is created before the first sync (also the first after a tenancy withdrawal, which
    // drops lastInvokeTime) and again when the function found it missing.
    const targetKnown =
      recorded !== undefined &&
      ss.status?.lastInvokeTime !== undefined &&
      ss.status.conditions?.find((c) => c.type === 'Synced')?.reason !== 'TargetMissing';
    const planned = planOf(ss, { settings: deps.settings, code: deps.code, cluster, secret: source });
    const plan = { ...planned, target: { ...planned.target, uid: recorded?.uid, known: targetKnown } };
    const { aws } = plan;
    const recordedBefore = new Records(pass.records.list);
    const known = knownFrom(inventory, plan, fromInventory, (r) => recordedBefore.has(r));
    const done = await provision(
      pass.envs,
      plan,
      pass.owner,
      pass.records,
      {
        persist: () => pass.persist(),
        accessChanged: () => {
          pass.status.accessChangedTime = isoSeconds((deps.now ?? Date.now)());
        },
        iamWaitMs: deps.iamWaitMs ?? 10_000,
      },
      known,
    );
    Object.assign(pass.status, {
      secretArn: source.arn,
      roleArn: done.roleArn,
      functionArn: aws.function.arn,
      ruleArn: done.ruleArn,
    });
    // What today's plan no longer names (settings changed, target renamed) goes now its successor is in place.
    const plannedNow = new Records(plannedRecords(plan));
    const stale = pass.records.list.filter((r) => !plannedNow.has(r));
    const staleGone = await removeRecorded(pass.envs, pass.records, stale, pass.owner, {
      deleteTarget: ss.spec.deletionPolicy === 'Delete',
      log: pass.log,
      sharedWith: sharedWith(pass),
    });
    await functionUsable(pass.envs.aws, done.fn, aws.function.arn, deps.functionWaitMs ?? 8_000);

    const now = (deps.now ?? Date.now)();
    const requeueAfterMs = staleGone ? undefined : 5_000;
    if (!ss.spec.suspend) {
      const trigger = decideTrigger(ss, source, done, now);
      if (trigger) await invokeAndRecord(pass, aws.function.arn, trigger, now);
      // The backstop resync is the inventory pass's to start (drift.ts), not a timer per SecretSync.
    }
    // Recorded only by a complete pass: what the AWS side and the target reflect, and that every
    // one of its things was read (the deep check; the inventory compares lists until the next).
    pass.status.observedGeneration = ss.metadata.generation;
    pass.status.targetName = targetName;
    pass.status.checkedTime = isoSeconds(now);
    pass.status.provisionedHash = planHash(plan, done.roleId);
    await pass.finish(
      ss.spec.suspend
        ? {
            status: 'True',
            reason: 'Suspended',
            message: 'provisioned; the rule is disabled and no resync runs while suspended',
          }
        : {
            status: 'True',
            reason: 'Ready',
            message: `function ${aws.names.functionName} syncs ${source.arn} into Secret ${targetName} on every change`,
          },
    );
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  } catch (err) {
    const { ready, result, rethrow } = classify(err, {
      accessChangedTime: pass.status.accessChangedTime,
      now: (deps.now ?? Date.now)(),
    });
    pass.log[rethrow ? 'warn' : 'info']({ reason: ready.reason, detail: ready.message }, 'not ready');
    await pass
      .finish(ready)
      .catch((e: unknown) => pass.log.warn({ err: String(e) }, 'could not write status'));
    if (rethrow) throw rethrow;
    return result;
  }
}

const isoSeconds = (t: number) => new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');

interface Pass {
  deps: ReconcileDeps;
  ss: SecretSync;
  owner: Owner;
  region: string;
  clients: AwsClients;
  envs: Envs;
  records: Records;
  log: Logger;
  /** The controller's status fields as this pass leaves them (the Ready condition aside). */
  status: Omit<ControllerStatus, 'ready' | 'resources'>;
  /** Writes status with `ready`, and an Event when Ready changed. */
  finish(ready: ControllerStatus['ready']): Promise<void>;
  /** Writes the records alone (before a create), the Ready condition as it is. */
  persist(): Promise<void>;
}

function startPass(deps: ReconcileDeps, ss: SecretSync): Pass {
  const { namespace, name } = ss.metadata;
  const owner: Owner = {
    clusterArn: clusterArnOf(deps.settings),
    namespace,
    name,
    uid: ss.metadata.uid ?? '',
  };
  const region = regionOf(ss, deps.settings.region);
  const aws: AwsEnv = { home: deps.settings.region, clients: deps.awsFor };
  const log = deps.log.child({ namespace, name });
  // Status is writable by whoever may patch secretsyncs/status (the function, for its own): an
  // in-cluster record naming another namespace was never ours to write, and is not acted on.
  const inCluster = new Set(['Role', 'RoleBinding', 'Secret']);
  const recorded = (ss.status?.resources ?? []) as ResourceRecord[];
  const foreign = recorded.filter((r) => inCluster.has(r.kind) && !r.id.startsWith(`${namespace}/`));
  if (foreign.length > 0) log.warn({ records: foreign }, 'ignoring status records outside the namespace');
  const records = new Records(recorded.filter((r) => !foreign.includes(r)));
  const s = ss.status;
  const status: Pass['status'] = {
    observedGeneration: s?.observedGeneration,
    targetName: s?.targetName,
    secretArn: s?.secretArn,
    roleArn: s?.roleArn,
    functionArn: s?.functionArn,
    ruleArn: s?.ruleArn,
    accessEntryUsername: resourceNames(owner).eksUsername,
    lastInvokeTime: s?.lastInvokeTime,
    lastForceSync: s?.lastForceSync,
    accessChangedTime: s?.accessChangedTime,
    checkedTime: s?.checkedTime,
    provisionedHash: s?.provisionedHash,
  };
  const write = (ready: ControllerStatus['ready'], readyGeneration?: number) =>
    applyStatus(deps.kube.custom, ss, { ...status, resources: records.list, ready }, readyGeneration);
  return {
    deps,
    ss,
    owner,
    region,
    clients: deps.awsFor(region),
    envs: { aws, kube: deps.kube },
    records,
    log,
    status,
    async finish(ready) {
      const out = await write(ready);
      if (!out.transition) return;
      await deps.events
        .record(ss, out.transition.to === 'True' ? 'Normal' : 'Warning', out.transition.reason, ready.message)
        .then((did) => log.debug({ reason: out.transition?.reason, did }, 'Event'))
        .catch((err: unknown) => log.warn({ err: String(err) }, 'could not record an Event'));
    },
    async persist() {
      const prev = s?.conditions?.find((c) => c.type === 'Ready');
      const ready = prev
        ? { status: prev.status, reason: prev.reason, message: prev.message }
        : { status: 'False' as const, reason: 'Provisioning', message: 'provisioning' };
      await write(ready, prev ? prev.observedGeneration : ss.metadata.generation);
    },
  };
}

/**
 * Everything recorded, and whatever today's names find (status may have lost its records: restored
 * from a backup without status); only what is ours is deleted. The target Secret only when
 * `deleteTarget`; otherwise its record stays. True when all is gone.
 */
function removeAll(pass: Pass, deleteTarget: boolean): Promise<boolean> {
  const { deps, owner } = pass;
  const today = todaysRecords(
    identitiesOf(deps.settings, owner, pass.region),
    owner.clusterArn,
    owner.namespace,
  );
  const all = new Records([...pass.records.list, ...today]).list.filter(
    (r) => deleteTarget || r.kind !== 'Secret',
  );
  return removeRecorded(pass.envs, pass.records, all, owner, {
    deleteTarget,
    log: pass.log,
    sharedWith: sharedWith(pass),
  });
}

/** Other SecretSyncs of this namespace that write a given Secret (the informer's view). */
const sharedWith =
  ({ deps, owner }: Pass) =>
  (secretName: string): string[] =>
    deps.targetedBy?.(owner.namespace, secretName, owner.name) ?? [];

/** Invokes the function and records it in the pass's status; any invocation serves a pending force-sync. */
async function invokeAndRecord(
  pass: Pass,
  arn: string,
  trigger: string,
  now: number,
  versionId?: string,
): Promise<void> {
  const { deps, ss } = pass;
  await invoke(pass.envs.aws, arn, {
    trigger,
    generation: ss.metadata.generation,
    accessChangedTime: pass.status.accessChangedTime,
    ...(versionId ? { versionId } : {}),
  });
  deps.metrics?.invocations.inc({ trigger });
  pass.log.info({ trigger }, 'invoked the function');
  pass.status.lastInvokeTime = isoSeconds(now);
  const forceSync = ss.metadata.annotations?.[FORCE_SYNC_ANNOTATION];
  if (forceSync !== undefined) pass.status.lastForceSync = forceSync;
}

/**
 * The backstop resync of a settled SecretSync, asked for by the inventory: nothing to read, only the
 * function to invoke (a pending force-sync is served by it too).
 */
async function resyncOnly(pass: Pass): Promise<ProcessResult> {
  const { deps, ss } = pass;
  const arn = ss.status?.functionArn;
  const ready = ss.status?.conditions?.find((c) => c.type === 'Ready');
  if (!arn || !ready) return undefined;
  const forceSync = ss.metadata.annotations?.[FORCE_SYNC_ANNOTATION];
  const trigger = forceSync !== undefined && forceSync !== ss.status?.lastForceSync ? 'force-sync' : 'resync';
  // A backstop run is handed the stage's listed version: the function reads nothing if the target
  // holds it untouched. A force-sync reads fresh (a user asked).
  const listed =
    trigger === 'resync'
      ? listedSecret(
          deps.inventory?.()?.regions.get(pass.region),
          ss.spec.source.secretId,
          ss.status?.secretArn,
        )
      : undefined;
  const versionId = listed && stageVersion(ss, listed);
  await invokeAndRecord(pass, arn, trigger, (deps.now ?? Date.now)(), versionId);
  await pass.finish({ status: ready.status, reason: ready.reason, message: ready.message });
  return undefined;
}

/** The SecretSync is being deleted: remove everything it has (the target per deletionPolicy), then the finalizer. */
async function finalize(pass: Pass): Promise<ProcessResult> {
  const { deps, ss } = pass;
  if (!ss.metadata.finalizers?.includes(FINALIZER)) return undefined;
  const gone = await removeAll(pass, ss.spec.deletionPolicy === 'Delete');
  if (!gone) {
    await pass.persist().catch(() => {});
    return { requeueAfterMs: 5_000 };
  }
  await setFinalizer(deps.kube.custom, ss, false);
  pass.log.info('cleaned up; finalizer removed');
  return undefined;
}

/**
 * Tenancy no longer allows this namespace the secret: tear the sync path down (the target Secret
 * stays), drop the ARNs and the invoke record, so a renewed consent starts with a first sync.
 */
async function withdraw(pass: Pass, why: string): Promise<ProcessResult> {
  const { deps, ss } = pass;
  if (ss.metadata.finalizers?.includes(FINALIZER)) {
    const gone = await removeAll(pass, false);
    if (gone) await setFinalizer(deps.kube.custom, ss, false);
    else throw new Stop('PolicyDenied', `${why}; removing what was provisioned`, 5_000);
  }
  Object.assign(pass.status, {
    secretArn: undefined,
    roleArn: undefined,
    functionArn: undefined,
    ruleArn: undefined,
    lastInvokeTime: undefined,
  });
  throw new Stop('PolicyDenied', why, 5 * 60_000);
}
