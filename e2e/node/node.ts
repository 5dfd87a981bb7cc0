import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestbed, type Testbed, type TestbedOptions } from '../testbed/index.ts';
import { writeKubeconfig } from '../testbed/kube.ts';
import { binaries, cacheDir, K8S_VERSION } from '../testbed/paths.ts';
import { clientExt, issue, serverExt } from '../testbed/pki.ts';
import { freePort, startProcess, waitFor } from '../testbed/process.ts';
import {
  createCgroup,
  type HostSnapshot,
  hostDifferences,
  killCgroup,
  removeCgroup,
  restoreHost,
  run,
  snapshotHost,
} from './host.ts';

/**
 * A real Kubernetes node beside the test bed's API server (make test-node): containerd + runc and the
 * CNI bridge plugin from Debian's packages, kubelet, kube-scheduler and kube-controller-manager built
 * like kube-apiserver (build-binaries.sh --node), images imported from the archives images.sh builds.
 *
 * The node's address is a bridge it creates itself, with no uplink and no IP forwarding: the API
 * server and the AWS front door listen there (startTestbed's `host`), pods sit on the same bridge and
 * reach them directly. There is no kube-proxy, so Service IPs do not route; the controller is pointed
 * at the API server with KUBERNETES_SERVICE_HOST/PORT (see README, "The test bed").
 *
 * What it leaves: nothing. host.ts records the machine before and undoes every mount, interface,
 * iptables rule, cgroup and fixed path after; processes are stopped by PID. No kernel setting is
 * changed: kubelet insists on six of them (protectKernelDefaults), so it runs in its own mount
 * namespace where the /proc/sys files that differ are bind-mounted over by files holding its values.
 */

export const NODE_NAME = 'secretsync-node';
/** Our bridge: the node's address, the API server's and the front door's; pods get .10 and up. */
export const BRIDGE = { name: 'ssync0', address: '10.244.0.1', prefixLength: 24 } as const;
const POD_SUBNET = '10.244.0.0/24';
const CGROUP_ROOT = 'secretsync-node';
export const IMAGES = {
  pause: 'secretsync.local/pause:3.10',
  app: 'secretsync.local/secretsync:test',
} as const;
const imageArchive = (name: 'pause' | 'secretsync') => join(cacheDir(), 'node', 'images', `${name}.tar`);

/** kubelet's kernel settings (protectKernelDefaults); the machine's are left as they are. */
const KUBELET_SYSCTLS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

const exec = promisify(execFile);
const nodeBinary = (name: string) => join(cacheDir(), 'bin', `${name}-${K8S_VERSION}`);

export interface RealNode {
  testbed: Testbed;
  /** `ctr` against the node's containerd, in the k8s.io namespace. */
  ctr(args: string[]): Promise<string>;
  /** kubectl as the cluster admin. */
  kubectl(args: string[], input?: string): Promise<string>;
  logsDir: string;
  /**
   * Stops everything and undoes every change to the machine; answers what still differs (nothing).
   * keepLogs: the test bed's directory (logs included) stays.
   */
  stop(opts?: { keepLogs?: boolean }): Promise<string[]>;
}

function containerdConfig(dir: string, socket: string): string {
  const path = join(dir, 'containerd.toml');
  writeFileSync(
    path,
    `version = 2
root = "${join(dir, 'root')}"
state = "${join(dir, 'state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${IMAGES.pause}"
  # Even root cannot lower oom_score_adj here (no CAP_SYS_RESOURCE in the bounding set).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${join(dir, 'net.d')}"
`,
  );
  return path;
}

/** The bridge plugin on our bridge: no gateway, no masquerading, so no forwarding is needed or enabled. */
function cniConfig(dir: string): void {
  const netd = join(dir, 'net.d');
  mkdirSync(netd, { recursive: true });
  writeFileSync(
    join(netd, '10-secretsync.conflist'),
    JSON.stringify({
      cniVersion: '0.4.0',
      name: 'secretsync-node',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE.name,
          isGateway: false,
          ipMasq: false,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_SUBNET, rangeStart: '10.244.0.10', rangeEnd: '10.244.0.250' }]],
            dataDir: join(dir, 'ipam'),
          },
        },
        { type: 'loopback' },
      ],
    }),
  );
}

function kubeletConfig(opts: {
  dir: string;
  caPath: string;
  socket: string;
  port: number;
  healthzPort: number;
  tls: { crt: string; key: string };
}): string {
  const path = join(opts.dir, 'kubelet.yaml');
  writeFileSync(
    path,
    `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (hybrid): kubelet 1.35 only warns with this.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /${CGROUP_ROOT}
protectKernelDefaults: true
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://${opts.socket}
address: ${BRIDGE.address}
port: ${opts.port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${opts.healthzPort}
tlsCertFile: ${opts.tls.crt}
tlsPrivateKeyFile: ${opts.tls.key}
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: ${opts.caPath} }
authorization: { mode: Webhook }
podLogsDir: ${join(opts.dir, 'pod-logs')}
staticPodPath: ""
failSwapOn: false
serializeImagePulls: false
# A shared CI disk: evict only when it is really full.
evictionHard: { memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2% }
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
`,
  );
  return path;
}

