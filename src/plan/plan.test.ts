import { describe, expect, it } from 'vitest';
import { ROLE_ID_TAG } from '../controller/aws/access-entry.ts';
import {
  ACCOUNT,
  functionCode,
  sampleDesired,
  sampleSettings,
  sampleSync,
} from '../controller/aws/test-support.ts';
import { desiredRules } from '../controller/kube/role.ts';
import { resourceNames } from '../controller/naming.ts';
import { ENV } from '../lambda/config.ts';
import { buildPlan, formatPlan, ITEM_KINDS, type PlanItem, type PlanReport } from './plan.ts';

const SECRET = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:prod/payments/db-AbCdEf`;
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const code = functionCode();
// What sampleDesired() passes as DescribeCluster's answer.
const cluster = {
  endpoint: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
  certificateAuthorityData: Buffer.from(
    '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  ).toString('base64'),
};

const item = (r: PlanReport, kind: PlanItem['kind']): PlanItem => {
  const found = r.items.find((i) => i.kind === kind);
  if (!found) throw new Error(`no ${kind}`);
  return found;
};
const desiredOf = (r: PlanReport, kind: PlanItem['kind']) => item(r, kind).desired;

describe('buildPlan: what the controller would create, from the controller’s own builders', () => {
  const resolved = (kmsKeyId?: string) =>
    buildPlan({
      sync: sampleSync(),
      settings: sampleSettings(),
      code,
      cluster,
      secret: { arn: SECRET, kmsKeyId },
      roleId: 'AROAEXAMPLE',
    }).report;

  it('shows byte for byte the role policies, pattern, function settings and entry a pass writes', () => {
    for (const kmsKeyId of [undefined, KEY]) {
      const r = resolved(kmsKeyId);
      const d = sampleDesired({ code, kmsKeyId });
      const role = desiredOf(r, 'IAMRole');
      expect(JSON.stringify(role.assumeRolePolicyDocument)).toBe(d.role.assumeRolePolicyDocument);
      expect(JSON.stringify(role.inlinePolicyDocument)).toBe(d.role.inlinePolicyDocument);
      expect(JSON.stringify(desiredOf(r, 'EventRule').eventPattern)).toBe(d.rule.eventPattern);
      expect(desiredOf(r, 'Function')).toMatchObject({
        environment: d.function.environment,
        runtime: d.function.runtime,
        memoryMb: d.function.memoryMb,
        timeoutSeconds: d.function.timeoutSeconds,
        roleArn: d.function.roleArn,
        codeSha256: code.sha256,
        tags: d.function.tags,
      });
      expect(desiredOf(r, 'EventRuleTarget')).toEqual(d.rule.target);
      expect(desiredOf(r, 'LambdaPermission')).toEqual(d.permission);
      expect(desiredOf(r, 'EventInvokeConfig')).toEqual(d.invokeConfig);
      expect(desiredOf(r, 'AccessEntry')).toEqual({
        ...d.accessEntry,
        tags: { ...d.accessEntry.tags, [ROLE_ID_TAG]: 'AROAEXAMPLE' },
        accessPolicies: [],
      });
      expect(item(r, 'IAMRole')).toMatchObject({ name: d.role.name, arn: d.role.arn });
      expect(item(r, 'Function').arn).toBe(d.function.arn);
      expect(item(r, 'EventRule').arn).toBe(d.rule.arn);
      expect(item(r, 'LogGroup')).toMatchObject({ name: d.logGroup.name, arn: d.logGroup.arn });
    }
  });

  it('grants GetSecretValue on the one ARN, its own logs, and Decrypt via Secrets Manager only with a key', () => {
    const statements = (r: PlanReport) =>
      (desiredOf(r, 'IAMRole').inlinePolicyDocument as { Statement: { Sid: string }[] }).Statement;
    expect(statements(resolved())).toEqual([
      { Sid: 'ReadSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: SECRET },
      expect.objectContaining({ Sid: 'WriteOwnLogs', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'] }),
    ]);
    expect(statements(resolved(KEY)).find((s) => s.Sid === 'DecryptSecret')).toEqual({
      Sid: 'DecryptSecret',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: KEY,
      Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' } },
    });
  });

  it('lists every kind once, in provisioning order, with no state before a check', () => {
    const r = resolved();
    expect(r.items.map((i) => i.kind)).toEqual([...ITEM_KINDS]);
    expect(r.items.every((i) => i.state === undefined)).toBe(true);
    expect(r.checked).toBe(false);
    expect(r).toMatchObject({ account: ACCOUNT, region: 'us-east-1', secretArn: SECRET });
  });

  it('gives the function’s identity exactly its target Secret and its own SecretSync in the cluster', () => {
    const r = resolved();
    const names = resourceNames({ clusterArn: r.cluster.arn, namespace: 'payments', name: 'db-creds' });
    expect(item(r, 'Role').name).toBe(`payments/${names.rbacName}`);
    expect(desiredOf(r, 'Role').rules).toEqual(
      desiredRules({ targetName: 'db-creds', secretSyncName: 'db-creds' }),
    );
    expect(desiredOf(r, 'RoleBinding')).toMatchObject({
      roleRef: { kind: 'Role', name: names.rbacName },
      subjects: [{ kind: 'User', name: 'secretsync:payments:db-creds' }],
    });
    expect(desiredOf(r, 'AccessEntry').username).toBe('secretsync:payments:db-creds');
  });

  it('plans a suspended SecretSync with its rule disabled', () => {
    const r = buildPlan({ sync: sampleSync({ suspend: true }), settings: sampleSettings(), code }).report;
    expect(desiredOf(r, 'EventRule').state).toBe('DISABLED');
  });
});

describe('buildPlan without AWS: marked placeholders', () => {
  const sync = sampleSync();
  delete (sync.metadata as { uid?: string }).uid;
  const r = buildPlan({ sync, settings: sampleSettings(), code }).report;
  const marked = /<resolved at provisioning: [^>]+>/;

  it('names everything exactly (the names need only the cluster ARN, namespace and name)', () => {
    const d = sampleDesired({ code });
    expect(item(r, 'IAMRole')).toMatchObject({ name: d.role.name, arn: d.role.arn });
    expect(item(r, 'Function').arn).toBe(d.function.arn);
  });

  it('marks what only provisioning learns: the ARN suffix, endpoint, CA, uid and role id', () => {
    expect(r.secretArn).toMatch(
      new RegExp(
        `^arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:prod/payments/db-<resolved at provisioning: `,
      ),
    );
    const env = desiredOf(r, 'Function').environment as Record<string, string>;
    expect(env[ENV.apiEndpoint]).toMatch(marked);
    expect(env[ENV.ca]).toMatch(marked);
    expect(env[ENV.secretArn]).toBe(r.secretArn);
    expect((desiredOf(r, 'IAMRole').tags as Record<string, string>)['secretsync.io/uid']).toMatch(marked);
    expect((desiredOf(r, 'AccessEntry').tags as Record<string, string>)[ROLE_ID_TAG]).toMatch(marked);
    expect(r.notes.join('\n')).toMatch(/DescribeSecret[\s\S]*customer-managed KMS key[\s\S]*DescribeCluster/);
  });

  it('takes a secretId that is a full ARN as it is, and --kms-key for the Decrypt statement', () => {
    const arnSync = { ...sync, spec: { ...sync.spec, source: { ...sync.spec.source, secretId: SECRET } } };
    const p = buildPlan({ sync: arnSync, settings: sampleSettings(), code, kmsKeyId: KEY }).report;
    expect(p.secretArn).toBe(SECRET);
    const doc = desiredOf(p, 'IAMRole').inlinePolicyDocument as { Statement: { Sid: string }[] };
    expect(doc.Statement.map((s) => s.Sid)).toEqual(['ReadSecret', 'DecryptSecret', 'WriteOwnLogs']);
    expect(p.notes.join('\n')).not.toMatch(/customer-managed/);
  });
});

describe('formatPlan', () => {
  it('has a section per item, the policies as indented JSON, and the counts after a check', () => {
    const { report } = buildPlan({
      sync: sampleSync(),
      settings: sampleSettings(),
      code,
      cluster,
      secret: { arn: SECRET },
    });
    const text = formatPlan(report);
    for (const i of report.items) expect(text).toContain(`\n${i.kind} ${i.name}\n`);
    expect(text).toContain('      "Action": "secretsmanager:GetSecretValue",');
    expect(text).toContain('not checked');
    report.checked = true;
    for (const i of report.items) i.state = 'exists';
    report.items[0]!.state = 'differs';
    report.items[0]!.differences = ['policy'];
    const checked = formatPlan(report);
    expect(checked).toContain(`IAMRole ${report.items[0]!.name}  [differs]`);
    expect(checked).toContain('  differences: policy');
    expect(checked).toContain('10 exist as planned, 1 differ, 0 missing, 0 not ours');
  });
});
