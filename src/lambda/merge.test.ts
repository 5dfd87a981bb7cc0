import { describe, expect, it } from 'vitest';
import type { MergePolicy } from './config.ts';
import {
  computeMerge,
  keysOfOtherSyncs,
  keysOwnedBy,
  keysOwnedByOthers,
  type ManagedFieldsEntry,
  type MergeChanges,
  targetFieldManager,
} from './merge.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const desiredOf = (data: Record<string, string>) =>
  new Map(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8')]));
const existingOf = (data: Record<string, string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]));

interface Row {
  name: string;
  existing: Record<string, string> | undefined;
  desired: Record<string, string>;
  owned?: string[];
  ownedByOthers?: string[];
  policy: MergePolicy;
  expect: Partial<MergeChanges>;
}

const none = { added: [], updated: [], unchanged: [], removed: [], kept: [] };

const ROWS: Row[] = [
  {
    name: 'Merge, first sync into a Secret without data: every key added',
    existing: undefined,
    desired: { user: 'app', password: 'pw' },
    policy: 'Merge',
    expect: { ...none, added: ['password', 'user'], changed: true },
  },
  {
    name: 'Merge, first sync into the empty Secret the controller created',
    existing: {},
    desired: { user: 'app' },
    policy: 'Merge',
    expect: { ...none, added: ['user'], changed: true },
  },
  {
    name: 'Merge, a value changed in AWS: updated, the rest unchanged',
    existing: { user: 'app', password: 'old' },
    desired: { user: 'app', password: 'new' },
    owned: ['user', 'password'],
    policy: 'Merge',
    expect: { ...none, updated: ['password'], unchanged: ['user'], changed: true },
  },
  {
    name: 'Merge, a key this sync applied is gone from AWS: removed',
    existing: { user: 'app', password: 'pw' },
    desired: { user: 'app' },
    owned: ['user', 'password'],
    policy: 'Merge',
    expect: { ...none, unchanged: ['user'], removed: ['password'], changed: true },
  },
  {
    name: 'Merge, a key written by another manager: kept',
    existing: { user: 'app', 'ca.crt': 'from-someone-else' },
    desired: { user: 'app' },
    owned: ['user'],
    ownedByOthers: ['ca.crt'],
    policy: 'Merge',
    expect: { ...none, unchanged: ['user'], kept: ['ca.crt'], changed: false },
  },
  {
    name: 'Merge, a key gone from AWS that another manager co-owns: kept (SSA leaves it)',
    existing: { user: 'app', shared: 'v' },
    desired: { user: 'app' },
    owned: ['user', 'shared'],
    ownedByOthers: ['shared'],
    policy: 'Merge',
    expect: { ...none, unchanged: ['user'], kept: ['shared'], changed: true },
  },
  {
    name: 'Merge, nothing changed and every key ours: no write',
    existing: { user: 'app', password: 'pw' },
    desired: { user: 'app', password: 'pw' },
    owned: ['user', 'password'],
    policy: 'Merge',
    expect: { ...none, unchanged: ['password', 'user'], changed: false },
  },
  {
    name: 'Merge, same values but written by someone else: a write to claim them, no data change',
    existing: { user: 'app', password: 'pw' },
    desired: { user: 'app', password: 'pw' },
    owned: ['user'],
    policy: 'Merge',
    expect: { ...none, unchanged: ['password', 'user'], changed: true },
  },
  {
    name: 'Merge, AWS secret now empty: every key of ours removed, others kept',
    existing: { a: '1', b: '2', theirs: '3' },
    desired: {},
    owned: ['a', 'b'],
    policy: 'Merge',
    expect: { ...none, removed: ['a', 'b'], kept: ['theirs'], changed: true },
  },
  {
    name: 'Merge, keys named like Object.prototype members are ordinary keys',
    existing: { constructor: 'c' },
    // JSON.parse, because an object literal's __proto__ sets the prototype instead of a key.
    desired: JSON.parse('{"constructor":"c","toString":"t","__proto__":"p"}'),
    owned: ['constructor'],
    policy: 'Merge',
    expect: { ...none, added: ['__proto__', 'toString'], unchanged: ['constructor'], changed: true },
  },
  {
    name: 'Replace, removes every other key, whoever wrote it',
    existing: { user: 'app', password: 'old', theirs: 'x', stale: 'y' },
    desired: { user: 'app', password: 'new', token: 't' },
    owned: ['user', 'password', 'stale'],
    ownedByOthers: ['theirs'],
    policy: 'Replace',
    expect: {
      added: ['token'],
      updated: ['password'],
      unchanged: ['user'],
      removed: ['stale', 'theirs'],
      kept: [],
      changed: true,
    },
  },
  {
    name: 'Replace, first sync into a Secret without data',
    existing: undefined,
    desired: { value: 'pw' },
    policy: 'Replace',
    expect: { ...none, added: ['value'], changed: true },
  },
  {
    name: 'Replace, nothing changed: no write, ownership irrelevant',
    existing: { user: 'app' },
    desired: { user: 'app' },
    policy: 'Replace',
    expect: { ...none, unchanged: ['user'], changed: false },
  },
];

