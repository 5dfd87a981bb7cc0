// The complete AWS state one SecretSync should have, computed from the SecretSync and the
// controller's settings alone. Pure and deterministic: the same inputs give byte-identical documents,
// so the ensures can diff exactly and a steady state makes no writes (no timestamps, no random ids).

import { createHash } from 'node:crypto';
import { DEFAULT_VERSION_STAGE, toEnv } from '../../lambda/config.ts';
import type { SecretSync } from '../../shared/secretsync.generated.ts';
import {
  clusterArn,
  DEFAULT_IAM_PATH,
  DEFAULT_PREFIX,
  type Owner,
  ownershipTags,
  type ResourceNames,
  resourceNames,
} from '../naming.ts';
import type { Tags } from './tags.ts';

export type Architecture = 'arm64' | 'x86_64';

export interface VpcSettings {
  subnetIds: string[];
  securityGroupIds: string[];
}

export interface ControllerSettings {
  /** The EKS cluster this controller serves (DescribeCluster, access entries, the function's token). */
  clusterName: string;
  /** Region used when a SecretSync names its secret by name and sets no spec.source.region. */
  region: string;
  /** The cluster's region (default: `region`). With the name, account and partition: its ARN, our identity. */
  clusterRegion?: string | undefined;
  accountId: string;
  partition: string;
  iamPath: string;
  namePrefix: string;
  permissionsBoundaryArn?: string | undefined;
  runtime: string;
  architecture: Architecture;
  memoryMb: number;
  timeoutSeconds: number;
  vpc?: VpcSettings | undefined;
  logRetentionDays: number;
  /** EventBridge's retry policy for delivering a change event to the function. */
  eventMaxAgeSeconds: number;
  eventRetryAttempts: number;
  /** Lambda's retries of an accepted asynchronous invocation whose run failed (0-2). */
  lambdaRetryAttempts: number;
  /** How long Lambda keeps such an invocation queued for its retries (60-21600 s). */
  lambdaMaxEventAgeSeconds: number;
  /** SQS queue, SNS topic, Lambda function or EventBridge bus that receives invocations that failed every try. */
  onFailureDestination?: string | undefined;
}

export const SETTINGS_DEFAULTS = {
  partition: 'aws',
  iamPath: DEFAULT_IAM_PATH,
  namePrefix: DEFAULT_PREFIX,
  runtime: 'nodejs24.x',
  architecture: 'arm64',
  memoryMb: 128,
  timeoutSeconds: 30,
  logRetentionDays: 30,
  eventMaxAgeSeconds: 3600,
  eventRetryAttempts: 20,
  lambdaRetryAttempts: 2,
  lambdaMaxEventAgeSeconds: 3600,
} as const satisfies Partial<ControllerSettings>;

type Defaulted = keyof typeof SETTINGS_DEFAULTS;

export function withDefaults(
  settings: Omit<ControllerSettings, Defaulted> & Partial<Pick<ControllerSettings, Defaulted>>,
): ControllerSettings {
  const defined = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
  return { ...SETTINGS_DEFAULTS, ...defined } as ControllerSettings;
}

/** The cluster's ARN: the identity in every name hash and ownership tag. */
export const clusterArnOf = (s: ControllerSettings): string =>
  clusterArn({
    partition: s.partition,
    region: s.clusterRegion ?? s.region,
    accountId: s.accountId,
    name: s.clusterName,
  });

/** The function bundle the controller image carries. */
export interface FunctionCode {
  zip: Uint8Array;
  /** Base64 SHA-256 of the zip, the form Lambda reports as CodeSha256. */
  sha256: string;
}

/** The bundle's FunctionCode: Lambda reports CodeSha256 as the base64 SHA-256 of the zip. */
export const functionCodeOf = (zip: Uint8Array): FunctionCode => ({
  zip,
  sha256: createHash('sha256').update(zip).digest('base64'),
});

/** From eks:DescribeCluster. */
export interface ClusterAccess {
  endpoint: string;
  /** Base64 of the PEM CA bundle, as DescribeCluster returns certificateAuthority.data. */
  certificateAuthorityData: string;
}

/** From source.ts's resolveSource. */
export interface ResolvedSecretRef {
  arn: string;
  /** Customer-managed KMS key (ARN, key id or alias) or undefined for the AWS-managed key. */
  kmsKeyId?: string | undefined;
}

