import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import {
  addFault,
  type CallRecord,
  clearFaults,
  controllerCalls,
  metric,
  namesFor,
  resetAwsCalls,
  startControllerWith,
  type TestController,
} from '../tests/controller-helpers.ts';
import { api, createAwsSecret, idle } from '../tests/controller-support.ts';
import { awsConfig, core, customObjects, freshNamespace } from '../tests/support.ts';

/**
 * AWS faults at scale (issue "Reliability under faults", item 3). 200 SecretSyncs applied at once
 * without faults, then 200 more with 20% of AWS calls throttled and 5% failing with 500/503 — the
 * controller's and the functions' alike. Every SecretSync must become Ready and every Secret get its
 * value, for at most twice the AWS calls of the fault-free run, without any SecretSync hot-looping.
 * Then a small run with a low IAM rate limit: the recorded IAM calls never exceed limit + burst in
 * any second. Counts, never timings: wall times and retry gaps are recorded (with the unluckiest
 * SecretSync's calls, one by one) in e2e/faults/.results/aws-faults.json, not asserted.
 */

// `make test-faults` runs the issue's 200; `make test` a smaller run of the same test (time budget).
const N = Number(process.env.SECRETSYNC_FAULT_SYNCS ?? 200);
/** Generous ceilings: waits end as soon as the state is reached; these only bound a broken run. */
const PHASE_CEILING_MS = 10 * 60_000;
const RESULTS = new URL('./.results/aws-faults.json', import.meta.url).pathname;

const results: Record<string, unknown> = {};
const UNLIMITED = ['--aws-rate-limits=iam=0,lambda=0,events=0,logs=0,eks=0,secretsmanager=0,tagging=0'];

/** Runs `fn` over `items`, at most `n` at once. */
async function pool<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const names = (count: number) => Array.from({ length: count }, (_, i) => `s${String(i).padStart(3, '0')}`);
const secretIdOf = (ns: string, name: string) => `awsfaults/${ns}/${name}`;
const expectedValue = (ns: string, name: string) => `${ns}-${name}`;

/** Creates the AWS secrets first (the test's own calls, signed with the controller's key too). */
async function createSecrets(ns: string, list: string[]): Promise<void> {
  await pool(list, 16, (n) =>
    createAwsSecret(secretIdOf(ns, n), JSON.stringify({ value: expectedValue(ns, n) })).then(() => undefined),
  );
}

async function applyAll(ns: string, list: string[]): Promise<void> {
  const custom = customObjects();
  await pool(list, 50, (n) =>
    custom.createNamespacedCustomObject({
      ...api,
      namespace: ns,
      body: {
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'SecretSync',
        metadata: { name: n },
        spec: { source: { secretId: secretIdOf(ns, n) }, target: { name: n }, deletionPolicy: 'Delete' },
      },
    }),
  );
}

async function listSecretSyncs(ns: string): Promise<SecretSync[]> {
  const out = (await customObjects().listNamespacedCustomObject({ ...api, namespace: ns })) as {
    items: SecretSync[];
  };
  return out.items;
}

/** Waits until every SecretSync is Ready and every target Secret holds its AWS value. */
async function waitAllSynced(ns: string, list: string[]): Promise<void> {
  const deadline = Date.now() + PHASE_CEILING_MS;
  let lastLog = 0;
  for (;;) {
    const syncs = await listSecretSyncs(ns);
    const ready = syncs.filter(
      (s) => s.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True',
    ).length;
    const secrets = (await core().listNamespacedSecret({ namespace: ns })).items;
    const synced = secrets.filter((s) => {
      const name = s.metadata?.name ?? '';
      const v = s.data?.value;
      return v !== undefined && Buffer.from(v, 'base64').toString() === expectedValue(ns, name);
    }).length;
    if (ready === list.length && synced === list.length) return;
    if (Date.now() - lastLog > 15_000) {
      lastLog = Date.now();
      console.log(`${ns}: ${ready}/${list.length} Ready, ${synced}/${list.length} Secrets synced`);
    }
    if (Date.now() > deadline) {
      const reasons = new Map<string, number>();
      for (const s of syncs) {
        const r = s.status?.conditions?.find((c) => c.type === 'Ready');
        const k = `${r?.status}/${r?.reason}`;
        reasons.set(k, (reasons.get(k) ?? 0) + 1);
      }
      throw new Error(
        `${ns}: ${ready} Ready, ${synced} synced of ${list.length}; Ready reasons: ${JSON.stringify([...reasons])}`,
      );
    }
    await sleep(1_000);
  }
}

