// The SecretSync `secretsync plan` plans for: one document of a YAML file, checked as the API server
// would check it (the CRD's schema and rules) and defaulted as it would default it, so the plan is of
// the object the controller would see. Offline: no API server is asked.

import { parseAllDocuments } from 'yaml';
import { parseDuration } from '../controller/config.ts';
import {
  DEFAULT_VERSION_STAGE,
  isDns1123Label,
  isDns1123Subdomain,
  SECRET_ARN,
  specOf,
} from '../lambda/config.ts';
import { SyncError } from '../lambda/errors.ts';
import { GROUP, KIND, type SecretSync, VERSION } from '../shared/secretsync.generated.ts';

export class InputError extends Error {}

const API_VERSION = `${GROUP}/${VERSION}`;
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const TARGET_TYPES = ['Opaque', 'kubernetes.io/tls', 'kubernetes.io/basic-auth'];
const DELETION_POLICIES = ['Retain', 'Delete'];
// Secrets Manager sends no "Secret Label Updated" event for these.
const NO_EVENT_STAGES = ['AWSPENDING', 'AWSPREVIOUS'];
const MIN_RESYNC_MS = 60_000;
const MAX_RESYNC_MS = 8760 * 3_600_000;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The SecretSync of `yamlText` (the one named `name` when the file holds several), validated and with
 * the CRD's defaults; `namespace` (the --namespace flag) when the document names none.
 */
