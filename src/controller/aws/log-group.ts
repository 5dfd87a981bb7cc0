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
import { isNotFound } from '../errors.ts';
import { type Manager, recordedByArn } from '../manager.ts';
import { ownedBy } from '../naming.ts';
import { nameOfArn, regionOfArn } from './arn.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredLogGroup } from './desired.ts';
import { aws } from './errors.ts';
import type { Tags } from './tags.ts';

export interface LatestLogGroup {
  group: LogGroup;
  /** The tagging APIs' ARN (without DescribeLogGroups' `:*`). */
  arn: string;
  tags: Tags;
}

const logsOf = (env: AwsEnv, arn: string) => env.clients(regionOfArn(arn)).logs;

export const logGroupManager: Manager<AwsEnv, string, DesiredLogGroup, LatestLogGroup> = {
  title: 'log group',
  recorded: recordedByArn('LogGroup'),
  id: (d) => d.arn,
  describe: nameOfArn,
  async read(env, arn) {
    const logs = logsOf(env, arn);
    const name = nameOfArn(arn);
    const group = await findLogGroup(logs, name);
    return group === undefined ? undefined : withTags(env, arn, group);
  },
  // The inventory listed its tags (GetResources): only retention is left to read.
  async fromListed(env, arn, listed) {
    const group = await findLogGroup(logsOf(env, arn), nameOfArn(arn));
    return group === undefined ? undefined : { group, arn, tags: listed as Tags };
  },
  owned: (l, owner) => ownedBy(l.tags, owner),
  async create(env, d) {
    const logs = logsOf(env, d.arn);
    const logGroupName = d.name;
    await aws({ operation: 'CreateLogGroup', resource: logGroupName }, () =>
      logs.send(new CreateLogGroupCommand({ logGroupName, tags: d.tags })),
    );
    await putRetention(logs, d);
    return { group: { logGroupName, retentionInDays: d.retentionDays }, arn: d.arn, tags: d.tags };
  },
  diff: (d, l) => (l.group.retentionInDays === d.retentionDays ? [] : ['retention']),
  async update(env, d) {
    await putRetention(logsOf(env, d.arn), d);
    return undefined;
  },
  tags: {
    desired: (d) => d.tags,
    of: (l) => l.tags,
    async write(env, l, diff) {
      const logs = logsOf(env, l.arn);
      const ctx = (operation: string) => ({ operation, resource: l.group.logGroupName });
      if (Object.keys(diff.set).length > 0) {
        await aws(ctx('TagResource'), () =>
          logs.send(new TagResourceCommand({ resourceArn: l.arn, tags: diff.set })),
        );
      }
      if (diff.remove.length > 0) {
        await aws(ctx('UntagResource'), () =>
          logs.send(new UntagResourceCommand({ resourceArn: l.arn, tagKeys: diff.remove })),
        );
      }
    },
  },
  // Deletes the function's logs with it.
  async delete(env, l) {
    const logGroupName = l.group.logGroupName as string;
    await aws({ operation: 'DeleteLogGroup', resource: logGroupName }, () =>
      logsOf(env, l.arn).send(new DeleteLogGroupCommand({ logGroupName })),
    );
  },
};

async function withTags(env: AwsEnv, arn: string, group: LogGroup): Promise<LatestLogGroup | undefined> {
  try {
    const out = await aws({ operation: 'ListTagsForResource', resource: nameOfArn(arn) }, () =>
      logsOf(env, arn).send(new ListTagsForResourceCommand({ resourceArn: arn })),
    );
    return { group, arn, tags: out.tags ?? {} };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
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

function putRetention(logs: CloudWatchLogsClient, d: DesiredLogGroup) {
  return aws({ operation: 'PutRetentionPolicy', resource: d.name }, () =>
    logs.send(new PutRetentionPolicyCommand({ logGroupName: d.name, retentionInDays: d.retentionDays })),
  );
}
