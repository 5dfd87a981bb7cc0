import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AccountSettings, accountInterceptor, defaultAccountSettings } from './aws-account.ts';
import type { AwsEndpoint } from './aws-types.ts';
import { type Cluster, type ClusterContext, startCluster } from './cluster.ts';
import {
  AccessEntryStore,
  type ClusterOverride,
  clusterKey,
  createEksInterceptor,
} from './eks-access-entries.ts';
import type { KnownCredentials } from './eks-token-check.ts';
import { createEventRouter, type EventRouter, motoPatternMatcher } from './event-router.ts';
import { type FrontDoor, startFrontDoor } from './front-door.ts';
import { IamPropagation } from './iam-propagation.ts';
import { kmsStateInterceptor } from './kms-state.ts';
import type { Kube } from './kube.ts';
import { lambdaChecks } from './lambda-checks.ts';
import { FunctionCodeStore, LambdaRunner, type LambdaRunnerOptions } from './lambda-runner.ts';
import { FunctionStateStore, functionStatesControl, functionStatesInterceptor } from './lambda-states.ts';
import { listFidelity } from './list-fidelity.ts';
import { startMoto } from './moto.ts';
import { replacingInvokeConfigPut } from './moto-fixes.ts';
import type { Pki } from './pki.ts';
import { quotas } from './quotas.ts';
import { ListSecretsLag } from './secrets-list-lag.ts';
import { initialUnkindSettings, type UnkindSettings, unkindControl } from './unkind.ts';

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
  /** The primary cluster's PKI: its CA signs what a real node (e2e/node) presents. */
  pki: Pki;
  accessEntries: AccessEntryStore;
  runner: LambdaRunner;
  /** Function states tests set (POST /_testbed/function-state). */
  functionStates: FunctionStateStore;
  /** How unkind AWS is now (unkind.ts); change it in place or through /_testbed/unkind. */
  unkind: UnkindSettings;
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
  /**
   * IAM and access-entry propagation delays (unkind.ts): true, or settings (which turn them on unless they
   * say enabled: false). Default: SECRETSYNC_TESTBED_UNKIND=1 in the environment turns them on.
   */
  unkind?: boolean | Partial<UnkindSettings>;
  /**
   * ListSecrets shows the secrets as they were this many ms ago, as AWS may for minutes
   * (secrets-list-lag.ts); default 0. POST /_testbed/unkind {"listSecretsLagMs": n} changes it.
   */
  listSecretsLagMs?: number;
  /**
   * Service Quotas values at start, by `service/QuotaCode` (default AWS's); DELETE /_testbed/account
   * restores these. A whole test run or benchmark shares one account across more SecretSyncs than
   * AWS's 300 rules per bus: they raise the quotas here, tests of the quotas lower them.
   */
  quotas?: Record<string, number>;
  /**
   * The address the front door and the primary cluster's API server listen on (default 127.0.0.1).
   * e2e/node gives its bridge's address, so that pods on the real node reach both.
   */
  host?: string;
  /** Install the CRDs into the primary cluster (default true; e2e/node lets helm install them). */
  crds?: boolean;
}

const ACCOUNT_ID = '123456789012';

/** Quotas no test run or benchmark reaches: roles per account and rules per bus at 100,000. */
export const RAISED_QUOTAS: Record<string, number> = {
  'iam/L-FE177D64': 100_000,
  'events/L-244521F2': 100_000,
};

