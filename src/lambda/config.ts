// The function's configuration: environment variables the controller sets on each Lambda. The
// names are exported so the controller builds the environment from the same constants (see toEnv).
// Everything is validated up front and every problem reported at once, so a bad function
// configuration reads as one Synced=False/InvalidConfiguration rather than a string of retries.

import { X509Certificate } from 'node:crypto';
import { quoteKey, SyncError } from './errors.ts';
import { isValidSecretKey, type KeyMapping, SECRET_KEY_RULE } from './payload.ts';

export const ENV = {
  secretArn: 'SECRETSYNC_SECRET_ARN',
  versionStage: 'SECRETSYNC_VERSION_STAGE',
  region: 'SECRETSYNC_REGION',
  clusterName: 'SECRETSYNC_CLUSTER_NAME',
  apiEndpoint: 'SECRETSYNC_API_ENDPOINT',
  caData: 'SECRETSYNC_CA_DATA',
  namespace: 'SECRETSYNC_NAMESPACE',
  targetName: 'SECRETSYNC_TARGET_NAME',
  syncName: 'SECRETSYNC_SYNC_NAME',
  keyMapping: 'SECRETSYNC_KEY_MAPPING',
  mergePolicy: 'SECRETSYNC_MERGE_POLICY',
} as const;

/** Set by the Lambda runtime; the fallback when SECRETSYNC_REGION is absent. */
export const AWS_REGION_ENV = 'AWS_REGION';

export const MERGE_POLICIES = ['Merge', 'Replace'] as const;
export type MergePolicy = (typeof MERGE_POLICIES)[number];

export const DEFAULT_VERSION_STAGE = 'AWSCURRENT';

export interface SyncConfig {
  secretArn: string;
  versionStage: string;
  region: string;
  clusterName: string;
  /** https origin (plus optional path prefix), without a trailing slash. */
  apiEndpoint: string;
  /** The cluster CA as PEM text, decoded from the base64 EKS DescribeCluster returns. */
  caPem: string;
  namespace: string;
  targetName: string;
  syncName: string;
  /** undefined = copy every key under its own name. */
  keyMapping: KeyMapping[] | undefined;
  mergePolicy: MergePolicy;
}

