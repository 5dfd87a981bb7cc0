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
  // A run with nothing changed (what the daily backstop resync does): force-sync, count the reads.
  const readsBeforeNoChange = valueReads();
  await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
    {
      group: 'secretsync.io',
      version: 'v1alpha1',
      plural: 'secretsyncs',
      namespace: 'bench',
      name: 'db',
      body: { metadata: { annotations: { 'secretsync.io/force-sync': 'bench' } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  for (let i = 0; i < 100 && valueReads() === readsBeforeNoChange; i++)
    await new Promise((r) => setTimeout(r, 100));
  await fetch(`${info.aws.url}/_testbed/idle`);
  const valueReadsNoChange = valueReads() - readsBeforeNoChange;
  results.valueReads = { perChange: valueReadsPerChange, perRunWithoutChange: valueReadsNoChange };

  // The function's own view: its one log line per sync carries durationMs.
  const lines = bed.runner.logsFor(fn).map((l) => {
    try {
      return JSON.parse(l.text) as { msg?: string; durationMs?: number };
    } catch {
      return {};
    }
  });
  const inFn = lines
    .filter((l) => l.msg === 'sync' && typeof l.durationMs === 'number')
    .map((l) => l.durationMs!);
  const stats = bed.runner.stats(fn);

  const rss = stats.maxRssMb;
  results.lambda = {
    zipBytes: statSync(ZIP).size,
    unzippedBytes: statSync(BUNDLE).size,
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

// 3. Controller scale, each N on a fresh test bed.
const SCALES = (process.env.BENCH_SCALES ?? '100,300,1000')
  .split(',')
  .map(Number)
  .filter((x) => x > 0);
const scale: ScaleResult[] = [];
for (const n of SCALES) {
  scale.push(await runScale(n, { concurrency: 16, log: (m) => console.log(`[bench] ${m}`) }));
  console.log(`[bench] ${JSON.stringify(scale.at(-1))}`);
}
results.controllerScale = scale;
// The controller's own capacity: the largest size again with every client-side rate limit lifted.
// The defaults (IAM 5/s, Lambda 10/s, Logs 5/s… modelling real AWS) bound the runs above; the test
// bed throttles nothing unless told to.
const largest = SCALES.at(-1);
const capacity = largest && process.env.BENCH_CAPACITY !== '0' ? await runCapacity(largest) : undefined;
results.controllerCapacity = capacity;

// 4. AWS cost per secret, from the counts measured above and AWS's public prices.
const first = scale[0];
const resyncMinutes = 10; // --resync-period default
const backstopHours = 24; // spec.resyncInterval default
const vr = results.valueReads as { perChange: number; perRunWithoutChange: number };
const smPerDay = {
  // The controller's drift-repair pass reads the secret's metadata (DescribeSecret) once per SecretSync.
  describeSecret: ((24 * 60) / resyncMinutes) * (first?.steadyPass.describeSecretPerSecretSync ?? 1),
  // The function reads the value once per backstop run when nothing changed.
  getSecretValue: (24 / backstopHours) * vr.perRunWithoutChange,
};
const price = {
  source: {
    secretsManager:
      'https://aws.amazon.com/secrets-manager/pricing/ — $0.40 per secret-month, $0.05 per 10,000 API calls',
    lambda:
      'https://aws.amazon.com/lambda/pricing/ — $0.20 per 1M requests, $0.0000133334 per GB-second (Arm, us-east-1)',
    eventBridge:
      'https://aws.amazon.com/eventbridge/pricing/ — state-change events of AWS services on the default bus: free',
    logs: 'https://aws.amazon.com/cloudwatch/pricing/ — $0.50 per GB ingested',
    controlPlane: 'IAM, EKS access entries and the describe/list calls of the controller: no charge',
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
  (700 / 1e9) * price.logsPerGb; // one sync line + START/END/REPORT, about 700 bytes
const month = 30;
results.awsCost = {
  prices: price.source,
  perNewSecretSync: first
    ? {
        mutating: first.awsCalls.mutating / first.secretSyncs,
        reads: first.awsCalls.reads / first.secretSyncs,
      }
    : undefined,
  perSteadyPass: first
    ? { reads: first.steadyPass.readsPerSecretSync, mutating: first.steadyPass.mutating }
    : undefined,
  secretsManagerCallsPerSecretPerDayWithoutChange: { ...smPerDay, pollingOperator1h: 24 },
  usdPerSecretPerMonthWithoutChange: {
    secretsync: Number(
      (
        (smPerDay.describeSecret + smPerDay.getSecretValue) * month * price.smPerCall +
        ((month * 24) / backstopHours) * runCost
      ).toFixed(5),
    ),
    withResyncPeriod24h: Number(
      ((1 + smPerDay.getSecretValue) * month * price.smPerCall + month * runCost).toFixed(5),
    ),
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
const c = results.awsCost as {
  perNewSecretSync?: { mutating: number; reads: number };
  perSteadyPass?: { reads: number; mutating: number };
  secretsManagerCallsPerSecretPerDayWithoutChange: { getSecretValue: number; describeSecret: number };
  usdPerSecretPerMonthWithoutChange: {
    secretsync: number;
    withResyncPeriod24h: number;
    pollingOperator1h: number;
  };
};
const scaleRows = scale
  .map(
    (r) =>
      `| ${r.secretSyncs} SecretSyncs applied at once: all Ready / AWS calls / controller peak RSS / CPU | ${r.allReadySeconds} s / ${r.awsCalls.total} (${r.awsCalls.perSecretSync} each) / ${r.controller.peakRssMb} MB / ${r.controller.cpuSeconds} s | 1000 in ≤ 300 s, ≤ 150 MB |\n` +
      `| ${r.secretSyncs} idle: steady pass / RSS / CPU | ${r.steadyPass.mutating} mutating, ${r.steadyPass.readsPerSecretSync} reads each, ${r.steadyPass.seconds} s / ${r.idle.rssMb} MB / ${r.idle.cpuSecondsPerMinute} CPU-s per min | 0 mutating |`,
  )
  .join('\n');
const capacityRow = capacity ? `\n${capacityTableRow(capacity)}` : '';
const table = `<!-- bench:start -->
| figure (\`make bench\`, ${out.machine.cpus} cores, Node ${process.version}, ${out.date.slice(0, 10)}) | measured | target |
|---|---|---|
| Lambda zip / unzipped | ${(l.zipBytes / 1024).toFixed(1)} KiB / ${(l.unzippedBytes / 1024).toFixed(1)} KiB | ≤ 150 KiB zipped |
| bundle import (fresh process) p50 | ${l.importMs.p50} ms | — |
| sync latency, cold (fresh process per sync) p50 / p99, n=${s.cold.n} | ${s.cold.p50} / ${s.cold.p99} ms | p50 ≤ 300 ms |
| sync latency, warm p50 / p99, n=${s.warm.n} | ${s.warm.p50} / ${s.warm.p99} ms | p50 ≤ 50 ms |
| time inside the function, cold / warm p50 | ${s.functionDurationMs.cold.p50} / ${s.functionDurationMs.warm.p50} ms | — |
| staleness with a 1 h polling operator | 30 min average, 60 min worst | — |
| function peak RSS (Max Memory Used), cold / warm p50 | ${l.peakRssMb.cold.p50} / ${l.peakRssMb.warm.max} (max) MB | ≤ 60 MB |
| AWS calls per new SecretSync (controller) | ${c.perNewSecretSync?.mutating} mutating + ${c.perNewSecretSync?.reads} reads | — |
| steady-state pass | ${c.perSteadyPass?.mutating} mutating, ${c.perSteadyPass?.reads} reads per SecretSync | 0 mutating |
| Secrets Manager calls per secret per day, no change | ${c.secretsManagerCallsPerSecretPerDayWithoutChange.getSecretValue} GetSecretValue + ${c.secretsManagerCallsPerSecretPerDayWithoutChange.describeSecret} DescribeSecret (one per 10 min drift-repair pass); 1 h polling: 24 GetSecretValue | ≤ 1 |
| USD per secret-month without change (API + Lambda + logs; storage $0.40 extra) | ${c.usdPerSecretPerMonthWithoutChange.secretsync} (with \`--resync-period=24h\`: ${c.usdPerSecretPerMonthWithoutChange.withResyncPeriod24h}); 1 h polling: ${c.usdPerSecretPerMonthWithoutChange.pollingOperator1h} | — |
${scaleRows}${capacityRow}
<!-- bench:end -->`;
const readme = readFileSync(`${root}README.md`, 'utf8');
writeFileSync(`${root}README.md`, readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, table));
console.log(table);
process.exit(0);
