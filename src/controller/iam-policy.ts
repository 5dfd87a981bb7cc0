/**
 * The controller's own IAM identity policy, generated from its settings (`secretsync iam-policy`):
 * every action the controller calls, on only the resources its names can take — roles under the IAM
 * path and name prefix, functions/rules/log groups with the prefix, access entries of one cluster —
 * except the read-only list calls AWS authorizes on "*" alone (one statement, each action's reason
 * beside it); PassRole only to Lambda, CreateRole only with the permissions boundary when one is
 * configured, DescribeSecret/ListSecrets and never GetSecretValue. Only actions the controller calls
 * (or that AWS authorizes alongside one it calls, e.g. lambda:ListTags for the tags GetFunction
 * returns): the integration test e2e/tests/controller-iam.test.ts simulates every call of a
 * controller run against it.
 */
export interface IamPolicyInput {
  accountId: string;
  /** Regions SecretSyncs may use; ['*'] for any. The cluster's region is always included. */
  regions: string[];
  clusterRegion: string;
  clusterName: string;
  iamPath: string;
  namePrefix: string;
  permissionsBoundaryArn?: string | undefined;
  /** Functions run in a VPC (--lambda-subnets): Lambda checks subnets and groups with the caller's rights. */
  vpc?: boolean;
  partition?: string;
}