/** Waits until the test bed is idle and the controller has made no AWS call for `quietMs`. */
async function quiesce(quietMs = 3_000): Promise<CallRecord[]> {
  await idle();
  let calls = await controllerCalls();
  for (;;) {
    await sleep(quietMs);
    const now = await controllerCalls();
    if (now.length === calls.length) return now;
    calls = now;
  }
}

async function deleteAll(ns: string, list: string[]): Promise<void> {
  const custom = customObjects();
  await pool(list, 50, (n) =>
    custom.deleteNamespacedCustomObject({ ...api, namespace: ns, name: n }).catch(() => undefined),
  );
  const deadline = Date.now() + PHASE_CEILING_MS;
  for (;;) {
    const left = (await listSecretSyncs(ns)).length;
    if (left === 0) return;
    if (Date.now() > deadline) throw new Error(`${ns}: ${left} SecretSyncs still not finalized`);
    await sleep(1_000);
  }
}

async function deleteSecrets(ns: string, list: string[]): Promise<void> {
  const sm = new SecretsManagerClient(awsConfig());
  await pool(list, 16, (n) =>
    sm
      .send(new DeleteSecretCommand({ SecretId: secretIdOf(ns, n), ForceDeleteWithoutRecovery: true }))
      .catch(() => undefined),
  );
}

/**
 * Which SecretSync a call was for: its resource (role, function, rule, log group name or ARN) or
 * path (EKS access entries are addressed by the role's ARN) contains the SecretSync's name stem;
 * DescribeSecret names the AWS secret. Undefined for per-controller calls (DescribeCluster) and for
 * the few whose name travels under a body key the front door does not record (DescribeLogGroups'
 * prefix, CreateAccessEntry, EventBridge ListTagsForResource): about 4 of a SecretSync's ~31 calls,
 * the same in both runs, so per-SecretSync counts are comparable but a little low.
 */
function attribute(ns: string, list: string[]): (c: CallRecord) => string | undefined {
  const byStem = list.map((n) => [namesFor(ns, n).stem, n] as const);
  const bySecretId = new Map(list.map((n) => [secretIdOf(ns, n), n]));
  return (c) => {
    if (c.resource && bySecretId.has(c.resource)) return bySecretId.get(c.resource);
    const where = `${c.resource ?? ''} ${decodeURIComponent(c.path)}`;
    for (const [stem, n] of byStem) if (where.includes(stem)) return n;
    return undefined;
  };
}

function perSecretSync(calls: CallRecord[], ns: string, list: string[]) {
  const owner = attribute(ns, list);
  const byName = new Map<string, CallRecord[]>(list.map((n) => [n, []]));
  const unattributed: Record<string, number> = {};
  for (const c of calls) {
    const n = owner(c);
    if (n === undefined) {
      const op = `${c.service}.${c.operation}`;
      unattributed[op] = (unattributed[op] ?? 0) + 1;
    } else byName.get(n)!.push(c);
  }
  // A pass that failed for certain: one call's 3 attempts (the SDK's) all faulted. The gap to the
  // SecretSync's next call is the queue's backoff (≥ 500 ms for a first failure, then doubling).
  const gapsAfterFailure: number[] = [];
  for (const [, cs] of byName) {
    for (let i = 2; i < cs.length - 1; i++) {
      const [a, b, c] = [cs[i - 2]!, cs[i - 1]!, cs[i]!];
      if (a.fault && b.fault && c.fault && a.operation === b.operation && b.operation === c.operation)
        gapsAfterFailure.push(cs[i + 1]!.time - c.time);
    }
  }
  const ranked = [...byName].sort((a, b) => a[1].length - b[1].length);
  const values = ranked.map(([, v]) => v.length);
  const [worstName, worstCalls] = ranked.at(-1) ?? ['', []];
  const t0 = worstCalls[0]?.time ?? 0;
  return {
    max: values.at(-1) ?? 0,
    median: values[Math.floor(values.length / 2)] ?? 0,
    mean: Number((values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)).toFixed(1)),
    unattributed,
    failedPassesSeen: gapsAfterFailure.length,
    retriedWithin500msOfAFailure: gapsAfterFailure.filter((g) => g < 500).length,
    medianRetryGapMs: gapsAfterFailure.sort((a, b) => a - b)[Math.floor(gapsAfterFailure.length / 2)] ?? 0,
    /** The SecretSync with the most calls, call by call: what a hot loop would look like. */
    worst: {
      name: worstName,
      calls: worstCalls.map(
        (c) =>
          `+${((c.time - t0) / 1000).toFixed(1)}s ${c.service}.${c.operation} ${c.status}${c.fault ? ` ${c.fault}` : ''}`,
      ),
    },
  };
}

