import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { type KubeClient, KubeHttpError } from './kube-client.ts';
import type { CurrentSecret } from './secret-reader.ts';
import { runSync, targetIntact } from './sync.ts';

// Orderings the test bed cannot force (a write racing another writer, AWS moving between the read
// and the re-check) are driven here with a scripted fake API server and AWS reader — fakes, by name.
const CA = `-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUQ2VydGlmaWNhdGVGb3JUZXN0czAKBggqhkjOPQQDAjAR
MQ8wDQYDVQQDDAZ0ZXN0Y2EwHhcNMjQwMTAxMDAwMDAwWhcNMzQwMTAxMDAwMDAw
WjARMQ8wDQYDVQQDDAZ0ZXN0Y2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQx
-----END CERTIFICATE-----`;

function config() {
  return {
    secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf',
    region: 'eu-west-1',
    clusterName: 'c',
    apiEndpoint: 'https://k',
    caPem: CA,
    namespace: 'ns',
    syncName: 'db',
  };
}

const spec = {
  generation: 1,
  targetName: 'db',
  versionStage: 'AWSCURRENT',
  keyMapping: undefined,
  template: undefined,
  mergePolicy: 'Merge' as 'Merge' | 'Replace',
};

/** A fake API server holding one Secret; `onWrite` can inject a conflict. */
function fakeKube(opts: { conflicts?: number } = {}) {
  let data: Record<string, string> = {};
  let rv = 1;
  let conflicts = opts.conflicts ?? 0;
  const writes: Record<string, string>[] = [];
  const kube: KubeClient = {
    async request<T>(method: string, _path: string, o?: { body?: unknown }) {
      if (method === 'GET') {
        // What the API server records after our applies: the function owns the keys it wrote.
        const fieldsV1 = { 'f:data': Object.fromEntries(Object.keys(data).map((k) => [`f:${k}`, {}])) };
        const managedFields = writes.length
          ? [{ manager: 'secretsync/db', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1 }]
          : [];
        return {
          status: 200,
          body: {
            metadata: { name: 'db', namespace: 'ns', resourceVersion: String(rv), managedFields },
            data,
          } as T,
        };
      }
      if (conflicts > 0) {
        conflicts--;
        rv++;
        throw new KubeHttpError(409, method, _path, 'Conflict', 'the object has been modified');
      }
      data = { ...((o?.body as { data?: Record<string, string> } | undefined)?.data ?? {}) };
      writes.push(data);
      rv++;
      return { status: 200, body: {} as T };
    },
  };
  return { kube, writes, value: () => Buffer.from(data.password ?? '', 'base64').toString() };
}

const version = (id: string, password: string): CurrentSecret => ({
  versionId: id,
  value: { SecretString: JSON.stringify({ password }) },
});

describe('runSync ordering (scripted fakes for races the test bed cannot force)', () => {
  it('goes round again when AWS moved between its read and its re-check, ending on the current value', async () => {
    const k = fakeKube();
    const reads = [version('v1', 'old'), version('v2', 'new'), version('v2', 'new'), version('v2', 'new')];
    const r = await runSync({
      config: config(),
      spec,
      kube: k.kube,
      log: pino({ level: 'silent' }),
      readSecret: async () => reads.shift()!,
    });
    expect(k.value()).toBe('new');
    expect(r.versionId).toBe('v2');
    expect(r.attempts).toBe(2);
  });

  it('starts over after a 409 from a concurrent writer and does not lose the update', async () => {
    const k = fakeKube({ conflicts: 1 });
    const r = await runSync({
      config: config(),
      spec,
      kube: k.kube,
      log: pino({ level: 'silent' }),
      readSecret: async () => version('v1', 'x'),
    });
    expect(k.value()).toBe('x');
    expect(r.attempts).toBe(2);
  });

  it('gives up with a retryable Conflict when the world keeps moving', async () => {
    const k = fakeKube({ conflicts: 10 });
    await expect(
      runSync({
        config: config(),
        spec,
        kube: k.kube,
        log: pino({ level: 'silent' }),
        readSecret: async () => version('v1', 'x'),
      }),
    ).rejects.toMatchObject({ reason: 'Conflict', retryable: true });
  });

  it('writes nothing when the Secret already holds the value and the keys are ours', async () => {
    const k = fakeKube();
    const deps = {
      config: config(),
      spec,
      kube: k.kube,
      log: pino({ level: 'silent' }),
      readSecret: async () => version('v1', 'x'),
    };
    await runSync(deps);
    const second = await runSync(deps);
    expect(second.wrote).toBe(false);
    expect(k.writes.length).toBe(1);
  });
});

