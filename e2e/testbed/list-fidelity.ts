/**
 * AWS's list calls as AWS pages them and shows them, where moto (5.2.5) is kinder. The benchmarks count
 * calls per inventory pass, so a page here holds what an AWS page holds. From the API references (moto's
 * own behaviour in brackets):
 * - ListSecrets: MaxResults 1–100, else ValidationException [moto takes any number, 0 and negatives too];
 *   a NextToken it never gave is InvalidNextTokenException [moto: 500]; entries without DescribeSecret's
 *   VersionIdsToStages and ReplicationStatus [moto sends them as well].
 * - ListRules: Limit 1–100, else ValidationException; "the maximum number of results per page for requests
 *   is 100", so 100 when no Limit is given [moto: any Limit, 50 without]; NamePrefix is a prefix [moto
 *   matches it as a regular expression: "a.b" finds "axb"]; no CreatedBy (DescribeRule's, not ListRules').
 * - ListFunctions: "returns a maximum of 50 items in each response, even if you set the number higher"
 *   (MaxItems 1–10000, else ValidationException), Marker/NextMarker [moto: every function in one answer,
 *   MaxItems and Marker ignored]; without the fields "To get the additional fields (State, StateReasonCode,
 *   StateReason, LastUpdateStatus, LastUpdateStatusReason, LastUpdateStatusReasonCode, RuntimeVersionConfig)
 *   … use GetFunction" [moto sends State and LastUpdateStatus].
 * - DescribeLogGroups: limit 1–50, else InvalidParameterException [moto refuses above 50, takes 0].
 * - ListRoles: MaxItems 1–1000, else ValidationError [moto: any number]; the trust policy URL-encoded
 *   (RFC 3986), as IAM sends every policy document [moto: plain JSON here, encoded in GetRole]; "does not
 *   return … PermissionsBoundary, RoleLastUsed, Tags" (none from moto either; removed should it start).
 * - GetResources (Tagging API): ResourcesPerPage 1–100, else InvalidParameterException; pages cut by
 *   ResourcesPerPage when given ("AWS recommends using ResourcesPerPage instead of" TagsPerPage)
 *   [moto also cuts at 100 tags; here at 500, its maximum]; the type filter logs:log-group [moto knows logs:loggroup only].
 * ListAccessEntries is ours already (eks-access-entries.ts). Members moto sends as null are left out, as
 * AWS's JSON never carries them. The interceptor answers these calls itself (after moto's answer): no
 * observer looks at a list.
 */
import { randomUUID } from 'node:crypto';
import { iamError } from './aws-account.ts';
import { jsonError } from './aws-classify.ts';
import type { AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';
import { forward } from './front-door.ts';
import { apiError, LambdaApiError } from './lambda-runner.ts';

type Json = Record<string, unknown>;

/** AWS's largest page per call (ListFunctions takes a MaxItems up to 10000, and still pages 50). */
export const PAGE_MAX = {
  secrets: 100,
  rules: 100,
  functions: 50,
  logGroups: 50,
  roles: 1000,
  tagged: 100,
} as const;
// AWS documents no ListSecrets default; moto's is kept.
export const LIST_SECRETS_DEFAULT = 100;
const LIST_RULES_DEFAULT = 100;
const LIST_FUNCTIONS_MAX_ITEMS = 10_000;

/** The model's range check as AWS words its failure, or undefined when `value` (if given) is within 1..max. */
export function outOfRange(value: unknown, member: string, max: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  const n = Number(value);
  if (Number.isInteger(n) && n >= 1 && n <= max) return undefined;
  const bound = n < 1 ? 'greater than or equal to 1' : `less than or equal to ${max}`;
  return `1 validation error detected: Value '${String(value)}' at '${member}' failed to satisfy constraint: Member must have value ${bound}`;
}

export function jsonBody(req: AwsRequest): Json {
  try {
    const v: unknown = JSON.parse(req.body.toString('utf8') || '{}');
    return v && typeof v === 'object' ? (v as Json) : {};
  } catch {
    return {};
  }
}

/** A JSON-protocol answer (Secrets Manager, EventBridge). */
export function jsonAnswer(body: unknown): AwsResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() },
    body: JSON.stringify(body),
  };
}

/** Why AWS would refuse this ListSecrets body before looking at any secret, if it would. */
export function refuseListSecrets(body: Json): AwsResponse | undefined {
  const bad = outOfRange(body.MaxResults, 'maxResults', PAGE_MAX.secrets);
  return bad ? jsonError(400, 'ValidationException', bad) : undefined;
}

export const invalidNextToken = (): AwsResponse =>
  jsonError(400, 'InvalidNextTokenException', 'The NextToken value is invalid.');

