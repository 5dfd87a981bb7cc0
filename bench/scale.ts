import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { CallRecord } from '../e2e/testbed/front-door.ts';
import { RAISED_QUOTAS, startTestbed } from '../e2e/testbed/index.ts';
import { imageNodeOptions } from '../scripts/image-node-options.ts';
import { DEFAULT_RATE_LIMITS } from '../src/controller/aws/rate-limit.ts';

/**
 * Controller scale: N SecretSyncs applied at once to a fresh test bed, the controller running as
 * its own process (the built bundle, as in the image), measured from outside: time until every
 * SecretSync is Ready, AWS calls by kind, peak RSS and CPU seconds of the controller process
 * (/proc), then one steady-state pass over all N (calls per SecretSync, mutating calls) and the
 * idle footprint.
 */
export interface ScaleResult {
  secretSyncs: number;
  concurrency: number;
  allReadySeconds: number;
  /** Controller flags beyond the defaults (the capacity run lifts the IAM rate limit). */
  extraArgs: string[];
  awsCalls: { total: number; mutating: number; reads: number; perSecretSync: number };
  controller: {
    peakRssMb: number;
    cpuSeconds: number;
    cpuSecondsPerSecretSync: number;
    machineCpuBusy: number;
    motoCpuBusy: number;
  };
  steadyPass: {
    seconds: number;
    awsCalls: number;
    mutating: number;
    readsPerSecretSync: number;
    /** Secrets Manager calls (DescribeSecret) per SecretSync in the pass. */
    describeSecretPerSecretSync: number;
    cpuSeconds: number;
  };
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
  const startController = () =>
    spawn(
      process.execPath,
      [
        // As the image runs it (the Dockerfile's NODE_OPTIONS).
        ...imageNodeOptions().split(' ').filter(Boolean),
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
        '--resync-period=30m',
        '--log-level=warn',
        ...(opts.extraArgs ?? []),
      ],
      {
        env: {
          PATH: process.env.PATH,
          KUBECONFIG: info.kubeconfigPath,
          AWS_ENDPOINT_URL: info.aws.url,
          AWS_ACCESS_KEY_ID: info.aws.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: info.aws.credentials.secretAccessKey,
          AWS_REGION: info.aws.region,
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
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

    // One steady-state pass over all N: a restarted controller lists them and reconciles each
    // once, exactly what a resync tick does (plus its start-up: identity, DescribeCluster).
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    bed.frontDoor.resetCalls();
    child = startController();
    pid = child.pid!;
    const passT0 = performance.now();
    let last = -1;
    for (;;) {
      await sleep(3_000);
      const c = calls();
      const described = c.filter((x) => x.operation === 'DescribeSecret').length;
      if (described >= n && c.length === last) break;
      last = c.length;
      if (performance.now() - passT0 > 20 * 60_000)
        throw new Error(`steady pass incomplete: ${described}/${n}`);
    }
    const pass = calls().filter(
      (c) => c.operation !== 'GetCallerIdentity' && c.operation !== 'DescribeCluster',
    );
    const passSeconds = (pass.at(-1)!.time - pass[0]!.time) / 1000;
    const cpuPass = procStats(pid).cpuSeconds;

    // Idle: nothing due for 30 minutes.
    const idleStart = procStats(pid);
    await sleep(30_000);
    const idleEnd = procStats(pid);

    const mutating = provisioning.filter((c) => MUTATING(c.operation)).length;
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
      steadyPass: {
        seconds: round(passSeconds),
        awsCalls: pass.length,
        mutating: pass.filter((c) => MUTATING(c.operation)).length,
        readsPerSecretSync: round(pass.length / n),
        describeSecretPerSecretSync: round(
          pass.filter((c) => c.operation === 'DescribeSecret').length / n,
          2,
        ),
        cpuSeconds: round(cpuPass),
      },
      idle: {
        rssMb: round(idleEnd.rssMb),
        cpuSecondsPerMinute: round(((idleEnd.cpuSeconds - idleStart.cpuSeconds) * 60) / 30, 2),
      },
    };
  } finally {
    child.kill('SIGKILL');
    await bed.stop();
  }
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
  return `| ${r.secretSyncs} applied at once with every client-side rate limit lifted (\`${r.extraArgs.join(' ')}\`; the controller's own capacity): all Ready / AWS calls / peak RSS / controller CPU / CPU busy while provisioning | ${r.allReadySeconds} s / ${r.awsCalls.total} / ${r.controller.peakRssMb} MB / ${r.controller.cpuSeconds} s / machine ${Math.round(r.controller.machineCpuBusy * 100)} %, moto ${Math.round(r.controller.motoCpuBusy * 100)} % of a core; steady pass ${r.steadyPass.seconds} s | 1000 in ≤ 300 s |`;
}
