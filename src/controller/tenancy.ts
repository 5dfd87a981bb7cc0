/**
 * Who may pull which AWS secret into which namespace. Default deny: in `tag` mode the AWS secret
 * must consent by listing the namespace in its `secretsync.io/namespaces` tag (comma- or
 * space-separated names or globs with `*`); `allow-all` is for single-tenant clusters.
 */
export const NAMESPACES_TAG = 'secretsync.io/namespaces';

export type TenancyMode = 'tag' | 'allow-all';

export type TenancyDecision = { allowed: true; why: string } | { allowed: false; why: string };

export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('[a-z0-9-]*')}$`);
  return re.test(value);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function decideTenancy(
  mode: TenancyMode,
  namespace: string,
  secret: { name: string; tags: Readonly<Record<string, string>> },
): TenancyDecision {
  if (mode === 'allow-all') return { allowed: true, why: 'tenancy mode allow-all' };
  const tag = secret.tags[NAMESPACES_TAG];
  if (tag === undefined) {
    return {
      allowed: false,
      why: `the AWS secret ${secret.name} has no ${NAMESPACES_TAG} tag; its owner must list namespace ${namespace} in it`,
    };
  }
  const patterns = tag.split(/[\s,]+/).filter(Boolean);
  const match = patterns.find((p) => globMatch(p, namespace));
  if (match) return { allowed: true, why: `the AWS secret's ${NAMESPACES_TAG} tag allows ${match}` };
  return {
    allowed: false,
    why: `the AWS secret ${secret.name}'s ${NAMESPACES_TAG} tag (${patterns.join(', ') || 'empty'}) does not include namespace ${namespace}`,
  };
}
