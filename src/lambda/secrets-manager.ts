// The function's one AWS call, GetSecretValue, as Secrets Manager's JSON protocol (awsJson1_1) signed
// with the SDK's own SigV4 signer. The SDK client brought @smithy/core's protocol machinery for one
// operation: 150 of the bundle's 250 KiB; without it (and with scripts/build.ts's node:http fix) the
// import takes ~45 instead of ~85 ms and ~6 MB less memory (bench/results.json has the figures).
// secrets-manager.test.ts checks the request against botocore's serializer and signer; every
// integration test reads secrets through it.

import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { type AwsCredentials, dnsSuffix } from './eks-token.ts';
import { type HttpResponse, keepAliveAgent, parseBody, send, UnreachableError } from './http.ts';

export const TARGET = 'secretsmanager.GetSecretValue';
export const CONTENT_TYPE = 'application/x-amz-json-1.1';

export interface GetSecretValueInput {
  SecretId: string;
  VersionStage?: string;
}

export interface GetSecretValueOutput {
  VersionId?: string;
  SecretString?: string;
  SecretBinary?: Uint8Array;
}

/**
 * A failed call: `name` is AWS's error code (ResourceNotFoundException, ThrottlingException…) or,
 * when the service was not reached, NetworkError. Messages are AWS's, which never carry values.
 */
export class AwsServiceError extends Error {
  readonly status: number;
  readonly retryable: boolean;
  constructor(name: string, message: string, status: number, retryable: boolean) {
    super(message);
    this.name = name;
    this.status = status;
    this.retryable = retryable;
  }
}

// The codes the SDK's standard retry strategy treats as throttling or transient.
const RETRYABLE_CODES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'LimitExceededException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalServiceError',
  'InternalFailure',
  'ServiceUnavailable',
]);

/**
 * Where the SDK would send the call: AWS_ENDPOINT_URL_SECRETS_MANAGER, then AWS_ENDPOINT_URL (both
 * ignored with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else the regional endpoint.
 */
export function secretsManagerEndpoint(env: NodeJS.ProcessEnv, region: string): URL {
  const configured =
    env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true'
      ? undefined
      : env.AWS_ENDPOINT_URL_SECRETS_MANAGER || env.AWS_ENDPOINT_URL;
  return new URL(configured || `https://secretsmanager.${region}.${dnsSuffix(region)}`);
}

/** The execution role's credentials, which Lambda hands every function in its environment. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): AwsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new AwsServiceError(
      'CredentialsMissing',
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them from the execution role)',
      0,
      false,
    );
  }
  return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined };
}

export interface SecretsManagerOptions {
  region: string;
  endpoint: URL;
  credentials: () => Promise<AwsCredentials>;
  /** Attempts per call, the first included (the SDK's default is 3). */
  maxAttempts?: number;
  timeoutMs?: number;
  /** Injected by tests: the clock the signature uses and the pause between attempts. */
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export interface SecretsManager {
  getSecretValue(input: GetSecretValueInput): Promise<GetSecretValueOutput>;
  /** The signed request for one call, as it goes on the wire (exported for the botocore comparison). */
  sign(input: GetSecretValueInput, signingDate: Date): Promise<HttpRequest>;
}

export function createSecretsManager(opts: SecretsManagerOptions): SecretsManager {
  const { endpoint } = opts;
  const agent = keepAliveAgent(endpoint, { maxSockets: 4 });
  const signer = new SignatureV4({
    service: 'secretsmanager',
    region: opts.region,
    credentials: opts.credentials,
    sha256: Hash.bind(null, 'sha256'),
    // The JSON protocol signs the body's hash without sending it as a header (as botocore does).
    applyChecksum: false,
  });
  const maxAttempts = opts.maxAttempts ?? 3;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const now = opts.now ?? (() => new Date());
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  async function sign(input: GetSecretValueInput, signingDate: Date): Promise<HttpRequest> {
    const body = JSON.stringify(input);
    const request = new HttpRequest({
      method: 'POST',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
      path: endpoint.pathname,
      headers: {
        host: endpoint.host,
        'content-type': CONTENT_TYPE,
        'x-amz-target': TARGET,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    return (await signer.sign(request, { signingDate })) as HttpRequest;
  }

  async function attempt(input: GetSecretValueInput): Promise<GetSecretValueOutput> {
    const signed = await sign(input, now());
    let res: HttpResponse;
    try {
      res = await send({
        url: new URL(signed.path, endpoint),
        method: signed.method,
        headers: signed.headers,
        body: Buffer.from(signed.body as string),
        agent,
        timeoutMs,
        what: 'GetSecretValue',
      });
    } catch (err) {
      const message = err instanceof UnreachableError ? err.message : String(err);
      throw new AwsServiceError('NetworkError', message, 0, true);
    }
    if (res.status === 200) return parseOutput(res.text);
    throw errorOf(res);
  }

  return {
    sign,
    async getSecretValue(input) {
      for (let n = 1; ; n++) {
        try {
          return await attempt(input);
        } catch (err) {
          if (!(err instanceof AwsServiceError) || !err.retryable || n >= maxAttempts) throw err;
          // Full jitter over an exponential ceiling, as the SDK's standard retry strategy.
          await sleep(Math.random() * Math.min(20_000, 100 * 2 ** n));
        }
      }
    },
  };
}

function parseOutput(text: string): GetSecretValueOutput {
  let out: { VersionId?: unknown; SecretString?: unknown; SecretBinary?: unknown };
  try {
    out = JSON.parse(text);
  } catch {
    // Never quote the body: it holds the secret.
    throw new AwsServiceError('SerializationError', 'the GetSecretValue response is not JSON', 200, true);
  }
  const result: GetSecretValueOutput = {};
  if (typeof out.VersionId === 'string') result.VersionId = out.VersionId;
  if (typeof out.SecretString === 'string') result.SecretString = out.SecretString;
  if (typeof out.SecretBinary === 'string') result.SecretBinary = Buffer.from(out.SecretBinary, 'base64');
  return result;
}

/** The error code as the JSON protocol carries it: the x-amzn-errortype header, else __type in the body. */
function errorOf(res: HttpResponse): AwsServiceError {
  const body = parseBody(res.text) as {
    __type?: unknown;
    code?: unknown;
    message?: unknown;
    Message?: unknown;
  };
  const header = res.headers['x-amzn-errortype'];
  const raw =
    (typeof header === 'string' && header) ||
    (typeof body === 'object' && body !== null && (body.__type ?? body.code)) ||
    '';
  // "com.amazonaws.secretsmanager#ResourceNotFoundException" or "ResourceNotFoundException:http://…"
  const code = String(raw).split('#').at(-1)?.split(':')[0] || `HTTP${res.status}`;
  const m = typeof body === 'object' && body !== null ? (body.message ?? body.Message) : undefined;
  const message = typeof m === 'string' ? m : `HTTP ${res.status}`;
  const retryable = res.status >= 500 || res.status === 429 || RETRYABLE_CODES.has(code);
  return new AwsServiceError(code, message, res.status, retryable);
}
