import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { botocoreVectors } from '../../scripts/botocore.ts';
import type { AwsCredentials } from './eks-token.ts';
import { readCurrentSecret } from './secret-reader.ts';
import {
  AwsServiceError,
  CONTENT_TYPE,
  createSecretsManager,
  credentialsFromEnv,
  secretsManagerEndpoint,
  TARGET,
} from './secrets-manager.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf';
const CREDS: AwsCredentials = {
  accessKeyId: 'ASIAEXAMPLEEXAMPLE01',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: `IQoJb3JpZ2luX2VjEHoaCWV1LXdlc3QtMSJHMEUCIQD+/abc=def+ghi/jkl==${'FwoGZXIvYXdzEBYaDH'.repeat(8)}`,
};

interface Case {
  name: string;
  region: string;
  time: number;
  secretId: string;
  versionStage: string;
  credentials: AwsCredentials;
  endpoint?: string;
}

const CASES: Case[] = [
  {
    name: 'ARN, AWSCURRENT, session token',
    region: 'eu-west-1',
    time: 1_700_000_000,
    secretId: ARN,
    versionStage: 'AWSCURRENT',
    credentials: CREDS,
  },
  {
    name: 'custom stage, no session token',
    region: 'us-east-1',
    time: 1_735_689_599,
    secretId: ARN.replace('eu-west-1', 'us-east-1'),
    versionStage: 'AWSPENDING',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/with+chars=' },
  },
  {
    name: 'China partition',
    region: 'cn-north-1',
    time: 1_750_000_000,
    secretId: 'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-AbCdEf',
    versionStage: 'AWSCURRENT',
    credentials: CREDS,
  },
  {
    name: 'a name with unicode and spaces',
    region: 'ap-southeast-2',
    time: 1_760_000_123,
    secretId: 'team a/ключ-ü',
    versionStage: 'release 2',
    credentials: CREDS,
  },
  {
    name: 'an endpoint override with a port (the test bed)',
    region: 'eu-west-1',
    time: 1_700_000_000,
    secretId: ARN,
    versionStage: 'AWSCURRENT',
    credentials: CREDS,
    endpoint: 'http://127.0.0.1:4566',
  },
];

describe('GetSecretValue request against botocore (serializer and SigV4)', () => {
  // Made once, on first use inside a test, so a missing venv fails each case with its message.
  let vectors:
    | {
        botocore: { url: string; target: string; contentType: string; body: string };
        authorization: string;
      }[]
    | undefined;
  const sign = () =>
    CASES.map(async (c) => {
      const endpoint = c.endpoint ? new URL(c.endpoint) : secretsManagerEndpoint({}, c.region);
      const client = createSecretsManager({
        region: c.region,
        endpoint,
        credentials: async () => c.credentials,
      });
      const req = await client.sign(
        { SecretId: c.secretId, VersionStage: c.versionStage },
        new Date(c.time * 1000),
      );
      return { endpoint, req };
    });

  it.each(CASES.map((c, i) => [c.name, i] as const))('%s', async (_name, i) => {
    const ours = await Promise.all(sign());
    vectors ??= botocoreVectors(
      'secretsmanager-vectors.py',
      CASES.map((c, j) => {
        const { endpoint, req } = ours[j]!;
        return {
          ...c.credentials,
          region: c.region,
          time: c.time,
          secretId: c.secretId,
          versionStage: c.versionStage,
          ours: {
            method: req.method,
            url: new URL(req.path, endpoint).href,
            headers: req.headers,
            body: req.body,
          },
        };
      }),
      'The GetSecretValue request',
    );
    const c = CASES[i]!;
    const { endpoint, req } = ours[i]!;
    const v = vectors![i]!;
    // The same request as botocore's (botocore's JSON has spaces after separators; the content is equal).
    if (!c.endpoint) expect(new URL(req.path, endpoint).href).toBe(v.botocore.url);
    expect(req.headers['x-amz-target']).toBe(v.botocore.target);
    expect(req.headers['content-type']).toBe(v.botocore.contentType);
    expect(JSON.parse(req.body as string)).toEqual(JSON.parse(v.botocore.body));
    // botocore's SigV4 over our bytes gives our signature: Secrets Manager would accept it.
    expect(req.headers.authorization).toBe(v.authorization);
    expect(req.headers['x-amz-date']).toBe(new Date(c.time * 1000).toISOString().replace(/[-:]|\.\d+/g, ''));
    expect(req.headers['x-amz-security-token']).toBe(c.credentials.sessionToken);
  });
});

