// The in-cluster half of a SecretSync's powers: a Role that lets the function's EKS identity get,
// update and patch exactly the target Secret, get exactly its SecretSync (the spec it applies, and its
// previous status: lastTransitionTime, the last good version) and patch exactly that one's status.

import type { V1PolicyRule, V1Role } from '@kubernetes/client-node';
import { CONTROLLER_FIELD_MANAGER } from './apply.ts';
import { applyAsController, applyOptions, type ChildMeta, childManager } from './children.ts';

export interface DesiredRole extends ChildMeta {
  secretSyncName: string;
  targetName: string;
}

export function desiredRules(d: { targetName: string; secretSyncName: string }): V1PolicyRule[] {
  return [
    {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: [d.targetName],
      verbs: ['get', 'patch', 'update'],
    },
    {
      apiGroups: ['secretsync.io'],
      resources: ['secretsyncs'],
      resourceNames: [d.secretSyncName],
      verbs: ['get'],
    },
    {
      apiGroups: ['secretsync.io'],
      resources: ['secretsyncs/status'],
      resourceNames: [d.secretSyncName],
      verbs: ['patch'],
    },
  ];
}

const normRules = (rules: V1PolicyRule[] | undefined) =>
  JSON.stringify(
    (rules ?? []).map((r) => ({
      apiGroups: [...(r.apiGroups ?? [])].sort(),
      resources: [...(r.resources ?? [])].sort(),
      resourceNames: [...(r.resourceNames ?? [])].sort(),
      verbs: [...(r.verbs ?? [])].sort(),
    })),
  );

/** The object as the controller writes it. */
export const roleBody = (d: DesiredRole): V1Role => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  metadata: { name: d.name, namespace: d.namespace, labels: d.labels, ownerReferences: [d.owner] },
  rules: desiredRules(d),
});

export const roleManager = childManager<DesiredRole, V1Role>({
  kind: 'Role',
  body: roleBody,
  differs: (d, l) => normRules(l.rules) !== normRules(desiredRules(d)),
  get: (env, id) => env.rbac.readNamespacedRole(id),
  post: (env, namespace, body) =>
    env.rbac.createNamespacedRole({ namespace, body, fieldManager: CONTROLLER_FIELD_MANAGER }),
  apply: (env, id, body) => env.rbac.patchNamespacedRole({ ...id, body, ...applyAsController }, applyOptions),
  del: (env, id) => env.rbac.deleteNamespacedRole(id),
});
