import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { HttpResponse } from '@smithy/protocol-http';
import type { HttpRequest } from '@smithy/types';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { botocoreVectors } from '../../scripts/botocore.ts';
import type { AwsCredentials } from './eks-token.ts';
import { readCurrentSecret } from './secret-reader.ts';
import { createSecretsManager, credentialsFromEnv } from './secrets-manager.ts';

// The function reads secrets through the AWS SDK's client (secrets-manager.ts): these tests check
// what that client sends against botocore, and how its answers and failures become the function's
// reasons — never with a value in a message.

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

describe('GetSecretValue as the SDK client sends it, against botocore (serializer and SigV4)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  // Made once, on first use inside a test, so a missing venv fails each case with its message.
  let vectors:
    | {
        botocore: { url: string; target: string; contentType: string; body: string };
        authorization: string;
      }[]
    | undefined;

  /** The request the client puts on the wire at the case's instant (a handler that answers instead of the network). */
  async function sent(c: Case): Promise<HttpRequest> {
    let request: HttpRequest | undefined;
    const sm = createSecretsManager({
      region: c.region,
      credentials: async () => c.credentials,
      ...(c.endpoint ? { endpoint: c.endpoint } : {}),
      requestHandler: {
        handle: async (req: HttpRequest) => {
          request = req;
          return {
            response: new HttpResponse({
              statusCode: 200,
              headers: { 'content-type': 'application/x-amz-json-1.1' },
              body: Readable.from([Buffer.from('{"VersionId":"v1","SecretString":"x"}')]),
            }),
          };
        },
      },
    });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(c.time * 1000);
    try {
      await sm.getSecretValue({ SecretId: c.secretId, VersionStage: c.versionStage });
    } finally {
      vi.useRealTimers();
    }
    return request!;
  }
  const bodyOf = (r: HttpRequest) => Buffer.from(r.body as Uint8Array).toString('utf8');
  const urlOf = (r: HttpRequest) =>
    new URL(`${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}`).href;

  const ours: HttpRequest[] = [];
  it.each(CASES.map((c, i) => [c.name, i] as const))('%s', async (_name, i) => {
    // Once for all cases: each request carries its own invocation id, which the signature covers.
    if (ours.length === 0) for (const c of CASES) ours.push(await sent(c));
    vectors ??= botocoreVectors(
      'secretsmanager-vectors.py',
      CASES.map((c, j) => {
        const req = ours[j]!;
        return {
          ...c.credentials,
          region: c.region,
          time: c.time,
          secretId: c.secretId,
          versionStage: c.versionStage,
          ours: { method: req.method, url: urlOf(req), headers: req.headers, body: bodyOf(req) },
        };
      }),
      'The GetSecretValue request',
    );
    const c = CASES[i]!;
    const req = ours[i]!;
    const v = vectors![i]!;
    // The same request as botocore's (botocore's JSON has spaces after separators; the content is equal).
    if (!c.endpoint) expect(urlOf(req)).toBe(v.botocore.url);
    else expect(urlOf(req)).toBe(new URL(c.endpoint).href);
    expect(req.headers['x-amz-target']).toBe(v.botocore.target);
    expect(req.headers['content-type']).toBe(v.botocore.contentType);
    expect(JSON.parse(bodyOf(req))).toEqual(JSON.parse(v.botocore.body));
    // botocore's SigV4 over the SDK's bytes gives the SDK's signature: Secrets Manager would accept it.
    expect(req.headers.authorization).toBe(v.authorization);
    expect(req.headers['x-amz-date']).toBe(new Date(c.time * 1000).toISOString().replace(/[-:]|\.\d+/g, ''));
    expect(req.headers['x-amz-security-token']).toBe(c.credentials.sessionToken);
  });
});

