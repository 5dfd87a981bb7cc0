/**
 * `secretsync doctor`: what makes a first install fail, checked before it does — each finding with
 * the fix. Read-only: it describes and simulates, it never creates anything.
 *
 * Checks, in order: the cluster exists; its authentication mode accepts access entries; the
 * functions can reach its endpoint; the controller's identity holds every permission of the
 * generated policy (IAM policy simulation); Lambda offers the runtime in each region; account
 * Lambda concurrency and code storage; quota headroom for the IAM roles and EventBridge rules the
 * planned SecretSyncs consume.
 */
import { type Cluster, DescribeClusterCommand, type EKSClient } from '@aws-sdk/client-eks';
import { type EventBridgeClient, ListRulesCommand } from '@aws-sdk/client-eventbridge';
import {
  GetAccountSummaryCommand,
  GetRoleCommand,
  type IAMClient,
  SimulatePrincipalPolicyCommand,
} from '@aws-sdk/client-iam';
import {
  GetAccountSettingsCommand,
  type GetAccountSettingsCommandOutput,
  type LambdaClient,
  ListLayersCommand,
} from '@aws-sdk/client-lambda';
import {
  GetAWSDefaultServiceQuotaCommand,
  GetServiceQuotaCommand,
  type ServiceQuotasClient,
} from '@aws-sdk/client-service-quotas';
import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { controllerIdentityPolicy, controllerPermissionProbes } from '../controller/iam-policy.ts';

export type Status = 'pass' | 'warn' | 'fail' | 'skip';

export interface Finding {
  check: string;
  status: Status;
  /** What was found, with the figures. */
  message: string;
  /** How to fix it (warn/fail). */
  fix?: string;
}

export interface DoctorInput {
  clusterName: string;
  region: string;
  /** Further regions SecretSyncs will use (their functions and rules live there). */
  regions: string[];
  iamPath: string;
  namePrefix: string;
  permissionsBoundary?: string | undefined;
  runtime: string;
  architecture: string;
  subnetIds: string[];
  securityGroupIds: string[];
  /** The controller's --concurrency: functions it may invoke at once. */
  concurrency: number;
  /** SecretSyncs to be added. */
  planned: number;
  /** The controller's IAM role or user; default: the identity running doctor. */
  principalArn?: string | undefined;
}

export interface DoctorClients {
  sts: STSClient;
  iam: IAMClient;
  eks: EKSClient;
  lambda(region: string): LambdaClient;
  events(region: string): EventBridgeClient;
  quotas(region: string): ServiceQuotasClient;
}

/** Upper bound of one function's zip (the bundle's size budget; it is about 90 KiB today). */
export const FUNCTION_ZIP_BYTES = 150 * 1024;
/** AWS's default for "Maximum number of rules per event bus" when Service Quotas cannot be read. */
const DEFAULT_RULES_PER_BUS = 300;

const errName = (err: unknown) => (err as { name?: string }).name ?? '';
const errText = (err: unknown) => `${errName(err)}: ${(err as Error).message}`.replace(/^: /, '');
const isDenied = (err: unknown) => /AccessDenied|UnauthorizedOperation|NotAuthorized/.test(errName(err));

export async function runDoctor(input: DoctorInput, clients: DoctorClients): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const regions = [...new Set([input.region, ...input.regions])];

  const cluster = await checkCluster(input, clients, add);
  if (cluster) {
    checkAuthenticationMode(input, cluster, add);
    checkEndpoint(input, cluster, add);
  } else {
    for (const check of ['authentication-mode', 'endpoint'])
      add({ check, status: 'skip', message: 'needs the cluster' });
  }
  await checkPermissions(input, clients, add);
  for (const region of regions) await checkRuntime(input, clients.lambda(region), region, add);
  for (const region of regions) await checkLambdaAccount(input, clients.lambda(region), region, add);
  await checkRoleQuota(input, clients.iam, add);
  for (const region of regions)
    await checkRuleQuota(input, clients.events(region), clients.quotas(region), region, add);
  return findings;
}

