import { randomBytes } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  DeleteSecretCommand,
  RestoreSecretCommand,
  SecretsManagerClient,
  UpdateSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncReason } from '../../src/lambda/errors.ts';
import type { SyncResponse } from '../../src/lambda/handler.ts';
import { kmsCall } from '../testbed/kms-state.ts';
import {
  condition,
  getSecretSync,
  idle,
  startTestController,
  type TestController,
} from '../tests/controller-support.ts';
import {
  change,
  failedWith,
  logLines,
  type Provisioned,
  provision,
  putValue,
  type Value,
} from '../tests/lambda-support.ts';
import { awsConfig, bed, core, kubectl } from '../tests/support.ts';

/**
 * Hostile AWS payloads, each against its own SecretSync on the test bed (the real controller, the
 * function's built zip): what the function's contract calls invalid ends as Synced=False with the
 * precise reason and the target Secret byte-for-byte as it was (data and resourceVersion); what the
 * contract calls legal lands exactly. No reason, message, Event or log line carries a value (a canary
 * sits in the values), and nothing is lost: once the AWS side is fixed, the next change syncs.
 *
 * Secrets Manager caps a value at 64 KiB and refuses an empty one; moto stores anything. Rows past
 * 64 KiB exercise the function's own guards (payload.ts), which also cover what the key mapping can
 * multiply; the 64 KiB row shows the mapping reaching the limit with a value AWS accepts.
 */

const CANARY = `canary-${randomBytes(12).toString('hex')}`;
const MiB = 1024 * 1024;
const json = (v: unknown) => JSON.stringify(v);
const GOOD = json({ user: 'app', password: CANARY });
const FIXED = json({ user: 'app', password: 'fixed' });
/** JSON text nested `depth` levels: `[[[…]]]`. */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
/** `key` holding CANARY padded so that key bytes + value bytes = `total`. */
const sized = (key: string, total: number) => ({
  [key]: CANARY + 'x'.repeat(total - key.length - CANARY.length),
});
const manyKeys = (n: number, key: (i: number) => string, value: string) =>
  json(Object.fromEntries(Array.from({ length: n }, (_, i) => [key(i), value])));
const NOT_UTF8 = Buffer.concat([
  Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf8]),
  Buffer.from(CANARY),
  randomBytes(32),
]);

type Spec = Parameters<typeof provision>[1];

interface Row {
  name: string;
  /** The Synced condition's reason afterwards; 'Synced' when the contract says the payload is legal. */
  reason: SyncReason | 'Synced';
  /** What PutSecretValue stores (built lazily: some are megabytes). */
  payload?: () => Value;
  /** Or: what else makes the AWS side hostile (the test then invokes the function itself). */
  act?: (p: Provisioned) => Promise<void>;
  /** Runs after provisioning, before the "untouched" snapshot. */
  prepare?: (p: Provisioned) => Promise<void>;
  spec?: Spec;
  /** The value of the first, good sync (default GOOD). */
  good?: Value;
  /** Failures: a fragment of the Synced message. */
  message?: RegExp;
  /** Legal payloads: the Secret's data afterwards. */
  data?: () => Record<string, Buffer | string>;
  /** Puts the AWS side right, before the fixed value is written (default: writing it is enough). */
  repair?: (p: Provisioned) => Promise<void>;
  /** The value that proves nothing is lost (default FIXED); null when the secret is gone for good. */
  fixed?: Value | null;
  /** The Secret's data once `fixed` synced (default: FIXED's keys). */
  fixedData?: Record<string, string>;
}

const sm = () => new SecretsManagerClient(awsConfig());
const kms = <T>(operation: string, input: object) =>
  kmsCall<T>(
    { url: bed().aws.url, region: bed().aws.region, credentials: bed().aws.credentials },
    operation,
    input,
  );

/** The customer managed key of each row's secret, by secret ARN. */
const keys = new Map<string, string>();
const keyOf = (p: Provisioned) => keys.get(p.arn)!;
/** Puts the secret under a customer managed key of its own (UpdateSecret makes no new version). */
async function underOwnKey(p: Provisioned): Promise<void> {
  const key = await kms<{ KeyMetadata: { KeyId: string } }>('CreateKey', { Description: `hostile ${p.ns}` });
  await sm().send(new UpdateSecretCommand({ SecretId: p.arn, KmsKeyId: key.KeyMetadata.KeyId }));
  keys.set(p.arn, key.KeyMetadata.KeyId);
}