export interface DesiredInput {
  sync: SecretSync;
  settings: ControllerSettings;
  code: FunctionCode;
  cluster: ClusterAccess;
  secret: ResolvedSecretRef;
}

export interface DesiredRole {
  name: string;
  path: string;
  arn: string;
  description: string;
  /** JSON text; compared semantically with what IAM returns. */
  assumeRolePolicyDocument: string;
  inlinePolicyName: string;
  inlinePolicyDocument: string;
  permissionsBoundaryArn: string | undefined;
  tags: Tags;
}

export interface DesiredLogGroup {
  name: string;
  /** Without the `:*` suffix DescribeLogGroups' `arn` carries; the form tagging APIs take. */
  arn: string;
  retentionDays: number;
  tags: Tags;
}

export interface DesiredFunction {
  name: string;
  arn: string;
  roleArn: string;
  description: string;
  runtime: string;
  handler: string;
  architecture: Architecture;
  memoryMb: number;
  timeoutSeconds: number;
  environment: Record<string, string>;
  vpc: VpcSettings | undefined;
  code: FunctionCode;
  tags: Tags;
}

/** What Lambda does with an asynchronous invocation whose run failed (PutFunctionEventInvokeConfig). */
export interface DesiredInvokeConfig {
  functionArn: string;
  maximumRetryAttempts: number;
  maximumEventAgeInSeconds: number;
  onFailureDestination: string | undefined;
}

export interface DesiredTarget {
  id: string;
  arn: string;
  maximumRetryAttempts: number;
  maximumEventAgeInSeconds: number;
}

export interface DesiredPermission {
  functionArn: string;
  statementId: string;
  action: string;
  principal: string;
  sourceArn: string;
  sourceAccount: string;
}

export interface DesiredRule {
  name: string;
  arn: string;
  description: string;
  eventPattern: string;
  state: 'ENABLED' | 'DISABLED';
  tags: Tags;
  target: DesiredTarget;
}

export interface DesiredAccessEntry {
  clusterArn: string;
  principalArn: string;
  username: string;
  type: 'STANDARD';
  kubernetesGroups: string[];
  /** Ownership tags; the reconcile adds the role's id (access-entry.ts withRoleId). */
  tags: Tags;
}

export interface DesiredState {
  owner: Owner;
  names: ResourceNames;
  /** Region of the secret, which is where function, rule and log group live. */
  region: string;
  accountId: string;
  partition: string;
  secretArn: string;
  role: DesiredRole;
  logGroup: DesiredLogGroup;
  function: DesiredFunction;
  invokeConfig: DesiredInvokeConfig;
  permission: DesiredPermission;
  rule: DesiredRule;
  accessEntry: DesiredAccessEntry;
}

export const INLINE_POLICY_NAME = 'secretsync';
export const TARGET_ID = 'secretsync';
export const PERMISSION_STATEMENT_ID = 'secretsync-events';
export const HANDLER = 'index.handler';
// The function always reads the current value, so a late delivery adds nothing the next event or
// the backstop resync would not; an hour bounds retries of a function that keeps failing.
export const TARGET_MAX_EVENT_AGE_SECONDS = SETTINGS_DEFAULTS.eventMaxAgeSeconds;
export const TARGET_MAX_RETRY_ATTEMPTS = SETTINGS_DEFAULTS.eventRetryAttempts;

const SECRET_ARN = /^arn:([a-z-]+):secretsmanager:([a-z0-9-]+):(\d{12}):secret:.+$/;

/** The region a SecretSync's resources live in, known before the secret is resolved. */
export function regionOf(sync: SecretSync, defaultRegion: string): string {
  const fromArn = SECRET_ARN.exec(sync.spec.source.secretId)?.[2];
  return sync.spec.source.region ?? fromArn ?? defaultRegion;
}

/** The identities of one SecretSync's AWS resources under these settings, in the secret's region. */
export function identitiesOf(settings: ControllerSettings, owner: Owner, region: string) {
  const names = resourceNames(owner, { prefix: settings.namePrefix, iamPath: settings.iamPath });
  const { accountId, partition } = settings;
  return {
    names,
    roleArn: `arn:${partition}:iam::${accountId}:role${names.rolePath}${names.roleName}`,
    functionArn: `arn:${partition}:lambda:${region}:${accountId}:function:${names.functionName}`,
    ruleArn: `arn:${partition}:events:${region}:${accountId}:rule/${names.ruleName}`,
    logGroupArn: `arn:${partition}:logs:${region}:${accountId}:log-group:${names.logGroupName}`,
  };
}