describe('runSync on a shared target (scripted fake API server: a Secret another SecretSync wrote)', () => {
  // The Secret as the API server shows it after SecretSync "api" applied its key "token".
  function sharedKube() {
    const writes: unknown[] = [];
    const kube: KubeClient = {
      async request<T>(
        method: string,
        _path: string,
        o?: { body?: unknown; query?: Record<string, string> },
      ) {
        if (method !== 'GET') {
          writes.push({ method, manager: o?.query?.fieldManager, body: o?.body });
          return { status: 200, body: {} as T };
        }
        const fieldsV1 = { 'f:data': { 'f:token': {} } };
        return {
          status: 200,
          body: {
            metadata: {
              name: 'db',
              namespace: 'ns',
              resourceVersion: '7',
              managedFields: [
                { manager: 'secretsync/api', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1 },
              ],
            },
            data: { token: Buffer.from('t').toString('base64') },
          } as T,
        };
      },
    };
    return { kube, writes };
  }
  const run = (k: ReturnType<typeof sharedKube>, over: Partial<typeof spec>, value: Record<string, string>) =>
    runSync({
      config: config(),
      spec: { ...spec, ...over },
      kube: k.kube,
      log: pino({ level: 'silent' }),
      readSecret: async () => ({ versionId: 'v1', value: { SecretString: JSON.stringify(value) } }),
    });

  it('writes its own keys under its own field manager beside the other SecretSync’s', async () => {
    const k = sharedKube();
    const r = await run(k, {}, { password: 'x' });
    expect(r.wrote).toBe(true);
    expect(k.writes).toMatchObject([{ method: 'PATCH', manager: 'secretsync/db' }]);
    expect(r.changes.kept).toEqual(['token']);
  });

  it('refuses a key the other SecretSync writes: KeyConflict naming key and SecretSync, nothing written', async () => {
    const k = sharedKube();
    const err = await run(k, {}, { token: 'mine', password: 'x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'KeyConflict', retryable: false });
    expect((err as Error).message).toContain('"token" (SecretSync api)');
    expect((err as Error).message).not.toContain('mine');
    expect(k.writes).toEqual([]);
  });

  it('refuses Replace, which would erase the other SecretSync’s keys: TargetConflict, nothing written', async () => {
    const k = sharedKube();
    const err = await run(k, { mergePolicy: 'Replace' }, { password: 'x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'TargetConflict', retryable: false });
    expect((err as Error).message).toContain('would erase what SecretSync api wrote');
    expect(k.writes).toEqual([]);
  });
});

describe('targetIntact: may a backstop run skip reading the value (pure logic, a fake API server)', () => {
  const secretWith = (entries: { manager: string; operation: string; keys: string[] }[], data: string[]) => {
    const kube: KubeClient = {
      async request<T>() {
        const managedFields = entries.map((e) => ({
          manager: e.manager,
          operation: e.operation,
          fieldsType: 'FieldsV1',
          fieldsV1: { 'f:data': Object.fromEntries(e.keys.map((k) => [`f:${k}`, {}])) },
        }));
        return {
          status: 200,
          body: {
            metadata: { name: 'db', namespace: 'ns', resourceVersion: '1', managedFields },
            data: Object.fromEntries(data.map((k) => [k, 'eA=='])),
          } as T,
        };
      },
    };
    return kube;
  };
  const ours = { manager: 'secretsync/db', operation: 'Apply', keys: ['user', 'password'] };
  const status = {
    generation: 1,
    syncedVersionId: 'v1',
    syncedKeys: 2,
    synced: { status: 'True', observedGeneration: 1 },
  };
  const check = (
    kube: KubeClient,
    o: { s?: typeof status; listed?: string | null; policy?: 'Merge' | 'Replace' } = {},
  ) =>
    targetIntact(
      { config: config(), spec: { ...spec, mergePolicy: o.policy ?? 'Merge' }, kube },
      o.s ?? status,
      o.listed === null ? undefined : (o.listed ?? 'v1'),
    );
  const held = () => secretWith([ours], ['user', 'password']);

  it('skips when the listed version is the one held and our manager still applies every synced key', async () => {
    expect(await check(held())).toBe(true);
  });

  it('reads the value when anything says the target may differ', async () => {
    const edited = { manager: 'kubectl-edit', operation: 'Update', keys: ['password'] };
    const cases: [string, Promise<boolean>][] = [
      ['another version listed', check(held(), { listed: 'v2' })],
      ['no listed version', check(held(), { listed: null })],
      [
        'a key edited by hand',
        check(secretWith([{ ...ours, keys: ['user'] }, edited], ['user', 'password'])),
      ],
      ['a key deleted', check(secretWith([{ ...ours, keys: ['user'] }], ['user']))],
      [
        'the last sync failed',
        check(held(), { s: { ...status, synced: { status: 'False', observedGeneration: 1 } } }),
      ],
      ['a newer generation', check(held(), { s: { ...status, generation: 2 } })],
      ['Replace', check(held(), { policy: 'Replace' })],
    ];
    for (const [why, p] of cases) expect(await p, why).toBe(false);
    const gone: KubeClient = {
      async request() {
        throw new KubeHttpError(404, 'GET', '/x', 'NotFound', 'secrets "db" not found');
      },
    };
    expect(await check(gone), 'the Secret deleted').toBe(false);
  });
});
