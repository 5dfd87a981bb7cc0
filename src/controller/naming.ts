// Names and ownership tags of everything provisioned for one SecretSync. Pure: the same SecretSync
// under the same settings always gets the same names. The identity of the cluster is its ARN: EKS
// cluster names are unique per region only, while IAM is global, so two clusters called `prod` in two
// regions of one account must never share (or claim) a role, a function or a rule.

import { createHash } from 'node:crypto';

/** The SecretSync a resource belongs to. `clusterArn` is the EKS cluster the controller serves. */
export interface OwnerRef {
  clusterArn: string;
  namespace: string;
  name: string;
}

/** An OwnerRef plus the SecretSync's uid, which tells apart a deleted and re-created SecretSync. */
export interface Owner extends OwnerRef {
  uid: string;
}

export interface NamingOptions {
  /** Start of every AWS name; the controller's own IAM policy is scoped to `<prefix>-*`. */
  prefix?: string;
  /** IAM path of the roles; the controller's own IAM policy is scoped to it. */
  iamPath?: string;
}

export interface ResourceNames {
  /** `<prefix>-<namespace>-<name>` cut to fit, then `-<8 hex>`: at most 64 characters, [a-z0-9-]. */
  stem: string;
  roleName: string;
  rolePath: string;
  functionName: string;
  ruleName: string;
  logGroupName: string;
  /** Kubernetes username of the function's EKS access entry. */
  eksUsername: string;
  /** Name of the in-cluster Role and RoleBinding (a DNS-1123 subdomain). */
  rbacName: string;
}

export const DEFAULT_PREFIX = 'secretsync';
export const DEFAULT_IAM_PATH = '/secretsync/';

// 64 is the limit of all three AWS names (IAM role, Lambda function, EventBridge rule).
const MAX_NAME = 64;
const HASH_HEX = 8;
// Short enough that at least 34 characters of `<namespace>-<name>` stay readable.
const PREFIX = /^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$/;
const IAM_PATH = /^\/([\x21-\x7e]{0,510}\/)?$/;

export function resourceNames(owner: OwnerRef, options: NamingOptions = {}): ResourceNames {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (!PREFIX.test(prefix)) {
    throw new Error(
      `name prefix ${JSON.stringify(prefix)} must be 1-20 of [a-z0-9-], not starting or ending with -`,
    );
  }
  const rolePath = options.iamPath ?? DEFAULT_IAM_PATH;
  if (!IAM_PATH.test(rolePath)) {
    throw new Error(
      `IAM path ${JSON.stringify(rolePath)} must start and end with / (for example /secretsync/)`,
    );
  }
  const stem = stemOf(prefix, owner);
  return {
    stem,
    roleName: stem,
    rolePath,
    functionName: stem,
    ruleName: stem,
    logGroupName: `/aws/lambda/${stem}`,
    eksUsername: `secretsync:${owner.namespace}:${owner.name}`,
    // Role and RoleBinding live in the SecretSync's namespace, so the name alone is unique there; the
    // CRD keeps names ≤ 63 characters, so this stays well inside 253.
    rbacName: `${prefix}-${owner.name}`,
  };
}

// The hash covers the cluster ARN, namespace and name, so two clusters (or namespaces) sharing an
// account never collide — same-named clusters in two regions included —, and neither do two long names cut to the same readable part. The readable part
// only helps humans find things in the console; uniqueness comes from the hash alone.
function stemOf(prefix: string, owner: OwnerRef): string {
  const hash = createHash('sha256')
    .update(`${owner.clusterArn}/${owner.namespace}/${owner.name}`)
    .digest('hex')
    .slice(0, HASH_HEX);
  // Lambda function names allow no dots; namespaces and names are otherwise [a-z0-9-] already.
  const readable = `${prefix}-${owner.namespace}-${owner.name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const room = MAX_NAME - HASH_HEX - 1;
  return `${readable.slice(0, room).replace(/-+$/, '')}-${hash}`;
}

/** The ARN of an EKS cluster: arn:<partition>:eks:<region>:<account>:cluster/<name>. */
export function clusterArn(c: {
  partition: string;
  region: string;
  accountId: string;
  name: string;
}): string {
  return `arn:${c.partition}:eks:${c.region}:${c.accountId}:cluster/${c.name}`;
}

const CLUSTER_ARN = /^arn:([a-z-]+):eks:([a-z0-9-]+):(\d{12}):cluster\/(.+)$/;

/** Region and name of a cluster ARN. */
export function parseClusterArn(arn: string): { region: string; name: string } {
  const m = CLUSTER_ARN.exec(arn);
  if (!m) throw new Error(`not an EKS cluster ARN: ${arn}`);
  return { region: m[2] as string, name: m[4] as string };
}

export const TAG = {
  /** The EKS cluster's ARN. */
  cluster: 'secretsync.io/cluster',
  namespace: 'secretsync.io/namespace',
  name: 'secretsync.io/name',
  uid: 'secretsync.io/uid',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

export const MANAGED_BY = 'secretsync';

export function ownershipTags(owner: Owner): Record<string, string> {
  return {
    [TAG.cluster]: owner.clusterArn,
    [TAG.namespace]: owner.namespace,
    [TAG.name]: owner.name,
    [TAG.uid]: owner.uid,
    [TAG.managedBy]: MANAGED_BY,
  };
}

/**
 * Whether a resource carrying `tags` belongs to this SecretSync: cluster ARN, namespace and name must
 * all match. The uid is deliberately not compared: a resource left by an earlier SecretSync of the
 * same namespace/name in the same cluster is adopted (and re-tagged with the new uid by the ensure's
 * tag diff). That SecretSync is gone — its finalizer only lets it go after cleanup, so a leftover
 * means cleanup was interrupted or skipped — and the name is derived from ours, so nobody else can
 * claim it. A resource of another cluster, namespace or name, or one without our tags, is never
 * touched.
 */
export function ownedBy(tags: Readonly<Record<string, string>> | undefined, owner: OwnerRef): boolean {
  if (tags === undefined) return false;
  return (
    tags[TAG.cluster] === owner.clusterArn &&
    tags[TAG.namespace] === owner.namespace &&
    tags[TAG.name] === owner.name
  );
}

/** Tag keys this controller manages on a resource: others' tags (cost centres, tag policies) are left alone. */
export function isOurTagKey(key: string): boolean {
  return key.startsWith('secretsync.io/') || key === TAG.managedBy;
}
