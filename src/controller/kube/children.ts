// What the in-cluster children (Role, RoleBinding) share: our labels, an ownerReference to the
// SecretSync (so the garbage collector agrees with us about what is whose), the ownership test, and
// the write paths (create by POST, so a same-named object made meanwhile is never overwritten;
// update by server-side apply under our field manager).

import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import type { Owner } from '../naming.ts';
import { MANAGED_BY } from '../naming.ts';

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