export function readSecretSync(
  yamlText: string,
  opts: { name?: string | undefined; namespace?: string | undefined; file: string },
): SecretSync {
  const docs = parseAllDocuments(yamlText);
  const objects: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length > 0)
      throw new InputError(`${opts.file}: not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
    const value: unknown = doc.toJSON();
    if (value !== null && value !== undefined) objects.push(value);
  }
  const syncs = objects.filter((o) => isObject(o) && o.kind === KIND);
  const nameOf = (o: unknown) => (isObject(o) && isObject(o.metadata) ? o.metadata.name : undefined);
  const picked = opts.name === undefined ? syncs : syncs.filter((o) => nameOf(o) === opts.name);
  if (picked.length === 0) {
    throw new InputError(
      opts.name === undefined
        ? `${opts.file} holds no SecretSync (kind: SecretSync)`
        : `${opts.file} holds no SecretSync named ${opts.name} (it holds: ${syncs.map(nameOf).join(', ') || 'none'})`,
    );
  }
  if (picked.length > 1) {
    throw new InputError(
      `${opts.file} holds ${picked.length} SecretSyncs (${picked.map(nameOf).join(', ')}); choose one with --name`,
    );
  }
  return validSecretSync(picked[0], opts.namespace);
}

/** The object with the CRD's defaults, or InputError listing every problem. */
export function validSecretSync(raw: unknown, namespace?: string): SecretSync {
  const problems: string[] = [];
  const o = isObject(raw) ? raw : {};
  if (o.apiVersion !== API_VERSION) problems.push(`apiVersion must be ${API_VERSION}`);
  if (o.kind !== KIND) problems.push(`kind must be ${KIND}`);
  const metadata = isObject(o.metadata) ? o.metadata : {};
  const name = metadata.name;
  if (typeof name !== 'string' || !isDns1123Subdomain(name, 63))
    problems.push(
      'metadata.name must be a DNS-1123 subdomain of at most 63 characters (it is part of the EKS access entry username and of AWS resource names)',
    );
  const ns = metadata.namespace ?? namespace ?? 'default';
  if (namespace !== undefined && metadata.namespace !== undefined && metadata.namespace !== namespace)
    problems.push(`metadata.namespace ${String(metadata.namespace)} differs from --namespace ${namespace}`);
  if (typeof ns !== 'string' || !isDns1123Label(ns))
    problems.push('metadata.namespace must be a namespace name');

  const spec = o.spec;
  if (!isObject(spec)) {
    problems.push(spec === undefined ? 'spec is required' : 'spec must be an object');
    throw invalid(problems);
  }
  const source = spec.source;
  if (!isObject(source)) {
    problems.push(source === undefined ? 'spec.source is required' : 'spec.source must be an object');
    throw invalid(problems);
  }
  const { secretId, region } = source;
  const arn = typeof secretId === 'string' ? SECRET_ARN.exec(secretId) : null;
  if (
    typeof secretId !== 'string' ||
    secretId.length > 2048 ||
    (secretId.startsWith('arn:') ? arn === null : !SECRET_NAME.test(secretId))
  )
    problems.push(
      'spec.source.secretId must be a secret name of 1-512 letters, digits and /_+=.@- characters, or a full Secrets Manager ARN: arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>-<6 characters>',
    );
  if (region !== undefined) {
    if (typeof region !== 'string' || region.length > 32 || !REGION.test(region))
      problems.push('spec.source.region must look like an AWS region, for example eu-west-1');
    else if (arn && arn[2] !== region)
      problems.push(
        'spec.source.region must match the region in spec.source.secretId when secretId is an ARN',
      );
  }
  const stage = source.versionStage ?? DEFAULT_VERSION_STAGE;
  if (typeof stage !== 'string') problems.push('spec.source.versionStage must be a string');
  else if (NO_EVENT_STAGES.includes(stage))
    problems.push(
      'spec.source.versionStage cannot be AWSPENDING or AWSPREVIOUS; Secrets Manager sends no change event for those labels',
    );

  const target = spec.target ?? {};
  if (!isObject(target)) problems.push('spec.target must be an object');
  else if (target.type !== undefined && !TARGET_TYPES.includes(target.type as string))
    problems.push(`spec.target.type must be one of ${TARGET_TYPES.join(', ')}`);
  if (spec.deletionPolicy !== undefined && !DELETION_POLICIES.includes(spec.deletionPolicy as string))
    problems.push(`spec.deletionPolicy must be ${DELETION_POLICIES.join(' or ')}`);
  const resync = spec.resyncInterval ?? '24h';
  const resyncMs = typeof resync === 'string' ? parseDuration(resync) : undefined;
  if (resync !== '0' && (resyncMs === undefined || resyncMs < MIN_RESYNC_MS || resyncMs > MAX_RESYNC_MS))
    problems.push('spec.resyncInterval must be "0" or a duration between 1m and 8760h, such as 24h or 90m');
  if (spec.suspend !== undefined && typeof spec.suspend !== 'boolean')
    problems.push('spec.suspend must be true or false');
  // Stage, target name, merge policy and key mapping: the function's own checks of what it reads.
  try {
    specOf(
      { metadata: {}, spec: { ...spec, source: { versionStage: String(stage) } } } as Parameters<
        typeof specOf
      >[0],
      String(name),
    );
  } catch (err) {
    if (!(err instanceof SyncError)) throw err;
    problems.push(...err.message.replace(/^invalid SecretSync spec: /, '').split('; '));
  }
  if (problems.length > 0) throw invalid(problems);

  const t = target as Record<string, unknown>;
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { ...(metadata as SecretSync['metadata']), name: name as string, namespace: ns as string },
    spec: {
      ...(spec as unknown as SecretSync['spec']),
      source: { ...source, secretId: secretId as string, versionStage: stage as string },
      target: { ...t, type: (t.type as string | undefined) ?? 'Opaque' } as SecretSync['spec']['target'],
      mergePolicy: (spec.mergePolicy as 'Merge' | 'Replace' | undefined) ?? 'Merge',
      deletionPolicy: (spec.deletionPolicy as 'Retain' | 'Delete' | undefined) ?? 'Retain',
      resyncInterval: resync as string,
      suspend: (spec.suspend as boolean | undefined) ?? false,
    },
  } as SecretSync;
}

const invalid = (problems: string[]) =>
  new InputError(`invalid SecretSync:\n  - ${[...new Set(problems)].join('\n  - ')}`);
