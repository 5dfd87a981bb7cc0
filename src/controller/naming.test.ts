import { describe, expect, it } from 'vitest';
import { isDns1123Subdomain } from '../lambda/config.ts';
import {
  clusterArn,
  isOurTagKey,
  type Owner,
  ownedBy,
  ownershipTags,
  parseClusterArn,
  resourceNames,
  TAG,
} from './naming.ts';

const PROD_EU = 'arn:aws:eks:eu-west-1:123456789012:cluster/prod-eu';
// Same name, same account, another region: another cluster.
const PROD_EU_IN_US = 'arn:aws:eks:us-east-1:123456789012:cluster/prod-eu';
const owner: Owner = { clusterArn: PROD_EU, namespace: 'payments', name: 'db-creds', uid: 'uid-1' };
const long63 = (c: string) => c.repeat(63);

describe('resourceNames', () => {
  it('derives every name from one stem: prefix, namespace, name and an 8-hex hash', () => {
    const n = resourceNames(owner);
    expect(n.stem).toMatch(/^secretsync-payments-db-creds-[0-9a-f]{8}$/);
    expect(n).toEqual({
      stem: n.stem,
      roleName: n.stem,
      rolePath: '/secretsync/',
      functionName: n.stem,
      ruleName: n.stem,
      logGroupName: `/aws/lambda/${n.stem}`,
      eksUsername: 'secretsync:payments:db-creds',
      rbacName: 'secretsync-db-creds',
    });
  });

  it('is deterministic', () => {
    expect(resourceNames({ ...owner })).toEqual(resourceNames(owner));
  });

  it('never collides across clusters (same-named ones in two regions too), namespaces, or namespace/name splits of the same text', () => {
    const stems = [
      resourceNames(owner).stem,
      resourceNames({ ...owner, clusterArn: 'arn:aws:eks:eu-west-1:123456789012:cluster/prod-us' }).stem,
      resourceNames({ ...owner, clusterArn: PROD_EU_IN_US }).stem,
      resourceNames({ ...owner, namespace: 'billing' }).stem,
      // Same readable part "payments-db-creds", different owners.
      resourceNames({ ...owner, namespace: 'payments-db', name: 'creds' }).stem,
    ];
    expect(new Set(stems).size).toBe(stems.length);
  });

  it('stays within 64 characters and AWS alphabets for the longest names, and truncation does not collide', () => {
    const a = resourceNames({ ...owner, namespace: long63('n'), name: `${long63('x').slice(0, 62)}a` });
    const b = resourceNames({ ...owner, namespace: long63('n'), name: `${long63('x').slice(0, 62)}b` });
    for (const n of [a, b]) {
      expect(n.stem.length).toBeLessThanOrEqual(64);
      expect(n.functionName).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(n.ruleName).toMatch(/^[.\-_A-Za-z0-9]{1,64}$/);
      expect(n.roleName).toMatch(/^[\w+=,.@-]{1,64}$/);
      expect(isDns1123Subdomain(n.rbacName)).toBe(true);
    }
    expect(a.stem).not.toBe(b.stem);
  });

  it('turns dots (allowed in SecretSync names, not in function names) into dashes', () => {
    const n = resourceNames({ ...owner, name: 'db.creds.v2' });
    expect(n.functionName).toMatch(/^secretsync-payments-db-creds-v2-[0-9a-f]{8}$/);
    expect(n.eksUsername).toBe('secretsync:payments:db.creds.v2');
    expect(n.rbacName).toBe('secretsync-db.creds.v2');
  });

  it('does not leave a dash run before the hash when the cut lands on a dash', () => {
    const n = resourceNames({ ...owner, namespace: `${'a'.repeat(42)}-bbb`, name: 'c' });
    expect(n.stem).not.toMatch(/--/);
  });

  it('honours a custom prefix and IAM path, and refuses invalid ones', () => {
    const n = resourceNames(owner, { prefix: 'ss', iamPath: '/platform/secretsync/' });
    expect(n.stem).toMatch(/^ss-payments-db-creds-[0-9a-f]{8}$/);
    expect(n.rolePath).toBe('/platform/secretsync/');
    expect(() => resourceNames(owner, { prefix: 'Secret_Sync' })).toThrow(/prefix/);
    expect(() => resourceNames(owner, { prefix: 'a'.repeat(21) })).toThrow(/prefix/);
    expect(() => resourceNames(owner, { iamPath: 'secretsync' })).toThrow(/IAM path/);
  });
});

