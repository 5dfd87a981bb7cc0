// The one place that looks at AWS SDK error names. Every AWS call goes through `aws()`, which turns
// an SDK error into one of the typed errors below, so the reconcile decides on classes and reasons
// and never on `err.name`. Messages are AWS's (they name resources, never secret values: the
// controller never reads one) prefixed with the operation and resource.

import { type CallContext, RetryLaterError } from '../errors.ts';

/** SDK command name without "Command" (e.g. GetRole), and the name or ARN the call is about. */
export type AwsCallContext = CallContext;

/** Base of every translated error; `reason` is a stable CamelCase string for conditions and metrics. */
export class AwsError extends Error {
  override readonly name: string = 'AwsError';
  readonly reason: string;
  readonly operation: string;
  readonly resource: string | undefined;
  /** The SDK's error name, e.g. AccessDeniedException; kept for logs. */
  readonly code: string | undefined;

  constructor(
    reason: string,
    message: string,
    ctx: AwsCallContext,
    options: { code?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.operation = ctx.operation;
    this.resource = ctx.resource;
    this.code = options.code;
  }
}

/** The resource does not exist. Ensure: create it; delete: it is gone. */
export class NotFoundError extends AwsError {
  override readonly name = 'NotFoundError';
}

/** AWS asked us to slow down. Requeue after `retryAfterMs` when AWS said, otherwise with backoff. */
export class ThrottledError extends AwsError {
  override readonly name = 'ThrottledError';
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    ctx: AwsCallContext,
    options: { code?: string; cause?: unknown; retryAfterMs?: number },
  ) {
    super('Throttled', message, ctx, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** AWS failed on its side (5xx). Retry with backoff. */
export class AwsServerError extends AwsError {
  override readonly name = 'AwsServerError';
}

/** The AWS secret named by spec.source.secretId does not exist (or is not visible to the controller). */
export class SecretNotFoundError extends AwsError {
  override readonly name = 'SecretNotFoundError';
  constructor(message: string, ctx: AwsCallContext, cause?: unknown) {
    super('SecretNotFound', message, ctx, { code: 'ResourceNotFoundException', cause });
  }
}

/**
 * An account or resource quota is full (IAM roles per account, EventBridge rules per bus…). Nothing
 * passes by itself: the message names the quota and how to raise it.
 */
export class QuotaExceededError extends AwsError {
  override readonly name = 'QuotaExceededError';
}

/** The Service Quotas entry each create that can hit one consumes: how a person raises it. */
const QUOTAS: Record<string, { name: string; service: string; code: string }> = {
  CreateRole: { name: 'IAM roles per account', service: 'iam', code: 'L-FE177D64' },
  PutRule: { name: 'EventBridge rules per event bus', service: 'events', code: 'L-244521F2' },
};

/** Runs one SDK call and translates its failure. */
export async function aws<T>(ctx: AwsCallContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw translateAwsError(err, ctx);
  }
}

const NOT_FOUND = new Set([
  'ResourceNotFoundException',
  'ResourceNotFound',
  'NoSuchEntity',
  'NoSuchEntityException',
  'NotFoundException',
]);
const THROTTLED = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
]);
// Conditions that clear by themselves within seconds; value = requeue delay and reason.
const WAIT: Record<string, [afterMs: number, reason: string]> = {
  // IAM, EventBridge: another write to the same entity is in flight.
  ConcurrentModification: [5_000, 'ConcurrentModification'],
  ConcurrentModificationException: [5_000, 'ConcurrentModification'],
  // CloudWatch Logs' name for the same.
  OperationAbortedException: [5_000, 'ConcurrentModification'],
  // Lambda: an update or create is still in progress (State Pending / LastUpdateStatus InProgress),
  // or a create raced another. EKS: the access entry (or cluster) is busy, e.g. just deleted.
  ResourceConflictException: [5_000, 'FunctionUpdating'],
  ResourceInUseException: [5_000, 'ResourceInUse'],
  ResourceNotReadyException: [5_000, 'FunctionUpdating'],
  // EKS: a principal just created is not yet visible to EKS.
  ResourcePropagationDelayException: [10_000, 'IamPropagation'],
  // IAM DeleteRole while policies or instance profiles are still attached (someone attached one).
  DeleteConflict: [10_000, 'DeleteConflict'],
  DeleteConflictException: [10_000, 'DeleteConflict'],
  // A create raced another writer (or a previous pass whose answer was lost): read again.
  EntityAlreadyExists: [1_000, 'AlreadyExists'],
  EntityAlreadyExistsException: [1_000, 'AlreadyExists'],
  ResourceAlreadyExistsException: [1_000, 'AlreadyExists'],
  EntityTemporarilyUnmodifiable: [5_000, 'ConcurrentModification'],
  EntityTemporarilyUnmodifiableException: [5_000, 'ConcurrentModification'],
};

