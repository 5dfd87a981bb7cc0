import {
  type ConfigurationOptions,
  CoordinationV1Api,
  type KubeConfig,
  Observable,
  type V1Lease,
  V1MicroTime,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

/**
 * Leader election on a coordination.k8s.io Lease, with client-go's safeguards:
 * - expiry is judged from when this replica last *saw the Lease record change* (holder, renew time,
 *   transitions), on its own monotonic clock, never by comparing the holder's renewTime with the local
 *   clock — clocks of two nodes may be skewed by any amount;
 * - every Lease request has a timeout that ends before the renew deadline, so a hung request cannot
 *   keep a leader believing it leads while another replica takes over;
 * - a leader that cannot renew within the renew deadline, or sees another holder, steps down
 *   (onStoppedLeading: the controller then refuses every write of the passes it had running);
 * - stop() is idempotent (every caller gets the same promise) and releases the Lease.
 * Every write carries the resourceVersion it read, so two replicas cannot both win one round.
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
  /**
   * This replica's clock (tests skew it): `wall` only stamps renewTime/acquireTime for people and other
   * tools; `monotonic` measures every duration. Neither is ever compared with another replica's.
   */
  clock?: { wall: () => number; monotonic: () => number };
  /** Upper bound of one Lease request (default: half the renew deadline). */
  requestTimeoutMs?: number;
}

export interface LeaderElector {
  isLeader(): boolean;
  /**
   * Stops campaigning; a leader releases the Lease so a standby takes over at once. Idempotent.
   * `release: false` leaves the Lease as it is, as a crashed process would (tests).
   */
  stop(opts?: { release?: boolean }): Promise<void>;
}

const statusOf = (err: unknown) => (err as { code?: number }).code;

/** A request option that aborts the request after `ms`. */
function timeout(ms: number): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(AbortSignal.timeout(Math.max(1, Math.round(ms))));
          return new Observable(Promise.resolve(ctx));
        },
        post: (res) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

export function startLeaderElection(opts: LeaderOptions): LeaderElector {
  const api = opts.kc.makeApiClient(CoordinationV1Api);
  const clock = opts.clock?.monotonic ?? (() => performance.now());
  const wall = opts.clock?.wall ?? Date.now;
  const requestTimeoutMs = opts.requestTimeoutMs ?? opts.renewDeadlineMs / 2;
  let leader = false;
  let stopped = false;
  let lastRenew = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopping: Promise<void> | undefined;
  // The Lease record as last seen, and when (on our clock) it was first seen like that.
  let observed: { record: string; at: number } | undefined;

  // Lease times are MicroTime: a plain Date serializes with milliseconds, which the API server
  // refuses (400); client-node's V1MicroTime serializes with the six digits it wants. They are for
  // humans and other tools; this elector never reads them as a clock.
  const micro = () => new V1MicroTime(wall());
  // A leader's requests must end before its renew deadline does.
  const budget = () =>
    leader ? Math.min(requestTimeoutMs, lastRenew + opts.renewDeadlineMs - clock()) : requestTimeoutMs;

  async function tryAcquireOrRenew(): Promise<boolean> {
    const now = clock();
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease(
        { name: opts.name, namespace: opts.namespace },
        timeout(budget()),
      );
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const spec = {
      holderIdentity: opts.identity,
      leaseDurationSeconds: Math.ceil(opts.leaseDurationMs / 1000),
      renewTime: micro(),
    };
    if (!lease) {
      await api.createNamespacedLease(
        {
          namespace: opts.namespace,
          body: {
            metadata: { name: opts.name, namespace: opts.namespace },
            spec: { ...spec, acquireTime: micro(), leaseTransitions: 0 },
          },
        },
        timeout(budget()),
      );
      return true;
    }
    const s = lease.spec ?? {};
    const record = JSON.stringify([
      s.holderIdentity,
      s.renewTime,
      s.leaseTransitions,
      s.leaseDurationSeconds,
    ]);
    if (observed?.record !== record) observed = { record, at: now };
    const holder = s.holderIdentity;
    const duration = (s.leaseDurationSeconds ?? 0) * 1000;
    if (holder && holder !== opts.identity && observed.at + duration > now) return false;
    const takeover = holder !== opts.identity;
    await api.replaceNamespacedLease(
      {
        name: opts.name,
        namespace: opts.namespace,
        body: {
          ...lease,
          spec: {
            ...s,
            ...spec,
            ...(takeover ? { acquireTime: micro(), leaseTransitions: (s.leaseTransitions ?? 0) + 1 } : {}),
          },
        },
      },
      timeout(budget()),
    );
    return true;
  }

  function stepDown(why: string) {
    if (!leader) return;
    leader = false;
    opts.log.warn({ lease: `${opts.namespace}/${opts.name}` }, `lost leadership (${why})`);
    opts.onStoppedLeading();
  }

  async function tick() {
    if (stopped) return;
    try {
      const ok = await tryAcquireOrRenew();
      if (stopped) return;
      if (ok) {
        lastRenew = clock();
        if (!leader) {
          leader = true;
          opts.log.info({ lease: `${opts.namespace}/${opts.name}` }, 'became leader');
          opts.onStartedLeading();
        }
      } else stepDown('another replica holds the Lease');
    } catch (err) {
      if (stopped) return;
      opts.log.warn({ err: String(err) }, 'lease renewal failed');
    }
    if (leader && clock() - lastRenew >= opts.renewDeadlineMs) stepDown('could not renew in time');
    if (!stopped) timer = setTimeout(next, opts.retryPeriodMs * (leader ? 1 : 1 + Math.random() * 0.2));
  }
  const next = () => {
    running = tick();
  };
  next();

  async function release() {
    try {
      const lease = await api.readNamespacedLease(
        { name: opts.name, namespace: opts.namespace },
        timeout(requestTimeoutMs),
      );
      if (lease.spec?.holderIdentity === opts.identity) {
        await api.replaceNamespacedLease(
          {
            name: opts.name,
            namespace: opts.namespace,
            body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
          },
          timeout(requestTimeoutMs),
        );
      }
    } catch (err) {
      opts.log.warn({ err: String(err) }, 'could not release the lease');
    }
  }

  return {
    isLeader: () => leader,
    stop(o = {}) {
      stopping ??= (async () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        // A round in flight may still win the Lease: wait for it (its requests are bounded), then
        // release whatever this identity holds.
        await running;
        leader = false;
        if (o.release !== false) await release();
      })();
      return stopping;
    },
  };
}
