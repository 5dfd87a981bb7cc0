/**
 * Checks an EKS bearer token (`k8s-aws-v1.` + base64url of a presigned STS GetCallerIdentity URL) the way
 * aws-iam-authenticator's `pkg/token/token.go` Verify does before it forwards the URL to STS.
 *
 * What real STS then adds and moto does not: it verifies the SigV4 signature, and with it that the
 * `x-k8s-aws-id` header the authenticator sends equals the value the client signed — that is how a token
 * minted for another cluster is refused. moto checks no signature, so by default a token for another
 * cluster, or one whose query was tampered with, passes here. `verifyEksTokenSignature` closes that gap
 * when the test bed knows the secret of the access key (it saw the AssumeRole answer go by): it presigns
 * the same request again for *our* cluster name and compares signatures.
 */
import { createHash, createHmac, type Hash, type Hmac, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

export const TOKEN_PREFIX = 'k8s-aws-v1.';
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** aws-iam-authenticator refuses longer tokens before decoding them. */
export const MAX_TOKEN_LENGTH = 4096;
/** Presigned STS URLs are honoured for 15 minutes after X-Amz-Date, whatever X-Amz-Expires says. */
export const TOKEN_LIFETIME_MS = 15 * 60 * 1000;

/** The only query parameters a token may carry (compared lower-cased, as aws-iam-authenticator does). */
const ALLOWED_PARAMS = new Set([
  'action',
  'version',
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-security-token',
  'x-amz-signature',
  'x-amz-signedheaders',
]);

export type EksTokenErrorReason =
  | 'too-large'
  | 'prefix'
  | 'encoding'
  | 'url'
  | 'scheme'
  | 'host'
  | 'path'
  | 'query'
  | 'action'
  | 'signed-headers'
  | 'expires'
  | 'date'
  | 'expired'
  | 'not-yet-valid'
  | 'credential'
  | 'unknown-access-key'
  | 'session-token'
  | 'signature';

export class EksTokenError extends Error {
  readonly reason: EksTokenErrorReason;
  constructor(reason: EksTokenErrorReason, message: string) {
    super(message);
    this.name = 'EksTokenError';
    this.reason = reason;
  }
}

export interface EksTokenCheckOptions {
  /** STS host names a token may point at; see `defaultStsHosts`. */
  allowedHosts: readonly string[];
  now?: () => Date;
  /** How far X-Amz-Date may lie in the future (clock skew between signer and us). Default 5 minutes. */
  maxFutureSkewMs?: number;
}

export interface CheckedEksToken {
  accessKeyId: string;
  /** Region of the STS endpoint in the URL (`us-east-1` for the global endpoint). */
  region: string;
  /** Region in the credential scope: the one the signature was made for. */
  signingRegion: string;
  /** The decoded presigned URL. */
  url: string;
  host: string;
  signedAt: Date;
  /** signedAt + 15 minutes. */
  expiresAt: Date;
  /** X-Amz-Expires as sent (ignored by STS for the lifetime, but part of the signature). */
  expiresSeconds: number;
  signedHeaders: string[];
  sessionToken?: string;
  signature: string;
  /** Query parameters as they appear in the URL (original key case), decoded. */
  params: Array<[string, string]>;
}

/** Default allowed STS hosts for some regions: the global endpoint (aws partition only), regional and dual-stack. */
const PARTITION_REGIONS: Record<string, readonly string[]> = {
  aws: [
    'us-east-1',
    'us-east-2',
    'us-west-1',
    'us-west-2',
    'af-south-1',
    'ap-east-1',
    'ap-east-2',
    'ap-south-1',
    'ap-south-2',
    'ap-southeast-1',
    'ap-southeast-2',
    'ap-southeast-3',
    'ap-southeast-4',
    'ap-southeast-5',
    'ap-southeast-7',
    'ap-northeast-1',
    'ap-northeast-2',
    'ap-northeast-3',
    'ca-central-1',
    'ca-west-1',
    'eu-central-1',
    'eu-central-2',
    'eu-west-1',
    'eu-west-2',
    'eu-west-3',
    'eu-south-1',
    'eu-south-2',
    'eu-north-1',
    'il-central-1',
    'me-south-1',
    'me-central-1',
    'mx-central-1',
    'sa-east-1',
  ],
  'aws-cn': ['cn-north-1', 'cn-northwest-1'],
  'aws-us-gov': ['us-gov-west-1', 'us-gov-east-1'],
};

/**
 * The regions whose STS endpoints a cluster in `region` accepts tokens for: every region of its
 * partition, as aws-iam-authenticator does (a function signs for its own region's endpoint, which
 * need not be the cluster's).
 */
export function partitionRegions(region: string): string[] {
  const partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  return [...new Set([region, ...(PARTITION_REGIONS[partition] ?? [])])];
}

export function defaultStsHosts(regions: readonly string[]): string[] {
  const hosts = new Set<string>();
  for (const region of regions) {
    if (region.startsWith('cn-')) {
      hosts.add(`sts.${region}.amazonaws.com.cn`);
      hosts.add(`sts.${region}.api.amazonwebservices.com.cn`);
      continue;
    }
    // The global endpoint belongs to the aws partition only; GovCloud must use its regional endpoints.
    if (!region.startsWith('us-gov-')) hosts.add('sts.amazonaws.com');
    hosts.add(`sts.${region}.amazonaws.com`);
    hosts.add(`sts.${region}.api.aws`);
  }
  return [...hosts];
}

/** Structural checks only (no signature): throws EksTokenError or returns what the token claims. */
export function parseEksToken(token: string, options: EksTokenCheckOptions): CheckedEksToken {
  if (token.length > MAX_TOKEN_LENGTH) throw new EksTokenError('too-large', 'token is too large');
  if (!token.startsWith(TOKEN_PREFIX)) {
    throw new EksTokenError('prefix', `token is missing expected "${TOKEN_PREFIX}" prefix`);
  }
  const url = decodeRawBase64Url(token.slice(TOKEN_PREFIX.length));

  // Parse by hand rather than with WHATWG URL: that one drops a default port and normalises the path,
  // which would let through what Go's url.Parse (and so aws-iam-authenticator) refuses.
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/s.exec(url);
  if (!m) throw new EksTokenError('url', 'token does not contain an absolute URL');
  const [, scheme = '', host = '', path = '', rawQuery = ''] = m;
  if (scheme.toLowerCase() !== 'https') {
    throw new EksTokenError('scheme', `unexpected scheme "${scheme}" in pre-signed URL`);
  }
  if (!options.allowedHosts.includes(host)) {
    throw new EksTokenError('host', `unexpected hostname "${host}" in pre-signed URL`);
  }
  if (path !== '/') throw new EksTokenError('path', 'unexpected path in pre-signed URL');

  const params = parseQuery(rawQuery);
  const lower = new Map<string, string>();
  for (const [key, value] of params) {
    const k = key.toLowerCase();
    if (lower.has(k)) throw new EksTokenError('query', `duplicate query parameter found: "${key}"`);
    if (!ALLOWED_PARAMS.has(k)) throw new EksTokenError('query', `non-whitelisted query parameter "${key}"`);
    lower.set(k, value);
  }

  if (lower.get('action') !== 'GetCallerIdentity') {
    throw new EksTokenError('action', 'unexpected action parameter in pre-signed URL');
  }
  const signedHeaders = (lower.get('x-amz-signedheaders') ?? '').split(';');
  if (!signedHeaders.some((h) => h.toLowerCase() === CLUSTER_ID_HEADER)) {
    throw new EksTokenError(
      'signed-headers',
      `client did not sign the ${CLUSTER_ID_HEADER} header in the pre-signed URL`,
    );
  }
  // Go's strconv.Atoi: optional sign, decimal digits.
  const expiresRaw = lower.get('x-amz-expires') ?? '';
  const expires = /^[+-]?\d{1,10}$/.test(expiresRaw) ? Number(expiresRaw) : Number.NaN;
  if (!(expires >= 0 && expires <= 900)) {
    throw new EksTokenError('expires', `invalid X-Amz-Expires parameter in pre-signed URL: "${expiresRaw}"`);
  }
  const dateRaw = lower.get('x-amz-date');
  if (!dateRaw) throw new EksTokenError('date', 'X-Amz-Date parameter must be present in pre-signed URL');
  const signedAt = parseAmzDate(dateRaw);
  const now = (options.now ?? (() => new Date()))().getTime();
  const expiresAt = new Date(signedAt.getTime() + TOKEN_LIFETIME_MS);
  if (now > expiresAt.getTime()) {
    throw new EksTokenError('expired', `X-Amz-Date parameter is expired (15 minute expiration) ${dateRaw}`);
  }
  if (signedAt.getTime() - now > (options.maxFutureSkewMs ?? 5 * 60 * 1000)) {
    throw new EksTokenError('not-yet-valid', `X-Amz-Date parameter ${dateRaw} is in the future`);
  }

  // Beyond aws-iam-authenticator: what real STS would refuse before even looking at the signature.
  // moto accepts anything, so without these a malformed token would authenticate in the test bed only.
  if (lower.get('x-amz-algorithm') !== 'AWS4-HMAC-SHA256') {
    throw new EksTokenError('credential', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
  }
  const scope = (lower.get('x-amz-credential') ?? '').split('/');
  const [accessKeyId = '', day = '', signingRegion = '', service = '', terminator = ''] = scope;
  if (scope.length !== 5 || !accessKeyId || service !== 'sts' || terminator !== 'aws4_request') {
    throw new EksTokenError(
      'credential',
      'X-Amz-Credential is not <key>/<yyyymmdd>/<region>/sts/aws4_request',
    );
  }
  if (day !== dateRaw.slice(0, 8)) {
    throw new EksTokenError('credential', 'X-Amz-Credential date does not match X-Amz-Date');
  }
  const region = host === 'sts.amazonaws.com' ? 'us-east-1' : (host.split('.')[1] ?? '');
  if (signingRegion !== region) {
    throw new EksTokenError('credential', `signed for region ${signingRegion} but sent to ${host}`);
  }
  const signature = lower.get('x-amz-signature') ?? '';
  if (!/^[0-9a-f]{64}$/.test(signature)) {
    throw new EksTokenError('credential', 'X-Amz-Signature is not 64 lower-case hex digits');
  }

  const sessionToken = lower.get('x-amz-security-token');
  return {
    accessKeyId,
    region,
    signingRegion,
    url,
    host,
    signedAt,
    expiresAt,
    expiresSeconds: expires,
    signedHeaders,
    ...(sessionToken === undefined ? {} : { sessionToken }),
    signature,
    params,
  };
}

/** What the test bed knows about an access key: its secret, and the session token issued with it. */
export interface KnownCredentials {
  secretAccessKey: string;
  sessionToken?: string;
}
export type SecretLookup = (
  accessKeyId: string,
) => KnownCredentials | undefined | Promise<KnownCredentials | undefined>;

/**
 * Does what real STS does with the URL the authenticator forwards along with `x-k8s-aws-id: clusterName`:
 * recompute the SigV4 signature and compare. Rejects tokens for another cluster and any tampering.
 */
export async function verifyEksTokenSignature(
  token: CheckedEksToken,
  clusterName: string,
  secretFor: SecretLookup,
): Promise<void> {
  const known = await secretFor(token.accessKeyId);
  if (!known) {
    throw new EksTokenError('unknown-access-key', `no secret known for access key ${token.accessKeyId}`);
  }
  // STS knows which session token belongs to a temporary key; a token carrying another one is refused.
  if (known.sessionToken !== undefined && known.sessionToken !== token.sessionToken) {
    throw new EksTokenError('session-token', 'X-Amz-Security-Token does not belong to the access key');
  }
  // The authenticator sends exactly these signed headers; a token that signed anything else cannot verify.
  const sent = ['host', CLUSTER_ID_HEADER];
  const signed = token.signedHeaders.map((h) => h.toLowerCase()).sort();
  if (signed.join(';') !== sent.join(';')) {
    throw new EksTokenError(
      'signature',
      `token signs headers ${signed.join(';')}, expected ${sent.join(';')}`,
    );
  }

  const signer = new SignatureV4({
    service: 'sts',
    region: token.signingRegion,
    sha256: NodeSha256,
    credentials: {
      accessKeyId: token.accessKeyId,
      secretAccessKey: known.secretAccessKey,
      ...(token.sessionToken === undefined ? {} : { sessionToken: token.sessionToken }),
    },
  });
  const query: Record<string, string> = {};
  for (const [key, value] of token.params) if (!key.toLowerCase().startsWith('x-amz-')) query[key] = value;
  const presigned = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname: token.host,
      path: '/',
      query,
      headers: { host: token.host, [CLUSTER_ID_HEADER]: clusterName },
    },
    { signingDate: token.signedAt, expiresIn: token.expiresSeconds },
  );
  const expected = String(presigned.query?.['X-Amz-Signature'] ?? '');
  const a = Buffer.from(expected);
  const b = Buffer.from(token.signature);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new EksTokenError(
      'signature',
      `signature does not match for ${CLUSTER_ID_HEADER}: ${clusterName} (token for another cluster, or tampered)`,
    );
  }
}

