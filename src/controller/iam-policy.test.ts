import { describe, expect, it } from 'vitest';
import { controllerIdentityPolicy } from './iam-policy.ts';

const base = {
  accountId: '123456789012',
  regions: [],
  clusterRegion: 'eu-west-1',
  clusterName: 'prod',
  iamPath: '/secretsync/',
  namePrefix: 'secretsync',
};

describe('controller IAM policy (pure)', () => {
  const doc = controllerIdentityPolicy(base);
  const all = doc.Statement.flatMap((s) => s.Action.map((a) => ({ a, s })));

  it('never grants GetSecretValue, wildcards of actions, or Resource * on a write', () => {
    expect(all.some(({ a }) => a === 'secretsmanager:GetSecretValue')).toBe(false);
    expect(all.some(({ a }) => a.includes('*'))).toBe(false);
    // "*" only where AWS offers no resource-level scoping, and only on reads (the list calls).
    for (const s of doc.Statement.filter((x) => x.Resource.includes('*')))
      for (const a of s.Action) expect(a).toMatch(/^[a-z0-9]+:(Describe|List|Get)/);
  });

  it('puts the list calls without resource-level permissions in one "*" statement, and nothing else', () => {
    const star = doc.Statement.filter((s) => s.Resource.includes('*'));
    expect(star.map((s) => [s.Sid, s.Resource])).toEqual([['ListWithoutResourceLevelPermissions', ['*']]]);
    expect(star[0]!.Action).toEqual([
      'events:ListRules',
      'iam:ListRoles',
      'logs:DescribeLogGroups',
      'secretsmanager:ListSecrets',
      'tag:GetResources',
    ]);
    expect(star[0]!.Condition).toBeUndefined();
    // Each list action is granted once, there.
    for (const a of star[0]!.Action) expect(all.filter((x) => x.a === a)).toHaveLength(1);
  });

  it('lists access entries of the one cluster only', () => {
    const list = doc.Statement.filter((s) => s.Action.includes('eks:ListAccessEntries'));
    expect(list.map((s) => s.Resource)).toEqual([['arn:aws:eks:eu-west-1:123456789012:cluster/prod']]);
  });

  it('scopes roles to the path and prefix and passes them to Lambda only', () => {
    const pass = doc.Statement.find((s) => s.Action.includes('iam:PassRole'))!;
    expect(pass.Resource).toEqual(['arn:aws:iam::123456789012:role/secretsync/secretsync-*']);
    expect(pass.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } });
  });

  it('requires the permissions boundary on CreateRole when configured, and cannot remove it', () => {
    const withB = controllerIdentityPolicy({
      ...base,
      permissionsBoundaryArn: 'arn:aws:iam::123456789012:policy/b',
    });
    const create = withB.Statement.find((s) => s.Action.includes('iam:CreateRole'))!;
    expect(create.Condition).toEqual({
      StringEquals: { 'iam:PermissionsBoundary': 'arn:aws:iam::123456789012:policy/b' },
    });
    expect(withB.Statement.flatMap((s) => s.Action)).not.toContain('iam:DeleteRolePermissionsBoundary');
  });

  it('limits access entries to the one cluster', () => {
    const eks = doc.Statement.find((s) => s.Action.includes('eks:CreateAccessEntry'))!;
    expect(eks.Resource).toEqual([
      'arn:aws:eks:eu-west-1:123456789012:cluster/prod',
      // Only entries of the controller's roles (EKS names an entry by role name; with the path too, to be safe).
      'arn:aws:eks:eu-west-1:123456789012:access-entry/prod/role/123456789012/secretsync-*',
      'arn:aws:eks:eu-west-1:123456789012:access-entry/prod/role/123456789012/secretsync/secretsync-*',
    ]);
  });
});
