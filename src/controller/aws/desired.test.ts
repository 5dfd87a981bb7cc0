import { describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/config.ts';
import { regionOf, SETTINGS_DEFAULTS, withDefaults } from './desired.ts';
import {
  ACCOUNT,
  CLUSTER_ARN,
  functionCode,
  SAME_NAME_OTHER_REGION,
  sampleDesired,
  sampleSettings,
  sampleSync,
} from './test-support.ts';

const SECRET = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:prod/payments/db-AbCdEf`;

const statements = (doc: string) => (JSON.parse(doc) as { Statement: Record<string, unknown>[] }).Statement;

describe('desiredState', () => {
  const d = sampleDesired();
  const stem = d.names.stem;

  it('is deterministic down to the bytes of every document', () => {
    const code = d.function.code;
    expect(JSON.stringify(sampleDesired({ code }))).toBe(JSON.stringify(sampleDesired({ code })));
  });

  it('names everything from one stem, in the secret’s region', () => {
    expect(d.region).toBe('us-east-1');
    expect(d.role.arn).toBe(`arn:aws:iam::${ACCOUNT}:role/secretsync/${stem}`);
    expect(d.function.arn).toBe(`arn:aws:lambda:us-east-1:${ACCOUNT}:function:${stem}`);
    expect(d.rule.arn).toBe(`arn:aws:events:us-east-1:${ACCOUNT}:rule/${stem}`);
    expect(d.logGroup).toMatchObject({
      name: `/aws/lambda/${stem}`,
      arn: `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/${stem}`,
      retentionDays: 30,
    });
    const other = sampleDesired({ secretArn: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:x-AbCdEf` });
    expect(other.function.arn).toContain(':lambda:eu-west-1:');
    expect(other.function.environment[ENV.secretArn]).toContain(':eu-west-1:');
  });

  it('lets only Lambda of this account assume the role', () => {
    expect(JSON.parse(d.role.assumeRolePolicyDocument)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } },
        },
      ],
    });
  });

  it('grants GetSecretValue on exactly the one ARN and writing its own log group, nothing else', () => {
    expect(d.role.inlinePolicyName).toBe('secretsync');
    expect(statements(d.role.inlinePolicyDocument)).toEqual([
      { Sid: 'ReadSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: SECRET },
      {
        Sid: 'WriteOwnLogs',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/${stem}:*`,
      },
    ]);
    expect(d.role.permissionsBoundaryArn).toBeUndefined();
  });

  it('grants kms:Decrypt via Secrets Manager only, for a customer key given by ARN, id or alias', () => {
    const via = { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' };
    const keyArn = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    const decrypt = (kmsKeyId: string) =>
      statements(sampleDesired({ kmsKeyId }).role.inlinePolicyDocument).find(
        (s) => s.Sid === 'DecryptSecret',
      );
    expect(decrypt(keyArn)).toEqual({
      Sid: 'DecryptSecret',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: keyArn,
      Condition: { StringEquals: via },
    });
    expect(decrypt('1234abcd-12ab-34cd-56ef-1234567890ab')?.Resource).toBe(keyArn);
    expect(decrypt('alias/payments')).toEqual({
      Sid: 'DecryptSecret',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/*`,
      Condition: {
        StringEquals: via,
        'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/payments' },
      },
    });
    expect(decrypt(`arn:aws:kms:us-east-1:${ACCOUNT}:alias/payments`)?.Condition).toMatchObject({
      'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/payments' },
    });
  });

  it('adds ENI permissions and the VPC config only when subnets are configured', () => {
    const vpc = sampleDesired({
      settings: { vpc: { subnetIds: ['subnet-b', 'subnet-a'], securityGroupIds: ['sg-1'] } },
    });
    const eni = statements(vpc.role.inlinePolicyDocument).find((s) => s.Sid === 'VpcNetworkInterfaces');
    expect(eni).toMatchObject({ Resource: '*' });
    expect(eni?.Action).toContain('ec2:CreateNetworkInterface');
    expect(vpc.function.vpc).toEqual({ subnetIds: ['subnet-a', 'subnet-b'], securityGroupIds: ['sg-1'] });
    expect(d.function.vpc).toBeUndefined();
    const empty = sampleDesired({ settings: { vpc: { subnetIds: [], securityGroupIds: [] } } });
    expect(empty.function.vpc).toBeUndefined();
    expect(empty.role.inlinePolicyDocument).toBe(d.role.inlinePolicyDocument);
  });

  it('sets Lambda retries and, when configured, lets the role send failed invocations to that one destination', () => {
    expect(d.invokeConfig).toEqual({
      functionArn: d.function.arn,
      maximumRetryAttempts: 2,
      maximumEventAgeInSeconds: 3600,
      onFailureDestination: undefined,
    });
    expect(statements(d.role.inlinePolicyDocument).map((s) => s.Sid)).not.toContain('SendFailedInvocations');
    for (const [arn, action] of [
      [`arn:aws:sqs:us-east-1:${ACCOUNT}:secretsync-failures`, 'sqs:SendMessage'],
      [`arn:aws:sns:us-east-1:${ACCOUNT}:alerts`, 'sns:Publish'],
      [`arn:aws:events:us-east-1:${ACCOUNT}:event-bus/ops`, 'events:PutEvents'],
      [`arn:aws:lambda:us-east-1:${ACCOUNT}:function:on-failure`, 'lambda:InvokeFunction'],
    ]) {
      const withDest = sampleDesired({ settings: { onFailureDestination: arn, lambdaRetryAttempts: 0 } });
      expect(withDest.invokeConfig).toMatchObject({
        maximumRetryAttempts: 0,
        onFailureDestination: arn,
      });
      expect(
        statements(withDest.role.inlinePolicyDocument).find((s) => s.Sid === 'SendFailedInvocations'),
      ).toEqual({ Sid: 'SendFailedInvocations', Effect: 'Allow', Action: action, Resource: arn });
    }
  });

  it('configures the function from the settings, its environment only what reaches the API server', () => {
    expect(d.function).toMatchObject({
      name: stem,
      roleArn: d.role.arn,
      runtime: 'nodejs24.x',
      handler: 'index.handler',
      architecture: 'arm64',
      memoryMb: 128,
      timeoutSeconds: 30,
      tags: d.role.tags,
    });
    const env = d.function.environment;
    // Stage, mapping, merge policy and target are read from the SecretSync at run time.
    expect(Object.keys(env).sort()).toEqual(Object.values(ENV).sort());
    expect(env).toMatchObject({
      [ENV.secretArn]: SECRET,
      [ENV.clusterName]: 'prod-eu',
      [ENV.apiEndpoint]: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
      [ENV.namespace]: 'payments',
      [ENV.syncName]: 'db-creds',
    });
    expect(env[ENV.ca]).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it('matches the one secret and label in the event pattern, and disables the rule when suspended', () => {
    expect(d.rule.eventPattern).toBe(
      `{"source":["aws.secretsmanager"],"detail-type":["Secret Label Updated"],"resources":["${SECRET}"],"detail":{"labelUpdated":["AWSCURRENT"]}}`,
    );
    expect(d.rule.state).toBe('ENABLED');
    expect(sampleDesired({ sync: sampleSync({ suspend: true }) }).rule.state).toBe('DISABLED');
    expect(d.rule.target).toEqual({
      id: 'secretsync',
      arn: d.function.arn,
      maximumRetryAttempts: 20,
      maximumEventAgeInSeconds: 3600,
    });
    expect(d.permission).toEqual({
      functionArn: d.function.arn,
      statementId: 'secretsync-events',
      action: 'lambda:InvokeFunction',
      principal: 'events.amazonaws.com',
      sourceArn: d.rule.arn,
      sourceAccount: ACCOUNT,
    });
  });

  it('maps the role to the username with no groups in a STANDARD access entry', () => {
    expect(d.accessEntry).toEqual({
      clusterArn: CLUSTER_ARN,
      principalArn: d.role.arn,
      username: 'secretsync:payments:db-creds',
      type: 'STANDARD',
      kubernetesGroups: [],
      tags: d.role.tags,
    });
  });

  it('tags everything with the owner', () => {
    expect(d.role.tags).toEqual({
      'secretsync.io/cluster': CLUSTER_ARN,
      'secretsync.io/namespace': 'payments',
      'secretsync.io/name': 'db-creds',
      'secretsync.io/uid': 'uid-1',
      'app.kubernetes.io/managed-by': 'secretsync',
    });
    for (const tags of [d.logGroup.tags, d.function.tags, d.rule.tags]) expect(tags).toEqual(d.role.tags);
  });

  it('takes the cluster ARN as its identity: a same-named cluster in another region owns nothing of ours', () => {
    expect(CLUSTER_ARN).toBe(`arn:aws:eks:us-east-1:${ACCOUNT}:cluster/prod-eu`);
    expect(d.owner).toEqual({
      clusterArn: CLUSTER_ARN,
      namespace: 'payments',
      name: 'db-creds',
      uid: 'uid-1',
    });
    // --cluster-region names the cluster's region when the default region (for secrets) is another.
    const there = sampleDesired({ settings: { clusterRegion: 'eu-west-1' } });
    expect(there.owner.clusterArn).toBe(SAME_NAME_OTHER_REGION);
    expect(SAME_NAME_OTHER_REGION).toBe(`arn:aws:eks:eu-west-1:${ACCOUNT}:cluster/prod-eu`);
    expect(there.accessEntry.clusterArn).toBe(SAME_NAME_OTHER_REGION);
    expect(there.role.tags['secretsync.io/cluster']).toBe(SAME_NAME_OTHER_REGION);
    // Every name carries the identity's hash: nothing is shared, nothing can be claimed.
    expect(there.names.stem).not.toBe(d.names.stem);
    expect(there.role.arn).not.toBe(d.role.arn);
    // The secret's region (where function, rule and log group live) is not the cluster's.
    expect(there.region).toBe('us-east-1');
    expect(there.function.environment[ENV.clusterName]).toBe('prod-eu');
    expect(d.function.description).toBe('secretsync: payments/db-creds in cluster prod-eu (us-east-1)');
    expect(there.function.description).toBe('secretsync: payments/db-creds in cluster prod-eu (eu-west-1)');
  });

  it('passes settings through: boundary, runtime, architecture, memory, timeout, retention, prefix, path', () => {
    const custom = sampleDesired({
      settings: {
        permissionsBoundaryArn: `arn:aws:iam::${ACCOUNT}:policy/boundary`,
        runtime: 'nodejs22.x',
        architecture: 'x86_64',
        memoryMb: 256,
        timeoutSeconds: 10,
        logRetentionDays: 7,
        namePrefix: 'ss',
        iamPath: '/x/',
      },
      code: functionCode(),
    });
    expect(custom.role.permissionsBoundaryArn).toBe(`arn:aws:iam::${ACCOUNT}:policy/boundary`);
    expect(custom.function).toMatchObject({
      runtime: 'nodejs22.x',
      architecture: 'x86_64',
      memoryMb: 256,
      timeoutSeconds: 10,
    });
    expect(custom.logGroup.retentionDays).toBe(7);
    expect(custom.role.arn).toMatch(/:role\/x\/ss-payments-db-creds-[0-9a-f]{8}$/);
  });

  it('refuses a SecretSync without uid and a malformed secret ARN', () => {
    const sync = sampleSync();
    delete sync.metadata.uid;
    expect(() => sampleDesired({ sync })).toThrow(/uid/);
    expect(() => sampleDesired({ secretArn: 'prod/payments/db' })).toThrow(/ARN/);
  });
});

describe('regionOf', () => {
  it('prefers spec.source.region, then the ARN’s region, then the default', () => {
    const sync = sampleSync();
    expect(regionOf(sync, 'eu-central-1')).toBe('eu-central-1');
    sync.spec.source.secretId = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf';
    expect(regionOf(sync, 'eu-central-1')).toBe('eu-west-1');
    sync.spec.source.region = 'eu-west-1';
    expect(regionOf(sync, 'eu-central-1')).toBe('eu-west-1');
  });
});

describe('withDefaults', () => {
  it('fills the documented defaults and keeps explicit values', () => {
    expect(sampleSettings()).toEqual({
      ...SETTINGS_DEFAULTS,
      clusterName: 'prod-eu',
      region: 'us-east-1',
      accountId: ACCOUNT,
    });
    expect(SETTINGS_DEFAULTS).toMatchObject({ runtime: 'nodejs24.x', architecture: 'arm64', memoryMb: 128 });
    expect(
      withDefaults({ clusterName: 'c', region: 'r', accountId: 'a', memoryMb: undefined }).memoryMb,
    ).toBe(128);
    expect(withDefaults({ clusterName: 'c', region: 'r', accountId: 'a', memoryMb: 512 }).memoryMb).toBe(512);
  });
});
