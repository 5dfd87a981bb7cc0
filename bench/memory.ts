// Where the controller's memory goes: bench/scale.ts's provisioning run (N SecretSyncs applied at
// once to a fresh test bed, the built bundle as its own process), with the controller's RSS sampled
// from /proc every 100 ms (anonymous vs file-backed, sockets open), and in-process figures (heap,
// external, code space) from a preload. For comparing flags and bundles without the full
// `make bench`:
//
//   MEM_N=100 MEM_NODE_FLAGS="--max-old-space-size=96" MEM_BUNDLE=dist/controller.js node bench/memory.ts
//
// MEM_NODE_FLAGS defaults to the image's NODE_OPTIONS, MEM_CHILD_ENV (JSON) to the image's other ENV;
// MEM_SMAPS=path copies the controller's /proc/<pid>/smaps once every SecretSync is Ready, and
// MEM_SNAPSHOT=1 writes a heap snapshot then (MEM_SNAPSHOT_PATH; summarise it with
// bench/heap-summary.ts).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { RAISED_QUOTAS, startTestbed } from '../e2e/testbed/index.ts';
import { imageEnv } from '../scripts/image-node-options.ts';

const root = new URL('..', import.meta.url).pathname;
const n = Number(process.env.MEM_N ?? 100);
const { NODE_OPTIONS = '', ...imageOtherEnv } = imageEnv();
const flags = (process.env.MEM_NODE_FLAGS ?? NODE_OPTIONS).split(' ').filter(Boolean);
const bundle = process.env.MEM_BUNDLE ?? `${root}dist/controller.js`;
const idleSeconds = Number(process.env.MEM_IDLE_SECONDS ?? 30);
const statsFile = `/tmp/secretsync-mem-${process.pid}.jsonl`;

// Written into the controller by --import: heap figures once a second, a snapshot on SIGUSR2.
const preload = `
import v8 from 'node:v8'; import { appendFileSync } from 'node:fs';
const t0 = Date.now();
const tick = () => {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_size / 1024)]));
  const h = v8.getHeapStatistics();
  appendFileSync(${JSON.stringify(statsFile)}, JSON.stringify({ t: Date.now() - t0, ...m, malloced: h.malloced_memory, peakMalloced: h.peak_malloced_memory, spacesKb: spaces }) + '\\n');
};
setInterval(tick, 1000).unref();
process.on('SIGUSR2', () => { tick(); const f = v8.writeHeapSnapshot(process.env.MEM_SNAPSHOT_PATH); process.stderr.write('snapshot ' + f + '\\n'); });
`;

