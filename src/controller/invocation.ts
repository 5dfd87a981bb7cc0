// When the controller invokes the function itself (it is otherwise invoked by EventBridge on every
// change): the first sync, a force-sync, a spec change, a change event that never arrived, the
// backstop resync — and what the function's health allows first. Asynchronous: the function reports
// on the SecretSync's status.

import { createHash } from 'node:crypto';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { RETRYABLE_BY_DEFAULT } from '../lambda/errors.ts';
import { withinPropagation } from '../lambda/propagation.ts';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import { nameOfArn } from './aws/arn.ts';
import type { AwsEnv } from './aws/clients.ts';
import { aws } from './aws/errors.ts';
import { functionManager, lambdaOf } from './aws/lambda-function.ts';
import { parseDuration } from './config.ts';
import { type Ensured, type Health, waitUntilHealthy } from './manager.ts';
import { Stop } from './outcome.ts';

export const FORCE_SYNC_ANNOTATION = 'secretsync.io/force-sync';

/**
 * Whether the function can run now; Stop when it cannot. A function this pass created or updated
 * is waited for here (polling GetFunction for up to `budgetMs`) rather than by requeueing: measured
 * on the test bed, a requeued pass repeats every read (14 AWS calls) where the wait costs one or two
 * GetFunction calls (issue 12's note has the figures). A Failed function was re-created by the
 * ensure; an Inactive one is woken.
 */
export async function functionUsable(
  env: AwsEnv,
  fn: Ensured<{ config: { FunctionArn?: string | undefined } }>,
  arn: string,
  budgetMs: number,
): Promise<void> {
  const name = nameOfArn(arn);
  if (fn.replaced !== undefined) {
    throw new Stop(
      'FunctionFailed',
      `Lambda function ${name} was Failed (${fn.replaced}); deleted and created again, as Lambda requires`,
      5_000,
    );
  }
  let health: Health | undefined = fn.health;
  if (health.state === 'busy') health = await waitUntilHealthy(functionManager, env, arn, budgetMs);
  if (health === undefined || health.state === 'busy') {
    throw new Stop('Provisioning', `waiting for Lambda function ${name} to become active`, 3_000);
  }
  if (health.state === 'failed') {
    throw new Stop('FunctionFailed', `Lambda function ${name}: ${health.code}: ${health.message}`, 60_000);
  }
  if (health.state === 'inactive') {
    // Lambda restores an Inactive function when it is invoked (this invocation may be refused while
    // it does; the run, if any, is an ordinary sync).
    await invoke(env, arn, { trigger: 'wake' }).catch(() => {});
    throw new Stop(
      'FunctionInactive',
      `Lambda function ${name} is Inactive (${health.code}: ${health.message}); invoked it to wake it`,
      5_000,
    );
  }
}

/**
 * What an invocation tells the function: why it runs, which generation is provisioned (it applies
 * that spec, and defers a newer one the controller has not put in place yet), and when its access
 * last changed (a denial soon after is IAM still propagating).
 */
export interface InvokePayload {
  trigger: string;
  generation?: number | undefined;
  accessChangedTime?: string | undefined;
  /**
   * The stage's version as the inventory listed it (backstop runs): the function skips reading the
   * value when its target already holds that version intact.
   */
  versionId?: string | undefined;
}

/** Invokes the function asynchronously. */
export async function invoke(env: AwsEnv, arn: string, payload: InvokePayload): Promise<void> {
  const FunctionName = nameOfArn(arn);
  await aws({ operation: 'Invoke', resource: FunctionName }, () =>
    lambdaOf(env, arn).send(
      new InvokeCommand({
        FunctionName,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(payload)),
      }),
    ),
  );
}

/** How long a change event has to reach the function before a pass calls it missed. */
export const EVENT_GRACE_MS = 60_000;
/** How long Lambda's own retries of a transient failure take (about 1 + 2 minutes) before a pass tries again. */
export const RETRY_GRACE_MS = 5 * 60_000;
// Transient failures (the function's retryable reasons) plus Forbidden: the controller restores the
// function's RBAC in the same pass, so running it again may succeed.
const TRANSIENT = new Set<string>([...RETRYABLE_BY_DEFAULT, 'Forbidden']);
// Denials that are transient when they came soon after the function's access changed (propagation.ts).
const DENIALS = new Set<string>(['AccessDenied', 'Unauthorized']);

/** Whether the function's last failure may pass by itself when it runs again. */
function transientFailure(ss: SecretSync, lastRun: number): boolean {
  const synced = ss.status?.conditions?.find((c) => c.type === 'Synced');
  if (synced?.status !== 'False') return false;
  if (TRANSIENT.has(synced.reason)) return true;
  return DENIALS.has(synced.reason) && withinPropagation(ss.status?.accessChangedTime, lastRun);
}