// Same shapes as the CRD's validation rules, so what the API server admitted loads here.
const ARN =
  /^arn:aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f)?:secretsmanager:([a-z]{2}(-[a-z]+)+-[0-9]+):[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const VERSION_STAGE = /^[A-Za-z0-9_.@-]{1,256}$/;
// EKS: letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters.
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// The CRD's limits on spec.target.keys.
const MAX_MAPPINGS = 100;
const MAX_FROM_LENGTH = 256;

export function loadConfig(env: Readonly<Record<string, string | undefined>>): SyncConfig {
  const problems: string[] = [];
  // Values are configuration, not secrets, but may be long or odd: show a bounded, quoted form.
  const shown = (value: string) => quoteKey(value);
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name} is missing`);
    return value ?? '';
  };
  const check = (name: string, value: string, ok: boolean, rule: string) => {
    if (value !== '' && !ok) problems.push(`${name} ${rule} (got ${shown(value)})`);
  };

  const secretArn = required(ENV.secretArn);
  const arnMatch = ARN.exec(secretArn);
  check(ENV.secretArn, secretArn, arnMatch !== null, 'must be a full Secrets Manager secret ARN');

  const versionStage = env[ENV.versionStage]?.trim() || DEFAULT_VERSION_STAGE;
  check(ENV.versionStage, versionStage, VERSION_STAGE.test(versionStage), 'must be a staging label');

  const regionVar = env[ENV.region]?.trim() ? ENV.region : AWS_REGION_ENV;
  const region = env[regionVar]?.trim() ?? '';
  if (region === '') problems.push(`${ENV.region} is missing (and so is ${AWS_REGION_ENV})`);
  check(regionVar, region, REGION.test(region), 'must be an AWS region such as eu-west-1');
  // The function, its role and the secret live in one region (DESIGN §4); a mismatch would have the
  // Secrets Manager client look in the wrong place.
  const arnRegion = arnMatch?.[2];
  if (arnRegion !== undefined && REGION.test(region) && arnRegion !== region) {
    problems.push(`${regionVar} is ${region} but the secret ARN is in ${arnRegion}`);
  }

  const clusterName = required(ENV.clusterName);
  check(ENV.clusterName, clusterName, CLUSTER_NAME.test(clusterName), 'must be an EKS cluster name');

  const apiEndpoint = parseEndpoint(required(ENV.apiEndpoint), problems);
  const caPem = parseCa(required(ENV.caData), problems);

  const namespace = required(ENV.namespace);
  check(ENV.namespace, namespace, isDns1123Label(namespace), 'must be a namespace name (DNS-1123 label)');
  const targetName = required(ENV.targetName);
  check(ENV.targetName, targetName, isDns1123Subdomain(targetName, 253), 'must be a DNS-1123 subdomain');
  const syncName = required(ENV.syncName);
  // 63: the CRD's limit on a SecretSync's name.
  check(
    ENV.syncName,
    syncName,
    isDns1123Subdomain(syncName, 63),
    'must be a DNS-1123 subdomain of ≤63 characters',
  );

  const keyMapping = parseKeyMapping(env[ENV.keyMapping], problems);

  const mergePolicy = env[ENV.mergePolicy]?.trim() || 'Merge';
  if (!isMergePolicy(mergePolicy)) {
    problems.push(`${ENV.mergePolicy} must be ${MERGE_POLICIES.join(' or ')} (got ${shown(mergePolicy)})`);
  }

  if (problems.length > 0) {
    throw new SyncError('InvalidConfiguration', `invalid function configuration: ${problems.join('; ')}`);
  }
  return {
    secretArn,
    versionStage,
    region,
    clusterName,
    apiEndpoint,
    caPem,
    namespace,
    targetName,
    syncName,
    keyMapping,
    mergePolicy: mergePolicy as MergePolicy,
  };
}

/** The inverse of loadConfig: the environment the controller sets on the function. */
export function toEnv(config: SyncConfig): Record<string, string> {
  const env: Record<string, string> = {
    [ENV.secretArn]: config.secretArn,
    [ENV.versionStage]: config.versionStage,
    [ENV.region]: config.region,
    [ENV.clusterName]: config.clusterName,
    [ENV.apiEndpoint]: config.apiEndpoint,
    [ENV.caData]: Buffer.from(config.caPem, 'utf8').toString('base64'),
    [ENV.namespace]: config.namespace,
    [ENV.targetName]: config.targetName,
    [ENV.syncName]: config.syncName,
    [ENV.mergePolicy]: config.mergePolicy,
  };
  // Only from/to, in that order: the function's environment is part of the desired state the
  // controller diffs, so it must serialize the same way every time.
  if (config.keyMapping !== undefined) {
    env[ENV.keyMapping] = JSON.stringify(
      config.keyMapping.map((m) => (m.to === undefined ? { from: m.from } : { from: m.from, to: m.to })),
    );
  }
  return env;
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

function parseCa(value: string, problems: string[]): string {
  if (value === '') return '';
  const name = ENV.caData;
  // Buffer.from(…, 'base64') skips junk instead of failing, so check the alphabet first.
  const compact = value.replace(/\s+/g, '');
  if (!BASE64.test(compact)) {
    problems.push(`${name} must be the base64-encoded PEM CA bundle EKS DescribeCluster returns`);
    return '';
  }
  const pem = Buffer.from(compact, 'base64').toString('utf8');
  try {
    // Parses the first certificate; a corrupt CA otherwise surfaces later as a puzzling TLS error.
    new X509Certificate(pem);
  } catch {
    problems.push(`${name} does not decode to a PEM certificate`);
    return '';
  }
  return pem;
}

function parseKeyMapping(raw: string | undefined, problems: string[]): KeyMapping[] | undefined {
  const name = ENV.keyMapping;
  if (raw === undefined || raw.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    problems.push(`${name} must be a JSON array of {"from": …, "to"?: …}`);
    return undefined;
  }
  if (!Array.isArray(parsed)) {
    problems.push(`${name} must be a JSON array of {"from": …, "to"?: …}`);
    return undefined;
  }
  // An empty selection would write no keys (and with Replace, empty the Secret): almost certainly
  // a mistake, and "omit the list" already means "all keys".
  if (parsed.length === 0) problems.push(`${name} must list at least one key; omit it to copy every key`);
  if (parsed.length > MAX_MAPPINGS)
    problems.push(`${name} has ${parsed.length} entries, at most ${MAX_MAPPINGS}`);

  const mapping: KeyMapping[] = [];
  const targets = new Set<string>();
  for (const [i, entry] of parsed.entries()) {
    const at = `${name}[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`${at} must be an object {"from": …, "to"?: …}`);
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
