import pino from 'pino';
import { type FunctionConfig, loadConfig, specOf } from './config.ts';
import { TokenCache } from './eks-token.ts';
import { isSyncError, SyncError } from './errors.ts';
import { createKubeClient, type KubeClient } from './kube-client.ts';
import { IN_RUN_BUDGET_MS, later, retryWhilePropagating } from './propagation.ts';
import { readCurrentSecret } from './secret-reader.ts';
import { createSecretsManager, credentialsFromEnv, type SecretsManager } from './secrets-manager.ts';
import { readSecretSync, reportSync, type SecretSyncObject } from './status.ts';
import { kubeCall, runSync, targetIntact } from './sync.ts';

// Module scope: created once per container and reused while it is warm (clients, connections,
// the EKS token). Logs are JSON lines with counts and key names at debug only — never values.
// The keys are Powertools for AWS Lambda's (message, level, timestamp, service, cold_start,
// function_request_id, …), so its users' Logs Insights queries work here too.
// Written synchronously: pino's default destination writes from the thread pool after the call
// returns, so the handler's last line (the `sync` record) could still be pending when the runtime
// freezes or reclaims the environment after the response — and be lost, or land in a later invocation.
const log = pino(
  {
    level: process.env.SECRETSYNC_LOG_LEVEL ?? 'info',
    messageKey: 'message',
    base: {
      service: 'secretsync',
      function_name: process.env.AWS_LAMBDA_FUNCTION_NAME,
      function_memory_size: Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE) || undefined,
    },
    formatters: { level: (label) => ({ level: label.toUpperCase() }) },
    timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
  },
  pino.destination({ dest: 1, sync: true }),
);
let coldStart = true;

interface State {
  config: FunctionConfig;
  secrets: SecretsManager;
  kube: KubeClient;
  tokens: TokenCache;
}
let state: State | undefined;

function init(): State {
  // A configuration error fails every invocation with the same clear message until the
  // controller fixes the function; it cannot be reported on a SecretSync it cannot name.
  const config = loadConfig(process.env);
  // The execution role's credentials, read when used: a missing variable fails the sync with its
  // reason rather than the container's start.
  const credentials = async () => credentialsFromEnv(process.env);
  const secrets = createSecretsManager({ region: config.region, credentials });
  const tokens = new TokenCache({ region: config.region, clusterName: config.clusterName, credentials });
  const kube = createKubeClient({
    endpoint: config.apiEndpoint,
    caPem: config.caPem,
    token: () => tokens.get(),
  });
  return { config, secrets, kube, tokens };
}

export interface SyncResponse {
  /** Deferred: the spec's generation is not provisioned yet; the controller invokes once it is. Gone: no SecretSync. */
  outcome: 'Synced' | 'Failed' | 'Deferred' | 'Gone';
  reason?: string;
  versionId?: string;
  keys?: number;
  wrote?: boolean;
}

/** What the controller's own invocations carry (EventBridge's events carry none of it). */
interface ControllerPayload {
  trigger?: string;
  /** The generation the controller has provisioned. */
  generation?: number;
  /** When the controller last changed the function's IAM role, policy or access entry. */
  accessChangedTime?: string;
  /** The stage's version as the controller's inventory listed it (backstop runs). */
  versionId?: string;
}

/** Lambda's context: the deadline, and what each log line names the invocation by. */
interface Context {
  getRemainingTimeInMillis?: () => number;
  awsRequestId?: string;
  invokedFunctionArn?: string;
}