const compact = (o: Json): Json => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));

/** A secret as ListSecrets shows it, from moto's entry (which is also its DescribeSecret answer). */
export function listedSecret(raw: Json): Json {
  const { VersionIdsToStages, ReplicationStatus, ...entry } = raw;
  if (entry.SecretVersionsToStages === undefined && VersionIdsToStages)
    entry.SecretVersionsToStages = VersionIdsToStages;
  return compact(entry);
}

// Left to GetFunction by ListFunctions.
const NOT_LISTED_FUNCTION_FIELDS = [
  'State',
  'StateReason',
  'StateReasonCode',
  'LastUpdateStatus',
  'LastUpdateStatusReason',
  'LastUpdateStatusReasonCode',
  'RuntimeVersionConfig',
];

type FunctionKey = [name: string, version: string];
const functionKey = (f: Json): FunctionKey => [String(f.FunctionName ?? ''), String(f.Version ?? '$LATEST')];
const versionRank = (v: string) => (v === '$LATEST' ? -1 : Number(v));
const compareKeys = ([n1, v1]: FunctionKey, [n2, v2]: FunctionKey) =>
  n1 < n2 ? -1 : n1 > n2 ? 1 : versionRank(v1) - versionRank(v2);
const encodeMarker = (k: FunctionKey) => Buffer.from(JSON.stringify(k)).toString('base64url');
function decodeMarker(marker: string): FunctionKey | undefined {
  try {
    const k: unknown = JSON.parse(Buffer.from(marker, 'base64url').toString('utf8'));
    return Array.isArray(k) && k.length === 2 && k.every((s) => typeof s === 'string')
      ? (k as FunctionKey)
      : undefined;
  } catch {
    return undefined;
  }
}

const XML_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const xmlUnescape = (s: string) =>
  s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, e: string) =>
    e.startsWith('#x') || e.startsWith('#X')
      ? String.fromCodePoint(Number.parseInt(e.slice(2), 16))
      : e.startsWith('#')
        ? String.fromCodePoint(Number(e.slice(1)))
        : (XML_ENTITIES[e.toLowerCase()] ?? `&${e};`),
  );
/** RFC 3986: only A–Z a–z 0–9 - . _ ~ stay as they are (as IAM, and moto's GetRole, encode). */
export const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** ListRoles' XML as IAM writes it: trust policies encoded, the attributes left to GetRole removed. */
export function listedRolesXml(xml: string): string {
  return xml
    .replace(/<(PermissionsBoundary|RoleLastUsed|Tags)(?:\s*\/>|>[\s\S]*?<\/\1>)/g, '')
    .replace(/<AssumeRolePolicyDocument>([^<]*)<\/AssumeRolePolicyDocument>/g, (whole, text: string) => {
      const doc = xmlUnescape(text);
      return doc.trimStart().startsWith('{')
        ? `<AssumeRolePolicyDocument>${rfc3986(doc)}</AssumeRolePolicyDocument>`
        : whole;
    });
}

function withJsonBody(req: AwsRequest, body: Json): AwsRequest {
  const bytes = Buffer.from(JSON.stringify(body));
  return { ...req, body: bytes, headers: { ...req.headers, 'content-length': String(bytes.length) } };
}

const parsed = (res: AwsResponse): Json => JSON.parse(res.body.toString()) as Json;
const reply = (res: AwsResponse, body: unknown): AwsResponse => ({ ...res, body: JSON.stringify(body) });

