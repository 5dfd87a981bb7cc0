// IAM and EKS apply a change with a delay: a role or inline policy written seconds ago can still deny
// GetSecretValue, and a new access entry can still be unknown to the cluster's authenticator (401).
// A denial soon after the controller changed the function's access (status.accessChangedTime, also
// in the controller's invocation payload) is that delay, not a verdict: the run waits and retries a
// little, then lets Lambda retry it; long after a change, a denial is real and said so.

import { SyncError } from './errors.ts';

/** How long after an access change a denial counts as propagation (AWS: seconds, at worst minutes). */
export const PROPAGATION_WINDOW_MS = 5 * 60_000;
/** How long one run waits for propagation before handing over to Lambda's retries. */
export const IN_RUN_BUDGET_MS = 20_000;

const DENIALS = new Set(['AccessDenied', 'Unauthorized']);

/** Whether `at` is within the propagation window of an access change at `changed` (ISO time). */
export function withinPropagation(changed: string | undefined, at: number): boolean {
  if (changed === undefined) return false;
  const t = Date.parse(changed);
  return Number.isFinite(t) && at - t < PROPAGATION_WINDOW_MS && at >= t - 60_000;
}

/** The later of two ISO times (either may be missing or unparsable). */
export function later(a: string | undefined, b: string | undefined): string | undefined {
  const ta = a === undefined ? Number.NaN : Date.parse(a);
  const tb = b === undefined ? Number.NaN : Date.parse(b);
  if (!Number.isFinite(tb)) return Number.isFinite(ta) ? a : undefined;
  if (!Number.isFinite(ta)) return b;
  return ta >= tb ? a : b;
}

export interface PropagationOptions {
  /** When the function's access last changed, as known now (it may be learnt during the run). */
  changedAt: () => string | undefined;
  /** Wall-clock deadline for waiting inside this run. */
  deadline: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (reason: string, attempt: number, waitMs: number) => void;
}

/**
 * Runs `run`; an AccessDenied or Unauthorized within the propagation window (or an Unauthorized
 * before the change time could be learnt) is retried with backoff until `deadline`, then thrown as
 * retryable with what it means. Outside the window, an AccessDenied
 * is permanent and names what to check; Unauthorized stays retryable (it cannot be reported: the
 * API server refused us, so only Lambda's retries and the controller's missed-change can help).
 */
export async function retryWhilePropagating<T>(run: () => Promise<T>, opts: PropagationOptions): Promise<T> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof SyncError) || !DENIALS.has(err.reason)) throw err;
      const changed = opts.changedAt();
      // A 401 before the SecretSync could be read says nothing of when access changed: the access
      // entry may be seconds old (it is the one thing that cannot tell us), so it is waited for too.
      const young = changed === undefined ? err.reason === 'Unauthorized' : withinPropagation(changed, now());
      if (!young) throw settled(err);
      const wait = Math.min(1_000 * attempt, 5_000);
      if (now() + wait > opts.deadline) throw propagating(err, changed, now());
      opts.onRetry?.(err.reason, attempt, wait);
      await sleep(wait);
    }
  }
}

function propagating(err: SyncError, changed: string | undefined, at: number): SyncError {
  const what = err.reason === 'Unauthorized' ? 'access entry' : 'IAM role or policy';
  const when =
    changed === undefined
      ? 'may be new'
      : `changed ${Math.max(0, Math.round((at - Date.parse(changed)) / 1000))}s ago`;
  return new SyncError(
    err.reason,
    `${err.message} — the function's ${what} ${when} and AWS applies such changes with a delay; retrying`,
    { retryable: true },
  );
}

function settled(err: SyncError): SyncError {
  if (err.reason !== 'AccessDenied') return err;
  return new SyncError(
    'AccessDenied',
    `${err.message} — check the secret's resource policy, its KMS key policy, SCPs and the permissions boundary of the function's role`,
    { retryable: false },
  );
}
