// The target Secret. The controller makes sure it exists — RBAC cannot authorize `create` by name,
// so the function could not — without ever reading it (it holds no `get` on Secrets): what it knows
// of the Secret is its record in status (name and, when the controller created it, uid), which is
// what `read` answers. A create that answers 409 means it exists and was not made by us; a Secret
// is deleted only with its recorded uid as precondition, so a SecretSync never becomes a way to
// delete a Secret its author could not. Typed Secrets are created with their required keys present
// and empty, as the API server demands.

import type { CoreV1Api } from '@kubernetes/client-node';
import { NotOursError } from '../errors.ts';
import type { Manager } from '../manager.ts';
import { CONTROLLER_FIELD_MANAGER } from './apply.ts';
import { describeChild, parseChildId } from './children.ts';
import { AlreadyExistsError, KubeConflictError, kube } from './errors.ts';

const REQUIRED_KEYS: Record<string, string[]> = {
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/basic-auth': ['username'],
};

export interface TargetId {
  namespace: string;
  name: string;
  /** Uid of the Secret the controller created; absent when it existed before. */
  uid?: string | undefined;
  /** Recorded, and not reported missing by the function since. */
  known: boolean;
}

export interface DesiredTarget extends TargetId {
  type: string;
  labels: Record<string, string>;
}

export interface KnownTarget {
  namespace: string;
  name: string;
  uid?: string | undefined;
}

export const targetSecretManager: Manager<{ core: CoreV1Api }, TargetId, DesiredTarget, KnownTarget> = {
  title: 'Secret',
  recorded: {
    kind: 'Secret',
    toRecord: (id) => ({ kind: 'Secret', id: describeChild(id), ...(id.uid ? { uid: id.uid } : {}) }),
    fromRecord: (r) => ({ ...parseChildId(r.id), uid: r.uid, known: true }),
  },
  id: (d) => ({ namespace: d.namespace, name: d.name, uid: d.uid, known: d.known }),
  describe: describeChild,
  read: async (_env, id) => (id.known ? { namespace: id.namespace, name: id.name, uid: id.uid } : undefined),
  async create(env, d) {
    const data = Object.fromEntries((REQUIRED_KEYS[d.type] ?? []).map((k) => [k, '']));
    try {
      const created = await kube({ operation: 'POST Secret', resource: describeChild(d) }, () =>
        env.core.createNamespacedSecret({
          namespace: d.namespace,
          body: { metadata: { name: d.name, labels: d.labels }, type: d.type, data },
          fieldManager: CONTROLLER_FIELD_MANAGER,
        }),
      );
      return { namespace: d.namespace, name: d.name, uid: created.metadata?.uid };
    } catch (err) {
      if (err instanceof AlreadyExistsError) return { namespace: d.namespace, name: d.name };
      throw err;
    }
  },
  // Its data is the function's to write.
  diff: () => [],
  update: async () => undefined,
  async delete(env, l) {
    if (!l.uid) throw new NotOursError('Secret', describeChild(l), 'existed before this SecretSync');
    try {
      await kube({ operation: 'DELETE Secret', resource: describeChild(l) }, () =>
        env.core.deleteNamespacedSecret({
          name: l.name,
          namespace: l.namespace,
          body: { preconditions: { uid: l.uid } },
        }),
      );
    } catch (err) {
      // The precondition failed: a different Secret of that name now; leave it.
      if (err instanceof KubeConflictError)
        throw new NotOursError('Secret', describeChild(l), 'is not the one this SecretSync created');
      throw err;
    }
  },
  deleteIsFinal: true,
};
