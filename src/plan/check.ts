// `secretsync plan --check`: reads what the controller reads at provisioning (the account from STS,
// the cluster from DescribeCluster, the secret from DescribeSecret, the SecretSync's uid), then each
// planned thing through its manager's own read, ownership test and diff (manager.ts inspect), and
// marks it exists / differs / missing / not-ours. Every client is fenced with a term that never
// begins, so a write cannot leave this process: the AWS calls are Get/Describe/List, the cluster
// calls GETs (and a LIST of SecretSyncPolicies for the tenancy note).

import { DescribeClusterCommand } from '@aws-sdk/client-eks';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { accessEntryManager } from '../controller/aws/access-entry.ts';
import { type AwsClients, type AwsEnv, createAwsClients } from '../controller/aws/clients.ts';
import { clusterArnOf, type FunctionCode, regionOf } from '../controller/aws/desired.ts';
import { aws as awsCall, SecretNotFoundError } from '../controller/aws/errors.ts';
import { ruleManager } from '../controller/aws/event-rule.ts';
import { roleManager } from '../controller/aws/iam-role.ts';
import { invokeConfigManager } from '../controller/aws/invoke-config.ts';
import { functionManager } from '../controller/aws/lambda-function.ts';
import { permissionManager } from '../controller/aws/lambda-permission.ts';
import { logGroupManager } from '../controller/aws/log-group.ts';
import { canonicalJson } from '../controller/aws/policy.ts';
import { ruleTargetManager } from '../controller/aws/rule-target.ts';
import { type ResolvedSource, resolveSource } from '../controller/aws/source.ts';
import { type ControllerConfig, settingsOf } from '../controller/config.ts';
import { isNotFound } from '../controller/errors.ts';
import { awsFenceMiddleware, Fence, fencedKubeApi } from '../controller/fence.ts';
import { kube } from '../controller/kube/errors.ts';
import { roleManager as kubeRoleManager } from '../controller/kube/role.ts';
import { roleBindingManager } from '../controller/kube/role-binding.ts';
import { getSecretSync } from '../controller/kube/secretsyncs.ts';
import { type Inspection, inspect } from '../controller/manager.ts';
import type { Owner } from '../controller/naming.ts';
import { tenancyDenial } from '../controller/preconditions.ts';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import { InputError } from './input.ts';
import { buildPlan, type ItemKind, type PlanInputs, type PlanReport } from './plan.ts';

// The Secret's metadata only: the API server leaves out data (and plan has no use for it).
const METADATA_ONLY = setHeaderOptions(
  'Accept',
  'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
);