const ROWS: Row[] = [
  // Invalid keys: InvalidKey names the key (JSON-quoted, cut when long), never the value.
  {
    name: 'a key with a slash',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', 'db/password': CANARY }),
    message: /^"db\/password" is not a valid Secret key \(allowed: letters, digits/,
  },
  {
    name: 'a key with a space',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', 'db password': CANARY }),
    message: /^"db password" is not a valid Secret key/,
  },
  {
    name: 'a key starting with ".." (the API server refuses it)',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', '..data': CANARY }),
    message: /^"\.\.data" is not a valid Secret key .*not starting with '\.\.'/,
  },
  {
    name: 'the key ".."',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', '..': CANARY }),
    message: /^"\.\." is not a valid Secret key/,
  },
  {
    name: 'the key "."',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', '.': CANARY }),
    message: /^"\." is not a valid Secret key/,
  },
  {
    name: 'a key of 254 characters (one over)',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', ['k'.repeat(254)]: CANARY }),
    message: /^"k{64}"… \(254 characters\) is not a valid Secret key/,
  },
  {
    name: 'a key name of 60,000 characters (cut in the message)',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', [`${'k'.repeat(59_999)}/`]: CANARY }),
    message: /^"k{64}"… \(60000 characters\) is not a valid Secret key.{0,300}$/,
  },
  {
    name: 'the empty key',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', '': CANARY }),
    message: /^"" is not a valid Secret key/,
  },
  {
    name: 'a NUL byte in a key',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', 'pass\u0000word': CANARY }),
    message: /^"pass\\u0000word" is not a valid Secret key/,
  },
  {
    name: 'non-ASCII letters in a key',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', pässwörd: CANARY }),
    message: /^"pässwörd" is not a valid Secret key/,
  },
  {
    name: 'an emoji key',
    reason: 'InvalidKey',
    payload: () => json({ user: 'app', '🔑': CANARY }),
    message: /^"🔑" is not a valid Secret key/,
  },
  {
    name: '20,000 invalid keys (five named, the rest counted)',
    reason: 'InvalidKey',
    payload: () => manyKeys(20_000, (i) => `key ${i}`, CANARY),
    message: /^"key 0", "key 1", "key 2", "key 3", "key 4" and 19995 more are not valid Secret keys.{0,300}$/,
  },
  // Too large: Kubernetes' 1 MiB counts key bytes + value bytes.
  {
    name: 'one byte over 1 MiB in total',
    reason: 'TooLarge',
    payload: () => json({ user: 'app', ...sized('password', MiB + 1 - 'user'.length - 'app'.length) }),
    message: /^the synced keys total 1048577 bytes, over Kubernetes' Secret limit of 1048576 bytes$/,
  },
  {
    name: 'a single 2 MiB value',
    reason: 'TooLarge',
    payload: () => json(sized('password', 2 * MiB)),
    message: /^the synced keys total 2097152 bytes, over Kubernetes' Secret limit/,
  },
  {
    name: 'many medium keys (300 × 4 KiB)',
    reason: 'TooLarge',
    payload: () =>
      manyKeys(300, (i) => `k${String(i).padStart(3, '0')}`, CANARY + 'x'.repeat(4096 - 4 - CANARY.length)),
    message: /^the synced keys total 1228800 bytes, over Kubernetes' Secret limit/,
  },
  {
    name: 'a 64 KiB value (the AWS maximum) copied to 17 keys by the mapping',
    reason: 'TooLarge',
    spec: { target: { keys: Array.from({ length: 17 }, (_, i) => ({ from: 'big', to: `copy-${i}` })) } },
    good: json({ big: CANARY }),
    payload: () => json({ big: CANARY + 'x'.repeat(65_536 - 12 - CANARY.length) }),
    message: /^the synced keys total 1114017 bytes, over Kubernetes' Secret limit/,
    fixed: json({ big: 'fixed' }),
    fixedData: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`copy-${i}`, 'fixed'])),
  },
  {
    name: 'Merge: the AWS keys fit, but with the keys another writer keeps the Secret is over 1 MiB',
    reason: 'InvalidPayload',
    prepare: async (p) => {
      await core().patchNamespacedSecret(
        {
          namespace: p.ns,
          name: p.target,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: p.target },
            data: { theirs: Buffer.alloc(MiB - 200, 't').toString('base64') },
          },
          fieldManager: 'someone-else',
          force: true,
        },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    },
    payload: () => json({ user: 'app', password: CANARY, extra: 'x'.repeat(1000) }),
    message: /^the API server refused the Secret: .*Too long/,
  },
  // Values the function cannot represent or re-encode.
  {
    name: 'JSON nested 10,000 levels deep in a member',
    reason: 'InvalidPayload',
    payload: () => `{"user":"app","password":"${CANARY}","deep":${nested(10_000)}}`,
    message: /^a value in the secret's JSON is nested too deeply to re-encode$/,
  },
  {
    name: 'an unpaired surrogate in a member (no exact UTF-8 form)',
    reason: 'InvalidPayload',
    payload: () => json({ user: 'app', password: `${CANARY}\udc00` }),
    message: /^the value of "password" is not valid Unicode \(it holds an unpaired UTF-16 surrogate\)/,
  },
  {
    name: 'an unpaired surrogate in plain text',
    reason: 'InvalidPayload',
    payload: () => `${CANARY}\ud800`,
    message: /^the secret's text is not valid Unicode/,
  },
  {
    name: 'a mapped key the secret no longer has',
    reason: 'InvalidPayload',
    spec: { target: { keys: [{ from: 'user' }, { from: 'password', to: 'DB_PASSWORD' }] } },
    payload: () => json({ user: 'app', pass: CANARY }),
    message: /^spec.target.keys names "password" but the AWS secret has no such key$/,
    fixedData: { user: 'app', DB_PASSWORD: 'fixed' },
  },
  {
    name: 'Replace on a kubernetes.io/tls Secret without tls.key',
    reason: 'InvalidPayload',
    spec: { target: { type: 'kubernetes.io/tls' }, mergePolicy: 'Replace' },
    good: json({ 'tls.crt': 'cert', 'tls.key': CANARY }),
    payload: () => json({ 'tls.crt': CANARY }),
    message: /^the API server refused the Secret: .*tls\.key.*Required value/,
    fixed: json({ 'tls.crt': 'cert', 'tls.key': 'fixed' }),
    fixedData: { 'tls.crt': 'cert', 'tls.key': 'fixed' },
  },
  // The AWS secret itself: gone, going, or undecryptable.
  {
    name: 'the secret deleted for good',
    reason: 'SecretNotFound',
    act: async (p) => {
      await sm().send(new DeleteSecretCommand({ SecretId: p.arn, ForceDeleteWithoutRecovery: true }));
    },
    message:
      /^the AWS secret or the requested stage does not exist: Secrets Manager can't find the specified secret/,
    fixed: null,
  },
  {
    name: 'the secret scheduled for deletion',
    reason: 'SecretNotFound',
    act: async (p) => {
      await sm().send(new DeleteSecretCommand({ SecretId: p.arn, RecoveryWindowInDays: 7 }));
    },
    message: /^the AWS secret cannot be read: .*marked deleted/,
    repair: async (p) => {
      await sm().send(new RestoreSecretCommand({ SecretId: p.arn }));
    },
  },
  {
    name: 'its KMS key disabled',
    reason: 'DecryptionFailed',
    prepare: underOwnKey,
    act: (p) => kms('DisableKey', { KeyId: keyOf(p) }),
    message: /^Secrets Manager could not decrypt the secret: .*The KMS key arn:aws:kms:\S+ is disabled\.$/,
    repair: (p) => kms('EnableKey', { KeyId: keyOf(p) }),
  },
  {
    name: 'its KMS key pending deletion',
    reason: 'DecryptionFailed',
    prepare: underOwnKey,
    act: (p) => kms('ScheduleKeyDeletion', { KeyId: keyOf(p), PendingWindowInDays: 7 }),
    message:
      /^Secrets Manager could not decrypt the secret: .*The KMS key arn:aws:kms:\S+ is pending deletion\.$/,
    repair: async (p) => {
      await kms('CancelKeyDeletion', { KeyId: keyOf(p) });
      await kms('EnableKey', { KeyId: keyOf(p) });
    },
  },

  // Legal by the contract (payload.ts): these land exactly.
  {
    name: 'NUL bytes in values',
    reason: 'Synced',
    payload: () => json({ user: '\u0000', password: `\u0000${CANARY}\u0000` }),
    data: () => ({ user: '\u0000', password: `\u0000${CANARY}\u0000` }),
  },
  {
    name: 'emoji and non-ASCII letters in values',
    reason: 'Synced',
    payload: () => json({ user: 'jürgen 🔑', password: `${CANARY} ✓ 密码` }),
    data: () => ({ user: 'jürgen 🔑', password: `${CANARY} ✓ 密码` }),
  },
  {
    name: 'JSON null at the top level → value',
    reason: 'Synced',
    payload: () => 'null',
    data: () => ({ value: 'null' }),
  },
  {
    name: 'an empty JSON array at the top level → value',
    reason: 'Synced',
    payload: () => '[]',
    data: () => ({ value: '[]' }),
  },
  {
    name: 'a big number at the top level → value, as written',
    reason: 'Synced',
    payload: () => '12345678901234567890.50',
    data: () => ({ value: '12345678901234567890.50' }),
  },
  {
    name: 'a boolean at the top level → value',
    reason: 'Synced',
    payload: () => 'true',
    data: () => ({ value: 'true' }),
  },
  {
    name: 'a top-level array nested 10,000 levels → value, untouched',
    reason: 'Synced',
    payload: () => nested(10_000),
    data: () => ({ value: nested(10_000) }),
  },
  {
    name: 'a member nested 1,000 levels → JSON-encoded exactly',
    reason: 'Synced',
    payload: () => `{"password":"${CANARY}","deep":${nested(1000)}}`,
    data: () => ({ password: CANARY, deep: nested(1000) }),
  },
  {
    name: 'a text with a byte-order mark before JSON → value, untouched',
    reason: 'Synced',
    payload: () => `\ufeff{"password":"${CANARY}"}`,
    data: () => ({ value: `\ufeff{"password":"${CANARY}"}` }),
  },
  {
    name: 'duplicate keys in the JSON text → the last one wins',
    reason: 'Synced',
    payload: () => `{"password":"first","user":"app","password":"${CANARY}"}`,
    data: () => ({ user: 'app', password: CANARY }),
  },
  {
    name: 'a key that collides after mapping → only the mapped source lands',
    reason: 'Synced',
    spec: { target: { keys: [{ from: 'a', to: 'b' }] } },
    good: json({ a: 'first' }),
    payload: () => json({ a: CANARY, b: 'unmapped' }),
    data: () => ({ b: CANARY }),
    fixed: json({ a: 'fixed' }),
    fixedData: { b: 'fixed' },
  },
  {
    name: '__proto__ and constructor are ordinary keys',
    reason: 'Synced',
    payload: () => `{"__proto__":"${CANARY}","constructor":"c","toString":"t"}`,
    data: () =>
      Object.fromEntries([
        ['__proto__', CANARY],
        ['constructor', 'c'],
        ['toString', 't'],
      ]),
  },
  {
    name: 'binary that is not UTF-8 → value, byte for byte',
    reason: 'Synced',
    payload: () => NOT_UTF8,
    data: () => ({ value: NOT_UTF8 }),
  },
  {
    name: 'binary holding JSON text is not parsed',
    reason: 'Synced',
    payload: () => Buffer.from(json({ password: CANARY })),
    data: () => ({ value: json({ password: CANARY }) }),
  },
  {
    name: 'exactly 1 MiB in total (the limit itself)',
    reason: 'Synced',
    payload: () => json({ user: 'app', ...sized('password', MiB - 'user'.length - 'app'.length) }),
    data: () => ({ user: 'app', ...sized('password', MiB - 'user'.length - 'app'.length) }),
  },
  {
    name: '20,000 valid keys',
    reason: 'Synced',
    payload: () => manyKeys(20_000, (i) => `k${i}`, CANARY),
    data: () => Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, CANARY])),
  },
  {
    name: 'the empty string: Secrets Manager refuses to store it, the last sync stands',
    reason: 'Synced',
    act: async (p) => {
      await expect(putValue(p.arn, '')).rejects.toMatchObject({ name: 'InvalidRequestException' });
    },
    data: () => ({ user: 'app', password: CANARY }),
  },
];

