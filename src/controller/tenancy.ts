/**
 * Who may pull which AWS secret into which namespace. Default deny: in `tag` mode the AWS secret
 * must consent by listing the namespace in its `secretsync.io/namespaces` tag (comma- or
 * space-separated names or globs with `*`), or a cluster admin grants it with a cluster-scoped
 * SecretSyncPolicy; `allow-all` is for single-tenant clusters. Everything here is pure: the
 * reconciler reads the policies and the namespace's labels and passes them in.
 */
export const NAMESPACES_TAG = 'secretsync.io/namespaces';

export type TenancyMode = 'tag' | 'allow-all';

export type TenancyDecision = { allowed: true; why: string } | { allowed: false; why: string };

export const POLICY_API = {
  group: 'secretsync.io',
  version: 'v1alpha1',
  plural: 'secretsyncpolicies',
} as const;

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** A SecretSyncPolicy as the API server returns it (crds/secretsync.io_secretsyncpolicies.yaml). */
export interface SecretSyncPolicy {
  metadata: { name?: string };
  spec: {
    namespaces?: string[];
    namespaceSelector?: LabelSelector;
    secrets: string[];
    regions?: string[];
    accounts?: string[];
  };
}

/** The AWS secret as tenancy sees it: name, full ARN (region and account are read from it), tags. */
export interface TenancySecret {
  name: string;
  arn: string;
  tags: Readonly<Record<string, string>>;
}

/** Namespace globs: `*` stands for any run of DNS-label characters. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('[a-z0-9-]*')}$`);
  return re.test(value);
}

/** Secret globs: `*` stands for any run of characters, `/` and `:` included. */
export function secretGlobMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`, 's');
  return re.test(value);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** metav1.LabelSelector semantics: every matchLabels entry and every requirement holds; {} matches all. */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    const values = r.values ?? [];
    const ok =
      r.operator === 'In'
        ? has && values.includes(labels[r.key] as string)
        : r.operator === 'NotIn'
          ? !has || !values.includes(labels[r.key] as string)
          : r.operator === 'Exists'
            ? has
            : r.operator === 'DoesNotExist'
              ? !has
              : false; // an operator we do not know grants nothing
    if (!ok) return false;
  }
  return true;
}

/** True when some policy needs the namespace's labels (the reconciler then reads the Namespace). */
export const needsNamespaceLabels = (policies: readonly SecretSyncPolicy[]) =>
  policies.some((p) => p.spec?.namespaceSelector !== undefined);

/**
 * The name of the first SecretSyncPolicy (by name) that grants `namespace` the secret, or undefined.
 * A policy grants when the namespace is listed (name or glob) or its labels match namespaceSelector,
 * the secret's name or full ARN matches one of `secrets`, and region and account match when listed.
 * `nsLabels` undefined (not read) means no selector matches.
 */
export function policyGrants(
  policies: readonly SecretSyncPolicy[],
  namespace: string,
  nsLabels: Readonly<Record<string, string>> | undefined,
  secret: { name: string; arn: string },
): string | undefined {
  const [, , , region = '', account = ''] = secret.arn.split(':');
  const sorted = [...policies].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  for (const p of sorted) {
    const spec = p.spec;
    if (!spec) continue;
    const byName = (spec.namespaces ?? []).some((g) => globMatch(g, namespace));
    const bySelector =
      spec.namespaceSelector !== undefined &&
      nsLabels !== undefined &&
      selectorMatches(spec.namespaceSelector, nsLabels);
    if (!byName && !bySelector) continue;
    if (!(spec.secrets ?? []).some((g) => secretGlobMatch(g, secret.name) || secretGlobMatch(g, secret.arn)))
      continue;
    if (spec.regions?.length && !spec.regions.includes(region)) continue;
    if (spec.accounts?.length && !spec.accounts.includes(account)) continue;
    return p.metadata?.name ?? '';
  }
  return undefined;
}

/** The tag pattern that lets `namespace` sync the secret, or undefined. */
export function tagGrants(namespace: string, tags: Readonly<Record<string, string>>): string | undefined {
  const tag = tags[NAMESPACES_TAG];
  if (tag === undefined) return undefined;
  return tag
    .split(/[\s,]+/)
    .filter(Boolean)
    .find((p) => globMatch(p, namespace));
}

/**
 * The decision. `grantedByPolicy` is what policyGrants answered (the reconciler asks only when the
 * tag does not allow): allowed when the tag allows OR a policy grants.
 */
export function decideTenancy(
  mode: TenancyMode,
  namespace: string,
  secret: { name: string; tags: Readonly<Record<string, string>> },
  grantedByPolicy?: string,
): TenancyDecision {
  if (mode === 'allow-all') return { allowed: true, why: 'tenancy mode allow-all' };
  const match = tagGrants(namespace, secret.tags);
  if (match) return { allowed: true, why: `the AWS secret's ${NAMESPACES_TAG} tag allows ${match}` };
  if (grantedByPolicy !== undefined)
    return { allowed: true, why: `SecretSyncPolicy ${grantedByPolicy} grants namespace ${namespace}` };
  const tag = secret.tags[NAMESPACES_TAG];
  const patterns = (tag ?? '').split(/[\s,]+/).filter(Boolean);
  const problem =
    tag === undefined
      ? `the AWS secret ${secret.name} has no ${NAMESPACES_TAG} tag`
      : `the AWS secret ${secret.name}'s ${NAMESPACES_TAG} tag (${patterns.join(', ') || 'empty'}) does not include namespace ${namespace}`;
  return {
    allowed: false,
    why:
      `${problem}, and no SecretSyncPolicy grants namespace ${namespace} this secret. To allow it, ` +
      `the secret's owner lists namespace ${namespace} in its ${NAMESPACES_TAG} tag, or a cluster admin ` +
      'creates a SecretSyncPolicy granting the namespace (by name or label selector) this secret (by name or ARN glob)',
  };
}