interface SdkErrorShape {
  name?: string;
  Code?: string;
  message?: string;
  retryAfterSeconds?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/** Maps an AWS SDK v3 error to a typed error; anything already translated or not from AWS passes through. */
export function translateAwsError(err: unknown, ctx: AwsCallContext): Error {
  if (err instanceof AwsError) return err;
  if (!(err instanceof Error))
    return new AwsError('AwsError', `${where(ctx)}: ${String(err)}`, ctx, { cause: err });
  const e = err as Error & SdkErrorShape;
  const code = e.name === 'Error' || e.name === undefined ? e.Code : e.name;
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined && e.$fault === undefined) {
    // No AWS answer at all: the endpoint was unreachable or timed out (transient), or this is a bug
    // (kept as it is, so its stack stays useful).
    if (isNetworkError(e))
      return new AwsServerError('AwsUnreachable', `${where(ctx)}: ${e.message}`, ctx, { cause: err });
    return err;
  }
  const message = `${where(ctx)}: ${e.message || code || 'unknown error'}`;
  const opts = { ...(code === undefined ? {} : { code }), cause: err };

  if (code !== undefined && NOT_FOUND.has(code)) return new NotFoundError('NotFound', message, ctx, opts);
  if ((code !== undefined && THROTTLED.has(code)) || status === 429) {
    const retryAfterMs = retryAfter(e);
    return new ThrottledError(message, ctx, {
      ...opts,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  // Lambda validates at create/update time that it can assume the role; a role created seconds ago
  // fails this until IAM has propagated it (typically < 10 s). Likewise for an on-failure destination:
  // Lambda checks the role may send to it. EKS refuses a principal it cannot see yet as "invalid".
  // The reconcile tells propagation from a real misconfiguration by how long ago the role changed.
  if (
    (code === 'InvalidParameterValueException' &&
      /cannot be assumed by Lambda|execution role does not have permissions/i.test(e.message)) ||
    (code === 'InvalidParameterException' && /principalArn is invalid|invalid principal/i.test(e.message))
  ) {
    return new RetryLaterError('IamPropagation', message, ctx, { ...opts, afterMs: 5_000 });
  }
  if (
    code === 'LimitExceeded' ||
    code === 'LimitExceededException' ||
    code === 'ServiceQuotaExceededException'
  ) {
    const q = QUOTAS[ctx.operation];
    const how = q
      ? `${q.name} is full: raise it in Service Quotas (aws service-quotas request-service-quota-increase --service-code ${q.service} --quota-code ${q.code} --desired-value <n>) or delete unused ones`
      : 'an AWS quota is full: raise it in Service Quotas or free some';
    return new QuotaExceededError('QuotaExceeded', `${message}; ${how}`, ctx, opts);
  }
  const wait = code === undefined ? undefined : WAIT[code];
  if (wait) return new RetryLaterError(wait[1], message, ctx, { ...opts, afterMs: wait[0] });
  if ((status !== undefined && status >= 500) || e.$fault === 'server') {
    return new AwsServerError('AwsUnavailable', message, ctx, opts);
  }
  if (code === 'AccessDenied' || code === 'AccessDeniedException' || status === 403) {
    return new AwsError('AccessDenied', message, ctx, opts);
  }
  return new AwsError('AwsRequestFailed', message, ctx, opts);
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

function isNetworkError(e: Error & { code?: unknown }): boolean {
  return e.name === 'TimeoutError' || (typeof e.code === 'string' && NETWORK_CODES.has(e.code));
}

function where(ctx: AwsCallContext): string {
  return ctx.resource === undefined ? ctx.operation : `${ctx.operation} ${ctx.resource}`;
}

// Lambda's TooManyRequestsException carries retryAfterSeconds; other services may send Retry-After.
function retryAfter(e: SdkErrorShape): number | undefined {
  const raw = e.retryAfterSeconds ?? e.$response?.headers?.['retry-after'];
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : undefined;
}
