import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import {
  type CheckedEksToken,
  checkEksToken,
  defaultStsHosts,
  type EksTokenErrorReason,
  type KnownCredentials,
  parseEksToken,
} from './eks-token-check.ts';

// A token builder of its own (not the product's src/lambda/eks-token.ts): presign GetCallerIdentity with
// x-k8s-aws-id signed, as aws-iam-authenticator's generator and botocore do.
class Sha256 {
  readonly #h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#h =
      secret === undefined
        ? createHash('sha256')
        : createHmac('sha256', typeof secret === 'string' ? secret : new Uint8Array(secret as ArrayBuffer));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#h.update(typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#h.digest());
  }
}

interface BuildOptions {
  cluster?: string | undefined;
  region?: string;
  host?: string;
  date?: Date;
  expires?: number;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
}

const SIGNED_AT = new Date('2026-03-01T12:00:00Z');
const KEY = {
  accessKeyId: 'ASIAEXAMPLEKEY000001',
  secretAccessKey: 'secret/with+chars',
  sessionToken: 'FQo+tok/en==',
};

async function presignedUrl(o: BuildOptions = {}): Promise<string> {
  const region = o.region ?? 'us-east-1';
  const host = o.host ?? `sts.${region}.amazonaws.com`;
  const signer = new SignatureV4({
    service: 'sts',
    region,
    sha256: Sha256,
    credentials: {
      accessKeyId: o.accessKeyId ?? KEY.accessKeyId,
      secretAccessKey: o.secretAccessKey ?? KEY.secretAccessKey,
      sessionToken: o.sessionToken ?? KEY.sessionToken,
    },
  });
  const headers: Record<string, string> = { host };
  const cluster = 'cluster' in o ? o.cluster : 'test-cluster';
  if (cluster !== undefined) headers['x-k8s-aws-id'] = cluster;
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname: host,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers,
    },
    { signingDate: o.date ?? SIGNED_AT, expiresIn: o.expires ?? 60 },
  );
  const qs = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `https://${host}/?${qs}`;
}

const encode = (url: string) => `k8s-aws-v1.${Buffer.from(url).toString('base64url')}`;
const buildToken = async (o: BuildOptions = {}) => encode(await presignedUrl(o));

const at = (deltaMs: number) => () => new Date(SIGNED_AT.getTime() + deltaMs);
const base = { allowedHosts: defaultStsHosts(['us-east-1']), now: at(60_000) };

describe('parseEksToken', () => {
  it('accepts a well-formed token and reports what it claims', async () => {
    const t = parseEksToken(await buildToken(), base);
    expect(t).toMatchObject({
      accessKeyId: KEY.accessKeyId,
      region: 'us-east-1',
      signingRegion: 'us-east-1',
      host: 'sts.us-east-1.amazonaws.com',
      expiresSeconds: 60,
      sessionToken: KEY.sessionToken,
    });
    expect(t.signedAt).toEqual(SIGNED_AT);
    expect(t.expiresAt).toEqual(new Date(SIGNED_AT.getTime() + 15 * 60_000));
    expect(t.signedHeaders).toEqual(['host', 'x-k8s-aws-id']);
    expect(t.url.startsWith('https://sts.us-east-1.amazonaws.com/?')).toBe(true);
  });

  it('accepts the global endpoint, signed for us-east-1', async () => {
    const t = parseEksToken(await buildToken({ host: 'sts.amazonaws.com' }), base);
    expect(t.region).toBe('us-east-1');
  });

  it('accepts a token 14 minutes old and one signed slightly ahead of our clock', async () => {
    const token = await buildToken();
    expect(() => parseEksToken(token, { ...base, now: at(14 * 60_000) })).not.toThrow();
    expect(() => parseEksToken(token, { ...base, now: at(-60_000) })).not.toThrow();
  });

  type Case = {
    name: string;
    reason: EksTokenErrorReason;
    token: () => Promise<string>;
    now?: () => Date;
  };
  const urlEdit = (edit: (url: string) => string, o?: BuildOptions) => async () =>
    encode(edit(await presignedUrl(o)));
  const cases: Case[] = [
    { name: 'expired date', reason: 'expired', token: () => buildToken(), now: at(15 * 60_000 + 1000) },
    { name: 'date in the future', reason: 'not-yet-valid', token: () => buildToken(), now: at(-10 * 60_000) },
    { name: 'X-Amz-Expires 901', reason: 'expires', token: () => buildToken({ expires: 901 }) },
    {
      name: 'negative X-Amz-Expires',
      reason: 'expires',
      token: urlEdit((u) => u.replace('X-Amz-Expires=60', 'X-Amz-Expires=-1')),
    },
    {
      name: 'x-k8s-aws-id not signed',
      reason: 'signed-headers',
      token: () => buildToken({ cluster: undefined }),
    },
    {
      name: 'padded base64',
      reason: 'encoding',
      token: async () => {
        const raw = Buffer.from(await presignedUrl()).toString('base64url');
        return `k8s-aws-v1.${raw}${'='.repeat((4 - (raw.length % 4)) % 4 || 2)}`;
      },
    },
    {
      name: 'standard base64 alphabet',
      reason: 'encoding',
      token: async () =>
        `k8s-aws-v1.+${Buffer.from(await presignedUrl())
          .toString('base64url')
          .slice(1)}`,
    },
    { name: 'not https', reason: 'scheme', token: urlEdit((u) => u.replace('https://', 'http://')) },
    {
      name: 'host of another region',
      reason: 'host',
      token: () => buildToken({ region: 'eu-west-1' }),
    },
    {
      name: 'foreign host',
      reason: 'host',
      token: urlEdit((u) => u.replace('sts.us-east-1.amazonaws.com', 'sts.us-east-1.amazonaws.com.evil.io')),
    },
    {
      name: 'explicit port',
      reason: 'host',
      token: urlEdit((u) => u.replace('amazonaws.com/', 'amazonaws.com:443/')),
    },
    { name: 'path other than /', reason: 'path', token: urlEdit((u) => u.replace('.com/?', '.com/x?')) },
    { name: 'extra query parameter', reason: 'query', token: urlEdit((u) => `${u}&Foo=bar`) },
    {
      name: 'duplicate parameter (other case)',
      reason: 'query',
      token: urlEdit((u) => `${u}&action=GetCallerIdentity`),
    },
    { name: 'malformed escape', reason: 'query', token: urlEdit((u) => `${u}&Version=%zz`) },
    {
      name: 'wrong action',
      reason: 'action',
      token: urlEdit((u) => u.replace('Action=GetCallerIdentity', 'Action=GetSessionToken')),
    },
    {
      name: 'wrong prefix',
      reason: 'prefix',
      token: async () => (await buildToken()).replace('-v1.', '-v2.'),
    },
    { name: 'too large', reason: 'too-large', token: async () => `k8s-aws-v1.${'A'.repeat(5000)}` },
    {
      name: 'unparseable date',
      reason: 'date',
      token: urlEdit((u) => u.replace(/X-Amz-Date=\d{8}T\d{6}Z/, 'X-Amz-Date=20260231T120000Z')),
    },
    {
      name: 'credential scope for another region',
      reason: 'credential',
      token: urlEdit((u) => u.replace('%2Fus-east-1%2F', '%2Feu-west-1%2F')),
    },
  ];
  it.each(cases)('refuses: $name', async ({ reason, token, now }) => {
    const t = await token();
    expect(() => parseEksToken(t, { ...base, ...(now ? { now } : {}) })).toThrow(
      expect.objectContaining({ name: 'EksTokenError', reason }),
    );
  });
});

