// Errors the generic ensure/remove and the reconcile decide on, whichever API (AWS or Kubernetes)
// raised them. Each API's own translation (aws/errors.ts, kube/errors.ts) produces these or its own
// typed errors; nothing past those two files looks at an SDK error name or an HTTP status.

export interface CallContext {
  /** Operation, e.g. GetRole or "PATCH Role". */
  operation: string;
  /** The name or ARN the call is about. */
  resource?: string | undefined;
}

/**
 * A condition that passes by itself: requeue after `afterMs` (never sleep). Reasons: IamPropagation,
 * FunctionUpdating, ConcurrentModification, ResourceInUse, DeleteConflict, AlreadyExists, Busy.
 */
export class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
  readonly reason: string;
  readonly afterMs: number;
  readonly operation: string | undefined;
  readonly resource: string | undefined;
  readonly code: string | undefined;
  constructor(
    reason: string,
    message: string,
    ctx: CallContext | undefined,
    options: { afterMs: number; code?: string; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.afterMs = options.afterMs;
    this.operation = ctx?.operation;
    this.resource = ctx?.resource;
    this.code = options.code;
  }
}

/** A thing with our name that is not this SecretSync's: left untouched; Ready reason Conflict. */
export class NotOursError extends Error {
  override readonly name = 'NotOursError';
  readonly reason = 'Conflict';
  constructor(title: string, resource: string, why = "is not tagged as this SecretSync's") {
    super(`${title} ${resource} exists but ${why}; refusing to modify or delete it`);
  }
}

/** The thing does not exist: AWS's NotFoundError and Kubernetes' 404 both carry this name. */
export function isNotFound(err: unknown): boolean {
  return err instanceof Error && err.name === 'NotFoundError';
}
