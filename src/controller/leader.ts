import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/**
 * Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: the
 * holder renews every retry period; a candidate takes the lease over once it has not been renewed
 * for leaseDuration. Every write carries the resourceVersion it read, so two replicas cannot both win.
 */
export interface LeaderOptions {
  kc: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

export interface LeaderElector {
  isLeader(): boolean;
  /** Stops campaigning; a leader releases the lease so a standby takes over at once. */
  stop(): Promise<void>;
}

const statusOf = (err: unknown) => (err as { code?: number }).code;

export function startLeaderElection(opts: LeaderOptions): LeaderElector {
  const api = opts.kc.makeApiClient(CoordinationV1Api);
  let leader = false;
  let stopped = false;
  let lastRenew = 0;
  let timer: NodeJS.Timeout | undefined;

  // Lease times are MicroTime: a plain Date serializes with milliseconds, which the API server
  // refuses (400); client-node's V1MicroTime serializes with the six digits it wants.
  const micro = (ms: number) => new V1MicroTime(ms);

  async function tryAcquireOrRenew(): Promise<boolean> {
    const now = Date.now();
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name: opts.name, namespace: opts.namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const spec = {
      holderIdentity: opts.identity,
      leaseDurationSeconds: Math.ceil(opts.leaseDurationMs / 1000),
      renewTime: micro(now),
    };
    if (!lease) {
      await api.createNamespacedLease({
        namespace: opts.namespace,
        body: {
          metadata: { name: opts.name, namespace: opts.namespace },
          spec: { ...spec, acquireTime: micro(now), leaseTransitions: 0 },
        },
      });
      return true;
    }
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (holder && holder !== opts.identity && renewed + duration > now) return false;
    const takeover = holder !== opts.identity;
    await api.replaceNamespacedLease({
      name: opts.name,
      namespace: opts.namespace,
      body: {
        ...lease,
        spec: {
          ...lease.spec,
          ...spec,
          ...(takeover
            ? { acquireTime: micro(now), leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 }
            : {}),
        },
      },
    });
    return true;
  }

  async function tick() {
    if (stopped) return;
    try {
      const ok = await tryAcquireOrRenew();
      if (ok) lastRenew = Date.now();
      else if (leader) {
        // Someone else holds a live lease: we were partitioned long enough to be replaced.
        lastRenew = 0;
      }
      if (ok && !leader) {
        leader = true;
        opts.log.info({ lease: `${opts.namespace}/${opts.name}` }, 'became leader');
        opts.onStartedLeading();
      }
    } catch (err) {
      opts.log.warn({ err: String(err) }, 'lease renewal failed');
    }
    if (leader && Date.now() - lastRenew > opts.renewDeadlineMs) {
      leader = false;
      opts.log.warn('lost leadership (could not renew in time)');
      opts.onStoppedLeading();
    }
    if (!stopped) timer = setTimeout(tick, opts.retryPeriodMs * (leader ? 1 : 1 + Math.random() * 0.2));
  }
  void tick();

  return {
    isLeader: () => leader,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (!leader) return;
      leader = false;
      try {
        const lease = await api.readNamespacedLease({ name: opts.name, namespace: opts.namespace });
        if (lease.spec?.holderIdentity === opts.identity) {
          await api.replaceNamespacedLease({
            name: opts.name,
            namespace: opts.namespace,
            body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
          });
        }
      } catch (err) {
        opts.log.warn({ err: String(err) }, 'could not release the lease');
      }
    },
  };
}