/**
 * Starts the whole test bed: moto behind our front door (with EKS access entries, the Lambda
 * runner, function states and the Secrets Manager event router mounted), and the primary cluster
 * (cluster.ts: the EKS authenticator webhook, etcd and kube-apiserver, the EKS cluster record in
 * moto pointing at that API server, the CRDs). More clusters can be added while it runs
 * (POST /_testbed/clusters). Stop it with stop(); logs are removed unless keepLogs.
 *
 * The AWS it shows is as unkind as the real one (unkind.ts): Lambda's environment and function-policy
 * limits, roles Lambda cannot assume (lambda-checks.ts) and the account's quotas (quotas.ts) always;
 * IAM and access-entry propagation delays (iam-propagation.ts) when the `unkind` option or
 * SECRETSYNC_TESTBED_UNKIND=1 says so, or from POST /_testbed/unkind on. List calls page and show what
 * AWS's do (list-fidelity.ts); ListSecrets lags when `listSecretsLagMs` says so (secrets-list-lag.ts).
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
    const moto = await startMoto({ logsDir });
    stoppers.push(moto.stop);
    const frontDoor = await startFrontDoor({
      motoUrl: moto.url,
      log,
      ...(opts.host ? { host: opts.host } : {}),
    });
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

    // As unkind as AWS: propagation delays (when on), Lambda's checks and the account's quotas (always).
    const unkindAtStart = initialUnkindSettings(opts.unkind);
    if (opts.listSecretsLagMs !== undefined) unkindAtStart.listSecretsLagMs = opts.listSecretsLagMs;
    const unkind = structuredClone(unkindAtStart);
    const propagation = new IamPropagation({
      settings: unkind,
      motoUrl: moto.url,
      credentials: aws.credentials,
    });
    frontDoor.observe(propagation.observer);
    // Before the EKS interceptor, which answers CreateAccessEntry itself.
    frontDoor.use(propagation.interceptor);
    if (unkind.enabled) say(`unkind: IAM propagation ${unkind.iamPropagationMs.join('-')} ms`);

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
    const accountAtStart = (): AccountSettings => {
      const settings = defaultAccountSettings();
      Object.assign(settings.quotas, opts.quotas ?? {});
      return settings;
    };
    const accountSettings = accountAtStart();
    const quota = quotas({
      motoUrl: moto.url,
      region,
      credentials: aws.credentials,
      settings: accountSettings,
    });
    frontDoor.use(quota.interceptor);
    frontDoor.observe(quota.observer);
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
    frontDoor.use(replacingInvokeConfigPut(moto.url));
    // List calls paged and shaped as AWS's; ListSecrets late when the lag is set (it answers first then).
    const secretsLag = new ListSecretsLag({
      motoUrl: moto.url,
      credentials: aws.credentials,
      settings: unkind,
    });
    frontDoor.use(secretsLag.interceptor);
    frontDoor.observe(secretsLag.observer);
    if (unkind.listSecretsLagMs > 0) say(`unkind: ListSecrets ${unkind.listSecretsLagMs} ms late`);
    frontDoor.use(listFidelity({ motoUrl: moto.url }));
    // Before the runner, so a refused upload leaves no code behind.
    const lambdaCheck = lambdaChecks({
      motoUrl: moto.url,
      accountId: ACCOUNT_ID,
      credentials: aws.credentials,
      settings: unkind,
      propagation,
    });
    frontDoor.use(lambdaCheck.interceptor);
    frontDoor.observe(lambdaCheck.observer);
    const functionStates = new FunctionStateStore({ defaultRegion: region });
    // The runner assumes each function's role itself (straight at moto): record those credentials too.
    const runnerOptions: LambdaRunnerOptions = {
      endpoint: aws,
      codeStore: new FunctionCodeStore(),
      asyncRetryDelaysMs: opts.asyncRetryDelaysMs ?? [500, 1000],
      onCredentials: (c) => {
        issued.set(c.accessKeyId, {
          secretAccessKey: c.secretAccessKey,
          ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
        });
        propagation.credentialsIssued(c.accessKeyId, c.roleArn);
      },
      warm: opts.warmLambdas ?? false,
      functionStates,
    };
    const runner = new LambdaRunner(runnerOptions);
    stoppers.push(() => runner.close());
    frontDoor.use(runner.interceptor);
    // After the runner: it answers Invoke (refusing by the same store) and captures code first.
    frontDoor.use(
      functionStatesInterceptor({ motoUrl: moto.url, accountId: ACCOUNT_ID, store: functionStates }),
    );
    stoppers.push(async () => functionStates.clear());
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

    const clusterContext: ClusterContext = {
      motoUrl: moto.url,
      credentials: aws.credentials,
      accessEntries,
      clusterOverrides,
      secretFor: (id) => issued.get(id),
      entryEffective: (entry) => propagation.entryEffective(entry),
      log,
    };
    const primary = await startCluster(clusterContext, {
      region,
      clusterName,
      dir,
      logsDir,
      ...(opts.authenticationMode ? { authenticationMode: opts.authenticationMode } : {}),
      ...(opts.host ? { host: opts.host } : {}),
      ...(opts.crds === false ? { crds: false } : {}),
    });
    stoppers.push(primary.stop);
    const { kube } = primary;
    const { caPem } = primary.info;
    say(`kube-apiserver ${kube.apiUrl}`);

    // Extra clusters, by clusterKey(region, name); each in its own directory, logs under the test bed's.
    const extras = new Map<string, Cluster>();
    const starting = new Set<string>();
    let stopping = false; // a cluster still starting when the test bed stops is stopped once it is up
    stoppers.push(async () => {
      stopping = true;
      for (const c of extras.values()) await c.stop();
      extras.clear();
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
    // GET: how unkind AWS is; POST a partial update ({"enabled":true}, {"iamPropagationMs":[2000,6000]},
    // {"unassumableRoles":["x"]}, {"listSecretsLagMs":300000}, …); DELETE: the settings the test bed started with.
    frontDoor.control('/_testbed/unkind', unkindControl(unkind, unkindAtStart));
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
    // Account limits (secretsync doctor reads them, quotas.ts enforces them):
    // {lambdaConcurrency?, quotas?: {"events/L-244521F2": 5}}; DELETE restores those at start.
    frontDoor.control('/_testbed/account', async (req, body) => {
      if (req.method === 'DELETE') Object.assign(accountSettings, accountAtStart());
      else if (req.method === 'POST') {
        const patch = JSON.parse(body.toString()) as Partial<AccountSettings>;
        if (patch.lambdaConcurrency !== undefined)
          accountSettings.lambdaConcurrency = patch.lambdaConcurrency;
        Object.assign(accountSettings.quotas, patch.quotas ?? {});
      }
      return json(accountSettings);
    });
    // {mode, region?, clusterName?}: the authentication mode DescribeCluster reports (default: the primary).
    frontDoor.control('/_testbed/auth-mode', async (_r, body) => {
      const b = JSON.parse(body.toString()) as {
        mode: ClusterOverride['authenticationMode'];
        region?: string;
        clusterName?: string;
      };
      const o = clusterOverrides[clusterKey(b.region ?? region, b.clusterName ?? clusterName)];
      if (o) o.authenticationMode = b.mode;
      return json({ ok: true });
    });
    // {functionName, region?, state?, …}: a Lambda function state (lambda-states.ts); DELETE clears all.
    frontDoor.control('/_testbed/function-state', functionStatesControl(functionStates));
    // POST {region, clusterName?}: another cluster sharing moto and the front door (cluster.ts), answered
    // with its ClusterInfo; DELETE ?region=&clusterName= stops it and removes it from moto; GET lists them.
    frontDoor.control('/_testbed/clusters', async (req, body, q) => {
      if (req.method === 'GET') return json([...extras.values()].map((c) => c.info));
      const b = (req.method === 'POST' ? JSON.parse(body.toString() || '{}') : {}) as {
        region?: unknown;
        clusterName?: unknown;
      };
      const r = req.method === 'POST' ? b.region : q.get('region');
      const n = (req.method === 'POST' ? b.clusterName : q.get('clusterName')) ?? clusterName;
      // Both end up in a directory name: only what AWS allows in them.
      const validName = typeof n === 'string' && /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/.test(n);
      if (typeof r !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(r) || !validName)
        return { status: 400, json: { error: 'region (e.g. us-east-1) and an optional clusterName' } };
      const key = clusterKey(r, n);
      if (req.method === 'DELETE') {
        const c = extras.get(key);
        if (!c) return { status: 404, json: { error: `no extra cluster ${n} in ${r}` } };
        extras.delete(key);
        await c.remove();
        return json({ ok: true });
      }
      if (req.method !== 'POST') return { status: 405, json: { error: 'GET, POST or DELETE' } };
      if (key === clusterKey(region, clusterName) || extras.has(key) || starting.has(key))
        return { status: 409, json: { error: `cluster ${n} in ${r} exists already` } };
      starting.add(key);
      try {
        const sub = `cluster-${r}-${n}`;
        const c = await startCluster(clusterContext, {
          region: r,
          clusterName: n,
          dir: join(dir, sub),
          logsDir: join(logsDir, sub),
        });
        if (stopping) {
          await c.stop();
          return { status: 503, json: { error: 'the test bed is stopping' } };
        }
        extras.set(key, c);
        say(`cluster ${n} in ${r}: kube-apiserver ${c.info.apiUrl}`);
        return json(c.info);
      } catch (err) {
        return { status: 500, json: { error: (err as Error).message } };
      } finally {
        starting.delete(key);
      }
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
      pki: primary.pki,
      accessEntries,
      runner,
      functionStates,
      unkind,
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
