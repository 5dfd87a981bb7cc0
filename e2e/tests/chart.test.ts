import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  type V1Deployment,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadControllerConfig } from '../../src/controller/config.ts';
import { type RunningController, startController } from '../../src/controller/controller.ts';
import { binaries } from '../testbed/paths.ts';
import { auditEvents } from './controller-helpers.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  secretData,
  waitReady,
  ZIP,
} from './controller-support.ts';
import {
  adminKubeConfig,
  bed,
  core,
  customObjects,
  freshNamespace,
  runTool,
  tokenKubeConfig,
} from './support.ts';

/**
 * The Helm chart against the test bed's real kube-apiserver: lint and schema, every rendered
 * object accepted by a server-side dry run, and an installed release's ServiceAccount running the
 * controller (in this process, from the Deployment's own environment) through a whole
 * SecretSync — which proves the chart's RBAC is enough, and the audit log that it is used.
 */
const root = new URL('../../', import.meta.url).pathname;
const CHART = join(root, 'charts/secretsync');

// Helm keeps its cache and config in a throwaway home, not the user's.
const helmHome = mkdtempSync(join(tmpdir(), 'secretsync-helm-'));
afterAll(() => rmSync(helmHome, { recursive: true, force: true }));

const exec = (file: string, args: string[], input?: string) => runTool(file, args, helmHome, input);

const helm = (args: string[]) => exec(binaries.helm(), args);
const kubectlIn = (args: string[], input?: string) =>
  exec(binaries.kubectl(), ['--kubeconfig', bed().kubeconfigPath, ...args], input);

const required = () => ['--set', `clusterName=${bed().clusterName}`, '--set', `region=${bed().aws.region}`];

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [k: string]: unknown;
}

async function template(namespace: string, args: string[]): Promise<{ yaml: string; objects: K8sObject[] }> {
  const r = await helm(['template', 'rel', CHART, '--namespace', namespace, ...required(), ...args]);
  expect(r.stderr, 'helm template stderr').toBe('');
  expect(r.code).toBe(0);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { yaml: r.stdout, objects };
}

