import type { CoreV1Api } from '@kubernetes/client-node';
import { CONTROLLER_FIELD_MANAGER, httpStatus, isNotFound } from './apply.ts';

/**
 * The controller makes sure the target Secret exists — RBAC cannot authorize `create` by name, so
 * the function could not — without ever reading it: a create that answers 409 means it is there.
 * Typed Secrets are created with their required keys present and empty, as the API server demands.
 */
const REQUIRED_KEYS: Record<string, string[]> = {
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/basic-auth': ['username'],
};

/** 'created' (with the new Secret's uid) or 'exists'. */
export async function ensureTargetSecret(
  api: CoreV1Api,
  t: { namespace: string; name: string; type: string; labels: Record<string, string> },
): Promise<{ outcome: 'created'; uid: string | undefined } | { outcome: 'exists' }> {
  const data = Object.fromEntries((REQUIRED_KEYS[t.type] ?? []).map((k) => [k, '']));
  try {
    const created = await api.createNamespacedSecret({
      namespace: t.namespace,
      body: { metadata: { name: t.name, labels: t.labels }, type: t.type, data },
      fieldManager: CONTROLLER_FIELD_MANAGER,
    });
    return { outcome: 'created', uid: created.metadata?.uid };
  } catch (err) {
    if (httpStatus(err) === 409) return { outcome: 'exists' };
    throw err;
  }
}

/**
 * Deletes the target Secret only if it is the one the controller created (uid precondition): a
 * SecretSync must not become a way to delete a Secret its author could not delete. Returns what happened.
 */
export async function deleteTargetSecret(
  api: CoreV1Api,
  namespace: string,
  name: string,
  uid: string | undefined,
): Promise<'deleted' | 'gone' | 'not-ours'> {
  if (!uid) return 'not-ours';
  try {
    await api.deleteNamespacedSecret({ name, namespace, body: { preconditions: { uid } } });
    return 'deleted';
  } catch (err) {
    if (isNotFound(err)) return 'gone';
    // 409: the precondition failed — a different Secret of that name now; leave it.
    if (httpStatus(err) === 409) return 'not-ours';
    throw err;
  }
}
