import { SyncError } from './errors.ts';
import type { SecretValue } from './payload.ts';
import type { SecretsManager } from './secrets-manager.ts';

export interface CurrentSecret {
  versionId: string;
  value: SecretValue;
}

/**
 * Reads the value the configured stage points to now — never the version an event names — so
 * duplicate and out-of-order events all converge on the current value. AWS errors are translated
 * here, once, into the function's reasons; messages carry AWS's wording, which never includes values.
 */
export async function readCurrentSecret(
  client: SecretsManager,
  secretArn: string,
  versionStage: string,
): Promise<CurrentSecret> {
  try {
    const out = await client.getSecretValue({ SecretId: secretArn, VersionStage: versionStage });
    if (!out.VersionId) throw new SyncError('InvalidPayload', 'GetSecretValue returned no VersionId');
    return {
      versionId: out.VersionId,
      value: { SecretString: out.SecretString, SecretBinary: out.SecretBinary },
    };
  } catch (err) {
    throw translate(err);
  }
}

function translate(err: unknown): unknown {
  if (err instanceof SyncError || !(err instanceof Error)) return err;
  // An error AWS answered with ($fault set by the SDK) carries AWS's message, which never quotes a
  // value. Anything else (the network, a response the SDK could not parse) is named by its name and
  // code only: a parser's message may quote the body, and the body holds the secret.
  const fromAws = '$fault' in err;
  const msg = fromAws ? err.message : [err.name, (err as { code?: unknown }).code].filter(Boolean).join(' ');
  switch (fromAws ? err.name : '') {
    case 'ResourceNotFoundException':
      return new SyncError('SecretNotFound', `the AWS secret or the requested stage does not exist: ${msg}`);
    case 'AccessDeniedException':
    case 'AccessDenied':
      return new SyncError('AccessDenied', `GetSecretValue was denied: ${msg}`);
    case 'DecryptionFailure':
    case 'KMSInvalidStateException':
    case 'KMSDisabledException':
      return new SyncError('DecryptionFailed', `Secrets Manager could not decrypt the secret: ${msg}`);
    case 'InvalidRequestException':
      // e.g. "You can't perform this operation on the secret because it was marked for deletion."
      return new SyncError('SecretNotFound', `the AWS secret cannot be read: ${msg}`);
    case 'InvalidParameterException':
      return new SyncError('InvalidConfiguration', `GetSecretValue refused the request: ${msg}`);
  }
  // Throttling, 5xx, the network, and codes not known here: worth Lambda's retries (the SDK has
  // retried the transient ones already).
  return new SyncError('SecretsManagerUnavailable', `Secrets Manager did not answer (${err.name}): ${msg}`, {
    retryable: true,
  });
}
