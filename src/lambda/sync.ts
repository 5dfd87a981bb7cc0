import type { Logger } from 'pino';
import type { FunctionConfig, SyncSpec } from './config.ts';
import { SyncError } from './errors.ts';
import { type KubeClient, KubeHttpError, KubeUnreachableError } from './kube-client.ts';
import {
  computeMerge,
  keysOfOtherSyncs,
  keysOwnedBy,
  keysOwnedByOthers,
  type ManagedFieldsEntry,
  type MergeChanges,
  targetFieldManager,
} from './merge.ts';
import { secretDataFrom } from './payload.ts';
import type { CurrentSecret } from './secret-reader.ts';

/**
 * One sync: read the current AWS value, write it into the target Secret, and check the AWS
 * version did not move meanwhile. Overlapping invocations (two changes in quick succession) can
 * otherwise end with the older value written last; with the re-check, whichever invocation writes
 * last has seen the current version after its write, or goes round again.
 */
export interface SyncDeps {
  config: FunctionConfig;
  /** What this run applies: the SecretSync's spec as read at its start. */
  spec: SyncSpec;
  readSecret: () => Promise<CurrentSecret>;
  kube: KubeClient;
  log: Logger;
  /** Called when the API server rejected the token, so the next request signs a fresh one. */
  onUnauthorized?: () => void;
  /** Called after a write, while the AWS version is re-checked (the handler reports status here). */
  onWritten?: (result: SyncResult) => Promise<void>;
}

export interface SyncResult {
  versionId: string;
  keys: number;
  changes: Omit<MergeChanges, 'changed'>;
  wrote: boolean;
  attempts: number;
}

interface SecretObject {
  metadata: {
    name: string;
    namespace: string;
    resourceVersion: string;
    managedFields?: ManagedFieldsEntry[];
  };
  data?: Record<string, string>;
  [k: string]: unknown;
}

const MAX_ATTEMPTS = 4;

export async function runSync(deps: SyncDeps): Promise<SyncResult> {
  const { config, spec, kube } = deps;
  const secretPath = `/api/v1/namespaces/${config.namespace}/secrets/${spec.targetName}`;
  const manager = targetFieldManager(config.syncName);
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    // Both reads at once (they are independent); an AWS failure is reported before a Kubernetes one.
    const [awsRead, kubeRead] = await Promise.allSettled([
      deps.readSecret(),
      kubeCall(deps, 'read the target Secret', () => kube.request<SecretObject>('GET', secretPath)),
    ]);
    if (awsRead.status === 'rejected') throw awsRead.reason;
    const current = awsRead.value;
    // Parse and validate before writing: a bad payload must leave the Secret as it is.
    const desired = secretDataFrom(current.value, spec.keyMapping, spec.template);
    if (kubeRead.status === 'rejected') throw kubeRead.reason;
    const secret = kubeRead.value;
    const managed = secret.body.metadata.managedFields;
    refuseOthersKeys(config.syncName, spec, desired, keysOfOtherSyncs(managed, manager));
    const outcome = computeMerge({
      name: spec.targetName,
      namespace: config.namespace,
      existing: secret.body.data,
      desired,
      owned: keysOwnedBy(managed, manager),
      ownedByOthers: keysOwnedByOthers(managed, manager),
      policy: spec.mergePolicy,
    });
    const { changed, ...changes } = outcome;
    const base = { versionId: current.versionId, keys: desired.size, changes, attempts: attempt };
    if (!changed) return { ...base, wrote: false };

    try {
      if (outcome.policy === 'Merge') {
        // resourceVersion in an apply patch is a precondition: a concurrent writer makes this 409.
        const patch = {
          ...outcome.patch,
          metadata: { ...outcome.patch.metadata, resourceVersion: secret.body.metadata.resourceVersion },
        };
        await kubeCall(deps, 'apply the target Secret', () =>
          kube.request('PATCH', secretPath, {
            body: patch,
            contentType: 'application/apply-patch+yaml',
            query: { fieldManager: manager, force: 'true' },
          }),
        );
      } else {
        const { managedFields: _mf, ...metadata } = secret.body.metadata;
        await kubeCall(deps, 'replace the target Secret', () =>
          kube.request('PUT', secretPath, {
            body: { ...secret.body, metadata, data: outcome.data },
            query: { fieldManager: manager },
          }),
        );
      }
    } catch (err) {
      if (err instanceof SyncError && err.reason === 'Conflict') {
        deps.log.debug({ attempt }, 'target Secret changed while syncing; starting over');
        continue;
      }
      throw err;
    }
    deps.log.debug({ keys: [...desired.keys()] }, 'synced key names');

    // The re-check must follow the write; the status report need not wait for it. Should AWS have
    // moved, the next round writes and reports again.
    const result = { ...base, wrote: true };
    const [after] = await Promise.all([deps.readSecret(), deps.onWritten?.(result)]);
    if (after.versionId === current.versionId) return result;
    deps.log.info({ attempt }, 'AWS version moved during the sync; syncing again');
  }
  throw new SyncError(
    'Conflict',
    `the target Secret or the AWS secret kept changing over ${MAX_ATTEMPTS} attempts`,
  );
}

