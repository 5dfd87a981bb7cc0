/**
 * The test bed's stand-in for the EKS authenticator: a Kubernetes token-webhook (TokenReview) server that
 * kube-apiserver calls with the Lambda's bearer token.
 *
 * Flow, as in aws-iam-authenticator + EKS access entries:
 * 1. check the token's shape (eks-token-check.ts; with `secretFor`, its signature and cluster too);
 * 2. ask STS who signed it — here moto's GetCallerIdentity with the token's access key (moto maps the keys
 *    it issued in AssumeRole to `assumed-role/<Role>/<Session>`, UserId `<RoleId>:<Session>`);
 * 3. find the access entry by the caller's unique ID (RoleId/UserId), not by ARN: the assumed-role ARN has
 *    lost the role's path, and a role deleted and recreated under the same ARN has a new ID, which the old
 *    entry must not accept;
 * 4. answer with the entry's username (templates expanded) and groups — once the entry has propagated, when
 *    the test bed is unkind (`entryEffective`).
 */
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { AccessEntry, AccessEntryStore, PrincipalType } from './eks-access-entries.ts';
import {
  checkEksToken,
  defaultStsHosts,
  EksTokenError,
  partitionRegions,
  type SecretLookup,
} from './eks-token-check.ts';

export interface EksAuthenticatorOptions {
  motoUrl: string;
  /** The cluster's region: with clusterName, the one cluster whose access entries this authenticator honours. */
  region: string;
  /** The cluster this authenticator serves: access entries of this cluster only; the signed x-k8s-aws-id. */
  clusterName: string;
  store: AccessEntryStore;
  tls: { cert: string; key: string };
  /** Enables SigV4 verification (another cluster's or a tampered token is refused); see eks-token-check.ts. */
  secretFor?: SecretLookup;
  /**
   * Whether an entry is honoured yet (access-entry propagation, iam-propagation.ts); one not yet honoured is
   * refused as if it did not exist. Default: every entry at once.
   */
  entryEffective?: (entry: AccessEntry) => boolean;
  /** STS hosts a token may name; default: the global, regional and dual-stack hosts of every region of `region`'s partition. */
  allowedHosts?: readonly string[];
  now?: () => Date;
  /** Loopback by default. */
  host?: string;
  log?: (message: string) => void;
}

export interface EksAuthenticator {
  /** The webhook URL (https, loopback, random port) to put into the webhook kubeconfig. */
  url: string;
  close(): Promise<void>;
}

export interface UserInfo {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type TokenReviewStatus =
  | { authenticated: true; user: UserInfo }
  | { authenticated: false; error: string };

/** The caller as STS names it, reduced to what access entries are matched on. */
export interface CallerIdentity {
  arn: string;
  /** The IAM principal: assumed-role ARN → role ARN (without path, which the session ARN does not carry). */
  canonicalArn: string;
  accountId: string;
  type: PrincipalType;
  /** Role or user name. */
  name: string;
  /** RoleId (`AROA…`) or UserId (`AIDA…`). */
  principalId: string;
  sessionName: string;
  accessKeyId: string;
}

type AuthenticateOptions = Omit<EksAuthenticatorOptions, 'tls' | 'host' | 'log'>;

/** Decides one token. Never throws: every failure is `authenticated: false` with the reason. */
export async function authenticateEksToken(
  token: string,
  options: AuthenticateOptions,
): Promise<TokenReviewStatus> {
  try {
    const checked = await checkEksToken(token, {
      allowedHosts: options.allowedHosts ?? defaultStsHosts(partitionRegions(options.region)),
      clusterName: options.clusterName,
      ...(options.now ? { now: options.now } : {}),
      ...(options.secretFor ? { secretFor: options.secretFor } : {}),
    });
    const identity = await callerIdentity(
      options.motoUrl,
      checked.region,
      checked.accessKeyId,
      checked.sessionToken,
    );
    // Entries of this (region, name) only: a same-named cluster in another region is another cluster.
    const entry = options.store.findByPrincipalId(options.clusterName, identity.principalId, options.region);
    if (!entry || entry.principalType !== identity.type || entry.principalName !== identity.name) {
      return { authenticated: false, error: noEntryReason(options, identity) };
    }
    if (options.entryEffective && !options.entryEffective(entry)) {
      return {
        authenticated: false,
        error: `${noEntryReason(options, identity)}: the entry, created or changed at ${entry.modifiedAt.toISOString()}, has not propagated yet`,
      };
    }
    return { authenticated: true, user: userFor(entry, identity) };
  } catch (err) {
    const prefix = err instanceof EksTokenError ? `invalid token (${err.reason})` : 'cannot authenticate';
    return { authenticated: false, error: `${prefix}: ${(err as Error).message}` };
  }
}

export async function startEksAuthenticator(options: EksAuthenticatorOptions): Promise<EksAuthenticator> {
  const log = options.log ?? ((m: string) => process.stderr.write(`[eks-authenticator] ${m}\n`));
  const server: Server = createServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST') return reply(405, { error: 'TokenReview must be POSTed' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) req.destroy();
      else chunks.push(c);
    });
    req.on('end', async () => {
      let review: { apiVersion?: unknown; kind?: unknown; spec?: { token?: unknown } };
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, { error: 'body is not JSON' });
      }
      if (review?.kind !== 'TokenReview' || typeof review.spec?.token !== 'string') {
        return reply(400, { error: 'expected a TokenReview with spec.token' });
      }
      const status = await authenticateEksToken(review.spec.token, options);
      if (status.authenticated) log(`authenticated ${status.user.username} (${status.user.uid})`);
      else log(`refused: ${status.error}`);
      // 200 with authenticated=false, not an HTTP error: kube-apiserver then answers 401 at once instead of
      // retrying the webhook with back-off as it does on errors.
      reply(200, {
        apiVersion:
          review.apiVersion === 'authentication.k8s.io/v1beta1'
            ? review.apiVersion
            : 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        status,
      });
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}/authenticate`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The kubeconfig kube-apiserver's `--authentication-token-webhook-config-file` wants (JSON is valid YAML). */
export function webhookKubeconfig(options: { url: string; caPem: string }): string {
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'eks-authenticator',
          cluster: {
            server: options.url,
            'certificate-authority-data': Buffer.from(options.caPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'kube-apiserver', user: {} }],
      contexts: [{ name: 'webhook', context: { cluster: 'eks-authenticator', user: 'kube-apiserver' } }],
      'current-context': 'webhook',
    },
    null,
    2,
  )}\n`;
}