type Proc = { rss: number; anon: number; file: number; hwm: number; sockets: number; cpuSeconds: number };
function proc(pid: number): Proc {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0) / 1024;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  // utime + stime, fields 14 and 15 (counted after the command name: 11, 12), in USER_HZ (100).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const cpuSeconds = (Number(stat[11]) + Number(stat[12])) / 100;
  return {
    rss: kb('VmRSS'),
    anon: kb('RssAnon'),
    file: kb('RssFile'),
    hwm: kb('VmHWM'),
    sockets,
    cpuSeconds,
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r1 = (x: number) => Math.round(x * 10) / 10;

const bed = await startTestbed({ quiet: true, quotas: RAISED_QUOTAS });
const { info } = bed;
const kc = new KubeConfig();
kc.loadFromFile(info.kubeconfigPath);
const objects = kc.makeApiClient(CustomObjectsApi);
const ns = `scale-${n}`;
await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
const sm = new SecretsManagerClient({
  endpoint: info.aws.url,
  region: info.aws.region,
  credentials: { accessKeyId: 'AKIABENCHHARNESS0001', secretAccessKey: 'x' },
});
const arns: string[] = [];
for (let i = 0; i < n; i++) {
  const { ARN } = await sm.send(
    new CreateSecretCommand({ Name: `scale/${ns}/s${i}`, SecretString: JSON.stringify({ k: `v${i}` }) }),
  );
  arns.push(ARN!);
}
const child = spawn(
  process.execPath,
  [
    ...flags,
    '--import',
    `data:text/javascript,${encodeURIComponent(preload)}`,
    bundle,
    `--cluster-name=${info.clusterName}`,
    `--region=${info.aws.region}`,
    `--lambda-zip=${root}dist/lambda/secretsync-lambda.zip`,
    '--leader-elect=false',
    '--metrics-port=0',
    '--health-port=0',
    '--tenancy=allow-all',
    `--namespaces=${ns}`,
    '--concurrency=16',
    '--log-level=info',
  ],
  {
    env: {
      PATH: process.env.PATH,
      KUBECONFIG: info.kubeconfigPath,
      AWS_ENDPOINT_URL: info.aws.url,
      AWS_ACCESS_KEY_ID: info.aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: info.aws.credentials.secretAccessKey,
      AWS_REGION: info.aws.region,
      ...(process.env.MEM_SNAPSHOT_PATH ? { MEM_SNAPSHOT_PATH: process.env.MEM_SNAPSHOT_PATH } : {}),
      // The image's other ENV, or what MEM_CHILD_ENV says instead (e.g. {"MALLOC_ARENA_MAX":"2"}).
      ...(process.env.MEM_CHILD_ENV
        ? (JSON.parse(process.env.MEM_CHILD_ENV) as Record<string, string>)
        : imageOtherEnv),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
const pid = child.pid!;
const samples: (Proc & { t: number; phase: string })[] = [];
let phase = 'start';
const t0 = performance.now();
const sampler = setInterval(() => {
  try {
    samples.push({ t: r1((performance.now() - t0) / 1000), phase, ...proc(pid) });
  } catch {
    // exited
  }
}, 100);
const peakOf = (p: string, k: keyof Proc) =>
  r1(Math.max(...samples.filter((s) => s.phase === p).map((s) => s[k])));
try {
  await sleep(2_000);
  const started = proc(pid);
  phase = 'provisioning';
  const tp = performance.now();
  await Promise.all(
    arns.map((arn, i) =>
      objects.createNamespacedCustomObject({
        group: 'secretsync.io',
        version: 'v1alpha1',
        plural: 'secretsyncs',
        namespace: ns,
        body: {
          apiVersion: 'secretsync.io/v1alpha1',
          kind: 'SecretSync',
          metadata: { name: `s${i}` },
          spec: { source: { secretId: arn } },
        },
      }),
    ),
  );
  for (;;) {
    const list = (await objects.listNamespacedCustomObject({
      group: 'secretsync.io',
      version: 'v1alpha1',
      plural: 'secretsyncs',
      namespace: ns,
    })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
    const ready = list.items.filter((s) =>
      s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    if (ready === n) break;
    if (performance.now() - tp > 30 * 60_000) throw new Error(`only ${ready}/${n} Ready`);
    await sleep(1_000);
  }
  const readySeconds = r1((performance.now() - tp) / 1000);
  await bed.runner.idle();
  const ready = proc(pid);
  if (process.env.MEM_SMAPS) writeFileSync(process.env.MEM_SMAPS, readFileSync(`/proc/${pid}/smaps`));
  if (process.env.MEM_SNAPSHOT) {
    child.kill('SIGUSR2');
    await sleep(15_000);
  }
  phase = 'idle';
  await sleep(idleSeconds * 1000);
  const idle = proc(pid);
  const stats = readFileSync(statsFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number> & { spacesKb: Record<string, number> });
  const mb = (x: number) => r1(x / 2 ** 20);
  const maxOf = (k: string) => mb(Math.max(...stats.map((s) => s[k] as number)));
  const last = stats.at(-1)!;
  const result = {
    n,
    flags,
    env: process.env.MEM_CHILD_ENV ?? JSON.stringify(imageOtherEnv),
    bundle,
    readySeconds,
    cpuSeconds: r1(ready.cpuSeconds - started.cpuSeconds),
    started: { rss: r1(started.rss), anon: r1(started.anon), file: r1(started.file) },
    peak: {
      hwm: r1(ready.hwm),
      anon: peakOf('provisioning', 'anon'),
      file: peakOf('provisioning', 'file'),
      sockets: peakOf('provisioning', 'sockets'),
      heapTotal: maxOf('heapTotal'),
      heapUsed: maxOf('heapUsed'),
      external: maxOf('external'),
      arrayBuffers: maxOf('arrayBuffers'),
      malloced: maxOf('malloced'),
    },
    idle: {
      sockets: idle.sockets,
      rss: r1(idle.rss),
      anon: r1(idle.anon),
      file: r1(idle.file),
      heapTotal: mb(last.heapTotal!),
      heapUsed: mb(last.heapUsed!),
      external: mb(last.external!),
      spacesKb: last.spacesKb,
    },
  };
  console.log(JSON.stringify(result));
  if (process.env.MEM_SAMPLES) writeFileSync(process.env.MEM_SAMPLES, JSON.stringify({ samples, stats }));
} finally {
  clearInterval(sampler);
  child.kill('SIGKILL');
  await bed.stop();
}
process.exit(0);
