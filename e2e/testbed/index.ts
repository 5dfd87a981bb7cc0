import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { type AccountSettings, accountInterceptor, defaultAccountSettings } from './aws-account.ts';
import type { AwsEndpoint } from './aws-types.ts';
import { AccessEntryStore, type ClusterOverride, createEksInterceptor } from './eks-access-entries.ts';
import { startEksAuthenticator, writeWebhookKubeconfig } from './eks-authenticator.ts';
import type { KnownCredentials } from './eks-token-check.ts';
import { createEventRouter, type EventRouter, motoPatternMatcher } from './event-router.ts';
import { type FrontDoor, startFrontDoor } from './front-door.ts';
import { kmsStateInterceptor } from './kms-state.ts';
import { type Kube, startKube } from './kube.ts';
import { FunctionCodeStore, LambdaRunner, type LambdaRunnerOptions } from './lambda-runner.ts';
import { startMoto } from './moto.ts';
import { binaries } from './paths.ts';
import { createPki } from './pki.ts';
import { waitFor } from './process.ts';

function kubectl(kubeconfig: string, args: string[]): string {
  try {
    return execFileSync(binaries.kubectl(), ['--kubeconfig', kubeconfig, ...args], {
      stdio: 'pipe',
      encoding: 'utf8',
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Everything a test (in another worker) needs to reach the test bed; plain data. */
export interface TestbedInfo {
  dir: string;
  logsDir: string;
  kubeconfigPath: string;
  apiUrl: string;
  /** The cluster CA, PEM. */
  caPem: string;
  auditLogPath: string;
  clusterName: string;
  aws: AwsEndpoint;
}

export interface Testbed {
  info: TestbedInfo;
  frontDoor: FrontDoor;
  kube: Kube;
  accessEntries: AccessEntryStore;
  runner: LambdaRunner;
  router: EventRouter;
  /** `export` lines for a shell. */
  exports(): string;
  stop(opts?: { keepLogs?: boolean }): Promise<void>;
}

export interface TestbedOptions {
  clusterName?: string;
  region?: string;
  /** Authentication mode DescribeCluster reports; CONFIG_MAP lets tests see the controller refuse it. */
  authenticationMode?: ClusterOverride['authenticationMode'];
  quiet?: boolean;
  /** Delays before Lambda's two async retries; AWS waits about 1 and 2 minutes, tests less. */
  asyncRetryDelaysMs?: number[];
  /** Reuse function processes between invocations, like warm Lambda containers (default: a fresh process each time). */
  warmLambdas?: boolean;
}

const ACCOUNT_ID = '123456789012';
const CRD_DIR = new URL('../../crds/', import.meta.url).pathname;

/**
 * Starts the whole test bed: moto behind our front door (with EKS access entries, the Lambda
 * runner and the Secrets Manager event router mounted), the EKS authenticator webhook, etcd and
 * kube-apiserver; creates the EKS cluster record in moto pointing at that API server, and
 * installs the CRD. Stop it with stop(); logs are removed unless keepLogs.
 */
export async function startTestbed(opts: TestbedOptions = {}): Promise<Testbed> {
  const started = Date.now();
  const clusterName = opts.clusterName ?? 'secretsync-testbed';
  const region = opts.region ?? 'eu-west-1';
  const dir = mkdtempSync(join(tmpdir(), 'secretsync-testbed-'));
  const logsDir = join(dir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const say = (m: string) => {
    if (!opts.quiet) process.stderr.write(`[testbed] ${m}\n`);
  };
  const stoppers: (() => Promise<void>)[] = [];
  const log = (m: string) =>
    writeFileSync(join(logsDir, 'testbed.log'), `${new Date().toISOString()} ${m}\n`, { flag: 'a' });

  try {
    const pki = createPki(dir);
    const moto = await startMoto({ logsDir });
    stoppers.push(moto.stop);
    const frontDoor = await startFrontDoor({ motoUrl: moto.url, log });
    stoppers.push(frontDoor.close);
    const aws: AwsEndpoint = {
      url: frontDoor.url,
      motoUrl: moto.url,
      region,
      accountId: ACCOUNT_ID,
      credentials: { accessKeyId: 'AKIATESTBEDADMIN0001', secretAccessKey: 'testbed-admin-secret' },
    };
    say(`moto ${moto.url}, front door ${frontDoor.url}`);

    // Credentials AssumeRole hands out, so the authenticator can verify token signatures as STS would.
    const issued = new Map<string, KnownCredentials>();
    frontDoor.observe((req, res) => {
      if (req.service !== 'sts' || req.operation !== 'AssumeRole' || res.status !== 200) return;
      const xml = res.body.toString();
      const pick = (tag: string) => new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(xml)?.[1];
      const id = pick('AccessKeyId');
      const secret = pick('SecretAccessKey');
      const session = pick('SessionToken');
      if (id && secret)
        issued.set(id, { secretAccessKey: secret, ...(session ? { sessionToken: session } : {}) });
    });

    const accessEntries = new AccessEntryStore();
    const clusterOverrides: Record<string, ClusterOverride> = {};
    frontDoor.use(
      createEksInterceptor({
        motoUrl: moto.url,
        region,
        accountId: ACCOUNT_ID,
        store: accessEntries,
        clusterOverrides,
        credentials: aws.credentials,
      }),
    );
    const accountSettings = defaultAccountSettings();
    frontDoor.use(
      accountInterceptor({
        motoUrl: moto.url,
        region,
        accountId: ACCOUNT_ID,
        credentials: aws.credentials,
        settings: accountSettings,
      }),
    );
    frontDoor.use(kmsStateInterceptor({ motoUrl: moto.url, credentials: aws.credentials }));
    // The runner assumes each function's role itself (straight at moto): record those credentials too.
    const runnerOptions: LambdaRunnerOptions = {
      endpoint: aws,
      codeStore: new FunctionCodeStore(),
      asyncRetryDelaysMs: opts.asyncRetryDelaysMs ?? [500, 1000],
      onCredentials: (c) =>
        issued.set(c.accessKeyId, {
          secretAccessKey: c.secretAccessKey,
          ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
        }),
      warm: opts.warmLambdas ?? false,
    };
    const runner = new LambdaRunner(runnerOptions);
    stoppers.push(() => runner.close());
    frontDoor.use(runner.interceptor);
    // Start moto's pattern matcher now (a Python process, about a second), not on the first event.
    const matcher = motoPatternMatcher();
    await matcher('{"source":["testbed.warmup"]}', {
      version: '0',
      id: 'warmup',
      'detail-type': 'warmup',
      source: 'testbed.warmup',
      account: ACCOUNT_ID,
      time: new Date().toISOString(),
      region,
      resources: [],
      detail: {},
    });
    const router = createEventRouter({ endpoint: aws, runner, log, matcher });
    stoppers.push(() => router.close());
    frontDoor.observe(router.observer);

    const authenticator = await startEksAuthenticator({
      motoUrl: moto.url,
      region,
      clusterName,
      store: accessEntries,
      tls: { cert: pki.read(pki.webhookCert), key: pki.read(pki.webhookKey) },
      secretFor: (id) => issued.get(id),
      log,
    });
    stoppers.push(authenticator.close);
    const webhookKubeconfigPath = join(dir, 'webhook.kubeconfig');
    await writeWebhookKubeconfig(webhookKubeconfigPath, {
      url: authenticator.url,
      caPem: pki.read(pki.caCert),
    });

    const kube = await startKube({ dir, logsDir, pki, webhookKubeconfigPath });
    stoppers.push(kube.stop);
    say(`kube-apiserver ${kube.apiUrl}`);
    const caPem = pki.read(pki.caCert);

    // The EKS cluster record: moto keeps it, DescribeCluster answers with the real API server.
    const eks = new EKSClient({ endpoint: moto.url, region, credentials: aws.credentials });
    const iam = new IAMClient({ endpoint: moto.url, region, credentials: aws.credentials });
    const clusterRole = await iam.send(
      new CreateRoleCommand({
        RoleName: `${clusterName}-cluster`,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'eks.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
      }),
    );
    await eks.send(
      new CreateClusterCommand({
        name: clusterName,
        roleArn: clusterRole.Role!.Arn!,
        version: '1.35',
        resourcesVpcConfig: { subnetIds: ['subnet-testbed'], endpointPublicAccess: true },
      }),
    );
    clusterOverrides[clusterName] = {
      endpoint: kube.apiUrl,
      certificateAuthorityData: Buffer.from(caPem).toString('base64'),
      authenticationMode: opts.authenticationMode ?? 'API_AND_CONFIG_MAP',
    };

    kubectl(kube.kubeconfigPath, ['apply', '--server-side', '-f', CRD_DIR]);
    kubectl(kube.kubeconfigPath, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/secretsyncs.secretsync.io',
      'crd/secretsyncpolicies.secretsync.io',
    ]);
    // Established is not yet servable: the first lists answer 429 "storage is (re)initializing".
    await waitFor('the SecretSync API', async () => {
      kubectl(kube.kubeconfigPath, ['get', 'secretsyncs', '-A']);
      return true;
    });

    // The control API, for tests in other workers and for humans.
    const json = (v: unknown) => ({ json: v });
    frontDoor.control('/_testbed/calls', async (req) => {
      if (req.method === 'DELETE') frontDoor.resetCalls();
      return json(frontDoor.calls());
    });
    frontDoor.control('/_testbed/faults', async (req, body) => {
      if (req.method === 'DELETE') frontDoor.clearFaults();
      else frontDoor.addFault(JSON.parse(body.toString()));
      return json({ ok: true });
    });
    frontDoor.control('/_testbed/idle', async () => {
      await router.idle();
      await runner.idle();
      return json({ idle: true });
    });
    frontDoor.control('/_testbed/history', async () => json(router.history()));
    frontDoor.control('/_testbed/invocations', async () => json(runner.asyncInvocations()));
    frontDoor.control('/_testbed/logs', async (_r, _b, q) => json(runner.logsFor(q.get('function') ?? '')));
    frontDoor.control('/_testbed/stats', async (_r, _b, q) => json(runner.stats(q.get('function') ?? '')));
    frontDoor.control('/_testbed/restart-apiserver', async () => {
      await kube.restartApiserver();
      return json({ ok: true });
    });
    // {action: 'stop' | 'start' | 'restart-etcd'}: an API server outage of a chosen length.
    frontDoor.control('/_testbed/apiserver', async (_r, body) => {
      const { action } = JSON.parse(body.toString()) as { action: string };
      if (action === 'stop') await kube.stopApiserver();
      else if (action === 'start') await kube.startApiserver();
      else if (action === 'restart-etcd') await kube.restartEtcd();
      else return { status: 400, json: { error: `unknown action ${action}` } };
      return json({ ok: true });
    });
    frontDoor.control('/_testbed/warm', async (_r, body) => {
      runnerOptions.warm = JSON.parse(body.toString()).warm === true;
      return json({ warm: runnerOptions.warm });
    });
    // Account limits secretsync doctor reads: {lambdaConcurrency?, quotas?: {"events/L-244521F2": 5}};
    // DELETE restores AWS's defaults.
    frontDoor.control('/_testbed/account', async (req, body) => {
      if (req.method === 'DELETE') Object.assign(accountSettings, defaultAccountSettings());
      else if (req.method === 'POST') {
        const patch = JSON.parse(body.toString()) as Partial<AccountSettings>;
        if (patch.lambdaConcurrency !== undefined)
          accountSettings.lambdaConcurrency = patch.lambdaConcurrency;
        Object.assign(accountSettings.quotas, patch.quotas ?? {});
      }
      return json(accountSettings);
    });
    frontDoor.control('/_testbed/auth-mode', async (_r, body) => {
      const o = clusterOverrides[clusterName];
      if (o) o.authenticationMode = JSON.parse(body.toString()).mode;
      return json({ ok: true });
    });

    const info: TestbedInfo = {
      dir,
      logsDir,
      kubeconfigPath: kube.kubeconfigPath,
      apiUrl: kube.apiUrl,
      caPem,
      auditLogPath: kube.auditLogPath,
      clusterName,
      aws,
    };
    say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return {
      info,
      frontDoor,
      kube,
      accessEntries,
      runner,
      router,
      exports: () =>
        [
          `export KUBECONFIG=${info.kubeconfigPath}`,
          `export AWS_ENDPOINT_URL=${aws.url}`,
          `export AWS_REGION=${region}`,
          `export AWS_DEFAULT_REGION=${region}`,
          `export AWS_ACCESS_KEY_ID=${aws.credentials.accessKeyId}`,
          `export AWS_SECRET_ACCESS_KEY=${aws.credentials.secretAccessKey}`,
          `export SECRETSYNC_CLUSTER_NAME=${clusterName}`,
          `export SECRETSYNC_TESTBED_LOGS=${logsDir}`,
        ].join('\n'),
      async stop(o = {}) {
        for (const s of stoppers.reverse()) await s().catch(() => {});
        if (o.keepLogs) process.stderr.write(`[testbed] logs kept in ${logsDir}\n`);
        else rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of stoppers.reverse()) await s().catch(() => {});
    process.stderr.write(`[testbed] failed to start; logs in ${logsDir}\n`);
    for (const f of ['kube-apiserver.log', 'etcd.log', 'moto.log']) {
      try {
        const text = readFileSync(join(logsDir, f), 'utf8');
        process.stderr.write(`--- ${f} (tail) ---\n${text.slice(-3000)}\n`);
      } catch {
        // not started
      }
    }
    throw err;
  }
}
