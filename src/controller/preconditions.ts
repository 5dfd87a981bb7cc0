// What must hold before a pass provisions anything: the cluster authenticates IAM principals through
// access entries, the AWS secret exists in this account and is not being deleted, and tenancy lets
// this namespace have it. Each failure is a Stop with its reason; a denied tenancy is returned, as
// it also tears down what was provisioned.

import type { SecretSync } from '../shared/secretsync.generated.ts';
import type { AwsClients } from './aws/clients.ts';
import { SecretNotFoundError } from './aws/errors.ts';
import { type ResolvedSource, resolveSource } from './aws/source.ts';
import type { ReconcileDeps } from './deps.ts';
import { grantingPolicy, type PolicyReads } from './kube/policies.ts';
import { SLOW_RETRY_MS, Stop } from './outcome.ts';
import { decideTenancy, tagGrants } from './tenancy.ts';

const ACCESS_ENTRY_MODES = new Set(['API', 'API_AND_CONFIG_MAP']);

export interface ClusterAccessState {
  endpoint: string;
  certificateAuthorityData: string;
}

/**
 * The cluster as the last good DescribeCluster saw it; Stop when it cannot serve access entries.
 * A failing DescribeCluster sets `error` only once it counts as unavailable (cluster-state.ts).
 */
export function checkCluster(deps: ReconcileDeps): ClusterAccessState {
  const cluster = deps.cluster();
  const name = deps.settings.clusterName;
  if (cluster.error !== undefined) {
    // The first failure's time, not the latest: the message (and so the status) stays put while it fails.
    throw new Stop(
      'ClusterUnavailable',
      `DescribeCluster ${name} failing since ${cluster.failingSince}: ${cluster.error}`,
      deps.clusterRecheckMs,
    );
  }
  if (!cluster.endpoint || !cluster.certificateAuthorityData) {
    throw new Stop(
      'ClusterUnavailable',
      `DescribeCluster ${name} gave no endpoint or certificate authority`,
      deps.clusterRecheckMs,
    );
  }
  const mode = cluster.authenticationMode ?? 'CONFIG_MAP';
  if (!ACCESS_ENTRY_MODES.has(mode)) {
    throw new Stop(
      'ClusterAuthModeUnsupported',
      `cluster ${name} uses authentication mode ${mode}; secretsync needs EKS access entries: ` +
        'aws eks update-cluster-config --name <cluster> --access-config authenticationMode=API_AND_CONFIG_MAP',
      deps.clusterRecheckMs,
    );
  }
  return { endpoint: cluster.endpoint, certificateAuthorityData: cluster.certificateAuthorityData };
}

/** The AWS secret (metadata only: DescribeSecret, never GetSecretValue), or Stop. */
export async function checkSource(
  deps: ReconcileDeps,
  ss: SecretSync,
  clients: AwsClients,
  region: string,
): Promise<ResolvedSource> {
  const secretId = ss.spec.source.secretId;
  const source = await resolveSource(clients.secretsManager, secretId).catch((err: unknown) => {
    if (err instanceof SecretNotFoundError)
      throw new Stop('SecretNotFound', `AWS secret ${secretId} was not found in ${region}`, SLOW_RETRY_MS);
    throw err;
  });
  const account = source.arn.split(':')[4];
  if (account !== deps.settings.accountId) {
    throw new Stop(
      'CrossAccountUnsupported',
      `AWS secret ${source.arn} is in account ${account}; its change events go to that account's event bus, so only secrets of account ${deps.settings.accountId} can be synced`,
      SLOW_RETRY_MS,
    );
  }
  return source;
}

/** Why tenancy denies this namespace the secret, or undefined when it allows. */
export async function tenancyDenial(
  deps: Pick<ReconcileDeps, 'tenancy' | 'kube'>,
  namespace: string,
  source: ResolvedSource,
  reads?: PolicyReads,
): Promise<string | undefined> {
  // The secret's tag first; the SecretSyncPolicies are read only when the tag does not allow.
  const grantedByPolicy =
    deps.tenancy === 'tag' && !tagGrants(namespace, source.tags)
      ? await grantingPolicy(deps.kube, namespace, source, reads)
      : undefined;
  const decision = decideTenancy(deps.tenancy, namespace, source, grantedByPolicy);
  return decision.allowed ? undefined : decision.why;
}

/**
 * mergePolicy Replace makes the target exactly this SecretSync's keys, erasing what another SecretSync
 * writes there: refused while one does (the function refuses it too, from the Secret's field managers).
 * Retried every minute: the other one going away does not queue this one.
 */
export function checkTargetFree(deps: ReconcileDeps, ss: SecretSync): void {
  if (ss.spec.mergePolicy !== 'Replace') return;
  const target = ss.spec.target?.name ?? ss.metadata.name;
  const others = deps.targetedBy?.(ss.metadata.namespace!, target, ss.metadata.name!) ?? [];
  if (others.length === 0) return;
  throw new Stop(
    'TargetConflict',
    `mergePolicy Replace would erase what SecretSync ${others.join(', ')} writes into Secret ${target}; use Merge (each SecretSync then writes and removes only its own keys), or another target`,
    60_000,
  );
}

/** Stop when the secret is scheduled for deletion (it resolves, but the function cannot read it). */
export function checkNotDeleted(source: ResolvedSource): void {
  if (source.deletedDate) {
    throw new Stop(
      'SecretScheduledForDeletion',
      `AWS secret ${source.arn} is scheduled for deletion (since ${source.deletedDate.toISOString()}); restore it to resume syncing`,
      SLOW_RETRY_MS,
    );
  }
}
