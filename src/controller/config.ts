import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { type ControllerSettings, withDefaults } from './aws/desired.ts';
import { DEFAULT_RATE_LIMITS, formatRateLimits, parseRateLimits, type RateLimits } from './aws/rate-limit.ts';

/**
 * Controller settings from flags, with environment variables as defaults (the chart sets env).
 * Everything is validated at start; every problem is reported at once.
 */
export interface ControllerConfig {
  clusterName: string;
  region: string;
  /** The cluster's region; `region` unless set. */
  clusterRegion: string;
  iamPath: string;
  namePrefix: string;
  permissionsBoundary: string | undefined;
  lambda: {
    runtime: string;
    architecture: 'arm64' | 'x86_64';
    memoryMb: number;
    timeoutSeconds: number;
    subnetIds: string[];
    securityGroupIds: string[];
    logRetentionDays: number;
    zipPath: string;
    /** EventBridge's delivery of a change event to the function. */
    maxEventAgeSeconds: number;
    retryAttempts: number;
    /** Lambda's retries of an accepted asynchronous invocation whose run failed. */
    invokeRetryAttempts: number;
    invokeMaxEventAgeSeconds: number;
    onFailureDestination: string | undefined;
  };
  tenancy: 'tag' | 'allow-all';
  namespaces: string[];
  concurrency: number;
  /** Client-side requests per second per AWS service (0 = unlimited); see aws/rate-limit.ts. */
  awsRateLimits: RateLimits;
  /** The inventory pass: lists of what exists compared with what every SecretSync needs. */
  resyncMs: number;
  /** Each SecretSync's deep check: a full pass reading what the lists do not show. */
  deepResyncMs: number;
  clusterCheckMs: number;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  metricsPort: number;
  healthPort: number;
  logLevel: string;
}

