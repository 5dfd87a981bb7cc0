// Typed errors of the sync function. Each ends up as the Synced condition's reason, so the reasons
// are stable CamelCase strings, and every message is safe to show on the SecretSync status: it may
// name configuration (ARNs, Secret names, env vars) but never a secret value. Only InvalidKey,
// KeyConflict and InvalidTemplate name a key from the secret, because the user cannot fix them
// without knowing which.

export const SYNC_REASONS = [
  'SecretNotFound',
  'AccessDenied',
  'DecryptionFailed',
  'InvalidKey',
  'InvalidTemplate',
  'TooLarge',
  'TargetMissing',
  'Forbidden',
  'Unauthorized',
  'ApiUnavailable',
  'SecretsManagerUnavailable',
  'InvalidConfiguration',
  'InvalidPayload',
  'Conflict',
  'KeyConflict',
  'TargetConflict',
] as const;

export type SyncReason = (typeof SYNC_REASONS)[number];

// Retryable = running again with nothing changed may succeed, so the handler lets Lambda retry the
// invocation. Unauthorized is here because a fresh access entry takes a while to be honoured and
// a cached token can outlive its credentials; Conflict is a lost race with another writer. The rest
// need someone to change something (spec, IAM, KMS, RBAC, the secret), which the next event or
// backstop resync picks up. A throw site that knows better passes `retryable` explicitly.
export const RETRYABLE_BY_DEFAULT: ReadonlySet<SyncReason> = new Set([
  'ApiUnavailable',
  'SecretsManagerUnavailable',
  'Conflict',
  'Unauthorized',
]);

export class SyncError extends Error {
  override readonly name = 'SyncError';
  readonly reason: SyncReason;
  readonly retryable: boolean;

  // `cause` must not carry secret material either (e.g. never a JSON.parse error of the payload:
  // V8 quotes the input in those messages).
  constructor(reason: SyncReason, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(reason);
  }
}

export function isSyncError(err: unknown): err is SyncError {
  return err instanceof SyncError;
}

const MAX_SHOWN_KEY_CHARS = 64;

// Quotes a key name for a message: JSON quoting makes control characters and blanks visible, and
// the cut keeps a hostile 60 KB key name from flooding the status and the logs.
export function quoteKey(key: string): string {
  const chars = Array.from(key);
  if (chars.length <= MAX_SHOWN_KEY_CHARS) return JSON.stringify(key);
  return `${JSON.stringify(chars.slice(0, MAX_SHOWN_KEY_CHARS).join(''))}… (${chars.length} characters)`;
}
