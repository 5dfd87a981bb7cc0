/**
 * KMS key state on GetSecretValue, which moto does not enforce: it answers with the value even when
 * the secret's customer managed key is disabled or pending deletion. AWS cannot decrypt then, and
 * GetSecretValue fails with HTTP 400 `DecryptionFailure` — the one decryption error its service model
 * lists (botocore's secretsmanager service-2.json: ResourceNotFoundException, InvalidParameterException,
 * InvalidRequestException, DecryptionFailure, InternalServiceError).
 *
 * So, in front of moto: for GetSecretValue of a secret whose KmsKeyId names a customer key, the key
 * is looked up in moto's KMS (DescribeKey accepts an id, ARN, alias or alias ARN); a key that is not
 * Enabled, or no longer exists, gets that answer. Secrets under the default key (no KmsKeyId, or
 * aws/secretsmanager) and every other call go through untouched.
 */
import { randomUUID } from 'node:crypto';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';

export interface KmsStateOptions {
  motoUrl: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

const DEFAULT_KEY = /^(alias\/aws\/secretsmanager|arn:[^:]+:kms:[^:]*:[^:]*:alias\/aws\/secretsmanager)$/;

// AWS's wording from the model (DecryptionFailure's documentation), then what went wrong.
const CANNOT_DECRYPT = "Secrets Manager can't decrypt the protected secret text using the provided KMS key.";

/** What KMS knows about a key: its ARN and state, or that it does not exist. */
type KeyLookup = { arn: string; state: string } | { missing: true };

export function kmsStateInterceptor(opts: KmsStateOptions): Interceptor {
  return async (req) => {
    if (req.service !== 'secretsmanager' || req.operation !== 'GetSecretValue') return undefined;
    const secretId = secretIdOf(req);
    if (!secretId) return undefined;
    const sm = new SecretsManagerClient({
      endpoint: opts.motoUrl,
      region: req.region,
      credentials: opts.credentials,
    });
    const secret = await sm.send(new DescribeSecretCommand({ SecretId: secretId })).catch(() => undefined);
    // No such secret, or one scheduled for deletion: moto gives AWS's answer for those itself.
    if (!secret || secret.DeletedDate) return undefined;
    const keyId = secret.KmsKeyId;
    if (!keyId || DEFAULT_KEY.test(keyId)) return undefined;
    const key = await describeKey(opts, keyId.startsWith('arn:') ? keyId.split(':')[3]! : req.region, keyId);
    if ('missing' in key) return decryptionFailure(`${CANNOT_DECRYPT} The KMS key ${keyId} does not exist.`);
    if (key.state === 'Enabled') return undefined;
    const state = STATE_WORDS[key.state] ?? `in state ${key.state}`;
    return decryptionFailure(`${CANNOT_DECRYPT} The KMS key ${key.arn} is ${state}.`);
  };
}

const STATE_WORDS: Record<string, string> = { Disabled: 'disabled', PendingDeletion: 'pending deletion' };

function secretIdOf(req: AwsRequest): string | undefined {
  try {
    const body = JSON.parse(req.body.toString('utf8')) as { SecretId?: unknown };
    return typeof body.SecretId === 'string' ? body.SecretId : undefined;
  } catch {
    return undefined;
  }
}

async function describeKey(opts: KmsStateOptions, region: string, keyId: string): Promise<KeyLookup> {
  try {
    const out = await kmsCall<{ KeyMetadata: { Arn: string; KeyState: string } }>(
      { url: opts.motoUrl, region, credentials: opts.credentials },
      'DescribeKey',
      { KeyId: keyId },
    );
    return { arn: out.KeyMetadata.Arn, state: out.KeyMetadata.KeyState };
  } catch (err) {
    if ((err as Error).name === 'NotFoundException') return { missing: true };
    throw err;
  }
}

/**
 * One KMS call, signed, as JSON 1.1 (the project has no KMS client): at moto from the interceptor,
 * through the front door from tests. A failure throws an Error named after AWS's error code.
 */
export async function kmsCall<T>(
  at: { url: string; region: string; credentials: KmsStateOptions['credentials'] },
  operation: string,
  input: object,
): Promise<T> {
  const url = new URL(at.url);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({
    service: 'kms',
    region: at.region,
    credentials: at.credentials,
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: '/',
      headers: {
        host: url.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `TrentService.${operation}`,
      },
      body,
    }),
  );
  const res = await fetch(url, { method: 'POST', headers: signed.headers, body });
  const text = await res.text();
  if (res.ok) return (text ? JSON.parse(text) : {}) as T;
  let code = `HTTP${res.status}`;
  try {
    code = String((JSON.parse(text) as { __type?: string }).__type ?? code)
      .split('#')
      .pop()!;
  } catch {
    // not JSON: keep the status
  }
  throw Object.assign(new Error(`KMS ${operation}: HTTP ${res.status} ${text}`), { name: code });
}

function decryptionFailure(message: string): AwsResponse {
  return {
    status: 400,
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': randomUUID(),
      'x-amzn-errortype': 'DecryptionFailure',
    },
    body: JSON.stringify({ __type: 'DecryptionFailure', message }),
  };
}