async function checkCluster(
  input: DoctorInput,
  clients: DoctorClients,
  add: (f: Finding) => void,
): Promise<Cluster | undefined> {
  try {
    const { cluster } = await clients.eks.send(new DescribeClusterCommand({ name: input.clusterName }));
    if (!cluster) throw new Error('DescribeCluster returned no cluster');
    add({
      check: 'cluster',
      status: cluster.status === 'ACTIVE' ? 'pass' : 'warn',
      message: `${input.clusterName} in ${input.region} is ${cluster.status ?? 'in an unknown state'} (Kubernetes ${cluster.version ?? '?'})`,
      ...(cluster.status === 'ACTIVE'
        ? {}
        : { fix: 'wait until the cluster is ACTIVE, then run doctor again' }),
    });
    return cluster;
  } catch (err) {
    add({
      check: 'cluster',
      status: 'fail',
      message:
        errName(err) === 'ResourceNotFoundException'
          ? `no EKS cluster named ${input.clusterName} in ${input.region}`
          : `cannot describe cluster ${input.clusterName}: ${errText(err)}`,
      fix: isDenied(err)
        ? 'run doctor with an identity allowed eks:DescribeCluster on the cluster'
        : 'check --cluster-name and --region (or SECRETSYNC_CLUSTER_NAME and AWS_REGION)',
    });
    return undefined;
  }
}

function checkAuthenticationMode(input: DoctorInput, cluster: Cluster, add: (f: Finding) => void) {
  const mode = cluster.accessConfig?.authenticationMode ?? 'CONFIG_MAP';
  if (mode === 'API' || mode === 'API_AND_CONFIG_MAP') {
    add({ check: 'authentication-mode', status: 'pass', message: `${mode}: access entries are honoured` });
    return;
  }
  add({
    check: 'authentication-mode',
    status: 'fail',
    message: `${mode}: the cluster ignores access entries, so no function can authenticate (every SecretSync would end Ready=False/ClusterAuthModeUnsupported)`,
    fix: `aws eks update-cluster-config --region ${input.region} --name ${input.clusterName} --access-config authenticationMode=API_AND_CONFIG_MAP (keeps the aws-auth ConfigMap working; one-way: it cannot go back to CONFIG_MAP)`,
  });
}

function checkEndpoint(input: DoctorInput, cluster: Cluster, add: (f: Finding) => void) {
  const vpc = cluster.resourcesVpcConfig ?? {};
  const inVpc = input.subnetIds.length > 0;
  const cidrs = vpc.publicAccessCidrs ?? ['0.0.0.0/0'];
  const open = cidrs.includes('0.0.0.0/0');
  if (vpc.endpointPublicAccess === false) {
    if (!inVpc) {
      add({
        check: 'endpoint',
        status: 'fail',
        message:
          'the API server endpoint is private only, and the functions are configured to run outside any VPC: they cannot reach it',
        fix: `run the functions in the cluster's VPC (${vpc.vpcId ?? 'its VPC'}): chart values lambda.subnetIds and lambda.securityGroupIds (--lambda-subnets, --lambda-security-groups), with the cluster security group ${vpc.clusterSecurityGroupId ?? ''} admitting HTTPS from those groups; or enable the public endpoint`,
      });
      return;
    }
    add({
      check: 'endpoint',
      status: 'pass',
      message: `private endpoint; functions run in subnets ${input.subnetIds.join(', ')} — these must be in ${vpc.vpcId ?? "the cluster's VPC"}, and the cluster security group must admit HTTPS from ${input.securityGroupIds.join(', ')}`,
    });
    return;
  }
  if (!inVpc && !open) {
    add({
      check: 'endpoint',
      status: 'warn',
      message: `the public endpoint admits only ${cidrs.join(', ')}; functions outside a VPC connect from AWS-owned addresses that are not in that list`,
      fix: 'run the functions in a VPC whose NAT address is allowed (chart values lambda.subnetIds, lambda.securityGroupIds), or enable private access and run them in the cluster VPC',
    });
    return;
  }
  add({
    check: 'endpoint',
    status: 'pass',
    message: inVpc
      ? `functions run in subnets ${input.subnetIds.join(', ')}; private access ${vpc.endpointPrivateAccess ? 'on' : 'off (they reach the public endpoint through NAT)'}`
      : 'public endpoint open to the functions',
  });
}