export function desiredState(input: DesiredInput): DesiredState {
  const { sync, settings, code, cluster, secret } = input;
  const { namespace, name, uid } = sync.metadata;
  if (!uid) throw new Error(`SecretSync ${namespace}/${name} has no metadata.uid`);
  const arnParts = SECRET_ARN.exec(secret.arn);
  if (!arnParts) throw new Error(`not a Secrets Manager secret ARN: ${secret.arn}`);
  const region = arnParts[2] as string;
  const { accountId, partition } = settings;

  const owner: Owner = { clusterArn: clusterArnOf(settings), namespace, name, uid };
  const { names, roleArn, functionArn, ruleArn, logGroupArn } = identitiesOf(settings, owner, region);
  const tags = ownershipTags(owner);
  // Lambda descriptions stop at 256 characters.
  const description =
    `secretsync: ${namespace}/${name} in cluster ${settings.clusterName} (${settings.clusterRegion ?? settings.region})`.slice(
      0,
      256,
    );

  // Only what the function needs to reach the API server: it reads the rest from its SecretSync.
  const environment = toEnv({
    secretArn: secret.arn,
    clusterName: settings.clusterName,
    apiEndpoint: cluster.endpoint.replace(/\/+$/, ''),
    caPem: Buffer.from(cluster.certificateAuthorityData, 'base64').toString('utf8'),
    namespace,
    syncName: name,
  });
  const vpc = settings.vpc && settings.vpc.subnetIds.length > 0 ? settings.vpc : undefined;

  return {
    owner,
    names,
    region,
    accountId,
    partition,
    secretArn: secret.arn,
    role: {
      name: names.roleName,
      path: names.rolePath,
      arn: roleArn,
      description,
      assumeRolePolicyDocument: JSON.stringify(trustPolicy(accountId)),
      inlinePolicyName: INLINE_POLICY_NAME,
      inlinePolicyDocument: JSON.stringify(
        permissionsPolicy({
          secretArn: secret.arn,
          kmsKeyId: secret.kmsKeyId,
          region,
          partition,
          logGroupArn,
          vpc,
          onFailureDestination: settings.onFailureDestination,
        }),
      ),
      permissionsBoundaryArn: settings.permissionsBoundaryArn,
      tags,
    },
    logGroup: { name: names.logGroupName, arn: logGroupArn, retentionDays: settings.logRetentionDays, tags },
    function: {
      name: names.functionName,
      arn: functionArn,
      roleArn,
      description,
      runtime: settings.runtime,
      handler: HANDLER,
      architecture: settings.architecture,
      memoryMb: settings.memoryMb,
      timeoutSeconds: settings.timeoutSeconds,
      environment,
      vpc: vpc && {
        subnetIds: [...vpc.subnetIds].sort(),
        securityGroupIds: [...vpc.securityGroupIds].sort(),
      },
      code,
      tags,
    },
    invokeConfig: {
      functionArn,
      maximumRetryAttempts: settings.lambdaRetryAttempts,
      maximumEventAgeInSeconds: settings.lambdaMaxEventAgeSeconds,
      onFailureDestination: settings.onFailureDestination,
    },
    permission: {
      functionArn,
      statementId: PERMISSION_STATEMENT_ID,
      action: 'lambda:InvokeFunction',
      principal: 'events.amazonaws.com',
      sourceArn: ruleArn,
      sourceAccount: accountId,
    },
    rule: {
      name: names.ruleName,
      arn: ruleArn,
      description,
      eventPattern: JSON.stringify(
        eventPattern(secret.arn, sync.spec.source.versionStage ?? DEFAULT_VERSION_STAGE),
      ),
      state: sync.spec.suspend ? 'DISABLED' : 'ENABLED',
      tags,
      target: {
        id: TARGET_ID,
        arn: functionArn,
        maximumRetryAttempts: settings.eventRetryAttempts,
        maximumEventAgeInSeconds: settings.eventMaxAgeSeconds,
      },
    },
    accessEntry: {
      clusterArn: owner.clusterArn,
      principalArn: roleArn,
      username: names.eksUsername,
      type: 'STANDARD',
      kubernetesGroups: [],
      tags,
    },
  };
}

