// The RoleBinding from the function's EKS username (its access entry) to its Role. roleRef is
// immutable: a binding pointing elsewhere is replaced.

import type { V1RoleBinding } from '@kubernetes/client-node';
import { CONTROLLER_FIELD_MANAGER } from './apply.ts';
import { applyAsController, applyOptions, type ChildMeta, childManager } from './children.ts';

export interface DesiredRoleBinding extends ChildMeta {
  roleName: string;
  username: string;
}

/** The object as the controller writes it. */
export const roleBindingBody = (d: DesiredRoleBinding): V1RoleBinding => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  metadata: { name: d.name, namespace: d.namespace, labels: d.labels, ownerReferences: [d.owner] },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: d.roleName },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: d.username }],
});

export const roleBindingManager = childManager<DesiredRoleBinding, V1RoleBinding>({
  kind: 'RoleBinding',
  body: roleBindingBody,
  differs: (d, l) =>
    l.subjects?.length !== 1 || l.subjects[0]?.kind !== 'User' || l.subjects[0]?.name !== d.username,
  replaceBecause: (d, l) =>
    l.roleRef.kind === 'Role' && l.roleRef.name === d.roleName
      ? undefined
      : `it binds ${l.roleRef.kind} ${l.roleRef.name}`,
  get: (env, id) => env.rbac.readNamespacedRoleBinding(id),
  post: (env, namespace, body) =>
    env.rbac.createNamespacedRoleBinding({ namespace, body, fieldManager: CONTROLLER_FIELD_MANAGER }),
  apply: (env, id, body) =>
    env.rbac.patchNamespacedRoleBinding({ ...id, body, ...applyAsController }, applyOptions),
  del: (env, id) => env.rbac.deleteNamespacedRoleBinding(id),
});
