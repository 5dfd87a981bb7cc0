import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The controller's Prometheus metrics. Labels never carry secret material; names only. */
export interface ConditionView {
  metadata?: { namespace?: string; name?: string };
  status?: { conditions?: { type: string; status: string; reason: string }[] };
}

/**
 * `objects` is read at scrape time (the informer's cache), so the gauges are never stale; so is
 * `secondsSinceClusterAnswer` (cluster-state.ts).
 */
export function createMetrics(
  objects: () => ConditionView[] = () => [],
  secondsSinceClusterAnswer: () => number = () => 0,
) {
  const registry = new Registry();
  const reconciles = new Counter({
    name: 'secretsync_reconcile_total',
    help: 'Reconcile passes by result (success, error).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const reconcileSeconds = new Histogram({
    name: 'secretsync_reconcile_duration_seconds',
    help: 'Duration of a reconcile pass.',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const awsCalls = new Counter({
    name: 'secretsync_aws_calls_total',
    help: 'AWS API calls made by the controller, by service, operation and outcome.',
    labelNames: ['service', 'operation', 'outcome'] as const,
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'secretsync_workqueue_depth',
    help: 'SecretSyncs waiting to be reconciled.',
    registers: [registry],
  });
  const ready = new Gauge({
    name: 'secretsync_secretsyncs',
    help: 'SecretSyncs by condition and status, as last seen by the controller.',
    labelNames: ['condition', 'status'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const o of objects()) {
        for (const type of ['Ready', 'Synced']) {
          const c = o.status?.conditions?.find((x) => x.type === type);
          this.inc({ condition: type, status: c?.status ?? 'Unknown' });
        }
      }
    },
  });
  const syncFailures = new Gauge({
    name: 'secretsync_sync_failed',
    help: '1 for each SecretSync whose last sync failed (Synced=False), with the reason.',
    labelNames: ['namespace', 'name', 'reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const o of objects()) {
        const c = o.status?.conditions?.find((x) => x.type === 'Synced');
        if (c?.status === 'False') {
          this.set(
            { namespace: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '', reason: c.reason },
            1,
          );
        }
      }
    },
  });
  // Per SecretSync, so an alert can say which one has stayed not Ready (the count above cannot
  // tell one stuck SecretSync from a stream of new ones provisioning).
  const notReady = new Gauge({
    name: 'secretsync_not_ready',
    help: '1 for each SecretSync whose Ready is not True (False, Unknown, or not written yet: reason empty), with the reason.',
    labelNames: ['namespace', 'name', 'reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const o of objects()) {
        const c = o.status?.conditions?.find((x) => x.type === 'Ready');
        if (c?.status !== 'True') {
          this.set(
            { namespace: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '', reason: c?.reason ?? '' },
            1,
          );
        }
      }
    },
  });
  const leader = new Gauge({
    name: 'secretsync_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [registry],
  });
  const invocations = new Counter({
    name: 'secretsync_invocations_total',
    help: 'Function invocations made by the controller, by trigger (first-sync, force-sync, spec-changed, target-recreated, function-created, function-recovered, missed-change, resync).',
    labelNames: ['trigger'] as const,
    registers: [registry],
  });
  const clusterAnswerAge = new Gauge({
    name: 'secretsync_cluster_answer_age_seconds',
    help: 'Seconds since the last good eks:DescribeCluster answer (since start, before the first). Failed calls keep the last good endpoint and CA in use; SecretSyncs report ClusterUnavailable once failures have lasted 5 minutes.',
    registers: [registry],
    collect() {
      this.set(secondsSinceClusterAnswer());
    },
  });
  const inventorySeconds = new Histogram({
    name: 'secretsync_inventory_duration_seconds',
    help: 'Duration of an inventory pass (the list calls of every region and the comparison), once per --resync-period.',
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  });
  const inventoryQueued = new Counter({
    name: 'secretsync_inventory_queued_total',
    help: 'SecretSyncs the inventory pass queued, by why: differs (a full pass: something listed differs), deep (the deep check was due), resync (only the backstop invoke).',
    labelNames: ['why'] as const,
    registers: [registry],
  });
  const inventoryFailedLists = new Gauge({
    name: 'secretsync_inventory_failed_lists',
    help: 'List calls that failed in the last inventory pass (what they would show waits for the deep check); see the log line "inventory pass incomplete".',
    registers: [registry],
  });
  return {
    registry,
    inventorySeconds,
    inventoryQueued,
    inventoryFailedLists,
    reconciles,
    reconcileSeconds,
    awsCalls,
    queueDepth,
    ready,
    syncFailures,
    notReady,
    leader,
    invocations,
    clusterAnswerAge,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
