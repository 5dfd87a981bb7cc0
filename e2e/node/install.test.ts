import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CloudWatchLogsClient, DescribeLogGroupsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { EKSClient, ListAccessEntriesCommand } from '@aws-sdk/client-eks';
import { EventBridgeClient, ListRulesCommand } from '@aws-sdk/client-eventbridge';
import { IAMClient, ListRolesCommand } from '@aws-sdk/client-iam';
import { LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RAISED_QUOTAS } from '../testbed/index.ts';
import { binaries } from '../testbed/paths.ts';
import { BRIDGE, IMAGES, NODE_NAME, type RealNode, startNodeTestbed } from './node.ts';

/**
 * make test-node: the user's path, on a real node. The image built from the Dockerfile, the chart
 * installed with helm as a user would (2 replicas, its securityContext, resources, probes, PDB, its
 * CRDs), a SecretSync synced through the pod, a leader killed, an upgrade rolled, the metrics scraped
 * from a pod, 300 SecretSyncs under the chart's memory limit, and an uninstall that leaves nothing.
 *
 * The figures a run measures (install, failover, RSS) are printed at the end and written to
 * <test bed logs>/node/figures.json; nothing here asserts a duration except the Lease protocol's own
 * bound (a takeover within the lease duration, plus one retry period).
 */
const CHART = new URL('../../charts/secretsync/', import.meta.url).pathname;
const RELEASE = 'secretsync';
const NS = 'secretsync-system';
const APP_NS = 'payments';
const LEASE = `${RELEASE}-leader`;
const LEASE_SECONDS = 15; // src/controller/controller.ts
const RETRY_SECONDS = 2;
const MANY = Number(process.env.SECRETSYNC_NODE_SYNCS ?? 300);

const exec = promisify(execFile);
const helmHome = mkdtempSync(join(tmpdir(), 'secretsync-helm-'));
const figures: Record<string, number | string> = {};
let node: RealNode;
let stopped = false;

async function helm(args: string[]): Promise<string> {
  try {
    const r = await exec(binaries.helm(), ['--kubeconfig', node.testbed.info.kubeconfigPath, ...args], {
      encoding: 'utf8',
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(helmHome, 'cache'),
        HELM_CONFIG_HOME: join(helmHome, 'config'),
        HELM_DATA_HOME: join(helmHome, 'data'),
      },
    });
    return r.stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args[0]}: ${e.stderr?.trim() || e.message}`);
  }
}

const kubectl = (...args: string[]) => node.kubectl(args);
const json = async <T>(...args: string[]): Promise<T> =>
  JSON.parse(await kubectl(...args, '-o', 'json')) as T;

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not in ${timeoutMs / 1000} s${last ? ` (${last})` : ''}`);
    await sleep(250);
  }
}

interface Pod {
  metadata: { name: string; uid: string; creationTimestamp: string };
  status: {
    phase: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      containerID?: string;
      restartCount: number;
      ready: boolean;
      lastState?: { terminated?: { reason?: string } };
      state?: { terminated?: { reason?: string } };
    }[];
  };
}
const controllerPods = async () =>
  (await json<{ items: Pod[] }>('get', 'pods', '-n', NS, '-l', `app.kubernetes.io/instance=${RELEASE}`))
    .items;
const ready = (p: Pod) =>
  p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const leaseHolder = async () =>
  (await json<{ spec: { holderIdentity?: string } }>('get', 'lease', LEASE, '-n', NS)).spec.holderIdentity ??
  '';

interface SecretSyncObject {
  metadata: { name: string; generation: number };
  status?: { conditions?: { type: string; status: string; reason?: string; lastTransitionTime?: string }[] };
}
const cond = (s: SecretSyncObject, type: string) => s.status?.conditions?.find((c) => c.type === type);

