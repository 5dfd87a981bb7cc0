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
 * A cluster is a (region, name) pair, as in EKS: each request is answered in the region of its SigV4 scope,
 * so `prod` in us-east-1 and `prod` in eu-west-1 have their own entries, entry ARNs and overrides.
 */
import { randomUUID } from 'node:crypto';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { GetRoleCommand, GetUserCommand, IAMClient } from '@aws-sdk/client-iam';
import type { AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';

export type PrincipalType = 'role' | 'user';

export interface AccessEntry {
  /** Cluster names are unique per region only: `prod` in us-east-1 and in eu-west-1 are two clusters. */
  region: string;
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

/**
 * All access entries of the test bed, per cluster — (region, name) — in memory. Every method takes the
 * region last; it may be left out while only one region has entries on a cluster of that name (what
 * single-region tests do), and an ambiguous lookup throws rather than guess.
 */
export class AccessEntryStore {
  readonly #clusters = new Map<string, Map<string, AccessEntry>>();

  #entries(clusterName: string, region: string | undefined): Map<string, AccessEntry> | undefined {
    if (region !== undefined) return this.#clusters.get(clusterKey(region, clusterName));
    const found = [...this.#clusters].filter(([k, m]) => m.size > 0 && k.endsWith(`/${clusterName}`));
    if (found.length > 1) {
      const regions = found.map(([k]) => k.split('/')[0]).join(', ');
      throw new Error(`clusters named ${clusterName} have entries in several regions (${regions}): name one`);
    }
    return found[0]?.[1];
  }

  get(clusterName: string, principalArn: string, region?: string): AccessEntry | undefined {
    return this.#entries(clusterName, region)?.get(principalArn);
  }
  /** Sorted by principal ARN, so that paging is stable. */
  list(clusterName: string, region?: string): AccessEntry[] {
    const entries = [...(this.#entries(clusterName, region)?.values() ?? [])];
    return entries.sort((a, b) => (a.principalArn < b.principalArn ? -1 : 1));
  }
  put(entry: AccessEntry): void {
    const key = clusterKey(entry.region, entry.clusterName);
    const entries = this.#clusters.get(key) ?? new Map<string, AccessEntry>();
    this.#clusters.set(key, entries.set(entry.principalArn, entry));
  }
  delete(clusterName: string, principalArn: string, region?: string): boolean {
    return this.#entries(clusterName, region)?.delete(principalArn) ?? false;
  }
  deleteCluster(clusterName: string, region?: string): void {
    this.#entries(clusterName, region)?.clear();
  }
  findByArn(accessEntryArn: string): AccessEntry | undefined {
    for (const entries of this.#clusters.values()) {
      for (const e of entries.values()) if (e.accessEntryArn === accessEntryArn) return e;
    }
    return undefined;
  }
  /** How the authenticator finds an entry: by the caller's unique ID, as EKS does. */
  findByPrincipalId(clusterName: string, principalId: string, region?: string): AccessEntry | undefined {
    for (const e of this.#entries(clusterName, region)?.values() ?? [])
      if (e.principalId === principalId) return e;
    return undefined;
  }
}

/** The key of a cluster in `clusterOverrides` (and in the store): names are unique per region only. */
export const clusterKey = (region: string, clusterName: string): string => `${region}/${clusterName}`;

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
  /** Only for a request that names no region (unsigned); signed requests are answered in their own region. */
  region?: string;
  accountId: string;
  store: AccessEntryStore;
  /**
   * Keyed by clusterKey(region, name). Read on every request, so entries may be added after the
   * interceptor is created.
   */
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
  const { motoUrl, accountId, store } = options;
  const now = options.now ?? (() => new Date());
  const credentials = options.credentials ?? { accessKeyId: 'AKIAEKSTESTBED000000', secretAccessKey: 'x' };
  // IAM is global; EKS clusters live in a region, and moto keeps each region's apart.
  const iam = new IAMClient({ endpoint: motoUrl, region: 'us-east-1', credentials, maxAttempts: 1 });
  const eksClients = new Map<string, EKSClient>();
  const eksIn = (region: string) => {
    let c = eksClients.get(region);
    if (!c) {
      c = new EKSClient({ endpoint: motoUrl, region, credentials, maxAttempts: 1 });
      eksClients.set(region, c);
    }
    return c;
  };
  const override = (region: string, clusterName: string) =>
    options.clusterOverrides?.[clusterKey(region, clusterName)];

  async function requireCluster(region: string, clusterName: string): Promise<void> {
    try {
      await eksIn(region).send(new DescribeClusterCommand({ name: clusterName }));
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

  function parsePrincipal(arn: unknown, clusterName: string, partition: string): ParsedPrincipal {
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

  function requireAccessEntriesEnabled(region: string, clusterName: string): void {
    // Clusters without an override behave as API_AND_CONFIG_MAP: moto knows no authentication mode.
    if (override(region, clusterName)?.authenticationMode === 'CONFIG_MAP') {
      throw new EksError(
        'InvalidRequestException',
        400,
        "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        clusterName,
      );
    }
  }

  async function create(region: string, clusterName: string, body: JsonObject): Promise<AwsResponse> {
    await requireCluster(region, clusterName);
    requireAccessEntriesEnabled(region, clusterName);
    const partition = partitionOf(region);
    const principal = parsePrincipal(body.principalArn, clusterName, partition);
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

    const existing = store.get(clusterName, principal.arn, region);
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
      region,
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

  function requireEntry(region: string, clusterName: string, principalArn: string): AccessEntry {
    const entry = store.get(clusterName, principalArn, region);
    if (!entry) {
      throw notFound(
        `The specified access entry resource for principal ${principalArn} is not found on cluster ${clusterName}.`,
        clusterName,
      );
    }
    return entry;
  }

  function list(region: string, clusterName: string, query: URLSearchParams): AwsResponse {
    const max = query.has('maxResults') ? Number(query.get('maxResults')) : 100;
    if (!Number.isInteger(max) || max < 1 || max > 100) {
      throw invalidParameter('maxResults must be between 1 and 100.', clusterName);
    }
    // No access policies are emulated, so no entry has one associated.
    let entries = query.has('associatedPolicyArn') ? [] : store.list(clusterName, region);
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

  async function accessEntries(req: AwsRequest, region: string, clusterName: string, principalArn?: string) {
    if (principalArn === undefined) {
      if (req.method === 'POST') return create(region, clusterName, parseBody(req, clusterName));
      if (req.method === 'GET') {
        await requireCluster(region, clusterName);
        return list(region, clusterName, req.query);
      }
      return undefined;
    }
    await requireCluster(region, clusterName);
    switch (req.method) {
      case 'GET':
        return ok({ accessEntry: show(requireEntry(region, clusterName, principalArn)) });
      case 'POST': {
        const body = parseBody(req, clusterName);
        const entry = requireEntry(region, clusterName, principalArn);
        const groups = checkGroups(body.kubernetesGroups, clusterName);
        const username = checkUsername(body.username, clusterName);
        if (groups) entry.kubernetesGroups = groups;
        if (username !== undefined) entry.username = username;
        entry.modifiedAt = now();
        return ok({ accessEntry: show(entry) });
      }
      case 'DELETE':
        requireEntry(region, clusterName, principalArn);
        store.delete(clusterName, principalArn, region);
        return ok({});
      default:
        return undefined;
    }
  }

  /** TagResource / UntagResource / ListTagsForResource on access-entry ARNs (cluster ARNs go to moto). */
  function tags(req: AwsRequest, region: string, arn: string): AwsResponse | undefined {
    const entry = store.findByArn(arn);
    // An ARN names its region; asked in another region, EKS does not know it.
    if (!entry || entry.region !== region)
      throw new EksError('NotFoundException', 404, `Resource ${arn} not found.`);
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
    // Each request is answered in the region it was signed for, as EKS's regional endpoints do.
    const region = req.region || options.region || 'us-east-1';
    try {
      // Match on the raw path and decode afterwards: the SDK percent-encodes the principal ARN in one
      // segment, and decoding first would split it at its slashes.
      const entries = /^\/clusters\/([^/]+)\/access-entries(?:\/(.+))?$/.exec(req.path);
      if (entries) {
        const principalArn = entries[2] === undefined ? undefined : decodeURIComponent(entries[2]);
        return await accessEntries(req, region, decodeURIComponent(entries[1] as string), principalArn);
      }
      const tagged = /^\/tags\/(.+)$/.exec(req.path);
      if (tagged) {
        const arn = decodeURIComponent(tagged[1] as string);
        return /^arn:[^:]+:eks:[^:]*:\d{12}:access-entry\//.test(arn) ? tags(req, region, arn) : undefined;
      }
      const cluster = /^\/clusters\/([^/]+)$/.exec(req.path);
      if (cluster) {
        const name = decodeURIComponent(cluster[1] as string);
        const o = override(region, name);
        if (req.method === 'GET' && o) return await describeClusterPatched(req, o);
        if (req.method === 'DELETE') {
          // A deleted cluster takes its access entries with it.
          const res = await forwardToMoto(motoUrl, req);
          if (res.status === 200) store.deleteCluster(name, region);
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