describe('endpoint and credentials from the environment, as the SDK reads them', () => {
  it('the regional endpoint of each partition', () => {
    expect(secretsManagerEndpoint({}, 'eu-west-1').href).toBe(
      'https://secretsmanager.eu-west-1.amazonaws.com/',
    );
    expect(secretsManagerEndpoint({}, 'cn-northwest-1').href).toBe(
      'https://secretsmanager.cn-northwest-1.amazonaws.com.cn/',
    );
  });
  it('AWS_ENDPOINT_URL_SECRETS_MANAGER before AWS_ENDPOINT_URL; both off with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1/',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:2/',
    };
    expect(secretsManagerEndpoint(env, 'eu-west-1').port).toBe('2');
    expect(secretsManagerEndpoint({ AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL }, 'eu-west-1').port).toBe('1');
    expect(
      secretsManagerEndpoint({ ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }, 'eu-west-1').host,
    ).toBe('secretsmanager.eu-west-1.amazonaws.com');
  });
  it('credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, a clear error without them', () => {
    expect(
      credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_SESSION_TOKEN: 'c' }),
    ).toEqual({
      accessKeyId: 'a',
      secretAccessKey: 'b',
      sessionToken: 'c',
    });
    expect(() => credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a' })).toThrow(/AWS_SECRET_ACCESS_KEY are not set/);
  });
});

/**
 * A loopback server scripted per test: Secrets Manager's answers, including faults the test bed
 * injects only at rates (a throttle on exactly the first call, a non-JSON 200, a header-only code).
 */
