// The function's configuration: a few environment variables the controller sets on each Lambda (what
// it needs to reach the API server), and the spec it reads from its SecretSync at run time. The
// names are exported so the controller builds the environment from the same constants (see toEnv).
// Everything is validated up front and every problem reported at once, so a bad configuration reads
// as one Synced=False/InvalidConfiguration rather than a string of retries.

import { X509Certificate } from 'node:crypto';
import { quoteKey, SyncError } from './errors.ts';
import { isValidSecretKey, type KeyMapping, SECRET_KEY_RULE } from './payload.ts';
import {
  MAX_TEMPLATE_LENGTH,
  MAX_TEMPLATES,
  parseTemplate,
  type TargetTemplate,
  type TemplatePart,
} from './template.ts';

export const ENV = {
  secretArn: 'SECRETSYNC_SECRET_ARN',
  clusterName: 'SECRETSYNC_CLUSTER_NAME',
  apiEndpoint: 'SECRETSYNC_API_ENDPOINT',
  ca: 'SECRETSYNC_CA',
  namespace: 'SECRETSYNC_NAMESPACE',
  syncName: 'SECRETSYNC_SYNC_NAME',
} as const;

export const MERGE_POLICIES = ['Merge', 'Replace'] as const;
export type MergePolicy = (typeof MERGE_POLICIES)[number];

export const DEFAULT_VERSION_STAGE = 'AWSCURRENT';

/**
 * What the function needs before it can reach the API server, from its environment: the secret its
 * role may read, the cluster, and which SecretSync it serves. Everything else (stage, mapping, merge
 * policy, target) it reads from that SecretSync at run time (SyncSpec): Lambda's environment holds 4 KB,
 * and a spec change then needs no function update.
 */
export interface FunctionConfig {
  secretArn: string;
  /** The secret's region, from its ARN: the function, its role and the secret share it (DESIGN §4). */
  region: string;
  clusterName: string;
  /** https origin (plus optional path prefix), without a trailing slash. */
  apiEndpoint: string;
  /** The cluster CA as PEM text. */
  caPem: string;
  namespace: string;
  syncName: string;
}

/** What one run applies, read from the SecretSync: its spec and the generation it belongs to. */
export interface SyncSpec {
  generation: number | undefined;
  targetName: string;
  versionStage: string;
  /** undefined = copy every key under its own name. */
  keyMapping: KeyMapping[] | undefined;
  /** undefined = no template: the (mapped) AWS keys are what the Secret gets. */
  template: TargetTemplate | undefined;
  mergePolicy: MergePolicy;
}