/**
 * Several SecretSyncs may write one Secret, each its own keys. A key another SecretSync wrote is not
 * taken over (KeyConflict, naming the key and that SecretSync: key names are not values), and Replace,
 * which would erase the others' keys, is refused while another SecretSync writes there (TargetConflict).
 * Nothing is written in either case.
 */
function refuseOthersKeys(
  syncName: string,
  spec: SyncSpec,
  desired: ReadonlyMap<string, unknown>,
  others: ReadonlyMap<string, string>,
): void {
  if (others.size === 0) return;
  if (spec.mergePolicy === 'Replace') {
    const names = [...new Set(others.values())].sort().join(', ');
    throw new SyncError(
      'TargetConflict',
      `mergePolicy Replace would erase what SecretSync ${names} wrote into Secret ${spec.targetName}; use Merge, or another target`,
    );
  }
  const clash = [...desired.keys()].filter((k) => others.has(k)).sort();
  if (clash.length === 0) return;
  const described = clash.map((k) => `${JSON.stringify(k)} (SecretSync ${others.get(k)})`).join(', ');
  throw new SyncError(
    'KeyConflict',
    `SecretSync ${syncName} and another SecretSync both map keys into Secret ${spec.targetName}: ${described}; nothing was written. Map those keys to other names (target.keys[].to) on one of them`,
  );
}

/** Runs a Kubernetes call and turns its failure into the function's reasons. */
export async function kubeCall<T>(deps: KubeCallDeps, what: string, call: () => Promise<T>) {
  try {
    return await call();
  } catch (err) {
    throw translateKube(deps, what, err);
  }
}

type KubeCallDeps = Pick<SyncDeps, 'config' | 'onUnauthorized'> & { spec?: Pick<SyncSpec, 'targetName'> };

function translateKube(deps: KubeCallDeps, what: string, err: unknown): unknown {
  const target = `${deps.config.namespace}/${deps.spec?.targetName ?? '?'}`;
  if (err instanceof KubeUnreachableError) {
    return new SyncError(
      'ApiUnavailable',
      `could not ${what}: the Kubernetes API server is unreachable (${err.message})`,
    );
  }
  if (!(err instanceof KubeHttpError)) return err;
  switch (err.status) {
    case 401:
      deps.onUnauthorized?.();
      return new SyncError(
        'Unauthorized',
        `could not ${what}: the API server did not accept the function's EKS token (is the access entry in place?)`,
      );
    case 403:
      return new SyncError('Forbidden', `could not ${what}: ${err.message}`);
    case 404:
      return new SyncError(
        'TargetMissing',
        `the target Secret ${target} does not exist; the controller recreates it`,
      );
    case 409:
      return new SyncError('Conflict', `could not ${what}: ${err.message}`);
    case 400:
    case 413:
    case 422:
      // The API server refused the content (size, typed-Secret rules). Its messages name fields, not values.
      return new SyncError('InvalidPayload', `the API server refused the Secret: ${err.message}`);
    default:
      return new SyncError('ApiUnavailable', `could not ${what}: ${err.message}`, { retryable: true });
  }
}

/**
 * Whether a backstop run may skip reading the value: the controller's listing shows the stage at the
 * version the target already holds (`listedVersionId`), the last sync of this generation succeeded,
 * and the target still holds what it wrote — our field manager still applies exactly the
 * `syncedKeys` keys (a hand edit, a deleted key or a deleted Secret moves or drops that ownership).
 * Merge only: Replace writes by PUT, whose ownership says less. One GET, no AWS call.
 */
export async function targetIntact(
  deps: Pick<SyncDeps, 'config' | 'spec' | 'kube' | 'onUnauthorized'>,
  status: {
    generation: number | undefined;
    syncedVersionId?: string | undefined;
    syncedKeys?: number | undefined;
    synced?: { status: string; observedGeneration?: number | undefined } | undefined;
  },
  listedVersionId: string | undefined,
): Promise<boolean> {
  const { config, spec, kube } = deps;
  if (spec.mergePolicy !== 'Merge' || !listedVersionId) return false;
  if (status.syncedVersionId !== listedVersionId || status.syncedKeys === undefined) return false;
  if (status.synced?.status !== 'True' || status.synced.observedGeneration !== status.generation)
    return false;
  const secretPath = `/api/v1/namespaces/${config.namespace}/secrets/${spec.targetName}`;
  let secret: SecretObject;
  try {
    secret = (
      await kubeCall(deps, 'read the target Secret', () => kube.request<SecretObject>('GET', secretPath))
    ).body;
  } catch {
    return false;
  }
  const owned = keysOwnedBy(secret.metadata.managedFields, targetFieldManager(config.syncName));
  return owned.size === status.syncedKeys && [...owned].every((k) => secret.data?.[k] !== undefined);
}
