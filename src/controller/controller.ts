import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { DescribeClusterCommand } from '@aws-sdk/client-eks';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import { type AwsClients, createAwsClients } from './aws/clients.ts';
import { clusterArnOf, functionCodeOf } from './aws/desired.ts';
import type { Inventory } from './aws/inventory.ts';
import { formatRateLimits, RateLimiters } from './aws/rate-limit.ts';
import { CLUSTER_UNAVAILABLE_AFTER_MS, ClusterWatch } from './cluster-state.ts';
import { type ControllerConfig, settingsOf } from './config.ts';
import type { ReconcileDeps } from './deps.ts';
import { type Intent, mergeIntents } from './drift.ts';
import { Fence, fencedKubeApi } from './fence.ts';
import { type RunningInformer, startSecretSyncInformer } from './informer.ts';
import { type InventoryPassResult, startInventoryLoop } from './inventory-pass.ts';
import { EventRecorder } from './kube/events.ts';
import { type LeaderElector, startLeaderElection } from './leader.ts';
import { type ConditionView, createMetrics } from './metrics.ts';
import { reconcile } from './reconcile.ts';
import { WorkQueue } from './workqueue.ts';

/**
 * The controller process: checks the cluster, elects a leader, and — while leading — watches
 * SecretSyncs and reconciles them through a de-duplicating, rate-limited work queue.
 */
export interface RunningController {
  /** For tests: reconcile a key now, bypassing the queue (with what the inventory asked of it, if anything). */
  reconcileNow(key: string): ReturnType<typeof reconcile>;
  /**
   * For tests: an inventory pass now (while leading). Over `objects` instead of the informer's: then
   * what it asks is left for reconcileNow, not queued.
   */
  inventoryNow(objects?: SecretSync[]): Promise<InventoryPassResult>;
  metricsText(): Promise<string>;
  stop(): Promise<void>;
}

/** Counts every AWS call by service, operation and outcome (a middleware on each client). */
function instrument(clients: AwsClients, metrics: ReturnType<typeof createMetrics>): AwsClients {
  for (const [service, client] of Object.entries(clients) as [string, AwsClients[keyof AwsClients]][]) {
    // The clients' middleware stacks differ only in their input/output types; count generically.
    (client.middlewareStack as { add: (mw: unknown, opts: unknown) => void }).add(
      (next: (a: unknown) => Promise<unknown>, ctx: { commandName?: string }) => async (args: unknown) => {
        try {
          const out = await next(args);
          metrics.awsCalls.inc({ service, operation: ctx.commandName ?? '?', outcome: 'ok' });
          return out;
        } catch (err) {
          metrics.awsCalls.inc({
            service,
            operation: ctx.commandName ?? '?',
            outcome: (err as Error).name ?? 'error',
          });
          throw err;
        }
      },
      { step: 'initialize', name: 'secretsyncMetrics' },
    );
  }
  return clients;
}

/** While DescribeCluster fails it is asked again this often (or every --cluster-check-period, if shorter). */
const CLUSTER_RETRY_MS = 30_000;
/** A DescribeCluster that has not answered by then counts as failed (the next check is chained to it). */
const CLUSTER_CHECK_TIMEOUT_MS = 30_000;

