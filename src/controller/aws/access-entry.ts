// The EKS access entry that maps the function's role to the username the in-cluster RoleBinding
// names. EKS binds an entry to the role's unique id (AROA…) when it is created, not to its ARN: a
// role deleted and re-created under the same ARN no longer authenticates through the old entry. So
// we record the role id in a tag and re-create the entry when the role id changed.

import {
  type AccessEntry,
  CreateAccessEntryCommand,
  DeleteAccessEntryCommand,
  DescribeAccessEntryCommand,
  type EKSClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAccessEntryCommand,
} from '@aws-sdk/client-eks';
import { type OwnerRef, ownedBy } from '../naming.ts';
import type { AwsClients } from './clients.ts';
import type { DesiredAccessEntry } from './desired.ts';
import { aws, isNotFound, NotOursError } from './errors.ts';
import { diffTags } from './tags.ts';

export const ROLE_ID_TAG = 'secretsync.io/role-id';

export interface AccessEntryResult {
  arn: string;
  changed: boolean;
}

const KIND = 'EKS access entry';

/** `roleId` is the current RoleId of desired.principalArn (from ensureRole). */
export async function ensureAccessEntry(
  clients: Pick<AwsClients, 'eks'>,
  desired: DesiredAccessEntry,
  owner: OwnerRef,
  roleId: string,
): Promise<AccessEntryResult> {
  const { eks } = clients;
  const { clusterName, principalArn } = desired;
  const ctx = (operation: string) => ({ operation, resource: principalArn });
  const tags = { ...desired.tags, [ROLE_ID_TAG]: roleId };
  const entry = await describeEntry(eks, clusterName, principalArn);
  if (entry !== undefined && !ownedBy(entry.tags, owner))
    throw new NotOursError(KIND, ctx('DescribeAccessEntry'));
  // Neither the principal binding nor the type can be changed in place.
  if (entry !== undefined && (entry.tags?.[ROLE_ID_TAG] !== roleId || entry.type !== desired.type)) {
    await deleteEntry(eks, clusterName, principalArn);
    return { arn: await createEntry(eks, desired, tags), changed: true };
  }
  if (entry === undefined) return { arn: await createEntry(eks, desired, tags), changed: true };

  const arn = entry.accessEntryArn as string;
  let changed = false;
  if (
    entry.username !== desired.username ||
    !sameSet(entry.kubernetesGroups ?? [], desired.kubernetesGroups)
  ) {
    await aws(ctx('UpdateAccessEntry'), () =>
      eks.send(
        new UpdateAccessEntryCommand({
          clusterName,
          principalArn,
          username: desired.username,
          kubernetesGroups: desired.kubernetesGroups,
        }),
      ),
    );
    changed = true;
  }
  const diff = diffTags(tags, entry.tags);
  if (Object.keys(diff.set).length > 0) {
    await aws(ctx('TagResource'), () =>
      eks.send(new TagResourceCommand({ resourceArn: arn, tags: diff.set })),
    );
    changed = true;
  }
  if (diff.remove.length > 0) {
    await aws(ctx('UntagResource'), () =>
      eks.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: diff.remove })),
    );
    changed = true;
  }
  return { arn, changed };
}

export async function deleteAccessEntry(
  clients: Pick<AwsClients, 'eks'>,
  names: { clusterName: string; principalArn: string },
  owner: OwnerRef,
): Promise<{ gone: boolean }> {
  const { eks } = clients;
  const { clusterName, principalArn } = names;
  const entry = await describeEntry(eks, clusterName, principalArn);
  if (entry === undefined) return { gone: true };
  if (!ownedBy(entry.tags, owner)) {
    throw new NotOursError(KIND, { operation: 'DescribeAccessEntry', resource: principalArn });
  }
  await deleteEntry(eks, clusterName, principalArn);
  return { gone: (await describeEntry(eks, clusterName, principalArn)) === undefined };
}

async function describeEntry(
  eks: EKSClient,
  clusterName: string,
  principalArn: string,
): Promise<AccessEntry | undefined> {
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
}

async function createEntry(
  eks: EKSClient,
  desired: DesiredAccessEntry,
  tags: Record<string, string>,
): Promise<string> {
  const out = await aws({ operation: 'CreateAccessEntry', resource: desired.principalArn }, () =>
    eks.send(
      new CreateAccessEntryCommand({
        clusterName: desired.clusterName,
        principalArn: desired.principalArn,
        username: desired.username,
        type: desired.type,
        kubernetesGroups: desired.kubernetesGroups,
        tags,
      }),
    ),
  );
  return out.accessEntry?.accessEntryArn as string;
}

async function deleteEntry(eks: EKSClient, clusterName: string, principalArn: string): Promise<void> {
  await aws({ operation: 'DeleteAccessEntry', resource: principalArn }, () =>
    eks.send(new DeleteAccessEntryCommand({ clusterName, principalArn })),
  ).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}