describe('ownership tags', () => {
  it('names cluster, namespace, name, uid and the manager', () => {
    expect(ownershipTags(owner)).toEqual({
      'secretsync.io/cluster': PROD_EU,
      'secretsync.io/namespace': 'payments',
      'secretsync.io/name': 'db-creds',
      'secretsync.io/uid': 'uid-1',
      'app.kubernetes.io/managed-by': 'secretsync',
    });
  });

  it('ownedBy matches cluster, namespace and name; an older uid is adopted', () => {
    const tags = ownershipTags(owner);
    expect(ownedBy(tags, owner)).toBe(true);
    expect(ownedBy({ ...tags, [TAG.uid]: 'uid-0' }, owner)).toBe(true);
    expect(ownedBy({ ...tags, extra: 'x' }, owner)).toBe(true);
  });

  it('ownedBy refuses another cluster (a same-named one in another region too), namespace or name, and untagged resources', () => {
    const tags = ownershipTags(owner);
    expect(
      ownedBy(tags, { ...owner, clusterArn: 'arn:aws:eks:eu-west-1:123456789012:cluster/prod-us' }),
    ).toBe(false);
    expect(ownedBy(tags, { ...owner, clusterArn: PROD_EU_IN_US })).toBe(false);
    // Tags written before the cluster ARN was the identity named the cluster only: not ours.
    expect(ownedBy({ ...tags, [TAG.cluster]: 'prod-eu' }, owner)).toBe(false);
    expect(ownedBy(tags, { ...owner, namespace: 'billing' })).toBe(false);
    expect(ownedBy(tags, { ...owner, name: 'other' })).toBe(false);
    const { [TAG.cluster]: _, ...withoutCluster } = tags;
    expect(ownedBy(withoutCluster, owner)).toBe(false);
    expect(ownedBy({}, owner)).toBe(false);
    expect(ownedBy(undefined, owner)).toBe(false);
  });

  it('isOurTagKey covers our keys only', () => {
    expect(isOurTagKey('secretsync.io/role-id')).toBe(true);
    expect(isOurTagKey('app.kubernetes.io/managed-by')).toBe(true);
    expect(isOurTagKey('app.kubernetes.io/name')).toBe(false);
    expect(isOurTagKey('aws:cloudformation:stack-name')).toBe(false);
  });
});

describe('cluster ARN', () => {
  it('builds and parses arn:<partition>:eks:<region>:<account>:cluster/<name>', () => {
    const arn = clusterArn({
      partition: 'aws',
      region: 'eu-west-1',
      accountId: '123456789012',
      name: 'prod-eu',
    });
    expect(arn).toBe(PROD_EU);
    expect(parseClusterArn(arn)).toEqual({ region: 'eu-west-1', name: 'prod-eu' });
    expect(parseClusterArn('arn:aws-cn:eks:cn-north-1:123456789012:cluster/a/b')).toEqual({
      region: 'cn-north-1',
      name: 'a/b',
    });
  });

  it('refuses what is not a cluster ARN', () => {
    expect(() => parseClusterArn('prod-eu')).toThrow(/not an EKS cluster ARN/);
    expect(() => parseClusterArn('arn:aws:iam::123456789012:role/x')).toThrow(/not an EKS cluster ARN/);
  });
});
