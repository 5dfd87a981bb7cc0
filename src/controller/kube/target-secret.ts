import type { CoreV1Api } from '@kubernetes/client-node';
import { CONTROLLER_FIELD_MANAGER, httpStatus, isNotFound } from './apply.ts';

/**
 * The controller makes sure the target Secret exists — RBAC cannot authorize `create` by name, so
 * the function could not — without ever reading it: a create that answers 409 means it is there.
 * Typed Secrets are created with their required keys present and empty, as the API server demands.
 */
const REQUIRED_KEYS: Record<string, string[]> = {
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
  'kubernetes.io/basic-auth': ['username'],
};

/** Returns 'created' or 'exists'. */
export async function ensureTargetSecret(
  api: CoreV1Api,
  t: { namespace: string; name: string; type: string; labels: Record<string, string> },
): Promise<'created' | 'exists'> {
  const data = Object.fromEntries((REQUIRED_KEYS[t.type] ?? []).map((k) => [k, '']));
  try {
    await api.createNamespacedSecret({
      namespace: t.namespace,
      body: { metadata: { name: t.name, labels: t.labels }, type: t.type, data },
      fieldManager: CONTROLLER_FIELD_MANAGER,
    });
    return 'created';
  } catch (err) {
    if (httpStatus(err) === 409) return 'exists';
    throw err;
  }
}

/** deletionPolicy Delete: remove the Secret; true once it is gone. */
export async function deleteTargetSecret(api: CoreV1Api, namespace: string, name: string): Promise<boolean> {
  try {
    await api.deleteNamespacedSecret({ name, namespace });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  return true;
}
