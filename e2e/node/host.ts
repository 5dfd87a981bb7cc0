import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What a real node changes on the machine, recorded before it starts and undone after it stops, so
 * that the machine is left as it was found: mounts (kubelet's volumes, containerd's overlays, network
 * namespaces), iptables rules and chains (kubelet's, the CNI plugins'), network interfaces (our bridge,
 * the pods' veths), cgroups, and the paths kubelet, containerd and the CNI plugins write regardless of
 * their configuration. No kernel setting is ever changed (node.ts gives kubelet its own view of them).
 */

export const run = (cmd: string, args: string[], input?: string): string =>
  execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(input === undefined ? {} : { input }),
  });

const tryRun = (cmd: string, args: string[]): boolean => {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
};

/** Mount points, in mount order. */
const mountPoints = (): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\040/g, ' '));

const links = (): string[] =>
  (JSON.parse(run('ip', ['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname);

const IPTABLES = ['iptables', 'ip6tables'] as const;
const TABLES = ['filter', 'nat', 'mangle', 'raw'] as const;
const rules = (bin: string, table: string): string[] => {
  try {
    return run(bin, ['-w', '-t', table, '-S']).split('\n').filter(Boolean);
  } catch {
    return []; // table not there (ip6tables without IPv6)
  }
};

/** iptables -S output split as the shell would (comments are double-quoted). */
export function words(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!,
  );
}

/** Paths the node's programs write whatever their configuration says; removed if they were not there. */
export const FIXED_PATHS = [
  '/run/containerd',
  '/var/lib/cni',
  '/run/netns',
  '/var/run/netns',
  '/var/log/containers',
  '/var/log/pods',
  '/var/lib/kubelet',
  '/var/lib/containerd',
  '/run/secrets/kubernetes.io',
];

/** The cgroup controllers' mount points (cgroup v1 hierarchies and the v2 one). */
const cgroupRoots = (): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4]!);

export interface HostSnapshot {
  mounts: Set<string>;
  links: Set<string>;
  iptables: Map<string, string[]>;
  paths: Set<string>;
}

export function snapshotHost(): HostSnapshot {
  const iptables = new Map<string, string[]>();
  for (const bin of IPTABLES) for (const t of TABLES) iptables.set(`${bin} ${t}`, rules(bin, t));
  return {
    mounts: new Set(mountPoints()),
    links: new Set(links()),
    iptables,
    paths: new Set(FIXED_PATHS.filter((p) => existsSync(p))),
  };
}

/** A cgroup in every hierarchy (kubelet's cgroupRoot must exist); cpuset's inherits its parent's CPUs. */
export function createCgroup(relative: string): void {
  for (const root of cgroupRoots()) {
    const dir = join(root, relative);
    mkdirSync(dir, { recursive: true });
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = join(root, f);
      if (existsSync(parent) && readFileSync(join(dir, f), 'utf8').trim() === '')
        writeFileSync(join(dir, f), readFileSync(parent, 'utf8'));
    }
  }
}

/** Every process in a cgroup subtree (any hierarchy), killed with SIGKILL. */
export function killCgroup(relative: string): number {
  let killed = 0;
  for (const root of cgroupRoots()) {
    const walk = (dir: string) => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
      const procs = join(dir, 'cgroup.procs');
      if (!existsSync(procs)) return;
      for (const pid of readFileSync(procs, 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
          killed++;
        } catch {
          // gone already
        }
      }
    };
    walk(join(root, relative));
  }
  return killed;
}

/** Removes a cgroup subtree (deepest first) in every hierarchy; its processes must be gone. */
export function removeCgroup(relative: string): void {
  for (const root of cgroupRoots()) {
    const rm = (dir: string) => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(join(dir, e.name));
      for (let i = 0; i < 20; i++) {
        try {
          rmdirSync(dir);
          return;
        } catch {
          execFileSync('sleep', ['0.1']); // exiting processes leave the cgroup a moment later
        }
      }
    };
    rm(join(root, relative));
  }
}

/**
 * Undoes what happened since `before`: new mounts unmounted (newest first), new interfaces deleted,
 * new iptables rules deleted and new chains removed, the fixed paths removed when they were not
 * there. Returns what it undid, for the log.
 */
export function restoreHost(before: HostSnapshot): string[] {
  const undone: string[] = [];
  for (const m of mountPoints().reverse()) {
    if (before.mounts.has(m)) continue;
    if (tryRun('umount', [m]) || tryRun('umount', ['-l', m])) undone.push(`umount ${m}`);
  }
  for (const l of links()) {
    if (before.links.has(l)) continue;
    if (tryRun('ip', ['link', 'delete', l])) undone.push(`ip link delete ${l}`);
  }
  for (const [key, was] of before.iptables) {
    const [bin, table] = key.split(' ') as [string, string];
    const had = new Set(was);
    const now = rules(bin, table).filter((r) => !had.has(r));
    // Rules first (-A → -D), then the chains they jumped to (-N → -X).
    for (const r of now.filter((r) => r.startsWith('-A '))) {
      if (tryRun(bin, ['-w', '-t', table, '-D', ...words(r.slice(3))]))
        undone.push(`${bin} -t ${table} -D ${r.slice(3)}`);
    }
    for (const r of now.filter((r) => r.startsWith('-N '))) {
      const chain = r.slice(3);
      tryRun(bin, ['-w', '-t', table, '-F', chain]);
      if (tryRun(bin, ['-w', '-t', table, '-X', chain])) undone.push(`${bin} -t ${table} -X ${chain}`);
    }
  }
  for (const p of FIXED_PATHS) {
    if (before.paths.has(p) || !existsSync(p)) continue;
    rmSync(p, { recursive: true, force: true });
    undone.push(`rm -r ${p}`);
  }
  return undone;
}

/** What still differs from `before` (after restoreHost: should be nothing). */
export function hostDifferences(before: HostSnapshot): string[] {
  const after = snapshotHost();
  const diff: string[] = [];
  for (const m of after.mounts) if (!before.mounts.has(m)) diff.push(`mount ${m}`);
  for (const l of after.links) if (!before.links.has(l)) diff.push(`interface ${l}`);
  for (const [key, now] of after.iptables) {
    const was = new Set(before.iptables.get(key));
    for (const r of now) if (!was.has(r)) diff.push(`${key}: ${r}`);
  }
  for (const p of after.paths) if (!before.paths.has(p)) diff.push(`path ${p}`);
  return diff;
}