const lambda = () => new LambdaClient(awsConfig());

/** Invokes the function synchronously, as a force-sync would (asynchronously), and returns its answer. */
async function invokeNow(p: Provisioned): Promise<SyncResponse> {
  const out = await lambda().send(
    new InvokeCommand({ FunctionName: p.fn, Payload: Buffer.from(json({ trigger: 'hostile-input' })) }),
  );
  const answer = Buffer.from(out.Payload ?? []).toString('utf8');
  // A function error means a retryable failure or a crash: neither is what these rows expect.
  expect(out.FunctionError, answer).toBeUndefined();
  return JSON.parse(answer) as SyncResponse;
}

interface RawSecret {
  metadata: { resourceVersion: string };
  data?: Record<string, string>;
}
/** The target as the API server serves it (client-node's model would drop a `__proto__` key). */
async function readTarget(p: Provisioned): Promise<RawSecret> {
  const { stdout } = await kubectl(['get', 'secret', '-n', p.ns, p.target, '-o', 'json']);
  return JSON.parse(stdout) as RawSecret;
}
const bytesOf = (s: RawSecret) =>
  Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
const asBytes = (data: Record<string, Buffer | string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]));

/** The canary must not be in the SecretSync (status), the namespace's Events or the function's logs. */
async function expectNoValueShown(p: Provisioned): Promise<void> {
  const places = {
    status: json(await getSecretSync(p.ns, p.name)),
    events: json(await core().listNamespacedEvent({ namespace: p.ns })),
    logs: (await logLines(p.fn)).map((l) => l.text).join('\n'),
  };
  for (const [where, text] of Object.entries(places)) {
    expect(text.includes(CANARY), `the canary in ${where}`).toBe(false);
  }
}