describe('calls over HTTP against a scripted loopback server', () => {
  type Reply = { status: number; body: string; headers?: Record<string, string> };
  let replies: Reply[] = [];
  let seen: { headers: IncomingMessage['headers']; body: string }[] = [];
  let url: URL;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const r = replies.shift() ?? {
        status: 500,
        body: '{"__type":"InternalServiceError","message":"script ran out"}',
      };
      res.writeHead(r.status, { 'content-type': CONTENT_TYPE, ...r.headers });
      res.end(r.body);
    });
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const pauses: number[] = [];
  const client = (maxAttempts = 3) => {
    replies = [];
    seen = [];
    pauses.length = 0;
    return createSecretsManager({
      region: 'eu-west-1',
      endpoint: url,
      credentials: async () => CREDS,
      maxAttempts,
      // A clock one second further at every signing: each attempt must carry its own date.
      now: () => new Date(Date.UTC(2026, 10, 29, 12, 0, signings++)),
      sleep: async (ms) => {
        pauses.push(ms);
      },
    });
  };
  let signings = 0;
  const ok = (fields: object): Reply => ({
    status: 200,
    body: JSON.stringify({ ARN, Name: 'prod/db', ...fields }),
  });
  const fail = (status: number, type: string, message = 'm'): Reply => ({
    status,
    body: JSON.stringify({ __type: type, message }),
  });

  it('sends the signed JSON request and reads SecretString', async () => {
    const sm = client();
    replies.push(
      ok({ VersionId: 'v1', SecretString: '{"a":"1"}', VersionStages: ['AWSCURRENT'], CreatedDate: 1.7e9 }),
    );
    expect(await sm.getSecretValue({ SecretId: ARN, VersionStage: 'AWSCURRENT' })).toEqual({
      VersionId: 'v1',
      SecretString: '{"a":"1"}',
    });
    const { headers, body } = seen[0]!;
    expect(headers['x-amz-target']).toBe(TARGET);
    expect(headers['content-type']).toBe(CONTENT_TYPE);
    expect(headers.host).toBe(url.host);
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE01\/\d{8}\/eu-west-1\/secretsmanager\/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
    expect(JSON.parse(body)).toEqual({ SecretId: ARN, VersionStage: 'AWSCURRENT' });
  });

  it('decodes SecretBinary from base64 into the exact bytes', async () => {
    const sm = client();
    const bytes = Buffer.from([0, 255, 254, 10, 13, 0x80, 0xc3]);
    replies.push(ok({ VersionId: 'v2', SecretBinary: bytes.toString('base64') }));
    const out = await sm.getSecretValue({ SecretId: ARN });
    expect(Buffer.from(out.SecretBinary!).equals(bytes)).toBe(true);
    expect(out.SecretString).toBeUndefined();
  });

  it('retries throttling and 5xx with jittered, growing pauses, then returns the value', async () => {
    const sm = client();
    replies.push(
      fail(400, 'ThrottlingException', 'Rate exceeded'),
      fail(503, 'ServiceUnavailable'),
      ok({ VersionId: 'v3', SecretString: 'x' }),
    );
    expect((await sm.getSecretValue({ SecretId: ARN })).VersionId).toBe('v3');
    expect(seen).toHaveLength(3);
    expect(pauses).toHaveLength(2);
    expect(pauses[0]).toBeLessThanOrEqual(200);
    expect(pauses[1]).toBeLessThanOrEqual(400);
    // Each attempt is signed afresh (its own date and signature).
    expect(new Set(seen.map((s) => s.headers['x-amz-date'])).size).toBe(3);
    expect(new Set(seen.map((s) => s.headers.authorization)).size).toBe(3);
  });

  it('gives up after maxAttempts with the last error, retryable', async () => {
    const sm = client(2);
    replies.push(fail(500, 'InternalServiceError'), fail(500, 'InternalServiceError', 'still down'));
    const err = await sm.getSecretValue({ SecretId: ARN }).catch((e) => e);
    expect(err).toBeInstanceOf(AwsServiceError);
    expect(err).toMatchObject({
      name: 'InternalServiceError',
      message: 'still down',
      status: 500,
      retryable: true,
    });
    expect(seen).toHaveLength(2);
  });

  it.each([
    ['ResourceNotFoundException', 400, 'SecretNotFound', false],
    ['AccessDeniedException', 400, 'AccessDenied', false],
    ['DecryptionFailure', 400, 'DecryptionFailed', false],
    ['InvalidRequestException', 400, 'SecretNotFound', false],
    ['InvalidParameterException', 400, 'InvalidConfiguration', false],
    ['ThrottlingException', 400, 'SecretsManagerUnavailable', true],
    ['UnrecognizedClientException', 400, 'SecretsManagerUnavailable', true],
  ] as const)(
    '%s (HTTP %i) is not retried in the call when permanent, and reads as %s',
    async (type, status, reason, retryable) => {
      const sm = client();
      for (let i = 0; i < 3; i++)
        replies.push(fail(status, `com.amazonaws.secretsmanager#${type}`, `about ${type}`));
      const err = await readCurrentSecret(sm, ARN, 'AWSCURRENT').catch((e) => e);
      expect(err).toMatchObject({ reason, retryable });
      expect(err.message).toContain(`about ${type}`);
      const transient = type === 'ThrottlingException';
      expect(seen).toHaveLength(transient ? 3 : 1);
    },
  );

  it('takes the code from x-amzn-ErrorType when the body has none', async () => {
    const sm = client();
    replies.push({
      status: 400,
      body: '{"Message":"Secrets Manager can\'t find the specified secret."}',
      headers: { 'x-amzn-ErrorType': 'ResourceNotFoundException:http://internal.amazon.com/coral/' },
    });
    const err = await sm.getSecretValue({ SecretId: ARN }).catch((e) => e);
    expect(err).toMatchObject({
      name: 'ResourceNotFoundException',
      message: "Secrets Manager can't find the specified secret.",
      retryable: false,
    });
  });

  it('a non-JSON error page (a proxy) reads as HTTP status, retryable for 5xx', async () => {
    const sm = client(1);
    replies.push({ status: 502, body: '<html>Bad Gateway</html>' });
    const err = await sm.getSecretValue({ SecretId: ARN }).catch((e) => e);
    expect(err).toMatchObject({ name: 'HTTP502', message: 'HTTP 502', retryable: true });
  });

  it('a 200 that is not JSON fails without quoting the body (it would hold the value)', async () => {
    const sm = client(1);
    replies.push({ status: 200, body: 'hunter2-canary not json' });
    const err = await readCurrentSecret(sm, ARN, 'AWSCURRENT').catch((e) => e);
    expect(err).toMatchObject({ reason: 'SecretsManagerUnavailable', retryable: true });
    expect(err.message).not.toContain('hunter2');
  });

  it('a connection refused is a retryable NetworkError', async () => {
    const dead = createSecretsManager({
      region: 'eu-west-1',
      endpoint: new URL('http://127.0.0.1:1/'),
      credentials: async () => CREDS,
      maxAttempts: 2,
      sleep: async () => {},
    });
    const err = await dead.getSecretValue({ SecretId: ARN }).catch((e) => e);
    expect(err).toMatchObject({ name: 'NetworkError', retryable: true });
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(await readCurrentSecret(dead, ARN, 'AWSCURRENT').catch((e) => e)).toMatchObject({
      reason: 'SecretsManagerUnavailable',
      retryable: true,
    });
  });
});
