// The inventory pass, once per --resync-period while leading: take the inventory (aws/inventory.ts),
// decide per SecretSync (drift.ts), queue those that need anything with what they need. Chained,
// never two at once; the first runs as soon as the informer has listed.

import type { Logger } from 'pino';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import { regionOf } from './aws/desired.ts';
import { type Inventory, takeInventory } from './aws/inventory.ts';
import type { ReconcileDeps } from './deps.ts';
import { deepCheckAt, type Intent, inventoryIntent, mergeIntents } from './drift.ts';
import type { PolicyReads } from './kube/policies.ts';
import { tenancyDenial } from './preconditions.ts';

export interface InventoryPassResult {
  inventory: Inventory;
  queued: Map<string, Intent>;
  /** Deep checks due but left to the next pass (at most `deepBudget` a pass). */
  deferred: number;
}

/**
 * One pass: the inventory of every region a SecretSync uses, then each one's intent. Deep checks are
 * capped at twice the even share per pass (N × period / deep period), most overdue first, so a
 * controller back from a long outage does not read everything at once.
 */
export async function inventoryPass(
  deps: ReconcileDeps,
  objects: readonly SecretSync[],
  opts: { resyncMs: number; deepMs: number },
): Promise<InventoryPassResult> {
  const now = (deps.now ?? Date.now)();
  const regions = new Set(objects.map((o) => regionOf(o, deps.settings.region)));
  const inventory = await takeInventory({ awsFor: deps.awsFor, settings: deps.settings, regions });
  const cluster = deps.cluster();
  const found: [string, Intent, SecretSync][] = [];
  // SecretSyncPolicies (and Namespace labels) once for the whole pass.
  const policyReads: PolicyReads = { labels: new Map() };
  for (const ss of objects) {
    const { intent, source } = inventoryIntent(ss, inventory, {
      settings: deps.settings,
      code: deps.code,
      cluster,
      now,
      deepMs: opts.deepMs,
    });
    let it = intent;
    // Consent, as the pass decides it (SecretSyncPolicies are read only when the tag does not allow).
    if (source && !source.deletedDate) {
      const denied = await tenancyDenial(deps, ss.metadata.namespace ?? '', source, policyReads).catch(
        () => undefined,
      );
      if (denied !== undefined)
        it = mergeIntents(it, { differs: ['consent withdrawn'], deep: false, resync: false });
    }
    if (it) found.push([`${ss.metadata.namespace}/${ss.metadata.name}`, it, ss]);
  }
  const deepBudget = Math.max(1, Math.ceil((2 * objects.length * opts.resyncMs) / opts.deepMs));
  const deepOnly = found
    .filter(([, it]) => it.deep && it.differs.length === 0)
    .sort(([, , a], [, , b]) => deepCheckAt(a, opts.deepMs) - deepCheckAt(b, opts.deepMs));
  const deferred = new Set(deepOnly.slice(deepBudget).map(([key]) => key));
  const queued = new Map<string, Intent>();
  for (const [key, it] of found) {
    if (!deferred.has(key)) queued.set(key, it);
    else if (it.resync) queued.set(key, { ...it, deep: false });
  }
  return { inventory, queued, deferred: deferred.size };
}

/** Runs `inventoryPass` every `resyncMs`, handing each result to `onResult`. */
export function startInventoryLoop(opts: {
  deps: ReconcileDeps;
  objects: () => SecretSync[];
  ready: () => boolean;
  resyncMs: number;
  deepMs: number;
  log: Logger;
  /** `queue` false: record what the pass asks, queue nothing (a test drives the passes). */
  onResult: (r: InventoryPassResult, queue: boolean) => void;
}): { stop(): void; runNow(objects?: SecretSync[]): Promise<InventoryPassResult> } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const once = async (objects?: SecretSync[]): Promise<InventoryPassResult> => {
    const started = Date.now();
    const r = await inventoryPass(opts.deps, objects ?? opts.objects(), opts);
    if (stopped) return r;
    opts.onResult(r, objects === undefined);
    const intents = [...r.queued.values()];
    const failed = r.inventory.failed;
    opts.log[failed.length > 0 ? 'warn' : 'info'](
      {
        secretSyncs: opts.objects().length,
        awsCalls: r.inventory.calls,
        seconds: (Date.now() - started) / 1000,
        differ: intents.filter((i) => i.differs.length > 0).length,
        deepChecks: intents.filter((i) => i.deep).length,
        deepChecksDeferred: r.deferred,
        resyncs: intents.filter((i) => i.resync).length,
        ...(failed.length > 0 ? { failedLists: failed } : {}),
      },
      failed.length > 0
        ? 'inventory pass incomplete: what the failed lists would show waits for each deep check'
        : 'inventory pass',
    );
    return r;
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(run, ms);
    timer.unref();
  };
  const run = async () => {
    // Until the informer has listed, the SecretSyncs are not all known yet.
    if (!opts.ready()) return schedule(500);
    await once(undefined).catch((err: unknown) =>
      opts.log.warn({ err: String(err) }, 'inventory pass failed'),
    );
    schedule(opts.resyncMs);
  };
  schedule(0);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    runNow: once,
  };
}