/** The identity to simulate: --principal-arn, or the caller's role (an assumed-role session → its role). */
async function principalToCheck(input: DoctorInput, clients: DoctorClients): Promise<string | Finding> {
  if (input.principalArn) return input.principalArn;
  const me = await clients.sts.send(new GetCallerIdentityCommand({}));
  const arn = me.Arn ?? '';
  if (/:root$/.test(arn))
    return {
      check: 'controller-permissions',
      status: 'skip',
      message: 'doctor runs as the account root, which holds every permission',
      fix: "pass --principal-arn with the controller's IAM role to check it",
    };
  if (/^arn:aws[a-z-]*:iam::\d{12}:(role|user)\//.test(arn)) return arn;
  const session = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\//.exec(arn);
  if (!session)
    return {
      check: 'controller-permissions',
      status: 'skip',
      message: `doctor runs as ${arn}, which is not an IAM role or user`,
      fix: "pass --principal-arn with the controller's IAM role to check it",
    };
  // The session ARN drops the role's path; GetRole gives the ARN IAM evaluates.
  try {
    const { Role } = await clients.iam.send(new GetRoleCommand({ RoleName: session[3] }));
    return Role?.Arn ?? `arn:${session[1]}:iam::${session[2]}:role/${session[3]}`;
  } catch {
    return `arn:${session[1]}:iam::${session[2]}:role/${session[3]}`;
  }
}

async function checkPermissions(input: DoctorInput, clients: DoctorClients, add: (f: Finding) => void) {
  let principal: string | Finding;
  try {
    principal = await principalToCheck(input, clients);
  } catch (err) {
    add({
      check: 'controller-permissions',
      status: 'fail',
      message: `cannot tell who runs doctor: ${errText(err)}`,
      fix: 'check the AWS credentials, or pass --principal-arn',
    });
    return;
  }
  if (typeof principal !== 'string') {
    add(principal);
    return;
  }
  const account = /^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):/.exec(principal)?.[1];
  if (!account) {
    add({
      check: 'controller-permissions',
      status: 'fail',
      message: `${principal} is not an IAM role or user ARN`,
      fix: 'pass --principal-arn arn:aws:iam::<account>:role/<name>',
    });
    return;
  }
  const policyInput = {
    accountId: account,
    clusterRegion: input.region,
    clusterName: input.clusterName,
    regions: input.regions,
    iamPath: input.iamPath,
    namePrefix: input.namePrefix,
    permissionsBoundaryArn: input.permissionsBoundary,
    vpc: input.subnetIds.length > 0,
  };
  const probes = controllerPermissionProbes(policyInput);
  // One simulation per resource and context (SimulatePrincipalPolicy takes many actions at once).
  const groups = new Map<string, { resource: string; context: Record<string, string>; actions: string[] }>();
  for (const p of probes) {
    const key = `${p.resource} ${JSON.stringify(p.context)}`;
    const g = groups.get(key) ?? { resource: p.resource, context: p.context, actions: [] };
    g.actions.push(p.action);
    groups.set(key, g);
  }
  // Denied actions by resource: "on <arn>: a, b (explicitDeny)".
  const missing = new Map<string, string[]>();
  let denied = 0;
  try {
    for (const g of groups.values()) {
      let marker: string | undefined;
      do {
        const out = await clients.iam.send(
          new SimulatePrincipalPolicyCommand({
            PolicySourceArn: principal,
            ActionNames: g.actions,
            ...(g.resource === '*' ? {} : { ResourceArns: [g.resource] }),
            ContextEntries: Object.entries(g.context).map(([k, v]) => ({
              ContextKeyName: k,
              ContextKeyValues: [v],
              ContextKeyType: 'string',
            })),
            ...(marker ? { Marker: marker } : {}),
          }),
        );
        for (const r of out.EvaluationResults ?? [])
          if (r.EvalDecision !== 'allowed') {
            const on = r.EvalResourceName ?? g.resource;
            const why = r.EvalDecision === 'implicitDeny' ? '' : ` (${r.EvalDecision})`;
            missing.set(on, [...(missing.get(on) ?? []), `${r.EvalActionName}${why}`]);
            denied++;
          }
        marker = out.IsTruncated ? out.Marker : undefined;
      } while (marker);
    }
  } catch (err) {
    add({
      check: 'controller-permissions',
      status: isDenied(err) ? 'warn' : 'fail',
      message: `could not simulate the policy of ${principal}: ${errText(err)}`,
      fix: isDenied(err)
        ? 'run doctor with an identity allowed iam:SimulatePrincipalPolicy (and iam:GetRole)'
        : 'check --principal-arn: the controller role (the IRSA annotation or Pod Identity association of the chart)',
    });
    return;
  }
  const policyCommand = [
    'secretsync iam-policy',
    `--account ${account}`,
    `--region ${input.region}`,
    `--cluster ${input.clusterName}`,
    ...(input.regions.length > 0 ? [`--regions ${input.regions.join(',')}`] : []),
    ...(input.iamPath !== '/secretsync/' ? [`--iam-path ${input.iamPath}`] : []),
    ...(input.namePrefix !== 'secretsync' ? [`--name-prefix ${input.namePrefix}`] : []),
    ...(input.permissionsBoundary ? [`--permissions-boundary ${input.permissionsBoundary}`] : []),
    ...(input.subnetIds.length > 0 ? ['--vpc'] : []),
  ].join(' ');
  const statements = controllerIdentityPolicy(policyInput).Statement.length;
  if (denied === 0) {
    add({
      check: 'controller-permissions',
      status: 'pass',
      message: `${principal} may make all ${probes.length} controller requests (${statements} statements of the generated policy)`,
    });
    return;
  }
  const list = [...missing].map(([on, actions]) => `${actions.join(', ')} on ${on}`).join('; ');
  add({
    check: 'controller-permissions',
    status: 'fail',
    message: `${principal} is denied ${denied} of ${probes.length} controller requests: ${list}`,
    fix: `attach the policy printed by \`${policyCommand}\` to ${principal}`,
  });
}

