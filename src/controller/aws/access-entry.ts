// The EKS access entry that maps the function's role to the username the in-cluster RoleBinding
// names. EKS binds an entry to the role's unique id (AROA…) when it is created, not to its ARN: a
// role deleted and re-created under the same ARN no longer authenticates through the old entry. So
// we record the role id in a tag and re-create the entry when the role id changed. Entries live in
// the cluster's region, whatever region the secret is in.

import {
  type AccessEntry,
  CreateAccessEntryCommand,
  DeleteAccessEntryCommand,
  DescribeAccessEntryCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAccessEntryCommand,
} from '@aws-sdk/client-eks';
import { isNotFound } from '../errors.ts';
import type { Manager } from '../manager.ts';
import { ownedBy, parseClusterArn } from '../naming.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredAccessEntry } from './desired.ts';
import { aws } from './errors.ts';
import { sameSet } from './lambda-function.ts';

export const ROLE_ID_TAG = 'secretsync.io/role-id';

export interface AccessEntryId {
  clusterArn: string;
  principalArn: string;
}

function eksOf(env: AwsEnv, clusterArn: string) {
  const { region, name } = parseClusterArn(clusterArn);
  return { eks: env.clients(region).eks, clusterName: name };
}

export const accessEntryManager: Manager<AwsEnv, AccessEntryId, DesiredAccessEntry, AccessEntry> = {
  title: 'EKS access entry',
  recorded: {
    kind: 'AccessEntry',
    toRecord: (id) => ({ kind: 'AccessEntry', id: id.principalArn, cluster: id.clusterArn }),
    fromRecord: (r) => ({ clusterArn: r.cluster ?? '', principalArn: r.id }),
  },
  id: (d) => ({ clusterArn: d.clusterArn, principalArn: d.principalArn }),
  describe: (id) => id.principalArn,
  async read(env, id) {
    const { eks, clusterName } = eksOf(env, id.clusterArn);
    const { principalArn } = id;
    try {
      const out = await aws({ operation: 'DescribeAccessEntry', resource: principalArn }, () =>
        eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn })),
      );
      return out.accessEntry;
    } catch (err) {
      // Also what a missing cluster answers; the reconcile checks the cluster with DescribeCluster first.
      if (isNotFound(err)) return undefined;
      throw err;
    }
  },
  owned: (l, owner) => ownedBy(l.tags, owner),
  // Neither the principal binding (the role id) nor the type can be changed in place.
  replaceBecause(d, l) {
    if (l.tags?.[ROLE_ID_TAG] !== d.tags[ROLE_ID_TAG]) return 'its role was re-created';
    if (l.type !== d.type) return `its type is ${l.type}`;
    return undefined;
  },
  async create(env, d) {
    const { eks, clusterName } = eksOf(env, d.clusterArn);
    const out = await aws({ operation: 'CreateAccessEntry', resource: d.principalArn }, () =>
      eks.send(
        new CreateAccessEntryCommand({
          clusterName,
          principalArn: d.principalArn,
          username: d.username,
          type: d.type,
          kubernetesGroups: d.kubernetesGroups,
          tags: d.tags,
        }),
      ),
    );
    return out.accessEntry ?? {};
  },
  diff: (d, l) =>
    l.username !== d.username || !sameSet(l.kubernetesGroups ?? [], d.kubernetesGroups) ? ['mapping'] : [],
  async update(env, d) {
    const { eks, clusterName } = eksOf(env, d.clusterArn);
    const out = await aws({ operation: 'UpdateAccessEntry', resource: d.principalArn }, () =>
      eks.send(
        new UpdateAccessEntryCommand({
          clusterName,
          principalArn: d.principalArn,
          username: d.username,
          kubernetesGroups: d.kubernetesGroups,
        }),
      ),
    );
    return out.accessEntry;
  },
  tags: {
    desired: (d) => d.tags,
    of: (l) => l.tags,
    async write(env, l, diff) {
      const resourceArn = l.accessEntryArn as string;
      const { eks } = eksOf(env, clusterArnOfEntry(resourceArn));
      const ctx = (operation: string) => ({ operation, resource: l.principalArn });
      if (Object.keys(diff.set).length > 0)
        await aws(ctx('TagResource'), () =>
          eks.send(new TagResourceCommand({ resourceArn, tags: diff.set })),
        );
      if (diff.remove.length > 0) {
        await aws(ctx('UntagResource'), () =>
          eks.send(new UntagResourceCommand({ resourceArn, tagKeys: diff.remove })),
        );
      }
    },
  },
  async delete(env, _l, id) {
    const { eks, clusterName } = eksOf(env, id.clusterArn);
    const { principalArn } = id;
    await aws({ operation: 'DeleteAccessEntry', resource: principalArn }, () =>
      eks.send(new DeleteAccessEntryCommand({ clusterName, principalArn })),
    );
  },
};

/** arn:…:eks:<region>:<account>:access-entry/<cluster>/… → the cluster's ARN. */
function clusterArnOfEntry(entryArn: string): string {
  const [arn, partition, , region, account, resource = ''] = entryArn.split(':');
  const cluster = resource.split('/')[1];
  return `${arn}:${partition}:eks:${region}:${account}:cluster/${cluster}`;
}

/** The desired entry bound to the role's current unique id (from the role's ensure). */
export const withRoleId = (d: DesiredAccessEntry, roleId: string): DesiredAccessEntry => ({
  ...d,
  tags: { ...d.tags, [ROLE_ID_TAG]: roleId },
});
