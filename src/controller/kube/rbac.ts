import type { RbacAuthorizationV1Api, V1PolicyRule, V1Role, V1RoleBinding } from '@kubernetes/client-node';
import { applyOptions, CONTROLLER_FIELD_MANAGER, isNotFound } from './apply.ts';

/**
 * The in-cluster half of a SecretSync's powers: a Role that lets the function's EKS identity get,
 * update and patch exactly the target Secret, and get/patch exactly its SecretSync's status
 * (get: the function reads its previous status to keep lastTransitionTime and the last good
 * version); a RoleBinding to the access entry's username. Applied server-side, only when different.
 */
export interface DesiredRbac {
  namespace: string;
  name: string;
  secretSyncName: string;
  targetName: string;
  username: string;
  labels: Record<string, string>;
}

export function desiredRules(d: DesiredRbac): V1PolicyRule[] {
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

const labelsMatch = (have: Record<string, string> | undefined, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => have?.[k] === v);

/** Returns true when it wrote. */
export async function ensureRbac(api: RbacAuthorizationV1Api, d: DesiredRbac): Promise<boolean> {
  let wrote = false;
  const role: V1Role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: d.name, namespace: d.namespace, labels: d.labels },
    rules: desiredRules(d),
  };
  const current = await api
    .readNamespacedRole({ name: d.name, namespace: d.namespace })
    .catch((e: unknown) => {
      if (isNotFound(e)) return undefined;
      throw e;
    });
  if (
    !current ||
    normRules(current.rules) !== normRules(role.rules) ||
    !labelsMatch(current.metadata?.labels, d.labels)
  ) {
    await api.patchNamespacedRole(
      {
        name: d.name,
        namespace: d.namespace,
        body: role,
        fieldManager: CONTROLLER_FIELD_MANAGER,
        force: true,
      },
      applyOptions,
    );
    wrote = true;
  }

  const binding: V1RoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: d.name, namespace: d.namespace, labels: d.labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: d.name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: d.username }],
  };
  const currentBinding = await api
    .readNamespacedRoleBinding({ name: d.name, namespace: d.namespace })
    .catch((e: unknown) => {
      if (isNotFound(e)) return undefined;
      throw e;
    });
  const subjectOk =
    currentBinding?.subjects?.length === 1 &&
    currentBinding.subjects[0]?.kind === 'User' &&
    currentBinding.subjects[0]?.name === d.username;
  if (
    !currentBinding ||
    !subjectOk ||
    currentBinding.roleRef.name !== d.name ||
    !labelsMatch(currentBinding.metadata?.labels, d.labels)
  ) {
    if (currentBinding && currentBinding.roleRef.name !== d.name) {
      // roleRef is immutable: replace the binding.
      await api.deleteNamespacedRoleBinding({ name: d.name, namespace: d.namespace });
    }
    await api.patchNamespacedRoleBinding(
      {
        name: d.name,
        namespace: d.namespace,
        body: binding,
        fieldManager: CONTROLLER_FIELD_MANAGER,
        force: true,
      },
      applyOptions,
    );
    wrote = true;
  }
  return wrote;
}

/** Returns true once both are confirmed gone. */
export async function deleteRbac(
  api: RbacAuthorizationV1Api,
  namespace: string,
  name: string,
): Promise<boolean> {
  for (const del of [
    () => api.deleteNamespacedRoleBinding({ name, namespace }),
    () => api.deleteNamespacedRole({ name, namespace }),
  ]) {
    try {
      await del();
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
  return true;
}
