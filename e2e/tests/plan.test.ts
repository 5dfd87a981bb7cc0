import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DeleteRuleCommand, EventBridgeClient, RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanItem, PlanReport } from '../../src/plan/plan.ts';
import { awsCalls, isRead, namesFor, resetAwsCalls } from './controller-helpers.ts';
import {
  applySecretSync,
  createAwsSecret,
  getSecretSync,
  idle,
  startTestController,
  type TestController,
  waitReady,
  ZIP,
} from './controller-support.ts';
import { awsConfig, bed, freshNamespace, rbac } from './support.ts';

/**
 * `secretsync plan` run as a user would run it (the CLI, a child process, AWS_ENDPOINT_URL and
 * KUBECONFIG set) against what a controller provisioned on the test bed: every item exists; then
 * changed out of band (a rule deleted, the inline policy edited, the Role deleted), a same-named
 * role of someone else; and without --check, not one AWS call. The CLI signs with its own access key,
 * so the front door's log tells its calls from the controller's.
 */

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const PLAN_KEY = 'AKIAPLANCLI000000001';

interface Run {
  code: number;
  report: PlanReport;
  stdout: string;
  stderr: string;
}

async function plan(file: string, args: string[] = []): Promise<Run> {
  const b = bed();
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        CLI,
        'plan',
        '-f',
        file,
        '-o',
        'json',
        `--cluster-name=${b.clusterName}`,
        `--lambda-zip=${ZIP}`,
        ...args,
      ],
      {
        env: {
          PATH: process.env.PATH,
          AWS_ENDPOINT_URL: b.aws.url,
          AWS_REGION: b.aws.region,
          AWS_ACCESS_KEY_ID: PLAN_KEY,
          AWS_SECRET_ACCESS_KEY: 'plan-cli-secret',
          KUBECONFIG: b.kubeconfigPath,
        },
      },
    );
    return { code: 0, report: JSON.parse(stdout) as PlanReport, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    if (!e.stdout) throw new Error(`plan exited ${e.code}: ${e.stderr}`);
    return { code: e.code, report: JSON.parse(e.stdout) as PlanReport, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The CLI's own AWS calls since the last reset. */
const planCalls = async () => (await awsCalls()).filter((c) => c.accessKeyId === PLAN_KEY);
const states = (r: PlanReport) => Object.fromEntries(r.items.map((i) => [i.kind, i.state]));
const item = (r: PlanReport, kind: PlanItem['kind']) => r.items.find((i) => i.kind === kind) as PlanItem;

describe('secretsync plan against the test bed', () => {
  let c: TestController | undefined;
  let ns = '';
  let secretArn = '';
  let dir = '';
  const manifest = (name: string, secretId: string) =>
    [
      'apiVersion: secretsync.io/v1alpha1',
      'kind: SecretSync',
      `metadata: {name: ${name}, namespace: ${ns}}`,
      'spec:',
      `  source: {secretId: "${secretId}"}`,
      '  target: {name: db-creds, keys: [{from: password, to: DB_PASSWORD}]}',
      '',
    ].join('\n');

  beforeAll(async () => {
    ns = await freshNamespace('plan');
    dir = mkdtempSync(join(tmpdir(), 'plan-'));
    const secretName = `plan/${ns}/db`;
    secretArn = await createAwsSecret(secretName, JSON.stringify({ password: 'p1' }), [
      { Key: 'secretsync.io/namespaces', Value: ns },
    ]);
    writeFileSync(join(dir, 'db.yaml'), manifest('db', secretName));
    writeFileSync(join(dir, 'other.yaml'), manifest('other', secretName));
    c = await startTestController();
    await applySecretSync(ns, 'db', {
      source: { secretId: secretName },
      target: { name: 'db-creds', keys: [{ from: 'password', to: 'DB_PASSWORD' }] },
    });
    await waitReady(ns, 'db');
    await idle();
    // Nothing repairs what the tests change out of band.
    await c.stop();
    c = undefined;
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('--check: every item the controller provisioned exists as planned, read with reads only', async () => {
    await resetAwsCalls();
    const { code, report, stdout } = await plan(join(dir, 'db.yaml'), ['--check']);
    expect(states(report)).toEqual({
      IAMRole: 'exists',
      LogGroup: 'exists',
      Function: 'exists',
      EventInvokeConfig: 'exists',
      LambdaPermission: 'exists',
      EventRule: 'exists',
      EventRuleTarget: 'exists',
      AccessEntry: 'exists',
      Role: 'exists',
      RoleBinding: 'exists',
      Secret: 'exists',
    });
    expect(code).toBe(0);
    expect(report).toMatchObject({ checked: true, account: bed().aws.accountId, secretArn });
    // Everything resolved: the secret's ARN and uid, the cluster's endpoint and CA, the role id.
    expect(stdout).not.toContain('<resolved at provisioning');
    const ss = await getSecretSync(ns, 'db');
    expect(item(report, 'IAMRole').desired.tags).toMatchObject({ 'secretsync.io/uid': ss?.metadata.uid });
    expect(ss?.status).toMatchObject({
      roleArn: item(report, 'IAMRole').arn,
      functionArn: item(report, 'Function').arn,
      ruleArn: item(report, 'EventRule').arn,
    });
    expect(report.notes.join('\n')).toContain(`Tenancy (tag) allows namespace ${ns}`);
    expect(report.notes.join('\n')).not.toContain('another spec than the file');
    const calls = await planCalls();
    expect(calls.map((x) => x.operation)).toEqual(
      expect.arrayContaining([
        'GetCallerIdentity',
        'DescribeCluster',
        'DescribeSecret',
        'GetRole',
        'GetRolePolicy',
      ]),
    );
    expect(calls.filter((x) => !isRead(x.operation))).toEqual([]);
  });

  it('without --check: the same names and ARNs, placeholders for the rest, and not one AWS call', async () => {
    const checked = (await plan(join(dir, 'db.yaml'), ['--check'])).report;
    await resetAwsCalls();
    const { code, report, stdout } = await plan(join(dir, 'db.yaml'), [`--account=${bed().aws.accountId}`]);
    expect(code).toBe(0);
    expect(await planCalls()).toEqual([]);
    expect(report.checked).toBe(false);
    expect(report.items.every((i) => i.state === undefined && i.differences === undefined)).toBe(true);
    const ids = (r: PlanReport) => r.items.map((i) => [i.kind, i.name, i.arn]);
    expect(ids(report)).toEqual(ids(checked));
    expect(stdout).toContain(
      '<resolved at provisioning: the 6 characters Secrets Manager appended to the name>',
    );
    // Equal to what was provisioned but for what only provisioning knows.
    const { environment: _e, tags: _t, ...fn } = item(report, 'Function').desired;
    expect(item(checked, 'Function').desired).toMatchObject(fn);
    expect(item(report, 'Role').desired.rules).toEqual(item(checked, 'Role').desired.rules);
  });

  it('--check after changes out of band: missing and differs, exit 1', async () => {
    const names = namesFor(ns, 'db');
    const events = new EventBridgeClient(awsConfig());
    await events.send(new RemoveTargetsCommand({ Rule: names.ruleName, Ids: ['secretsync'] }));
    await events.send(new DeleteRuleCommand({ Name: names.ruleName }));
    await new IAMClient(awsConfig()).send(
      new PutRolePolicyCommand({
        RoleName: names.roleName,
        PolicyName: 'secretsync',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: '*' }],
        }),
      }),
    );
    await rbac().deleteNamespacedRole({ namespace: ns, name: names.rbacName });
    await resetAwsCalls();

    const { code, report } = await plan(join(dir, 'db.yaml'), ['--check']);
    expect(states(report)).toMatchObject({
      IAMRole: 'differs',
      Function: 'exists',
      EventRule: 'missing',
      EventRuleTarget: 'missing',
      AccessEntry: 'exists',
      Role: 'missing',
      RoleBinding: 'exists',
    });
    expect(item(report, 'IAMRole').differences).toEqual(['policy']);
    expect(code).toBe(1);
    expect((await planCalls()).filter((x) => !isRead(x.operation))).toEqual([]);
  });

  it('--check: a same-named role without our tags is not ours, and its parts are not judged', async () => {
    const names = namesFor(ns, 'other');
    await new IAMClient(awsConfig()).send(
      new CreateRoleCommand({
        RoleName: names.roleName,
        Path: names.rolePath,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
      }),
    );
    const { code, report } = await plan(join(dir, 'other.yaml'), ['--check']);
    expect(states(report)).toMatchObject({
      IAMRole: 'not-ours',
      Function: 'missing',
      EventRule: 'missing',
      AccessEntry: 'missing',
      Role: 'missing',
      RoleBinding: 'missing',
      // The target of db, which exists: plan reports it, whoever wrote it.
      Secret: 'exists',
    });
    expect(code).toBe(1);
    expect(report.notes.join('\n')).toContain(`SecretSync ${ns}/other is not in the cluster`);
  });

  it('exits 2 with a clear message for a file with two SecretSyncs and no --name', async () => {
    const file = join(dir, 'two.yaml');
    writeFileSync(file, `${manifest('a', 'x')}---\n${manifest('b', 'y')}`);
    await expect(plan(file, ['--check'])).rejects.toThrow(
      /plan exited 2: secretsync plan: .*two\.yaml holds 2 SecretSyncs \(a, b\); choose one with --name/,
    );
  });
});
