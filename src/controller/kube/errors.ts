// The one place that looks at Kubernetes API failures (client-node's ApiException: `code` is the
// HTTP status, `body` the Status object). Every call the controller makes goes through `kube()`, so
// the reconcile decides on classes, as it does for AWS (aws/errors.ts).

import type { CallContext } from '../errors.ts';

export class KubeError extends Error {
  override readonly name: string = 'KubeError';
  /** HTTP status; 0 when the API server did not answer. */
  readonly status: number;
  /** The Status object's reason (NotFound, AlreadyExists, Conflict, Forbidden, Invalid…). */
  readonly reason: string;
  constructor(status: number, reason: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.status = status;
    this.reason = reason;
  }
}

/** 404: carries the name every NotFound carries (errors.ts isNotFound). */
export class KubeNotFoundError extends KubeError {
  override readonly name = 'NotFoundError';
}

/** 409 on create: the object exists. */
export class AlreadyExistsError extends KubeError {
  override readonly name = 'AlreadyExistsError';
}

/** 409 on a precondition (uid, resourceVersion) or an update race. */
export class KubeConflictError extends KubeError {
  override readonly name = 'KubeConflictError';
}

/** 429, 5xx or no answer: retry with backoff. */
export class KubeUnavailableError extends KubeError {
  override readonly name = 'KubeUnavailableError';
}

interface ApiExceptionShape {
  code?: number;
  body?: unknown;
  message?: string;
}

/** Runs one client-node call and translates its failure. */
export async function kube<T>(ctx: CallContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw translateKubeError(err, ctx);
  }
}

export function translateKubeError(err: unknown, ctx: CallContext): Error {
  if (err instanceof KubeError) return err;
  const e = err as ApiExceptionShape;
  const where = ctx.resource === undefined ? ctx.operation : `${ctx.operation} ${ctx.resource}`;
  if (typeof e.code !== 'number') {
    const m = (err as Error)?.message ?? String(err);
    return new KubeUnavailableError(0, 'Unreachable', `Kubernetes API: ${where}: ${m}`, err);
  }
  const status = statusBody(e.body);
  const reason = status.reason ?? String(e.code);
  const message = `Kubernetes API: ${where}: HTTP ${e.code}: ${(status.message ?? e.message ?? '').slice(0, 300)}`;
  if (e.code === 404) return new KubeNotFoundError(404, 'NotFound', message, err);
  if (e.code === 409)
    return reason === 'AlreadyExists'
      ? new AlreadyExistsError(409, reason, message, err)
      : new KubeConflictError(409, reason, message, err);
  if (e.code === 429 || e.code >= 500) return new KubeUnavailableError(e.code, reason, message, err);
  return new KubeError(e.code, reason, message, err);
}

function statusBody(body: unknown): { reason?: string; message?: string } {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as { reason?: string; message?: string };
    } catch {
      return { message: body };
    }
  }
  return (body ?? {}) as { reason?: string; message?: string };
}