async function checkRuntime(
  input: DoctorInput,
  lambda: LambdaClient,
  region: string,
  add: (f: Finding) => void,
) {
  const check = `lambda-runtime/${region}`;
  const major = /^nodejs(\d+)\.x$/.exec(input.runtime)?.[1];
  if (!major) {
    add({
      check,
      status: 'fail',
      message: `${input.runtime} is not a Node.js runtime; the sync function is a Node.js bundle`,
      fix: 'use nodejs24.x (chart value lambda.runtime, --lambda-runtime)',
    });
    return;
  }
  try {
    // Lambda validates the runtime and architecture filters against what it offers: the one
    // read-only way to ask a region about a runtime.
    await lambda.send(
      new ListLayersCommand({
        CompatibleRuntime: input.runtime as never,
        CompatibleArchitecture: input.architecture as never,
        MaxItems: 1,
      }),
    );
  } catch (err) {
    if (/ValidationException|InvalidParameterValue/.test(errName(err))) {
      add({
        check,
        status: 'fail',
        message: `Lambda in ${region} does not offer ${input.runtime} on ${input.architecture} (it refuses them as filters: ${errName(err)})`,
        fix: 'use a runtime and architecture the region offers: nodejs24.x on arm64 or x86_64 (chart values lambda.runtime, lambda.architecture)',
      });
    } else {
      add({
        check,
        status: isDenied(err) ? 'warn' : 'fail',
        message: `cannot ask Lambda in ${region} about ${input.runtime}: ${errText(err)}`,
        ...(isDenied(err) ? { fix: 'run doctor with an identity allowed lambda:ListLayers' } : {}),
      });
    }
    return;
  }
  add({
    check,
    status: Number(major) >= 24 ? 'pass' : 'warn',
    message: `Lambda in ${region} offers ${input.runtime} on ${input.architecture}`,
    ...(Number(major) >= 24
      ? {}
      : { fix: 'the function is built and tested for nodejs24.x; older runtimes are not supported' }),
  });
}

async function checkLambdaAccount(
  input: DoctorInput,
  lambda: LambdaClient,
  region: string,
  add: (f: Finding) => void,
) {
  let settings: GetAccountSettingsCommandOutput;
  try {
    settings = await lambda.send(new GetAccountSettingsCommand({}));
  } catch (err) {
    add({
      check: `lambda-concurrency/${region}`,
      status: 'warn',
      message: `cannot read Lambda account settings in ${region}: ${errText(err)}`,
      ...(isDenied(err) ? { fix: 'run doctor with an identity allowed lambda:GetAccountSettings' } : {}),
    });
    return;
  }
  const limit = settings.AccountLimit?.ConcurrentExecutions ?? 0;
  const unreserved = settings.AccountLimit?.UnreservedConcurrentExecutions ?? limit;
  // At most --concurrency functions are invoked by the controller at once (first syncs after an
  // install); change events of different secrets rarely coincide. Twice that leaves room for the
  // account's other functions, which share the pool.
  const wanted = Math.max(10, 2 * input.concurrency);
  const low = unreserved < wanted || limit <= 10;
  add({
    check: `lambda-concurrency/${region}`,
    status: low ? 'warn' : 'pass',
    message: `account concurrency ${limit}, unreserved ${unreserved} (the controller invokes up to ${input.concurrency} at once)`,
    ...(low
      ? {
          fix: `throttled change events are retried by EventBridge and Lambda, so nothing is lost, but syncs are delayed; request more "Concurrent executions" (Service Quotas L-B99A9384) in ${region}`,
        }
      : {}),
  });
  const storage = settings.AccountLimit?.TotalCodeSize ?? 0;
  const used = settings.AccountUsage?.TotalCodeSize ?? 0;
  const needed = input.planned * FUNCTION_ZIP_BYTES;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  add({
    check: `lambda-code-storage/${region}`,
    status: storage - used >= needed ? 'pass' : 'fail',
    message: `${gib(storage - used)} free of ${gib(storage)}; ${input.planned} functions need at most ${gib(needed)}`,
    ...(storage - used >= needed
      ? {}
      : { fix: 'delete unused function versions/layers, or request more "Function and layer storage"' }),
  });
}

