// How a pass ends: the Ready condition it writes and what the work queue does next. Every error a
// pass can meet is already typed at its API boundary (aws/errors.ts, kube/errors.ts, errors.ts);
// here each class becomes a reason, a status and a retry decision.

import { withinPropagation } from '../lambda/propagation.ts';
import { AwsError, AwsServerError, QuotaExceededError, ThrottledError } from './aws/errors.ts';
import { NotOursError, RetryLaterError } from './errors.ts';
import { KubeError, KubeUnavailableError } from './kube/errors.ts';
import type { ControllerStatus } from './kube/secretsyncs.ts';
import { BackoffHint, type ProcessResult } from './workqueue.ts';

/** Ready reasons, a fixed list (docs/troubleshooting.md). */
export const READY_REASONS = [
  'Ready',
  'Suspended',
  'Provisioning',
  'SecretNotFound',
  'SecretScheduledForDeletion',
  'CrossAccountUnsupported',
  'PolicyDenied',
  'Conflict',
  'TargetConflict',
  'ClusterAuthModeUnsupported',
  'ClusterUnavailable',
  'FunctionFailed',
  'FunctionInactive',
  'RoleNotAssumable',
  'QuotaExceeded',
  'AccessDenied',
  'AwsError',
  'KubernetesError',
] as const;
export type ReadyReason = (typeof READY_REASONS)[number];

/** A pass that cannot go on: reason, message, and when to look again. */
export class Stop extends Error {
  readonly reason: ReadyReason;
  readonly requeueAfterMs: number | undefined;
  constructor(reason: ReadyReason, message: string, requeueAfterMs?: number) {
    super(message);
    this.reason = reason;
    this.requeueAfterMs = requeueAfterMs;
  }
}

export const SLOW_RETRY_MS = 5 * 60_000;

export interface Outcome {
  ready: ControllerStatus['ready'];
  result?: ProcessResult;
  /** Thrown on to the work queue: retried with backoff. */
  rethrow?: Error;
}

/**
 * `accessChangedTime`: when the pass (or an earlier one) last changed the function's role or access
 * entry. IAM propagation waits as Provisioning within the window after it; after that, the same
 * answer is a real misconfiguration and says what to check.
 */
export function classify(
  err: unknown,
  ctx: { accessChangedTime?: string | undefined; now?: number } = {},
): Outcome {
  const requeue = (ms: number | undefined) => (ms === undefined ? undefined : { requeueAfterMs: ms });
  if (
    err instanceof RetryLaterError &&
    err.reason === 'IamPropagation' &&
    !withinPropagation(ctx.accessChangedTime, ctx.now ?? Date.now())
  ) {
    return { ready: notPropagation(err), result: requeue(SLOW_RETRY_MS) };
  }
  if (err instanceof QuotaExceededError) {
    return {
      ready: { status: 'False', reason: 'QuotaExceeded', message: err.message },
      result: requeue(SLOW_RETRY_MS),
    };
  }
  if (err instanceof Stop) {
    return {
      ready: { status: 'False', reason: err.reason, message: err.message },
      result: requeue(err.requeueAfterMs),
    };
  }
  if (err instanceof RetryLaterError) {
    return {
      ready: { status: 'False', reason: 'Provisioning', message: err.message },
      result: requeue(err.afterMs),
    };
  }
  if (err instanceof NotOursError) {
    return {
      ready: {
        status: 'False',
        reason: 'Conflict',
        message: `${err.message}; rename or delete it, or tag it as ours`,
      },
      result: requeue(SLOW_RETRY_MS),
    };
  }
  if (err instanceof ThrottledError) {
    return {
      ready: { status: 'Unknown', reason: 'AwsError', message: err.message },
      rethrow: new BackoffHint(err.message, err.retryAfterMs ?? 0),
    };
  }
  if (err instanceof AwsError) {
    const reason: ReadyReason = err.reason === 'AccessDenied' ? 'AccessDenied' : 'AwsError';
    const status = err instanceof AwsServerError ? 'Unknown' : 'False';
    return { ready: { status, reason, message: err.message }, rethrow: err };
  }
  if (err instanceof KubeError) {
    const status = err instanceof KubeUnavailableError ? 'Unknown' : 'False';
    return { ready: { status, reason: 'KubernetesError', message: err.message }, rethrow: err };
  }
  return {
    ready: { status: 'Unknown', reason: 'AwsError', message: (err as Error)?.message ?? String(err) },
    rethrow: err instanceof Error ? err : new Error(String(err)),
  };
}

/** An IAM propagation answer long after the last change: what it really means. */
function notPropagation(err: RetryLaterError): ControllerStatus['ready'] {
  const since = "and the function's role has not changed for minutes";
  if (err.operation === 'CreateAccessEntry') {
    return {
      status: 'False',
      reason: 'AwsError',
      message: `${err.message} ${since}: EKS does not accept the role as a principal; check that it exists in this account`,
    };
  }
  return {
    status: 'False',
    reason: 'RoleNotAssumable',
    message: `${err.message} ${since}: check that its trust policy lets lambda.amazonaws.com assume it, and that no SCP or permissions boundary denies it (iam:PassRole for the controller, sts:AssumeRole for Lambda)`,
  };
}