// Same shapes as the CRD's validation rules, so what the API server admitted loads here.
export const SECRET_ARN =
  /^arn:aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f)?:secretsmanager:([a-z]{2}(-[a-z]+)+-[0-9]+):[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
const VERSION_STAGE = /^[A-Za-z0-9_.@-]{1,256}$/;
// EKS: letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters.
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// The CRD's limits on spec.target.keys.
const MAX_MAPPINGS = 100;
const MAX_FROM_LENGTH = 256;

// Values are configuration, not secrets, but may be long or odd: show a bounded, quoted form.
const shown = (value: string) => quoteKey(value);

function invalid(problems: string[], what: string): SyncError {
  return new SyncError('InvalidConfiguration', `invalid ${what}: ${problems.join('; ')}`);
}

export function loadConfig(env: Readonly<Record<string, string | undefined>>): FunctionConfig {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name} is missing`);
    return value ?? '';
  };
  const check = (name: string, value: string, ok: boolean, rule: string) => {
    if (value !== '' && !ok) problems.push(`${name} ${rule} (got ${shown(value)})`);
  };

  const secretArn = required(ENV.secretArn);
  const arnMatch = SECRET_ARN.exec(secretArn);
  check(ENV.secretArn, secretArn, arnMatch !== null, 'must be a full Secrets Manager secret ARN');

  const clusterName = required(ENV.clusterName);
  check(ENV.clusterName, clusterName, CLUSTER_NAME.test(clusterName), 'must be an EKS cluster name');

  const apiEndpoint = parseEndpoint(required(ENV.apiEndpoint), problems);
  const caPem = parseCa(required(ENV.ca), problems);

  const namespace = required(ENV.namespace);
  check(ENV.namespace, namespace, isDns1123Label(namespace), 'must be a namespace name (DNS-1123 label)');
  const syncName = required(ENV.syncName);
  // 63: the CRD's limit on a SecretSync's name.
  check(
    ENV.syncName,
    syncName,
    isDns1123Subdomain(syncName, 63),
    'must be a DNS-1123 subdomain of ≤63 characters',
  );

  if (problems.length > 0) throw invalid(problems, 'function configuration');
  return { secretArn, region: arnMatch?.[2] ?? '', clusterName, apiEndpoint, caPem, namespace, syncName };
}

/** The inverse of loadConfig: the environment the controller sets on the function. */
export function toEnv(config: Omit<FunctionConfig, 'region'>): Record<string, string> {
  return {
    [ENV.secretArn]: config.secretArn,
    [ENV.clusterName]: config.clusterName,
    [ENV.apiEndpoint]: config.apiEndpoint,
    [ENV.ca]: compactCa(config.caPem),
    [ENV.namespace]: config.namespace,
    [ENV.syncName]: config.syncName,
  };
}

/** The SecretSync as the function reads it (GET, under its Role's `get` on exactly this name). */
export interface SecretSyncRead {
  metadata: { name?: string; generation?: number };
  spec?: {
    source?: { versionStage?: string };
    target?: { name?: string; keys?: unknown; template?: unknown };
    mergePolicy?: string;
  };
}

/** The run's spec; the API server admitted it against the CRD, so a problem here is a skew, said plainly. */
export function specOf(ss: SecretSyncRead, syncName: string): SyncSpec {
  const problems: string[] = [];
  const spec = ss.spec ?? {};
  const versionStage = spec.source?.versionStage ?? DEFAULT_VERSION_STAGE;
  if (!VERSION_STAGE.test(versionStage))
    problems.push(`spec.source.versionStage must be a staging label (got ${shown(versionStage)})`);
  const targetName = spec.target?.name ?? syncName;
  if (!isDns1123Subdomain(targetName))
    problems.push(`spec.target.name must be a DNS-1123 subdomain (got ${shown(targetName)})`);
  const mergePolicy = spec.mergePolicy ?? 'Merge';
  if (!isMergePolicy(mergePolicy))
    problems.push(`spec.mergePolicy must be ${MERGE_POLICIES.join(' or ')} (got ${shown(mergePolicy)})`);
  const keyMapping = parseKeyMapping(spec.target?.keys, problems);
  const template = parseTargetTemplate(spec.target?.template, problems);
  if (template !== undefined && !template.copyKeys && keyMapping !== undefined)
    problems.push(
      'spec.target.keys is set but spec.target.template.copyKeys is not: nothing would be copied',
    );
  // As the CRD: a key both copied and templated would have two writers in one spec.
  const both = (keyMapping ?? []).map((m) => m.to ?? m.from).filter((k) => template?.data.has(k));
  if (template !== undefined && both.length > 0)
    problems.push(
      `a Secret key is both copied by target.keys and written by target.template.data: ${both.map(quoteKey).join(', ')}`,
    );
  if (problems.length > 0) throw invalid(problems, 'SecretSync spec');
  return {
    generation: ss.metadata.generation,
    targetName,
    versionStage,
    keyMapping,
    template,
    mergePolicy: mergePolicy as MergePolicy,
  };
}

export function isDns1123Label(name: string): boolean {
  return name.length <= 63 && DNS1123_LABEL.test(name);
}

export function isDns1123Subdomain(name: string, maxLength = 253): boolean {
  return name.length <= maxLength && DNS1123_SUBDOMAIN.test(name);
}

function isMergePolicy(value: string): value is MergePolicy {
  return (MERGE_POLICIES as readonly string[]).includes(value);
}

function parseEndpoint(value: string, problems: string[]): string {
  if (value === '') return '';
  const name = ENV.apiEndpoint;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${name} must be an https URL (got ${quoteKey(value)})`);
    return '';
  }
  if (url.protocol !== 'https:') problems.push(`${name} must be an https URL (got ${quoteKey(value)})`);
  // Credentials, queries and fragments have no meaning for an API server base URL; refusing them
  // beats silently dropping them.
  else if (url.username || url.password || url.search || url.hash) {
    problems.push(`${name} must be a plain https base URL without credentials, query or fragment`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * The CA as compact as an environment variable allows: each certificate's DER in base64 (the PEM
 * body without armour and line breaks), comma-separated. About a quarter of the base64-of-PEM
 * DescribeCluster returns, which matters under Lambda's 4 KB limit.
 */
export function compactCa(pem: string): string {
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  return blocks.map((m) => (m[1] ?? '').replace(/\s+/g, '')).join(',');
}

function parseCa(value: string, problems: string[]): string {
  if (value === '') return '';
  const name = ENV.ca;
  const certs = value.split(',').map((c) => c.trim());
  if (certs.some((c) => !BASE64.test(c))) {
    problems.push(`${name} must be comma-separated base64 DER certificates`);
    return '';
  }
  const pem = certs
    .map((c) => `-----BEGIN CERTIFICATE-----\n${c.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`)
    .join('');
  try {
    // Parses the first certificate; a corrupt CA otherwise surfaces later as a puzzling TLS error.
    new X509Certificate(pem);
  } catch {
    problems.push(`${name} does not decode to a certificate`);
    return '';
  }
  return pem;
}

function parseKeyMapping(raw: unknown, problems: string[]): KeyMapping[] | undefined {
  const name = 'spec.target.keys';
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) {
    problems.push(`${name} must be a list of {from, to?}`);
    return undefined;
  }
  // An empty selection would write no keys (and with Replace, empty the Secret): almost certainly
  // a mistake, and "omit the list" already means "all keys".
  if (raw.length === 0) problems.push(`${name} must list at least one key; omit it to copy every key`);
  if (raw.length > MAX_MAPPINGS) problems.push(`${name} has ${raw.length} entries, at most ${MAX_MAPPINGS}`);

  const mapping: KeyMapping[] = [];
  const targets = new Set<string>();
  for (const [i, entry] of raw.entries()) {
    const at = `${name}[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`${at} must be an object {from, to?}`);
      continue;
    }
    const { from, to, ...rest } = entry as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) problems.push(`${at} has unknown field ${extra.map(quoteKey).join(', ')}`);
    if (typeof from !== 'string' || from === '' || from.length > MAX_FROM_LENGTH) {
      problems.push(`${at}.from must be a string of 1-${MAX_FROM_LENGTH} characters`);
      continue;
    }
    if (to !== undefined && typeof to !== 'string') {
      problems.push(`${at}.to must be a string`);
      continue;
    }
    const target = to ?? from;
    if (!isValidSecretKey(target)) {
      problems.push(`${at} maps to ${quoteKey(target)}, not a valid Secret key (${SECRET_KEY_RULE})`);
    } else if (targets.has(target)) {
      problems.push(`${at} maps to ${quoteKey(target)} again; each Secret key may appear once`);
    }
    targets.add(target);
    mapping.push(to === undefined ? { from } : { from, to });
  }
  return mapping;
}

function parseTargetTemplate(raw: unknown, problems: string[]): TargetTemplate | undefined {
  const name = 'spec.target.template';
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`${name} must be an object {data, copyKeys?}`);
    return undefined;
  }
  const { data, copyKeys = false, ...rest } = raw as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) problems.push(`${name} has unknown field ${extra.map(quoteKey).join(', ')}`);
  if (typeof copyKeys !== 'boolean') problems.push(`${name}.copyKeys must be true or false`);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    problems.push(`${name}.data must be a map of Secret key to template`);
    return undefined;
  }
  const entries = Object.entries(data as Record<string, unknown>);
  if (entries.length === 0) problems.push(`${name}.data must have at least one key`);
  if (entries.length > MAX_TEMPLATES)
    problems.push(`${name}.data has ${entries.length} keys, at most ${MAX_TEMPLATES}`);
  const parsed = new Map<string, TemplatePart[]>();
  for (const [key, text] of entries) {
    const at = `${name}.data[${quoteKey(key)}]`;
    if (!isValidSecretKey(key)) problems.push(`${at}: not a valid Secret key (${SECRET_KEY_RULE})`);
    if (typeof text !== 'string' || Array.from(text).length > MAX_TEMPLATE_LENGTH) {
      problems.push(`${at} must be a string of at most ${MAX_TEMPLATE_LENGTH} characters`);
      continue;
    }
    const parts = parseTemplate(text);
    if (typeof parts === 'string') problems.push(`${at}: ${parts}`);
    else parsed.set(key, parts);
  }
  return { data: parsed, copyKeys: copyKeys === true };
}
