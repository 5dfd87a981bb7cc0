import { randomBytes } from 'node:crypto';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  idle,
  secretData,
  startTestController,
  type TestController,
  waitReady,
} from './controller-support.ts';
import { awsConfig, core, customObjects, freshNamespace } from './support.ts';

/**
 * One Secret from several AWS secrets: SecretSyncs sharing a target, with the real controller and the
 * function's built zip on the test bed. Each writes under its own field manager, so disjoint keys
 * coexist and each removes only its own; an overlapping key is a KeyConflict and is never overwritten;
 * Replace on a shared target is refused; deletionPolicy Delete waits for the last one.
 */
const json = (v: unknown) => JSON.stringify(v);
const put = (arn: string, value: unknown) =>
  new SecretsManagerClient(awsConfig()).send(
    new PutSecretValueCommand({ SecretId: arn, SecretString: json(value) }),
  );
const managers = async (ns: string, name: string) =>
  ((await core().readNamespacedSecret({ namespace: ns, name })).metadata?.managedFields ?? [])
    .map((e) => e.manager)
    .filter((m): m is string => !!m?.startsWith('secretsync/'))
    .sort();
const synced = (ns: string, name: string) =>
  eventually(`${ns}/${name} Synced`, async () => {
    const c = condition(await getSecretSync(ns, name), 'Synced');
    return c ? c : undefined;
  });

describe('several SecretSyncs, one target Secret', () => {
  let controller: TestController;
  let ns = '';
  const tag = () => [{ Key: 'secretsync.io/namespaces', Value: ns }];
  let dbArn = '';
  let apiArn = '';

  beforeAll(async () => {
    controller = await startTestController();
    ns = await freshNamespace('shared');
    const id = randomBytes(4).toString('hex');
    dbArn = await createAwsSecret(`shared/${id}/db`, json({ username: 'app', password: 'p1' }), tag());
    apiArn = await createAwsSecret(`shared/${id}/api`, json({ api_key: 'k1', region: 'eu' }), tag());
  });
  afterAll(async () => {
    await controller?.stop();
  });

  it('two SecretSyncs compose one Secret, each writing and removing only its own keys', async () => {
    await applySecretSync(ns, 'db', {
      source: { secretId: dbArn },
      target: {
        name: 'app-env',
        keys: [
          { from: 'username', to: 'DB_USER' },
          { from: 'password', to: 'DB_PASSWORD' },
        ],
      },
      deletionPolicy: 'Delete',
    });
    await waitReady(ns, 'db');
    await applySecretSync(ns, 'api', { source: { secretId: apiArn }, target: { name: 'app-env' } });
    await waitReady(ns, 'api');
    await idle();
    expect(await secretData(ns, 'app-env')).toEqual({
      DB_USER: 'app',
      DB_PASSWORD: 'p1',
      api_key: 'k1',
      region: 'eu',
    });
    expect(await managers(ns, 'app-env')).toEqual(['secretsync/api', 'secretsync/db']);
    for (const name of ['db', 'api']) expect((await synced(ns, name)).status, name).toBe('True');

    // A key gone from one AWS secret goes from the Secret; the other SecretSync's keys stay.
    await put(apiArn, { api_key: 'k2' });
    await idle();
    expect(await secretData(ns, 'app-env')).toEqual({ DB_USER: 'app', DB_PASSWORD: 'p1', api_key: 'k2' });
    await put(dbArn, { username: 'app', password: 'p2' });
    await idle();
    expect(await secretData(ns, 'app-env')).toEqual({ DB_USER: 'app', DB_PASSWORD: 'p2', api_key: 'k2' });
  });

  it('a key another SecretSync writes is a KeyConflict naming both; nothing is overwritten', async () => {
    const otherArn = await createAwsSecret(
      `shared/${randomBytes(4).toString('hex')}/other`,
      json({ user: 'intruder', extra: 'x' }),
      tag(),
    );
    await applySecretSync(ns, 'other', {
      source: { secretId: otherArn },
      target: { name: 'app-env', keys: [{ from: 'user', to: 'DB_USER' }, { from: 'extra' }] },
    });
    await waitReady(ns, 'other');
    await idle();
    const c = await synced(ns, 'other');
    expect(c).toMatchObject({ status: 'False', reason: 'KeyConflict' });
    expect(c.message).toContain('"DB_USER" (SecretSync db)');
    expect(c.message).not.toContain('intruder');
    expect(await secretData(ns, 'app-env')).toEqual({ DB_USER: 'app', DB_PASSWORD: 'p2', api_key: 'k2' });
    await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'other' });
    await eventually('other gone', async () => ((await getSecretSync(ns, 'other')) ? undefined : true));
  });

  it('Replace on a target another SecretSync writes is refused: Ready=False TargetConflict, nothing written', async () => {
    const arn = await createAwsSecret(
      `shared/${randomBytes(4).toString('hex')}/all`,
      json({ only: 'this' }),
      tag(),
    );
    await applySecretSync(ns, 'all', {
      source: { secretId: arn },
      target: { name: 'app-env' },
      mergePolicy: 'Replace',
    });
    const ready = await eventually('TargetConflict', async () => {
      const r = condition(await getSecretSync(ns, 'all'), 'Ready');
      return r?.reason === 'TargetConflict' ? r : undefined;
    });
    expect(ready.status).toBe('False');
    expect(ready.message).toContain('would erase what SecretSync api, db writes into Secret app-env');
    await idle();
    expect(await secretData(ns, 'app-env')).toEqual({ DB_USER: 'app', DB_PASSWORD: 'p2', api_key: 'k2' });
    expect((await getSecretSync(ns, 'all'))?.status?.functionArn).toBeUndefined();
    await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'all' });
    await eventually('all gone', async () => ((await getSecretSync(ns, 'all')) ? undefined : true));
  });

  it('deletionPolicy Delete keeps the Secret while another SecretSync targets it', async () => {
    // db created the Secret (its uid is recorded) and has Delete; api still writes there.
    await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'db' });
    await eventually('db gone', async () => ((await getSecretSync(ns, 'db')) ? undefined : true));
    expect(await secretData(ns, 'app-env')).toMatchObject({ api_key: 'k2' });
    // api keeps syncing into it.
    await put(apiArn, { api_key: 'k3' });
    await idle();
    expect((await secretData(ns, 'app-env'))?.api_key).toBe('k3');
  });
});
