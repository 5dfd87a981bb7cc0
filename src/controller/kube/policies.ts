// Reads what tenancy.ts decides on: the SecretSyncPolicies, and a Namespace's labels when some
// policy selects namespaces by label.

import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { isNotFound } from '../errors.ts';
import { needsNamespaceLabels, POLICY_API, policyGrants, type SecretSyncPolicy } from '../tenancy.ts';
import { kube } from './errors.ts';

/** What one inventory pass read once for all its SecretSyncs (a pass reads afresh: no cache). */
export interface PolicyReads {
  policies?: Promise<SecretSyncPolicy[]>;
  labels: Map<string, Promise<Record<string, string>>>;
}

/**
 * The SecretSyncPolicy that grants `namespace` the secret, if any: one cluster-wide list per call
 * (or per `reads`), and the Namespace's labels only when some policy has a namespaceSelector. No CRD
 * installed (404) means no policies.
 */
export async function grantingPolicy(
  api: { custom: CustomObjectsApi; core: CoreV1Api },
  namespace: string,
  secret: { name: string; arn: string },
  reads: PolicyReads = { labels: new Map() },
): Promise<string | undefined> {
  reads.policies ??= kube({ operation: 'LIST SecretSyncPolicies' }, () =>
    api.custom.listClusterCustomObject({ ...POLICY_API }),
  ).then(
    (list) => (list as { items?: SecretSyncPolicy[] }).items ?? [],
    (err: unknown) => {
      if (isNotFound(err)) return [];
      throw err;
    },
  );
  const policies = await reads.policies;
  if (policies.length === 0) return undefined;
  let labels: Record<string, string> | undefined;
  if (needsNamespaceLabels(policies)) {
    let read = reads.labels.get(namespace);
    if (!read) {
      read = kube({ operation: 'GET Namespace', resource: namespace }, () =>
        api.core.readNamespace({ name: namespace }),
      ).then((ns) => ns.metadata?.labels ?? {});
      reads.labels.set(namespace, read);
    }
    labels = await read;
  }
  return policyGrants(policies, namespace, labels, secret);
}