const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const one = (objects: K8sObject[], kind: string) => {
  const found = ofKind(objects, kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

/** Server-side dry run (real schema validation and admission) of everything rendered. */
async function dryRun(yaml: string, objects: K8sObject[]): Promise<void> {
  const r = await kubectlIn(
    ['apply', '--dry-run=server', '--validate=strict', '-o', 'name', '-f', '-'],
    yaml,
  );
  expect(r.stderr, 'kubectl apply --dry-run=server').toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout.trim().split('\n')).toHaveLength(objects.length);
}

/** The Prometheus Operator's ServiceMonitor CRD, reduced to the fields the chart uses (unknown fields are refused). */
const SERVICE_MONITOR_CRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              required: [selector, endpoints]
              properties:
                selector:
                  type: object
                  properties:
                    matchLabels: { type: object, additionalProperties: { type: string } }
                namespaceSelector:
                  type: object
                  properties:
                    any: { type: boolean }
                    matchNames: { type: array, items: { type: string } }
                endpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: { type: string }
                      path: { type: string }
                      honorLabels: { type: boolean }
                      interval: { type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
                      scrapeTimeout: { type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
`;

const sortRule = (r: V1PolicyRule) => ({
  apiGroups: [...(r.apiGroups ?? [])].sort(),
  resources: [...(r.resources ?? [])].sort(),
  verbs: [...(r.verbs ?? [])].sort(),
  ...(r.resourceNames ? { resourceNames: [...r.resourceNames].sort() } : {}),
});

/** Exactly the calls the controller makes in a SecretSync's namespace (src/controller/kube, informer.ts). */
const NAMESPACED_RULES: V1PolicyRule[] = [
  { apiGroups: ['secretsync.io'], resources: ['secretsyncs'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: ['secretsync.io'], resources: ['secretsyncs/status'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['roles', 'rolebindings'],
    verbs: ['get', 'create', 'patch', 'delete'],
  },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['escalate', 'bind'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

/** The cluster-scoped reads of --tenancy=tag (src/controller/reconcile.ts: grantingPolicy). */
const CLUSTER_RULES: V1PolicyRule[] = [
  { apiGroups: ['secretsync.io'], resources: ['secretsyncpolicies'], verbs: ['list'] },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
];

const rulesOf = (o: K8sObject) => (o.rules as V1PolicyRule[]).map(sortRule);

function envOf(deployment: K8sObject): Record<string, unknown> {
  const d = deployment as unknown as V1Deployment;
  const c = d.spec!.template.spec!.containers[0]!;
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
}

describe('the Helm chart', () => {
  it('ships the CRDs byte for byte as crds/ has them', () => {
    for (const file of ['secretsync.io_secretsyncs.yaml', 'secretsync.io_secretsyncpolicies.yaml']) {
      const chartCrd = readFileSync(join(CHART, 'crds', file));
      const crd = readFileSync(join(root, 'crds', file));
      expect(chartCrd.equals(crd), `charts/secretsync/crds/${file} is a copy of crds/: copy it again`).toBe(
        true,
      );
    }
  });

  it('lints clean with the required values, and says which one is missing otherwise', async () => {
    const ok = await helm(['lint', '--strict', CHART, ...required()]);
    expect(ok.stdout + ok.stderr).toContain('0 chart(s) failed');
    expect(ok.code).toBe(0);

    const noCluster = await helm(['lint', '--strict', CHART, '--set', 'region=eu-west-1']);
    expect(noCluster.code).not.toBe(0);
    expect(noCluster.stdout).toContain("missing property 'clusterName'");
    const noRegion = await helm(['lint', '--strict', CHART, '--set', 'clusterName=c1']);
    expect(noRegion.code).not.toBe(0);
    expect(noRegion.stdout).toContain("missing property 'region'");

    // Without the schema, the templates still refuse, with the same hint.
    const skipped = await helm([
      'template',
      'rel',
      CHART,
      '--skip-schema-validation',
      '--set',
      'region=eu-west-1',
    ]);
    expect(skipped.code).not.toBe(0);
    expect(skipped.stderr).toContain('clusterName is required');

    const badVpc = await helm([
      'template',
      'rel',
      CHART,
      ...required(),
      '--set-json',
      'lambda.subnetIds=["subnet-0a1b"]',
    ]);
    expect(badVpc.code).not.toBe(0);
    expect(badVpc.stderr).toContain('securityGroupIds');
    const typo = await helm(['template', 'rel', CHART, ...required(), '--set', 'lambda.memory=256']);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toContain("additional properties 'memory' not allowed");
  });

  it('documents every value in its README, and its schema knows every value', () => {
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    // Leaves of values.yaml (maps that are values themselves, like annotations, count as leaves).
    const leaves: string[] = ['clusterName', 'region'];
    const walk = (
      o: Record<string, unknown>,
      prefix: string,
      schemaProps: Record<string, unknown> | undefined,
    ) => {
      for (const [k, v] of Object.entries(o)) {
        const key = `${prefix}${k}`;
        const sub = (schemaProps?.[k] ?? undefined) as { properties?: Record<string, unknown> } | undefined;
        expect(sub, `values.schema.json describes ${key}`).toBeDefined();
        if (v && typeof v === 'object' && !Array.isArray(v) && sub?.properties)
          walk(v as Record<string, unknown>, `${key}.`, sub.properties);
        else leaves.push(key);
      }
    };
    walk(values, '', schema.properties);
    for (const key of leaves) expect(readme, `README.md lists ${key}`).toContain(`\`${key}\``);
    // …and the README lists nothing that is not a value.
    const table = readme.slice(
      readme.indexOf('## Values'),
      readme.indexOf('\n## ', readme.indexOf('## Values')),
    );
    const listed = [...table.matchAll(/^\| `([\w.]+)` \|/gm)].map((m) => m[1]!);
    expect(listed.length).toBeGreaterThan(40);
    for (const key of listed) expect(leaves, `${key} in the README is a value`).toContain(key);
  });

  it('renders default values into objects the API server accepts, with exactly the RBAC the controller needs', async () => {
    const ns = await freshNamespace('chart');
    const { yaml, objects } = await template(ns, []);
    await dryRun(yaml, objects);

    expect(objects.map((o) => o.kind).sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'PodDisruptionBudget',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        // Creator consent and the controller guard (e2e/tests/admission.test.ts puts them to work).
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
        'ValidatingAdmissionPolicyBinding',
      ].sort(),
    );
    expect(rulesOf(one(objects, 'ClusterRole'))).toEqual(
      [...NAMESPACED_RULES, ...CLUSTER_RULES].map(sortRule),
    );
    expect(rulesOf(one(objects, 'Role'))).toEqual(
      [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: ['rel-secretsync-leader'],
          verbs: ['get', 'update'],
        },
      ].map(sortRule),
    );
    expect(one(objects, 'Role').metadata.namespace).toBe(ns);

    const deployment = one(objects, 'Deployment') as unknown as V1Deployment;
    expect(deployment.spec?.replicas).toBe(2);
    const pod = deployment.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'health' });
    expect(c.image).toBe('ghcr.io/secretsync/secretsync:0.1.0');
    expect(pod.topologySpreadConstraints?.map((t) => t.topologyKey)).toEqual([
      'kubernetes.io/hostname',
      'topology.kubernetes.io/zone',
    ]);
    const env = envOf(deployment as unknown as K8sObject);
    expect(env).toMatchObject({
      SECRETSYNC_CLUSTER_NAME: bed().clusterName,
      AWS_REGION: bed().aws.region,
      SECRETSYNC_TENANCY: 'tag',
      SECRETSYNC_LEADER_ELECT: 'true',
      SECRETSYNC_LEASE_NAME: 'rel-secretsync-leader',
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    for (const unset of [
      'SECRETSYNC_PERMISSIONS_BOUNDARY',
      'SECRETSYNC_NAMESPACES',
      'SECRETSYNC_LAMBDA_SUBNETS',
    ])
      expect(env).not.toHaveProperty(unset);
    // Every env var is one the controller reads (a typo would silently fall back to a default).
    const known = new Set(
      [...readFileSync(join(root, 'src/controller/config.ts'), 'utf8').matchAll(/env: '(\w+)'/g)].map(
        (m) => m[1],
      ),
    );
    for (const name of Object.keys(env))
      expect(known.has(name), `${name} is a controller setting`).toBe(true);

    // The PDB keeps one replica up, and never protects one that is not ready (no blocked node drain).
    expect(one(objects, 'PodDisruptionBudget').spec).toMatchObject({
      minAvailable: 1,
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    });
    expect(ofKind(objects, 'ServiceMonitor')).toHaveLength(0);
  });

  it('renders non-default values (watchNamespaces, IRSA, VPC, boundary, ServiceMonitor, one replica) that the API server accepts', async () => {
    const ns = await freshNamespace('chart');
    const a = await freshNamespace('chart-a');
    const b = await freshNamespace('chart-b');
    const crd = await kubectlIn(['apply', '--server-side', '-f', '-'], SERVICE_MONITOR_CRD);
    expect(crd.stderr).toBe('');
    await kubectlIn([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/servicemonitors.monitoring.coreos.com',
    ]);

    const roleArn = 'arn:aws:iam::123456789012:role/secretsync-controller';
    const boundary = 'arn:aws:iam::123456789012:policy/secretsync-boundary';
    const { yaml, objects } = await template(ns, [
      '--set-json',
      `watchNamespaces=${JSON.stringify([a, b])}`,
      '--set',
      `serviceAccount.irsaRoleArn=${roleArn}`,
      '--set-json',
      'lambda.subnetIds=["subnet-0a1b2c","subnet-0d4e5f"]',
      '--set-json',
      'lambda.securityGroupIds=["sg-0123abcd"]',
      '--set',
      `aws.permissionsBoundary=${boundary}`,
      '--set',
      'metrics.serviceMonitor.enabled=true',
      '--set',
      'metrics.serviceMonitor.labels.release=prometheus',
      '--set',
      'replicaCount=1',
      '--set',
      'tenancy=allow-all',
      '--set',
      'lambda.architecture=x86_64',
      '--set',
      'lambda.memoryMb=256',
      '--set',
      'lambda.timeoutSeconds=60',
      '--set',
      'logLevel=debug',
      '--set',
      'resyncPeriod=15m',
      '--set',
      'image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      '--set',
      'nodeSelector.kubernetes\\.io/arch=arm64',
      '--set',
      'admission.creatorConsent=false',
    ]);
    await dryRun(yaml, objects);
    // Creator consent off, the controller guard still on.
    expect(ofKind(objects, 'ValidatingAdmissionPolicy').map((o) => o.metadata.name)).toEqual([
      'rel-secretsync-controller-guard',
    ]);

    // Cluster-wide only the tenancy reads (policies, namespaces); a Role + RoleBinding per watched
    // namespace, and the lease Role.
    expect(rulesOf(one(objects, 'ClusterRole'))).toEqual(CLUSTER_RULES.map(sortRule));
    expect((one(objects, 'ClusterRoleBinding').roleRef as { name: string }).name).toBe(
      one(objects, 'ClusterRole').metadata.name,
    );
    const roles = ofKind(objects, 'Role');
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual([a, b, ns].sort());
    for (const r of roles.filter((x) => x.metadata.namespace !== ns))
      expect(rulesOf(r)).toEqual(NAMESPACED_RULES.map(sortRule));
    expect(
      ofKind(objects, 'RoleBinding')
        .map((r) => r.metadata.namespace)
        .sort(),
    ).toEqual([a, b, ns].sort());

    expect(one(objects, 'ServiceAccount').metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': roleArn,
    });
    expect(ofKind(objects, 'PodDisruptionBudget')).toHaveLength(0);
    const sm = one(objects, 'ServiceMonitor');
    expect(sm.metadata.labels?.release).toBe('prometheus');
    const deployment = one(objects, 'Deployment') as unknown as V1Deployment;
    expect(deployment.spec?.replicas).toBe(1);
    expect(deployment.spec!.template.spec!.containers[0]!.image).toBe(
      'ghcr.io/secretsync/secretsync@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
    expect(deployment.spec!.template.spec!.nodeSelector).toEqual({ 'kubernetes.io/arch': 'arm64' });
    const env = envOf(deployment as unknown as K8sObject);
    expect(env).toMatchObject({
      SECRETSYNC_NAMESPACES: `${a},${b}`,
      SECRETSYNC_LAMBDA_SUBNETS: 'subnet-0a1b2c,subnet-0d4e5f',
      SECRETSYNC_LAMBDA_SECURITY_GROUPS: 'sg-0123abcd',
      SECRETSYNC_PERMISSIONS_BOUNDARY: boundary,
      SECRETSYNC_TENANCY: 'allow-all',
      SECRETSYNC_LAMBDA_ARCHITECTURE: 'x86_64',
      SECRETSYNC_LAMBDA_MEMORY: '256',
      SECRETSYNC_LAMBDA_TIMEOUT: '60',
      SECRETSYNC_LOG_LEVEL: 'debug',
      SECRETSYNC_RESYNC_PERIOD: '15m',
    });
    // The rendered environment is a valid controller configuration.
    const cfg = loadControllerConfig([], {
      ...(Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string')) as Record<
        string,
        string
      >),
      SECRETSYNC_LAMBDA_ZIP: ZIP,
    });
    expect(cfg).toMatchObject({
      namespaces: [a, b],
      permissionsBoundary: boundary,
      lambda: {
        subnetIds: ['subnet-0a1b2c', 'subnet-0d4e5f'],
        securityGroupIds: ['sg-0123abcd'],
        memoryMb: 256,
      },
      resyncMs: 15 * 60_000,
    });
  });

  describe('installed with helm, its ServiceAccount runs the controller', () => {
    /** Controllers started here; stopped whatever happened. */
    const running: RunningController[] = [];
    afterAll(async () => {
      for (const c of running.splice(0)) await c.stop().catch(() => {});
    });
    const stop = async (c: RunningController) => {
      running.splice(running.indexOf(c), 1);
      await c.stop();
    };

    /** A free TCP port on this machine (for the controller's metrics and health servers). */
    const freePort = () =>
      new Promise<number>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => {
          const port = (s.address() as { port: number }).port;
          s.close(() => resolve(port));
        });
      });

    /**
     * helm install, then the controller as the Deployment would run it: the Deployment's own
     * environment (downward API filled in), a TokenRequest token of the release's ServiceAccount.
     */
    async function installAndStart(
      release: string,
      ns: string,
      extra: string[],
    ): Promise<{
      controller: RunningController;
      username: string;
      logs: string[];
      env: Record<string, string>;
    }> {
      const install = await helm([
        'install',
        release,
        CHART,
        '--kubeconfig',
        bed().kubeconfigPath,
        '--namespace',
        ns,
        ...required(),
        '--set',
        'tenancy=allow-all',
        ...extra,
      ]);
      expect(install.stderr, 'helm install stderr').not.toMatch(/Error/);
      expect(install.code).toBe(0);
      expect(install.stdout).toContain('STATUS: deployed');

      const apps = adminKubeConfig().makeApiClient(AppsV1Api);
      const deployment = await apps.readNamespacedDeployment({
        name: `${release}-secretsync`,
        namespace: ns,
      });
      const pod = deployment.spec!.template.spec!;
      const sa = pod.serviceAccountName!;
      const podName = `${release}-secretsync-7d9f8b6c5-x2x4q`;
      const env: Record<string, string> = {};
      for (const e of pod.containers[0]!.env ?? []) {
        if (e.valueFrom === undefined) env[e.name] = e.value ?? '';
        else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = ns;
        else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
        else throw new Error(`unexpected env source for ${e.name}`);
      }
      expect(env).toMatchObject({
        SECRETSYNC_TENANCY: 'allow-all',
        SECRETSYNC_LEADER_ELECT: 'true',
        POD_NAMESPACE: ns,
      });
      // What this process cannot take from the image: the zip's path; ports free on this machine.
      const metricsPort = await freePort();
      const healthPort = await freePort();
      const config = loadControllerConfig(
        ['--tenancy=allow-all', '--leader-elect=true', `--leader-election-namespace=${ns}`],
        {
          ...env,
          SECRETSYNC_LAMBDA_ZIP: ZIP,
          SECRETSYNC_METRICS_PORT: String(metricsPort),
          SECRETSYNC_HEALTH_PORT: String(healthPort),
        },
      );
      expect(config.identity).toBe(podName);

      const token = await core().createNamespacedServiceAccountToken({
        name: sa,
        namespace: ns,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      });
      const b = bed();
      process.env.AWS_ENDPOINT_URL = b.aws.url;
      process.env.AWS_ACCESS_KEY_ID = b.aws.credentials.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = b.aws.credentials.secretAccessKey;
      const logs: string[] = [];
      const log = pino(
        { level: 'info' },
        {
          write(line: string) {
            logs.push(line.trim());
          },
        },
      );
      const controller = await startController({ config, kc: tokenKubeConfig(token.status!.token!), log });
      running.push(controller);

      // The lease in the release namespace, held by this "pod"; the probes' paths answer.
      const leases = adminKubeConfig().makeApiClient(CoordinationV1Api);
      await eventually('the leader lease', async () => {
        const lease = await leases.readNamespacedLease({ name: env.SECRETSYNC_LEASE_NAME!, namespace: ns });
        return lease.spec?.holderIdentity === podName ? true : undefined;
      });
      for (const path of ['/healthz', '/readyz'])
        expect((await fetch(`http://127.0.0.1:${healthPort}${path}`)).status, path).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toContain('secretsync_');
      return { controller, username: `system:serviceaccount:${ns}:${sa}`, logs, env };
    }

    /** A SecretSync through to Ready and Synced, then deleted (deletionPolicy Delete) and finalized. */
    async function roundTrip(ns: string, logs: string[]): Promise<void> {
      const secretId = `chart/${ns}/db`;
      await createAwsSecret(secretId, JSON.stringify({ username: 'app', password: 'from-aws' }));
      await applySecretSync(ns, 'db', {
        source: { secretId },
        target: { name: 'db-creds' },
        deletionPolicy: 'Delete',
      });
      try {
        await waitReady(ns, 'db', 90_000);
        const synced = await eventually(
          'Synced=True',
          async () => {
            const ss = await getSecretSync(ns, 'db');
            return condition(ss, 'Synced')?.status === 'True' ? ss : undefined;
          },
          90_000,
        );
        expect(synced.status?.syncedKeys).toBe(2);
        expect(await secretData(ns, 'db-creds')).toEqual({ username: 'app', password: 'from-aws' });

        // Teardown needs the delete verbs: the function's RBAC, the target Secret, then the finalizer.
        await customObjects().deleteNamespacedCustomObject({
          group: 'secretsync.io',
          version: 'v1alpha1',
          plural: 'secretsyncs',
          namespace: ns,
          name: 'db',
        });
        await eventually(
          'the SecretSync finalized',
          async () => ((await getSecretSync(ns, 'db')) === undefined ? true : undefined),
          90_000,
        );
        expect(await secretData(ns, 'db-creds')).toBeUndefined();
      } catch (err) {
        throw new Error(
          `${String(err)}\ncontroller log (tail):\n${logs
            .slice(-20)
            .map((l) => l.slice(0, 400))
            .join('\n')}`,
        );
      }
    }

    /** Every request the identity made was allowed, and none read a Secret. */
    function expectAuditClean(username: string): void {
      const events = auditEvents(username);
      expect(events.length).toBeGreaterThan(0);
      const forbidden = events.filter((e) => e.responseStatus?.code === 403);
      expect(
        forbidden.map(
          (e) =>
            `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''} ${e.objectRef?.namespace}`,
        ),
      ).toEqual([]);
      const secretReads = events.filter(
        (e) => e.objectRef?.resource === 'secrets' && ['get', 'list', 'watch'].includes(e.verb),
      );
      expect(secretReads).toEqual([]);
    }

    async function canI(user: string, verb: string, resource: string, namespace?: string, group = '') {
      const authz = adminKubeConfig().makeApiClient(AuthorizationV1Api);
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user,
            groups: ['system:serviceaccounts', 'system:authenticated'],
            resourceAttributes: { verb, resource, group, ...(namespace ? { namespace } : {}) },
          },
        },
      });
      return review.status?.allowed === true;
    }

    it('cluster-wide (default): a SecretSync in any namespace gets Ready and Synced, and is cleaned up', async () => {
      const ns = await freshNamespace('chart-rel');
      const app = await freshNamespace('chart-app');
      const { controller, username, logs } = await installAndStart('cw', ns, []);
      try {
        await roundTrip(app, logs);
      } finally {
        await stop(controller);
      }
      expectAuditClean(username);
      expect(await canI(username, 'list', 'secretsyncs', undefined, 'secretsync.io')).toBe(true);
      for (const verb of ['get', 'list', 'watch'])
        expect(await canI(username, verb, 'secrets', app), `secrets ${verb}`).toBe(false);

      const un = await helm(['uninstall', 'cw', '--kubeconfig', bed().kubeconfigPath, '--namespace', ns]);
      expect(un.code).toBe(0);
      expect(await canI(username, 'list', 'secretsyncs', undefined, 'secretsync.io')).toBe(false);
    });

    it('watchNamespaces: a SecretSync in a listed namespace gets Ready and Synced; other namespaces are not touched', async () => {
      const ns = await freshNamespace('chart-rel');
      const listed = await freshNamespace('chart-in');
      const other = await freshNamespace('chart-in');
      const unlisted = await freshNamespace('chart-out');
      const { controller, username, logs, env } = await installAndStart('wn', ns, [
        '--set-json',
        `watchNamespaces=${JSON.stringify([listed, other])}`,
      ]);
      expect(env.SECRETSYNC_NAMESPACES).toBe(`${listed},${other}`);
      // A SecretSync the controller must not see: its namespace is not watched.
      await createAwsSecret(`chart/${unlisted}/db`, JSON.stringify({ a: 'b' }));
      await applySecretSync(unlisted, 'db', { source: { secretId: `chart/${unlisted}/db` } });
      try {
        await roundTrip(listed, logs);
      } finally {
        await stop(controller);
      }
      const untouched = await getSecretSync(unlisted, 'db');
      expect(untouched?.status).toBeUndefined();
      expect(untouched?.metadata.finalizers ?? []).toEqual([]);
      await customObjects().deleteNamespacedCustomObject({
        group: 'secretsync.io',
        version: 'v1alpha1',
        plural: 'secretsyncs',
        namespace: unlisted,
        name: 'db',
      });

      expectAuditClean(username);
      // Namespaced list/watch only: nothing cluster-wide, nothing in unlisted namespaces.
      expect(await canI(username, 'list', 'secretsyncs', undefined, 'secretsync.io')).toBe(false);
      expect(await canI(username, 'watch', 'secretsyncs', listed, 'secretsync.io')).toBe(true);
      expect(await canI(username, 'create', 'secrets', unlisted)).toBe(false);
      expect(await canI(username, 'create', 'secrets', other)).toBe(true);
      for (const verb of ['get', 'list', 'watch'])
        expect(await canI(username, verb, 'secrets', listed), `secrets ${verb}`).toBe(false);

      const un = await helm(['uninstall', 'wn', '--kubeconfig', bed().kubeconfigPath, '--namespace', ns]);
      expect(un.code).toBe(0);
    });
  });
});