export async function writeWebhookKubeconfig(
  path: string,
  options: { url: string; caPem: string },
): Promise<void> {
  await writeFile(path, webhookKubeconfig(options), { mode: 0o600 });
}

/** moto's answer for an access key it never issued (see moto/sts/models.py get_caller_identity). */
const MOTO_DEFAULT_USER_ID = 'AKIAIOSFODNN7EXAMPLE';

async function callerIdentity(
  motoUrl: string,
  region: string,
  accessKeyId: string,
  sessionToken: string | undefined,
): Promise<CallerIdentity> {
  const sts = new STSClient({
    endpoint: motoUrl,
    region,
    maxAttempts: 1,
    // moto checks no signature; it only reads the access key id from the Authorization header.
    credentials: { accessKeyId, secretAccessKey: 'x', ...(sessionToken ? { sessionToken } : {}) },
  });
  try {
    const out = await sts.send(new GetCallerIdentityCommand({}));
    return parseIdentity(out.Arn ?? '', out.UserId ?? '', out.Account ?? '', accessKeyId);
  } finally {
    sts.destroy();
  }
}

/** Like aws-iam-authenticator's arn.Canonicalize + getIdentityFromSTSResponse, for roles and users. */
export function parseIdentity(
  arn: string,
  userId: string,
  accountId: string,
  accessKeyId: string,
): CallerIdentity {
  if (userId === MOTO_DEFAULT_USER_ID && arn.endsWith(':user/moto')) {
    throw new Error(`access key ${accessKeyId} is unknown to STS (moto answered with its default identity)`);
  }
  const assumed = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(arn);
  if (assumed) {
    const [, partition, account, role = '', session = ''] = assumed;
    const parts = userId.split(':');
    if (parts.length !== 2 || parts[1] !== session) throw new Error(`malformed UserID "${userId}"`);
    return {
      arn,
      canonicalArn: `arn:${partition}:iam::${account}:role/${role}`,
      accountId,
      type: 'role',
      name: role,
      principalId: parts[0] as string,
      sessionName: session,
      accessKeyId,
    };
  }
  const user = /^arn:[^:]+:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(arn);
  if (user) {
    return {
      arn,
      canonicalArn: arn,
      accountId,
      type: 'user',
      name: user[1] as string,
      principalId: userId,
      sessionName: '',
      accessKeyId,
    };
  }
  throw new Error(`principal ${arn} cannot have an access entry (only IAM roles and users)`);
}

function userFor(entry: AccessEntry, id: CallerIdentity): UserInfo {
  // aws-iam-authenticator's renderTemplate: {{SessionName}} has '@' replaced, {{SessionNameRaw}} not.
  const username = entry.username
    .replaceAll('{{AccountID}}', id.accountId)
    .replaceAll('{{SessionName}}', id.sessionName.replaceAll('@', '-'))
    .replaceAll('{{SessionNameRaw}}', id.sessionName)
    .replaceAll('{{AccessKeyID}}', id.accessKeyId);
  return {
    username,
    uid: `aws-iam-authenticator:${id.accountId}:${id.principalId}`,
    groups: [...entry.kubernetesGroups],
    extra: {
      arn: [id.arn],
      canonicalArn: [id.canonicalArn],
      sessionName: [id.sessionName],
      accessKeyId: [id.accessKeyId],
      principalId: [id.principalId],
      'sigs.k8s.io/aws-iam-authenticator/principalId': [id.principalId],
    },
  };
}

/** Says why no entry matched — in particular the "role recreated under the same ARN" case. */
function noEntryReason(options: AuthenticateOptions, id: CallerIdentity): string {
  const stale = options.store
    .list(options.clusterName, options.region)
    .find((e) => e.principalType === id.type && e.principalName === id.name);
  if (stale && stale.principalId !== id.principalId) {
    return (
      `access entry for ${stale.principalArn} is bound to principal ID ${stale.principalId}, but the caller ` +
      `${id.arn} has ID ${id.principalId} (principal deleted and recreated?)`
    );
  }
  return `no access entry on cluster ${options.clusterName} (${options.region}) for ${id.canonicalArn} (principal ID ${id.principalId})`;
}
