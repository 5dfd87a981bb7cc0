import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import pino from 'pino';
import { RAISED_QUOTAS, startTestbed } from '../e2e/testbed/index.ts';
import { loadControllerConfig } from '../src/controller/config.ts';
import { startController } from '../src/controller/controller.ts';
import { capacityTableRow, runCapacity, runScale, type ScaleResult } from './scale.ts';

/**
 * `make bench`: figures for the sync function on the test bed, written to bench/results.json and
 * summarised in the README between the bench markers. Medians over repeated runs on this machine;
 * absolute times vary between machines.
 */
const root = new URL('..', import.meta.url).pathname;
const ZIP = `${root}dist/lambda/secretsync-lambda.zip`;
const BUNDLE = `${root}dist/lambda/index.mjs`;
const COLD_SAMPLES = Number(process.env.BENCH_COLD ?? 50);
const WARM_SAMPLES = Number(process.env.BENCH_WARM ?? 50);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
};
const summary = (xs: number[]) => ({ n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: pct(xs, 100) });

// 1. Footprint: zip, unzipped, import time in a fresh process (module evaluation only).
const importMs: number[] = [];
for (let i = 0; i < 10; i++) {
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const t=performance.now();await import(${JSON.stringify(BUNDLE)});console.log(performance.now()-t)`,
    ],
    { env: { PATH: process.env.PATH, AWS_REGION: 'eu-west-1' }, encoding: 'utf8' },
  );
  importMs.push(Number(out.trim()));
}

// 2. Sync latency through the test bed: PutSecretValue returns → the Secret holds the new value.
const bed = await startTestbed({ quiet: true, quotas: RAISED_QUOTAS });
const { info } = bed;
process.env.AWS_ENDPOINT_URL = info.aws.url;
process.env.AWS_ACCESS_KEY_ID = info.aws.credentials.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = info.aws.credentials.secretAccessKey;
const kc = new KubeConfig();
kc.loadFromFile(info.kubeconfigPath);
const controller = await startController({
  config: loadControllerConfig(
    [
      `--cluster-name=${info.clusterName}`,
      `--region=${info.aws.region}`,
      `--lambda-zip=${ZIP}`,
      '--leader-elect=false',
      '--metrics-port=0',
      '--health-port=0',
      '--tenancy=allow-all',
    ],
    {},
  ),
  kc,
  log: pino({ level: 'error' }),
});

const results: Record<string, unknown> = {};
try {
  const sm = new SecretsManagerClient({
    endpoint: info.aws.url,
    region: info.aws.region,
    credentials: info.aws.credentials,
  });
  const { ARN } = await sm.send(
    new CreateSecretCommand({ Name: 'bench/db', SecretString: JSON.stringify({ password: 'v0' }) }),
  );
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'bench' } } });
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'secretsync.io',
    version: 'v1alpha1',
    plural: 'secretsyncs',
    namespace: 'bench',
    body: {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name: 'db' },
      spec: { source: { secretId: 'bench/db' } },
    },
  });

  // Watch the target Secret; resolve waiters when its password changes.
  let current = '';
  const waiters = new Map<string, () => void>();
  await new Watch(kc).watch(
    '/api/v1/namespaces/bench/secrets',
    { fieldSelector: 'metadata.name=db' },
    (_type: string, obj: { data?: Record<string, string> }) => {
      current = Buffer.from(obj.data?.password ?? '', 'base64').toString();
      waiters.get(current)?.();
    },
    () => {},
  );
  const until = (value: string, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      if (current === value) return resolve();
      const t = setTimeout(() => reject(new Error(`timeout waiting for ${value}`)), timeoutMs);
      waiters.set(value, () => {
        clearTimeout(t);
        waiters.delete(value);
        resolve();
      });
    });
  await until('v0', 60_000);

  let n = 0;
  async function sample(): Promise<number> {
    const value = `v${++n}`;
    const reached = until(value);
    await sm.send(
      new PutSecretValueCommand({ SecretId: ARN, SecretString: JSON.stringify({ password: value }) }),
    );
    const t0 = performance.now();
    await reached;
    const ms = performance.now() - t0;
    await fetch(`${info.aws.url}/_testbed/idle`);
    return ms;
  }
  const fn = (await bed.runner.asyncInvocations())[0]?.functionName ?? '';
  const valueReads = () => bed.frontDoor.calls().filter((c) => c.operation === 'GetSecretValue').length;
  await sample(); // the event matcher's first use starts its Python process: not part of a sync
  const cold: number[] = [];
  for (let i = 0; i < COLD_SAMPLES; i++) cold.push(await sample());
  await fetch(`${info.aws.url}/_testbed/warm`, { method: 'POST', body: JSON.stringify({ warm: true }) });
  await sample(); // starts the warm environment
  const warm: number[] = [];
  const readsBefore = valueReads();
  for (let i = 0; i < WARM_SAMPLES; i++) warm.push(await sample());
  const valueReadsPerChange = (valueReads() - readsBefore) / WARM_SAMPLES;
  const custom = kc.makeApiClient(CustomObjectsApi);
  const ssRef = {
    group: 'secretsync.io',
    version: 'v1alpha1',
    plural: 'secretsyncs',
    namespace: 'bench',
    name: 'db',
  };
  const syncLines = () => bed.runner.logsFor(fn).filter((l) => l.text.includes('"message":"sync"')).length;
  /** Runs `start`, waits for the function's next sync line and for the test bed to be idle; the value reads meanwhile. */
  async function readsOfOneRun(start: () => Promise<unknown>): Promise<number> {
    const reads = valueReads();
    const runs = syncLines();
    await start();
    for (let i = 0; i < 300 && syncLines() === runs; i++) await new Promise((r) => setTimeout(r, 100));
    if (syncLines() === runs) throw new Error('the function did not run');
    await fetch(`${info.aws.url}/_testbed/idle`);
    return valueReads() - reads;
  }
  // A force-sync with nothing changed: a user asked, so the function reads the value fresh.
  const valueReadsForceSync = await readsOfOneRun(() =>
    custom.patchNamespacedCustomObject(
      { ...ssRef, body: { metadata: { annotations: { 'secretsync.io/force-sync': 'bench' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    ),
  );
  // The daily backstop resync with nothing changed, as the controller starts it: its last invocation
  // dated back past spec.resyncInterval, then an inventory pass (which lists the secret's version).
  const valueReadsBackstop = await readsOfOneRun(async () => {
    const dayAgo = new Date(Date.now() - 25 * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await custom.patchNamespacedCustomObjectStatus(
      { ...ssRef, body: { status: { lastInvokeTime: dayAgo } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    // Once the informer has the dated status, the pass asks for the backstop (and the queue runs it).
    for (let i = 0; i < 100; i++) {
      if ((await controller.inventoryNow()).queued.get('bench/db')?.resync) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no inventory pass asked for the backstop');
  });
  results.valueReads = {
    perChange: valueReadsPerChange,
    perForceSyncWithoutChange: valueReadsForceSync,
    perBackstopRunWithoutChange: valueReadsBackstop,
  };

  // The function's own view: its one log line per sync carries durationMs.
  const lines = bed.runner.logsFor(fn).map((l) => {
    try {
      return JSON.parse(l.text) as { message?: string; durationMs?: number };
    } catch {
      return {};
    }
  });
  const inFn = lines
    .filter((l) => l.message === 'sync' && typeof l.durationMs === 'number')
    .map((l) => l.durationMs!);
  const stats = bed.runner.stats(fn);
  // What CloudWatch Logs ingests per run: the function's lines (its sync record, the metrics line)
  // and the runtime's START/END/REPORT.
  const allLines = bed.runner.logsFor(fn);
  const logBytesPerRun = Math.round(
    allLines.reduce((a, l) => a + Buffer.byteLength(l.text) + 1, 0) / Math.max(1, syncLines()),
  );

  const rss = stats.maxRssMb;
  results.lambda = {
    zipBytes: statSync(ZIP).size,
    unzippedBytes: statSync(BUNDLE).size,
    logBytesPerRun,
    importMs: summary(importMs),
    // Peak RSS of the function's process after a sync (Lambda's "Max Memory Used"): cold
    // environments run one sync each, the warm one many.
    peakRssMb: { cold: summary(rss.slice(1, 1 + COLD_SAMPLES)), warm: summary(rss.slice(-WARM_SAMPLES)) },
  };
  results.syncLatencyMs = {
    definition:
      'PutSecretValue returned → the watched Secret holds the new value (event router, function process, EKS token, RBAC, API server)',
    cold: summary(cold),
    warm: summary(warm),
    functionDurationMs: {
      cold: summary(inFn.slice(1, 1 + COLD_SAMPLES)),
      warm: summary(inFn.slice(-WARM_SAMPLES)),
    },
    runnerInitMs: summary(stats.initDurationsMs),
    pollingComparison: 'a 1 h refresh interval leaves a change unseen for 30 min on average (up to 60 min)',
  };
} finally {
  await controller.stop();
  await bed.stop();
}

// 3. Controller scale, each N on a fresh test bed. BENCH_SCALES=reuse keeps the scale and capacity
// runs of the last results.json (when only the function changed): recorded as controllerScaleMeasured.
const previous =
  process.env.BENCH_SCALES === 'reuse'
    ? (JSON.parse(readFileSync(`${root}bench/results.json`, 'utf8')) as {
        date: string;
        controllerScaleMeasured?: string;
        controllerScale: ScaleResult[];
        controllerCapacity?: unknown;
      })
    : undefined;
const SCALES = previous
  ? previous.controllerScale.map((r) => r.secretSyncs)
  : (process.env.BENCH_SCALES ?? '100,300,1000')
      .split(',')
      .map(Number)
      .filter((x) => x > 0);
const scale: ScaleResult[] = previous ? previous.controllerScale : [];
for (const n of previous ? [] : SCALES) {
  scale.push(await runScale(n, { concurrency: 16, log: (m) => console.log(`[bench] ${m}`) }));
  console.log(`[bench] ${JSON.stringify(scale.at(-1))}`);
}
results.controllerScaleMeasured = previous
  ? (previous.controllerScaleMeasured ?? previous.date)
  : new Date().toISOString();
results.controllerScale = scale;
// The controller's own capacity: the largest size again with every client-side rate limit lifted.
// The defaults (IAM 5/s, Lambda 10/s, Logs 5/s… modelling real AWS) bound the runs above; the test
// bed throttles nothing unless told to.
const largest = SCALES.at(-1);
const capacity = previous
  ? (previous.controllerCapacity as Awaited<ReturnType<typeof runCapacity>> | undefined)
  : largest && process.env.BENCH_CAPACITY !== '0'
    ? await runCapacity(largest)
    : undefined;
results.controllerCapacity = capacity;

// 4. At rest: the inventory model, AWS cost per secret, from the counts measured above and AWS's
// public prices. Default periods: inventory every 10 min, deep check every 12 h, backstop 24 h.
const first = scale[0];
const largestRun = scale.at(-1);
const passesPerDay = (24 * 60) / 10; // --resync-period default
const deepPerDay = 24 / 12; // --deep-resync-period default
const backstopHours = 24; // spec.resyncInterval default
const vr = results.valueReads as { perChange: number; perBackstopRunWithoutChange: number };
const price = {
  source: {
    secretsManager:
      'https://aws.amazon.com/secrets-manager/pricing/ — $0.40 per secret-month, $0.05 per 10,000 API calls',
    lambda:
      'https://aws.amazon.com/lambda/pricing/ — $0.20 per 1M requests, $0.0000133334 per GB-second (Arm, us-east-1)',
    eventBridge:
      'https://aws.amazon.com/eventbridge/pricing/ — state-change events of AWS services on the default bus: free',
    logs: 'https://aws.amazon.com/cloudwatch/pricing/ — $0.50 per GB ingested',
    controlPlane:
      'IAM, EKS access entries, the Tagging API and the describe/list calls of the controller: no charge',
  },
  smPerCall: 0.05 / 10_000,
  lambdaPerRequest: 0.2 / 1e6,
  lambdaPerGbSecond: 0.0000133334,
  logsPerGb: 0.5,
};
const s0 = results.syncLatencyMs as { functionDurationMs: { cold: { p50: number } } };
const runCost =
  price.lambdaPerRequest +
  0.125 * (s0.functionDurationMs.cold.p50 / 1000) * price.lambdaPerGbSecond +
  ((results.lambda as { logBytesPerRun: number }).logBytesPerRun / 1e9) * price.logsPerGb; // measured
const month = 30;

/** Per SecretSync per day at rest, from one run's measured inventory pass and deep checks. */
const atRestOf = (r: ScaleResult) => {
  const listSecrets = r.inventoryPass.byOperation.ListSecrets ?? 0;
  const smCalls =
    (listSecrets * passesPerDay) / r.secretSyncs + (24 / backstopHours) * vr.perBackstopRunWithoutChange;
  return {
    awsReads: round(
      (r.inventoryPass.awsCalls * passesPerDay) / r.secretSyncs + r.deepCheck.readsPerCheck * deepPerDay,
      1,
    ),
    secretsManagerCalls: round(smCalls, 2),
    usdPerMonth: Number(
      (smCalls * month * price.smPerCall + ((month * 24) / backstopHours) * runCost).toFixed(5),
    ),
    iamCallsPerHour: round(
      ((r.inventoryPass.byOperation.ListRoles ?? 0) * passesPerDay) / 24 +
        (r.deepCheck.iamReadsPerCheck * r.secretSyncs * deepPerDay) / 24,
      0,
    ),
    cpuSecondsPerMinute: round(
      r.atRest.idleCpuSecondsPerMinute +
        r.atRest.cpuSecondsPerInventoryPass / 10 +
        (r.deepCheck.cpuSecondsPerCheck * r.secretSyncs * deepPerDay) / (24 * 60),
      3,
    ),
  };
};
function round(x: number, d = 1) {
  return Math.round(x * 10 ** d) / 10 ** d;
}
// Calls per inventory pass against N: least squares over the measured sizes, and 10,000 from it.
const points = scale.map((r) => [r.secretSyncs, r.inventoryPass.awsCalls] as const);
const meanX = points.reduce((a, [x]) => a + x, 0) / Math.max(1, points.length);
const meanY = points.reduce((a, [, y]) => a + y, 0) / Math.max(1, points.length);
const slope =
  points.reduce((a, [x, y]) => a + (x - meanX) * (y - meanY), 0) /
  Math.max(
    1e-9,
    points.reduce((a, [x]) => a + (x - meanX) ** 2, 0),
  );
const intercept = meanY - slope * meanX;
const rest = Object.fromEntries(scale.map((r) => [r.secretSyncs, atRestOf(r)]));
const at = (n: number) => scale.find((r) => r.secretSyncs === n);
results.steadyState = {
  definition:
    'default settings (inventory every 10 min, deep check every 12 h, backstop resync every 24 h) and the rate model of --aws-rate-limits; per-day figures from the measured inventory pass and deep checks',
  awsReadsPerSecretSyncPerDay: largestRun ? rest[largestRun.secretSyncs]?.awsReads : undefined,
  secretsManagerCallsPerSecretPerDay: largestRun
    ? rest[largestRun.secretSyncs]?.secretsManagerCalls
    : undefined,
  passSecondsAt1000: at(1000)?.inventoryPass.seconds,
  iamCallsPerHourAt1000: at(1000) ? rest[1000]?.iamCallsPerHour : undefined,
  usdPerSecretMonthAtRest: largestRun ? rest[largestRun.secretSyncs]?.usdPerMonth : undefined,
  callsPerPassModel: {
    measured: Object.fromEntries(points.map(([x, y]) => [x, y])),
    formula: `${round(intercept, 1)} + ${round(slope, 4)} × N (least squares); by AWS's page sizes: ceil(N/100) ListSecrets + ceil(N/100) ListRules + ceil(2N/100) GetResources + ceil(N/1000) ListRoles + ceil(N/100) ListAccessEntries`,
    at10000: Math.round(intercept + slope * 10_000),
  },
  provisioningBoundRatio: at(1000)?.provisioningBound.ratio ?? largestRun?.provisioningBound.ratio,
  cpuSecondsPerMinuteAtRestPer100: at(100) ? rest[100]?.cpuSecondsPerMinute : undefined,
  peakRssMbAt100: at(100)?.controller.peakRssMb,
  peakRssMbAt1000: at(1000)?.controller.peakRssMb,
  readsAfterReady: Object.fromEntries(scale.map((r) => [r.secretSyncs, r.readsAfterReady])),
  readsAfterRestart: Object.fromEntries(
    scale.map((r) => [r.secretSyncs, r.inventoryPass.otherCallsAfterRestart]),
  ),
  perSize: rest,
};
results.awsCost = {
  prices: price.source,
  perNewSecretSync: first
    ? {
        mutating: first.awsCalls.mutating / first.secretSyncs,
        reads: first.awsCalls.reads / first.secretSyncs,
      }
    : undefined,
  usdPerSecretPerMonthWithoutChange: {
    secretsync: largestRun ? rest[largestRun.secretSyncs]?.usdPerMonth : undefined,
    pollingOperator1h: Number((24 * month * price.smPerCall).toFixed(5)),
    plusSecretStorage: 0.4,
  },
  usdPerChange: Number((vr.perChange * price.smPerCall + runCost).toFixed(7)),
};