interface Statement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export function controllerIdentityPolicy(i: IamPolicyInput): {
  Version: '2012-10-17';
  Statement: Statement[];
} {
  const p = i.partition ?? 'aws';
  const acct = i.accountId;
  const regions = i.regions.includes('*') ? ['*'] : [...new Set([i.clusterRegion, ...i.regions])].sort();
  const perRegion = (f: (r: string) => string) => regions.map(f);
  const roleArn = `arn:${p}:iam::${acct}:role${i.iamPath}${i.namePrefix}-*`;
  const boundary = i.permissionsBoundaryArn;
  const statements: Statement[] = [
    {
      Sid: 'ManageFunctionRoles',
      Effect: 'Allow',
      Action: [
        'iam:DeleteRole',
        'iam:DeleteRolePolicy',
        'iam:DetachRolePolicy',
        'iam:GetRole',
        'iam:GetRolePolicy',
        'iam:ListAttachedRolePolicies',
        'iam:ListRolePolicies',
        'iam:PutRolePolicy',
        'iam:TagRole',
        'iam:UntagRole',
        'iam:UpdateAssumeRolePolicy',
        'iam:UpdateRole',
        // Without a boundary the controller may also remove one someone added; with one it may not.
        ...(boundary ? [] : ['iam:DeleteRolePermissionsBoundary']),
      ].sort(),
      Resource: [roleArn],
    },
    {
      Sid: 'CreateFunctionRoles',
      Effect: 'Allow',
      Action: ['iam:CreateRole', 'iam:PutRolePermissionsBoundary'],
      Resource: [roleArn],
      ...(boundary ? { Condition: { StringEquals: { 'iam:PermissionsBoundary': boundary } } } : {}),
    },
    {
      Sid: 'PassFunctionRolesToLambdaOnly',
      Effect: 'Allow',
      Action: ['iam:PassRole'],
      Resource: [roleArn],
      Condition: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
    },
    {
      Sid: 'ManageFunctions',
      Effect: 'Allow',
      Action: [
        'lambda:AddPermission',
        'lambda:CreateFunction',
        'lambda:DeleteFunction',
        'lambda:GetFunction',
        'lambda:GetFunctionEventInvokeConfig',
        'lambda:GetPolicy',
        'lambda:InvokeFunction',
        // GetFunction returns the tags (the ownership check) only to a caller allowed lambda:ListTags.
        'lambda:ListTags',
        'lambda:PutFunctionEventInvokeConfig',
        'lambda:RemovePermission',
        'lambda:TagResource',
        'lambda:UntagResource',
        'lambda:UpdateFunctionCode',
        'lambda:UpdateFunctionConfiguration',
      ],
      Resource: perRegion((r) => `arn:${p}:lambda:${r}:${acct}:function:${i.namePrefix}-*`),
    },
    {
      Sid: 'ManageRules',
      Effect: 'Allow',
      Action: [
        'events:DeleteRule',
        'events:DescribeRule',
        'events:ListTagsForResource',
        'events:ListTargetsByRule',
        'events:PutRule',
        'events:PutTargets',
        'events:RemoveTargets',
        'events:TagResource',
        'events:UntagResource',
      ],
      Resource: perRegion((r) => `arn:${p}:events:${r}:${acct}:rule/${i.namePrefix}-*`),
    },
    {
      Sid: 'ManageLogGroups',
      Effect: 'Allow',
      Action: [
        'logs:CreateLogGroup',
        'logs:DeleteLogGroup',
        'logs:ListTagsForResource',
        'logs:PutRetentionPolicy',
        'logs:TagResource',
        'logs:UntagResource',
      ],
      Resource: perRegion((r) => `arn:${p}:logs:${r}:${acct}:log-group:/aws/lambda/${i.namePrefix}-*`),
    },
    {
      // List calls without resource-level permissions: the Service Authorization Reference lists no
      // resource type for any of them, so only "*" matches; the request's prefix filters the answer,
      // not the authorization. The inventory pass makes each once per --resync-period and region.
      Sid: 'ListWithoutResourceLevelPermissions',
      Effect: 'Allow',
      Action: [
        // Rule names, patterns, state and role ARNs of the default bus; no events.
        'events:ListRules',
        // Role names, paths, ARNs and trust policies; not their permission policies. Global service.
        'iam:ListRoles',
        // Log group names, retention, KMS key; no log data. Also the read of one group (no "get").
        'logs:DescribeLogGroups',
        // Names, ARNs, tags, KMS key ids, version stages: metadata only, never a value (that takes
        // GetSecretValue/BatchGetSecretValue, which this policy does not grant).
        'secretsmanager:ListSecrets',
        // ARNs and tags of our functions and log groups (filtered by our cluster tag). Not
        // lambda:ListFunctions: that returns every function's environment variables in the region.
        'tag:GetResources',
      ],
      Resource: ['*'],
    },
    {
      Sid: 'ManageAccessEntriesOfOneCluster',
      Effect: 'Allow',
      Action: [
        'eks:CreateAccessEntry',
        'eks:DeleteAccessEntry',
        'eks:DescribeAccessEntry',
        'eks:TagResource',
        'eks:UntagResource',
        'eks:UpdateAccessEntry',
      ],
      // Create is authorized on the cluster; the other actions only on entries of the controller's
      // roles: the entry ARN names the principal (type/account/role name/uuid), so access entries of
      // other principals — the cluster's administrators' — are out of reach.
      Resource: [
        `arn:${p}:eks:${i.clusterRegion}:${acct}:cluster/${i.clusterName}`,
        ...new Set(
          ['/', i.iamPath].map(
            (path) =>
              `arn:${p}:eks:${i.clusterRegion}:${acct}:access-entry/${i.clusterName}/role/${acct}${path}${i.namePrefix}-*`,
          ),
        ),
      ],
    },
    {
      // ListAccessEntries (the inventory pass) is authorized on the cluster, so on this one only; it
      // returns principal ARNs, nothing of the entries' policies.
      Sid: 'ReadCluster',
      Effect: 'Allow',
      Action: ['eks:DescribeCluster', 'eks:ListAccessEntries'],
      Resource: [`arn:${p}:eks:${i.clusterRegion}:${acct}:cluster/${i.clusterName}`],
    },
    {
      // Metadata only (ARN, KMS key, tags for tenancy). The controller never reads a value.
      Sid: 'ResolveSecrets',
      Effect: 'Allow',
      Action: ['secretsmanager:DescribeSecret'],
      Resource: perRegion((r) => `arn:${p}:secretsmanager:${r}:${acct}:secret:*`),
    },
  ];
  if (i.vpc) {
    statements.push({
      // CreateFunction/UpdateFunctionConfiguration with a VpcConfig: Lambda validates the subnets and
      // security groups with the caller's permissions. Describe calls support no resource-level scoping.
      Sid: 'CheckFunctionNetwork',
      Effect: 'Allow',
      Action: ['ec2:DescribeSecurityGroups', 'ec2:DescribeSubnets', 'ec2:DescribeVpcs'],
      Resource: ['*'],
      ...(regions.includes('*') ? {} : { Condition: { StringEquals: { 'ec2:Region': regions } } }),
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}

/** Trust policy for IRSA: the cluster's OIDC provider, one service account. */
export function irsaTrustPolicy(o: {
  accountId: string;
  oidcIssuer: string;
  namespace: string;
  serviceAccount: string;
  partition?: string;
}) {
  const issuer = o.oidcIssuer.replace(/^https:\/\//, '');
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: `arn:${o.partition ?? 'aws'}:iam::${o.accountId}:oidc-provider/${issuer}` },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            [`${issuer}:sub`]: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
            [`${issuer}:aud`]: 'sts.amazonaws.com',
          },
        },
      },
    ],
  };
}

