import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  CreatePolicyCommand,
  CreateRoleCommand,
  IAMClient,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controllerIdentityPolicy } from '../../src/controller/iam-policy.ts';
import type { Finding } from '../../src/doctor/doctor.ts';
import { awsConfig, bed, control } from './support.ts';

/**
 * `secretsync doctor` run as a user would run it (the CLI, a child process, AWS_ENDPOINT_URL set),
 * against the test bed — once healthy, then once for each failure the test bed can produce.
 */

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const ACCOUNT = '123456789012';

interface Report {
  ok: boolean;
  findings: Finding[];
}

async function doctor(args: string[]): Promise<{ code: number; report: Report; stderr: string }> {
  const b = bed();
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [CLI, 'doctor', '--output', 'json', ...args],
      {
        env: {
          PATH: process.env.PATH,
          AWS_ENDPOINT_URL: b.aws.url,
          AWS_REGION: b.aws.region,
          AWS_ACCESS_KEY_ID: b.aws.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: b.aws.credentials.secretAccessKey,
          SECRETSYNC_CLUSTER_NAME: b.clusterName,
        },
      },
    );
    return { code: 0, report: JSON.parse(stdout) as Report, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return {
      code: e.code,
      report: e.stdout ? (JSON.parse(e.stdout) as Report) : { ok: false, findings: [] },
      stderr: e.stderr,
    };
  }
}

const finding = (r: Report, check: string): Finding => {
  const f = r.findings.find((x) => x.check === check);
  if (!f) throw new Error(`no finding ${check} in ${JSON.stringify(r.findings.map((x) => x.check))}`);
  return f;
};
const statuses = (r: Report) => Object.fromEntries(r.findings.map((f) => [f.check, f.status]));

const iam = () => new IAMClient(awsConfig());
const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' },
  ],
});

/** A role holding `policy` inline (what a platform team attaches to the controller's role). */
async function controllerRole(policy: object, boundaryArn?: string): Promise<string> {
  const name = `doctor-${randomBytes(4).toString('hex')}`;
  const { Role } = await iam().send(
    new CreateRoleCommand({ RoleName: name, Path: '/controllers/', AssumeRolePolicyDocument: TRUST }),
  );
  await iam().send(
    new PutRolePolicyCommand({
      RoleName: name,
      PolicyName: 'secretsync',
      PolicyDocument: JSON.stringify(policy),
    }),
  );
  if (boundaryArn)
    await iam().send(
      new PutRolePermissionsBoundaryCommand({ RoleName: name, PermissionsBoundary: boundaryArn }),
    );
  return Role!.Arn!;
}

const generated = () =>
  controllerIdentityPolicy({
    accountId: ACCOUNT,
    regions: [],
    clusterRegion: bed().aws.region,
    clusterName: bed().clusterName,
    iamPath: '/secretsync/',
    namePrefix: 'secretsync',
  });