/** The pod's controller process, seen from the machine: its PID through containerd. */
async function controllerPid(pod: Pod): Promise<number> {
  const id = pod.status.containerStatuses?.[0]?.containerID?.replace('containerd://', '');
  if (!id) throw new Error(`${pod.metadata.name}: no container`);
  const line = (await node.ctr(['tasks', 'ls'])).split('\n').find((l) => l.startsWith(id));
  const pid = Number(line?.split(/\s+/)[1]);
  if (!pid) throw new Error(`${pod.metadata.name}: no task`);
  return pid;
}
const rssBytes = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

const aws = () => {
  const { aws: a } = node.testbed.info;
  return { endpoint: a.url, region: a.region, credentials: a.credentials };
};
const sha = (v: string) => createHash('sha256').update(v).digest('hex');
const secretSha = async (ns: string, name: string, key: string) => {
  const data = JSON.parse(await kubectl('get', 'secret', name, '-n', ns, '-o', 'jsonpath={.data}')) as Record<
    string,
    string
  >;
  return sha(Buffer.from(data[key] ?? '', 'base64').toString());
};

beforeAll(async () => {
  const t0 = Date.now();
  node = await startNodeTestbed({ quiet: true, quotas: RAISED_QUOTAS, crds: false });
  figures.nodeStartSeconds = (Date.now() - t0) / 1000;
}, 300_000);

afterAll(async () => {
  if (!stopped && node) await node.stop({ keepLogs: true });
  rmSync(helmHome, { recursive: true, force: true });
  process.stdout.write(`\n[test-node] figures: ${JSON.stringify(figures, null, 2)}\n`);
}, 180_000);

