import type { FunctionConfig, SecretSyncRead } from './config.ts';
import type { SyncError } from './errors.ts';
import { type KubeClient, KubeHttpError } from './kube-client.ts';
import { LAMBDA_FIELD_MANAGER } from './merge.ts';
import type { SyncResult } from './sync.ts';

/**
 * The function's part of the SecretSync status, applied server-side under its own field manager:
 * the Synced condition and the last-sync fields. The controller applies Ready and its own fields
 * under another manager, so neither clobbers the other.
 */
interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

interface SyncStatus {
  conditions?: Condition[];
  lastSyncTime?: string;
  syncedVersionId?: string;
  syncedKeys?: number;
  lastSyncChanges?: Record<string, number>;
}

/** The SecretSync: spec (what to apply), status (the function's last report, the controller's record). */
export interface SecretSyncObject extends SecretSyncRead {
  status?: SyncStatus & { observedGeneration?: number; accessChangedTime?: string };
}

export function secretSyncPath(config: FunctionConfig): string {
  return `/apis/secretsync.io/v1alpha1/namespaces/${config.namespace}/secretsyncs/${config.syncName}`;
}

/** One GET of the function's own SecretSync (its Role allows `get` on exactly this name); undefined when gone. */
export async function readSecretSync(
  kube: KubeClient,
  config: FunctionConfig,
): Promise<SecretSyncObject | undefined> {
  try {
    return (await kube.request<SecretSyncObject>('GET', secretSyncPath(config))).body;
  } catch (err) {
    if (err instanceof KubeHttpError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * Builds on the SecretSync as read at the start of the run: for lastTransitionTime (changes only
 * when the status flips), because an apply that omits a field we own would delete it (a failed sync
 * must keep the last good syncedVersionId), and for observedGeneration — the generation whose spec
 * this run applied.
 */
export async function reportSync(
  kube: KubeClient,
  config: FunctionConfig,
  outcome: { ok: true; result: SyncResult } | { ok: false; error: SyncError },
  now: Date,
  current: SecretSyncObject,
): Promise<void> {
  const path = `${secretSyncPath(config)}/status`;
  const previous = current.status?.conditions?.find((c) => c.type === 'Synced');
  const status: Condition['status'] = outcome.ok ? 'True' : 'False';
  const condition: Condition = {
    type: 'Synced',
    status,
    reason: outcome.ok ? 'Synced' : outcome.error.reason,
    message: outcome.ok ? describe(outcome.result) : outcome.error.message,
    lastTransitionTime:
      previous && previous.status === status
        ? previous.lastTransitionTime
        : now.toISOString().replace(/\.\d+Z$/, 'Z'),
    ...(current.metadata.generation ? { observedGeneration: current.metadata.generation } : {}),
  };
  const s = current.status ?? {};
  const body: { status: SyncStatus } & Record<string, unknown> = {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretSync',
    metadata: { name: config.syncName, namespace: config.namespace },
    status: {
      conditions: [condition],
      lastSyncTime: now.toISOString().replace(/\.\d+Z$/, 'Z'),
    },
  };
  if (outcome.ok) {
    const { changes } = outcome.result;
    body.status.syncedVersionId = outcome.result.versionId;
    body.status.syncedKeys = outcome.result.keys;
    body.status.lastSyncChanges = {
      added: changes.added.length,
      updated: changes.updated.length,
      unchanged: changes.unchanged.length,
      removed: changes.removed.length,
      kept: changes.kept.length,
    };
  } else {
    if (s.syncedVersionId !== undefined) body.status.syncedVersionId = s.syncedVersionId;
    if (s.syncedKeys !== undefined) body.status.syncedKeys = s.syncedKeys;
    if (s.lastSyncChanges !== undefined) body.status.lastSyncChanges = s.lastSyncChanges;
  }
  await kube.request('PATCH', path, {
    body,
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: LAMBDA_FIELD_MANAGER, force: 'true' },
  });
}

function describe(r: SyncResult): string {
  const c = r.changes;
  const parts = [
    `${c.added.length} added`,
    `${c.updated.length} updated`,
    `${c.removed.length} removed`,
    `${c.unchanged.length} unchanged`,
    `${c.kept.length} kept`,
  ];
  return `${r.keys} key(s) from version ${r.versionId}: ${parts.join(', ')}`;
}
