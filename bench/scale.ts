import { spawn } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { CallRecord } from '../e2e/testbed/front-door.ts';
import { RAISED_QUOTAS, startTestbed } from '../e2e/testbed/index.ts';
import { imageEnv } from '../scripts/image-node-options.ts';
import { DEFAULT_RATE_LIMITS } from '../src/controller/aws/rate-limit.ts';

/**
 * Controller scale: N SecretSyncs applied at once to a fresh test bed, the controller running as
 * its own process (the built bundle, as in the image), measured from outside: time until every
 * SecretSync is Ready against the rate model's bound, AWS calls by kind, peak RSS and CPU seconds
 * of the controller process (/proc); then at rest: nothing read after Ready, a restart's inventory
 * pass (calls, seconds, nothing else read), deep checks on a sample, the idle process's CPU and one
 * inventory pass's.
 */
export interface ScaleResult {
  secretSyncs: number;
  concurrency: number;
  allReadySeconds: number;
  /** Controller flags beyond the defaults (the capacity run lifts the IAM rate limit). */
  extraArgs: string[];
  awsCalls: { total: number; mutating: number; reads: number; perSecretSync: number };
  /**
   * The time the rate model's binding bucket needs for the provisioning calls made (calls per
   * service / its rate; Lambda's Invoke, GetFunction and GetPolicy are outside its quota), and
   * allReadySeconds divided by it.
   */
  provisioningBound: { service: string; seconds: number; ratio: number };
  controller: {
    peakRssMb: number;
    cpuSeconds: number;
    cpuSecondsPerSecretSync: number;
    machineCpuBusy: number;
    motoCpuBusy: number;
  };
  /** Calls naming one SecretSync's things in the 30 s after all were Ready (no pass after Ready: 0). */
  readsAfterReady: number;
  /** A restarted controller (failover, upgrade): its first inventory pass, and what else it read. */
  inventoryPass: {
    seconds: number;
    awsCalls: number;
    byOperation: Record<string, number>;
    /** Calls other than the lists (and start-up's identity and DescribeCluster) in the 30 s after the restart. */
    otherCallsAfterRestart: number;
  };
  /** Deep checks forced on a sample (status.checkedTime two days back): reads per check, by service. */
  deepCheck: { sample: number; readsPerCheck: number; iamReadsPerCheck: number; cpuSecondsPerCheck: number };
  /** At rest, default periods: CPU of the idle process, and of one inventory pass (measured at a 15 s period). */
  atRest: { idleCpuSecondsPerMinute: number; cpuSecondsPerInventoryPass: number };
  idle: { rssMb: number; cpuSecondsPerMinute: number };
}

const root = new URL('..', import.meta.url).pathname;
const CLK_TCK = 100; // Linux USER_HZ
const MUTATING = (op: string) => !/^(Get|Describe|List)/.test(op);

function procStats(pid: number): { rssMb: number; peakRssMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // Fields 14 and 15 (utime, stime) counted from after the command name: indexes 11, 12.
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024, cpuSeconds: ticks / CLK_TCK };
}

/** The moto_server process serving `motoUrl` (its command line names the port). */
function motoPid(motoUrl: string): number | undefined {
  const port = new URL(motoUrl).port;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('moto_server')) && cmd.includes(port)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Jiffies of all CPUs from /proc/stat: idle (idle + iowait) and total. */
