/**
 * Real-cluster end-to-end run: the controller image from the repository's Dockerfile, installed with
 * the chart into a real cluster (kubelet, scheduler, two replicas electing a leader), against an AWS
 * account or an emulator. Usage and the two modes: `node e2e/kind/run.ts --help` and README.md beside
 * this file. The pure parts (options, helm arguments, tool checks) are exported for kind.test.ts.
 *
 * Secret values are random, made here, and never printed: the Kubernetes Secret is compared with
 * them by SHA-256 and the script says "matches".
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CloudWatchLogsClient, DescribeLogGroupsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeAccessEntryCommand, DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  DescribeRuleCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTagsForResourceCommand,
} from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient, ListRolesCommand, ListRoleTagsCommand } from '@aws-sdk/client-iam';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { aws } from '../../src/controller/aws/errors.ts';
import { fromTagList } from '../../src/controller/aws/tags.ts';
import { isNotFound } from '../../src/controller/errors.ts';
import { FINALIZER } from '../../src/controller/kube/secretsyncs.ts';
import {
  clusterArn,
  ownershipTags,
  type ResourceNames,
  resourceNames,
  TAG,
} from '../../src/controller/naming.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHART_DIR = join(REPO_ROOT, 'charts', 'secretsync');
/** Release name and, so, the Deployment, ServiceAccount and (with "-leader") Lease name. */
export const RELEASE = 'secretsync-e2e';
const SYNC_NAME = 'db';
const TARGET_NAME = 'db-creds';
const CREDENTIALS_SECRET = 'secretsync-e2e-aws';
const SSYNC_RESOURCE = 'secretsyncs.secretsync.io';

export interface Options {
  /** kind: create a kind cluster; existing: install into the cluster of --context/--kubeconfig (EKS). */
  mode: 'kind' | 'existing';
  kindCluster: string;
  /** The EKS cluster name the controller serves (SECRETSYNC_CLUSTER_NAME). */
  eksCluster: string;
  region: string;
  context: string | undefined;
  kubeconfig: string | undefined;
  image: string;
  build: boolean;
  platform: string | undefined;
  irsaRoleArn: string | undefined;
  podIdentity: boolean;
  localstackContainer: string;
  podAwsEndpoint: string | undefined;
  kindConfig: string | undefined;
  kindImage: string | undefined;
  /** kind mode: run in an existing kind cluster of that name, and leave it. */
  reuseKind: boolean;
  helmSet: string[];
  skipSync: boolean;
  namespace: string;
  releaseNamespace: string;
  namePrefix: string;
  iamPath: string;
  timeoutSeconds: number;
  keep: boolean;
}

export class UsageError extends Error {}
/** A prerequisite is missing: nothing was created. Exit 2. */
export class PrerequisiteError extends Error {}
/** A verification failed. Exit 1. */
class Failure extends Error {}

