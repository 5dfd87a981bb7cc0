// What the in-cluster children (Role, RoleBinding) share: our labels, an ownerReference to the
// SecretSync (so the garbage collector agrees with us about what is whose), the ownership test, and
// the write paths (create by POST, so a same-named object made meanwhile is never overwritten;
// update by server-side apply under our field manager).

import type { RbacAuthorizationV1Api, V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { isNotFound } from '../errors.ts';
import type { Manager, RecordedKind } from '../manager.ts';
import { MANAGED_BY, type Owner } from '../naming.ts';
import { applyOptions, CONTROLLER_FIELD_MANAGER } from './apply.ts';
import { kube } from './errors.ts';

export interface KubeEnv {
  rbac: RbacAuthorizationV1Api;
}

type ChildId = { namespace: string; name: string };

/** How one kind of child is read and written; the manager around it is the same for every kind. */
export interface ChildKind<D extends ChildMeta, T extends { metadata?: V1ObjectMeta }> {
  kind: RecordedKind & ('Role' | 'RoleBinding');
  body(d: D): T;
  /** Whether the fields we manage (besides labels and the owner reference) differ. */
  differs(d: D, latest: T): boolean;
  replaceBecause?(d: D, latest: T): string | undefined;
  get(env: KubeEnv, id: ChildId): Promise<T>;
  post(env: KubeEnv, namespace: string, body: T): Promise<T>;
  apply(env: KubeEnv, id: ChildId, body: T): Promise<T>;
  del(env: KubeEnv, id: ChildId): Promise<unknown>;
}

export function childManager<D extends ChildMeta, T extends { metadata?: V1ObjectMeta }>(
  k: ChildKind<D, T>,
): Manager<KubeEnv, ChildId, D, T> {
  const call = <R>(verb: string, id: ChildId, f: () => Promise<R>) =>
    kube({ operation: `${verb} ${k.kind}`, resource: describeChild(id) }, f);
  return {
    title: k.kind,
    recorded: {
      kind: k.kind,
      toRecord: (id) => ({ kind: k.kind, id: describeChild(id) }),
      fromRecord: (r) => parseChildId(r.id),
    },
    id: childId,
    describe: describeChild,
    read: (env, id) =>
      call('GET', id, () => k.get(env, id)).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      }),
    owned: (l, owner) => ownedChild(l.metadata, owner),
    ...(k.replaceBecause ? { replaceBecause: k.replaceBecause } : {}),
    create: (env, d) => call('POST', d, () => k.post(env, d.namespace, k.body(d))),
    diff: (d, l) => (k.differs(d, l) || metaDiffers(l.metadata, d) ? [k.kind] : []),
    update: (env, d) => call('APPLY', d, () => k.apply(env, childId(d), k.body(d))),
    async delete(env, _l, id) {
      await call('DELETE', id, () => k.del(env, id));
    },
  };
}

/** Server-side apply options for a child: our field manager, taking over fields others set. */
export const applyAsController = { fieldManager: CONTROLLER_FIELD_MANAGER, force: true } as const;
export { applyOptions };

export const SECRETSYNC_LABEL = 'secretsync.io/secretsync';

/** Where a child lives and whose it is. */
export interface ChildMeta {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  owner: V1OwnerReference;
}

export const childLabels = (secretSyncName: string): Record<string, string> => ({
  'app.kubernetes.io/managed-by': MANAGED_BY,
  [SECRETSYNC_LABEL]: secretSyncName,
});

export function ownerReference(ss: {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}): V1OwnerReference {
  // Not a controller reference with blockOwnerDeletion: our finalizer already orders deletion.
  return { apiVersion: ss.apiVersion, kind: ss.kind, name: ss.name, uid: ss.uid };
}

/**
 * Ours when it names a SecretSync of this name as its owner. The uid is not compared, as for AWS
 * resources: a child left by an earlier SecretSync of the same name is adopted (the diff rewrites the
 * reference), since that SecretSync is gone and nobody else claims the name.
 */
export function ownedChild(meta: V1ObjectMeta | undefined, owner: Owner): boolean {
  return (meta?.ownerReferences ?? []).some(
    (r) => r.kind === 'SecretSync' && r.apiVersion.startsWith('secretsync.io/') && r.name === owner.name,
  );
}

/** Labels or the owner reference differ from what we want. */
export function metaDiffers(meta: V1ObjectMeta | undefined, want: ChildMeta): boolean {
  const labels = Object.entries(want.labels).some(([k, v]) => meta?.labels?.[k] !== v);
  const ref = (meta?.ownerReferences ?? []).some(
    (r) => r.uid === want.owner.uid && r.name === want.owner.name,
  );
  return labels || !ref;
}

export const childId = (d: { namespace: string; name: string }) => ({ namespace: d.namespace, name: d.name });
export const describeChild = (id: { namespace: string; name: string }) => `${id.namespace}/${id.name}`;

/** Record ids of in-cluster things: namespace/name. */
export const parseChildId = (id: string) => {
  const [namespace = '', name = ''] = id.split('/');
  return { namespace, name };
};