const out = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  ...results,
};
writeFileSync(`${root}bench/results.json`, `${JSON.stringify(out, null, 2)}\n`);

// The function before it used the SDK's client (a hand-signed GetSecretValue): `make bench` at that
// commit on this machine, alone on its 2 cores.
const BEFORE_SDK = { commit: 'c42edcc', coldP50Ms: 183.8, warmP50Ms: 34.7, importP50Ms: 30, zipKiB: 37.1 };

// README summary between the markers.
const l = results.lambda as {
  zipBytes: number;
  unzippedBytes: number;
  importMs: { p50: number };
  peakRssMb: { cold: { p50: number }; warm: { max: number } };
};
type Summary = { p50: number; p99: number; n: number };
const s = results.syncLatencyMs as {
  cold: Summary;
  warm: Summary;
  functionDurationMs: { cold: Summary; warm: Summary };
};
const st = results.steadyState as {
  awsReadsPerSecretSyncPerDay?: number;
  secretsManagerCallsPerSecretPerDay?: number;
  passSecondsAt1000?: number;
  iamCallsPerHourAt1000?: number;
  usdPerSecretMonthAtRest?: number;
  callsPerPassModel: { measured: Record<string, number>; at10000: number; formula: string };
  provisioningBoundRatio?: number;
  cpuSecondsPerMinuteAtRestPer100?: number;
  peakRssMbAt100?: number;
  peakRssMbAt1000?: number;
  readsAfterReady: Record<string, number>;
  readsAfterRestart: Record<string, number>;
};
const c = results.awsCost as { perNewSecretSync?: { mutating: number; reads: number } };
const measured = Object.entries(st.callsPerPassModel.measured)
  .map(([n, k]) => `${k} at ${n}`)
  .join(', ');