describe('checkEksToken with a secret lookup (signature verification)', () => {
  const secretFor = (id: string): KnownCredentials | undefined =>
    id === KEY.accessKeyId
      ? { secretAccessKey: KEY.secretAccessKey, sessionToken: KEY.sessionToken }
      : undefined;
  const strict = { ...base, clusterName: 'test-cluster', secretFor };

  it('accepts a token signed for our cluster', async () => {
    const t: CheckedEksToken = await checkEksToken(await buildToken(), strict);
    expect(t.accessKeyId).toBe(KEY.accessKeyId);
  });

  it('accepts the same token without a lookup (what moto alone can check)', async () => {
    await expect(checkEksToken(await buildToken({ cluster: 'other' }), base)).resolves.toBeDefined();
  });

  const bad: Array<{ name: string; reason: EksTokenErrorReason; token: () => Promise<string> }> = [
    { name: 'token for another cluster', reason: 'signature', token: () => buildToken({ cluster: 'other' }) },
    {
      name: 'tampered query (X-Amz-Expires)',
      reason: 'signature',
      token: async () => encode((await presignedUrl()).replace('X-Amz-Expires=60', 'X-Amz-Expires=61')),
    },
    {
      name: 'signed with a wrong secret',
      reason: 'signature',
      token: () => buildToken({ secretAccessKey: 'guessed' }),
    },
    {
      name: 'unknown access key',
      reason: 'unknown-access-key',
      token: () => buildToken({ accessKeyId: 'ASIAUNKNOWN000000000' }),
    },
    {
      name: 'session token of another session',
      reason: 'session-token',
      token: () => buildToken({ sessionToken: 'someone-elses' }),
    },
  ];
  it.each(bad)('refuses: $name', async ({ reason, token }) => {
    await expect(checkEksToken(await token(), strict)).rejects.toMatchObject({
      name: 'EksTokenError',
      reason,
    });
  });
});

describe('defaultStsHosts', () => {
  it('lists global, regional and dual-stack endpoints per partition', () => {
    expect(defaultStsHosts(['eu-west-1'])).toEqual([
      'sts.amazonaws.com',
      'sts.eu-west-1.amazonaws.com',
      'sts.eu-west-1.api.aws',
    ]);
    expect(defaultStsHosts(['cn-north-1'])).toEqual([
      'sts.cn-north-1.amazonaws.com.cn',
      'sts.cn-north-1.api.amazonwebservices.com.cn',
    ]);
    expect(defaultStsHosts(['us-gov-west-1'])).not.toContain('sts.amazonaws.com');
  });
});
