import { parseArgs } from 'node:util';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { STSClient } from '@aws-sdk/client-sts';
import { FLAGS, type Flag } from '../controller/config.ts';
import { type DoctorClients, type DoctorInput, formatFindings, runDoctor } from './doctor.ts';

// `secretsync doctor`: the controller's own flags and environment variables (so it can run with the
// chart's settings, e.g. `kubectl exec deploy/secretsync -- secretsync doctor`), plus its own.
const SHARED: Flag[] = [
  'cluster-name',
  'region',
  'iam-path',
  'name-prefix',
  'permissions-boundary',
  'lambda-runtime',
  'lambda-architecture',
  'lambda-subnets',
  'lambda-security-groups',
  'concurrency',
];
const OWN = {
  planned: { help: 'SecretSyncs you plan to add (quota headroom)', def: '100' },
  regions: { help: 'further regions SecretSyncs will use, comma-separated', def: '' },
  'principal-arn': { help: "the controller's IAM role (default: the identity running doctor)", def: '' },
  output: { help: 'text or json', def: 'text' },
} as const;

export function doctorUsage(): string {
  const rows = [
    ...SHARED.map((k) => {
      const f = FLAGS[k];
      return `  --${k.padEnd(24)} ${f.help} [env ${f.env}${'def' in f && f.def ? `, default ${f.def}` : ''}]`;
    }),
    ...Object.entries(OWN).map(
      ([k, v]) => `  --${k.padEnd(24)} ${v.help}${v.def ? ` [default ${v.def}]` : ''}`,
    ),
  ];
  return `Usage: secretsync doctor [flags]

Checks what makes a first install fail — cluster authentication mode, endpoint reachability, the
controller's IAM permissions (policy simulation), the Lambda runtime, concurrency and quotas —
and says how to fix each. Read-only. Exit status: 0 nothing failed, 1 a check failed, 2 bad flags.

${rows.join('\n')}
`;
}

export class UsageError extends Error {}

export function doctorInput(argv: string[], env: NodeJS.ProcessEnv): { input: DoctorInput; json: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries([
      ...[...SHARED, ...Object.keys(OWN)].map((k) => [k, { type: 'string' as const }]),
      ['help', { type: 'boolean' as const }],
    ]),
    strict: true,
  }) as { values: Record<string, string | boolean | undefined> };
  if (values.help) throw new UsageError(doctorUsage());
  const shared = (k: Flag): string => {
    const f = FLAGS[k];
    return String(values[k] ?? env[f.env] ?? ('def' in f ? f.def : '') ?? '').trim();
  };
  const own = (k: keyof typeof OWN): string => String(values[k] ?? OWN[k].def).trim();
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const problems: string[] = [];
  const input: DoctorInput = {
    clusterName: shared('cluster-name'),
    region: shared('region') || env.AWS_DEFAULT_REGION || '',
    regions: list(own('regions')),
    iamPath: shared('iam-path'),
    namePrefix: shared('name-prefix'),
    permissionsBoundary: shared('permissions-boundary') || undefined,
    runtime: shared('lambda-runtime'),
    architecture: shared('lambda-architecture'),
    subnetIds: list(shared('lambda-subnets')),
    securityGroupIds: list(shared('lambda-security-groups')),
    concurrency: Number(shared('concurrency')),
    planned: Number(own('planned')),
    principalArn: own('principal-arn') || undefined,
  };
  if (!input.clusterName) problems.push('--cluster-name (or SECRETSYNC_CLUSTER_NAME) is required');
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(input.region))
    problems.push('--region (or AWS_REGION) is required, e.g. eu-west-1');
  if (!Number.isInteger(input.planned) || input.planned < 0)
    problems.push('--planned must be a whole number');
  if (!Number.isInteger(input.concurrency) || input.concurrency < 1)
    problems.push('--concurrency must be a positive whole number');
  if (!['text', 'json'].includes(own('output'))) problems.push('--output must be text or json');
  if (problems.length > 0) throw new UsageError(`${problems.join('\n')}\n\n${doctorUsage()}`);
  return { input, json: own('output') === 'json' };
}

function clientsFor(input: DoctorInput, env: NodeJS.ProcessEnv): DoctorClients {
  const endpoint = env.AWS_ENDPOINT_URL;
  const config = (region: string) => ({ region, ...(endpoint ? { endpoint } : {}) });
  const cached = <T>(make: (region: string) => T) => {
    const made = new Map<string, T>();
    return (region: string) => made.get(region) ?? made.set(region, make(region)).get(region)!;
  };
  return {
    sts: new STSClient(config(input.region)),
    iam: new IAMClient(config(input.region)),
    eks: new EKSClient(config(input.region)),
    lambda: cached((r) => new LambdaClient(config(r))),
    events: cached((r) => new EventBridgeClient(config(r))),
    quotas: cached((r) => new ServiceQuotasClient(config(r))),
  };
}

/** Runs doctor; resolves to the exit status. */
export async function doctorMain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed: ReturnType<typeof doctorInput>;
  try {
    parsed = doctorInput(argv, env);
  } catch (err) {
    const help = argv.includes('--help');
    (help ? process.stdout : process.stderr).write(`${(err as Error).message}\n`);
    return help ? 0 : 2;
  }
  const { input, json } = parsed;
  const findings = await runDoctor(input, clientsFor(input, env));
  const failed = findings.some((f) => f.status === 'fail');
  process.stdout.write(
    json
      ? `${JSON.stringify({ ok: !failed, findings }, null, 2)}\n`
      : formatFindings(
          findings,
          `secretsync doctor: cluster ${input.clusterName} in ${input.region}, ${input.planned} SecretSyncs planned`,
        ),
  );
  return failed ? 1 : 0;
}
