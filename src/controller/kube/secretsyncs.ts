import type { CustomObjectsApi } from '@kubernetes/client-node';
import type {
  SecretSync,
  SecretSyncStatus,
  SecretSyncStatusCondition,
} from '../../shared/secretsync.generated.ts';
import { isNotFound } from '../errors.ts';
import type { ResourceRecord } from '../manager.ts';
import { applyOptions, CONTROLLER_FIELD_MANAGER } from './apply.ts';
import { kube } from './errors.ts';

export const FINALIZER = 'secretsync.io/cleanup';
const API = { group: 'secretsync.io', version: 'v1alpha1', plural: 'secretsyncs' } as const;

export async function getSecretSync(
  api: CustomObjectsApi,
  namespace: string,
  name: string,
): Promise<SecretSync | undefined> {
  try {
    return (await kube({ operation: 'GET SecretSync', resource: `${namespace}/${name}` }, () =>
      api.getNamespacedCustomObject({ ...API, namespace, name }),
    )) as SecretSync;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Adds or removes our finalizer by server-side apply: finalizers are a set, so applying ours under
 * our field manager adds it without touching others', and applying none removes only ours.
 */
export async function setFinalizer(api: CustomObjectsApi, ss: SecretSync, present: boolean): Promise<void> {
  const has = ss.metadata.finalizers?.includes(FINALIZER) ?? false;
  if (has === present) return;
  await applyToSecretSync(api, ss, 'finalizer', { finalizers: present ? [FINALIZER] : [] });
}

/** Server-side apply of our part of the SecretSync (metadata fields, or the status subresource). */
function applyToSecretSync(
  api: CustomObjectsApi,
  ss: SecretSync,
  what: 'finalizer' | 'status',
  part: Record<string, unknown>,
) {
  const { name, namespace } = ss.metadata;
  const metadata = { name, namespace, ...(what === 'finalizer' ? part : {}) };
  const body = {
    apiVersion: ss.apiVersion,
    kind: ss.kind,
    metadata,
    ...(what === 'status' ? { status: part } : {}),
  };
  const request = { ...API, namespace, name, body, fieldManager: CONTROLLER_FIELD_MANAGER, force: true };
  return kube({ operation: `APPLY SecretSync ${what}`, resource: `${namespace}/${name}` }, () =>
    what === 'status'
      ? api.patchNamespacedCustomObjectStatus(request, applyOptions)
      : api.patchNamespacedCustomObject(request, applyOptions),
  );
}

/** The controller's part of the status: every field but Synced and the last-sync fields (the function's). */
export type ControllerStatus = Pick<
  SecretSyncStatus,
  | 'observedGeneration'
  | 'targetName'
  | 'secretArn'
  | 'roleArn'
  | 'functionArn'
  | 'ruleArn'
  | 'accessEntryUsername'
  | 'lastInvokeTime'
  | 'lastForceSync'
  | 'accessChangedTime'
  | 'checkedTime'
  | 'provisionedHash'
> & {
  /** What was provisioned, as the identities it was created with (manager.ts ResourceRecord). */
  resources: ResourceRecord[];
  ready: { status: 'True' | 'False' | 'Unknown'; reason: string; message: string };
};

const CONTROLLER_FIELDS = [
  'observedGeneration',
  'targetName',
  'secretArn',
  'roleArn',
  'functionArn',
  'ruleArn',
  'accessEntryUsername',
  'lastInvokeTime',
  'lastForceSync',
  'accessChangedTime',
  'checkedTime',
  'provisionedHash',
] as const;

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const recordKeys = (rs: readonly ResourceRecord[] | undefined) =>
  (rs ?? []).map((r) => [r.kind, r.id, r.cluster ?? '', r.uid ?? ''].join(' ')).join('\n');
const sameRecords = (a: readonly ResourceRecord[] | undefined, b: readonly ResourceRecord[]) =>
  recordKeys(a) === recordKeys(b);

/**
 * Applies the Ready condition and our fields when they differ from what is there (status is
 * written once per pass, and not at all when nothing changed). Returns the Ready transition, if any.
 * `readyGeneration` keeps the Ready condition's generation (a write that only records resources).
 */
export async function applyStatus(
  api: CustomObjectsApi,
  ss: SecretSync,
  want: ControllerStatus,
  readyGeneration = ss.metadata.generation,
): Promise<{ wrote: boolean; transition?: { from: string | undefined; to: string; reason: string } }> {
  const cur = ss.status ?? {};
  const prevReady = cur.conditions?.find((c) => c.type === 'Ready');
  const ready: SecretSyncStatusCondition = {
    type: 'Ready',
    status: want.ready.status,
    reason: want.ready.reason,
    message: want.ready.message,
    lastTransitionTime:
      prevReady && prevReady.status === want.ready.status ? prevReady.lastTransitionTime : now(),
    ...(readyGeneration !== undefined ? { observedGeneration: readyGeneration } : {}),
  };
  const same =
    prevReady !== undefined &&
    prevReady.status === ready.status &&
    prevReady.reason === ready.reason &&
    prevReady.message === ready.message &&
    prevReady.observedGeneration === ready.observedGeneration &&
    CONTROLLER_FIELDS.every((f) => cur[f] === want[f]) &&
    sameRecords(cur.resources as ResourceRecord[] | undefined, want.resources);
  if (same) return { wrote: false };
  const status: Record<string, unknown> = { conditions: [ready], resources: want.resources };
  for (const f of CONTROLLER_FIELDS) if (want[f] !== undefined) status[f] = want[f];
  await applyToSecretSync(api, ss, 'status', status);
  const changed = prevReady?.status !== ready.status || prevReady?.reason !== ready.reason;
  return {
    wrote: true,
    ...(changed ? { transition: { from: prevReady?.status, to: ready.status, reason: ready.reason } } : {}),
  };
}
