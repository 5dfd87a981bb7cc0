// The IAM role manager through the generic ensure / remove, against a real moto server.
import {
  AttachRolePolicyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  DeleteRolePermissionsBoundaryCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
  TagRoleCommand,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NotOursError } from '../errors.ts';
import { ensure, remove } from '../manager.ts';
import { type Owner, TAG } from '../naming.ts';
import type { DesiredRole } from './desired.ts';
import { roleManager } from './iam-role.ts';
import { parseAwsDocument, samePolicy } from './policy.ts';
import { fromTagList } from './tags.ts';
import {
  ACCOUNT,
  inOtherCluster,
  type MotoKit,
  sampleDesired,
  sampleSync,
  startMotoKit,
} from './test-support.ts';

let kit: MotoKit;
beforeAll(async () => {
  kit = await startMotoKit();
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const iam = () => kit.clients.iam;
const ensureRole = (d: DesiredRole, owner: Owner) => ensure(roleManager, kit.env, d, owner);
const removeRole = (arn: string, owner: Owner) => remove(roleManager, kit.env, arn, owner);
const BOUNDARY = `arn:aws:iam::${ACCOUNT}:policy/secretsync-boundary`;

describe('IAM role: ensure against moto', () => {
  // One SecretSync per test, so the tests do not depend on each other's leftovers.
  const fresh = (name: string, settings = {}) => sampleDesired({ sync: sampleSync({ name }), settings });

  it('creates the role with path, trust policy, inline policy, boundary and tags', async () => {
    const d = fresh('create', { permissionsBoundaryArn: BOUNDARY });
    const result = await ensureRole(d.role, d.owner);
    expect(result).toMatchObject({ changed: true, created: true, health: { state: 'ready' } });
    expect(result.latest.role.Arn).toBe(d.role.arn);
    expect(result.latest.role.RoleId).toMatch(/^AROA/);
    const { Role } = await iam().send(new GetRoleCommand({ RoleName: d.role.name }));
    expect(Role?.Path).toBe('/secretsync/');
    expect(Role?.PermissionsBoundary?.PermissionsBoundaryArn).toBe(BOUNDARY);
    expect(fromTagList(Role?.Tags)).toEqual(d.role.tags);
    expect(samePolicy(Role?.AssumeRolePolicyDocument, d.role.assumeRolePolicyDocument)).toBe(true);
    const policy = await iam().send(
      new GetRolePolicyCommand({ RoleName: d.role.name, PolicyName: 'secretsync' }),
    );
    // IAM hands documents back URL-encoded.
    expect(policy.PolicyDocument).toMatch(/^%7B/);
    expect(parseAwsDocument(policy.PolicyDocument ?? '')).toEqual(JSON.parse(d.role.inlinePolicyDocument));
    expect(kit.mutations()).toEqual(['CreateRole', 'PutRolePolicy']);
  });

  it('makes no writes on a second pass', async () => {
    const d = fresh('steady', { permissionsBoundaryArn: BOUNDARY });
    const first = await ensureRole(d.role, d.owner);
    kit.reset();
    const again = await ensureRole(d.role, d.owner);
    expect(again).toMatchObject({ changed: false, created: false, health: { state: 'ready' } });
    expect(again.latest.role.RoleId).toBe(first.latest.role.RoleId);
    expect(again.latest.role.Arn).toBe(first.latest.role.Arn);
    expect(kit.mutations()).toEqual([]);
    // The read lists both kinds of policy; the diff then fetches our inline document.
    expect(kit.commands()).toEqual([
      'GetRole',
      'ListRolePolicies',
      'ListAttachedRolePolicies',
      'GetRolePolicy',
    ]);
  });

  it('repairs a widened inline policy with exactly one PutRolePolicy', async () => {
    const d = fresh('policy-drift');
    await ensureRole(d.role, d.owner);
    const wide = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'secretsmanager:*', Resource: '*' }],
    };
    await iam().send(
      new PutRolePolicyCommand({
        RoleName: d.role.name,
        PolicyName: 'secretsync',
        PolicyDocument: JSON.stringify(wide),
      }),
    );
    kit.reset();
    expect((await ensureRole(d.role, d.owner)).changed).toBe(true);
    expect(kit.mutations()).toEqual(['PutRolePolicy']);
    const policy = await iam().send(
      new GetRolePolicyCommand({ RoleName: d.role.name, PolicyName: 'secretsync' }),
    );
    expect(samePolicy(policy.PolicyDocument, d.role.inlinePolicyDocument)).toBe(true);
  });

  it('repairs trust policy, boundary and tags, each with its own call', async () => {
    const d = fresh('misc-drift', { permissionsBoundaryArn: BOUNDARY });
    await ensureRole(d.role, d.owner);
    const RoleName = d.role.name;
    const open = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole' }],
    };
    await iam().send(new UpdateAssumeRolePolicyCommand({ RoleName, PolicyDocument: JSON.stringify(open) }));
    await iam().send(new DeleteRolePermissionsBoundaryCommand({ RoleName }));
    await iam().send(new TagRoleCommand({ RoleName, Tags: [{ Key: TAG.managedBy, Value: 'someone-else' }] }));
    kit.reset();
    await ensureRole(d.role, d.owner);
    expect(kit.mutations()).toEqual(['UpdateAssumeRolePolicy', 'PutRolePermissionsBoundary', 'TagRole']);
    expect(kit.calls.find((c) => c.command === 'TagRole')?.input.Tags).toEqual([
      { Key: TAG.managedBy, Value: 'secretsync' },
    ]);
    kit.reset();
    await ensureRole(d.role, d.owner);
    expect(kit.mutations()).toEqual([]);
  });

  it('leaves tags of others alone', async () => {
    const d = fresh('foreign-tags');
    await ensureRole(d.role, d.owner);
    await iam().send(
      new TagRoleCommand({ RoleName: d.role.name, Tags: [{ Key: 'cost-centre', Value: '42' }] }),
    );
    kit.reset();
    expect((await ensureRole(d.role, d.owner)).changed).toBe(false);
    expect(kit.mutations()).toEqual([]);
  });

  it('removes an extra inline policy and detaches a managed policy someone added', async () => {
    const d = fresh('extra-policies');
    await ensureRole(d.role, d.owner);
    const RoleName = d.role.name;
    const doc = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }],
    });
    await iam().send(new PutRolePolicyCommand({ RoleName, PolicyName: 'extra', PolicyDocument: doc }));
    const { Policy } = await iam().send(
      new CreatePolicyCommand({ PolicyName: 'managed-extra', PolicyDocument: doc }),
    );
    await iam().send(new AttachRolePolicyCommand({ RoleName, PolicyArn: Policy?.Arn }));
    kit.reset();
    await ensureRole(d.role, d.owner);
    expect(kit.mutations()).toEqual(['DeleteRolePolicy', 'DetachRolePolicy']);
    const { PolicyNames } = await iam().send(new ListRolePoliciesCommand({ RoleName }));
    expect(PolicyNames).toEqual(['secretsync']);
  });

  it('adopts the role of an earlier SecretSync with the same name, retagging only the uid', async () => {
    const before = fresh('recreated');
    const created = await ensureRole(before.role, before.owner);
    const after = sampleDesired({ sync: sampleSync({ name: 'recreated', uid: 'uid-2' }) });
    kit.reset();
    const adopted = await ensureRole(after.role, after.owner);
    expect(adopted.latest.role.RoleId).toBe(created.latest.role.RoleId);
    expect(kit.mutations()).toEqual(['TagRole']);
    expect(kit.calls.find((c) => c.command === 'TagRole')?.input.Tags).toEqual([
      { Key: TAG.uid, Value: 'uid-2' },
    ]);
  });

  it('re-creates the role when the IAM path setting changed', async () => {
    const d = fresh('moved');
    const first = await ensureRole(d.role, d.owner);
    const moved = fresh('moved', { iamPath: '/platform/secretsync/' });
    kit.reset();
    const second = await ensureRole(moved.role, moved.owner);
    expect(second.latest.role.Arn).toBe(`arn:aws:iam::${ACCOUNT}:role/platform/secretsync/${d.role.name}`);
    expect(second.latest.role.RoleId).not.toBe(first.latest.role.RoleId);
    expect(second).toMatchObject({
      created: true,
      replaced: 'its path is /secretsync/, not /platform/secretsync/',
    });
    expect(kit.mutations()).toEqual(['DeleteRolePolicy', 'DeleteRole', 'CreateRole', 'PutRolePolicy']);
  });

  it('does not take a same-named role under another path for the recorded one', async () => {
    const d = fresh('moved-away');
    await ensureRole(d.role, d.owner);
    const moved = fresh('moved-away', { iamPath: '/platform/secretsync/' });
    const now = await ensureRole(moved.role, moved.owner);
    kit.reset();
    // Teardown of the record left by the old path: the role found by name is another one.
    expect(await removeRole(d.role.arn, d.owner)).toBe('gone');
    expect(kit.mutations()).toEqual([]);
    const { Role } = await iam().send(new GetRoleCommand({ RoleName: d.role.name }));
    expect(Role?.Arn).toBe(moved.role.arn);
    expect(Role?.RoleId).toBe(now.latest.role.RoleId);
  });

  it('refuses a same-named role without our tags, and leaves it untouched', async () => {
    const d = fresh('squatted');
    await iam().send(
      new CreateRoleCommand({
        RoleName: d.role.name,
        Path: '/secretsync/',
        AssumeRolePolicyDocument: d.role.assumeRolePolicyDocument,
        Tags: [{ Key: 'owner', Value: 'someone' }],
      }),
    );
    kit.reset();
    await expect(ensureRole(d.role, d.owner)).rejects.toThrow(NotOursError);
    await expect(ensureRole(d.role, d.owner)).rejects.toMatchObject({ reason: 'Conflict' });
    expect(await removeRole(d.role.arn, d.owner)).toBe('not-ours');
    expect(kit.mutations()).toEqual([]);
    const { Role } = await iam().send(new GetRoleCommand({ RoleName: d.role.name }));
    expect(fromTagList(Role?.Tags)).toEqual({ owner: 'someone' });
  });

  it('refuses the role of the same namespace/name in another cluster', async () => {
    const d = fresh('other-cluster');
    await ensureRole(d.role, d.owner);
    // The same cluster name in another region: another cluster.
    const otherOwner = inOtherCluster(d.owner);
    kit.reset();
    await expect(ensureRole(d.role, otherOwner)).rejects.toThrow(NotOursError);
    expect(await removeRole(d.role.arn, otherOwner)).toBe('not-ours');
    expect(kit.mutations()).toEqual([]);
  });
});

describe('IAM role: remove against moto', () => {
  it('deletes policies then the role; a second delete is a quiet no-op', async () => {
    const d = sampleDesired({ sync: sampleSync({ name: 'doomed' }) });
    await ensureRole(d.role, d.owner);
    kit.reset();
    expect(await removeRole(d.role.arn, d.owner)).toBe('gone');
    expect(kit.mutations()).toEqual(['DeleteRolePolicy', 'DeleteRole']);
    kit.reset();
    expect(await removeRole(d.role.arn, d.owner)).toBe('gone');
    expect(kit.commands()).toEqual(['GetRole']);
  });
});
