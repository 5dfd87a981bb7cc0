import {
  SimulatePrincipalPolicyCommand,
  type SimulatePrincipalPolicyCommandInput,
} from '@aws-sdk/client-iam';
import { describe, expect, it } from 'vitest';
import { type DoctorClients, type DoctorInput, type Finding, runDoctor } from './doctor.ts';

const ROLE = 'arn:aws:iam::123456789012:role/secretsync-controller';
const CLUSTER = 'arn:aws:eks:eu-west-1:123456789012:cluster/prod';
const INVENTORY_STAR = [
  'events:ListRules',
  'iam:ListRoles',
  'logs:DescribeLogGroups',
  'secretsmanager:ListSecrets',
  'tag:GetResources',
];

const input: DoctorInput = {
  clusterName: 'prod',
  region: 'eu-west-1',
  regions: [],
  iamPath: '/secretsync/',
  namePrefix: 'secretsync',
  runtime: 'nodejs24.x',
  architecture: 'arm64',
  subnetIds: [],
  securityGroupIds: [],
  concurrency: 10,
  planned: 1,
  principalArn: ROLE,
};

/**
 * IAM's simulator as doctor sees it: every action allowed but `denied`; each request recorded. The
 * other services refuse everything, so their checks warn or fail; only the permission check matters.
 */
function fakeClients(denied: string[] = []) {
  const asked: SimulatePrincipalPolicyCommandInput[] = [];
  const refuse = async () => {
    throw Object.assign(new Error('not in this test'), { name: 'AccessDeniedException' });
  };
  const iam = {
    send: async (command: unknown) => {
      if (!(command instanceof SimulatePrincipalPolicyCommand)) return refuse();
      asked.push(command.input);
      return {
        IsTruncated: false,
        EvaluationResults: (command.input.ActionNames ?? []).map((action) => ({
          EvalActionName: action,
          EvalResourceName: command.input.ResourceArns?.[0] ?? '*',
          EvalDecision: denied.includes(action) ? 'implicitDeny' : 'allowed',
        })),
      };
    },
  };
  const other = { send: refuse };
  const clients = {
    sts: other,
    iam,
    eks: other,
    lambda: () => other,
    events: () => other,
    quotas: () => other,
  } as unknown as DoctorClients;
  return { clients, asked };
}

const permissions = (findings: Finding[]) => findings.find((f) => f.check === 'controller-permissions')!;

describe('doctor: the inventory pass’s list permissions', () => {
  it('asks IAM about each list action: the "*"-only ones without a resource, ListAccessEntries on the cluster', async () => {
    const { clients, asked } = fakeClients();
    const f = permissions(await runDoctor(input, clients));
    expect(f.status).toBe('pass');
    const star = asked.filter((a) => !a.ResourceArns);
    expect(star.flatMap((a) => a.ActionNames)).toEqual(expect.arrayContaining(INVENTORY_STAR));
    const onCluster = asked.filter((a) => a.ActionNames?.includes('eks:ListAccessEntries'));
    expect(onCluster.map((a) => a.ResourceArns)).toEqual([[CLUSTER]]);
  });

  it('fails a role without them and names each, on "*" and on the cluster', async () => {
    const { clients } = fakeClients([...INVENTORY_STAR, 'eks:ListAccessEntries']);
    const f = permissions(await runDoctor(input, clients));
    expect(f.status).toBe('fail');
    expect(f.message).toMatch(/is denied 6 of \d+ controller requests/);
    expect(f.message).toContain(`${INVENTORY_STAR.join(', ')} on *`);
    expect(f.message).toContain(`eks:ListAccessEntries on ${CLUSTER}`);
    expect(f.fix).toContain('secretsync iam-policy --account 123456789012 --region eu-west-1 --cluster prod');
  });
});