export async function handler(event: unknown, context?: Context): Promise<SyncResponse> {
  const started = performance.now();
  const log = invocationLog(context);
  state ??= init();
  const { config, secrets, kube, tokens } = state;
  const payload = controllerPayload(event);
  const ctx = { namespace: config.namespace, name: config.syncName, trigger: triggerOf(event) };
  const remaining = context?.getRemainingTimeInMillis?.() ?? 30_000;
  const deadline = Date.now() + Math.max(0, Math.min(IN_RUN_BUDGET_MS, remaining - 8_000));
  let ss: SecretSyncObject | undefined;
  const propagation = {
    changedAt: () => later(payload.accessChangedTime, ss?.status?.accessChangedTime),
    deadline,
    onRetry: (reason: string, attempt: number, waitMs: number) =>
      log.info({ ...ctx, reason, attempt, waitMs }, 'denied soon after an access change; waiting for AWS'),
  };
  const onUnauthorized = () => tokens.invalidate();
  const durationMs = () => Math.round(performance.now() - started);
  /** The run's `sync` line and its metrics line. */
  const done = (outcome: SyncResponse['outcome'], fields: Record<string, unknown> = {}, keysWritten = 0) => {
    log.info({ ...ctx, outcome, ...fields, durationMs: durationMs() }, 'sync');
    metrics(log, config, { outcome, durationMs: durationMs(), keysWritten });
    return { outcome };
  };
  const failed = (error: SyncError) => {
    log.error(
      {
        ...ctx,
        outcome: 'Failed',
        reason: error.reason,
        retryable: error.retryable,
        error: error.message,
        durationMs: durationMs(),
      },
      'sync',
    );
    metrics(log, config, {
      outcome: 'Failed',
      reason: error.reason,
      durationMs: durationMs(),
      keysWritten: 0,
    });
    // Retryable: fail the invocation so Lambda's async retries run. Permanent: reported, done.
    if (error.retryable) throw error;
    return { outcome: 'Failed' as const, reason: error.reason };
  };
  try {
    ss = await retryWhilePropagating(
      () => kubeCall({ config, onUnauthorized }, 'read its SecretSync', () => readSecretSync(kube, config)),
      propagation,
    );
  } catch (err) {
    // Not reportable on the SecretSync either (the API server refused us): logged, and retried by
    // Lambda when it may pass.
    return failed(asSyncError(err));
  }
  // Deleted meanwhile: its finalizer removes this function next.
  if (ss === undefined) return done('Gone');
  const read = ss;
  const provisioned = payload.generation ?? read.status?.observedGeneration;
  const generation = read.metadata.generation;
  if (provisioned !== undefined && generation !== undefined && provisioned < generation) {
    // The controller is still putting generation N in place (its Role may not name the new target
    // yet, its role may not read a new source): applying N now could claim what is not done.
    return done('Deferred', { generation, provisioned });
  }
  try {
    const spec = specOf(read, config.syncName);
    // A backstop run with nothing to do: the AWS version is the one the target holds, and the target
    // still holds what was written — no value read.
    if (ctx.trigger === 'resync') {
      const intact = await targetIntact(
        { config, spec, kube, onUnauthorized },
        {
          generation,
          syncedVersionId: read.status?.syncedVersionId,
          syncedKeys: read.status?.syncedKeys,
          synced: read.status?.conditions?.find((c) => c.type === 'Synced'),
        },
        payload.versionId,
      );
      if (intact) return done('Synced', { generation, versionId: payload.versionId, unchanged: true });
    }
    const result = await retryWhilePropagating(
      () =>
        runSync({
          config,
          spec,
          kube,
          log: log.child(ctx),
          readSecret: () => readCurrentSecret(secrets, config.secretArn, spec.versionStage),
          onUnauthorized,
          onWritten: (written) => reportSync(kube, config, { ok: true, result: written }, new Date(), read),
        }),
      propagation,
    );
    // A sync that wrote has reported already (alongside its re-check); one that found nothing to do reports now.
    if (!result.wrote) await reportSync(kube, config, { ok: true, result }, new Date(), read);
    const c = result.changes;
    done(
      'Synced',
      {
        generation,
        versionId: result.versionId,
        keys: result.keys,
        wrote: result.wrote,
        attempts: result.attempts,
        added: c.added.length,
        updated: c.updated.length,
        removed: c.removed.length,
        unchanged: c.unchanged.length,
        kept: c.kept.length,
      },
      result.wrote ? c.added.length + c.updated.length + c.removed.length : 0,
    );
    return { outcome: 'Synced', versionId: result.versionId, keys: result.keys, wrote: result.wrote };
  } catch (err) {
    const error = asSyncError(err);
    try {
      await reportSync(kube, config, { ok: false, error }, new Date(), read);
    } catch (reportErr) {
      log.warn(
        { ...ctx, error: (reportErr as Error).message },
        'could not report the failure on the SecretSync',
      );
    }
    return failed(error);
  }
}

/**
 * The invocation's logger: every line names the request and says whether this container started
 * for it (Powertools' keys; the X-Ray trace id when Lambda passes one).
 */
function invocationLog(context: Context | undefined): pino.Logger {
  const child = log.child({
    cold_start: coldStart,
    function_request_id: context?.awsRequestId,
    function_arn: context?.invokedFunctionArn,
    xray_trace_id: process.env._X_AMZN_TRACE_ID,
  });
  coldStart = false;
  return child;
}

/** CloudWatch's namespace for the function's metrics (README, "Observability"). */
export const METRICS_NAMESPACE = 'secretsync';

/**
 * One CloudWatch embedded-metric-format line per invocation: CloudWatch Logs turns it into metrics,
 * no API call. Dimensions are the cluster, the outcome and its reason (a fixed, small set: each
 * combination is one billed metric) — never the SecretSync, which the line's other fields name
 * for Logs Insights.
 */
function metrics(
  log: pino.Logger,
  config: Pick<FunctionConfig, 'clusterName' | 'namespace' | 'syncName'>,
  m: { outcome: string; reason?: string | undefined; durationMs: number; keysWritten: number },
): void {
  log.info(
    {
      _aws: {
        Timestamp: Date.now(),
        CloudWatchMetrics: [
          {
            Namespace: METRICS_NAMESPACE,
            Dimensions: [['Cluster', 'Outcome', 'Reason']],
            Metrics: [
              { Name: 'Invocations', Unit: 'Count' },
              { Name: 'Duration', Unit: 'Milliseconds' },
              { Name: 'KeysWritten', Unit: 'Count' },
            ],
          },
        ],
      },
      Cluster: config.clusterName,
      Outcome: m.outcome,
      Reason: m.reason ?? m.outcome,
      Invocations: 1,
      Duration: m.durationMs,
      KeysWritten: m.keysWritten,
      namespace: config.namespace,
      name: config.syncName,
    },
    'metrics',
  );
}

function asSyncError(err: unknown): SyncError {
  return isSyncError(err)
    ? err
    : new SyncError('ApiUnavailable', `unexpected failure: ${(err as Error).name}`, { retryable: true });
}

function controllerPayload(event: unknown): ControllerPayload {
  const e = (event ?? {}) as Record<string, unknown>;
  if (e.source === 'aws.secretsmanager') return {};
  return {
    ...(Number.isSafeInteger(e.generation) ? { generation: e.generation as number } : {}),
    ...(typeof e.accessChangedTime === 'string' ? { accessChangedTime: e.accessChangedTime } : {}),
    ...(typeof e.versionId === 'string' ? { versionId: e.versionId } : {}),
  };
}

function triggerOf(event: unknown): string {
  const e = event as { source?: string; 'detail-type'?: string; trigger?: string } | undefined;
  if (e?.source === 'aws.secretsmanager') return 'event';
  return e?.trigger ?? 'invoke';
}
