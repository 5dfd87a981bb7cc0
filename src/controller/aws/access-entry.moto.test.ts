// The EKS access entry manager through the generic ensure / remove, against moto with the test bed's
// EKS access-entry emulation (moto has none) answering in front of it.
import {
  CreateAccessEntryCommand,
  CreateClusterCommand,
  DescribeAccessEntryCommand,
  UntagResourceCommand,
  UpdateAccessEntryCommand,
} from '@aws-sdk/client-eks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AccessEntryStore, createEksInterceptor } from '../../../e2e/testbed/eks-access-entries.ts';
import { NotOursError } from '../errors.ts';
import { ensure, remove } from '../manager.ts';
import { TAG } from '../naming.ts';
import { accessEntryManager, ROLE_ID_TAG, withRoleId } from './access-entry.ts';
import type { DesiredState } from './desired.ts';
import { roleManager } from './iam-role.ts';
import { CLUSTER_ARN, type MotoKit, sampleDesired, sampleSync, startMotoKit } from './test-support.ts';

let kit: MotoKit;
const store = new AccessEntryStore();
const CLUSTER = 'prod-eu';

beforeAll(async () => {
  kit = await startMotoKit();
  const { motoUrl, region, accountId, credentials } = kit.aws.endpoint;
  kit.aws.use(createEksInterceptor({ motoUrl, region, accountId, store, credentials }));
  await kit.clients.eks.send(
    new CreateClusterCommand({
      name: CLUSTER,
      roleArn: `arn:aws:iam::${accountId}:role/eks-cluster`,
      resourcesVpcConfig: {},
    }),
  );
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const eks = () => kit.clients.eks;

/** The role's current unique id. */
const ensureRole = async (d: DesiredState) =>
  (await ensure(roleManager, kit.env, d.role, d.owner)).latest.role.RoleId as string;

/** A desired state whose role exists; returns its current role id too. */
async function fresh(name: string): Promise<{ d: DesiredState; roleId: string }> {
  const d = sampleDesired({ sync: sampleSync({ name }), settings: { clusterName: CLUSTER } });
  const roleId = await ensureRole(d);
  kit.reset();
  return { d, roleId };
}

/** The entry bound to `roleId`, as provision.ts ensures it. */
const ensureAccessEntry = (d: DesiredState, roleId: string) =>
  ensure(accessEntryManager, kit.env, withRoleId(d.accessEntry, roleId), d.owner);
const removeAccessEntry = (d: DesiredState) =>
  remove(
    accessEntryManager,
    kit.env,
    { clusterArn: d.accessEntry.clusterArn, principalArn: d.role.arn },
    d.owner,
  );

const describeEntry = async (d: DesiredState) =>
  (await eks().send(new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn: d.role.arn })))
    .accessEntry;

describe('EKS access entry: ensure against moto + the EKS emulation', () => {
  it('creates a STANDARD entry with our username, no groups, and the role id recorded', async () => {
    const { d, roleId } = await fresh('create');
    expect(d.accessEntry.clusterArn).toBe(CLUSTER_ARN);
    const result = await ensureAccessEntry(d, roleId);
    expect(result).toMatchObject({ changed: true, created: true });
    expect(kit.mutations()).toEqual(['CreateAccessEntry']);
    const entry = await describeEntry(d);
    expect(entry).toMatchObject({
      principalArn: d.role.arn,
      username: 'secretsync:payments:create',
      type: 'STANDARD',
      kubernetesGroups: [],
      accessEntryArn: result.latest.accessEntryArn,
      tags: { ...d.accessEntry.tags, [ROLE_ID_TAG]: roleId },
    });
    // What EKS authenticates by: the role's unique id at creation.
    expect(store.get(CLUSTER, d.role.arn)?.principalId).toBe(roleId);
  });

  it('makes no writes on a second pass', async () => {
    const { d, roleId } = await fresh('steady');
    const first = await ensureAccessEntry(d, roleId);
    kit.reset();
    const again = await ensureAccessEntry(d, roleId);
    expect(again).toMatchObject({ changed: false, created: false });
    expect(again.latest.accessEntryArn).toBe(first.latest.accessEntryArn);
    expect(kit.commands()).toEqual(['DescribeAccessEntry']);
  });

  it('repairs an edited username and added groups with one UpdateAccessEntry', async () => {
    const { d, roleId } = await fresh('drift');
    await ensureAccessEntry(d, roleId);
    await eks().send(
      new UpdateAccessEntryCommand({
        clusterName: CLUSTER,
        principalArn: d.role.arn,
        username: 'admin',
        kubernetesGroups: ['cluster-admins'],
      }),
    );
    kit.reset();
    await ensureAccessEntry(d, roleId);
    expect(kit.mutations()).toEqual(['UpdateAccessEntry']);
    expect(await describeEntry(d)).toMatchObject({
      username: 'secretsync:payments:drift',
      kubernetesGroups: [],
    });
  });

  it('repairs a removed tag with one TagResource', async () => {
    const { d, roleId } = await fresh('tags');
    const { latest } = await ensureAccessEntry(d, roleId);
    await eks().send(new UntagResourceCommand({ resourceArn: latest.accessEntryArn, tagKeys: [TAG.uid] }));
    kit.reset();
    await ensureAccessEntry(d, roleId);
    expect(kit.mutations()).toEqual(['TagResource']);
  });

  it('re-creates the entry when the role was re-created (new role id, same ARN)', async () => {
    const { d, roleId } = await fresh('recreated-role');
    await ensureAccessEntry(d, roleId);
    expect(await remove(roleManager, kit.env, d.role.arn, d.owner)).toBe('gone');
    const newRoleId = await ensureRole(d);
    expect(newRoleId).not.toBe(roleId);
    kit.reset();
    const result = await ensureAccessEntry(d, newRoleId);
    expect(result).toMatchObject({ changed: true, created: true, replaced: 'its role was re-created' });
    expect(kit.mutations()).toEqual(['DeleteAccessEntry', 'CreateAccessEntry']);
    expect(store.get(CLUSTER, d.role.arn)?.principalId).toBe(newRoleId);
    expect((await describeEntry(d))?.tags?.[ROLE_ID_TAG]).toBe(newRoleId);
    kit.reset();
    await ensureAccessEntry(d, newRoleId);
    expect(kit.mutations()).toEqual([]);
  });

  it('refuses an entry for our role that lacks our tags, and leaves it untouched', async () => {
    const { d, roleId } = await fresh('squatted');
    await eks().send(
      new CreateAccessEntryCommand({
        clusterName: CLUSTER,
        principalArn: d.role.arn,
        kubernetesGroups: ['viewers'],
      }),
    );
    kit.reset();
    await expect(ensureAccessEntry(d, roleId)).rejects.toThrow(NotOursError);
    expect(await removeAccessEntry(d)).toBe('not-ours');
    expect(kit.mutations()).toEqual([]);
    expect((await describeEntry(d))?.kubernetesGroups).toEqual(['viewers']);
  });
});

describe('EKS access entry: remove against moto + the EKS emulation', () => {
  it('deletes the entry; a second delete is a quiet no-op', async () => {
    const { d, roleId } = await fresh('doomed');
    await ensureAccessEntry(d, roleId);
    kit.reset();
    expect(await removeAccessEntry(d)).toBe('gone');
    expect(kit.mutations()).toEqual(['DeleteAccessEntry']);
    kit.reset();
    expect(await removeAccessEntry(d)).toBe('gone');
    expect(kit.commands()).toEqual(['DescribeAccessEntry']);
  });
});