export const FLAGS = {
  'cluster-name': { env: 'SECRETSYNC_CLUSTER_NAME', help: 'EKS cluster name (required)' },
  region: { env: 'AWS_REGION', help: 'default AWS region of SecretSyncs, and of the cluster (required)' },
  'cluster-region': {
    env: 'SECRETSYNC_CLUSTER_REGION',
    help: "the cluster's region when it differs from --region (its ARN is the controller's identity)",
  },
  'iam-path': { env: 'SECRETSYNC_IAM_PATH', def: '/secretsync/', help: 'IAM path of the roles created' },
  'name-prefix': {
    env: 'SECRETSYNC_NAME_PREFIX',
    def: 'secretsync',
    help: 'prefix of every AWS resource name',
  },
  'permissions-boundary': {
    env: 'SECRETSYNC_PERMISSIONS_BOUNDARY',
    help: 'ARN of a permissions boundary for the roles',
  },
  'lambda-runtime': { env: 'SECRETSYNC_LAMBDA_RUNTIME', def: 'nodejs24.x', help: 'Lambda runtime' },
  'lambda-architecture': { env: 'SECRETSYNC_LAMBDA_ARCHITECTURE', def: 'arm64', help: 'arm64 or x86_64' },
  'lambda-memory': { env: 'SECRETSYNC_LAMBDA_MEMORY', def: '128', help: 'function memory in MB (128-10240)' },
  'lambda-timeout': {
    env: 'SECRETSYNC_LAMBDA_TIMEOUT',
    def: '30',
    help: 'function timeout in seconds (3-900)',
  },
  'lambda-subnets': {
    env: 'SECRETSYNC_LAMBDA_SUBNETS',
    def: '',
    help: 'comma-separated subnet ids for a VPC function',
  },
  'lambda-security-groups': {
    env: 'SECRETSYNC_LAMBDA_SECURITY_GROUPS',
    def: '',
    help: 'comma-separated security group ids',
  },
  'log-retention-days': {
    env: 'SECRETSYNC_LOG_RETENTION_DAYS',
    def: '30',
    help: 'CloudWatch Logs retention',
  },
  'lambda-zip': {
    env: 'SECRETSYNC_LAMBDA_ZIP',
    help: 'path of the function zip (default: next to the controller bundle)',
  },
  'max-event-age': {
    env: 'SECRETSYNC_MAX_EVENT_AGE',
    def: '3600',
    help: 'seconds EventBridge keeps retrying to deliver a change event (60-86400)',
  },
  'retry-attempts': {
    env: 'SECRETSYNC_RETRY_ATTEMPTS',
    def: '20',
    help: 'EventBridge delivery retries of a change event (0-185)',
  },
  'lambda-retry-attempts': {
    env: 'SECRETSYNC_LAMBDA_RETRY_ATTEMPTS',
    def: '2',
    help: 'Lambda retries of a run that failed with a transient reason (0-2)',
  },
  'lambda-max-event-age': {
    env: 'SECRETSYNC_LAMBDA_MAX_EVENT_AGE',
    def: '3600',
    help: 'seconds Lambda keeps a failed invocation for its retries (60-21600)',
  },
  'on-failure-destination': {
    env: 'SECRETSYNC_ON_FAILURE_DESTINATION',
    help: 'ARN of an SQS queue, SNS topic, Lambda function or EventBridge bus for invocations that failed every try',
  },
  tenancy: {
    env: 'SECRETSYNC_TENANCY',
    def: 'tag',
    help: "'tag' (default deny; the AWS secret's tag lists the namespace, or a SecretSyncPolicy grants it) or 'allow-all'",
  },
  namespaces: {
    env: 'SECRETSYNC_NAMESPACES',
    def: '',
    help: 'comma-separated namespaces to watch (default all)',
  },
  concurrency: { env: 'SECRETSYNC_CONCURRENCY', def: '4', help: 'SecretSyncs reconciled at once' },
  'aws-rate-limits': {
    env: 'SECRETSYNC_AWS_RATE_LIMITS',
    def: '',
    help: `AWS requests per second per service, e.g. iam=2,logs=0 (0 = unlimited; a service not named keeps its default: ${formatRateLimits(DEFAULT_RATE_LIMITS)}); per region, IAM per account`,
  },
  'resync-period': {
    env: 'SECRETSYNC_RESYNC_PERIOD',
    def: '10m',
    help: 'inventory pass: list what exists in AWS per region and give a full pass only to SecretSyncs whose resources differ (drift, a missed change event, consent withdrawn)',
  },
  'deep-resync-period': {
    env: 'SECRETSYNC_DEEP_RESYNC_PERIOD',
    def: '12h',
    help: "how often each SecretSync's resources are read one by one (policies, rule target, Lambda permission, invoke config, access entry, tags: what lists do not show), spread evenly over the period",
  },
  'cluster-check-period': {
    env: 'SECRETSYNC_CLUSTER_CHECK_PERIOD',
    def: '5m',
    help: 'DescribeCluster interval',
  },
  'leader-elect': {
    env: 'SECRETSYNC_LEADER_ELECT',
    def: 'true',
    help: 'use a Lease so only one replica works',
  },
  'leader-election-namespace': { env: 'POD_NAMESPACE', def: 'secretsync', help: 'namespace of the Lease' },
  'lease-name': { env: 'SECRETSYNC_LEASE_NAME', def: 'secretsync-controller', help: 'name of the Lease' },
  identity: { env: 'POD_NAME', help: 'leader identity (default hostname + pid)' },
  'metrics-port': {
    env: 'SECRETSYNC_METRICS_PORT',
    def: '8080',
    help: 'Prometheus /metrics port (0 disables)',
  },
  'health-port': {
    env: 'SECRETSYNC_HEALTH_PORT',
    def: '8081',
    help: '/healthz and /readyz port (0 disables)',
  },
  'log-level': { env: 'SECRETSYNC_LOG_LEVEL', def: 'info', help: 'trace, debug, info, warn or error' },
} as const satisfies Record<string, { env: string; def?: string; help: string }>;

export type Flag = keyof typeof FLAGS;

export class ConfigError extends Error {}

export function usage(): string {
  const lines = Object.entries(FLAGS).map(
    ([k, v]) =>
      `  --${k.padEnd(26)} ${v.help} [env ${v.env}${'def' in v && v.def ? `, default ${v.def}` : ''}]`,
  );
  return `Usage: secretsync-controller [flags]\n\n${lines.join('\n')}\n  --help                      this text\n`;
}

