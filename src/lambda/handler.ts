import pino from 'pino';
import { loadConfig, type SyncConfig } from './config.ts';
import { TokenCache } from './eks-token.ts';
import { isSyncError, SyncError } from './errors.ts';
import { createKubeClient, type KubeClient } from './kube-client.ts';
import { readCurrentSecret } from './secret-reader.ts';
import {
  createSecretsManager,
  credentialsFromEnv,
  type SecretsManager,
  secretsManagerEndpoint,
} from './secrets-manager.ts';
import { readStatus, reportSync } from './status.ts';
import { runSync } from './sync.ts';

// Module scope: created once per container and reused while it is warm (clients, connections,
// the EKS token). Logs are JSON lines with counts and key names at debug only — never values.
// Written synchronously: pino's default destination writes from the thread pool after the call
// returns, so the handler's last line (the `sync` record) could still be pending when the runtime
// freezes or reclaims the environment after the response — and be lost, or land in a later invocation.
const log = pino(
  {
    level: process.env.SECRETSYNC_LOG_LEVEL ?? 'info',
    base: { fn: process.env.AWS_LAMBDA_FUNCTION_NAME },
    timestamp: pino.stdTimeFunctions.isoTime,
  },
  pino.destination({ dest: 1, sync: true }),
);

interface State {
  config: SyncConfig;
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
  const secrets = createSecretsManager({
    region: config.region,
    endpoint: secretsManagerEndpoint(process.env, config.region),
    credentials,
  });
  const tokens = new TokenCache({ region: config.region, clusterName: config.clusterName, credentials });
  const kube = createKubeClient({
    endpoint: config.apiEndpoint,
    caPem: config.caPem,
    token: () => tokens.get(),
  });
  return { config, secrets, kube, tokens };
}

export interface SyncResponse {
  outcome: 'Synced' | 'Failed';
  reason?: string;
  versionId?: string;
  keys?: number;
  wrote?: boolean;
}

export async function handler(event: unknown): Promise<SyncResponse> {
  const started = performance.now();
  state ??= init();
  const { config, secrets, kube, tokens } = state;
  const ctx = { namespace: config.namespace, name: config.syncName, trigger: triggerOf(event) };
  // The status read does not depend on the sync: start it now. Its failure surfaces when reporting.
  const statusRead = readStatus(kube, config);
  statusRead.catch(() => {});
  try {
    const result = await runSync({
      config,
      kube,
      log: log.child(ctx),
      readSecret: () => readCurrentSecret(secrets, config.secretArn, config.versionStage),
      onUnauthorized: () => tokens.invalidate(),
      onWritten: (written) => reportSync(kube, config, { ok: true, result: written }, new Date(), statusRead),
    });
    // A sync that wrote has reported already (alongside its re-check); one that found nothing to do reports now.
    if (!result.wrote) await reportSync(kube, config, { ok: true, result }, new Date(), statusRead);
    const c = result.changes;
    log.info(
      {
        ...ctx,
        outcome: 'Synced',
        versionId: result.versionId,
        keys: result.keys,
        wrote: result.wrote,
        attempts: result.attempts,
        added: c.added.length,
        updated: c.updated.length,
        removed: c.removed.length,
        unchanged: c.unchanged.length,
        kept: c.kept.length,
        durationMs: Math.round(performance.now() - started),
      },
      'sync',
    );
    return { outcome: 'Synced', versionId: result.versionId, keys: result.keys, wrote: result.wrote };
  } catch (err) {
    const error = isSyncError(err)
      ? err
      : new SyncError('ApiUnavailable', `unexpected failure: ${(err as Error).name}`, { retryable: true });
    try {
      await reportSync(kube, config, { ok: false, error }, new Date(), readStatus(kube, config));
    } catch (reportErr) {
      log.warn(
        { ...ctx, err: (reportErr as Error).message },
        'could not report the failure on the SecretSync',
      );
    }
    log.error(
      {
        ...ctx,
        outcome: 'Failed',
        reason: error.reason,
        retryable: error.retryable,
        message: error.message,
        durationMs: Math.round(performance.now() - started),
      },
      'sync',
    );
    // Retryable: fail the invocation so Lambda's async retries run. Permanent: reported, done.
    if (error.retryable) throw error;
    return { outcome: 'Failed', reason: error.reason };
  }
}

function triggerOf(event: unknown): string {
  const e = event as { source?: string; 'detail-type'?: string; trigger?: string } | undefined;
  if (e?.source === 'aws.secretsmanager') return 'event';
  return e?.trigger ?? 'invoke';
}