async function checkRoleQuota(input: DoctorInput, iam: IAMClient, add: (f: Finding) => void) {
  try {
    const { SummaryMap } = await iam.send(new GetAccountSummaryCommand({}));
    const roles = SummaryMap?.Roles ?? 0;
    const quota = SummaryMap?.RolesQuota ?? 1000;
    headroom(add, 'quota-iam-roles', 'IAM roles in the account', roles, quota, input.planned, {
      fix: 'request more "Roles per account" (Service Quotas, IAM, L-FE177D64; up to 5000), or delete unused roles',
    });
  } catch (err) {
    add({
      check: 'quota-iam-roles',
      status: 'warn',
      message: `cannot read the IAM account summary: ${errText(err)}`,
      ...(isDenied(err) ? { fix: 'run doctor with an identity allowed iam:GetAccountSummary' } : {}),
    });
  }
}

async function checkRuleQuota(
  input: DoctorInput,
  events: EventBridgeClient,
  quotas: ServiceQuotasClient,
  region: string,
  add: (f: Finding) => void,
) {
  const check = `quota-eventbridge-rules/${region}`;
  let rules = 0;
  try {
    let token: string | undefined;
    do {
      const page = await events.send(
        new ListRulesCommand({ Limit: 100, ...(token ? { NextToken: token } : {}) }),
      );
      rules += page.Rules?.length ?? 0;
      token = page.NextToken;
    } while (token);
  } catch (err) {
    add({
      check,
      status: 'warn',
      message: `cannot count the rules of the default event bus in ${region}: ${errText(err)}`,
      ...(isDenied(err) ? { fix: 'run doctor with an identity allowed events:ListRules' } : {}),
    });
    return;
  }
  let quota = DEFAULT_RULES_PER_BUS;
  let source = "AWS's default (Service Quotas could not be read)";
  const ask = { ServiceCode: 'events', QuotaCode: 'L-244521F2' };
  try {
    quota = (await quotas.send(new GetServiceQuotaCommand(ask))).Quota?.Value ?? quota;
    source = 'Service Quotas';
  } catch {
    try {
      quota = (await quotas.send(new GetAWSDefaultServiceQuotaCommand(ask))).Quota?.Value ?? quota;
      source = 'the default in Service Quotas';
    } catch {
      // keep AWS's documented default
    }
  }
  headroom(add, check, `rules on the default event bus in ${region}`, rules, quota, input.planned, {
    fix: `request more "Maximum number of rules per event bus" (Service Quotas, EventBridge, L-244521F2) in ${region}`,
    source,
  });
}

/** One resource per planned SecretSync: fail without room for them all, warn above 90% after. */
function headroom(
  add: (f: Finding) => void,
  check: string,
  what: string,
  used: number,
  quota: number,
  planned: number,
  o: { fix: string; source?: string },
) {
  const free = quota - used;
  const status: Status = free < planned ? 'fail' : used + planned > 0.9 * quota ? 'warn' : 'pass';
  add({
    check,
    status,
    message: `${used} of ${quota} ${what}${o.source ? ` (quota from ${o.source})` : ''}; ${planned} SecretSyncs need ${planned} more, ${free} free`,
    ...(status === 'pass' ? {} : { fix: o.fix }),
  });
}

/** Plain-text report: one line per check, the fix under it, a summary line. */
export function formatFindings(findings: Finding[], header: string): string {
  const lines = [header, ''];
  const width = Math.max(...findings.map((f) => f.check.length));
  for (const f of findings) {
    lines.push(`${f.status.toUpperCase().padEnd(5)} ${f.check.padEnd(width)}  ${f.message}`);
    if (f.fix && f.status !== 'pass') lines.push(`${' '.repeat(width + 8)}fix: ${f.fix}`);
  }
  const count = (s: Status) => findings.filter((f) => f.status === s).length;
  lines.push(
    '',
    `${count('fail')} failed, ${count('warn')} warnings, ${count('pass')} passed, ${count('skip')} skipped`,
  );
  return `${lines.join('\n')}\n`;
}