const scaleRows = scale
  .map(
    (r) =>
      `| ${r.secretSyncs} SecretSyncs applied at once: all Ready / bound of the rate model (${r.provisioningBound.service}) / AWS calls / peak RSS / CPU | ${r.allReadySeconds} s / ${r.provisioningBound.seconds} s (×${r.provisioningBound.ratio}) / ${r.awsCalls.total} (${r.awsCalls.perSecretSync} each) / ${r.controller.peakRssMb} MB / ${r.controller.cpuSeconds} s | ≤ 1.15 × bound |\n` +
      `| ${r.secretSyncs} at rest: inventory pass / deep check / idle RSS | ${r.inventoryPass.awsCalls} list calls in ${r.inventoryPass.seconds} s / ${r.deepCheck.readsPerCheck} reads per SecretSync / ${r.idle.rssMb} MB | — |`,
  )
  .join('\n');
const capacityRow = capacity ? `\n${capacityTableRow(capacity)}` : '';
const table = `<!-- bench:start -->
| figure (\`make bench\`, ${out.machine.cpus} cores, Node ${process.version}, ${out.date.slice(0, 10)}) | measured | target |
|---|---|---|
| Lambda zip / unzipped | ${(l.zipBytes / 1024).toFixed(1)} KiB / ${(l.unzippedBytes / 1024).toFixed(1)} KiB | ≤ 150 KiB zipped |
| bundle import (fresh process) p50 | ${l.importMs.p50} ms | — |
| sync latency, cold (fresh process per sync) p50 / p99, n=${s.cold.n} | ${s.cold.p50} / ${s.cold.p99} ms | p50 ≤ 300 ms |
| the function on the SDK's Secrets Manager client: cold p50 / warm p50 / import p50 / zip; before, hand-signed SigV4 (${BEFORE_SDK.commit}) | ${s.cold.p50} / ${s.warm.p50} / ${l.importMs.p50} ms / ${(l.zipBytes / 1024).toFixed(1)} KiB; before: ${BEFORE_SDK.coldP50Ms} / ${BEFORE_SDK.warmP50Ms} / ${BEFORE_SDK.importP50Ms} ms / ${BEFORE_SDK.zipKiB} KiB | cold p50 ≤ 350 ms |
| sync latency, warm p50 / p99, n=${s.warm.n} | ${s.warm.p50} / ${s.warm.p99} ms | p50 ≤ 50 ms |
| time inside the function, cold / warm p50 | ${s.functionDurationMs.cold.p50} / ${s.functionDurationMs.warm.p50} ms | — |
| staleness with a 1 h polling operator | 30 min average, 60 min worst | — |
| function peak RSS (Max Memory Used), cold / warm p50 | ${l.peakRssMb.cold.p50} / ${l.peakRssMb.warm.max} (max) MB | ≤ 60 MB |
| AWS calls per new SecretSync (controller) | ${c.perNewSecretSync?.mutating} mutating + ${c.perNewSecretSync?.reads} reads | — |
| AWS reads per SecretSync per day at rest | ${st.awsReadsPerSecretSyncPerDay} (inventory lists + a deep check every 12 h); before the inventory: 2,016 | ≤ 30 |
| Secrets Manager calls per secret per day at rest, GetSecretValue included | ${st.secretsManagerCallsPerSecretPerDay} (ListSecrets pages; a backstop run with nothing changed reads ${vr.perBackstopRunWithoutChange} values, a change ${vr.perChange}); before: 145; 1 h polling: 24 | ≤ 2 |
| inventory pass at 1000 SecretSyncs | ${st.passSecondsAt1000} s; before: a 800 s drift pass | ≤ 30 s |
| IAM calls per hour at 1000 at rest | ${st.iamCallsPerHourAt1000} | ≤ 500 |
| USD per secret-month at rest (API + Lambda + logs; storage $0.40 extra) | ${st.usdPerSecretMonthAtRest}; before: 0.0218; 1 h polling: 0.0036 | ≤ 0.0005 |
| calls per inventory pass | ${measured}; 10,000: ${st.callsPerPassModel.at10000} | — |
| provisioning 1000: time to Ready / the rate model's bound for the calls made | ×${st.provisioningBoundRatio} | ≤ 1.15 |
| controller CPU at rest per 100 SecretSyncs | ${st.cpuSecondsPerMinuteAtRestPer100} CPU-s per min; ESO: 0.07 | ≤ 0.07 |
| controller peak RSS at 100 / 1000 | ${st.peakRssMbAt100} / ${st.peakRssMbAt1000} MB; ESO: 135 | ≤ 135 / ≤ 150 |
| reads naming a SecretSync in the 30 s after all were Ready / after a restart | ${Object.values(st.readsAfterReady).join(', ')} / ${Object.values(st.readsAfterRestart).join(', ')} | 0 |
${scaleRows}${capacityRow}
<!-- bench:end -->`;
const readme = readFileSync(`${root}README.md`, 'utf8');
writeFileSync(`${root}README.md`, readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, table));
console.log(table);
process.exit(0);
