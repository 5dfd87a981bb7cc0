// The RoleBinding from the function's EKS username (its access entry) to its Role. roleRef is
// immutable: a binding pointing elsewhere is replaced.

import type { V1RoleBinding } from '@kubernetes/client-node';
import { isNotFound } from '../errors.ts';
import type { Manager } from '../manager.ts';
import { applyOptions, CONTROLLER_FIELD_MANAGER } from './apply.ts';
import { type ChildMeta, childId, describeChild, metaDiffers, ownedChild, parseChildId } from './children.ts';
import { kube } from './errors.ts';
import type { KubeEnv } from './role.ts';

export interface DesiredRoleBinding extends ChildMeta {
  roleName: string;
  username: string;
}

type Id = { namespace: string; name: string };

const body = (d: DesiredRoleBinding): V1RoleBinding => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  metadata: { name: d.name, namespace: d.namespace, labels: d.labels, ownerReferences: [d.owner] },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: d.roleName },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: d.username }],
});

export const roleBindingManager: Manager<KubeEnv, Id, DesiredRoleBinding, V1RoleBinding> = {
  title: 'RoleBinding',
  recorded: {
    kind: 'RoleBinding',
    toRecord: (id) => ({ kind: 'RoleBinding', id: describeChild(id) }),
    fromRecord: (r) => parseChildId(r.id),
  },
  id: childId,
  describe: describeChild,
  read: (env, id) =>
    kube({ operation: 'GET RoleBinding', resource: describeChild(id) }, () =>
      env.rbac.readNamespacedRoleBinding(id),
    ).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    }),
  owned: (l, owner) => ownedChild(l.metadata, owner),
  replaceBecause: (d, l) =>
    l.roleRef.kind === 'Role' && l.roleRef.name === d.roleName
      ? undefined
      : `it binds ${l.roleRef.kind} ${l.roleRef.name}`,
  create: (env, d) =>
    kube({ operation: 'POST RoleBinding', resource: describeChild(d) }, () =>
      env.rbac.createNamespacedRoleBinding({
        namespace: d.namespace,
        body: body(d),
        fieldManager: CONTROLLER_FIELD_MANAGER,
      }),
    ),
  diff(d, l) {
    const subjectOk =
      l.subjects?.length === 1 && l.subjects[0]?.kind === 'User' && l.subjects[0]?.name === d.username;
    return !subjectOk || metaDiffers(l.metadata, d) ? ['binding'] : [];
  },
  update: (env, d) =>
    kube({ operation: 'APPLY RoleBinding', resource: describeChild(d) }, () =>
      env.rbac.patchNamespacedRoleBinding(
        { ...childId(d), body: body(d), fieldManager: CONTROLLER_FIELD_MANAGER, force: true },
        applyOptions,
      ),
    ),
  async delete(env, _l, id) {
    await kube({ operation: 'DELETE RoleBinding', resource: describeChild(id) }, () =>
      env.rbac.deleteNamespacedRoleBinding(id),
    );
  },
};