/**
 * Whether the AWS secret moved on without the function: the stage points at a version the target
 * does not hold, and either the function has not run since the secret last changed (the event was
 * lost — EventBridge gave up, or the API server was down through all of Lambda's retries) or its
 * last run failed transiently and Lambda's retries are over — a denial soon after the function's
 * access changed included (IAM propagation). Costs nothing: DescribeSecret is read every pass anyway.
 * A permanent failure (InvalidKey, TooLarge, a denial long after any change…) waits for the next change.
 */
/** The version the SecretSync's stage points to in a listing or a DescribeSecret answer. */
export const stageVersion = (ss: SecretSync, source: { stageVersions: Record<string, string> }) =>
  source.stageVersions[ss.spec.source.versionStage ?? 'AWSCURRENT'];

export function missedChange(
  ss: SecretSync,
  source: { stageVersions: Record<string, string>; lastChangedDate: Date | undefined },
  now: number,
): boolean {
  const current = stageVersion(ss, source);
  if (!current || current === ss.status?.syncedVersionId) return false;
  const since = (t: string | undefined) => now - (t ? Date.parse(t) : 0);
  if (since(ss.status?.lastInvokeTime) < EVENT_GRACE_MS) return false;
  const lastRun = ss.status?.lastSyncTime ? Date.parse(ss.status.lastSyncTime) : 0;
  const changed = source.lastChangedDate?.getTime() ?? 0;
  if (lastRun < changed) return now - changed >= EVENT_GRACE_MS;
  return transientFailure(ss, lastRun) && now - lastRun >= RETRY_GRACE_MS;
}

type Changed =
  | 'target-recreated'
  | 'spec-changed'
  | 'function-created'
  | 'function-recovered'
  | 'missed-change';

/** Why to invoke the function now, if at all. */
export function invocationTrigger(
  ss: SecretSync,
  now: number,
  forceSync: string | undefined,
  changed: Changed | undefined,
): string | undefined {
  if (!ss.status?.lastInvokeTime) return 'first-sync';
  if (forceSync !== undefined && forceSync !== ss.status.lastForceSync) return 'force-sync';
  if (changed) return changed;
  const due = nextResyncAt(ss, ss.status.lastInvokeTime);
  if (due !== undefined && due <= now) return 'resync';
  return undefined;
}

/**
 * When the backstop resync is due: lastInvoke + interval, jittered by up to −10% with a value
 * fixed per SecretSync (so the desired state does not change from pass to pass, and a thousand
 * SecretSyncs created together do not all resync in the same second).
 */
export function nextResyncAt(ss: SecretSync, lastInvokeTime: string | undefined): number | undefined {
  const interval = parseDuration(ss.spec.resyncInterval) ?? 0;
  if (interval <= 0 || !lastInvokeTime) return undefined;
  const h = createHash('sha256')
    .update(ss.metadata.uid ?? ss.metadata.name)
    .digest();
  const jitter = (h.readUInt16BE(0) / 0xffff) * 0.1;
  return Date.parse(lastInvokeTime) + Math.round(interval * (1 - jitter));
}

/**
 * Why to invoke now, if at all. A generation no complete pass has provisioned yet syncs now, not at
 * the next change event: the function reads its spec at run time, so whatever changed (mapping,
 * stage, policy, target — or only resyncInterval) is applied, and Synced.observedGeneration follows.
 */
export function decideTrigger(
  ss: SecretSync,
  source: { stageVersions: Record<string, string>; lastChangedDate: Date | undefined },
  pass: { targetCreated: boolean; functionCreated: boolean },
  now: number,
): string | undefined {
  const ready = ss.status?.conditions?.find((c) => c.type === 'Ready');
  const specChanged =
    ss.status?.observedGeneration !== undefined && ss.status.observedGeneration !== ss.metadata.generation;
  return invocationTrigger(
    ss,
    now,
    ss.metadata.annotations?.[FORCE_SYNC_ANNOTATION],
    pass.targetCreated
      ? 'target-recreated'
      : specChanged
        ? 'spec-changed'
        : // A function (re-)created after the first sync — moved by a settings change, deleted by
          // hand, re-created after Failed — or back from Failed/Inactive may have missed events.
          pass.functionCreated
          ? 'function-created'
          : ready?.reason === 'FunctionFailed' || ready?.reason === 'FunctionInactive'
            ? 'function-recovered'
            : missedChange(ss, source, now)
              ? 'missed-change'
              : undefined,
  );
}
