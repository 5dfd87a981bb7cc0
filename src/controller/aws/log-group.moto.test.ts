// The log group manager through the generic ensure / remove, against a real moto server.
import {
  CreateLogGroupCommand,
  DescribeLogGroupsCommand,
  ListTagsForResourceCommand,
  PutRetentionPolicyCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NotOursError } from '../errors.ts';
import { ensure, remove } from '../manager.ts';
import { type Owner, TAG } from '../naming.ts';
import type { DesiredLogGroup } from './desired.ts';
import { logGroupManager } from './log-group.ts';
import { type MotoKit, sampleDesired, sampleSync, startMotoKit } from './test-support.ts';

let kit: MotoKit;
beforeAll(async () => {
  kit = await startMotoKit();
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const logs = () => kit.clients.logs;
const fresh = (name: string) => sampleDesired({ sync: sampleSync({ name }) });
const ensureLogGroup = (d: DesiredLogGroup, owner: Owner) => ensure(logGroupManager, kit.env, d, owner);
const removeLogGroup = (arn: string, owner: Owner) => remove(logGroupManager, kit.env, arn, owner);

describe('log group: ensure against moto', () => {
  it('creates the group with tags and retention', async () => {
    const d = fresh('create');
    const result = await ensureLogGroup(d.logGroup, d.owner);
    expect(result).toMatchObject({ changed: true, created: true, latest: { arn: d.logGroup.arn } });
    expect(d.logGroup.name).toBe(`/aws/lambda/${d.function.name}`);
    const { logGroups } = await logs().send(
      new DescribeLogGroupsCommand({ logGroupNamePrefix: d.logGroup.name }),
    );
    expect(logGroups?.[0]?.retentionInDays).toBe(30);
    const { tags } = await logs().send(new ListTagsForResourceCommand({ resourceArn: d.logGroup.arn }));
    expect(tags).toEqual(d.logGroup.tags);
    expect(kit.mutations()).toEqual(['CreateLogGroup', 'PutRetentionPolicy']);
  });

  it('makes no writes on a second pass', async () => {
    const d = fresh('steady');
    await ensureLogGroup(d.logGroup, d.owner);
    kit.reset();
    expect(await ensureLogGroup(d.logGroup, d.owner)).toMatchObject({
      changed: false,
      created: false,
      latest: { arn: d.logGroup.arn },
    });
    expect(kit.commands()).toEqual(['DescribeLogGroups', 'ListTagsForResource']);
  });

  it('repairs retention and a removed tag, each with one call', async () => {
    const d = fresh('drift');
    await ensureLogGroup(d.logGroup, d.owner);
    await logs().send(
      new PutRetentionPolicyCommand({ logGroupName: d.logGroup.name, retentionInDays: 3653 }),
    );
    await logs().send(new UntagResourceCommand({ resourceArn: d.logGroup.arn, tagKeys: [TAG.uid] }));
    kit.reset();
    expect((await ensureLogGroup(d.logGroup, d.owner)).changed).toBe(true);
    expect(kit.mutations()).toEqual(['PutRetentionPolicy', 'TagResource']);
    expect(kit.calls.find((c) => c.command === 'TagResource')?.input.tags).toEqual({ [TAG.uid]: 'uid-1' });
    kit.reset();
    await ensureLogGroup(d.logGroup, d.owner);
    expect(kit.mutations()).toEqual([]);
  });

  it('refuses a same-named group without our tags, and leaves it untouched', async () => {
    const d = fresh('squatted');
    await logs().send(new CreateLogGroupCommand({ logGroupName: d.logGroup.name, tags: { team: 'x' } }));
    kit.reset();
    await expect(ensureLogGroup(d.logGroup, d.owner)).rejects.toThrow(NotOursError);
    expect(await removeLogGroup(d.logGroup.arn, d.owner)).toBe('not-ours');
    expect(kit.mutations()).toEqual([]);
    const { logGroups } = await logs().send(
      new DescribeLogGroupsCommand({ logGroupNamePrefix: d.logGroup.name }),
    );
    expect(logGroups?.[0]?.retentionInDays).toBeUndefined();
  });

  it('does not mistake a group whose name merely starts with ours', async () => {
    const d = fresh('prefix');
    await logs().send(new CreateLogGroupCommand({ logGroupName: `${d.logGroup.name}-other` }));
    kit.reset();
    expect((await ensureLogGroup(d.logGroup, d.owner)).changed).toBe(true);
    expect(kit.mutations()).toEqual(['CreateLogGroup', 'PutRetentionPolicy']);
  });
});

describe('log group: remove against moto', () => {
  it('deletes the group; a second delete is a quiet no-op', async () => {
    const d = fresh('doomed');
    await ensureLogGroup(d.logGroup, d.owner);
    kit.reset();
    expect(await removeLogGroup(d.logGroup.arn, d.owner)).toBe('gone');
    expect(kit.mutations()).toEqual(['DeleteLogGroup']);
    kit.reset();
    expect(await removeLogGroup(d.logGroup.arn, d.owner)).toBe('gone');
    expect(kit.commands()).toEqual(['DescribeLogGroups']);
  });
});
