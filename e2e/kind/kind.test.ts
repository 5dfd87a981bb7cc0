import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { binaries } from '../testbed/paths.ts';
import {
  CHART_DIR,
  dataMatches,
  helmInstallArgs,
  missingTools,
  type Options,
  parseOptions,
  RELEASE,
  REPO_ROOT,
  requiredTools,
  splitImage,
} from './run.ts';

// The script needs Docker, kind, kubectl, helm and AWS (or LocalStack), so the run itself is opt-in;
// everything below the first describe runs anywhere and checks what can be checked without them.
const SCRIPT = fileURLToPath(new URL('./run.ts', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'secretsync-kind-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function script(args: string[], env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], {
    cwd: REPO_ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A directory of stand-ins for `tools` that record being run (they must not be, before the checks pass). */
function stubTools(tools: string[]): { dir: string; ran: () => string[] } {
  const dir = mkdtempSync(join(scratch, 'bin-'));
  const log = join(dir, 'ran');
  for (const t of tools) {
    writeFileSync(join(dir, t), `#!/bin/sh\necho ${t} >> '${log}'\nexit 0\n`);
    chmodSync(join(dir, t), 0o755);
  }
  return { dir, ran: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
}

// Only what the script needs to start: no AWS settings leak in from the developer's shell.
const bareEnv = (path: string): NodeJS.ProcessEnv => ({ PATH: path, HOME: scratch });

const dockerEngine = spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
const optedIn = process.env.SECRETSYNC_KIND_E2E === '1';
const skipReasons = [
  ...(dockerEngine ? [] : ['no Docker engine on this machine']),
  ...(optedIn ? [] : ['SECRETSYNC_KIND_E2E is not 1']),
];
const e2eTitle =
  skipReasons.length === 0
    ? 'kind e2e (e2e/kind/run.ts against a real cluster)'
    : `kind e2e (skipped: ${skipReasons.join('; ')}; set SECRETSYNC_KIND_E2E=1 with Docker, kind, kubectl, helm and AWS credentials or LocalStack to run, see e2e/kind/README.md)`;

// The default reporter lists no skipped test by name: say why once, where the run's output shows it.
if (skipReasons.length > 0) console.info(e2eTitle);

describe(e2eTitle, () => {
  it.skipIf(skipReasons.length > 0)(
    'builds, installs, syncs, follows a change and cleans up (SECRETSYNC_KIND_E2E_ARGS are passed on)',
    () => {
      const extra = (process.env.SECRETSYNC_KIND_E2E_ARGS ?? '').split(/\s+/).filter(Boolean);
      const r = spawnSync(process.execPath, [SCRIPT, ...extra], { cwd: REPO_ROOT, stdio: 'inherit' });
      expect(r.status, 'e2e/kind/run.ts exit status (its output above says which step failed)').toBe(0);
    },
    60 * 60_000,
  );
});

describe('e2e/kind/run.ts without Docker', () => {
  it('--help prints the usage and exits 0', () => {
    const r = script(['--help'], bareEnv(''));
    expect(r.status).toBe(0);
    for (const flag of ['--context', '--kubeconfig', '--eks-cluster', '--keep', '--skip-sync', '--no-build'])
      expect(r.stdout).toContain(flag);
  });

  it('names docker when only docker is missing, and runs no tool before saying so', () => {
    const stubs = stubTools(['kind', 'kubectl', 'helm']);
    const r = script([], bareEnv(stubs.dir));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/missing tool: docker\b/);
    expect(r.stderr).not.toMatch(/missing tool: (kind|kubectl|helm)\b/);
    expect(stubs.ran()).toEqual([]);
  });

  it('names every missing tool at once', () => {
    const r = script([], bareEnv(join(scratch, 'no-such-dir')));
    expect(r.status).toBe(2);
    for (const t of ['docker', 'kind', 'kubectl', 'helm']) expect(r.stderr).toContain(`missing tool: ${t}`);
  });

  it('refuses kind mode without an AWS endpoint: a kind cluster is not EKS', () => {
    const stubs = stubTools(['docker', 'kind', 'kubectl', 'helm']);
    const r = script([], bareEnv(stubs.dir));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('AWS_ENDPOINT_URL');
    expect(r.stderr).not.toContain('missing tool');
    expect(stubs.ran()).toEqual([]);
  });

  it('rejects unknown options and an incomplete existing-cluster run with exit 2', () => {
    const bogus = script(['--bogus'], bareEnv(''));
    expect(bogus.status).toBe(2);
    expect(bogus.stderr).toContain("'--bogus'");
    const eks = script(['--context', 'arn:aws:eks:eu-west-1:123456789012:cluster/c1'], bareEnv(''));
    expect(eks.status).toBe(2);
    for (const what of ['--eks-cluster', '--region', '--image', '--irsa-role-arn'])
      expect(eks.stderr).toContain(what);
  });
});

const kindOptions = (): Options => parseOptions([], { AWS_ENDPOINT_URL: 'http://localhost:4566' });
const eksOptions = (): Options =>
  parseOptions(
    [
      '--context',
      'prod',
      '--eks-cluster',
      'c1',
      '--region',
      'eu-west-1',
      '--image',
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/secretsync:e2e',
      '--irsa-role-arn',
      'arn:aws:iam::123456789012:role/secretsync-controller',
    ],
    {},
  );

describe('options', () => {
  it('kind mode: the EKS cluster name is the kind cluster name, region from the environment or us-east-1', () => {
    const o = kindOptions();
    expect(o).toMatchObject({ mode: 'kind', kindCluster: 'secretsync-e2e', eksCluster: 'secretsync-e2e' });
    expect(o.region).toBe('us-east-1');
    expect(parseOptions([], { AWS_REGION: 'eu-west-1' }).region).toBe('eu-west-1');
    expect(requiredTools(o)).toEqual(['docker', 'kind', 'kubectl', 'helm']);
  });

  it('existing cluster: no kind; docker only to build', () => {
    const o = eksOptions();
    expect(o.mode).toBe('existing');
    expect(requiredTools(o)).toEqual(['docker', 'kubectl', 'helm']);
    expect(requiredTools({ ...o, build: false })).toEqual(['kubectl', 'helm']);
    expect(() =>
      parseOptions(['--context', 'x', '--eks-cluster', 'c1', '--image', 'secretsync:e2e'], {}),
    ).toThrow(/no registry/);
    expect(() => parseOptions(['--irsa-role-arn', 'arn:aws:iam::123456789012:role/r'], {})).toThrow(
      /existing EKS cluster/,
    );
  });

  it('finds tools on PATH only when executable', () => {
    const stubs = stubTools(['kubectl']);
    writeFileSync(join(stubs.dir, 'helm'), 'not executable');
    expect(missingTools(['kubectl', 'helm', 'kind'], stubs.dir)).toEqual(['helm', 'kind']);
  });

  it('splits image references into the chart values', () => {
    expect(splitImage('secretsync:e2e')).toEqual({ repository: 'secretsync', tag: 'e2e' });
    expect(splitImage('localhost:5000/team/secretsync:1.2')).toEqual({
      repository: 'localhost:5000/team/secretsync',
      tag: '1.2',
    });
    expect(splitImage('localhost:5000/secretsync')).toEqual({ repository: 'localhost:5000/secretsync' });
    expect(splitImage(`r.io/s@sha256:${'a'.repeat(64)}`)).toEqual({
      repository: 'r.io/s',
      digest: `sha256:${'a'.repeat(64)}`,
    });
  });

  it('compares Secret data with the expected values by hash, keys exactly', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const want = { DB_USER: 'u', DB_PASSWORD: 'p1' };
    expect(dataMatches({ DB_USER: b64('u'), DB_PASSWORD: b64('p1') }, want)).toBe(true);
    expect(dataMatches({ DB_USER: b64('u'), DB_PASSWORD: b64('p2') }, want)).toBe(false);
    expect(dataMatches({ DB_USER: b64('u'), DB_PASSWORD: b64('p1'), X: b64('') }, want)).toBe(false);
    expect(dataMatches(undefined, want)).toBe(false);
  });
});

/** `--set`/`--set-string` keys of an argument list. */
function setKeys(args: string[]): string[] {
  return args.flatMap((a, i) =>
    args[i - 1] === '--set' || args[i - 1] === '--set-string' ? [a.slice(0, a.indexOf('='))] : [],
  );
}

type Schema = { properties?: Record<string, Schema>; items?: Schema; additionalProperties?: unknown };

/** Whether values.schema.json admits a helm --set key path such as extraEnv[0].valueFrom.secretKeyRef.name. */
function schemaAdmits(schema: Schema, key: string): boolean {
  let node: Schema | undefined = schema;
  for (const part of key.split('.')) {
    const m = /^([^[]+)((?:\[\d+\])*)$/.exec(part);
    if (!m || !node) return false;
    const [, name, indexes] = m;
    const next: Schema | undefined = node.properties?.[name!];
    // Objects without declared properties (extraEnv items, annotations) take any key.
    if (next === undefined) return node.properties === undefined || node.additionalProperties !== false;
    node = next;
    for (let n = (indexes ?? '').split('[').length - 1; n > 0; n--) node = node?.items;
  }
  return true;
}

describe('helm arguments', () => {
  const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Schema;
  const kindCtx = {
    podAwsEndpoint: 'http://localstack-main:4566',
    credentialsSecret: { name: 'secretsync-e2e-aws', sessionToken: true },
  };

  it('every value the script sets exists in values.schema.json', () => {
    const keys = [
      ...setKeys(helmInstallArgs(kindOptions(), kindCtx)),
      ...setKeys(helmInstallArgs(eksOptions())),
    ];
    expect(keys).toContain('clusterName');
    expect(keys.filter((k) => !schemaAdmits(schema, k))).toEqual([]);
    expect(schemaAdmits(schema, 'lambda.memory')).toBe(false);
  });

  it('existing cluster: IRSA role, the pushed image, no emulator settings', () => {
    const args = helmInstallArgs(eksOptions());
    expect(args).toContain('serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/secretsync-controller');
    expect(args).toContain('image.repository=123456789012.dkr.ecr.eu-west-1.amazonaws.com/secretsync');
    expect(args.join(' ')).not.toMatch(/extraEnv|pullPolicy=Never|AWS_ENDPOINT_URL/);
  });

  const helm = (() => {
    try {
      return binaries.helm();
    } catch {
      return undefined;
    }
  })();
  it.skipIf(helm === undefined)(
    'kind mode renders with the chart: endpoint, credentials from a Secret, local image, watched namespaces (needs helm: make testbed-deps)',
    () => {
      const install = helmInstallArgs(kindOptions(), kindCtx);
      // `helm template` takes the same values; drop what only an install understands.
      const values = install.slice(4).filter((a, i, all) => {
        if (['--wait', '--create-namespace', '--timeout'].includes(a)) return false;
        return all[i - 1] !== '--timeout';
      });
      const home = mkdtempSync(join(scratch, 'helm-'));
      const r = spawnSync(helm!, ['template', RELEASE, CHART_DIR, ...values], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          HELM_CACHE_HOME: join(home, 'cache'),
          HELM_CONFIG_HOME: join(home, 'config'),
          HELM_DATA_HOME: join(home, 'data'),
        },
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, unknown>);
      type Container = {
        image: string;
        imagePullPolicy: string;
        env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
      };
      const deployment = docs.find((d) => d?.kind === 'Deployment') as
        | { spec: { template: { spec: { containers: Container[] } } } }
        | undefined;
      const c = deployment?.spec.template.spec.containers[0];
      expect(c?.image).toBe('secretsync:e2e');
      expect(c?.imagePullPolicy).toBe('Never');
      const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e]));
      expect(env.SECRETSYNC_CLUSTER_NAME?.value).toBe('secretsync-e2e');
      expect(env.AWS_REGION?.value).toBe('us-east-1');
      expect(env.AWS_ENDPOINT_URL?.value).toBe('http://localstack-main:4566');
      expect(env.SECRETSYNC_NAMESPACES?.value).toBe('secretsync-e2e-app,secretsync-e2e-app-denied');
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
        expect(env[k]?.valueFrom?.secretKeyRef).toEqual({ name: 'secretsync-e2e-aws', key: k });
      expect(['arm64', 'x86_64']).toContain(env.SECRETSYNC_LAMBDA_ARCHITECTURE?.value);
      // Per-namespace RBAC in exactly the two test namespaces (the chart's watchNamespaces path).
      const roleNamespaces = docs
        .filter((d) => d?.kind === 'RoleBinding')
        .map((d) => (d.metadata as { namespace: string }).namespace)
        .sort();
      expect(roleNamespaces).toEqual(
        expect.arrayContaining(['secretsync-e2e-app', 'secretsync-e2e-app-denied']),
      );
    },
  );
});