describe('secretsync doctor against the test bed', () => {
  let goodRole: string;
  beforeAll(async () => {
    goodRole = await controllerRole(generated());
  });
  afterEach(async () => {
    await control('account', { method: 'DELETE' });
    await control('auth-mode', { method: 'POST', body: JSON.stringify({ mode: 'API_AND_CONFIG_MAP' }) });
  });

  it('passes every check for a ready account and cluster, and exits 0', async () => {
    const { code, report } = await doctor(['--principal-arn', goodRole]);
    expect(statuses(report)).toEqual({
      cluster: 'pass',
      'authentication-mode': 'pass',
      endpoint: 'pass',
      'controller-permissions': 'pass',
      'lambda-runtime/eu-west-1': 'pass',
      'lambda-concurrency/eu-west-1': 'pass',
      'lambda-code-storage/eu-west-1': 'pass',
      'quota-iam-roles': 'pass',
      'quota-eventbridge-rules/eu-west-1': 'pass',
    });
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(finding(report, 'controller-permissions').message).toMatch(/may make all \d+ controller requests/);
  });

  it('names each permission the controller role lacks and the command that prints the policy', async () => {
    const policy = generated();
    const trimmed = {
      ...policy,
      Statement: policy.Statement.filter((s) => s.Sid !== 'PassFunctionRolesToLambdaOnly').map((s) =>
        s.Sid === 'ManageRules' ? { ...s, Action: s.Action.filter((a) => a !== 'events:PutTargets') } : s,
      ),
    };
    const { code, report } = await doctor(['--principal-arn', await controllerRole(trimmed)]);
    const f = finding(report, 'controller-permissions');
    expect(f.status).toBe('fail');
    expect(f.message).toMatch(/denied 2 of \d+ controller requests/);
    expect(f.message).toContain(
      'iam:PassRole on arn:aws:iam::123456789012:role/secretsync/secretsync-doctor-probe;',
    );
    expect(f.message).toMatch(
      /events:PutTargets on arn:aws:events:eu-west-1:123456789012:rule\/secretsync-doctor-probe$/,
    );
    expect(f.fix).toContain(
      `secretsync iam-policy --account ${ACCOUNT} --region eu-west-1 --cluster ${bed().clusterName}`,
    );
    expect(code).toBe(1);
  });

  it('counts a permissions boundary on the controller role: allowed by the policy, outside the boundary = denied', async () => {
    const { Policy } = await iam().send(
      new CreatePolicyCommand({
        PolicyName: `doctor-boundary-${randomBytes(3).toString('hex')}`,
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', NotAction: ['events:*'], Resource: '*' }],
        }),
      }),
    );
    const { report } = await doctor(['--principal-arn', await controllerRole(generated(), Policy!.Arn!)]);
    const f = finding(report, 'controller-permissions');
    expect(f.status).toBe('fail');
    // The nine events: actions of the ManageRules statement, and the inventory pass's events:ListRules.
    expect(f.message).toMatch(/denied 10 of/);
    expect(f.message).toMatch(
      /: events:DeleteRule, events:DescribeRule, .*events:UntagResource on arn:aws:events:/,
    );
    expect(f.message).toMatch(/; events:ListRules on \*$/);
  });

  it("checks the policy for the controller's settings: a role written for another name prefix fails", async () => {
    const { report } = await doctor(['--principal-arn', goodRole, '--name-prefix', 'ssync']);
    const f = finding(report, 'controller-permissions');
    expect(f.status).toBe('fail');
    // Names do not matter to the secret read, the list calls or the cluster: still allowed.
    expect(f.message).not.toMatch(
      /secretsmanager:DescribeSecret|secretsmanager:ListSecrets|logs:DescribeLogGroups|events:ListRules|iam:ListRoles|tag:GetResources|eks:DescribeCluster|eks:ListAccessEntries/,
    );
    expect(f.message).toMatch(
      /lambda:CreateFunction, .* on arn:aws:lambda:eu-west-1:123456789012:function:ssync-doctor-probe/,
    );
    expect(f.fix).toContain('--name-prefix ssync');
  });

  it('fails a cluster whose authentication mode ignores access entries, with the command that fixes it', async () => {
    await control('auth-mode', { method: 'POST', body: JSON.stringify({ mode: 'CONFIG_MAP' }) });
    const { code, report } = await doctor(['--principal-arn', goodRole]);
    const f = finding(report, 'authentication-mode');
    expect(f.status).toBe('fail');
    expect(f.message).toContain('CONFIG_MAP');
    expect(f.fix).toContain(
      `aws eks update-cluster-config --region eu-west-1 --name ${bed().clusterName} --access-config authenticationMode=API_AND_CONFIG_MAP`,
    );
    expect(code).toBe(1);
  });

  describe('endpoint reachability', () => {
    const eks = () => new EKSClient(awsConfig());
    async function cluster(vpc: { endpointPublicAccess: boolean; publicAccessCidrs?: string[] }) {
      const name = `doctor-${randomBytes(3).toString('hex')}`;
      await eks().send(
        new CreateClusterCommand({
          name,
          roleArn: `arn:aws:iam::${ACCOUNT}:role/eks`,
          resourcesVpcConfig: { subnetIds: ['subnet-a'], endpointPrivateAccess: true, ...vpc },
        }),
      );
      return name;
    }

    it('fails a private-only endpoint when the functions run outside a VPC; passes with VPC settings', async () => {
      const name = await cluster({ endpointPublicAccess: false });
      const { report } = await doctor(['--principal-arn', goodRole, '--cluster-name', name]);
      expect(finding(report, 'endpoint')).toMatchObject({ status: 'fail' });
      expect(finding(report, 'endpoint').fix).toContain('lambda.subnetIds');

      const inVpc = await doctor([
        '--principal-arn',
        goodRole,
        '--cluster-name',
        name,
        '--lambda-subnets',
        'subnet-1,subnet-2',
        '--lambda-security-groups',
        'sg-1',
      ]);
      expect(finding(inVpc.report, 'endpoint').status).toBe('pass');
    });

    it('warns when the public endpoint admits only some addresses and the functions run outside a VPC', async () => {
      const name = await cluster({ endpointPublicAccess: true, publicAccessCidrs: ['203.0.113.0/24'] });
      const { report } = await doctor(['--principal-arn', goodRole, '--cluster-name', name]);
      expect(finding(report, 'endpoint')).toMatchObject({ status: 'warn' });
      expect(finding(report, 'endpoint').message).toContain('203.0.113.0/24');
    });
  });

  it('fails a cluster that does not exist and skips what needs it', async () => {
    const { code, report } = await doctor(['--principal-arn', goodRole, '--cluster-name', 'no-such-cluster']);
    expect(finding(report, 'cluster')).toMatchObject({ status: 'fail' });
    expect(finding(report, 'cluster').message).toContain('no EKS cluster named no-such-cluster in eu-west-1');
    expect(finding(report, 'authentication-mode').status).toBe('skip');
    expect(code).toBe(1);
  });

  it.each([
    [
      'a runtime Lambda does not know',
      ['--lambda-runtime', 'nodejs99.x'],
      'fail',
      /does not offer nodejs99.x/,
    ],
    ['an architecture Lambda does not know', ['--lambda-architecture', 'riscv64'], 'fail', /on riscv64/],
    ['a runtime that is not Node.js', ['--lambda-runtime', 'python3.13'], 'fail', /not a Node.js runtime/],
    ['an older Node.js runtime', ['--lambda-runtime', 'nodejs22.x'], 'warn', /offers nodejs22.x/],
  ])('checks the Lambda runtime: %s', async (_what, args, status, message) => {
    const { report } = await doctor(['--principal-arn', goodRole, ...args]);
    expect(finding(report, 'lambda-runtime/eu-west-1')).toMatchObject({
      status,
      message: expect.stringMatching(message),
    });
  });

  it("warns about a new account's Lambda concurrency of 10", async () => {
    await control('account', { method: 'POST', body: JSON.stringify({ lambdaConcurrency: 10 }) });
    const { code, report } = await doctor(['--principal-arn', goodRole]);
    const f = finding(report, 'lambda-concurrency/eu-west-1');
    expect(f.status).toBe('warn');
    expect(f.message).toContain('account concurrency 10');
    expect(f.fix).toContain('L-B99A9384');
    expect(code).toBe(0); // a warning: throttled events are retried, not lost
  });

  it('fails when the planned SecretSyncs do not fit the EventBridge rule or IAM role quotas', async () => {
    // The run raised the quotas (global-setup): AWS's defaults here (afterEach restores the run's).
    await control('account', {
      method: 'POST',
      body: JSON.stringify({ quotas: { 'events/L-244521F2': 300, 'iam/L-FE177D64': 1000 } }),
    });
    // Other tests leave rules behind on the shared bus: count them first.
    const before = await doctor(['--principal-arn', goodRole]);
    const used = Number(
      /^(\d+) of 300 rules/.exec(finding(before.report, 'quota-eventbridge-rules/eu-west-1').message)?.[1],
    );
    expect(Number.isInteger(used)).toBe(true);
    await control('account', {
      method: 'POST',
      body: JSON.stringify({ quotas: { 'events/L-244521F2': used + 10 } }),
    });

    const tight = await doctor(['--principal-arn', goodRole, '--planned', '11']);
    const rules = finding(tight.report, 'quota-eventbridge-rules/eu-west-1');
    expect(rules.status).toBe('fail');
    expect(rules.message).toBe(
      `${used} of ${used + 10} rules on the default event bus in eu-west-1 (quota from Service Quotas); 11 SecretSyncs need 11 more, 10 free`,
    );
    expect(rules.fix).toContain('L-244521F2');
    expect(tight.code).toBe(1);
    // Fits, but leaves the bus above 90% full.
    const near = await doctor(['--principal-arn', goodRole, '--planned', '10']);
    expect(finding(near.report, 'quota-eventbridge-rules/eu-west-1').status).toBe('warn');

    const roles = await doctor(['--principal-arn', goodRole, '--planned', '5000']);
    expect(finding(roles.report, 'quota-iam-roles')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('L-FE177D64'),
    });
  });

  it('refuses bad flags with exit status 2 and says which', async () => {
    const { code, stderr } = await doctor(['--planned', 'many', '--output', 'yaml']);
    expect(code).toBe(2);
    expect(stderr).toContain('--planned must be a whole number');
    expect(stderr).toContain('--output must be text or json');
  });
});