function machineCpu(): { idle: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export async function runScale(
  n: number,
  opts: { concurrency: number; log: (m: string) => void; extraArgs?: string[] },
): Promise<ScaleResult> {
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
  // One AWS secret per SecretSync, as in real use (each rule matches its own secret).
  const arns: string[] = [];
  for (let i = 0; i < n; i++) {
    const { ARN } = await sm.send(
      new CreateSecretCommand({ Name: `scale/${ns}/s${i}`, SecretString: JSON.stringify({ k: `v${i}` }) }),
    );
    arns.push(ARN!);
  }
  // Inventory-pass log lines of the running controller (JSON on stdout).
  let passes: { seconds: number; awsCalls: number; time: number }[] = [];
  const startController = (args: string[] = []) => {
    const child = spawn(
      process.execPath,
      [
        `${root}dist/controller.js`,
        `--cluster-name=${info.clusterName}`,
        `--region=${info.aws.region}`,
        `--lambda-zip=${root}dist/lambda/secretsync-lambda.zip`,
        '--leader-elect=false',
        '--metrics-port=0',
        '--health-port=0',
        '--tenancy=allow-all',
        `--namespaces=${ns}`,
        `--concurrency=${opts.concurrency}`,
        '--log-level=info',
        ...(opts.extraArgs ?? []),
        ...args,
      ],
      {
        env: {
          // As the image runs it: the Dockerfile's ENV (NODE_OPTIONS, MALLOC_ARENA_MAX…).
          ...imageEnv(),
          PATH: process.env.PATH,
          KUBECONFIG: info.kubeconfigPath,
          AWS_ENDPOINT_URL: info.aws.url,
          AWS_ACCESS_KEY_ID: info.aws.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: info.aws.credentials.secretAccessKey,
          AWS_REGION: info.aws.region,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (process.env.BENCH_CONTROLLER_LOG) appendFileSync(process.env.BENCH_CONTROLLER_LOG, `${line}\n`);
        if (!line.includes('"inventory pass"')) continue;
        const l = JSON.parse(line) as { seconds: number; awsCalls: number; time: number };
        passes.push({ seconds: l.seconds, awsCalls: l.awsCalls, time: l.time });
      }
    });
    return child;
  };
  let child = startController();
  let pid = child.pid!;
  const controllerKey = info.aws.credentials.accessKeyId;
  const calls = () => (bed.frontDoor.calls() as CallRecord[]).filter((c) => c.accessKeyId === controllerKey);
  try {
    await sleep(2_000); // started, listed the (empty) namespace
    bed.frontDoor.resetCalls();
    const cpu0 = procStats(pid).cpuSeconds;
    const machine0 = machineCpu();
    const moto = motoPid(info.aws.motoUrl);
    const moto0 = moto ? procStats(moto).cpuSeconds : 0;
    const t0 = performance.now();
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
    let ready = 0;
    for (;;) {
      const list = (await objects.listNamespacedCustomObject({
        group: 'secretsync.io',
        version: 'v1alpha1',
        plural: 'secretsyncs',
        namespace: ns,
      })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
      ready = list.items.filter((s) =>
        s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      ).length;
      if (ready === n) break;
      if (performance.now() - t0 > 30 * 60_000) throw new Error(`only ${ready}/${n} Ready after 30 min`);
      await sleep(1_000);
    }
    const allReadySeconds = (performance.now() - t0) / 1000;
    opts.log(`${n} SecretSyncs Ready in ${round(allReadySeconds)} s`);
    await bed.runner.idle();
    const provisioning = calls();
    const afterProvisioning = procStats(pid);
    const machine1 = machineCpu();
    const moto1 = moto ? procStats(moto).cpuSeconds : 0;

    // No pass after Ready: 30 s in which nothing names a SecretSync's things (the lists name none).
    const quietSince = calls().length;
    await sleep(30_000);
    const LISTS = new Set(['ListSecrets', 'ListRules', 'GetResources', 'ListRoles', 'ListAccessEntries']);
    const START = new Set(['GetCallerIdentity', 'DescribeCluster']);
    const readsAfterReady = calls()
      .slice(quietSince)
      .filter((c) => !LISTS.has(c.operation) && !START.has(c.operation)).length;

    const restart = async (args: string[] = []) => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      passes = [];
      bed.frontDoor.resetCalls();
      child = startController(args);
      pid = child.pid!;
      for (let waited = 0; passes.length === 0; waited += 250) {
        if (waited > 10 * 60_000) throw new Error('no inventory pass within 10 minutes of a restart');
        await sleep(250);
      }
    };

    // A restarted controller (failover, upgrade): the inventory at once, nothing read per SecretSync.
    await restart();
    const first = passes[0]!;
    const listCalls = calls().filter((c) => LISTS.has(c.operation));
    const byOperation: Record<string, number> = {};
    for (const c of listCalls) byOperation[c.operation] = (byOperation[c.operation] ?? 0) + 1;
    await sleep(30_000);
    const otherCallsAfterRestart = calls().filter(
      (c) => !LISTS.has(c.operation) && !START.has(c.operation),
    ).length;

    // At rest: the idle process for a minute (the next pass is 10 minutes away).
    const idleStart = procStats(pid);
    await sleep(60_000);
    const idleEnd = procStats(pid);
    const idleCpuPerMinute = idleEnd.cpuSeconds - idleStart.cpuSeconds;

    // Deep checks on a sample: their last check two days back, so the next inventory pass asks.
    // As many as one inventory pass checks at the default periods (twice the even share: N/36).
    const sample = Math.min(20, Math.ceil((2 * n * 600) / 43_200));
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    for (let i = 0; i < sample; i++)
      await objects.patchNamespacedCustomObjectStatus(
        {
          group: 'secretsync.io',
          version: 'v1alpha1',
          plural: 'secretsyncs',
          namespace: ns,
          name: `s${i}`,
          body: { status: { checkedTime: twoDaysAgo } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await restart();
    const deepCpu0 = procStats(pid).cpuSeconds;
    for (let waited = 0; ; waited += 1_000) {
      const list = (await objects.listNamespacedCustomObject({
        group: 'secretsync.io',
        version: 'v1alpha1',
        plural: 'secretsyncs',
        namespace: ns,
      })) as { items: { status?: { checkedTime?: string } }[] };
      if (list.items.filter((x) => x.status?.checkedTime === twoDaysAgo).length === 0) break;
      if (waited > 10 * 60_000) throw new Error('deep checks not done within 10 minutes');
      await sleep(1_000);
    }
    await sleep(2_000);
    const deepCalls = calls().filter((c) => !LISTS.has(c.operation) && !START.has(c.operation));
    const deepCpu = procStats(pid).cpuSeconds - deepCpu0;

    // One inventory pass's CPU: a 15 s period for a minute, less the idle process's minute.
    await restart(['--resync-period=15s']);
    await sleep(5_000);
    const freq0 = procStats(pid).cpuSeconds;
    const passes0 = passes.length;
    await sleep(60_000);
    const freqPasses = passes.length - passes0;
    const cpuPerPass = Math.max(
      0,
      (procStats(pid).cpuSeconds - freq0 - idleCpuPerMinute) / Math.max(1, freqPasses),
    );

    const mutating = provisioning.filter((c) => MUTATING(c.operation)).length;
    const bound = bindingBound(provisioning, opts.extraArgs ?? []);
    const idleNow = procStats(pid);
    return {
      secretSyncs: n,
      concurrency: opts.concurrency,
      extraArgs: opts.extraArgs ?? [],
      allReadySeconds: round(allReadySeconds),
      awsCalls: {
        total: provisioning.length,
        mutating,
        reads: provisioning.length - mutating,
        perSecretSync: round(provisioning.length / n),
      },
      provisioningBound: {
        service: bound.service,
        seconds: round(bound.seconds),
        ratio: bound.seconds > 0 ? round(allReadySeconds / bound.seconds, 2) : 0,
      },
      controller: {
        peakRssMb: round(afterProvisioning.peakRssMb),
        cpuSeconds: round(afterProvisioning.cpuSeconds - cpu0),
        cpuSecondsPerSecretSync: round((afterProvisioning.cpuSeconds - cpu0) / n, 3),
        // The whole machine (test bed included) while provisioning: near 1 means the test bed's
        // CPU, not the controller, set the pace.
        machineCpuBusy: round(1 - (machine1.idle - machine0.idle) / (machine1.total - machine0.total), 2),
        // moto answers every AWS call in one Python process: its share of one core while provisioning.
        motoCpuBusy: round((moto1 - moto0) / allReadySeconds, 2),
      },
      readsAfterReady,
      inventoryPass: {
        seconds: round(first.seconds, 2),
        awsCalls: listCalls.length,
        byOperation,
        otherCallsAfterRestart,
      },
      deepCheck: {
        sample,
        readsPerCheck: round(deepCalls.length / sample, 2),
        iamReadsPerCheck: round(deepCalls.filter((c) => c.service === 'iam').length / sample, 2),
        cpuSecondsPerCheck: round(deepCpu / sample, 3),
      },
      atRest: {
        idleCpuSecondsPerMinute: round(idleCpuPerMinute, 3),
        cpuSecondsPerInventoryPass: round(cpuPerPass, 3),
      },
      idle: { rssMb: round(idleNow.rssMb), cpuSecondsPerMinute: round(idleCpuPerMinute, 3) },
    };
  } finally {
    child.kill('SIGKILL');
    await bed.stop();
  }
}

/**
 * The rate model's time for these calls: per bucket (IAM for the account; the others per region —
 * one region here), calls / rate; the largest is the binding one. Lambda's Invoke, GetFunction and
 * GetPolicy are outside its control-plane quota, as in the controller's limiter.
 */
function bindingBound(calls: CallRecord[], extraArgs: string[]): { service: string; seconds: number } {
  const limits: Record<string, number> = { ...DEFAULT_RATE_LIMITS };
  for (const a of extraArgs)
    if (a.startsWith('--aws-rate-limits='))
      for (const kv of a.slice('--aws-rate-limits='.length).split(',')) {
        const [k, v] = kv.split('=');
        if (k && v !== undefined) limits[k] = Number(v);
      }
  const count: Record<string, number> = {};
  for (const c of calls) {
    if (c.service === 'lambda' && ['Invoke', 'GetFunction', 'GetPolicy'].includes(c.operation)) continue;
    count[c.service] = (count[c.service] ?? 0) + 1;
  }
  let best = { service: 'none', seconds: 0 };
  for (const [service, k] of Object.entries(count)) {
    const rate = limits[service];
    if (!rate) continue;
    if (k / rate > best.seconds) best = { service, seconds: k / rate };
  }
  return best;
}

/** Every client-side rate limit lifted (`0` = unlimited): what the controller itself can do. */
export const NO_RATE_LIMITS = `--aws-rate-limits=${Object.keys(DEFAULT_RATE_LIMITS)
  .map((service) => `${service}=0`)
  .join(',')}`;

export const runCapacity = (n: number): Promise<ScaleResult> =>
  runScale(n, {
    concurrency: 16,
    extraArgs: [NO_RATE_LIMITS],
    log: (m) => console.log(`[bench] capacity: ${m}`),
  });

/** The README row for the capacity run (bench/run.ts and bench/capacity.ts write the same). */
export function capacityTableRow(r: ScaleResult): string {
  return `| ${r.secretSyncs} applied at once with every client-side rate limit lifted (\`${r.extraArgs.join(' ')}\`; the controller's own capacity): all Ready / AWS calls / peak RSS / controller CPU / CPU busy while provisioning | ${r.allReadySeconds} s / ${r.awsCalls.total} / ${r.controller.peakRssMb} MB / ${r.controller.cpuSeconds} s / machine ${Math.round(r.controller.machineCpuBusy * 100)} %, moto ${Math.round(r.controller.motoCpuBusy * 100)} % of a core; inventory pass ${r.inventoryPass.seconds} s | 1000 in ≤ 300 s |`;
}