describe('computeMerge', () => {
  it.each(ROWS.map((row) => [row.name, row] as const))('%s', (_name, row) => {
    const outcome = computeMerge({
      name: 'db-creds',
      namespace: 'payments',
      existing: row.existing === undefined ? undefined : existingOf(row.existing),
      desired: desiredOf(row.desired),
      owned: new Set(row.owned ?? []),
      ownedByOthers: new Set(row.ownedByOthers ?? []),
      policy: row.policy,
    });
    expect({
      added: outcome.added,
      updated: outcome.updated,
      unchanged: outcome.unchanged,
      removed: outcome.removed,
      kept: outcome.kept,
      changed: outcome.changed,
    }).toEqual(row.expect);
    expect(outcome.policy).toBe(row.policy);
  });

  it('Merge yields an apply patch with all AWS keys in base64 and nothing else', () => {
    const outcome = computeMerge({
      name: 'db-creds',
      namespace: 'payments',
      existing: existingOf({ user: 'app', password: 'old', theirs: 'x' }),
      desired: desiredOf({ user: 'app', password: 'new' }),
      owned: new Set(['user', 'password', 'gone']),
      policy: 'Merge',
    });
    expect(outcome.policy === 'Merge' && outcome.patch).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db-creds', namespace: 'payments' },
      data: { password: b64('new'), user: b64('app') },
    });
  });

  it('Replace yields exactly the AWS keys as the new data', () => {
    const outcome = computeMerge({
      name: 'db-creds',
      namespace: 'payments',
      existing: existingOf({ user: 'app', theirs: 'x' }),
      desired: new Map([['bin', Buffer.from([0, 255, 1])]]),
      owned: new Set(),
      policy: 'Replace',
    });
    expect(outcome.policy === 'Replace' && outcome.data).toEqual({ bin: 'AP8B' });
  });

  it('compares bytes, so a non-canonical base64 of the same value is unchanged', () => {
    const outcome = computeMerge({
      name: 's',
      namespace: 'n',
      existing: { k: 'YQ' }, // "a" without padding
      desired: desiredOf({ k: 'a' }),
      owned: new Set(['k']),
      policy: 'Merge',
    });
    expect(outcome.unchanged).toEqual(['k']);
    expect(outcome.changed).toBe(false);
  });
});

const OURS = targetFieldManager('db');

describe('keysOwnedBy / keysOwnedByOthers', () => {
  // Shaped like a real Secret's metadata.managedFields after the controller created it, the function
  // applied twice (once under Replace, i.e. an Update) and someone ran kubectl edit.
  const managedFields: ManagedFieldsEntry[] = [
    {
      manager: 'secretsync-controller',
      operation: 'Update',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:type': {} },
    },
    {
      manager: OURS,
      operation: 'Apply',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:data': { 'f:password': {}, 'f:tls.crt': {}, 'f:user': {} } },
    },
    {
      manager: 'kubectl-edit',
      operation: 'Update',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:data': { '.': {}, 'f:extra': {} }, 'f:metadata': { 'f:labels': {} } },
    },
    {
      manager: OURS,
      operation: 'Update',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:data': { 'f:old': {} } },
    },
  ];

  it.each<[string, ManagedFieldsEntry[] | undefined, string[], string[]]>([
    [
      'reads our Apply entry; others and our Update entry are not ours',
      managedFields,
      ['password', 'tls.crt', 'user'],
      ['extra', 'old'],
    ],
    ['no managedFields → nothing owned', undefined, [], []],
    [
      'ignores malformed entries',
      [
        { manager: OURS, operation: 'Apply', fieldsV1: null },
        { manager: OURS, operation: 'Apply', fieldsV1: { 'f:data': ['f:x'] } },
        {
          manager: OURS,
          operation: 'Apply',
          fieldsType: 'FieldsV2',
          fieldsV1: { 'f:data': { 'f:y': {} } },
        },
      ],
      [],
      [],
    ],
    [
      'ignores subresource entries',
      [{ manager: 'x', operation: 'Update', subresource: 'status', fieldsV1: { 'f:data': { 'f:z': {} } } }],
      [],
      [],
    ],
  ])('%s', (_name, fields, mine, theirs) => {
    expect([...keysOwnedBy(fields, OURS)].sort()).toEqual(mine);
    expect([...keysOwnedByOthers(fields, OURS)].sort()).toEqual(theirs);
  });
});

describe('keysOfOtherSyncs', () => {
  const entry = (manager: string, operation: string, keys: string[]) => ({
    manager,
    operation,
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:data': Object.fromEntries(keys.map((k) => [`f:${k}`, {}])) },
  });
  it('names the other SecretSync of each key it wrote (Apply or Update); ours and other writers are not counted', () => {
    const others = keysOfOtherSyncs(
      [
        entry(OURS, 'Apply', ['password']),
        entry('secretsync/api', 'Apply', ['token']),
        entry('secretsync/all', 'Update', ['only']),
        entry('kubectl-client-side-apply', 'Update', ['extra']),
        entry('secretsync-controller', 'Update', []),
      ],
      OURS,
    );
    expect([...others].sort()).toEqual([
      ['only', 'all'],
      ['token', 'api'],
    ]);
  });
  it('field managers stay within the API server’s 128 characters for the longest SecretSync name', () => {
    expect(targetFieldManager('a'.repeat(63)).length).toBeLessThanOrEqual(128);
  });
});
