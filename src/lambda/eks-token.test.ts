import { describe, expect, it } from 'vitest';
import { botocoreVectors } from '../../scripts/botocore.ts';
import {
  type AwsCredentials,
  DEFAULT_REFRESH_MARGIN_MS,
  eksToken,
  presignGetCallerIdentity,
  stsHostname,
  TOKEN_LIFETIME_MS,
  TOKEN_PREFIX,
  TokenCache,
  tokenFromUrl,
} from './eks-token.ts';

// A session token shaped like STS's: long, and full of the characters that need percent-encoding.
const SESSION_TOKEN = `IQoJb3JpZ2luX2VjEHoaCWV1LXdlc3QtMSJHMEUCIQD+/abc=def+ghi/jkl==${'FwoGZXIvYXdzEBYaDH'.repeat(12)}`;

interface Case {
  name: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  cluster: string;
  time: number;
}

const CASES: Case[] = [
  {
    name: 'us-east-1, long-term keys, plain cluster name',
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    region: 'us-east-1',
    cluster: 'prod',
    time: 1_700_000_000,
  },
  {
    name: 'eu-central-1, session token, cluster name with dot and dash',
    accessKeyId: 'ASIAEXAMPLE123456789',
    secretAccessKey: 'abc/def+ghi=jkl',
    sessionToken: SESSION_TOKEN,
    region: 'eu-central-1',
    cluster: 'my.cluster-1',
    time: 1_735_689_599, // 2024-12-31T23:59:59Z: the last second of a day and a year
  },
  {
    name: 'eu-west-1, session token, cluster name with underscore and capitals',
    accessKeyId: 'ASIAQWERTYUIOPASDFGH',
    secretAccessKey: 'X'.repeat(40),
    sessionToken: 'short',
    region: 'eu-west-1',
    cluster: 'Team_A-Payments.2',
    time: 1_735_689_600, // 2025-01-01T00:00:00Z
  },
  {
    name: 'ap-southeast-2, 100-character cluster name',
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    region: 'ap-southeast-2',
    cluster: `c${'x-1_'.repeat(24)}end`,
    time: 1_600_000_000,
  },
  {
    name: 'us-gov-west-1, session token',
    accessKeyId: 'ASIAGOVEXAMPLE',
    secretAccessKey: 'gov/secret+key',
    sessionToken: SESSION_TOKEN,
    region: 'us-gov-west-1',
    cluster: 'gov',
    time: 1_234_567_890,
  },
  {
    name: 'cn-north-1 (amazonaws.com.cn), session token',
    accessKeyId: 'ASIACNEXAMPLE',
    secretAccessKey: 'cn-secret',
    sessionToken: SESSION_TOKEN,
    region: 'cn-north-1',
    cluster: 'cn.cluster',
    time: 1_700_000_001,
  },
  ...(['us-iso-east-1', 'us-isob-east-1', 'eu-isoe-west-1', 'us-isof-south-1'] as const).map((region) => ({
    name: `${region} (isolated partition DNS suffix)`,
    accessKeyId: 'AKIDISO',
    secretAccessKey: 'iso-secret',
    region,
    cluster: 'iso',
    time: 1_700_000_002,
  })),
];

function credentialsOf(c: Case): AwsCredentials {
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken };
}

function vectorsFor(cases: readonly Case[]): { url: string; token: string }[] {
  return botocoreVectors('eks-token-vectors.py', cases, 'The EKS token');
}