/** The most calls any window [t, t + 1 s) starting at a call holds. */
function maxPerSecond(calls: CallRecord[]): number {
  const times = calls.map((c) => c.time).sort((a, b) => a - b);
  let max = 0;
  let j = 0;
  for (let i = 0; i < times.length; i++) {
    while (j < times.length && times[j]! < times[i]! + 1_000) j++;
    max = Math.max(max, j - i);
  }
  return max;
}

const byService = (calls: CallRecord[]) =>
  Object.fromEntries(
    [...new Set(calls.map((c) => c.service))]
      .sort()
      .map((s) => [s, calls.filter((c) => c.service === s).length]),
  );

describe('AWS faults: throttling and 5xx at scale', () => {
  let c: TestController | undefined;
  let free: string;
  let faulty: string;
  const list = names(N);
  const cleanup: [string, string[]][] = [];
  const started = Date.now();

  beforeAll(async () => {
    // Cold Lambda mode (the test bed's default), on purpose: every function here is invoked once,
    // so warm environments would save nothing and keep 400 idle processes (~60 MB each) alive.
    free = await freshNamespace('awsf-free');
    faulty = await freshNamespace('awsf-faulty');
    c = await startControllerWith({
      logLevel: 'warn',
      args: [
        '--tenancy=allow-all',
        `--namespaces=${free},${faulty}`,
        '--concurrency=16',
        // No drift-repair pass within a phase: both phases count the same work.
        '--resync-period=10m',
        // This part is about faults, not client-side limits (the last test covers those); the
        // defaults would make 200 first passes wait on IAM's 5/s for minutes.
        ...UNLIMITED,
      ],
    });
  });

  afterAll(async () => {
    await clearFaults().catch(() => undefined);
    await c?.stop();
    // A failed test may leave SecretSyncs behind: a controller for all the namespaces finalizes them.
    const left = [];
    for (const [ns] of cleanup) if ((await listSecretSyncs(ns)).length > 0) left.push(ns);
    if (left.length > 0) {
      const sweeper = await startControllerWith({
        logLevel: 'warn',
        args: ['--tenancy=allow-all', `--namespaces=${left.join(',')}`, '--concurrency=16', ...UNLIMITED],
      });
      for (const [ns, l] of cleanup) await deleteAll(ns, l).catch((e: unknown) => console.error(String(e)));
      await sweeper.stop();
    }
    for (const [ns, l] of cleanup) await deleteSecrets(ns, l);
    results.totalWallSeconds = Math.round((Date.now() - started) / 1000);
    mkdirSync(dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    // Printed without the worst SecretSyncs' call lists (the file has them).
    const brief = JSON.stringify(
      results,
      (k, v) => (k === 'calls' && Array.isArray(v) ? `${v.length} calls` : v),
      2,
    );
    console.log(`aws-faults results (${RESULTS}):\n${brief}`);
  });

  let freeCalls = 0;
  let freePerSync: ReturnType<typeof perSecretSync> | undefined;

  it(
    `fault-free: ${N} SecretSyncs applied at once all become Ready and sync`,
    async () => {
      await createSecrets(free, list);
      cleanup.push([free, list]);
      await resetAwsCalls();
      const t0 = Date.now();
      await applyAll(free, list);
      await waitAllSynced(free, list);
      const readyMs = Date.now() - t0;
      const calls = await quiesce();
      freeCalls = calls.length;
      freePerSync = perSecretSync(calls, free, list);
      results.faultFree = {
        secretSyncs: N,
        controllerAwsCalls: freeCalls,
        byService: byService(calls),
        perSecretSync: freePerSync,
        iamCallsMaxPerSecond: maxPerSecond(calls.filter((x) => x.service === 'iam')),
        allReadySeconds: Math.round(readyMs / 1000),
      };

      const t1 = Date.now();
      await deleteAll(free, list);
      (results.faultFree as Record<string, unknown>).deleteAllSeconds = Math.round((Date.now() - t1) / 1000);
    },
    2 * PHASE_CEILING_MS,
  );

  it(
    `20% throttled, 2.5% 500, 2.5% 503: ${N} more all become Ready and sync, for ≤ 2× the calls, none hot-looping`,
    async () => {
      expect(freeCalls, 'the fault-free run counted its calls').toBeGreaterThan(0);
      await createSecrets(faulty, list);
      cleanup.push([faulty, list]);
      const errorsBefore = metric(await c!.metricsText(), 'secretsync_reconcile_total', { result: 'error' });
      await resetAwsCalls();
      await addFault({ kind: 'throttle', rate: 0.2, seed: 1 });
      await addFault({ kind: '500', rate: 0.025, seed: 2 });
      await addFault({ kind: '503', rate: 0.025, seed: 3 });
      const t0 = Date.now();
      await applyAll(faulty, list);
      await waitAllSynced(faulty, list);
      const readyMs = Date.now() - t0;
      const calls = await quiesce();
      await clearFaults();
      const perSync = perSecretSync(calls, faulty, list);
      const errors =
        metric(await c!.metricsText(), 'secretsync_reconcile_total', { result: 'error' }) - errorsBefore;
      const ratio = calls.length / freeCalls;
      // The bound on one SecretSync's calls. About 24% of attempts fail, so a call takes ~1.3
      // attempts (the SDK makes at most 3) and ~1 pass in 5 fails somewhere (all 3 attempts of one
      // of its ~13 calls) and is redone after its backoff (1 s, 2 s, 4 s … jittered). The unluckiest
      // of 200 SecretSyncs may so redo 4-5 passes: ~4-6× what the most expensive one needed without
      // faults. 8× leaves room for that luck; a hot loop (a failing pass redone at once, every few
      // milliseconds) passes it within seconds.
      const perSyncBound = 8 * (freePerSync?.max ?? 0);
      const faultyResults = {
        secretSyncs: N,
        faults: 'throttle 20% (seed 1), 500 2.5% (seed 2), 503 2.5% (seed 3), every AWS call',
        controllerAwsCalls: calls.length,
        faultedControllerCalls: calls.filter((x) => x.fault).length,
        byService: byService(calls),
        ratioToFaultFree: Number(ratio.toFixed(3)),
        perSecretSync: perSync,
        perSecretSyncBound: perSyncBound,
        failedReconciles: errors,
        allReadySeconds: Math.round(readyMs / 1000),
      };
      results.faulty = faultyResults;
      console.log(
        JSON.stringify({ ...faultyResults, perSecretSync: { ...perSync, worst: perSync.worst.name } }),
      );
      expect(calls.filter((x) => x.fault).length, 'faults were injected').toBeGreaterThan(calls.length / 10);
      expect(ratio).toBeLessThanOrEqual(2);
      expect(perSync.max).toBeLessThanOrEqual(perSyncBound);

      const t1 = Date.now();
      await deleteAll(faulty, list);
      (results.faulty as Record<string, unknown>).deleteAllSeconds = Math.round((Date.now() - t1) / 1000);
    },
    2 * PHASE_CEILING_MS,
  );

  it(
    'a low IAM rate limit holds: no second sees more IAM calls than limit + burst',
    async () => {
      // A controller of its own with IAM limited to 3/s (burst 3); the other services keep their defaults.
      await c?.stop();
      c = undefined;
      const ns = await freshNamespace('awsf-rate');
      const few = names(8);
      await createSecrets(ns, few);
      cleanup.push([ns, few]);
      const limit = 3;
      const burst = 3;
      c = await startControllerWith({
        logLevel: 'warn',
        args: [
          '--tenancy=allow-all',
          `--namespaces=${ns}`,
          '--concurrency=16',
          '--resync-period=10m',
          `--aws-rate-limits=iam=${limit}`,
        ],
      });
      await resetAwsCalls();
      const t0 = Date.now();
      await applyAll(ns, few);
      await waitAllSynced(ns, few);
      const readyMs = Date.now() - t0;
      await deleteAll(ns, few);
      const iam = (await quiesce()).filter((x) => x.service === 'iam');
      const peak = maxPerSecond(iam);
      results.rateLimit = {
        secretSyncs: few.length,
        iamLimitPerSecond: limit,
        burst,
        iamCalls: iam.length,
        iamCallsMaxPerSecond: peak,
        allReadySeconds: Math.round(readyMs / 1000),
      };
      console.log(JSON.stringify(results.rateLimit));
      expect(iam.length, 'enough IAM calls to press on the limit').toBeGreaterThan(4 * (limit + burst));
      expect(peak).toBeLessThanOrEqual(limit + burst);
      // The limit was what held them back: 8 first passes at once ask for more than that.
      expect(peak).toBeGreaterThanOrEqual(limit);
    },
    PHASE_CEILING_MS,
  );
});