/** The /proc/sys files kubelet wants different, each with a file holding kubelet's value. */
function sysctlOverrides(dir: string): [string, string][] {
  const out: [string, string][] = [];
  mkdirSync(join(dir, 'sysctl'), { recursive: true });
  for (const [name, value] of Object.entries(KUBELET_SYSCTLS)) {
    const target = `/proc/sys/${name}`;
    if (readFileSync(target, 'utf8').trim() === value) continue;
    const file = join(dir, 'sysctl', name.replace(/\//g, '.'));
    writeFileSync(file, `${value}\n`);
    out.push([file, target]);
  }
  return out;
}

/**
 * The machine as found, the bridge, the test bed listening on it, and the node. Stop with
 * `node.stop()`: it stops the test bed too and answers what still differs on the machine.
 */
export async function startNodeTestbed(opts: Omit<TestbedOptions, 'host'> = {}): Promise<RealNode> {
  for (const tool of ['containerd', 'runc', 'ctr', 'unshare', 'ip', 'iptables'])
    if (!existsSync(`/usr/bin/${tool}`) && !existsSync(`/usr/sbin/${tool}`))
      throw new Error(`test bed node: ${tool} not found; run \`make test-node\`, which installs it`);
  for (const b of ['kubelet', 'kube-scheduler', 'kube-controller-manager'])
    if (!existsSync(nodeBinary(b))) throw new Error(`test bed node: ${b} not built; run \`make test-node\``);
  if (process.getuid?.() !== 0) throw new Error('test bed node: runs as root (containerd, kubelet)');

  const before: HostSnapshot = snapshotHost();
  if (before.links.has(BRIDGE.name))
    throw new Error(`test bed node: interface ${BRIDGE.name} exists already (another node running?)`);
  const stoppers: (() => Promise<void>)[] = [];
  let keepLogs = false;
  const unwind = async (o: { keepLogs?: boolean } = {}): Promise<string[]> => {
    keepLogs = o.keepLogs ?? false;
    for (const s of stoppers.reverse()) await s().catch(() => {});
    stoppers.length = 0;
    killCgroup(CGROUP_ROOT);
    restoreHost(before);
    removeCgroup(CGROUP_ROOT);
    return hostDifferences(before);
  };
  try {
    run('ip', ['link', 'add', BRIDGE.name, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${BRIDGE.address}/${BRIDGE.prefixLength}`, 'dev', BRIDGE.name]);
    run('ip', ['link', 'set', BRIDGE.name, 'up']);

    const testbed = await startTestbed({ ...opts, host: BRIDGE.address });
    stoppers.push(() => testbed.stop({ keepLogs }));
    const { pki, info } = testbed;
    const dir = join(info.dir, 'node');
    const logsDir = join(info.logsDir, 'node');
    mkdirSync(dir, { recursive: true });
    mkdirSync(logsDir, { recursive: true });
    const ca = { caCert: pki.caCert, caKey: pki.caKey };
    const client = (name: string, subject: string) => issue(pki.dir, name, subject, clientExt, ca);
    const kcfg = (name: string, cert: { crt: string; key: string }) =>
      writeKubeconfig(join(dir, `${name}.kubeconfig`), info.apiUrl, pki, cert);

    const kubectl = async (args: string[], input?: string): Promise<string> => {
      const p = exec(binaries.kubectl(), ['--kubeconfig', info.kubeconfigPath, ...args], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      if (input !== undefined) {
        p.child.stdin?.end(input);
      }
      try {
        return (await p).stdout;
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`kubectl ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
      }
    };

    // containerd, with the images imported.
    const containerdDir = join(dir, 'containerd');
    mkdirSync(containerdDir, { recursive: true });
    const socket = join(containerdDir, 'containerd.sock');
    cniConfig(containerdDir);
    const containerd = startProcess(
      'containerd',
      'containerd',
      ['--config', containerdConfig(containerdDir, socket)],
      {
        logsDir,
      },
    );
    const ctr = async (args: string[]) =>
      (await exec('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { encoding: 'utf8' }))
        .stdout;
    stoppers.push(async () => {
      // Shims outlive containerd: stop each by its PID (their command line names our socket).
      const shims = shimPids(socket);
      await containerd.stop();
      for (const pid of shimPids(socket).concat(shims)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
    await waitFor('containerd', async () => (await ctr(['version'])).includes('Server'), {
      proc: containerd,
      timeoutMs: 30_000,
    });
    for (const archive of ['pause', 'secretsync'] as const) {
      if (!existsSync(imageArchive(archive)))
        throw new Error(
          `test bed node: ${imageArchive(archive)} missing; run \`make test-node\` (e2e/node/images.sh)`,
        );
      await ctr(['images', 'import', imageArchive(archive)]);
    }

    // kubelet, in its own mount namespace (its kernel settings), its root dir shared back so that
    // containerd sees the volumes it mounts.
    const kubeletDir = join(dir, 'kubelet');
    mkdirSync(kubeletDir, { recursive: true });
    run('mount', ['--bind', kubeletDir, kubeletDir]);
    run('mount', ['--make-shared', kubeletDir]);
    const serving = issue(
      pki.dir,
      'kubelet-serving',
      `/CN=${NODE_NAME}`,
      serverExt([NODE_NAME], [BRIDGE.address]),
      ca,
    );
    const kubeletArgs = [
      `--config=${kubeletConfig({ dir, caPath: pki.caCert, socket, port: await freePort(), healthzPort: await freePort(), tls: serving })}`,
      `--kubeconfig=${kcfg('kubelet', client('kubelet', `/O=system:nodes/CN=system:node:${NODE_NAME}`))}`,
      `--root-dir=${kubeletDir}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${BRIDGE.address}`,
      '--v=1',
    ];
    createCgroup(CGROUP_ROOT);
    const binds = sysctlOverrides(dir)
      .map(([file, target]) => `mount --bind '${file}' '${target}'`)
      .join(' && ');
    const kubelet = startProcess(
      'kubelet',
      'unshare',
      [
        '--mount',
        '--propagation',
        'unchanged',
        '--',
        'sh',
        '-c',
        `${binds ? `${binds} && ` : ''}exec "$0" "$@"`,
        nodeBinary('kubelet'),
        ...kubeletArgs,
      ],
      { logsDir },
    );
    stoppers.push(async () => {
      // Pods first, while kubelet runs: it stops their sandboxes, which releases their network.
      await kubectl([
        'delete',
        'pods',
        '--all',
        '--all-namespaces',
        '--grace-period=0',
        '--force',
        '--wait=false',
      ]).catch(() => '');
      await waitFor(
        'the pods to go',
        async () => (await ctr(['tasks', 'ls', '-q']).catch(() => '')).trim() === '',
        { timeoutMs: 30_000 },
      ).catch(() => {});
      await kubelet.stop();
    });

    const scheduler = startProcess(
      'kube-scheduler',
      nodeBinary('kube-scheduler'),
      [
        `--kubeconfig=${kcfg('scheduler', client('scheduler', '/CN=system:kube-scheduler'))}`,
        `--authentication-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
        `--authorization-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort()}`,
        '--v=1',
      ],
      { logsDir },
    );
    const cm = kcfg('controller-manager', client('controller-manager', '/CN=system:kube-controller-manager'));
    const controllerManager = startProcess(
      'kube-controller-manager',
      nodeBinary('kube-controller-manager'),
      [
        `--kubeconfig=${cm}`,
        `--authentication-kubeconfig=${cm}`,
        `--authorization-kubeconfig=${cm}`,
        '--use-service-account-credentials',
        `--root-ca-file=${pki.caCert}`,
        `--service-account-private-key-file=${pki.saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort()}`,
        '--v=1',
      ],
      { logsDir },
    );
    // Stopped before kubelet (stoppers run in reverse): nothing starts new pods during teardown.
    stoppers.push(async () => {
      await controllerManager.stop();
      await scheduler.stop();
    });

    await waitFor(
      `node ${NODE_NAME} Ready`,
      async () => {
        const node = JSON.parse(
          await kubectl(['get', 'node', NODE_NAME, '-o', 'json']).catch(() => '{}'),
        ) as {
          status?: { conditions?: { type: string; status: string }[] };
        };
        return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      },
      { proc: kubelet, timeoutMs: 120_000 },
    );
    // Projected service-account tokens need the CA bundle the controller-manager publishes.
    await waitFor('kube-root-ca.crt', async () => {
      await kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', 'default']);
      return true;
    });

    return { testbed, ctr, kubectl, logsDir, stop: unwind };
  } catch (err) {
    const left = await unwind({ keepLogs: true });
    if (left.length) process.stderr.write(`[node] left on the machine: ${left.join('; ')}\n`);
    throw err;
  }
}

function shimPids(socket: string): number[] {
  const pids: number[] = [];
  for (const line of run('ps', ['-eo', 'pid=,args=']).split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && m[2]!.includes('containerd-shim') && m[2]!.includes(socket)) pids.push(Number(m[1]));
  }
  return pids;
}