function decode(token: string): URL {
  expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
  return new URL(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8'));
}

describe('EKS token equals botocore (`aws eks get-token`) byte for byte', () => {
  // Made once, on first use inside a test, so a missing venv fails every case with its message
  // rather than marking them skipped.
  let vectors: { url: string; token: string }[] | undefined;

  it.each(CASES.map((c, i) => [c.name, i] as const))(
    '%s',
    async (_name, i) => {
      vectors ??= vectorsFor(CASES);
      const c = CASES[i]!;
      const input = {
        region: c.region,
        clusterName: c.cluster,
        credentials: credentialsOf(c),
        signingDate: new Date(c.time * 1000),
      };
      // URL first: a mismatch there is readable, a mismatch in base64 is not.
      expect(await presignGetCallerIdentity(input)).toBe(vectors[i]!.url);
      expect(await eksToken(input)).toBe(vectors[i]!.token);
    },
    60_000,
  );
});

describe('presignGetCallerIdentity', () => {
  const input = {
    region: 'eu-west-1',
    clusterName: 'my.cluster-1',
    credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'tok/+=' },
    signingDate: new Date('2025-03-04T05:06:07Z'),
  };

  it('presigns GET GetCallerIdentity on the regional endpoint, signing host and x-k8s-aws-id, expiring in 60s', async () => {
    const url = new URL(await presignGetCallerIdentity(input));
    expect(url.origin).toBe('https://sts.eu-west-1.amazonaws.com');
    expect(url.pathname).toBe('/');
    expect(url.searchParams.get('Action')).toBe('GetCallerIdentity');
    expect(url.searchParams.get('Version')).toBe('2011-06-15');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
    expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
    expect(url.searchParams.get('X-Amz-Date')).toBe('20250304T050607Z');
    expect(url.searchParams.get('X-Amz-Credential')).toBe('AKID/20250304/eu-west-1/sts/aws4_request');
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe('tok/+=');
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('binds the token to the cluster: another cluster name gives another signature', async () => {
    const a = new URL(await presignGetCallerIdentity(input));
    const b = new URL(await presignGetCallerIdentity({ ...input, clusterName: 'other' }));
    expect(a.searchParams.get('X-Amz-Signature')).not.toBe(b.searchParams.get('X-Amz-Signature'));
  });

  it('omits X-Amz-Security-Token for long-term credentials', async () => {
    const url = new URL(
      await presignGetCallerIdentity({ ...input, credentials: { accessKeyId: 'A', secretAccessKey: 's' } }),
    );
    expect(url.searchParams.has('X-Amz-Security-Token')).toBe(false);
  });
});

describe('stsHostname', () => {
  it.each([
    ['us-east-1', 'sts.us-east-1.amazonaws.com'],
    ['eu-central-1', 'sts.eu-central-1.amazonaws.com'],
    ['us-gov-west-1', 'sts.us-gov-west-1.amazonaws.com'],
    ['cn-northwest-1', 'sts.cn-northwest-1.amazonaws.com.cn'],
    ['us-iso-east-1', 'sts.us-iso-east-1.c2s.ic.gov'],
    ['us-isob-east-1', 'sts.us-isob-east-1.sc2s.sgov.gov'],
  ])('%s → %s', (region, host) => {
    expect(stsHostname(region)).toBe(host);
  });
});

describe('tokenFromUrl', () => {
  // Lengths 0, 1 and 2 mod 3: the three padding cases of base64.
  it.each(['https://a/', 'https://ab/', 'https://abc/'])(
    'is k8s-aws-v1. + base64url of %s without padding',
    (url) => {
      const token = tokenFromUrl(url);
      expect(token).toMatch(/^k8s-aws-v1\.[A-Za-z0-9_-]+$/);
      expect(decode(token).href).toBe(url);
    },
  );
});

describe('TokenCache', () => {
  const MINUTE = 60_000;

  function setup(options: { expiration?: Date; refreshMarginMs?: number; fail?: number } = {}) {
    let now = Date.parse('2025-06-01T12:00:00Z');
    let calls = 0;
    const cache = new TokenCache({
      region: 'eu-west-1',
      clusterName: 'prod',
      now: () => now,
      refreshMarginMs: options.refreshMarginMs,
      credentials: async () => {
        calls += 1;
        if (calls <= (options.fail ?? 0)) throw new Error('no credentials yet');
        return { accessKeyId: 'AKID', secretAccessKey: 'secret', expiration: options.expiration };
      },
    });
    return {
      cache,
      start: now,
      advance: (ms: number) => {
        now += ms;
      },
      calls: () => calls,
    };
  }

  it('signs with the injected clock', async () => {
    const { cache } = setup();
    expect(decode(await cache.get()).searchParams.get('X-Amz-Date')).toBe('20250601T120000Z');
  });

  it('reuses the token until 14 minutes minus the margin, then signs a new one', async () => {
    const t = setup();
    const first = await t.cache.get();
    t.advance(TOKEN_LIFETIME_MS - DEFAULT_REFRESH_MARGIN_MS - 1);
    expect(await t.cache.get()).toBe(first);
    expect(t.calls()).toBe(1);
    t.advance(1);
    const second = await t.cache.get();
    expect(second).not.toBe(first);
    expect(decode(second).searchParams.get('X-Amz-Date')).toBe('20250601T121300Z');
    expect(t.calls()).toBe(2);
  });

  it('honours a custom refresh margin', async () => {
    const t = setup({ refreshMarginMs: 5 * MINUTE });
    const first = await t.cache.get();
    t.advance(9 * MINUTE - 1);
    expect(await t.cache.get()).toBe(first);
    t.advance(1);
    expect(await t.cache.get()).not.toBe(first);
  });

  it('refreshes before credentials that expire sooner than the token', async () => {
    const start = Date.parse('2025-06-01T12:00:00Z');
    const t = setup({ expiration: new Date(start + 5 * MINUTE) });
    const first = await t.cache.get();
    t.advance(4 * MINUTE - 1); // expiration minus the 1-minute margin
    expect(await t.cache.get()).toBe(first);
    t.advance(1);
    expect(await t.cache.get()).not.toBe(first);
  });

  it('signs a new token after invalidate (e.g. after a 401)', async () => {
    const t = setup();
    const first = await t.cache.get();
    t.advance(1000);
    t.cache.invalidate();
    expect(await t.cache.get()).not.toBe(first);
    expect(t.calls()).toBe(2);
  });

  it('shares one signing between concurrent callers', async () => {
    const t = setup();
    const [a, b] = await Promise.all([t.cache.get(), t.cache.get()]);
    expect(a).toBe(b);
    expect(t.calls()).toBe(1);
  });

  it('does not cache a failure: the next call asks for credentials again', async () => {
    const t = setup({ fail: 1 });
    await expect(t.cache.get()).rejects.toThrow('no credentials yet');
    expect(await t.cache.get()).toMatch(/^k8s-aws-v1\./);
    expect(t.calls()).toBe(2);
  });
});