describe('hostile AWS payloads', () => {
  let controller: TestController;
  beforeAll(async () => {
    // Each row has its own SecretSync; a 30 s resync of them all would slow every later row down.
    controller = await startTestController(['--tenancy=allow-all', '--resync-period=1h']);
  });
  afterAll(async () => {
    await controller?.stop();
  });

  it('the table has at least 20 payloads that must fail, each with a reason of the product', () => {
    const failing = ROWS.filter((r) => r.reason !== 'Synced');
    expect(failing.length).toBeGreaterThanOrEqual(20);
    expect(new Set(ROWS.map((r) => r.name)).size).toBe(ROWS.length);
    expect(new Set(failing.map((r) => r.reason))).toEqual(
      new Set(['InvalidKey', 'TooLarge', 'InvalidPayload', 'SecretNotFound', 'DecryptionFailed']),
    );
  });

  it.each(ROWS.filter((r) => r.reason !== 'Synced'))(
    '$name → Synced=False $reason, the Secret untouched, nothing lost',
    async (row) => {
      const p = await provision(row.good ?? GOOD, row.spec);
      await row.prepare?.(p);
      await idle();
      const before = await readTarget(p);

      if (row.act) await row.act(p);
      else await putValue(p.arn, row.payload!());
      await idle();
      // The change event's run (if any) has reported; a run of our own answers with the reason.
      expect(await invokeNow(p)).toEqual({ outcome: 'Failed', reason: row.reason });
      const ss = await failedWith(p, row.reason);
      expect(condition(ss, 'Synced')?.message).toMatch(row.message!);
      expect(ss.status?.syncedVersionId).toBe(p.version);

      const after = await readTarget(p);
      expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
      expect(after.data).toEqual(before.data);
      await expectNoValueShown(p);

      // Nothing lost: with the AWS side put right, the next value arrives.
      if (row.fixed === null) return;
      await row.repair?.(p);
      const { version } = await change(p, row.fixed ?? FIXED);
      expect((await getSecretSync(p.ns, p.name))?.status?.syncedVersionId).toBe(version);
      expect(bytesOf(await readTarget(p))).toMatchObject(
        asBytes(row.fixedData ?? { user: 'app', password: 'fixed' }),
      );
    },
  );

  it.each(ROWS.filter((r) => r.reason === 'Synced'))('$name → Synced', async (row) => {
    const p = await provision(row.good ?? GOOD, row.spec);
    await idle();
    if (row.act) {
      await row.act(p);
      await idle();
      expect(await invokeNow(p)).toMatchObject({ outcome: 'Synced', versionId: p.version, wrote: false });
    } else {
      await change(p, row.payload!());
    }
    expect(bytesOf(await readTarget(p))).toEqual(asBytes(row.data!()));
    expect(condition(await getSecretSync(p.ns, p.name), 'Synced')).toMatchObject({
      status: 'True',
      reason: 'Synced',
    });
    await expectNoValueShown(p);
  });
});
