// ensureAccessEntry / deleteAccessEntry against moto, with the test bed's EKS access-entry emulation
// (moto has none) answering in front of it.
import {
  CreateAccessEntryCommand,
  CreateClusterCommand,
  DescribeAccessEntryCommand,
  UntagResourceCommand,
  UpdateAccessEntryCommand,
} from '@aws-sdk/client-eks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AccessEntryStore, createEksInterceptor } from '../../../e2e/testbed/eks-access-entries.ts';
import { TAG } from '../naming.ts';
import { deleteAccessEntry, ensureAccessEntry, ROLE_ID_TAG } from './access-entry.ts';
import type { DesiredState } from './desired.ts';
import { NotOursError } from './errors.ts';
import { deleteRole, ensureRole } from './iam-role.ts';
import { type MotoKit, sampleDesired, sampleSync, startMotoKit } from './test-support.ts';

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

/** A desired state whose role exists; returns its current role id too. */
async function fresh(name: string): Promise<{ d: DesiredState; roleId: string }> {
  const d = sampleDesired({ sync: sampleSync({ name }), settings: { clusterName: CLUSTER } });
  const { roleId } = await ensureRole(kit.clients, d.role, d.owner);
  kit.reset();
  return { d, roleId };
}

const describeEntry = async (d: DesiredState) =>
  (await eks().send(new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn: d.role.arn })))
    .accessEntry;

describe('ensureAccessEntry against moto + the EKS emulation', () => {
  it('creates a STANDARD entry with our username, no groups, and the role id recorded', async () => {
    const { d, roleId } = await fresh('create');
    const result = await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    expect(result.changed).toBe(true);
    expect(kit.mutations()).toEqual(['CreateAccessEntry']);
    const entry = await describeEntry(d);
    expect(entry).toMatchObject({
      principalArn: d.role.arn,
      username: 'secretsync:payments:create',
      type: 'STANDARD',
      kubernetesGroups: [],
      accessEntryArn: result.arn,
      tags: { ...d.accessEntry.tags, [ROLE_ID_TAG]: roleId },
    });
    // What EKS authenticates by: the role's unique id at creation.
    expect(store.get(CLUSTER, d.role.arn)?.principalId).toBe(roleId);
  });

  it('makes no writes on a second pass', async () => {
    const { d, roleId } = await fresh('steady');
    const first = await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    kit.reset();
    expect(await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId)).toEqual({
      ...first,
      changed: false,
    });
    expect(kit.commands()).toEqual(['DescribeAccessEntry']);
  });

  it('repairs an edited username and added groups with one UpdateAccessEntry', async () => {
    const { d, roleId } = await fresh('drift');
    await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    await eks().send(
      new UpdateAccessEntryCommand({
        clusterName: CLUSTER,
        principalArn: d.role.arn,
        username: 'admin',
        kubernetesGroups: ['cluster-admins'],
      }),
    );
    kit.reset();
    await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    expect(kit.mutations()).toEqual(['UpdateAccessEntry']);
    expect(await describeEntry(d)).toMatchObject({
      username: 'secretsync:payments:drift',
      kubernetesGroups: [],
    });
  });

  it('repairs a removed tag with one TagResource', async () => {
    const { d, roleId } = await fresh('tags');
    const { arn } = await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    await eks().send(new UntagResourceCommand({ resourceArn: arn, tagKeys: [TAG.uid] }));
    kit.reset();
    await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    expect(kit.mutations()).toEqual(['TagResource']);
  });

  it('re-creates the entry when the role was re-created (new role id, same ARN)', async () => {
    const { d, roleId } = await fresh('recreated-role');
    await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    await deleteRole(kit.clients, { roleName: d.role.name }, d.owner);
    const { roleId: newRoleId } = await ensureRole(kit.clients, d.role, d.owner);
    expect(newRoleId).not.toBe(roleId);
    kit.reset();
    const result = await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, newRoleId);
    expect(result.changed).toBe(true);
    expect(kit.mutations()).toEqual(['DeleteAccessEntry', 'CreateAccessEntry']);
    expect(store.get(CLUSTER, d.role.arn)?.principalId).toBe(newRoleId);
    expect((await describeEntry(d))?.tags?.[ROLE_ID_TAG]).toBe(newRoleId);
    kit.reset();
    await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, newRoleId);
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
    await expect(ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId)).rejects.toThrow(
      NotOursError,
    );
    const names = { clusterName: CLUSTER, principalArn: d.role.arn };
    await expect(deleteAccessEntry(kit.clients, names, d.owner)).rejects.toThrow(NotOursError);
    expect(kit.mutations()).toEqual([]);
    expect((await describeEntry(d))?.kubernetesGroups).toEqual(['viewers']);
  });
});

describe('deleteAccessEntry against moto + the EKS emulation', () => {
  it('deletes the entry; a second delete is a quiet no-op', async () => {
    const { d, roleId } = await fresh('doomed');
    await ensureAccessEntry(kit.clients, d.accessEntry, d.owner, roleId);
    const names = { clusterName: CLUSTER, principalArn: d.role.arn };
    kit.reset();
    expect(await deleteAccessEntry(kit.clients, names, d.owner)).toEqual({ gone: true });
    expect(kit.mutations()).toEqual(['DeleteAccessEntry']);
    kit.reset();
    expect(await deleteAccessEntry(kit.clients, names, d.owner)).toEqual({ gone: true });
    expect(kit.commands()).toEqual(['DescribeAccessEntry']);
  });
});