describe.sequential('helm install on a real node', () => {
  const secretsManager = () => new SecretsManagerClient(aws());
  let dbArn = '';
  let password = '';

  it('runs the image built from the Dockerfile, without a registry', async () => {
    const images = await node.ctr(['images', 'ls']);
    const line = images.split('\n').find((l) => l.startsWith(IMAGES.app));
    expect(line, images).toBeDefined();
    // REF TYPE DIGEST SIZE PLATFORMS LABELS: the compressed size containerd reports.
    figures.imageSize = line!.split(/\s+/).slice(3, 5).join(' ');
    // The CLI is on the image's PATH (`kubectl exec deploy/secretsync -- secretsync doctor …`).
    const policy = await node.ctr([
      'run',
      '--rm',
      IMAGES.app,
      `secretsync-cli-${process.pid}`,
      'secretsync',
      'iam-policy',
      '--account',
      '123456789012',
      '--region',
      'eu-west-1',
      '--cluster',
      'c1',
    ]);
    expect(JSON.parse(policy)).toMatchObject({ Version: '2012-10-17' });
  });

  it('helm install: two replicas Ready as uid 65532 on a read-only root, one holds the Lease', async () => {
    await kubectl('create', 'namespace', NS);
    // The controller's AWS credentials, from a Secret (on EKS: IRSA or Pod Identity instead).
    const { accessKeyId, secretAccessKey } = node.testbed.info.aws.credentials;
    await node.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'aws-credentials', namespace: NS },
        stringData: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey },
      }),
    );
    const [, port] = /:(\d+)$/.exec(node.testbed.info.apiUrl)!;
    const fromSecret = (name: string) => ({
      name,
      valueFrom: { secretKeyRef: { name: 'aws-credentials', key: name } },
    });
    const values = {
      clusterName: node.testbed.info.clusterName,
      region: node.testbed.info.aws.region,
      image: { repository: IMAGES.app.split(':')[0], tag: IMAGES.app.split(':')[1], pullPolicy: 'Never' },
      extraEnv: [
        { name: 'AWS_ENDPOINT_URL', value: node.testbed.info.aws.url },
        fromSecret('AWS_ACCESS_KEY_ID'),
        fromSecret('AWS_SECRET_ACCESS_KEY'),
        // No kube-proxy on this node: the API server's own address instead of the kubernetes Service.
        { name: 'KUBERNETES_SERVICE_HOST', value: BRIDGE.address },
        { name: 'KUBERNETES_SERVICE_PORT', value: port },
      ],
    };
    const valuesFile = join(node.testbed.info.dir, 'values.yaml');
    writeFileSync(valuesFile, JSON.stringify(values));
    const t0 = Date.now();
    await helm(['install', RELEASE, CHART, '-n', NS, '-f', valuesFile, '--wait', '--timeout', '3m']);
    const pods = await until('2 controller pods Ready', async () => {
      const p = await controllerPods();
      return p.length === 2 && p.every(ready) && p;
    });
    figures.installToReadySeconds = (Date.now() - t0) / 1000;
    const holder = await until('a Lease holder', leaseHolder, 60_000);
    expect(pods.map((p) => p.metadata.name)).toContain(holder);
    figures.leaderAfterInstallSeconds = (Date.now() - t0) / 1000;

    // The CRDs came from the chart (the test bed installed none).
    await kubectl('get', 'crd', 'secretsyncs.secretsync.io', 'secretsyncpolicies.secretsync.io');
    // As the pod runs it: uid, read-only root, no capabilities.
    const probe = await kubectl(
      'exec',
      '-n',
      NS,
      pods[0]!.metadata.name,
      '--',
      'node',
      '-e',
      `const fs = require('fs'); let ro; try { fs.writeFileSync('/app/x', ''); ro = false } catch (e) { ro = e.code }
       const caps = fs.readFileSync('/proc/self/status', 'utf8').match(/CapEff:\\s+(\\w+)/)[1];
       console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), ro, caps }))`,
    );
    expect(JSON.parse(probe)).toEqual({ uid: 65532, gid: 65532, ro: 'EROFS', caps: '0000000000000000' });
    // The memory limit the chart sets is what the kernel enforces.
    const pid = await controllerPid(pods[0]!);
    const memCgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /:memory:/.test(l))!
      .split(':')[2]!;
    const limit = Number(readFileSync(`/sys/fs/cgroup/memory${memCgroup}/memory.limit_in_bytes`, 'utf8'));
    expect(limit).toBe(384 * 1024 * 1024);
  });

  it('syncs a SecretSync through the pod, and the Secret follows a change in AWS', async () => {
    await kubectl('create', 'namespace', APP_NS);
    password = randomBytes(18).toString('base64url');
    const created = await secretsManager().send(
      new CreateSecretCommand({
        Name: 'prod/payments/db',
        SecretString: JSON.stringify({ username: 'payments', password }),
        Tags: [{ Key: 'secretsync.io/namespaces', Value: APP_NS }],
      }),
    );
    dbArn = created.ARN!;
    await node.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'SecretSync',
        metadata: { name: 'db', namespace: APP_NS },
        spec: {
          source: { secretId: 'prod/payments/db' },
          target: { name: 'db-creds', keys: [{ from: 'password', to: 'DB_PASSWORD' }] },
        },
      }),
    );
    await kubectl('wait', '-n', APP_NS, 'secretsync/db', '--for=condition=Ready', '--timeout=120s');
    await kubectl('wait', '-n', APP_NS, 'secretsync/db', '--for=condition=Synced', '--timeout=60s');
    expect(await secretSha(APP_NS, 'db-creds', 'DB_PASSWORD')).toBe(sha(password));

    password = randomBytes(18).toString('base64url');
    await secretsManager().send(
      new PutSecretValueCommand({
        SecretId: dbArn,
        SecretString: JSON.stringify({ username: 'payments', password }),
      }),
    );
    await until(
      'the Secret to follow',
      async () => (await secretSha(APP_NS, 'db-creds', 'DB_PASSWORD')) === sha(password),
      60_000,
    );
  });

  it('the metrics Service is scraped from a pod inside the cluster, endpoint by endpoint', async () => {
    // As Prometheus does: the Service's EndpointSlice gives the pods' addresses (no kube-proxy here).
    const slices = await json<{
      items: { endpoints: { addresses: string[] }[]; ports: { port: number }[] }[];
    }>('get', 'endpointslices', '-n', NS, '-l', `kubernetes.io/service-name=${RELEASE}-metrics`);
    const targets = slices.items.flatMap((s) =>
      s.endpoints.flatMap((e) => e.addresses.map((a) => `http://${a}:${s.ports[0]!.port}/metrics`)),
    );
    expect(targets).toHaveLength(2);
    const script = `const out = {};
      for (const url of ${JSON.stringify(targets)}) {
        const text = await (await fetch(url)).text();
        out[url] = text.split('\\n').filter((l) => /^secretsync_(leader|secretsyncs)[ {]/.test(l));
      }
      console.log(JSON.stringify(out));`;
    await node.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'scrape', namespace: 'default' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'scrape',
              image: IMAGES.app,
              imagePullPolicy: 'Never',
              command: ['node', '--input-type=module', '-e', script],
            },
          ],
        },
      }),
    );
    await until('the scrape pod to finish', async () => {
      const p = await json<Pod>('get', 'pod', 'scrape', '-n', 'default');
      if (p.status.phase === 'Failed') throw new Error(await kubectl('logs', 'scrape', '-n', 'default'));
      return p.status.phase === 'Succeeded';
    });
    const scraped = JSON.parse(await kubectl('logs', 'scrape', '-n', 'default')) as Record<string, string[]>;
    const leaders = Object.values(scraped).map((lines) =>
      lines.find((l) => l.startsWith('secretsync_leader')),
    );
    // One leader, one standby.
    expect(leaders.map((l) => l?.split(' ').pop()).sort()).toEqual(['0', '1']);
    await kubectl('delete', 'pod', 'scrape', '-n', 'default', '--wait=false');
  });

  it('a leader lost with its pod: another replica takes over within the lease, a change made meanwhile arrives', async () => {
    const pods = await controllerPods();
    const holder = await leaseHolder();
    const leader = pods.find((p) => p.metadata.name === holder)!;
    // As a node lost with the pod on it: the process stops at once and never releases the Lease
    // (SIGSTOP, so kubelet's SIGTERM finds nothing to answer it), the pod object goes.
    const pid = await controllerPid(leader);
    process.kill(pid, 'SIGSTOP');
    const t0 = Date.now();
    await kubectl(
      'delete',
      'pod',
      leader.metadata.name,
      '-n',
      NS,
      '--grace-period=0',
      '--force',
      '--wait=false',
    );
    password = randomBytes(18).toString('base64url');
    await secretsManager().send(
      new PutSecretValueCommand({
        SecretId: dbArn,
        SecretString: JSON.stringify({ username: 'payments', password }),
      }),
    );
    const next = await until(
      'another replica to take the Lease',
      async () => {
        const h = await leaseHolder();
        return h !== holder && h;
      },
      60_000,
    );
    const takeover = (Date.now() - t0) / 1000;
    figures.failoverSeconds = takeover;
    figures.failoverTo =
      next === pods.find((p) => p !== leader)?.metadata.name ? 'the standby' : 'the replacement pod';
    // The Lease protocol's bound: the lease duration, plus one retry period of the one taking over.
    expect(takeover).toBeLessThanOrEqual(LEASE_SECONDS + RETRY_SECONDS + 1);
    await until(
      'the change to arrive',
      async () => (await secretSha(APP_NS, 'db-creds', 'DB_PASSWORD')) === sha(password),
      60_000,
    );
    // The ReplicaSet replaced the pod.
    const now = await until('two pods Ready again', async () => {
      const p = await controllerPods();
      return p.length === 2 && p.every(ready) && p;
    });
    expect(now.map((p) => p.metadata.name)).not.toContain(leader.metadata.name);
    // The new leader works: a spec change is applied.
    await kubectl(
      'patch',
      'secretsync',
      'db',
      '-n',
      APP_NS,
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: {
          target: {
            keys: [
              { from: 'password', to: 'DB_PASSWORD' },
              { from: 'username', to: 'DB_USER' },
            ],
          },
        },
      }),
    );
    await until(
      'the new key',
      async () => (await secretSha(APP_NS, 'db-creds', 'DB_USER')) === sha('payments'),
      60_000,
    );
  });

  it('the PDB refuses to evict the last Ready replica', async () => {
    const pods = await controllerPods();
    const evict = (name: string) =>
      node.kubectl(
        ['create', '--raw', `/api/v1/namespaces/${NS}/pods/${name}/eviction`, '-f', '-'],
        JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: NS } }),
      );
    await until(
      'the disruption controller to allow one',
      async () => {
        const pdb = await json<{ status: { disruptionsAllowed?: number } }>('get', 'pdb', RELEASE, '-n', NS);
        return pdb.status.disruptionsAllowed === 1;
      },
      60_000,
    );
    await evict(pods[0]!.metadata.name);
    await expect(evict(pods[1]!.metadata.name)).rejects.toThrow(/disruption budget/);
    await until('the replacement Ready', async () => {
      const p = await controllerPods();
      return p.length === 2 && p.every(ready) && p;
    });
  });

  it('helm upgrade with a changed value rolls the pods; the SecretSync stays Ready and nothing is re-provisioned', async () => {
    const before = (await controllerPods()).map((p) => p.metadata.name);
    const sync = await json<SecretSyncObject>('get', 'secretsync', 'db', '-n', APP_NS);
    const readySince = cond(sync, 'Ready')?.lastTransitionTime;
    node.testbed.frontDoor.resetCalls();
    // The 300 below are limited by AWS's rate limits otherwise; the memory limit stays the chart's.
    await helm([
      'upgrade',
      RELEASE,
      CHART,
      '-n',
      NS,
      '--reuse-values',
      '--set',
      'aws.rateLimits.iam=100,aws.rateLimits.lambda=100,aws.rateLimits.events=100,aws.rateLimits.logs=100,aws.rateLimits.eks=100',
      '--wait',
      '--timeout',
      '3m',
    ]);
    const after = await until('2 new pods Ready', async () => {
      const p = await controllerPods();
      return p.length === 2 && p.every(ready) && p.every((x) => !before.includes(x.metadata.name)) && p;
    });
    await until(
      'a Lease holder among the new pods',
      async () => {
        const holder = await leaseHolder();
        return after.some((p) => p.metadata.name === holder);
      },
      60_000,
    );
    const now = await json<SecretSyncObject>('get', 'secretsync', 'db', '-n', APP_NS);
    expect(cond(now, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: readySince });
    const mutating = node.testbed.frontDoor
      .calls()
      .filter((c) => /^(Create|Delete|Update|Put|Attach|Detach|Tag|Untag|Add|Remove)/.test(c.operation))
      .map((c) => `${c.service}.${c.operation}`);
    expect(mutating).toEqual([]);
  });

  it(`${MANY} SecretSyncs under the chart's memory limit: all Ready, no OOM kill`, async () => {
    const ns = 'many';
    await kubectl('create', 'namespace', ns);
    const sm = secretsManager();
    for (let i = 0; i < MANY; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, MANY - i) }, (_, j) =>
          sm.send(
            new CreateSecretCommand({
              Name: `many/app-${i + j}`,
              SecretString: JSON.stringify({ token: randomBytes(12).toString('hex') }),
              Tags: [{ Key: 'secretsync.io/namespaces', Value: ns }],
            }),
          ),
        ),
      );
    }
    const holder = await leaseHolder();
    const leader = (await controllerPods()).find((p) => p.metadata.name === holder)!;
    const pid = await controllerPid(leader);
    let peakRss = rssBytes(pid);
    const sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, rssBytes(pid));
      } catch {
        // exited: the checks below say why
      }
    }, 500);
    const t0 = Date.now();
    try {
      const manifest = Array.from({ length: MANY }, (_, i) => ({
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'SecretSync',
        metadata: { name: `app-${i}`, namespace: ns },
        spec: { source: { secretId: `many/app-${i}` }, target: { keys: [{ from: 'token', to: 'TOKEN' }] } },
      }));
      await node.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifest }),
      );
      await until(
        `${MANY} Ready and Synced`,
        async () => {
          const { items } = await json<{ items: SecretSyncObject[] }>('get', 'secretsyncs', '-n', ns);
          const done = items.filter(
            (s) => cond(s, 'Ready')?.status === 'True' && cond(s, 'Synced')?.status === 'True',
          );
          return done.length === MANY;
        },
        900_000,
      );
      figures[`ready${MANY}Seconds`] = (Date.now() - t0) / 1000;
    } finally {
      clearInterval(sampler);
    }
    figures[`peakRssMiB${MANY}`] = Math.round(peakRss / 1024 / 102.4) / 10;
    const pods = await controllerPods();
    for (const p of pods) {
      const cs = p.status.containerStatuses![0]!;
      expect(cs.lastState?.terminated?.reason ?? 'none', p.metadata.name).not.toBe('OOMKilled');
    }
    // The same process did the work: no restart of the leader.
    expect(await controllerPid(pods.find((p) => p.metadata.name === holder)!)).toBe(pid);
    expect(peakRss).toBeLessThan(384 * 1024 * 1024);
  });

  it('delete the SecretSyncs, helm uninstall: nothing of ours is left in AWS or the cluster', async () => {
    const t0 = Date.now();
    await kubectl('delete', 'secretsyncs', '--all', '--all-namespaces', '--timeout=600s');
    figures[`delete${MANY + 1}Seconds`] = (Date.now() - t0) / 1000;
    await helm(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '2m']);
    const cfg = aws();
    const iam = new IAMClient({ ...cfg, region: 'us-east-1' });
    const roles = (await iam.send(new ListRolesCommand({ PathPrefix: '/secretsync/' }))).Roles ?? [];
    const functions = (await new LambdaClient(cfg).send(new ListFunctionsCommand({}))).Functions ?? [];
    const rules =
      (await new EventBridgeClient(cfg).send(new ListRulesCommand({ NamePrefix: 'secretsync' }))).Rules ?? [];
    const logGroups =
      (
        await new CloudWatchLogsClient(cfg).send(
          new DescribeLogGroupsCommand({ logGroupNamePrefix: '/aws/lambda/secretsync' }),
        )
      ).logGroups ?? [];
    const entries =
      (
        await new EKSClient(cfg).send(
          new ListAccessEntriesCommand({ clusterName: node.testbed.info.clusterName }),
        )
      ).accessEntries ?? [];
    expect({
      roles: roles.map((r) => r.RoleName),
      functions: functions.map((f) => f.FunctionName),
      rules: rules.map((r) => r.Name),
      logGroups: logGroups.map((g) => g.logGroupName),
      accessEntries: entries.filter((e) => e.includes('/secretsync/')),
    }).toEqual({ roles: [], functions: [], rules: [], logGroups: [], accessEntries: [] });

    // In the cluster: no object of the release, no Role or RoleBinding the controller made.
    await until('the controller pods gone', async () => (await controllerPods()).length === 0, 60_000);
    const left = await kubectl(
      'get',
      'deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets,clusterroles,clusterrolebindings',
      '-A',
      '-l',
      'app.kubernetes.io/managed-by in (secretsync,Helm)',
      '-o',
      'name',
    );
    expect(left.trim()).toBe('');
    // What stays by design: the CRDs (Helm never deletes CRDs: that would delete every SecretSync) and
    // the Lease, the leader-election record (released: no holder).
    // The last leader releases it on SIGTERM — unless helm has already removed the Lease Role, as it
    // removes everything at once; then it still names a pod that is gone. Either way no one holds it.
    const lease = await json<{ spec: { holderIdentity?: string } }>('get', 'lease', LEASE, '-n', NS);
    const holder = lease.spec.holderIdentity ?? '';
    figures.leaseAfterUninstall = holder ? `names ${holder}, gone` : 'released';
    expect((await controllerPods()).map((p) => p.metadata.name)).not.toContain(holder);
    figures.leftByDesign = (
      await kubectl('get', 'crd,lease', '-A', '-o', 'name', '--field-selector', `metadata.name!=${NODE_NAME}`)
    )
      .split('\n')
      .filter((l) => /secretsync/.test(l))
      .join(', ');
  });

  it('the node stops and leaves the machine as it found it', async () => {
    stopped = true;
    const left = await node.stop();
    expect(left).toEqual([]);
  }, 180_000);
});