/** A Go duration ("90s", "10m", "1h30m", "1500ms", "250us") → ms; "0" → 0; anything else undefined. */
export function parseDuration(s: string): number | undefined {
  if (s === '0') return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  const unit: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * unit[m[2]!]!;
  return total;
}

export function loadControllerConfig(argv: string[], env: NodeJS.ProcessEnv): ControllerConfig {
  const values = parseFlags(argv);
  if (values.help) throw new ConfigError(usage());
  return configFrom(values, env);
}

export type FlagValues = Record<string, string | boolean | undefined>;

/**
 * The controller's flags and `--help`, plus a command's own options (`secretsync plan` takes the
 * controller's flags so it computes what this controller, so configured, would create).
 */
export function parseFlags(argv: string[], own: ParseArgsOptionsConfig = {}): FlagValues {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }])),
      help: { type: 'boolean' as const },
      ...own,
    },
    strict: true,
  });
  return values as FlagValues;
}

/** Validated settings from parsed flags, with environment variables as defaults; every problem at once. */
export function configFrom(
  values: FlagValues,
  env: NodeJS.ProcessEnv,
  usageText = usage(),
): ControllerConfig {
  const problems: string[] = [];
  const get = (k: Flag): string => {
    const f = FLAGS[k];
    return String(values[k] ?? env[f.env] ?? ('def' in f ? f.def : '') ?? '').trim();
  };
  const int = (k: Flag, min: number, max: number): number => {
    const v = Number(get(k));
    if (!Number.isInteger(v) || v < min || v > max)
      problems.push(`--${k} must be an integer in ${min}..${max} (got "${get(k)}")`);
    return v;
  };
  const duration = (k: Flag, minMs: number): number => {
    const v = parseDuration(get(k));
    if (v === undefined || v < minMs)
      problems.push(`--${k} must be a duration of at least ${minMs / 1000}s, like 10m (got "${get(k)}")`);
    return v ?? 0;
  };
  // CloudWatch Logs accepts only these retention periods.
  const RETENTIONS = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
  ];
  const retention = (): number => {
    const v = Number(get('log-retention-days'));
    if (!RETENTIONS.includes(v))
      problems.push(
        `--log-retention-days must be one of ${RETENTIONS.join(', ')} (got "${get('log-retention-days')}")`,
      );
    return v;
  };
  const list = (k: Flag) =>
    get(k)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);

  const clusterName = get('cluster-name');
  if (!/^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/.test(clusterName))
    problems.push('--cluster-name is required: the EKS cluster name');
  const region = get('region') || env.AWS_DEFAULT_REGION || '';
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
    problems.push('--region (or AWS_REGION) is required, e.g. eu-west-1');
  const clusterRegion = get('cluster-region') || region;
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(clusterRegion))
    problems.push(`--cluster-region must be an AWS region, e.g. eu-west-1 (got "${clusterRegion}")`);
  const iamPath = get('iam-path');
  if (!/^\/([\w+=,.@-]+\/)*$/.test(iamPath))
    problems.push(`--iam-path must start and end with "/" (got "${iamPath}")`);
  const namePrefix = get('name-prefix');
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(namePrefix))
    problems.push('--name-prefix must be 1-20 lower-case letters, digits or "-"');
  const boundary = get('permissions-boundary') || undefined;
  if (boundary && !/^arn:aws[a-z-]*:iam::\d{12}:policy\/.+/.test(boundary))
    problems.push('--permissions-boundary must be an IAM policy ARN');
  const arch = get('lambda-architecture');
  if (arch !== 'arm64' && arch !== 'x86_64') problems.push('--lambda-architecture must be arm64 or x86_64');
  const tenancy = get('tenancy');
  if (tenancy !== 'tag' && tenancy !== 'allow-all') problems.push("--tenancy must be 'tag' or 'allow-all'");
  const subnetIds = list('lambda-subnets');
  const securityGroupIds = list('lambda-security-groups');
  if ((subnetIds.length === 0) !== (securityGroupIds.length === 0)) {
    problems.push('--lambda-subnets and --lambda-security-groups must be given together');
  }
  const rateLimits = parseRateLimits(get('aws-rate-limits'));
  for (const p of rateLimits.problems) problems.push(`--aws-rate-limits: ${p}`);
  const onFailureDestination = get('on-failure-destination') || undefined;
  if (
    onFailureDestination &&
    !/^arn:aws[a-z-]*:(sqs|sns|lambda|events):[a-z0-9-]+:\d{12}:(?!event-bus\/?$).+$/.test(
      onFailureDestination,
    )
  )
    problems.push(
      '--on-failure-destination must be the ARN of an SQS queue, SNS topic, Lambda function or EventBridge bus',
    );
  const here = dirname(fileURLToPath(import.meta.url));
  const zipPath = get('lambda-zip') || join(here, 'lambda', 'secretsync-lambda.zip');
  try {
    readFileSync(zipPath);
  } catch {
    problems.push(`the function zip ${zipPath} cannot be read (run \`make build\`, or pass --lambda-zip)`);
  }

  const cfg: ControllerConfig = {
    clusterName,
    region,
    clusterRegion,
    iamPath,
    namePrefix,
    permissionsBoundary: boundary,
    lambda: {
      runtime: get('lambda-runtime'),
      architecture: arch as 'arm64' | 'x86_64',
      memoryMb: int('lambda-memory', 128, 10240),
      timeoutSeconds: int('lambda-timeout', 3, 900),
      subnetIds,
      securityGroupIds,
      logRetentionDays: retention(),
      zipPath,
      maxEventAgeSeconds: int('max-event-age', 60, 86400),
      retryAttempts: int('retry-attempts', 0, 185),
      invokeRetryAttempts: int('lambda-retry-attempts', 0, 2),
      invokeMaxEventAgeSeconds: int('lambda-max-event-age', 60, 21600),
      onFailureDestination,
    },
    tenancy: tenancy as 'tag' | 'allow-all',
    namespaces: list('namespaces'),
    concurrency: int('concurrency', 1, 64),
    awsRateLimits: rateLimits.limits,
    resyncMs: duration('resync-period', 10_000),
    deepResyncMs: duration('deep-resync-period', 10_000),
    clusterCheckMs: duration('cluster-check-period', 10_000),
    leaderElect: get('leader-elect') !== 'false',
    leaseNamespace: get('leader-election-namespace'),
    leaseName: get('lease-name'),
    identity: get('identity') || `${env.HOSTNAME ?? 'controller'}-${process.pid}`,
    metricsPort: int('metrics-port', 0, 65535),
    healthPort: int('health-port', 0, 65535),
    logLevel: get('log-level'),
  };
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(cfg.logLevel))
    problems.push('--log-level must be trace, debug, info, warn or error');
  if (problems.length > 0)
    throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}\n\n${usageText}`);
  return cfg;
}

/**
 * What the desired state is computed from: the settings, with the account and partition of the
 * identity the controller runs as (STS at start; `secretsync plan` takes them from flags or STS).
 */
export function settingsOf(
  config: ControllerConfig,
  identity: { accountId: string; partition: string },
): ControllerSettings {
  return withDefaults({
    clusterName: config.clusterName,
    region: config.region,
    clusterRegion: config.clusterRegion,
    accountId: identity.accountId,
    partition: identity.partition,
    iamPath: config.iamPath,
    namePrefix: config.namePrefix,
    permissionsBoundaryArn: config.permissionsBoundary,
    runtime: config.lambda.runtime,
    architecture: config.lambda.architecture,
    memoryMb: config.lambda.memoryMb,
    timeoutSeconds: config.lambda.timeoutSeconds,
    vpc:
      config.lambda.subnetIds.length > 0
        ? { subnetIds: config.lambda.subnetIds, securityGroupIds: config.lambda.securityGroupIds }
        : undefined,
    logRetentionDays: config.lambda.logRetentionDays,
    eventMaxAgeSeconds: config.lambda.maxEventAgeSeconds,
    eventRetryAttempts: config.lambda.retryAttempts,
    lambdaRetryAttempts: config.lambda.invokeRetryAttempts,
    lambdaMaxEventAgeSeconds: config.lambda.invokeMaxEventAgeSeconds,
    onFailureDestination: config.lambda.onFailureDestination,
  });
}