export function usage(): string {
  return `Usage: node e2e/kind/run.ts [options]

Runs secretsync end to end in a real cluster: builds the image from the Dockerfile, installs the
chart, syncs an AWS secret into a Secret, follows a change, deletes the SecretSync and checks that
every AWS resource the controller created is gone. See e2e/kind/README.md.

Two modes:
  kind (default)     create a kind cluster and install there; AWS is an emulator at AWS_ENDPOINT_URL
                     (LocalStack) whose EKS DescribeCluster answers with the kind API server.
  existing cluster   --context and/or --kubeconfig: install into that cluster, which must be the EKS
                     cluster --eks-cluster names, with real AWS credentials (no cluster is created).

Options:
  --cluster-name <name>          kind cluster to create (default secretsync-e2e)
  --eks-cluster <name>           EKS cluster the controller serves (default: --cluster-name in kind mode;
                                 required with --context/--kubeconfig)
  --region <region>              AWS region (default AWS_REGION, AWS_DEFAULT_REGION; kind mode: us-east-1)
  --context <ctx>                kubeconfig context of an existing EKS cluster (skips kind)
  --kubeconfig <file>            kubeconfig of an existing EKS cluster (skips kind)
  --image <ref>                  controller image (default secretsync:e2e in kind mode; required with an
                                 existing cluster: a registry the cluster pulls from, e.g. ECR)
  --no-build                     use --image as it is (kind mode: already in the local Docker engine;
                                 existing cluster: already pushed)
  --platform <os/arch>           docker build --platform (e.g. linux/amd64 for amd64 EKS nodes)
  --irsa-role-arn <arn>          existing cluster: the controller's IAM role, via IRSA
  --pod-identity                 existing cluster: an EKS Pod Identity association already gives the
                                 ServiceAccount <release namespace>/${RELEASE} the controller's role
  --localstack-container <name>  kind mode: LocalStack's container, connected to the "kind" Docker
                                 network; the controller reaches it at http://<name>:4566
                                 (default localstack-main)
  --pod-aws-endpoint <url>       kind mode: the AWS endpoint as seen from a pod, instead of the above
  --kind-config <file>           kind mode: kind cluster config (e.g. an authentication token webhook)
  --kind-image <image>           kind mode: node image (kind create cluster --image)
  --reuse-kind                   kind mode: run in the existing kind cluster --cluster-name (e.g. one
                                 already registered with the emulator) and leave it afterwards
  --helm-set <key=value>         extra helm --set (repeatable), e.g. lambda.runtime=nodejs22.x
  --skip-sync                    stop after the provisioning checks (for an emulator without EKS token
                                 authentication or Secrets Manager change events); skips value checks
  --namespace <ns>               namespace of the SecretSync (default secretsync-e2e-app; "<ns>-denied"
                                 holds a second one the AWS secret's tag does not allow)
  --release-namespace <ns>       namespace of the chart release (default secretsync-e2e)
  --name-prefix <prefix>         aws.namePrefix (default secretsync); must match the controller's policy
  --iam-path <path>              aws.iamPath (default /secretsync/); must match the controller's policy
  --timeout <seconds>            limit of each wait (default 300)
  --keep                         keep the kind cluster (existing cluster: the release); after a failure,
                                 also the SecretSyncs and the AWS secret, to investigate
  --help                         this text

Environment: AWS credentials as the AWS SDK finds them (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...);
AWS_ENDPOINT_URL (kind mode, required) points the script at the emulator.
Exit status: 0 passed, 1 a check failed, 2 bad options or a missing prerequisite.
`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const EKS_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/;

/** Options from argv and the environment; throws UsageError. `--help` is the caller's business. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'cluster-name': { type: 'string' },
        'eks-cluster': { type: 'string' },
        region: { type: 'string' },
        context: { type: 'string' },
        kubeconfig: { type: 'string' },
        image: { type: 'string' },
        'no-build': { type: 'boolean' },
        platform: { type: 'string' },
        'irsa-role-arn': { type: 'string' },
        'pod-identity': { type: 'boolean' },
        'localstack-container': { type: 'string' },
        'pod-aws-endpoint': { type: 'string' },
        'kind-config': { type: 'string' },
        'kind-image': { type: 'string' },
        'reuse-kind': { type: 'boolean' },
        'helm-set': { type: 'string', multiple: true },
        'skip-sync': { type: 'boolean' },
        namespace: { type: 'string' },
        'release-namespace': { type: 'string' },
        'name-prefix': { type: 'string' },
        'iam-path': { type: 'string' },
        timeout: { type: 'string' },
        keep: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (k: string): string | undefined => {
    const v = values[k];
    return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
  };
  const problems: string[] = [];
  const existing = str('context') !== undefined || str('kubeconfig') !== undefined;
  const mode: Options['mode'] = existing ? 'existing' : 'kind';
  const kindCluster = str('cluster-name') ?? 'secretsync-e2e';
  const eksCluster = str('eks-cluster') ?? (existing ? '' : kindCluster);
  const region = str('region') ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || (existing ? '' : 'us-east-1'));
  const image = str('image') ?? (existing ? '' : 'secretsync:e2e');
  const namespace = str('namespace') ?? 'secretsync-e2e-app';
  const releaseNamespace = str('release-namespace') ?? 'secretsync-e2e';
  const timeoutSeconds = Number(str('timeout') ?? '300');
  const helmSet = (values['helm-set'] as string[] | undefined) ?? [];
  const podAwsEndpoint = str('pod-aws-endpoint');

  if (!DNS_LABEL.test(kindCluster)) problems.push('--cluster-name must be a DNS label, e.g. secretsync-e2e');
  if (!EKS_NAME.test(eksCluster))
    problems.push(
      existing
        ? '--eks-cluster is required with --context/--kubeconfig: the EKS cluster those point at'
        : '--eks-cluster must be an EKS cluster name',
    );
  if (!REGION.test(region)) problems.push('--region (or AWS_REGION) is required, e.g. eu-west-1');
  if (image === '')
    problems.push(
      '--image is required with --context/--kubeconfig: a reference the cluster can pull, e.g. <account>.dkr.ecr.<region>.amazonaws.com/secretsync:e2e',
    );
  else if (existing && !image.split('@')[0]!.includes('/'))
    problems.push(`--image ${image} has no registry; the EKS nodes cannot pull an image that is only local`);
  // The namespace gets a "-denied" sibling, which must still be a DNS label.
  if (!DNS_LABEL.test(namespace) || namespace.length > 56)
    problems.push('--namespace must be a DNS label of at most 56 characters');
  if (!DNS_LABEL.test(releaseNamespace)) problems.push('--release-namespace must be a DNS label');
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 10)
    problems.push('--timeout must be a whole number of seconds, at least 10');
  for (const s of helmSet)
    if (!/^[A-Za-z][\w.[\]-]*=/.test(s)) problems.push(`--helm-set ${s}: not key=value`);
  if (podAwsEndpoint !== undefined && !/^https?:\/\/[^,\s]+$/.test(podAwsEndpoint))
    problems.push('--pod-aws-endpoint must be an http(s) URL');
  const irsaRoleArn = str('irsa-role-arn');
  const podIdentity = values['pod-identity'] === true;
  if (irsaRoleArn !== undefined && !ROLE_ARN.test(irsaRoleArn))
    problems.push('--irsa-role-arn must be an IAM role ARN');
  if (existing && irsaRoleArn === undefined && !podIdentity)
    problems.push(
      'an existing cluster needs the controller role: --irsa-role-arn <arn>, or --pod-identity when an EKS Pod Identity association exists',
    );
  if (existing && irsaRoleArn !== undefined && podIdentity)
    problems.push('give --irsa-role-arn or --pod-identity, not both');
  if (!existing && (irsaRoleArn !== undefined || podIdentity))
    problems.push('--irsa-role-arn and --pod-identity apply to an existing EKS cluster (--context)');
  if (existing) {
    for (const k of ['localstack-container', 'pod-aws-endpoint', 'kind-config', 'kind-image', 'cluster-name'])
      if (str(k) !== undefined) problems.push(`--${k} applies to kind mode, not to --context/--kubeconfig`);
    if (values['reuse-kind'] === true)
      problems.push('--reuse-kind applies to kind mode, not to --context/--kubeconfig');
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return {
    mode,
    kindCluster,
    eksCluster,
    region,
    context: str('context'),
    kubeconfig: str('kubeconfig'),
    image,
    build: values['no-build'] !== true,
    platform: str('platform'),
    irsaRoleArn,
    podIdentity,
    localstackContainer: str('localstack-container') ?? 'localstack-main',
    podAwsEndpoint,
    kindConfig: str('kind-config'),
    kindImage: str('kind-image'),
    reuseKind: values['reuse-kind'] === true,
    helmSet,
    skipSync: values['skip-sync'] === true,
    namespace,
    releaseNamespace,
    namePrefix: str('name-prefix') ?? 'secretsync',
    iamPath: str('iam-path') ?? '/secretsync/',
    timeoutSeconds,
    keep: values.keep === true,
  };
}

const TOOL_HINTS: Record<string, string> = {
  docker: 'Docker Engine or Docker Desktop, https://docs.docker.com/engine/install/',
  kind: 'https://kind.sigs.k8s.io/docs/user/quick-start/#installation',
  kubectl: 'https://kubernetes.io/docs/tasks/tools/',
  helm: 'https://helm.sh/docs/intro/install/',
};

/** The command-line tools a run with these options calls. */
export function requiredTools(o: Options): string[] {
  if (o.mode === 'kind') return ['docker', 'kind', 'kubectl', 'helm'];
  return [...(o.build ? ['docker'] : []), 'kubectl', 'helm'];
}

/** Tools not found as executables on `pathEnv`. */
export function missingTools(tools: string[], pathEnv: string | undefined): string[] {
  const dirs = (pathEnv ?? '').split(delimiter).filter(Boolean);
  return tools.filter(
    (tool) =>
      !dirs.some((dir) => {
        try {
          accessSync(join(dir, tool), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
}

/** `repo:tag`, `registry:5000/repo:tag`, `repo@sha256:…` → the chart's image values. */
export function splitImage(ref: string): { repository: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { repository: ref.slice(0, at), digest: ref.slice(at + 1) };
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repository: ref };
}

/** The Lambda architecture matching this machine (an emulator runs functions on the local engine). */
export function hostLambdaArchitecture(arch: string = process.arch): 'arm64' | 'x86_64' {
  return arch === 'arm64' ? 'arm64' : 'x86_64';
}

export interface HelmContext {
  /** kind mode: AWS_ENDPOINT_URL as the controller pod reaches the emulator. */
  podAwsEndpoint?: string;
  /** kind mode: the Secret holding the controller's AWS credentials, and whether it has a session token. */
  credentialsSecret?: { name: string; sessionToken: boolean };
}

/** `helm upgrade --install` arguments (without --kubeconfig/--kube-context). */
export function helmInstallArgs(o: Options, ctx: HelmContext = {}): string[] {
  const setString = (kv: string) => ['--set-string', kv];
  const image = splitImage(o.image);
  const args = [
    'upgrade',
    '--install',
    RELEASE,
    CHART_DIR,
    '--namespace',
    o.releaseNamespace,
    '--create-namespace',
    ...setString(`clusterName=${o.eksCluster}`),
    ...setString(`region=${o.region}`),
    ...setString(`image.repository=${image.repository}`),
    ...(image.tag ? setString(`image.tag=${image.tag}`) : []),
    ...(image.digest ? setString(`image.digest=${image.digest}`) : []),
    ...setString(`aws.namePrefix=${o.namePrefix}`),
    ...setString(`aws.iamPath=${o.iamPath}`),
    // Only the test's namespaces: an existing cluster's other SecretSyncs are never touched, and the
    // chart's per-namespace RBAC is what is exercised.
    '--set',
    `watchNamespaces={${o.namespace},${o.namespace}-denied}`,
  ];
  if (o.mode === 'kind') {
    // The image exists only on the kind node (kind load); never try a registry.
    args.push(...setString('image.pullPolicy=Never'));
    args.push(...setString(`lambda.architecture=${hostLambdaArchitecture()}`));
    const env: { name: string; value?: string; secretKey?: string }[] = [];
    if (ctx.podAwsEndpoint) env.push({ name: 'AWS_ENDPOINT_URL', value: ctx.podAwsEndpoint });
    if (ctx.credentialsSecret) {
      env.push({ name: 'AWS_ACCESS_KEY_ID', secretKey: 'AWS_ACCESS_KEY_ID' });
      env.push({ name: 'AWS_SECRET_ACCESS_KEY', secretKey: 'AWS_SECRET_ACCESS_KEY' });
      if (ctx.credentialsSecret.sessionToken)
        env.push({ name: 'AWS_SESSION_TOKEN', secretKey: 'AWS_SESSION_TOKEN' });
    }
    env.forEach((e, i) => {
      args.push(...setString(`extraEnv[${i}].name=${e.name}`));
      if (e.value !== undefined) args.push(...setString(`extraEnv[${i}].value=${e.value}`));
      if (e.secretKey !== undefined && ctx.credentialsSecret) {
        args.push(...setString(`extraEnv[${i}].valueFrom.secretKeyRef.name=${ctx.credentialsSecret.name}`));
        args.push(...setString(`extraEnv[${i}].valueFrom.secretKeyRef.key=${e.secretKey}`));
      }
    });
  } else if (o.irsaRoleArn) {
    args.push(...setString(`serviceAccount.irsaRoleArn=${o.irsaRoleArn}`));
  }
  for (const kv of o.helmSet) args.push('--set', kv);
  args.push('--wait', '--timeout', `${o.timeoutSeconds}s`);
  return args;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Whether a Secret's `data` (base64) holds exactly `expected`, compared by hash. */
export function dataMatches(
  data: Readonly<Record<string, string>> | undefined,
  expected: Readonly<Record<string, string>>,
): boolean {
  const got = data ?? {};
  const keys = Object.keys(expected).sort();
  if (Object.keys(got).sort().join('\n') !== keys.join('\n')) return false;
  return keys.every((k) => sha256(Buffer.from(got[k] ?? '', 'base64')) === sha256(expected[k] ?? ''));
}

// ---------------------------------------------------------------------------------------------
// The run.

interface Proc {
  status: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], opts: { input?: string; inherit?: boolean } = {}): Proc {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    stdio: [
      opts.input === undefined ? 'ignore' : 'pipe',
      opts.inherit ? 'inherit' : 'pipe',
      opts.inherit ? 'inherit' : 'pipe',
    ],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) return { status: 127, stdout: '', stderr: r.error.message };
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const tail = (s: string, lines = 15) => s.trim().split('\n').slice(-lines).join('\n');

function must(cmd: string, args: string[], opts: { input?: string; inherit?: boolean } = {}): string {
  const r = exec(cmd, args, opts);
  if (r.status !== 0)
    throw new Failure(`${cmd} ${args.slice(0, 4).join(' ')} … failed (exit ${r.status})\n${tail(r.stderr)}`);
  return r.stdout;
}

let stepNo = 0;
let interrupted = false;
const say = (s: string) => process.stdout.write(`\n\x1b[1m▶ ${++stepNo}. ${s}\x1b[0m\n`);
const info = (s: string) => process.stdout.write(`  ${s}\n`);
const warn = (s: string) => process.stdout.write(`  \x1b[33mwarning:\x1b[0m ${s}\n`);

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
  explain: () => Promise<string> | string = () => '',
  intervalMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (interrupted) throw new Failure('interrupted');
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) {
      const why = await explain();
      throw new Failure(
        `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${why ? `\n${why}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

type Condition = NonNullable<NonNullable<SecretSync['status']>['conditions']>[number];
const conditionOf = (ss: SecretSync | undefined, type: string): Condition | undefined =>
  ss?.status?.conditions?.find((c) => c.type === type);
const describeConditions = (ss: SecretSync | undefined): string =>
  ss === undefined
    ? '  (the SecretSync does not exist)'
    : (ss.status?.conditions ?? [])
        .map((c) => `  ${c.type}=${c.status} (${c.reason}): ${c.message}`)
        .join('\n') || '  (no conditions yet: is the controller running and watching this namespace?)';

async function gone(operation: string, resource: string, call: () => Promise<unknown>): Promise<boolean> {
  try {
    await aws({ operation, resource }, call);
    return false;
  } catch (err) {
    if (isNotFound(err)) return true;
    throw err;
  }
}

function expectOwnership(what: string, tags: Record<string, string>, expected: Record<string, string>) {
  const wrong = Object.entries(expected).filter(([k, v]) => tags[k] !== v);
  if (wrong.length > 0)
    throw new Failure(
      `${what} lacks the ownership tags: ${wrong.map(([k, v]) => `${k}=${v} (has ${tags[k] ?? 'none'})`).join(', ')}`,
    );
}

export async function runE2e(o: Options): Promise<void> {
  const timeoutMs = o.timeoutSeconds * 1000;
  const work = mkdtempSync(join(tmpdir(), 'secretsync-kind-e2e-'));
  const deniedNs = `${o.namespace}-denied`;
  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const endpoint = process.env.AWS_ENDPOINT_URL || undefined;
  const awsConfig = { region: o.region, ...(endpoint ? { endpoint } : {}) };
  const sts = new STSClient(awsConfig);
  const eks = new EKSClient(awsConfig);
  const iam = new IAMClient(awsConfig);
  const lambda = new LambdaClient(awsConfig);
  const events = new EventBridgeClient(awsConfig);
  const logs = new CloudWatchLogsClient(awsConfig);
  const sm = new SecretsManagerClient(awsConfig);

  let kubeFlags: string[] = [];
  let helmFlags: string[] = [];
  const kubectl = (args: string[], opts: { input?: string; inherit?: boolean } = {}) =>
    exec('kubectl', [...kubeFlags, ...args], opts);
  const kubectlMust = (args: string[], opts: { input?: string; inherit?: boolean } = {}) =>
    must('kubectl', [...kubeFlags, ...args], opts);
  const getSync = (ns: string, name: string): SecretSync | undefined => {
    const out = kubectlMust(['get', SSYNC_RESOURCE, name, '-n', ns, '-o', 'json', '--ignore-not-found']);
    return out.trim() ? (JSON.parse(out) as SecretSync) : undefined;
  };

  // What the cleanup has to undo, in reverse.
  let kindCreated = false;
  let crdExisted = true;
  let namespacesCreated = false;
  let releaseInstalled = false;
  let secretArn: string | undefined;
  let syncsApplied = false;
  let syncsDeleted = false;
  let failed = false;
  let accountId = '';
  let partition = 'aws';

  // The controller's identity: the cluster's ARN (known once the AWS identity is).
  const clusterId = () => clusterArn({ partition, region: o.region, accountId, name: o.eksCluster });
  const namesFor = (ns: string): ResourceNames =>
    resourceNames(
      { clusterArn: clusterId(), namespace: ns, name: SYNC_NAME },
      { prefix: o.namePrefix, iamPath: o.iamPath },
    );

  /** AWS resources of the test's SecretSyncs that still exist, by their deterministic names. */
  const leftovers = async (): Promise<string[]> => {
    const left: string[] = [];
    for (const ns of [o.namespace, deniedNs]) {
      const n = namesFor(ns);
      const roleArn = `arn:${partition}:iam::${accountId}:role${n.rolePath}${n.roleName}`;
      const checks: [string, () => Promise<unknown>][] = [
        [`IAM role ${n.rolePath}${n.roleName}`, () => iam.send(new GetRoleCommand({ RoleName: n.roleName }))],
        [
          `Lambda function ${n.functionName}`,
          () => lambda.send(new GetFunctionCommand({ FunctionName: n.functionName })),
        ],
        [`EventBridge rule ${n.ruleName}`, () => events.send(new DescribeRuleCommand({ Name: n.ruleName }))],
        [
          `EKS access entry for ${n.roleName}`,
          () =>
            eks.send(new DescribeAccessEntryCommand({ clusterName: o.eksCluster, principalArn: roleArn })),
        ],
      ];
      for (const [what, call] of checks) {
        try {
          if (!(await gone(what, what, call))) left.push(what);
        } catch (err) {
          left.push(`${what} (could not check: ${(err as Error).message})`);
        }
      }
      const groups = await logs
        .send(new DescribeLogGroupsCommand({ logGroupNamePrefix: n.logGroupName }))
        .catch(() => undefined);
      if (groups?.logGroups?.some((g) => g.logGroupName === n.logGroupName))
        left.push(`CloudWatch log group ${n.logGroupName}`);
    }
    return left;
  };

  // Names are derived, so the exact-name checks above are complete; this sweep also catches anything
  // carrying this run's ownership tags under a name the derivation would not give.
  const sweepPrefix = `${o.namePrefix}-${o.namespace}`.slice(0, 55);
  const taggedLeftovers = async (): Promise<string[]> => {
    const ours = (tags: Record<string, string>) =>
      tags[TAG.cluster] === o.eksCluster && [o.namespace, deniedNs].includes(tags[TAG.namespace] ?? '');
    const found: string[] = [];
    let marker: string | undefined;
    do {
      const page = await iam.send(new ListRolesCommand({ PathPrefix: o.iamPath, Marker: marker }));
      for (const r of page.Roles ?? []) {
        if (!r.RoleName?.startsWith(sweepPrefix)) continue;
        const tags = await iam.send(new ListRoleTagsCommand({ RoleName: r.RoleName })).catch(() => undefined);
        if (tags && ours(fromTagList(tags.Tags))) found.push(`IAM role ${r.RoleName}`);
      }
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    let next: string | undefined;
    do {
      const page = await events.send(new ListRulesCommand({ NamePrefix: sweepPrefix, NextToken: next }));
      for (const r of page.Rules ?? []) {
        const tags = await events
          .send(new ListTagsForResourceCommand({ ResourceARN: r.Arn }))
          .catch(() => undefined);
        if (tags && ours(fromTagList(tags.Tags))) found.push(`EventBridge rule ${r.Name}`);
      }
      next = page.NextToken;
    } while (next);
    return found;
  };

  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stdout.write('\ninterrupted: cleaning up after the current command (Ctrl-C again to abandon)\n');
  };
  process.on('SIGINT', onSigint);

  try {
    // ------------------------------------------------------------------ prerequisites
    say('Prerequisites');
    const missing = missingTools(requiredTools(o), process.env.PATH);
    const problems = missing.map((t) => `missing tool: ${t} (${TOOL_HINTS[t]})`);
    if (o.mode === 'kind' && !endpoint)
      problems.push(
        'kind mode needs an AWS emulator: set AWS_ENDPOINT_URL (e.g. http://localhost:4566 for LocalStack). A kind cluster is not EKS; for real AWS use an EKS cluster with --context',
      );
    if (problems.length > 0) throw new PrerequisiteError(problems.join('\n'));
    if (requiredTools(o).includes('docker')) {
      const d = exec('docker', ['info', '--format', '{{.ServerVersion}}']);
      if (d.status !== 0)
        throw new PrerequisiteError(`the Docker engine is not reachable (docker info: ${tail(d.stderr, 3)})`);
      info(`Docker engine ${d.stdout.trim()}`);
    }
    const me = await sts.send(new GetCallerIdentityCommand({})).catch((err: unknown) => {
      throw new PrerequisiteError(
        `AWS credentials do not work${endpoint ? ` against ${endpoint}` : ''}: ${(err as Error).message}`,
      );
    });
    accountId = me.Account ?? '';
    partition = me.Arn?.split(':')[1] ?? 'aws';
    info(
      `AWS identity ${me.Arn} (account ${accountId}), region ${o.region}${endpoint ? `, endpoint ${endpoint}` : ''}`,
    );

    // ------------------------------------------------------------------ cluster
    if (o.mode === 'kind') {
      say(`kind cluster ${o.kindCluster}`);
      const exists = must('kind', ['get', 'clusters']).split('\n').includes(o.kindCluster);
      const kubeconfig = join(work, 'kubeconfig');
      if (o.reuseKind) {
        if (!exists) throw new PrerequisiteError(`--reuse-kind: there is no kind cluster ${o.kindCluster}`);
        writeFileSync(kubeconfig, must('kind', ['get', 'kubeconfig', '--name', o.kindCluster]), {
          mode: 0o600,
        });
        info('reusing it (it stays when the run ends)');
      } else if (exists) {
        throw new PrerequisiteError(
          `a kind cluster named ${o.kindCluster} exists already; delete it (kind delete cluster --name ${o.kindCluster}), pass --cluster-name, or --reuse-kind to run in it`,
        );
      } else {
        kindCreated = true;
        must(
          'kind',
          [
            'create',
            'cluster',
            '--name',
            o.kindCluster,
            '--kubeconfig',
            kubeconfig,
            '--wait',
            '180s',
            ...(o.kindConfig ? ['--config', o.kindConfig] : []),
            ...(o.kindImage ? ['--image', o.kindImage] : []),
          ],
          { inherit: true },
        );
      }
      kubeFlags = ['--kubeconfig', kubeconfig];
      helmFlags = ['--kubeconfig', kubeconfig];
    } else {
      say('Existing cluster');
      kubeFlags = [
        ...(o.kubeconfig ? ['--kubeconfig', o.kubeconfig] : []),
        ...(o.context ? ['--context', o.context] : []),
      ];
      helmFlags = [
        ...(o.kubeconfig ? ['--kubeconfig', o.kubeconfig] : []),
        ...(o.context ? ['--kube-context', o.context] : []),
      ];
    }
    const server = kubectlMust([
      'config',
      'view',
      '--minify',
      '-o',
      'jsonpath={.clusters[0].cluster.server}',
    ]).trim();
    info(`API server ${server}`);

    // ------------------------------------------------------------------ the EKS side of the cluster
    say(`EKS cluster ${o.eksCluster} as the controller will see it (DescribeCluster)`);
    const described = await eks
      .send(new DescribeClusterCommand({ name: o.eksCluster }))
      .catch((err: unknown) => {
        const kindHint =
          o.mode === 'kind'
            ? `; register the kind cluster with the emulator so that DescribeCluster answers with https://${o.kindCluster}-control-plane:6443 and the kind CA (e2e/kind/README.md, "kind + LocalStack")`
            : '';
        throw new PrerequisiteError(`DescribeCluster ${o.eksCluster}: ${(err as Error).message}${kindHint}`);
      });
    const c = described.cluster;
    const authMode = c?.accessConfig?.authenticationMode ?? 'CONFIG_MAP';
    info(`endpoint ${c?.endpoint ?? '(none)'}, authentication mode ${authMode}`);
    if (!c?.endpoint || !c.certificateAuthority?.data)
      throw new PrerequisiteError(
        `DescribeCluster ${o.eksCluster} gives no endpoint or CA; the functions need both`,
      );
    if (authMode !== 'API' && authMode !== 'API_AND_CONFIG_MAP')
      throw new PrerequisiteError(
        `cluster ${o.eksCluster} uses authentication mode ${authMode}; secretsync needs access entries: aws eks update-cluster-config --name ${o.eksCluster} --access-config authenticationMode=API_AND_CONFIG_MAP`,
      );
    if (o.mode === 'existing') {
      // Never install into a cluster other than the one the controller will tell the functions about.
      if (new URL(c.endpoint).host.toLowerCase() !== new URL(server).host.toLowerCase())
        throw new PrerequisiteError(
          `the kubeconfig context points at ${server}, but EKS cluster ${o.eksCluster} is ${c.endpoint}; pass the matching --context`,
        );
    } else {
      const internal = exec('kind', ['get', 'kubeconfig', '--internal', '--name', o.kindCluster]).stdout;
      const inNetwork =
        /server:\s*(\S+)/.exec(internal)?.[1] ?? `https://${o.kindCluster}-control-plane:6443`;
      const kindCa = /certificate-authority-data:\s*(\S+)/.exec(internal)?.[1];
      if (c.endpoint.replace(/\/$/, '') !== inNetwork)
        warn(
          `DescribeCluster answers ${c.endpoint}, but the kind API server is ${inNetwork} on the "kind" Docker network: the functions will not reach this cluster, so the sync steps will fail`,
        );
      if (kindCa && kindCa !== c.certificateAuthority.data)
        warn(
          'the CA DescribeCluster returns is not the kind cluster CA: the functions will refuse its certificate',
        );
    }

    // ------------------------------------------------------------------ image
    say(`Controller image ${o.image}`);
    if (o.build) {
      must('docker', ['build', '-t', o.image, ...(o.platform ? ['--platform', o.platform] : []), REPO_ROOT], {
        inherit: true,
      });
      if (o.mode === 'existing') must('docker', ['push', o.image], { inherit: true });
    }
    if (o.mode === 'kind')
      must('kind', ['load', 'docker-image', o.image, '--name', o.kindCluster], { inherit: true });

    // ------------------------------------------------------------------ install
    say(`helm install ${RELEASE} (namespace ${o.releaseNamespace}), watching ${o.namespace} and ${deniedNs}`);
    const others = (
      JSON.parse(
        kubectlMust(['get', 'deployments', '-A', '-l', 'app.kubernetes.io/part-of=secretsync', '-o', 'json']),
      ) as { items: { metadata: { name: string; namespace: string } }[] }
    ).items.filter((d) => !(d.metadata.namespace === o.releaseNamespace && d.metadata.name === RELEASE));
    if (others.length > 0)
      throw new PrerequisiteError(
        `another secretsync controller runs in this cluster (${others.map((d) => `${d.metadata.namespace}/${d.metadata.name}`).join(', ')}); it would reconcile the test's SecretSyncs too`,
      );
    crdExisted = kubectl(['get', 'crd', SSYNC_RESOURCE]).status === 0;
    for (const ns of [o.namespace, deniedNs])
      if (kubectl(['get', 'namespace', ns]).status === 0)
        throw new PrerequisiteError(
          `namespace ${ns} exists already (a previous run?); delete it or pass --namespace`,
        );
    namespacesCreated = true;
    kubectlMust(['create', 'namespace', o.namespace]);
    kubectlMust(['create', 'namespace', deniedNs]);
    const ctx: HelmContext = {};
    if (o.mode === 'kind') {
      let podEndpoint = o.podAwsEndpoint;
      if (!podEndpoint) {
        const container = o.localstackContainer;
        if (exec('docker', ['inspect', container]).status !== 0)
          throw new PrerequisiteError(
            `no Docker container ${container}: start LocalStack (see e2e/kind/README.md), or pass --localstack-container / --pod-aws-endpoint`,
          );
        const connect = exec('docker', ['network', 'connect', 'kind', container]);
        if (connect.status !== 0 && !/already exists/.test(connect.stderr))
          throw new Failure(`docker network connect kind ${container}: ${tail(connect.stderr, 3)}`);
        // Only this one variable is read: the container's environment may hold a LocalStack token.
        const envs = JSON.parse(
          exec('docker', ['inspect', container, '--format', '{{json .Config.Env}}']).stdout || '[]',
        ) as string[];
        if (!envs.includes('LAMBDA_DOCKER_NETWORK=kind'))
          warn(
            `${container} lacks LAMBDA_DOCKER_NETWORK=kind: its function containers will not reach the kind API server`,
          );
        podEndpoint = `http://${container}:4566`;
      }
      ctx.podAwsEndpoint = podEndpoint;
      info(`the controller reaches AWS at ${podEndpoint}`);
      // The controller's credentials: the script's own, into a Secret (stdin; never on a command line).
      const creds = await sts.config.credentials();
      const stringData: Record<string, string> = {
        AWS_ACCESS_KEY_ID: creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
        ...(creds.sessionToken ? { AWS_SESSION_TOKEN: creds.sessionToken } : {}),
      };
      if (kubectl(['get', 'namespace', o.releaseNamespace]).status !== 0)
        kubectlMust(['create', 'namespace', o.releaseNamespace]);
      kubectlMust(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: CREDENTIALS_SECRET, namespace: o.releaseNamespace },
          type: 'Opaque',
          stringData,
        }),
      });
      ctx.credentialsSecret = { name: CREDENTIALS_SECRET, sessionToken: creds.sessionToken !== undefined };
    }
    releaseInstalled = true;
    const installed = exec('helm', [...helmFlags, ...helmInstallArgs(o, ctx)], { inherit: true });
    const controllerState = () => {
      const pods = kubectl([
        'get',
        'pods',
        '-n',
        o.releaseNamespace,
        '-l',
        `app.kubernetes.io/instance=${RELEASE}`,
        '-o',
        'wide',
      ]).stdout;
      const logs = kubectl(['logs', '-n', o.releaseNamespace, `deployment/${RELEASE}`, '--tail=40']).stdout;
      return `pods:\n${pods}\ncontroller log (last lines):\n${logs}`;
    };
    if (installed.status !== 0) throw new Failure(`helm install failed\n${controllerState()}`);
    const rollout = kubectl([
      'rollout',
      'status',
      `deployment/${RELEASE}`,
      '-n',
      o.releaseNamespace,
      `--timeout=${o.timeoutSeconds}s`,
    ]);
    if (rollout.status !== 0)
      throw new Failure(`the controller Deployment did not become Ready\n${controllerState()}`);
    info(tail(rollout.stdout, 1));
    const leader = await waitFor(
      'a leader (Lease)',
      timeoutMs,
      () =>
        kubectl([
          'get',
          'lease',
          `${RELEASE}-leader`,
          '-n',
          o.releaseNamespace,
          '-o',
          'jsonpath={.spec.holderIdentity}',
        ]).stdout.trim() || undefined,
      controllerState,
    );
    info(`leader: ${leader}`);

    // ------------------------------------------------------------------ AWS secret
    say(
      `AWS secret, tagged secretsync.io/namespaces=${o.namespace} (tenancy "tag": ${deniedNs} is not listed)`,
    );
    const first = { username: `e2e-${runId}`, password: randomBytes(24).toString('base64url') };
    const created = await sm.send(
      new CreateSecretCommand({
        Name: `secretsync-e2e/${runId}/db`,
        Description: 'secretsync end-to-end test (e2e/kind/run.ts); safe to delete',
        SecretString: JSON.stringify(first),
        Tags: [
          { Key: 'secretsync.io/namespaces', Value: o.namespace },
          { Key: 'secretsync-e2e/run', Value: runId },
        ],
      }),
    );
    secretArn = created.ARN;
    if (!secretArn) throw new Failure('CreateSecret returned no ARN');
    info(secretArn);

    // ------------------------------------------------------------------ SecretSyncs
    say(
      `kubectl apply: SecretSync ${o.namespace}/${SYNC_NAME} (allowed) and ${deniedNs}/${SYNC_NAME} (denied)`,
    );
    const manifest = (ns: string) => ({
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name: SYNC_NAME, namespace: ns },
      spec: {
        source: { secretId: secretArn },
        target: {
          name: TARGET_NAME,
          keys: [
            { from: 'username', to: 'DB_USER' },
            { from: 'password', to: 'DB_PASSWORD' },
          ],
        },
      },
    });
    syncsApplied = true;
    kubectlMust(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [manifest(o.namespace), manifest(deniedNs)],
      }),
    });

    say('Ready: the controller provisioned role, function, rule, log group and access entry');
    const ready = await waitFor(
      `${o.namespace}/${SYNC_NAME} Ready=True`,
      timeoutMs,
      () => {
        const ss = getSync(o.namespace, SYNC_NAME);
        return conditionOf(ss, 'Ready')?.status === 'True' ? ss : undefined;
      },
      () => `${describeConditions(getSync(o.namespace, SYNC_NAME))}\n${controllerState()}`,
      2000,
    );
    if (!ready.metadata.finalizers?.includes(FINALIZER))
      throw new Failure(`Ready, but the finalizer ${FINALIZER} is missing`);
    const names = namesFor(o.namespace);
    const st = ready.status ?? {};
    const expectedTags = ownershipTags({
      clusterArn: clusterId(),
      namespace: o.namespace,
      name: SYNC_NAME,
      uid: ready.metadata.uid ?? '',
    });
    if (st.secretArn !== secretArn)
      throw new Failure(`status.secretArn is ${st.secretArn}, not ${secretArn}`);
    if (!st.functionArn?.endsWith(`:function:${names.functionName}`))
      throw new Failure(`status.functionArn ${st.functionArn} does not name ${names.functionName}`);
    if (!st.roleArn?.endsWith(`:role${names.rolePath}${names.roleName}`))
      throw new Failure(`status.roleArn ${st.roleArn} does not name ${names.rolePath}${names.roleName}`);
    if (!st.ruleArn?.endsWith(`:rule/${names.ruleName}`))
      throw new Failure(`status.ruleArn ${st.ruleArn} does not name ${names.ruleName}`);
    const roleTags = fromTagList(
      (await iam.send(new ListRoleTagsCommand({ RoleName: names.roleName }))).Tags,
    );
    expectOwnership(`IAM role ${names.roleName}`, roleTags, expectedTags);
    const fn = await lambda.send(new GetFunctionCommand({ FunctionName: names.functionName }));
    expectOwnership(`Lambda function ${names.functionName}`, fn.Tags ?? {}, expectedTags);
    const ruleTags = fromTagList(
      (await events.send(new ListTagsForResourceCommand({ ResourceARN: st.ruleArn }))).Tags,
    );
    expectOwnership(`EventBridge rule ${names.ruleName}`, ruleTags, expectedTags);
    const entry = await eks.send(
      new DescribeAccessEntryCommand({ clusterName: o.eksCluster, principalArn: st.roleArn }),
    );
    if (entry.accessEntry?.username !== names.eksUsername)
      throw new Failure(
        `the access entry's username is ${entry.accessEntry?.username}, not ${names.eksUsername}`,
      );
    expectOwnership('EKS access entry', entry.accessEntry?.tags ?? {}, expectedTags);
    const rbac = kubectlMust(['get', 'role,rolebinding', names.rbacName, '-n', o.namespace, '-o', 'name']);
    if (rbac.trim().split('\n').length !== 2)
      throw new Failure(`Role/RoleBinding ${names.rbacName} missing: ${rbac}`);
    info(
      `finalizer ${FINALIZER}; role, function, rule and access entry ${names.stem} carry the ownership tags`,
    );
    info(`access entry username ${names.eksUsername}; Role/RoleBinding ${o.namespace}/${names.rbacName}`);

    say(`Default deny: ${deniedNs}/${SYNC_NAME} is refused and gets nothing in AWS`);
    await waitFor(
      `${deniedNs}/${SYNC_NAME} Ready=False PolicyDenied`,
      timeoutMs,
      () =>
        conditionOf(getSync(deniedNs, SYNC_NAME), 'Ready')?.reason === 'PolicyDenied' ? true : undefined,
      () => describeConditions(getSync(deniedNs, SYNC_NAME)),
      2000,
    );
    const denied = namesFor(deniedNs);
    if (
      !(await gone('GetFunction', denied.functionName, () =>
        lambda.send(new GetFunctionCommand({ FunctionName: denied.functionName })),
      ))
    )
      throw new Failure(`a function ${denied.functionName} exists for the denied SecretSync`);
    if (
      !(await gone('GetRole', denied.roleName, () =>
        iam.send(new GetRoleCommand({ RoleName: denied.roleName })),
      ))
    )
      throw new Failure(`a role ${denied.roleName} exists for the denied SecretSync`);
    info('PolicyDenied; no function, no role');

    // ------------------------------------------------------------------ values
    const readSecretData = (): Record<string, string> | undefined => {
      const out = kubectl([
        'get',
        'secret',
        TARGET_NAME,
        '-n',
        o.namespace,
        '-o',
        'json',
        '--ignore-not-found',
      ]).stdout;
      return out.trim() ? ((JSON.parse(out) as { data?: Record<string, string> }).data ?? {}) : undefined;
    };
    const expectedData = (v: { username: string; password: string }) => ({
      DB_USER: v.username,
      DB_PASSWORD: v.password,
    });
    if (o.skipSync) {
      say('--skip-sync: the value checks (Synced, first sync, change followed) are skipped');
    } else {
      say(`Synced: Secret ${o.namespace}/${TARGET_NAME} holds the AWS value`);
      await waitFor(
        `Synced=True with version ${created.VersionId}`,
        timeoutMs,
        () => {
          const ss = getSync(o.namespace, SYNC_NAME);
          return conditionOf(ss, 'Synced')?.status === 'True' &&
            ss?.status?.syncedVersionId === created.VersionId &&
            dataMatches(readSecretData(), expectedData(first))
            ? true
            : undefined;
        },
        () => describeConditions(getSync(o.namespace, SYNC_NAME)),
        1000,
      );
      info('DB_USER, DB_PASSWORD: sha256 matches the AWS value');

      say('PutSecretValue: the Secret follows the change');
      const second = { ...first, password: randomBytes(24).toString('base64url') };
      const put = await sm.send(
        new PutSecretValueCommand({ SecretId: secretArn, SecretString: JSON.stringify(second) }),
      );
      const t0 = performance.now();
      await waitFor(
        'the Secret to hold the new value',
        timeoutMs,
        () => (dataMatches(readSecretData(), expectedData(second)) ? true : undefined),
        () => describeConditions(getSync(o.namespace, SYNC_NAME)),
        200,
      );
      const latency = Math.round(performance.now() - t0);
      info(
        `matches; followed in ${latency} ms (PutSecretValue returned → kubectl saw the value; polled every 200 ms)`,
      );
      await waitFor(
        `status.syncedVersionId ${put.VersionId}`,
        timeoutMs,
        () => (getSync(o.namespace, SYNC_NAME)?.status?.syncedVersionId === put.VersionId ? true : undefined),
        () => describeConditions(getSync(o.namespace, SYNC_NAME)),
      );
    }

    // ------------------------------------------------------------------ delete
    say(
      'kubectl delete secretsync: the finalizer removes the AWS side and the RBAC; the Secret stays (Retain)',
    );
    kubectlMust(['delete', SSYNC_RESOURCE, SYNC_NAME, '-n', o.namespace, '--wait=false']);
    kubectlMust(['delete', SSYNC_RESOURCE, SYNC_NAME, '-n', deniedNs, '--wait=false']);
    for (const ns of [o.namespace, deniedNs]) {
      await waitFor(
        `${ns}/${SYNC_NAME} to be gone`,
        timeoutMs,
        () => (getSync(ns, SYNC_NAME) === undefined ? true : undefined),
        () => {
          const ss = getSync(ns, SYNC_NAME);
          return `finalizers ${JSON.stringify(ss?.metadata.finalizers ?? [])}, deletionTimestamp ${ss?.metadata.deletionTimestamp ?? 'none'}\n${describeConditions(ss)}`;
        },
        2000,
      );
    }
    syncsDeleted = true;
    info('both SecretSyncs gone (finalizer removed by the controller)');
    const rbacLeft = kubectlMust([
      'get',
      'role,rolebinding',
      '-n',
      o.namespace,
      '-o',
      'name',
      '--ignore-not-found',
      names.rbacName,
    ]).trim();
    if (rbacLeft) throw new Failure(`RBAC left behind: ${rbacLeft}`);
    if (readSecretData() === undefined)
      throw new Failure(`Secret ${TARGET_NAME} was deleted, but deletionPolicy is Retain`);
    info(`Role/RoleBinding ${names.rbacName} gone; Secret ${TARGET_NAME} kept`);
    // IAM and the others are eventually consistent: allow a short while.
    await waitFor(
      'every AWS resource of the SecretSyncs to be gone',
      Math.min(timeoutMs, 120_000),
      async () => ((await leftovers()).length === 0 ? true : undefined),
      async () => `still there:\n  ${(await leftovers()).join('\n  ')}`,
      5000,
    );
    const swept = await taggedLeftovers();
    if (swept.length > 0)
      throw new Failure(`left behind, with this run's ownership tags: ${swept.join(', ')}`);
    info(
      `no IAM role, Lambda function, EventBridge rule, log group or access entry of ${names.stem} or ${denied.stem}`,
    );
    info(`no role under ${o.iamPath} or rule named ${sweepPrefix}* tagged for these namespaces`);
    say('Passed');
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    await cleanup().catch((err: unknown) => process.stderr.write(`cleanup: ${(err as Error).message}\n`));
  }

  async function cleanup(): Promise<void> {
    const keepAll = o.keep && failed;
    if (!(kindCreated || namespacesCreated || releaseInstalled || secretArn)) {
      rmSync(work, { recursive: true, force: true });
      return;
    }
    process.stdout.write(`\n\x1b[1m▶ Cleanup${o.keep ? ' (--keep)' : ''}\x1b[0m\n`);
    if (syncsApplied && !syncsDeleted && !keepAll) {
      // The controller must still run: it deletes the AWS side before it lets the SecretSyncs go.
      kubectl(['delete', SSYNC_RESOURCE, '--all', '-n', o.namespace, '--wait=false']);
      kubectl(['delete', SSYNC_RESOURCE, '--all', '-n', deniedNs, '--wait=false']);
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const remaining = [o.namespace, deniedNs].filter((ns) => getSyncSafe(ns) !== undefined);
        if (remaining.length === 0) {
          syncsDeleted = true;
          break;
        }
        await sleep(2000);
      }
      if (!syncsDeleted)
        warn('the SecretSyncs did not go (their finalizers stay until the controller cleans up)');
    }
    if (accountId && syncsApplied && (!syncsDeleted || failed)) {
      const left = await leftovers().catch(() => []);
      if (left.length > 0)
        warn(
          `AWS resources of this run still exist; delete them by hand if they stay:\n    ${left.join('\n    ')}`,
        );
    }
    if (secretArn && !keepAll) {
      await sm
        .send(new DeleteSecretCommand({ SecretId: secretArn, ForceDeleteWithoutRecovery: true }))
        .then(() => info(`AWS secret deleted`))
        .catch((err: unknown) =>
          warn(`could not delete the AWS secret ${secretArn}: ${(err as Error).message}`),
        );
    } else if (secretArn) info(`kept the AWS secret ${secretArn}`);
    // A cluster this run did not create (EKS, or --reuse-kind) is left as it was found.
    if (!kindCreated && !o.keep) {
      // Without the controller, SecretSyncs still holding the finalizer could never be deleted.
      const syncsGone = syncsDeleted || !syncsApplied;
      if (releaseInstalled && syncsGone)
        exec('helm', [...helmFlags, 'uninstall', RELEASE, '-n', o.releaseNamespace, '--wait']);
      if (namespacesCreated && syncsGone) {
        kubectl(['delete', 'namespace', o.namespace, deniedNs, '--ignore-not-found', '--wait=false']);
        kubectl(['delete', 'namespace', o.releaseNamespace, '--ignore-not-found', '--wait=false']);
        if (!crdExisted) kubectl(['delete', 'crd', SSYNC_RESOURCE, '--ignore-not-found', '--wait=false']);
      }
      if (syncsGone) info('release, namespaces and (if this run installed it) the CRD removed');
      else
        warn(
          `kept the release ${o.releaseNamespace}/${RELEASE}: its controller still has SecretSyncs to clean up`,
        );
    }
    if (kindCreated && !o.keep) {
      exec('kind', ['delete', 'cluster', '--name', o.kindCluster], { inherit: true });
    } else if (kindCreated) {
      info(`kept kind cluster ${o.kindCluster}: kind export kubeconfig --name ${o.kindCluster}`);
      info(`delete it with: kind delete cluster --name ${o.kindCluster}`);
    }
    // The kubeconfig in it is disposable: `kind export kubeconfig` writes a new one.
    rmSync(work, { recursive: true, force: true });
  }

  function getSyncSafe(ns: string): SecretSync | undefined {
    try {
      return getSync(ns, SYNC_NAME);
    } catch {
      return undefined;
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return 0;
  }
  let o: Options;
  try {
    o = parseOptions(argv, process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`e2e/kind/run.ts: ${err.message}\n(run with --help for usage)\n`);
    return 2;
  }
  try {
    await runE2e(o);
    return 0;
  } catch (err) {
    if (err instanceof PrerequisiteError) {
      process.stderr.write(`\nprerequisites not met:\n${err.message}\n`);
      return 2;
    }
    process.stderr.write(`\nFAILED: ${(err as Error).message}\n`);
    return 1;
  }
}

// Exit explicitly: the SDK's keep-alive sockets would otherwise hold the process a while.
if (import.meta.main) process.exit(await main(process.argv.slice(2)));