export interface EksTokenVerifyOptions extends EksTokenCheckOptions {
  /** With both of these, the signature is verified too (see verifyEksTokenSignature). */
  clusterName?: string;
  secretFor?: SecretLookup;
}

/** parseEksToken, then verifyEksTokenSignature when a secret lookup is configured. */
export async function checkEksToken(token: string, options: EksTokenVerifyOptions): Promise<CheckedEksToken> {
  const checked = parseEksToken(token, options);
  if (options.secretFor) {
    if (options.clusterName === undefined) throw new Error('checkEksToken: secretFor needs clusterName');
    await verifyEksTokenSignature(checked, options.clusterName, options.secretFor);
  }
  return checked;
}

/** Go's base64.RawURLEncoding: URL alphabet, no padding (a padded token is an error, not tolerated). */
function decodeRawBase64Url(s: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
    const why = s.includes('=') ? 'padding is not allowed' : 'not base64url';
    throw new EksTokenError('encoding', `token payload is not raw base64url: ${why}`);
  }
  return Buffer.from(s, 'base64url').toString('utf8');
}

/** Go's url.ParseQuery: `&`-separated, `;` refused, `+` is a space, bad escapes are errors. */
function parseQuery(raw: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) throw new EksTokenError('query', 'malformed query parameter');
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    try {
      out.push([decodeURIComponent(key.replace(/\+/g, ' ')), decodeURIComponent(value.replace(/\+/g, ' '))]);
    } catch {
      throw new EksTokenError('query', 'malformed query parameter');
    }
  }
  return out;
}

/** `20060102T150405Z`, and a real calendar date. */
function parseAmzDate(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m) {
    const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const date = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
    const roundTrip = date
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    if (roundTrip === s) return date;
  }
  throw new EksTokenError('date', `error parsing X-Amz-Date parameter ${s} into format 20060102T150405Z`);
}

/** SHA-256 / HMAC-SHA-256 in the shape @smithy/signature-v4 wants, from node:crypto. */
class NodeSha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

function toBuffer(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}