export async function checkedPlan(opts: {
  sync: SecretSync;
  config: ControllerConfig;
  code: FunctionCode;
  kc: KubeConfig;
  env: NodeJS.ProcessEnv;
  /** --account: must be the account the credentials are in. */
  account?: string | undefined;
}): Promise<PlanReport> {
  const { sync, config, kc } = opts;
  const { namespace, name } = sync.metadata as { namespace: string; name: string };
  // Never begun: every write is refused before it is sent.
  const fence = new Fence();
  const endpoint = opts.env.AWS_ENDPOINT_URL;
  const byRegion = new Map<string, AwsClients>();
  const clients = (region: string): AwsClients => {
    let c = byRegion.get(region);
    if (!c) {
      c = createAwsClients({ region, ...(endpoint ? { endpoint } : {}), fence });
      byRegion.set(region, c);
    }
    return c;
  };
  const aws: AwsEnv = { home: config.region, clients };
  const kubeApis = {
    custom: fencedKubeApi(kc.makeApiClient(CustomObjectsApi), fence),
    core: fencedKubeApi(kc.makeApiClient(CoreV1Api), fence),
    rbac: fencedKubeApi(kc.makeApiClient(RbacAuthorizationV1Api), fence),
  };

  const sts = new STSClient({ region: config.region, ...(endpoint ? { endpoint } : {}) });
  sts.middlewareStack.add(awsFenceMiddleware(fence) as never, { step: 'initialize', name: 'readOnly' });
  const me = await sts.send(new GetCallerIdentityCommand({}));
  const accountId = me.Account ?? '';
  if (opts.account !== undefined && opts.account !== accountId)
    throw new InputError(`--account ${opts.account} is not the account of these credentials (${accountId})`);
  const settings = settingsOf(config, { accountId, partition: me.Arn?.split(':')[1] ?? 'aws' });
  const notes: string[] = [];

  const eks = clients(config.clusterRegion).eks;
  const described = await awsCall({ operation: 'DescribeCluster', resource: config.clusterName }, () =>
    eks.send(new DescribeClusterCommand({ name: config.clusterName })),
  );
  const c = described.cluster;
  if (!c?.endpoint || !c.certificateAuthority?.data)
    throw new Error(`DescribeCluster ${config.clusterName} gave no endpoint or certificate authority`);
  const mode = c.accessConfig?.authenticationMode ?? 'CONFIG_MAP';
  if (mode !== 'API' && mode !== 'API_AND_CONFIG_MAP')
    notes.push(
      `The cluster's authentication mode is ${mode}: the controller would stop with ClusterAuthModeUnsupported.`,
    );

  const live = await getSecretSync(kubeApis.custom, namespace, name);
  if (!live)
    notes.push(`SecretSync ${namespace}/${name} is not in the cluster: its uid is shown as a placeholder.`);
  else if (canonicalJson(live.spec) !== canonicalJson(sync.spec))
    notes.push(
      `SecretSync ${namespace}/${name} in the cluster has another spec than the file: this is the plan of the file's.`,
    );

  const region = regionOf(sync, settings.region);
  let source: ResolvedSource | undefined;
  try {
    source = await resolveSource(clients(region).secretsManager, sync.spec.source.secretId);
  } catch (err) {
    if (!(err instanceof SecretNotFoundError)) throw err;
    notes.push(
      `AWS secret ${sync.spec.source.secretId} was not found in ${region}: the controller would stop with SecretNotFound and create nothing.`,
    );
  }
  if (source) {
    const denied = await tenancyDenial({ tenancy: config.tenancy, kube: kubeApis }, namespace, source);
    notes.push(
      denied === undefined
        ? `Tenancy (${config.tenancy}) allows namespace ${namespace} this secret.`
        : `Tenancy denies it: the controller would provision nothing (Ready=False, PolicyDenied): ${denied}`,
    );
    if (source.deletedDate) notes.push(`AWS secret ${source.arn} is scheduled for deletion.`);
  }

  const inputs: PlanInputs = {
    sync: live?.metadata.uid ? { ...sync, metadata: { ...sync.metadata, uid: live.metadata.uid } } : sync,
    settings,
    code: opts.code,
    cluster: { endpoint: c.endpoint, certificateAuthorityData: c.certificateAuthority.data },
    secret: source,
    checked: true,
    notes,
  };
  const owner: Owner = {
    clusterArn: clusterArnOf(settings),
    namespace,
    name,
    uid: inputs.sync.metadata.uid ?? '',
  };
  // The role first: the access entry is bound to its unique id.
  const first = buildPlan(inputs).plan;
  const role = await inspect(roleManager, aws, first.aws.role, owner);
  const roleId = role.state === 'not-ours' ? undefined : role.latest?.role.RoleId;
  const { plan, report } = buildPlan({ ...inputs, roleId });

  const kubeEnv = { rbac: kubeApis.rbac };
  /** A part (the function's permission, the rule's target) of a whole that is missing or not ours. */
  const partOf = (
    whole: Inspection<unknown>,
    read: (known: { absent: boolean }) => Promise<Inspection<unknown>>,
  ): Promise<Inspection<unknown>> =>
    whole.state === 'not-ours'
      ? Promise.resolve({ state: 'not-ours', differences: [] })
      : read({ absent: whole.state === 'missing' });
  const fn = await inspect(functionManager, aws, plan.aws.function, owner);
  const rule = await inspect(ruleManager, aws, plan.aws.rule, owner);
  const target = { ...plan.aws.rule.target, ruleArn: plan.aws.rule.arn };
  const found: Record<ItemKind, Inspection<unknown>> = {
    IAMRole: role,
    LogGroup: await inspect(logGroupManager, aws, plan.aws.logGroup, owner),
    Function: fn,
    EventInvokeConfig: await partOf(fn, (k) =>
      inspect(invokeConfigManager, aws, plan.aws.invokeConfig, owner, k),
    ),
    LambdaPermission: await partOf(fn, (k) => inspect(permissionManager, aws, plan.aws.permission, owner, k)),
    EventRule: rule,
    EventRuleTarget: await partOf(rule, (k) => inspect(ruleTargetManager, aws, target, owner, k)),
    AccessEntry: await inspect(accessEntryManager, aws, plan.aws.accessEntry, owner),
    Role: await inspect(kubeRoleManager, kubeEnv, plan.role, owner),
    RoleBinding: await inspect(roleBindingManager, kubeEnv, plan.binding, owner),
    Secret: await secretExists(kubeApis.core, plan.target),
  };
  for (const item of report.items) {
    const { state, differences } = found[item.kind];
    item.state = state;
    if (differences.length > 0) item.differences = differences;
  }
  return report;
}

/** Exists or missing; whose it is is not judged (the target may be a Secret that existed before). */
async function secretExists(
  core: CoreV1Api,
  t: { namespace: string; name: string },
): Promise<Inspection<unknown>> {
  try {
    await kube({ operation: 'GET Secret metadata', resource: `${t.namespace}/${t.name}` }, () =>
      core.readNamespacedSecret({ namespace: t.namespace, name: t.name }, METADATA_ONLY),
    );
    return { state: 'exists', differences: [] };
  } catch (err) {
    if (isNotFound(err)) return { state: 'missing', differences: [] };
    throw err;
  }
}
