import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The controller's Prometheus metrics. Labels never carry secret material; names only. */
export function createMetrics() {
  const registry = new Registry();
  const reconciles = new Counter({
    name: 'secretsync_reconcile_total',
    help: 'Reconcile passes by result (success, requeue, error, terminal).',
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
  });
  const syncFailures = new Gauge({
    name: 'secretsync_sync_failed',
    help: '1 for each SecretSync whose last sync failed (Synced=False), by reason.',
    labelNames: ['namespace', 'name', 'reason'] as const,
    registers: [registry],
  });
  const leader = new Gauge({
    name: 'secretsync_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [registry],
  });
  const invocations = new Counter({
    name: 'secretsync_invocations_total',
    help: 'Function invocations made by the controller, by trigger (first-sync, force-sync, resync).',
    labelNames: ['trigger'] as const,
    registers: [registry],
  });
  return {
    registry,
    reconciles,
    reconcileSeconds,
    awsCalls,
    queueDepth,
    ready,
    syncFailures,
    leader,
    invocations,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
