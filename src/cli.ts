import { parseArgs } from 'node:util';
import {
  controllerIdentityPolicy,
  irsaTrustPolicy,
  podIdentityTrustPolicy,
} from './controller/iam-policy.ts';

// The `secretsync` CLI. `controller` runs the controller; `doctor` checks an account and cluster
// before an install; `plan` prints what the controller would create for a SecretSync; `iam-policy`
// prints the controller's least-privilege IAM policy (and a trust policy for IRSA or EKS Pod Identity).
const HELP = `Usage: secretsync <command> [flags]

Commands:
  controller [flags]       run the controller (see: secretsync controller --help)
  doctor [flags]           check an account and cluster before installing (see: secretsync doctor --help)
  plan -f <file> [flags]   print what the controller would create for a SecretSync, without calling
                           AWS; --check compares it with AWS and the cluster (see: secretsync plan --help)
  iam-policy [flags]       print the controller's IAM identity policy as JSON
      --account <id>               AWS account id (required)
      --region <region>            the cluster's region (required)
      --cluster <name>             EKS cluster name (required)
      --regions <a,b|*>            further regions SecretSyncs may use (default: the cluster's only)
      --iam-path </secretsync/>    IAM path of the function roles
      --name-prefix <secretsync>   prefix of every AWS name the controller creates
      --permissions-boundary <arn> require this boundary on every role the controller creates
      --vpc                        functions run in a VPC (adds the EC2 describes Lambda checks)
      --trust irsa|pod-identity    print the trust policy instead
      --oidc-issuer <url>          (irsa) the cluster's OIDC issuer URL
      --namespace <secretsync>     (irsa) the controller's namespace
      --service-account <name>     (irsa) the controller's service account (default secretsync)
`;

const [command, ...rest] = process.argv.slice(2);
if (command === 'controller') {
  process.argv.splice(2, 1);
  await import('./controller/main.ts');
} else if (command === 'doctor') {
  const { doctorMain } = await import('./doctor/main.ts');
  process.exitCode = await doctorMain(rest, process.env);
} else if (command === 'plan') {
  const { planMain } = await import('./plan/main.ts');
  process.exitCode = await planMain(rest, process.env);
} else if (command === 'iam-policy') {
  const { values: v } = parseArgs({
    args: rest,
    options: {
      account: { type: 'string' },
      region: { type: 'string' },
      cluster: { type: 'string' },
      regions: { type: 'string', default: '' },
      'iam-path': { type: 'string', default: '/secretsync/' },
      'name-prefix': { type: 'string', default: 'secretsync' },
      'permissions-boundary': { type: 'string' },
      vpc: { type: 'boolean', default: false },
      trust: { type: 'string' },
      'oidc-issuer': { type: 'string' },
      namespace: { type: 'string', default: 'secretsync' },
      'service-account': { type: 'string', default: 'secretsync' },
    },
  });
  const missing = ['account', 'region', 'cluster'].filter((k) => !v[k as keyof typeof v]);
  if (v.trust === 'pod-identity') {
    print(podIdentityTrustPolicy());
  } else if (v.trust === 'irsa') {
    if (!v.account || !v['oidc-issuer']) fail('--trust irsa needs --account and --oidc-issuer');
    print(
      irsaTrustPolicy({
        accountId: v.account!,
        oidcIssuer: v['oidc-issuer']!,
        namespace: v.namespace!,
        serviceAccount: v['service-account']!,
      }),
    );
  } else if (missing.length > 0) {
    fail(`iam-policy needs ${missing.map((m) => `--${m}`).join(', ')}`);
  } else {
    if (!/^\d{12}$/.test(v.account!)) fail('--account must be a 12-digit AWS account id');
    print(
      controllerIdentityPolicy({
        accountId: v.account!,
        clusterRegion: v.region!,
        clusterName: v.cluster!,
        regions: v
          .regions!.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        iamPath: v['iam-path']!,
        namePrefix: v['name-prefix']!,
        permissionsBoundaryArn: v['permissions-boundary'],
        vpc: v.vpc === true,
      }),
    );
  }
} else {
  process.stdout.write(HELP);
  process.exit(command === undefined || command === '--help' || command === 'help' ? 0 : 2);
}

function print(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

function fail(message: string): never {
  process.stderr.write(`secretsync: ${message}\n\n${HELP}`);
  process.exit(2);
}
