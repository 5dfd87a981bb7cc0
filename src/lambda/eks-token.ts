// The bearer token EKS accepts: a presigned STS GetCallerIdentity URL, as `aws eks get-token` and
// aws-iam-authenticator make it. The API server's authenticator replays the URL against STS and
// maps the returned role to the access entry's username; the signed x-k8s-aws-id header pins the
// token to one cluster. scripts/eks-token-vectors.py and the test beside this file prove the bytes
// equal botocore's.

import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export const TOKEN_PREFIX = 'k8s-aws-v1.';
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
// What the CLI signs with. The authenticator accepts a token for 15 minutes after X-Amz-Date
// whatever X-Amz-Expires says, so this does not shorten the token's life.
export const PRESIGN_EXPIRES_SECONDS = 60;
// The CLI tells clients to refresh after 14 minutes; we do the same, minus a margin for clock skew
// and for the request in flight.
export const TOKEN_LIFETIME_MS = 14 * 60_000;
export const DEFAULT_REFRESH_MARGIN_MS = 60_000;

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  /** When the credentials stop working; a token signed with them dies then too. */
  expiration?: Date | undefined;
}

/** The SDK's credential provider shape (e.g. a client's `config.credentials`). */
export type CredentialProvider = () => Promise<AwsCredentials>;

export interface PresignInput {
  region: string;
  clusterName: string;
  credentials: AwsCredentials;
  signingDate: Date;
}

// DNS suffix per partition, for the partitions the CRD's ARN pattern admits (region prefixes as in
// botocore's partitions.json); the test checks each against botocore's endpoint resolver.
const PARTITION_SUFFIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^cn-/, 'amazonaws.com.cn'],
  [/^us-iso-/, 'c2s.ic.gov'],
  [/^us-isob-/, 'sc2s.sgov.gov'],
  [/^eu-isoe-/, 'cloud.adc-e.uk'],
  [/^us-isof-/, 'csp.hci.ic.gov'],
];

/** The DNS suffix of the region's partition: amazonaws.com outside China and the isolated regions. */
export function dnsSuffix(region: string): string {
  return PARTITION_SUFFIXES.find(([prefix]) => prefix.test(region))?.[1] ?? 'amazonaws.com';
}

/** The regional STS endpoint's host, which the token's URL must name. */
export function stsHostname(region: string): string {
  return `sts.${region}.${dnsSuffix(region)}`;
}

// The signature covers the sorted canonical query, so any order would verify; botocore's order
// (operation params, auth params, session token, signature last) is used so the token is
// byte-identical and the comparison test can be exact.
const QUERY_ORDER = [
  'Action',
  'Version',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Security-Token',
  'X-Amz-Signature',
];

/** The presigned URL, byte for byte as botocore's generate_presigned_url('get_caller_identity'). */
export async function presignGetCallerIdentity(input: PresignInput): Promise<string> {
  const hostname = stsHostname(input.region);
  const signer = new SignatureV4({
    service: 'sts',
    region: input.region,
    credentials: input.credentials,
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.presign(
    new HttpRequest({
      method: 'GET',
      protocol: 'https:',
      hostname,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers: { host: hostname, [CLUSTER_ID_HEADER]: input.clusterName },
    }),
    { expiresIn: PRESIGN_EXPIRES_SECONDS, signingDate: input.signingDate },
  );
  const params = signed.query ?? {};
  const unknown = Object.keys(params).filter((name) => !QUERY_ORDER.includes(name));
  // Serializing only known names would silently drop a new one and break the signature.
  if (unknown.length > 0) throw new Error(`presign added unexpected query parameters: ${unknown.join(', ')}`);
  const query = QUERY_ORDER.flatMap((name) => {
    const value = params[name];
    return typeof value === 'string' ? [`${name}=${percentEncode(value)}`] : [];
  });
  return `https://${hostname}/?${query.join('&')}`;
}

export function tokenFromUrl(url: string): string {
  return TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
}

export async function eksToken(input: PresignInput): Promise<string> {
  return tokenFromUrl(await presignGetCallerIdentity(input));
}

export interface TokenCacheOptions {
  region: string;
  clusterName: string;
  credentials: CredentialProvider;
  /** Milliseconds since the epoch; injected so tests control time. */
  now?: () => number;
  refreshMarginMs?: number;
}

// One token per warm container: signing is cheap, but fetching credentials may not be. A token is
// reused until 14 minutes minus the margin after it was signed, or until shortly before its
// credentials expire, whichever is first.
export class TokenCache {
  readonly #options: TokenCacheOptions;
  readonly #now: () => number;
  readonly #margin: number;
  #current: { token: Promise<string>; refreshAt: number } | undefined;

  constructor(options: TokenCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#margin = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  }

  get(): Promise<string> {
    const now = this.#now();
    if (this.#current !== undefined && now < this.#current.refreshAt) return this.#current.token;
    // The pending promise is cached too, so concurrent callers share one signing; a failure is
    // dropped so the next call tries again.
    const entry: { token: Promise<string>; refreshAt: number } = {
      token: Promise.resolve(''),
      refreshAt: Number.POSITIVE_INFINITY,
    };
    entry.token = this.#sign(now).then(({ token, refreshAt }) => {
      entry.refreshAt = refreshAt;
      return token;
    });
    entry.token.catch(() => {
      if (this.#current === entry) this.#current = undefined;
    });
    this.#current = entry;
    return entry.token;
  }

  /** Forget the token, e.g. after the API server answered 401 to it. */
  invalidate(): void {
    this.#current = undefined;
  }

  async #sign(now: number): Promise<{ token: string; refreshAt: number }> {
    const credentials = await this.#options.credentials();
    const token = await eksToken({
      region: this.#options.region,
      clusterName: this.#options.clusterName,
      credentials,
      signingDate: new Date(now),
    });
    const refreshAt = Math.min(
      now + TOKEN_LIFETIME_MS - this.#margin,
      (credentials.expiration?.getTime() ?? Number.POSITIVE_INFINITY) - this.#margin,
    );
    return { token, refreshAt };
  }
}

// RFC 3986 unreserved characters stay, everything else is percent-encoded as UTF-8: what both
// botocore's percent_encode and the SigV4 canonical query use.
function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
