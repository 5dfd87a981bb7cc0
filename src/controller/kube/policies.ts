// Reads what tenancy.ts decides on: the SecretSyncPolicies, and a Namespace's labels when some
// policy selects namespaces by label.

import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { isNotFound } from '../errors.ts';
import { needsNamespaceLabels, POLICY_API, policyGrants, type SecretSyncPolicy } from '../tenancy.ts';
import { kube } from './errors.ts';

/**
 * The SecretSyncPolicy that grants `namespace` the secret, if any: one cluster-wide list per call,
 * and the Namespace's labels only when some policy has a namespaceSelector. No CRD installed (404)
 * means no policies.
 */
export async function grantingPolicy(
  api: { custom: CustomObjectsApi; core: CoreV1Api },
  namespace: string,
  secret: { name: string; arn: string },
): Promise<string | undefined> {
  let policies: SecretSyncPolicy[];
  try {
    const list = (await kube({ operation: 'LIST SecretSyncPolicies' }, () =>
      api.custom.listClusterCustomObject({ ...POLICY_API }),
    )) as { items?: SecretSyncPolicy[] };
    policies = list.items ?? [];
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  if (policies.length === 0) return undefined;
  let labels: Record<string, string> | undefined;
  if (needsNamespaceLabels(policies)) {
    const ns = await kube({ operation: 'GET Namespace', resource: namespace }, () =>
      api.core.readNamespace({ name: namespace }),
    );
    labels = ns.metadata?.labels ?? {};
  }
  return policyGrants(policies, namespace, labels, secret);
}
