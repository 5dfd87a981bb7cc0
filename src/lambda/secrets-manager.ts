// The function's one AWS call, GetSecretValue, through the AWS SDK's Secrets Manager client: its
// endpoint rules (partitions, FIPS, dual-stack, AWS_ENDPOINT_URL_SECRETS_MANAGER), retries and
// signing are maintained upstream. scripts/build.ts keeps it small: ES modules (tree-shaken), and
// the SDK's default credential chain (INI, SSO, IMDS, …) left out of the zip — the function takes
// the credentials Lambda puts in its environment, and nothing else.
// secrets-manager.test.ts checks what the client sends against botocore's serializer and signer.

import {
  GetSecretValueCommand,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
} from '@aws-sdk/client-secrets-manager';
import type { AwsCredentials } from './eks-token.ts';
import { SyncError } from './errors.ts';

export interface GetSecretValueOutput {
  VersionId?: string | undefined;
  SecretString?: string | undefined;
  SecretBinary?: Uint8Array | undefined;
}

/** What the function needs of Secrets Manager (the SDK client, or a test's stand-in). */
export interface SecretsManager {
  getSecretValue(input: { SecretId: string; VersionStage?: string }): Promise<GetSecretValueOutput>;
}

/** The execution role's credentials, which Lambda hands every function in its environment. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): AwsCredentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new SyncError(
      'InvalidConfiguration',
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them from the execution role)',
    );
  }
  return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined };
}

export interface SecretsManagerOptions {
  region: string;
  credentials: () => Promise<AwsCredentials>;
  /** Attempts per call, the first included (the SDK's default, 3). */
  maxAttempts?: number;
  /** Per attempt: the SDK's socket timeout (default 5 s; a Secrets Manager call takes tens of ms). */
  timeoutMs?: number;
  /** Tests: an endpoint, or a request handler that answers instead of the network. */
  endpoint?: string;
  requestHandler?: SecretsManagerClientConfig['requestHandler'];
}

/** The SDK client, created once per container (its keep-alive connections are reused while warm). */
export function createSecretsManager(opts: SecretsManagerOptions): SecretsManager {
  const client = new SecretsManagerClient({
    region: opts.region,
    credentials: opts.credentials,
    maxAttempts: opts.maxAttempts ?? 3,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    requestHandler: opts.requestHandler ?? {
      connectionTimeout: 3_000,
      requestTimeout: opts.timeoutMs ?? 5_000,
    },
  });
  return {
    async getSecretValue(input) {
      const out = await client.send(new GetSecretValueCommand(input));
      return { VersionId: out.VersionId, SecretString: out.SecretString, SecretBinary: out.SecretBinary };
    },
  };
}
