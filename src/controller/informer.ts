import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { FINALIZER } from './kube/secretsyncs.ts';
import type { Priority } from './workqueue.ts';

/**
 * Watches SecretSyncs (list then watch, via client-node's informer, which relists on 410 Gone by
 * itself). Any other watch error stops that informer; we restart it with capped exponential
 * backoff and jitter — never exiting the process. SecretSyncs listed already settled are not queued:
 * the inventory pass (drift.ts) decides which of them need anything, without reading each one.
 */
export interface SecretSyncInformerOptions {
  kc: KubeConfig;
  /** Empty: all namespaces. */
  namespaces: string[];
  onKey: (key: string, priority: Priority) => void;
  log: Logger;
  onRestart?: (namespace: string, err: unknown) => void;
}

export interface RunningInformer {
  /** Every key currently known. */
  keys(): string[];
  /** Every SecretSync in the cache, as last seen. */
  objects(): KubernetesObject[];
  /** Every scope has listed: the cache holds every SecretSync (not only connected: client-node says that first). */
  synced(): boolean;
  stop(): Promise<void>;
}

const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;

// Function-reported outcomes the controller acts on: it recreates a missing target, and restores
// the function's RBAC (which it also does on every pass).
const ACTIONABLE_SYNC_REASONS = new Set(['TargetMissing', 'Forbidden']);

/**
 * What a reconcile pass depends on, besides AWS: the spec (generation), what the user sets in
 * metadata (annotations such as force-sync, labels, others' finalizers, deletion), our finalizer
 * gone from a SecretSync that has things to clean up, and the function outcomes the controller acts
 * on. Status written by the function after each sync, and by the controller itself — our finalizer
 * added by the first pass too — is left out: reacting to those would add a full pass to every new
 * SecretSync, every secret change and every pass.
 */
export function reconcileFingerprint(o: KubernetesObject): string {
  const m = o.metadata ?? {};
  const status = (
    o as {
      status?: { conditions?: { type: string; status: string; reason: string }[]; resources?: unknown[] };
    }
  ).status;
  const synced = status?.conditions?.find((c) => c.type === 'Synced');
  const finalizers = m.finalizers ?? [];
  return JSON.stringify([
    m.generation,
    m.annotations ?? {},
    m.labels ?? {},
    finalizers.filter((f) => f !== FINALIZER),
    (status?.resources?.length ?? 0) > 0 && !finalizers.includes(FINALIZER),
    m.deletionTimestamp ?? null,
    synced && ACTIONABLE_SYNC_REASONS.has(synced.reason) ? [synced.status, synced.reason] : null,
  ]);
}

/**
 * Ready for its current generation, not being deleted, no function outcome to act on: nothing for a
 * pass to do unless the inventory finds something (drift.ts). Not queued when listed.
 */
export function settled(o: { metadata?: { deletionTimestamp?: unknown; generation?: number } }): boolean {
  const m = o.metadata ?? {};
  const status = (
    o as {
      status?: {
        observedGeneration?: number;
        conditions?: { type: string; status: string; reason: string }[];
      };
    }
  ).status;
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  const synced = status?.conditions?.find((c) => c.type === 'Synced');
  return (
    !m.deletionTimestamp &&
    ready?.status === 'True' &&
    status?.observedGeneration === m.generation &&
    !(synced && ACTIONABLE_SYNC_REASONS.has(synced.reason))
  );
}

export function startSecretSyncInformer(opts: SecretSyncInformerOptions): RunningInformer {
  const scopes = opts.namespaces.length > 0 ? opts.namespaces : [''];
  const base = '/apis/secretsync.io/v1alpha1';
  let stopped = false;
  const states = scopes.map((ns) => {
    const path = ns ? `${base}/namespaces/${ns}/secretsyncs` : `${base}/secretsyncs`;
    // client-node's informer reports 'connect' before its list has filled the cache; the cache is
    // filled synchronously once the list call resolves, so a macrotask later it holds every item.
    const listed = async () => {
      const list = await fetchList(opts.kc, ns);
      setImmediate(() => {
        state.listed = true;
      });
      return list;
    };
    const informer = makeInformer<KubernetesObject>(opts.kc, path, listed);
    const state = {
      informer,
      listed: false,
      failures: 0,
      timer: undefined as NodeJS.Timeout | undefined,
    };
    const seen = new Map<string, string>();
    const enqueue = (o: KubernetesObject, priority: Priority) => {
      seen.set(keyOf(o), reconcileFingerprint(o));
      opts.onKey(keyOf(o), priority);
    };
    // The initial list (and a relist) delivers every SecretSync as added.
    informer.on('add', (o) => {
      if (settled(o)) seen.set(keyOf(o), reconcileFingerprint(o));
      else enqueue(o, 'high');
    });
    informer.on('update', (o) => {
      if (seen.get(keyOf(o)) !== reconcileFingerprint(o)) enqueue(o, 'high');
    });
    informer.on('delete', (o) => {
      seen.delete(keyOf(o));
      opts.onKey(keyOf(o), 'high');
    });
    informer.on('connect', () => {
      state.failures = 0;
    });
    informer.on('error', (err: unknown) => {
      if (stopped) return;
      state.failures++;
      const delay = Math.min(30_000, 500 * 2 ** state.failures) * (0.5 + Math.random() / 2);
      opts.log.warn(
        { namespace: ns || '*', err: String(err), retryInMs: Math.round(delay) },
        'watch failed; restarting',
      );
      opts.onRestart?.(ns, err);
      state.timer = setTimeout(() => {
        if (!stopped) informer.start().catch(() => {});
      }, delay);
    });
    informer.start().catch(() => {
      // reported through the error event
    });
    return state;
  });

  return {
    keys: () => states.flatMap((s) => s.informer.list().map(keyOf)),
    objects: () => states.flatMap((s) => s.informer.list()),
    synced: () => states.every((s) => s.listed),
    async stop() {
      stopped = true;
      for (const s of states) {
        if (s.timer) clearTimeout(s.timer);
        await s.informer.stop();
      }
    },
  };
}

/** The list call the informer starts from; any error propagates to its error handler. */
async function fetchList(kc: KubeConfig, namespace: string) {
  const api = kc.makeApiClient(CustomObjectsApi);
  const common = { group: 'secretsync.io', version: 'v1alpha1', plural: 'secretsyncs' };
  const list = namespace
    ? await api.listNamespacedCustomObject({ ...common, namespace })
    : await api.listClusterCustomObject(common);
  return list as { items: KubernetesObject[]; metadata?: { resourceVersion?: string } } as never;
}
