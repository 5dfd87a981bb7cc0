// The function's log group, created by us (tagged, with retention) rather than by Lambda on first
// run: the role has no logs:CreateLogGroup, so logs never land in an untagged, never-expiring group.

import {
  type CloudWatchLogsClient,
  CreateLogGroupCommand,
  DeleteLogGroupCommand,
  DescribeLogGroupsCommand,
  ListTagsForResourceCommand,
  type LogGroup,
  PutRetentionPolicyCommand,
  TagResourceCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { type OwnerRef, ownedBy } from '../naming.ts';
import type { AwsClients } from './clients.ts';
import type { DesiredLogGroup } from './desired.ts';
import { aws, isNotFound, NotOursError } from './errors.ts';
import { diffTags } from './tags.ts';

export interface LogGroupResult {
  arn: string;
  changed: boolean;
}

const KIND = 'log group';

export async function ensureLogGroup(
  clients: Pick<AwsClients, 'logs'>,
  desired: DesiredLogGroup,
  owner: OwnerRef,
): Promise<LogGroupResult> {
  const { logs } = clients;
  const logGroupName = desired.name;
  const ctx = (operation: string) => ({ operation, resource: logGroupName });
  const group = await findLogGroup(logs, logGroupName);
  if (group === undefined) {
    await aws(ctx('CreateLogGroup'), () =>
      logs.send(new CreateLogGroupCommand({ logGroupName, tags: desired.tags })),
    );
    await putRetention(logs, desired);
    return { arn: desired.arn, changed: true };
  }
  const arn = group.logGroupArn ?? desired.arn;
  const tags = await listTags(logs, arn, logGroupName);
  if (!ownedBy(tags, owner)) throw new NotOursError(KIND, ctx('ListTagsForResource'));

  let changed = false;
  if (group.retentionInDays !== desired.retentionDays) {
    await putRetention(logs, desired);
    changed = true;
  }
  const diff = diffTags(desired.tags, tags);
  if (Object.keys(diff.set).length > 0) {
    await aws(ctx('TagResource'), () =>
      logs.send(new TagResourceCommand({ resourceArn: arn, tags: diff.set })),
    );
    changed = true;
  }
  if (diff.remove.length > 0) {
    await aws(ctx('UntagResource'), () =>
      logs.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: diff.remove })),
    );
    changed = true;
  }
  return { arn, changed };
}

/** Deletes the log group (and the function's logs with it) when it is ours. */
export async function deleteLogGroup(
  clients: Pick<AwsClients, 'logs'>,
  names: { logGroupName: string },
  owner: OwnerRef,
): Promise<{ gone: boolean }> {
  const { logs } = clients;
  const { logGroupName } = names;
  const group = await findLogGroup(logs, logGroupName);
  if (group === undefined) return { gone: true };
  const tags = await listTags(logs, group.logGroupArn ?? '', logGroupName);
  if (!ownedBy(tags, owner))
    throw new NotOursError(KIND, { operation: 'ListTagsForResource', resource: logGroupName });
  await aws({ operation: 'DeleteLogGroup', resource: logGroupName }, () =>
    logs.send(new DeleteLogGroupCommand({ logGroupName })),
  ).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  return { gone: (await findLogGroup(logs, logGroupName)) === undefined };
}

// There is no "get one log group": DescribeLogGroups by prefix, then the exact name. Our names are
// unique by their hash, so the first page holds it unless someone made many groups under it.
async function findLogGroup(logs: CloudWatchLogsClient, name: string): Promise<LogGroup | undefined> {
  let nextToken: string | undefined;
  do {
    const out = await aws({ operation: 'DescribeLogGroups', resource: name }, () =>
      logs.send(
        new DescribeLogGroupsCommand({ logGroupNamePrefix: name, ...(nextToken ? { nextToken } : {}) }),
      ),
    );
    const found = out.logGroups?.find((g) => g.logGroupName === name);
    if (found) return found;
    nextToken = out.nextToken;
  } while (nextToken);
  return undefined;
}

async function listTags(
  logs: CloudWatchLogsClient,
  arn: string,
  name: string,
): Promise<Record<string, string>> {
  const out = await aws({ operation: 'ListTagsForResource', resource: name }, () =>
    logs.send(new ListTagsForResourceCommand({ resourceArn: arn })),
  );
  return out.tags ?? {};
}

function putRetention(logs: CloudWatchLogsClient, desired: DesiredLogGroup) {
  const ctx = { operation: 'PutRetentionPolicy', resource: desired.name };
  return aws(ctx, () =>
    logs.send(
      new PutRetentionPolicyCommand({ logGroupName: desired.name, retentionInDays: desired.retentionDays }),
    ),
  );
}
