/**
 * EKS access entries, which moto lacks, answered in front of moto the way @aws-sdk/client-eks calls them
 * (REST JSON: paths below, errors as `x-amzn-errortype` + `{message}`).
 *
 * Behaviour of real EKS kept on purpose:
 * - an entry is bound to the principal's unique ID (AROA…/AIDA…) when it is created: delete and recreate
 *   the role under the same ARN and the old entry no longer authenticates (see eks-authenticator.ts);
 * - the principal must exist, must be an IAM role or user (never an STS session ARN), one entry per
 *   principal per cluster, reserved username/group prefixes refused, the default username for a role is
 *   its assumed-role ARN (path dropped) with `{{SessionName}}`.
 * Also: DescribeCluster of a cluster in `clusterOverrides` is patched so the product reads the test bed's
 * real API server endpoint and CA.
 */
import { randomUUID } from 'node:crypto';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { GetRoleCommand, GetUserCommand, IAMClient } from '@aws-sdk/client-iam';
import type { AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';

export type PrincipalType = 'role' | 'user';

export interface AccessEntry {
  clusterName: string;
  principalArn: string;
  principalType: PrincipalType;
  /** Role or user name, without path. */
  principalName: string;
  /** The principal's unique ID at creation (RoleId `AROA…` / UserId `AIDA…`): what the entry is bound to. */
  principalId: string;
  kubernetesGroups: string[];
  /** May contain `{{SessionName}}`, `{{SessionNameRaw}}`, `{{AccountID}}`, `{{AccessKeyID}}`. */
  username: string;
  type: 'STANDARD';
  tags: Record<string, string>;
  accessEntryArn: string;
  createdAt: Date;
  modifiedAt: Date;
  clientRequestToken?: string;
}

/** All access entries of the test bed, per cluster, in memory. */
export class AccessEntryStore {
  readonly #clusters = new Map<string, Map<string, AccessEntry>>();

  get(clusterName: string, principalArn: string): AccessEntry | undefined {
    return this.#clusters.get(clusterName)?.get(principalArn);
  }
  /** Sorted by principal ARN, so that paging is stable. */
  list(clusterName: string): AccessEntry[] {
    const entries = [...(this.#clusters.get(clusterName)?.values() ?? [])];
    return entries.sort((a, b) => (a.principalArn < b.principalArn ? -1 : 1));
  }
  put(entry: AccessEntry): void {
    const entries = this.#clusters.get(entry.clusterName) ?? new Map<string, AccessEntry>();
    this.#clusters.set(entry.clusterName, entries.set(entry.principalArn, entry));
  }
  delete(clusterName: string, principalArn: string): boolean {
    return this.#clusters.get(clusterName)?.delete(principalArn) ?? false;
  }
  deleteCluster(clusterName: string): void {
    this.#clusters.delete(clusterName);
  }
  findByArn(accessEntryArn: string): AccessEntry | undefined {
    for (const entries of this.#clusters.values()) {
      for (const e of entries.values()) if (e.accessEntryArn === accessEntryArn) return e;
    }
    return undefined;
  }
  /** How the authenticator finds an entry: by the caller's unique ID, as EKS does. */
  findByPrincipalId(clusterName: string, principalId: string): AccessEntry | undefined {
    for (const e of this.#clusters.get(clusterName)?.values() ?? [])
      if (e.principalId === principalId) return e;
    return undefined;
  }
}

export type AuthenticationMode = 'API' | 'API_AND_CONFIG_MAP' | 'CONFIG_MAP';

/** What DescribeCluster should say about a cluster that is really the test bed's kube-apiserver. */
export interface ClusterOverride {
  endpoint: string;
  /** Base64 of the CA bundle PEM, as EKS returns it. */
  certificateAuthorityData: string;
  authenticationMode: AuthenticationMode;
}

export interface EksInterceptorOptions {
  motoUrl: string;
  region: string;
  accountId: string;
  store: AccessEntryStore;
  /** Read on every request, so entries may be added after the interceptor is created. */
  clusterOverrides?: Record<string, ClusterOverride>;
  /** Used to ask moto about clusters and principals; moto accepts any. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  now?: () => Date;
}

/** EKS refuses these at the start of a custom username (EKS user guide, "Set a custom username"). */
export const RESERVED_USERNAME_PREFIXES = ['system:', 'eks:', 'aws:', 'amazon:', 'iam:'] as const;
export const RESERVED_GROUP_PREFIXES = ['system:'] as const;

class EksError extends Error {
  readonly code: string;
  readonly status: number;
  readonly clusterName: string | undefined;
  constructor(code: string, status: number, message: string, clusterName?: string) {
    super(message);
    this.code = code;
    this.status = status;
    this.clusterName = clusterName;
  }
}
const notFound = (m: string, c?: string) => new EksError('ResourceNotFoundException', 404, m, c);
const invalidParameter = (m: string, c?: string) => new EksError('InvalidParameterException', 400, m, c);

export function createEksInterceptor(options: EksInterceptorOptions): Interceptor {
  const { motoUrl, region, accountId, store } = options;
  const now = options.now ?? (() => new Date());
  const credentials = options.credentials ?? { accessKeyId: 'AKIAEKSTESTBED000000', secretAccessKey: 'x' };
  const eks = new EKSClient({ endpoint: motoUrl, region, credentials, maxAttempts: 1 });
  const iam = new IAMClient({ endpoint: motoUrl, region, credentials, maxAttempts: 1 });
  const partition = partitionOf(region);

  async function requireCluster(clusterName: string): Promise<void> {
    try {
      await eks.send(new DescribeClusterCommand({ name: clusterName }));
    } catch (err) {
      if ((err as Error).name === 'ResourceNotFoundException') {
        throw notFound(`No cluster found for name: ${clusterName}.`, clusterName);
      }
      throw err;
    }
  }

  /** Confirms the principal exists in moto IAM under exactly this ARN (path included); returns its unique ID. */
  async function resolvePrincipal(p: ParsedPrincipal, clusterName: string): Promise<string> {
    try {
      if (p.type === 'role') {
        const { Role } = await iam.send(new GetRoleCommand({ RoleName: p.name }));
        if (Role?.Arn === p.arn && Role.RoleId) return Role.RoleId;
      } else {
        const { User } = await iam.send(new GetUserCommand({ UserName: p.name }));
        if (User?.Arn === p.arn && User.UserId) return User.UserId;
      }
    } catch (err) {
      if ((err as Error).name !== 'NoSuchEntityException') throw err;
    }
    throw invalidParameter(
      `The specified principalArn is invalid: principal ${p.arn} does not exist.`,
      clusterName,
    );
  }

  function parsePrincipal(arn: unknown, clusterName: string): ParsedPrincipal {
    if (typeof arn !== 'string' || arn === '')
      throw invalidParameter('principalArn is required.', clusterName);
    if (/^arn:[^:]+:sts::\d{12}:assumed-role\//.test(arn)) {
      throw invalidParameter(
        `The principalArn ${arn} is an STS session; use the IAM role ARN (arn:${partition}:iam::<account>:role/<name>).`,
        clusterName,
      );
    }
    const m = /^arn:([a-z-]+):iam::(\d{12}):(role|user)(\/(?:[\w+=,.@-]+\/)*)([\w+=,.@-]{1,128})$/.exec(arn);
    if (!m || m[1] !== partition) {
      throw invalidParameter(
        `The principalArn ${arn} is not an IAM role or user ARN of partition ${partition}.`,
        clusterName,
      );
    }
    if (m[2] !== accountId) {
      // STANDARD entries may name another account's principal in real EKS; moto keeps accounts apart.
      throw invalidParameter(`Cross-account principal ${arn} is not emulated by the test bed.`, clusterName);
    }
    return { arn, type: m[3] as PrincipalType, account: m[2], name: m[5] as string };
  }

  function requireAccessEntriesEnabled(clusterName: string): void {
    // Clusters without an override behave as API_AND_CONFIG_MAP: moto knows no authentication mode.
    if (options.clusterOverrides?.[clusterName]?.authenticationMode === 'CONFIG_MAP') {
      throw new EksError(
        'InvalidRequestException',
        400,
        "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        clusterName,
      );
    }
  }

  async function create(clusterName: string, body: JsonObject): Promise<AwsResponse> {
    await requireCluster(clusterName);
    requireAccessEntriesEnabled(clusterName);
    const principal = parsePrincipal(body.principalArn, clusterName);
    const type = body.type ?? 'STANDARD';
    if (type !== 'STANDARD') {
      throw invalidParameter(
        `Access entry type ${String(type)} is not emulated by the test bed; only STANDARD is.`,
        clusterName,
      );
    }
    const groups = checkGroups(body.kubernetesGroups, clusterName) ?? [];
    const username =
      checkUsername(body.username, clusterName) ??
      (principal.type === 'role'
        ? `arn:${partition}:sts::${principal.account}:assumed-role/${principal.name}/{{SessionName}}`
        : principal.arn);
    const tags = checkTags(body.tags, clusterName) ?? {};
    const token = typeof body.clientRequestToken === 'string' ? body.clientRequestToken : undefined;

    const existing = store.get(clusterName, principal.arn);
    if (existing) {
      // Idempotent retry of the same create, as clientRequestToken promises; anything else is a duplicate.
      if (token !== undefined && existing.clientRequestToken === token)
        return ok({ accessEntry: show(existing) });
      throw new EksError(
        'ResourceInUseException',
        409,
        'The specified access entry resource is already in use on this cluster.',
        clusterName,
      );
    }
    const principalId = await resolvePrincipal(principal, clusterName);
    const at = now();
    const entry: AccessEntry = {
      clusterName,
      principalArn: principal.arn,
      principalType: principal.type,
      principalName: principal.name,
      principalId,
      kubernetesGroups: groups,
      username,
      type: 'STANDARD',
      tags,
      accessEntryArn: `arn:${partition}:eks:${region}:${accountId}:access-entry/${clusterName}/${principal.type}/${principal.account}/${principal.name}/${randomUUID()}`,
      createdAt: at,
      modifiedAt: at,
      ...(token === undefined ? {} : { clientRequestToken: token }),
    };
    store.put(entry);
    return ok({ accessEntry: show(entry) });
  }

  function requireEntry(clusterName: string, principalArn: string): AccessEntry {
    const entry = store.get(clusterName, principalArn);
    if (!entry) {
      throw notFound(
        `The specified access entry resource for principal ${principalArn} is not found on cluster ${clusterName}.`,
        clusterName,
      );
    }
    return entry;
  }

  function list(clusterName: string, query: URLSearchParams): AwsResponse {
    const max = query.has('maxResults') ? Number(query.get('maxResults')) : 100;
    if (!Number.isInteger(max) || max < 1 || max > 100) {
      throw invalidParameter('maxResults must be between 1 and 100.', clusterName);
    }
    // No access policies are emulated, so no entry has one associated.
    let entries = query.has('associatedPolicyArn') ? [] : store.list(clusterName);
    const next = query.get('nextToken');
    if (next !== null) {
      const after = Buffer.from(next, 'base64url').toString('utf8');
      if (!after.startsWith('arn:')) throw invalidParameter('The nextToken is not valid.', clusterName);
      entries = entries.filter((e) => e.principalArn > after);
    }
    const page = entries.slice(0, max);
    const more = entries.length > max;
    const last = page.at(-1);
    return ok({
      accessEntries: page.map((e) => e.principalArn),
      ...(more && last ? { nextToken: Buffer.from(last.principalArn).toString('base64url') } : {}),
    });
  }

  async function accessEntries(req: AwsRequest, clusterName: string, principalArn?: string) {
    if (principalArn === undefined) {
      if (req.method === 'POST') return create(clusterName, parseBody(req, clusterName));
      if (req.method === 'GET') {
        await requireCluster(clusterName);
        return list(clusterName, req.query);
      }
      return undefined;
    }
    await requireCluster(clusterName);
    switch (req.method) {
      case 'GET':
        return ok({ accessEntry: show(requireEntry(clusterName, principalArn)) });
      case 'POST': {
        const body = parseBody(req, clusterName);
        const entry = requireEntry(clusterName, principalArn);
        const groups = checkGroups(body.kubernetesGroups, clusterName);
        const username = checkUsername(body.username, clusterName);
        if (groups) entry.kubernetesGroups = groups;
        if (username !== undefined) entry.username = username;
        entry.modifiedAt = now();
        return ok({ accessEntry: show(entry) });
      }
      case 'DELETE':
        requireEntry(clusterName, principalArn);
        store.delete(clusterName, principalArn);
        return ok({});
      default:
        return undefined;
    }
  }

  /** TagResource / UntagResource / ListTagsForResource on access-entry ARNs (cluster ARNs go to moto). */
  function tags(req: AwsRequest, arn: string): AwsResponse | undefined {
    const entry = store.findByArn(arn);
    if (!entry) throw new EksError('NotFoundException', 404, `Resource ${arn} not found.`);
    switch (req.method) {
      case 'GET':
        return ok({ tags: entry.tags });
      case 'POST':
        Object.assign(entry.tags, checkTags(parseBody(req).tags) ?? {});
        return ok({});
      case 'DELETE':
        for (const key of req.query.getAll('tagKeys')) delete entry.tags[key];
        return ok({});
      default:
        return undefined;
    }
  }

  async function describeClusterPatched(req: AwsRequest, override: ClusterOverride): Promise<AwsResponse> {
    const res = await forwardToMoto(motoUrl, req);
    if (res.status !== 200) return res;
    const doc = JSON.parse(res.body.toString()) as { cluster: JsonObject };
    const cluster = doc.cluster;
    cluster.endpoint = override.endpoint;
    cluster.certificateAuthority = { data: override.certificateAuthorityData };
    cluster.accessConfig = {
      ...((cluster.accessConfig as JsonObject | undefined) ?? {}),
      authenticationMode: override.authenticationMode,
    };
    return { ...res, body: JSON.stringify(doc) };
  }

  return async (req) => {
    if (req.service !== 'eks') return undefined;
    // The store knows clusters by name only, and moto keeps each region apart: one region is emulated.
    const otherRegion = req.region !== '' && req.region !== region;
    try {
      // Match on the raw path and decode afterwards: the SDK percent-encodes the principal ARN in one
      // segment, and decoding first would split it at its slashes.
      const entries = /^\/clusters\/([^/]+)\/access-entries(?:\/(.+))?$/.exec(req.path);
      if (entries && otherRegion) {
        throw new EksError(
          'InvalidRequestException',
          400,
          `The test bed emulates access entries in ${region} only, not in ${req.region}.`,
        );
      }
      if (entries) {
        const principalArn = entries[2] === undefined ? undefined : decodeURIComponent(entries[2]);
        return await accessEntries(req, decodeURIComponent(entries[1] as string), principalArn);
      }
      const tagged = /^\/tags\/(.+)$/.exec(req.path);
      if (tagged) {
        const arn = decodeURIComponent(tagged[1] as string);
        return /^arn:[^:]+:eks:[^:]*:\d{12}:access-entry\//.test(arn) ? tags(req, arn) : undefined;
      }
      const cluster = /^\/clusters\/([^/]+)$/.exec(req.path);
      if (cluster && !otherRegion) {
        const name = decodeURIComponent(cluster[1] as string);
        const override = options.clusterOverrides?.[name];
        if (req.method === 'GET' && override) return await describeClusterPatched(req, override);
        if (req.method === 'DELETE') {
          // A deleted cluster takes its access entries with it.
          const res = await forwardToMoto(motoUrl, req);
          if (res.status === 200) store.deleteCluster(name);
          return res;
        }
      }
      return undefined;
    } catch (err) {
      if (err instanceof EksError) return errorResponse(err);
      throw err;
    }
  };
}

interface ParsedPrincipal {
  arn: string;
  type: PrincipalType;
  account: string;
  name: string;
}

type JsonObject = Record<string, unknown>;

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

function parseBody(req: AwsRequest, clusterName?: string): JsonObject {
  if (req.body.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(req.body.toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as JsonObject;
  } catch {}
  throw invalidParameter('The request body is not a JSON object.', clusterName);
}

function checkUsername(value: unknown, clusterName: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '')
    throw invalidParameter('username must be a non-empty string.', clusterName);
  const reserved = RESERVED_USERNAME_PREFIXES.find((p) => value.startsWith(p));
  if (reserved) {
    throw invalidParameter(
      `username ${value} is not valid: it cannot start with "${reserved}".`,
      clusterName,
    );
  }
  return value;
}

function checkGroups(value: unknown, clusterName: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((g) => typeof g === 'string' && g !== '')) {
    throw invalidParameter('kubernetesGroups must be a list of non-empty strings.', clusterName);
  }
  for (const g of value as string[]) {
    const reserved = RESERVED_GROUP_PREFIXES.find((p) => g.startsWith(p));
    if (reserved) {
      throw invalidParameter(
        `kubernetesGroups ${g} is not valid: it cannot start with "${reserved}".`,
        clusterName,
      );
    }
  }
  return [...(value as string[])];
}

function checkTags(value: unknown, clusterName?: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (
    typeof value !== 'object' ||
    Array.isArray(value) ||
    !Object.values(value).every((v) => typeof v === 'string')
  ) {
    throw invalidParameter('tags must map strings to strings.', clusterName);
  }
  return { ...(value as Record<string, string>) };
}

/** The AccessEntry shape of the EKS API (timestamps as epoch seconds, as restJson1 sends them). */
function show(e: AccessEntry): JsonObject {
  return {
    clusterName: e.clusterName,
    principalArn: e.principalArn,
    kubernetesGroups: e.kubernetesGroups,
    accessEntryArn: e.accessEntryArn,
    createdAt: e.createdAt.getTime() / 1000,
    modifiedAt: e.modifiedAt.getTime() / 1000,
    tags: e.tags,
    username: e.username,
    type: e.type,
  };
}

function ok(body: JsonObject): AwsResponse {
  return { status: 200, headers: jsonHeaders(), body: JSON.stringify(body) };
}

function errorResponse(err: EksError): AwsResponse {
  return {
    status: err.status,
    headers: { ...jsonHeaders(), 'x-amzn-errortype': err.code },
    body: JSON.stringify({
      ...(err.clusterName ? { clusterName: err.clusterName } : {}),
      message: err.message,
    }),
  };
}

function jsonHeaders(): Record<string, string> {
  return { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() };
}

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

/** Sends the request on to moto as it came (moto ignores signatures) and returns moto's answer. */
async function forwardToMoto(motoUrl: string, req: AwsRequest): Promise<AwsResponse> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name.toLowerCase())) continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const qs = req.query.toString();
  const res = await fetch(`${motoUrl}${req.path}${qs ? `?${qs}` : ''}`, {
    method: req.method,
    headers,
    ...(req.body.length > 0 ? { body: new Uint8Array(req.body) } : {}),
  });
  const out: Record<string, string> = {};
  for (const name of ['content-type', 'x-amzn-requestid', 'x-amzn-errortype']) {
    const v = res.headers.get(name);
    if (v !== null) out[name] = v;
  }
  return { status: res.status, headers: out, body: Buffer.from(await res.arrayBuffer()) };
}