/** Trust policy for EKS Pod Identity (the association names cluster, namespace and service account). */
export function podIdentityTrustPolicy() {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'pods.eks.amazonaws.com' },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
      },
    ],
  };
}

/** One request the controller makes, for a permission check (`secretsync doctor`). */
export interface PermissionProbe {
  action: string;
  /** A concrete resource of the kind the controller touches, or "*" for actions without one. */
  resource: string;
  /** Condition keys the request carries (e.g. iam:PassedToService). */
  context: Record<string, string>;
}

/**
 * Every action of the generated policy, each on a concrete resource the controller would touch —
 * names filled in, every region of the policy asked (the cluster's for "any region") — with the condition keys such a request carries. Derived
 * from the statements, so a new action in the policy is checked without changes here.
 */
export function controllerPermissionProbes(i: IamPolicyInput): PermissionProbe[] {
  const probes = new Map<string, PermissionProbe>();
  const uuid = '00000000-0000-4000-8000-000000000000';
  const concrete = (pattern: string, region: string): string => {
    if (pattern === '*') return '*';
    const parts = pattern.split(':');
    if (parts[3] === '*') parts[3] = region;
    let rest = parts.slice(5).join(':');
    rest = rest.startsWith('access-entry/')
      ? rest.replace(/\*$/, `doctor-probe/${uuid}`)
      : rest.startsWith('secret:')
        ? rest.replace(/\*$/, 'doctor-probe-AbCdEf')
        : rest.replace(/\*$/, 'doctor-probe');
    return [...parts.slice(0, 5), rest].join(':');
  };
  for (const s of controllerIdentityPolicy(i).Statement) {
    const context: Record<string, string> = {};
    for (const [key, value] of Object.entries(s.Condition?.StringEquals ?? {}))
      context[key] = key === 'ec2:Region' ? i.clusterRegion : Array.isArray(value) ? value[0]! : value;
    for (const action of s.Action) {
      // The access-entry statement mixes resource types: CreateAccessEntry is authorized on the
      // cluster, the others on an entry.
      const mixed = s.Resource.some((r) => r.includes(':access-entry/'));
      const resources = s.Resource.filter(
        (r) => !mixed || r.includes(':cluster/') === (action === 'eks:CreateAccessEntry'),
      );
      for (const pattern of resources) {
        const resource = concrete(pattern, i.clusterRegion);
        probes.set(`${action} ${resource}`, { action, resource, context });
      }
    }
  }
  return [...probes.values()];
}
