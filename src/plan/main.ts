import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { functionCodeOf } from '../controller/aws/desired.ts';
import { ConfigError, configFrom, parseFlags, settingsOf } from '../controller/config.ts';
import { SECRET_ARN } from '../lambda/config.ts';
import { checkedPlan } from './check.ts';
import { InputError, readSecretSync } from './input.ts';
import { buildPlan, formatPlan, type PlanReport } from './plan.ts';

// `secretsync plan -f secretsync.yaml [controller flags]`: what the controller, run with those
// flags (or the same SECRETSYNC_* environment), would create for that SecretSync.
const OWN = {
  file: { type: 'string', short: 'f' },
  name: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  output: { type: 'string', short: 'o' },
  check: { type: 'boolean' },
  account: { type: 'string' },
  'kms-key': { type: 'string' },
  kubeconfig: { type: 'string' },
} as const;

export function planUsage(): string {
  return `Usage: secretsync plan -f <secretsync.yaml> [flags] [controller flags]

Prints everything the controller would create for one SecretSync — AWS names and ARNs, the
function role's trust and inline policy, the log group, the function's settings and environment,
the rule's event pattern and target, the Lambda permission, the EKS access entry, the Role and
RoleBinding — computed by the controller's own code. Without --check it makes no AWS or cluster
call: what only AWS knows at provisioning is shown as <resolved at provisioning: …>.

  -f, --file <path>          a YAML file holding the SecretSync (required)
      --name <name>          which SecretSync, when the file holds several
  -n, --namespace <ns>       its namespace when the file names none (default: default)
  -o, --output text|json     (default text)
      --account <id>         the AWS account the controller runs in (default: from secretId when it is
                             an ARN; required otherwise without --check, as every name hashes the
                             cluster ARN, which holds it)
      --kms-key <id|arn|alias>  the secret's customer-managed KMS key (without --check)
      --check                read AWS (default credential chain, AWS_ENDPOINT_URL honoured) and the
                             cluster (--kubeconfig, else KUBECONFIG or ~/.kube/config), read-only,
                             and mark each item exists, differs, missing or not-ours
      --kubeconfig <path>    for --check

Controller flags: every flag of \`secretsync controller\` (see secretsync controller --help), with
the same SECRETSYNC_* environment variables; --cluster-name and --region are required, and
--iam-path, --name-prefix, --permissions-boundary, --cluster-region, the --lambda-* flags,
--log-retention-days, --max-event-age, --retry-attempts, --on-failure-destination and --tenancy
change the plan.

Exit status: 0 planned (with --check: everything exists as planned), 1 --check found something
that differs, is missing or is not ours, 2 invalid flags or SecretSync, 3 a read of --check failed.
`;
}

/** Runs plan; resolves to the exit status. */
export async function planMain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(planUsage());
    return 0;
  }
  const usageError = (message: string) => {
    process.stderr.write(`secretsync plan: ${message}\n`);
    return 2;
  };
  let args: ReturnType<typeof planArgs>;
  try {
    args = planArgs(argv, env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof InputError || err instanceof TypeError)
      return usageError(err.message);
    throw err;
  }
  const { config, sync, json, check } = args;
  const code = functionCodeOf(readFileSync(config.lambda.zipPath));
  let report: PlanReport;
  if (check) {
    const kc = new KubeConfig();
    if (args.kubeconfig) kc.loadFromFile(args.kubeconfig);
    else kc.loadFromDefault();
    try {
      report = await checkedPlan({ sync, config, code, kc, env, account: args.account });
    } catch (err) {
      if (err instanceof InputError) return usageError(err.message);
      process.stderr.write(`secretsync plan --check: ${(err as Error).message}\n`);
      return 3;
    }
  } else {
    // The controller refuses secrets of other accounts, so an ARN's account is the controller's.
    const arn = SECRET_ARN.exec(sync.spec.source.secretId);
    const accountId = args.account ?? arn?.[0].split(':')[4];
    if (accountId === undefined)
      return usageError(
        'the account is needed (every name hashes the cluster ARN, which holds it): pass --account <id>, or --check to read it from STS',
      );
    const partition = arn?.[0].split(':')[1] ?? 'aws';
    report = buildPlan({
      sync,
      settings: settingsOf(config, { accountId, partition }),
      code,
      kmsKeyId: args.kmsKey,
    }).report;
  }
  process.stdout.write(
    json
      ? `${JSON.stringify(report, (_k, v: unknown) => (v === undefined ? null : v), 2)}\n`
      : formatPlan(report),
  );
  return check && report.items.some((i) => i.state !== 'exists') ? 1 : 0;
}

function planArgs(argv: string[], env: NodeJS.ProcessEnv) {
  const values = parseFlags(argv, OWN);
  const config = configFrom(values, env, planUsage());
  const str = (k: keyof typeof OWN) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const file = str('file');
  if (!file) throw new InputError('-f <file> is required: a YAML file holding the SecretSync');
  const output = str('output') ?? 'text';
  if (output !== 'text' && output !== 'json') throw new InputError('-o must be text or json');
  const account = str('account');
  if (account !== undefined && !/^\d{12}$/.test(account))
    throw new InputError('--account must be a 12-digit AWS account id');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return {
    config,
    sync: readSecretSync(text, { file, name: str('name'), namespace: str('namespace') }),
    json: output === 'json',
    check: values.check === true,
    account,
    kmsKey: str('kms-key'),
    kubeconfig: str('kubeconfig'),
  };
}