describe('credentials from the environment, as Lambda hands them to the function', () => {
  it('AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, a clear reason without them', async () => {
    expect(
      credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_SESSION_TOKEN: 'c' }),
    ).toEqual({ accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 'c' });
    const sm = createSecretsManager({ region: 'eu-west-1', credentials: async () => credentialsFromEnv({}) });
    expect(await readCurrentSecret(sm, ARN, 'AWSCURRENT').catch((e) => e)).toMatchObject({
      reason: 'InvalidConfiguration',
      retryable: false,
      message: expect.stringMatching(/AWS_SECRET_ACCESS_KEY are not set/),
    });
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
      res.writeHead(r.status, { 'content-type': 'application/x-amz-json-1.1', ...r.headers });
      res.end(r.body);
    });
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const client = (maxAttempts = 3, endpoint: string | undefined = url.href) => {
    replies = [];
    seen = [];
    return createSecretsManager({
      region: 'eu-west-1',
      credentials: async () => CREDS,
      maxAttempts,
      ...(endpoint ? { endpoint } : {}),
    });
  };
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
    expect(await readCurrentSecret(sm, ARN, 'AWSCURRENT')).toEqual({
      versionId: 'v1',
      value: { SecretString: '{"a":"1"}', SecretBinary: undefined },
    });
    const { headers, body } = seen[0]!;
    expect(headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(headers.host).toBe(url.host);
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE01\/\d{8}\/eu-west-1\/secretsmanager\/aws4_request, SignedHeaders=[a-z0-9;-]*x-amz-security-token;x-amz-target[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(JSON.parse(body)).toEqual({ SecretId: ARN, VersionStage: 'AWSCURRENT' });
  });

  it('AWS_ENDPOINT_URL_SECRETS_MANAGER, then AWS_ENDPOINT_URL, as the SDK reads them', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL', 'http://127.0.0.1:1/');
    vi.stubEnv('AWS_ENDPOINT_URL_SECRETS_MANAGER', url.href);
    let sm = client(1, undefined);
    replies.push(ok({ VersionId: 'v1', SecretString: 'x' }));
    expect((await sm.getSecretValue({ SecretId: ARN })).VersionId).toBe('v1');
    expect(seen).toHaveLength(1);

    vi.stubEnv('AWS_ENDPOINT_URL_SECRETS_MANAGER', '');
    vi.stubEnv('AWS_ENDPOINT_URL', url.href);
    sm = client(1, undefined);
    replies.push(ok({ VersionId: 'v2', SecretString: 'x' }));
    expect((await sm.getSecretValue({ SecretId: ARN })).VersionId).toBe('v2');
  });

  it('decodes SecretBinary from base64 into the exact bytes', async () => {
    const sm = client();
    const bytes = Buffer.from([0, 255, 254, 10, 13, 0x80, 0xc3]);
    replies.push(ok({ VersionId: 'v2', SecretBinary: bytes.toString('base64') }));
    const out = await sm.getSecretValue({ SecretId: ARN });
    expect(Buffer.from(out.SecretBinary!).equals(bytes)).toBe(true);
    expect(out.SecretString).toBeUndefined();
  });

  it('retries throttling and 5xx, each attempt signed afresh, then returns the value', async () => {
    const sm = client();
    replies.push(
      fail(400, 'ThrottlingException', 'Rate exceeded'),
      fail(503, 'ServiceUnavailable'),
      ok({ VersionId: 'v3', SecretString: 'x' }),
    );
    expect((await sm.getSecretValue({ SecretId: ARN })).VersionId).toBe('v3');
    expect(seen.map((s) => s.headers['amz-sdk-request'])).toEqual([
      'attempt=1; max=3',
      'attempt=2; max=3',
      'attempt=3; max=3',
    ]);
    expect(new Set(seen.map((s) => s.headers.authorization)).size).toBe(3);
  });

  it('gives up after maxAttempts with the last error, retryable', async () => {
    const sm = client(2);
    replies.push(fail(500, 'InternalServiceError'), fail(500, 'InternalServiceError', 'still down'));
    const err = await readCurrentSecret(sm, ARN, 'AWSCURRENT').catch((e) => e);
    expect(err).toMatchObject({ reason: 'SecretsManagerUnavailable', retryable: true });
    expect(err.message).toContain('still down');
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
    const err = await readCurrentSecret(sm, ARN, 'AWSCURRENT').catch((e) => e);
    expect(err).toMatchObject({ reason: 'SecretNotFound', retryable: false });
    expect(err.message).toContain("Secrets Manager can't find the specified secret.");
  });

  it('a non-JSON error page (a proxy) reads as unavailable, retryable', async () => {
    const sm = client(1);
    replies.push({ status: 502, body: '<html>Bad Gateway</html>' });
    const err = await readCurrentSecret(sm, ARN, 'AWSCURRENT').catch((e) => e);
    expect(err).toMatchObject({ reason: 'SecretsManagerUnavailable', retryable: true });
  });

  it('a 200 that is not JSON fails without quoting the body (it would hold the value)', async () => {
    const sm = client(1);
    replies.push({ status: 200, body: 'hunter2-canary not json' });
    const err = await readCurrentSecret(sm, ARN, 'AWSCURRENT').catch((e) => e);
    expect(err).toMatchObject({ reason: 'SecretsManagerUnavailable', retryable: true });
    expect(err.message).not.toContain('hunter2');
  });

  it('a connection refused is retryable and says so', async () => {
    const dead = client(2, 'http://127.0.0.1:1/');
    const err = await readCurrentSecret(dead, ARN, 'AWSCURRENT').catch((e) => e);
    expect(err).toMatchObject({ reason: 'SecretsManagerUnavailable', retryable: true });
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});