// Documents are built with a fixed key order and serialized with JSON.stringify, so equal inputs
// give byte-equal text (what a human diffing two passes sees); the ensures still compare meaning.

export function trustPolicy(accountId: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'lambda.amazonaws.com' },
        Action: 'sts:AssumeRole',
        // Confused-deputy guard: only Lambda acting for this account may assume the role.
        Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
      },
    ],
  };
}

interface PolicyInput {
  secretArn: string;
  kmsKeyId: string | undefined;
  region: string;
  partition: string;
  logGroupArn: string;
  vpc: VpcSettings | undefined;
  onFailureDestination?: string | undefined;
}

/** What Lambda calls, with the function's role, to hand a failed invocation to its destination. */
const DESTINATION_ACTIONS: Record<string, string> = {
  sqs: 'sqs:SendMessage',
  sns: 'sns:Publish',
  lambda: 'lambda:InvokeFunction',
  events: 'events:PutEvents',
};

/** The IAM action for an on-failure destination ARN; undefined for a kind Lambda cannot send to. */
export function destinationAction(arn: string): string | undefined {
  return DESTINATION_ACTIONS[arn.split(':')[2] ?? ''];
}

export function permissionsPolicy(input: PolicyInput) {
  const statements: Record<string, unknown>[] = [
    // The exact ARN, with its random suffix: no wildcard can match a secret re-created under the same name.
    {
      Sid: 'ReadSecret',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: input.secretArn,
    },
  ];
  if (input.kmsKeyId !== undefined) statements.push(decryptStatement(input));
  statements.push({
    Sid: 'WriteOwnLogs',
    Effect: 'Allow',
    // No logs:CreateLogGroup: the controller creates the group (tagged, with retention).
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: `${input.logGroupArn}:*`,
  });
  if (input.onFailureDestination) {
    statements.push({
      // Lambda sends the record of an invocation that failed every try with the function's role.
      Sid: 'SendFailedInvocations',
      Effect: 'Allow',
      Action: destinationAction(input.onFailureDestination),
      Resource: input.onFailureDestination,
    });
  }
  if (input.vpc) {
    statements.push({
      Sid: 'VpcNetworkInterfaces',
      Effect: 'Allow',
      Action: [
        'ec2:AssignPrivateIpAddresses',
        'ec2:CreateNetworkInterface',
        'ec2:DeleteNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:UnassignPrivateIpAddresses',
      ],
      // ec2:Describe* supports no resource-level permissions, and the ENIs Lambda manages do not
      // exist (have no ARN) before it creates them: AWS's own AWSLambdaVPCAccessExecutionRole uses "*".
      Resource: '*',
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}

// Decrypt only through Secrets Manager in this region: the role cannot use the key directly, even
// though the key may protect other data.
function decryptStatement(input: PolicyInput): Record<string, unknown> {
  const { kmsKeyId, region, partition, secretArn } = input;
  const viaService = { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` };
  const key = kmsKeyId as string;
  const secretAccount = SECRET_ARN.exec(secretArn)?.[3] as string;
  const alias = /^(?:arn:[a-z-]+:kms:[a-z0-9-]+:\d{12}:)?(alias\/.+)$/.exec(key)?.[1];
  if (alias !== undefined) {
    // IAM cannot name a key by alias; resolving it needs kms:DescribeKey, which the controller does
    // not have. kms:ResourceAliases scopes the grant to keys carrying that alias instead.
    return {
      Sid: 'DecryptSecret',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: `arn:${partition}:kms:${region}:${secretAccount}:key/*`,
      Condition: { StringEquals: viaService, 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': alias } },
    };
  }
  // A bare key id belongs to the secret's account and region.
  const resource = key.startsWith('arn:')
    ? key
    : `arn:${partition}:kms:${region}:${secretAccount}:key/${key}`;
  return {
    Sid: 'DecryptSecret',
    Effect: 'Allow',
    Action: 'kms:Decrypt',
    Resource: resource,
    Condition: { StringEquals: viaService },
  };
}

// The native event Secrets Manager sends when a staging label moves to a new version (PutSecretValue,
// UpdateSecret, rotation), matched on the one ARN and the one label the function reads.
export function eventPattern(secretArn: string, versionStage: string) {
  return {
    source: ['aws.secretsmanager'],
    'detail-type': ['Secret Label Updated'],
    resources: [secretArn],
    detail: { labelUpdated: [versionStage] },
  };
}