/** The front-door interceptor; see the file comment. */
export function listFidelity(opts: { motoUrl: string }): Interceptor {
  const { motoUrl } = opts;

  async function listSecrets(req: AwsRequest): Promise<AwsResponse> {
    const body = jsonBody(req);
    const refused = refuseListSecrets(body);
    if (refused) return refused;
    // moto's tokens are offsets into its list.
    if (body.NextToken !== undefined && !/^\d+$/.test(String(body.NextToken))) return invalidNextToken();
    const res = await forward(motoUrl, req);
    if (res.status !== 200) return res;
    const out = parsed(res);
    return reply(res, {
      SecretList: ((out.SecretList ?? []) as Json[]).map(listedSecret),
      ...(out.NextToken ? { NextToken: out.NextToken } : {}),
    });
  }

  async function listRules(req: AwsRequest): Promise<AwsResponse> {
    const body = jsonBody(req);
    const bad = outOfRange(body.Limit, 'limit', PAGE_MAX.rules);
    if (bad) return jsonError(400, 'ValidationException', bad);
    const res = await forward(
      motoUrl,
      withJsonBody(req, { ...body, Limit: body.Limit ?? LIST_RULES_DEFAULT }),
    );
    if (res.status !== 200) return res;
    const out = parsed(res);
    const prefix = typeof body.NamePrefix === 'string' ? body.NamePrefix : '';
    const rules = ((out.Rules ?? []) as Json[])
      .filter((r) => String(r.Name ?? '').startsWith(prefix))
      .map(({ CreatedBy, ...rule }) => compact(rule));
    return reply(res, { Rules: rules, ...(out.NextToken ? { NextToken: out.NextToken } : {}) });
  }

  async function listFunctions(req: AwsRequest): Promise<AwsResponse> {
    const maxItems = req.query.get('MaxItems');
    const bad = outOfRange(maxItems ?? undefined, 'maxItems', LIST_FUNCTIONS_MAX_ITEMS);
    if (bad) return apiError(randomUUID(), new LambdaApiError(400, 'ValidationException', bad));
    const marker = req.query.get('Marker');
    const after = marker ? decodeMarker(marker) : undefined;
    if (marker && !after)
      return apiError(
        randomUUID(),
        new LambdaApiError(400, 'InvalidParameterValueException', 'Invalid Marker'),
      );
    const res = await forward(motoUrl, req);
    if (res.status !== 200) return res;
    // In a stable order, so a marker (the last key given) holds while functions come and go.
    const all = ((parsed(res).Functions ?? []) as Json[])
      .map((f) => {
        const listed = compact(f);
        for (const field of NOT_LISTED_FUNCTION_FIELDS) delete listed[field];
        return listed;
      })
      .sort((a, b) => compareKeys(functionKey(a), functionKey(b)));
    const start = after ? all.filter((f) => compareKeys(functionKey(f), after) <= 0).length : 0;
    const size = Math.min(Number(maxItems ?? PAGE_MAX.functions), PAGE_MAX.functions);
    const page = all.slice(start, start + size);
    const last = page.at(-1);
    const more = start + size < all.length && last !== undefined;
    return reply(res, { Functions: page, ...(more ? { NextMarker: encodeMarker(functionKey(last)) } : {}) });
  }

  function describeLogGroups(req: AwsRequest): AwsResponse | undefined {
    const bad = outOfRange(jsonBody(req).limit, 'limit', PAGE_MAX.logGroups);
    return bad ? jsonError(400, 'InvalidParameterException', bad) : undefined;
  }

  async function listRoles(req: AwsRequest): Promise<AwsResponse> {
    const form = new URLSearchParams(req.body.toString('utf8'));
    const bad = outOfRange(form.get('MaxItems') ?? undefined, 'maxItems', PAGE_MAX.roles);
    if (bad) return iamError(400, 'ValidationError', bad);
    const res = await forward(motoUrl, req);
    if (res.status !== 200) return res;
    return { ...res, body: listedRolesXml(res.body.toString()) };
  }

  // The Tagging API names a log group's resource type logs:log-group; moto 5.2.5 calls it
  // logs:loggroup, so a filter with AWS's name would find none.
  async function getResources(req: AwsRequest): Promise<AwsResponse> {
    const body = jsonBody(req);
    const bad = outOfRange(body.ResourcesPerPage, 'resourcesPerPage', PAGE_MAX.tagged);
    if (bad) return jsonError(400, 'InvalidParameterException', bad);
    const filters = Array.isArray(body.ResourceTypeFilters) ? body.ResourceTypeFilters : [];
    const motoName = (f: unknown) => (f === 'logs:log-group' ? 'logs:loggroup' : f);
    // AWS recommends ResourcesPerPage over TagsPerPage; moto cuts every page at TagsPerPage too (100
    // by default: 16 of our resources, six tags each). Here at its largest, 500 (83 of ours): pages
    // may still be shorter than AWS's, so the call counts err high.
    const tagsPerPage = body.TagsPerPage ?? (body.ResourcesPerPage === undefined ? undefined : 500);
    return forward(
      motoUrl,
      withJsonBody(req, {
        ...body,
        ResourceTypeFilters: filters.map(motoName),
        ...(tagsPerPage === undefined ? {} : { TagsPerPage: tagsPerPage }),
      }),
    );
  }

  return async (req) => {
    const call = `${req.service}.${req.operation}`;
    if (call === 'tagging.GetResources') return getResources(req);
    if (call === 'secretsmanager.ListSecrets') return listSecrets(req);
    if (call === 'events.ListRules') return listRules(req);
    if (call === 'lambda.ListFunctions') return listFunctions(req);
    if (call === 'logs.DescribeLogGroups') return describeLogGroups(req);
    if (call === 'iam.ListRoles') return listRoles(req);
    return undefined;
  };
}
