import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateSecretCommand, SecretsManagerClient, type Tag } from '@aws-sdk/client-secrets-manager';
import type { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { type ControllerConfig, loadControllerConfig } from '../../src/controller/config.ts';
import { type RunningController, startController } from '../../src/controller/controller.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import { adminKubeConfig, awsConfig, bed, core, customObjects } from './support.ts';

export const api = { group: 'secretsync.io', version: 'v1alpha1', plural: 'secretsyncs' } as const;
export const ZIP = new URL('../../dist/lambda/secretsync-lambda.zip', import.meta.url).pathname;

/** Polls until `check` returns a value (not undefined); fails with the last observation. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(150);
  }
}

export interface TestController extends RunningController {
  /** The controller's log lines (JSON), for diagnostics. */
  logs: string[];
}

/**
 * The controller in this process against the test bed (as the image runs it, minus the lease by default).
 * `config` overrides settings past their flags' limits (e.g. a sub-second cluster check).
 */
export async function startControllerWith(
  opts: {
    kc?: KubeConfig;
    args?: string[];
    logLevel?: string;
    config?: Partial<ControllerConfig>;
    clusterUnavailableAfterMs?: number;
  } = {},
): Promise<TestController> {
  const b = bed();
  process.env.AWS_ENDPOINT_URL = b.aws.url;
  process.env.AWS_ACCESS_KEY_ID = b.aws.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = b.aws.credentials.secretAccessKey;
  process.env.AWS_REGION = b.aws.region;
  const config = loadControllerConfig(
    [
      `--cluster-name=${b.clusterName}`,
      `--region=${b.aws.region}`,
      `--lambda-zip=${ZIP}`,
      '--leader-elect=false',
      '--metrics-port=0',
      '--health-port=0',
      '--resync-period=30s',
      ...(opts.args ?? []),
    ],
    {},
  );
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk).trim());
      cb();
    },
  });
  const log = pino({ level: opts.logLevel ?? 'info' }, sink);
  const running = await startController({
    config: { ...config, ...opts.config },
    kc: opts.kc ?? adminKubeConfig(),
    log,
    ...(opts.clusterUnavailableAfterMs !== undefined
      ? { clusterUnavailableAfterMs: opts.clusterUnavailableAfterMs }
      : {}),
  });
  return Object.assign(running, { logs });
}

/**
 * Until the controller's first inventory pass is done: a SecretSync applied before it is provisioned
 * with reads (nothing listed yet), one applied after without.
 */
export async function firstInventory(c: RunningController): Promise<void> {
  await eventually('the first inventory pass', async () => {
    const m = /^secretsync_inventory_duration_seconds_count (\d+)/m.exec(await c.metricsText());
    return Number(m?.[1] ?? 0) >= 1 ? true : undefined;
  });
}

export const startTestController = (extraArgs: string[] = []): Promise<TestController> =>
  startControllerWith({ args: extraArgs, logLevel: 'warn' });

export async function createAwsSecret(name: string, value: string, tags: Tag[] = []): Promise<string> {
  const sm = new SecretsManagerClient(awsConfig());
  const out = await sm.send(new CreateSecretCommand({ Name: name, SecretString: value, Tags: tags }));
  return out.ARN!;
}

export async function applySecretSync(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await customObjects().createNamespacedCustomObject({
    ...api,
    namespace,
    body: { apiVersion: 'secretsync.io/v1alpha1', kind: 'SecretSync', metadata: { name }, spec },
  });
}

export async function getSecretSync(namespace: string, name: string): Promise<SecretSync | undefined> {
  try {
    return (await customObjects().getNamespacedCustomObject({ ...api, namespace, name })) as SecretSync;
  } catch {
    return undefined;
  }
}

export const condition = (ss: SecretSync | undefined, type: string) =>
  ss?.status?.conditions?.find((c) => c.type === type);

/** The target Secret's data decoded to strings (undefined when missing). */
export async function secretData(
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  try {
    const s = await core().readNamespacedSecret({ namespace, name });
    return Object.fromEntries(
      Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
  } catch {
    return undefined;
  }
}

export async function waitReady(namespace: string, name: string, timeoutMs = 60_000): Promise<SecretSync> {
  return eventually(
    `${namespace}/${name} Ready`,
    async () => {
      const ss = await getSecretSync(namespace, name);
      const ready = condition(ss, 'Ready');
      if (ready?.status === 'True') return ss;
      if (ready && ready.reason !== 'Provisioning')
        throw new Error(`Ready=${ready.status} ${ready.reason}: ${ready.message}`);
      return undefined;
    },
    timeoutMs,
  );
}

/** Waits for every routed event and async invocation in the test bed to finish. */
export async function idle(): Promise<void> {
  await fetch(`${bed().aws.url}/_testbed/idle`);
}
