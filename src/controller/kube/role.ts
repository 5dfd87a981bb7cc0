// The in-cluster half of a SecretSync's powers: a Role that lets the function's EKS identity get,
// update and patch exactly the target Secret, and get/patch exactly its SecretSync's status (get: the
// function reads its previous status to keep lastTransitionTime and the last good version).

import type { RbacAuthorizationV1Api, V1PolicyRule, V1Role } from '@kubernetes/client-node';
import { isNotFound } from '../errors.ts';
import type { Manager } from '../manager.ts';
import { applyOptions, CONTROLLER_FIELD_MANAGER } from './apply.ts';
import { type ChildMeta, childId, describeChild, metaDiffers, ownedChild, parseChildId } from './children.ts';
import { kube } from './errors.ts';

export interface KubeEnv {
  rbac: RbacAuthorizationV1Api;
}

export interface DesiredRole extends ChildMeta {
  secretSyncName: string;
  targetName: string;
}

type Id = { namespace: string; name: string };

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
      resources: ['secretsyncs/status'],
      resourceNames: [d.secretSyncName],
      verbs: ['get', 'patch'],
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

const body = (d: DesiredRole): V1Role => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  metadata: { name: d.name, namespace: d.namespace, labels: d.labels, ownerReferences: [d.owner] },
  rules: desiredRules(d),
});

export const roleManager: Manager<KubeEnv, Id, DesiredRole, V1Role> = {
  title: 'Role',
  recorded: {
    kind: 'Role',
    toRecord: (id) => ({ kind: 'Role', id: describeChild(id) }),
    fromRecord: (r) => parseChildId(r.id),
  },
  id: childId,
  describe: describeChild,
  read: (env, id) =>
    kube({ operation: 'GET Role', resource: describeChild(id) }, () => env.rbac.readNamespacedRole(id)).catch(
      (err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      },
    ),
  owned: (l, owner) => ownedChild(l.metadata, owner),
  create: (env, d) =>
    kube({ operation: 'POST Role', resource: describeChild(d) }, () =>
      env.rbac.createNamespacedRole({
        namespace: d.namespace,
        body: body(d),
        fieldManager: CONTROLLER_FIELD_MANAGER,
      }),
    ),
  diff: (d, l) =>
    normRules(l.rules) !== normRules(desiredRules(d)) || metaDiffers(l.metadata, d) ? ['role'] : [],
  update: (env, d) =>
    kube({ operation: 'APPLY Role', resource: describeChild(d) }, () =>
      env.rbac.patchNamespacedRole(
        { ...childId(d), body: body(d), fieldManager: CONTROLLER_FIELD_MANAGER, force: true },
        applyOptions,
      ),
    ),
  async delete(env, _l, id) {
    await kube({ operation: 'DELETE Role', resource: describeChild(id) }, () =>
      env.rbac.deleteNamespacedRole(id),
    );
  },
};
