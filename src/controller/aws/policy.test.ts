import { describe, expect, it } from 'vitest';
import { canonicalJson, parseAwsDocument, sameJson, samePolicy } from './policy.ts';
import { diffTags, fromTagList, toTagList } from './tags.ts';

const policy = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: ['logs:PutLogEvents', 'logs:CreateLogStream'],
      Resource: 'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f:*',
      Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } },
    },
  ],
};

describe('policy comparison', () => {
  it('canonicalJson sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: 3 } })).toBe(
      '{"a":{"c":3,"d":[2,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('parses the URL-encoded documents IAM returns, and plain JSON', () => {
    const encoded = encodeURIComponent(JSON.stringify(policy));
    expect(parseAwsDocument(encoded)).toEqual(policy);
    expect(parseAwsDocument(JSON.stringify(policy))).toEqual(policy);
  });

  it('treats single values as one-element sets, ignores set order, key order and a lone Statement object', () => {
    const [s] = policy.Statement;
    const reshaped = {
      Statement: {
        Condition: { StringEquals: { 'kms:ViaService': ['secretsmanager.eu-west-1.amazonaws.com'] } },
        Resource: [s?.Resource],
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
      },
      Version: '2012-10-17',
    };
    expect(samePolicy(encodeURIComponent(JSON.stringify(reshaped)), JSON.stringify(policy))).toBe(true);
  });

  it('sees a real difference', () => {
    const wider = structuredClone(policy);
    (wider.Statement[0] as { Resource: string }).Resource = '*';
    expect(samePolicy(wider, policy)).toBe(false);
    const moreActions = structuredClone(policy);
    moreActions.Statement[0]?.Action.push('logs:DeleteLogGroup');
    expect(samePolicy(moreActions, policy)).toBe(false);
  });

  it('sameJson ignores key order and spacing only', () => {
    expect(sameJson('{"a":[1,2],"b":{"c":1}}', '{ "b": {"c": 1}, "a": [1, 2] }')).toBe(true);
    expect(sameJson('{"a":[1,2]}', '{"a":[2,1]}')).toBe(false);
  });
});

describe('diffTags', () => {
  const desired = { 'secretsync.io/name': 'db', 'secretsync.io/uid': 'u2' };

  it('sets missing or different keys and removes stale keys of ours only', () => {
    const actual = {
      'secretsync.io/name': 'db',
      'secretsync.io/uid': 'u1',
      'secretsync.io/old': 'x',
      'aws:cloudformation:stack-name': 's',
      'cost-centre': '42',
    };
    expect(diffTags(desired, actual)).toEqual({
      set: { 'secretsync.io/uid': 'u2' },
      remove: ['secretsync.io/old'],
    });
    expect(diffTags(desired, undefined)).toEqual({ set: desired, remove: [] });
    expect(diffTags(desired, { ...desired, team: 'x' })).toEqual({ set: {}, remove: [] });
  });

  it('converts tag lists both ways, sorted', () => {
    expect(toTagList({ b: '2', a: '1' })).toEqual([
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: '2' },
    ]);
    expect(fromTagList([{ Key: 'a', Value: '1' }, { Key: 'b' }])).toEqual({ a: '1', b: '' });
  });
});