export async function startController(opts: {
  config: ControllerConfig;
  kc: KubeConfig;
  log: Logger;
  /** For tests: how long DescribeCluster may fail before ClusterUnavailable (CLUSTER_UNAVAILABLE_AFTER_MS). */
  clusterUnavailableAfterMs?: number;
}): Promise<RunningController> {
  const { config, kc, log } = opts;
  let informer: RunningInformer | undefined;
  const clusterWatch = new ClusterWatch({
    unavailableAfterMs: opts.clusterUnavailableAfterMs ?? CLUSTER_UNAVAILABLE_AFTER_MS,
  });
  const metrics = createMetrics(
    () => (informer?.objects() ?? []) as ConditionView[],
    () => clusterWatch.secondsSinceGood(),
  );
  const endpoint = process.env.AWS_ENDPOINT_URL;
  const clientsByRegion = new Map<string, AwsClients>();
  // One set of buckets for the process: regional services per region, IAM for the account.
  const limiters = new RateLimiters(config.awsRateLimits);
  // The cluster's region: DescribeCluster and access entries, whatever region a secret is in.
  // Writes of a pass go out only while its leadership term lasts (fence.ts).
  const fence = new Fence((operation) =>
    log.warn({ operation }, 'write not sent: its pass belongs to a leadership term that has ended'),
  );
  const home = instrument(
    createAwsClients({ region: config.clusterRegion, ...(endpoint ? { endpoint } : {}), limiters, fence }),
    metrics,
  );
  clientsByRegion.set(config.clusterRegion, home);
  const awsFor = (region: string): AwsClients => {
    let c = clientsByRegion.get(region);
    if (!c) {
      c = {
        ...instrument(
          createAwsClients({ region, ...(endpoint ? { endpoint } : {}), limiters, fence }),
          metrics,
        ),
        eks: home.eks,
      };
      clientsByRegion.set(region, c);
    }
    return c;
  };

  const sts = new STSClient({ region: config.region, ...(endpoint ? { endpoint } : {}) });
  const me = await sts.send(new GetCallerIdentityCommand({}));
  const accountId = me.Account ?? '';
  const partition = me.Arn?.split(':')[1] ?? 'aws';
  log.info(
    {
      account: accountId,
      identity: me.Arn,
      cluster: config.clusterName,
      clusterRegion: config.clusterRegion,
      region: config.region,
      awsRateLimits: formatRateLimits(config.awsRateLimits),
    },
    'starting',
  );

  const code = functionCodeOf(readFileSync(config.lambda.zipPath));
  const settings = settingsOf(config, { accountId, partition });

  /** One DescribeCluster; true when it answered. Never throws. */
  const checkCluster = async (): Promise<boolean> => {
    try {
      const out = await home.eks.send(new DescribeClusterCommand({ name: config.clusterName }), {
        abortSignal: AbortSignal.timeout(CLUSTER_CHECK_TIMEOUT_MS),
      });
      const c = out.cluster;
      // Our identity is computed from the settings (teardown needs it even while DescribeCluster
      // fails); say so when EKS disagrees, which means --cluster-region or the account is wrong.
      if (c?.arn && c.arn !== clusterArnOf(settings))
        log.error(
          { arn: c.arn, expected: clusterArnOf(settings) },
          'DescribeCluster names another cluster ARN',
        );
      const failedForMs = clusterWatch.succeeded({
        ...(c?.endpoint ? { endpoint: c.endpoint } : {}),
        ...(c?.certificateAuthority?.data ? { certificateAuthorityData: c.certificateAuthority.data } : {}),
        authenticationMode: c?.accessConfig?.authenticationMode ?? 'CONFIG_MAP',
      });
      if (failedForMs > 0)
        log.info({ failedForSeconds: Math.round(failedForMs / 1000) }, 'DescribeCluster answers again');
      return true;
    } catch (err) {
      const message = (err as Error).message;
      const { unavailable, failingSince } = clusterWatch.failed(message);
      if (unavailable)
        log.error(
          { err: message, failingSince: failingSince.toISOString() },
          'DescribeCluster failed; SecretSyncs report ClusterUnavailable',
        );
      else
        log.warn(
          { err: message, failingSince: failingSince.toISOString() },
          'DescribeCluster failed; keeping the last good endpoint, CA and authentication mode',
        );
      return false;
    }
  };
  const firstCheckOk = await checkCluster();
  const mode = clusterWatch.state().authenticationMode;
  if (mode && !['API', 'API_AND_CONFIG_MAP'].includes(mode)) {
    log.error({ mode }, 'the cluster does not use access entries; every SecretSync will report it');
  }

  // The last inventory, and what it asked of each SecretSync until its pass takes it (drift.ts).
  let inventory: Inventory | undefined;
  const intents = new Map<string, Intent>();
  const takeIntent = (key: string) => {
    const it = intents.get(key);
    intents.delete(key);
    return it;
  };
  const core = fencedKubeApi(kc.makeApiClient(CoreV1Api), fence);
  const deps: ReconcileDeps = {
    kube: {
      custom: fencedKubeApi(kc.makeApiClient(CustomObjectsApi), fence),
      core,
      rbac: fencedKubeApi(kc.makeApiClient(RbacAuthorizationV1Api), fence),
    },
    events: new EventRecorder(core, config.identity),
    awsFor,
    settings,
    code,
    cluster: () => clusterWatch.state(),
    tenancy: config.tenancy,
    log,
    metrics,
    clusterRecheckMs: config.clusterCheckMs,
    targetedBy: (namespace, secretName, except) =>
      (informer?.objects() ?? [])
        .map((o) => o as SecretSync)
        .filter(
          (o) =>
            o.metadata.namespace === namespace &&
            o.metadata.name !== except &&
            !o.metadata.deletionTimestamp &&
            (o.spec?.target?.name ?? o.metadata.name) === secretName,
        )
        .map((o) => o.metadata.name)
        .sort(),
    inventory: () => inventory,
  };

  const newQueue = () => {
    const q = new WorkQueue({ concurrency: config.concurrency });
    q.onError = (key, err, delayMs) => {
      const [namespace, name] = key.split('/');
      log.warn(
        { namespace, name, err: (err as Error).message, retryInMs: delayMs },
        'reconcile failed; backing off',
      );
    };
    q.onProcessed = (_key, ms, ok) => {
      metrics.reconciles.inc({ result: ok ? 'success' : 'error' });
      metrics.reconcileSeconds.observe(ms / 1000);
      metrics.queueDepth.set(q.depth);
    };
    return q;
  };
  let queue = newQueue();
  // Resolves when the queue of the last leadership term has drained.
  let drained: Promise<void> = Promise.resolve();
  // Chained, not an interval: never two checks at once. While failing, sooner: recovery is seen
  // quickly, and the unavailability window is measured by several answers, not one or two.
  let clusterTimer: NodeJS.Timeout | undefined;
  let inventoryLoop: ReturnType<typeof startInventoryLoop> | undefined;
  let stopping = false;
  const scheduleClusterCheck = (ok: boolean) => {
    if (stopping) return;
    const ms = ok ? config.clusterCheckMs : Math.min(config.clusterCheckMs, CLUSTER_RETRY_MS);
    clusterTimer = setTimeout(() => void checkCluster().then(scheduleClusterCheck), ms);
    clusterTimer.unref();
  };
  scheduleClusterCheck(firstCheckOk);

  const startWork = () => {
    metrics.leader.set(1);
    // A queue shut down when leadership was lost cannot restart: each term gets a fresh one, started
    // once the last term's in-flight passes are done (never two passes of one key at once).
    const q = newQueue();
    queue = q;
    const term = fence.begin();
    void drained.then(() => q.start((key) => fence.run(term, () => reconcile(deps, key, takeIntent(key)))));
    const watching = startSecretSyncInformer({
      kc,
      namespaces: config.namespaces,
      onKey: (k, priority) => q.add(k, priority),
      log,
    });
    informer = watching;
    inventoryLoop = startInventoryLoop({
      deps,
      objects: () => watching.objects() as SecretSync[],
      ready: () => watching.synced(),
      resyncMs: config.resyncMs,
      deepMs: config.deepResyncMs,
      log,
      onResult: (r, queue) => {
        inventory = r.inventory;
        metrics.inventoryFailedLists.set(r.inventory.failed.length);
        metrics.inventorySeconds.observe((Date.now() - r.inventory.takenAt) / 1000);
        for (const [key, it] of r.queued) {
          intents.set(key, mergeIntents(intents.get(key), it));
          metrics.inventoryQueued.inc({
            why: it.differs.length > 0 ? 'differs' : it.deep ? 'deep' : 'resync',
          });
          if (queue) q.add(key, 'low');
        }
      },
    });
  };
  let leader: LeaderElector | undefined;
  if (config.leaderElect) {
    leader = startLeaderElection({
      kc,
      namespace: config.leaseNamespace,
      name: config.leaseName,
      identity: config.identity,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      log,
      onStartedLeading: startWork,
      onStoppedLeading: () => {
        // Another replica owns the work now; stop rather than risk two writers: from this moment the
        // passes still running send no more writes (fence.ts), and no new pass starts.
        fence.end();
        metrics.leader.set(0);
        log.error('lost leadership; stopping work');
        inventoryLoop?.stop();
        intents.clear();
        void informer?.stop();
        informer = undefined;
        drained = queue.shutdown();
      },
    });
  } else startWork();

  let ready = false;
  const servers: Server[] = [];
  if (config.metricsPort > 0) {
    const s = createServer(async (req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(await metrics.registry.metrics());
      } else {
        res.writeHead(404).end();
      }
    });
    s.listen(config.metricsPort);
    servers.push(s);
  }
  if (config.healthPort > 0) {
    const s = createServer((req, res) => {
      // Ready: started and — while this replica does the work — the informer has listed. A standby
      // replica is ready too (it serves by waiting). Never AWS: a failing DescribeCluster is each
      // SecretSync's ClusterUnavailable, and an unready pair of replicas would only block node drains.
      const working = leader ? leader.isLeader() : true;
      const isReady = ready && (!working || (informer?.synced() ?? false));
      const ok = req.url === '/healthz' || (req.url === '/readyz' && isReady);
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'not ready');
    });
    s.listen(config.healthPort);
    servers.push(s);
  }
  ready = true;

  // Idempotent: a second stop() (SIGTERM twice, a test's cleanup) gets the first one's promise.
  let stopped: Promise<void> | undefined;
  return {
    reconcileNow: (key) => reconcile(deps, key, takeIntent(key)),
    inventoryNow: (objects) => {
      if (!inventoryLoop) throw new Error('not leading: no inventory pass');
      return inventoryLoop.runNow(objects);
    },
    metricsText: () => metrics.registry.metrics(),
    stop() {
      stopped ??= (async () => {
        ready = false;
        stopping = true;
        clearTimeout(clusterTimer);
        inventoryLoop?.stop();
        await informer?.stop();
        await queue.shutdown();
        await drained;
        // Releases the Lease, so a standby takes over at once.
        await leader?.stop();
        for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
        log.info('stopped');
      })();
      return stopped;
    },
  };
}
