import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetFunctionConfigurationCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import {
  AuthenticationV1Api,
  type CoreV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  type RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningController } from '../../src/controller/controller.ts';
import { eksToken } from '../../src/lambda/eks-token.ts';
import type { CallRecord } from '../testbed/front-door.ts';
import {
  api,
  applySecretSync,
  condition,
  eventually,
  getSecretSync,
  idle,
  startTestController,
} from './controller-support.ts';
import {
  b64,
  change,
  counts,
  currentVersion,
  decoded,
  eventsFor,
  failedWith,
  invocations,
  lambdaOwned,
  logLines,
  ownedBy,
  provision,
  putValue,
  readTarget,
  syncedTo,
  syncRecords,
} from './lambda-support.ts';
import {
  awsConfig,
  bed,
  control,
  core,
  customObjects,
  freshNamespace,
  rbac,
  statusOf,
  tokenKubeConfig,
} from './support.ts';

/**
 * The sync function proven on the test bed: the real controller provisions each SecretSync, the
 * function's built zip runs in a fresh Node process per invocation (events routed from Secrets
 * Manager label moves), authenticates with its EKS token and writes through real RBAC.
 */

const json = (v: unknown) => JSON.stringify(v);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const applyPatch = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

describe('the sync function on the test bed', () => {
  let controller: RunningController;
  beforeAll(async () => {
    controller = await startTestController(['--tenancy=allow-all']);
  });
  afterAll(async () => {
    await controller?.stop();
  });

  it('first sync writes every key of a JSON secret into the Secret the controller created empty', async () => {
    const p = await provision(json({ username: 'app', password: 'first', host: 'db.internal' }));
    await idle();
    const secret = await readTarget(p);
    expect(decoded(secret)).toEqual({ username: 'app', password: 'first', host: 'db.internal' });
    // Created by the controller (no data of its own), filled by the function's server-side apply.
    expect(secret.metadata?.labels?.['app.kubernetes.io/managed-by']).toBeDefined();
    expect(secret.metadata?.managedFields?.some((e) => e.manager === 'secretsync-controller')).toBe(true);
    expect(ownedBy(secret, 'secretsync-controller')).toEqual([]);
    expect(lambdaOwned(secret, p.name)).toEqual(['host', 'password', 'username']);

    const ss = (await getSecretSync(p.ns, p.name))!;
    expect(ss.status?.syncedVersionId).toBe(await currentVersion(p.arn));
    expect(ss.status?.syncedKeys).toBe(3);
    expect(counts(ss)).toEqual({ added: 3, updated: 0, unchanged: 0, removed: 0, kept: 0 });
    const synced = condition(ss, 'Synced');
    expect(synced).toMatchObject({ status: 'True', reason: 'Synced' });
    expect(synced?.message).toContain(`3 key(s) from version ${p.version}`);
    expect(synced?.message).toContain('3 added');
    expect(ss.status?.lastSyncTime).toBeDefined();
  });

  it('a PutSecretValue updates the changed key and counts the others unchanged', async () => {
    const p = await provision(json({ username: 'app', password: 'first', host: 'db.internal' }));
    const { version, ss } = await change(
      p,
      json({ username: 'app', password: 'second', host: 'db.internal' }),
    );
    expect(decoded(await readTarget(p))).toEqual({
      username: 'app',
      password: 'second',
      host: 'db.internal',
    });
    expect(version).not.toBe(p.version);
    expect(ss.status?.syncedVersionId).toBe(await currentVersion(p.arn));
    expect(ss.status?.syncedKeys).toBe(3);
    expect(counts(ss)).toEqual({ added: 0, updated: 1, unchanged: 2, removed: 0, kept: 0 });
    expect(condition(ss, 'Synced')?.message).toContain('1 updated');
  });

  it('a key removed in AWS is removed from the Secret and from the function’s field ownership', async () => {
    const p = await provision(json({ a: '1', b: '2', c: '3' }));
    expect(lambdaOwned(await readTarget(p), p.name)).toEqual(['a', 'b', 'c']);
    const { ss } = await change(p, json({ a: '1', b: '2' }));
    const secret = await readTarget(p);
    expect(decoded(secret)).toEqual({ a: '1', b: '2' });
    expect(lambdaOwned(secret, p.name)).toEqual(['a', 'b']);
    expect(ss.status?.syncedKeys).toBe(2);
    expect(counts(ss)).toEqual({ added: 0, updated: 0, unchanged: 2, removed: 1, kept: 0 });
  });

  it('Merge keeps keys other writers own across syncs; Replace makes the Secret exactly the AWS keys', async () => {
    const p = await provision(json({ a: '1', b: '2' }));
    // Another writer applies `extra` (server-side apply), a kubectl-like merge patch adds `extra2`.
    await core().patchNamespacedSecret(
      {
        namespace: p.ns,
        name: p.target,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: p.target },
          data: { extra: b64('theirs') },
        },
        fieldManager: 'someone-else',
        force: true,
      },
      applyPatch,
    );
    await core().patchNamespacedSecret(
      {
        namespace: p.ns,
        name: p.target,
        body: { data: { extra2: b64('also theirs') } },
        fieldManager: 'kubectl-patch',
      },
      mergePatch,
    );

    let { ss } = await change(p, json({ a: '1', b: 'two' }));
    let secret = await readTarget(p);
    expect(decoded(secret)).toEqual({ a: '1', b: 'two', extra: 'theirs', extra2: 'also theirs' });
    expect(lambdaOwned(secret, p.name)).toEqual(['a', 'b']);
    expect(ownedBy(secret, 'someone-else')).toEqual(['extra']);
    expect(counts(ss)).toEqual({ added: 0, updated: 1, unchanged: 1, removed: 0, kept: 2 });

    // A second sync, with a key removed in AWS: ours goes, theirs stay.
    ({ ss } = await change(p, json({ b: 'two' })));
    expect(decoded(await readTarget(p))).toEqual({ b: 'two', extra: 'theirs', extra2: 'also theirs' });
    expect(counts(ss)).toEqual({ added: 0, updated: 0, unchanged: 1, removed: 1, kept: 2 });

    // Replace: the function reads the policy from the spec at run time (no function update), and the
    // spec change itself triggers a sync (no AWS change needed): the foreign keys go at once.
    await customObjects().patchNamespacedCustomObject(
      { ...api, namespace: p.ns, name: p.name, body: { spec: { mergePolicy: 'Replace' } } },
      mergePatch,
    );
    await eventually('the Replace sync', async () =>
      JSON.stringify(decoded(await readTarget(p))) === JSON.stringify({ b: 'two' }) ? true : undefined,
    );
    await idle();
    ({ ss } = await change(p, json({ b: 'three', c: 'new' })));
    secret = await readTarget(p);
    expect(decoded(secret)).toEqual({ b: 'three', c: 'new' });
    expect(counts(ss)).toEqual({ added: 1, updated: 1, unchanged: 0, removed: 0, kept: 0 });
    expect(ss.status?.syncedKeys).toBe(2);
  });

  it('plain text and JSON non-objects land under `value`; non-string JSON members are JSON-encoded', async () => {
    const p = await provision('just a plain password');
    expect(decoded(await readTarget(p))).toEqual({ value: 'just a plain password' });

    let { ss } = await change(p, '[1,2]');
    expect(decoded(await readTarget(p))).toEqual({ value: '[1,2]' });
    expect(counts(ss)).toMatchObject({ updated: 1 });

    ({ ss } = await change(
      p,
      '{"port": 5432, "big": 12345678901234567890, "tls": true, "none": null, ' +
        '"nested": {"hosts": ["a", "b"], "ttl": 1.50}, "name": "db"}',
    ));
    expect(decoded(await readTarget(p))).toEqual({
      port: '5432',
      big: '12345678901234567890',
      tls: 'true',
      none: 'null',
      nested: '{"hosts":["a","b"],"ttl":1.50}',
      name: 'db',
    });
    // `value` was the function's own key: AWS no longer has it, so it is gone.
    expect(counts(ss)).toEqual({ added: 6, updated: 0, unchanged: 0, removed: 1, kept: 0 });
    expect(ss.status?.syncedKeys).toBe(6);
  });

  it('a binary secret lands under `value` with its exact bytes', async () => {
    const bytes = Buffer.concat([
      Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
      randomBytes(64),
    ]);
    const p = await provision(bytes);
    const secret = await readTarget(p);
    expect(Object.keys(secret.data ?? {})).toEqual(['value']);
    expect(Buffer.from(secret.data!.value!, 'base64').equals(bytes)).toBe(true);
    expect(p.ss.status?.syncedKeys).toBe(1);
  });

  it('spec.target.keys selects and renames keys; unmapped keys stay out', async () => {
    const p = await provision(json({ username: 'app', password: 'pw', host: 'db', port: 5432 }), {
      target: { keys: [{ from: 'password', to: 'DB_PASSWORD' }, { from: 'username' }] },
    });
    expect(decoded(await readTarget(p))).toEqual({ DB_PASSWORD: 'pw', username: 'app' });
    expect(p.ss.status?.syncedKeys).toBe(2);
    expect(counts(p.ss)).toMatchObject({ added: 2 });

    const { ss } = await change(p, json({ username: 'app', password: 'pw2', host: 'db2', port: 5433 }));
    expect(decoded(await readTarget(p))).toEqual({ DB_PASSWORD: 'pw2', username: 'app' });
    expect(counts(ss)).toEqual({ added: 0, updated: 1, unchanged: 1, removed: 0, kept: 0 });
  });

  it('spec.target.template renders values unescaped; a key AWS lacks is InvalidTemplate and leaves the Secret untouched', async () => {
    const canary = `c&<a>"n/a@r:y-${randomBytes(8).toString('hex')}`;
    const p = await provision(json({ username: 'app', password: canary, host: 'db.internal', port: 5432 }), {
      target: {
        template: {
          copyKeys: false,
          data: {
            DATABASE_URL: 'postgres://{{ username }}:{{password}}@{{ host }}:{{ port }}/app',
            'config.json': '{"db":{"port":{{ port }}}}',
          },
        },
      },
    });
    expect(decoded(await readTarget(p))).toEqual({
      DATABASE_URL: `postgres://app:${canary}@db.internal:5432/app`,
      'config.json': '{"db":{"port":5432}}',
    });
    expect(lambdaOwned(await readTarget(p), p.name)).toEqual(['DATABASE_URL', 'config.json']);
    expect(p.ss.status?.syncedKeys).toBe(2);

    // The function reads the template at run time: a spec change alone re-renders. copyKeys adds the
    // selected keys; config.json, no longer templated, is removed (it was this SecretSync's).
    await customObjects().patchNamespacedCustomObject(
      {
        ...api,
        namespace: p.ns,
        name: p.name,
        body: {
          spec: {
            target: {
              keys: [{ from: 'username', to: 'DB_USER' }],
              template: {
                copyKeys: true,
                data: { 'config.json': null, DATABASE_URL: 'postgres://{{ username }}@{{ host }}/app' },
              },
            },
          },
        },
      },
      mergePatch,
    );
    const want = { DATABASE_URL: 'postgres://app@db.internal/app', DB_USER: 'app' };
    await eventually('the re-rendered template', async () =>
      JSON.stringify(decoded(await readTarget(p))) === JSON.stringify(want) ? true : undefined,
    );
    await idle();

    // AWS loses `host`, which the template uses: nothing is written, the status names the keys only.
    const before = await readTarget(p);
    const lastGood = (await getSecretSync(p.ns, p.name))!.status?.syncedVersionId;
    await putValue(p.arn, json({ username: 'app', password: canary }));
    await idle();
    const ss = await failedWith(p, 'InvalidTemplate');
    const synced = condition(ss, 'Synced')!;
    expect(synced.message).toContain('"DATABASE_URL" uses "host", but the AWS secret has no such key');
    expect(ss.status?.syncedVersionId).toBe(lastGood);
    const after = await readTarget(p);
    expect(decoded(after)).toEqual(want);
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    // A permanent error: reported once, no Lambda retries; no value in the logs or the status.
    const failed = (await syncRecords(p.fn)).filter((r) => r.outcome === 'Failed');
    expect(failed.map((r) => r.reason)).toEqual(['InvalidTemplate']);
    const logs = (await logLines(p.fn)).map((l) => l.text).join('\n');
    expect(logs.includes(canary)).toBe(false);
    expect(json(ss).includes(canary)).toBe(false);
  });

  it('a key invalid for Kubernetes fails with InvalidKey naming it, and leaves the Secret untouched', async () => {
    const p = await provision(json({ a: '1' }));
    const before = await readTarget(p);
    const bad = await putValue(p.arn, json({ a: '2', 'bad key!': 'x' }));
    await idle();
    const ss = await failedWith(p, 'InvalidKey');
    const synced = condition(ss, 'Synced')!;
    expect(synced.message).toContain('"bad key!"');
    expect(synced.message).not.toContain('"a"');
    // The last good sync is what the status still reports.
    expect(ss.status?.syncedVersionId).toBe(p.version);
    expect(ss.status?.syncedVersionId).not.toBe(bad);
    const after = await readTarget(p);
    expect(decoded(after)).toEqual({ a: '1' });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    // A permanent error: reported once, no Lambda retries.
    const failed = (await syncRecords(p.fn)).filter((r) => r.outcome === 'Failed');
    expect(failed.map((r) => r.reason)).toEqual(['InvalidKey']);
  });

  it('every log line names its invocation with Powertools’ keys; one embedded-metric line per invocation', async () => {
    const p = await provision(json({ user: 'u', password: 'p1' }));
    await idle();
    // Warm containers for the rest: the second invocation of a container is not a cold start.
    await control('warm', { method: 'POST', body: json({ warm: true }) });
    try {
      await change(p, json({ user: 'u', password: 'p2' }));
      await putValue(p.arn, json({ user: 'u', 'bad key!': 'x' }));
      await idle();
      await failedWith(p, 'InvalidKey');
    } finally {
      await control('warm', { method: 'POST', body: json({ warm: false }) });
    }
    const lines = (await logLines(p.fn))
      .filter((l) => l.stream === 'stdout')
      .map((l) => ({ l, r: JSON.parse(l.text) }));
    expect(lines.length).toBeGreaterThan(0);
    for (const { l, r } of lines) {
      expect(r).toMatchObject({
        service: 'secretsync',
        function_name: p.fn,
        function_request_id: l.requestId,
        cold_start: expect.any(Boolean),
        level: expect.stringMatching(/^(DEBUG|INFO|WARN|ERROR)$/),
        message: expect.any(String),
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      expect(r.function_arn).toMatch(/^arn:aws:lambda:/);
    }
    const byRequest = Map.groupBy(lines, ({ l }) => l.requestId);
    const runs = [...byRequest.values()].map((ls) => ({
      sync: ls.filter(({ r }) => r.message === 'sync').map(({ r }) => r),
      metrics: ls.filter(({ r }) => r.message === 'metrics').map(({ r }) => r),
      cold: ls[0]!.r.cold_start as boolean,
    }));
    // The first sync (a fresh container), the change and the bad value (one warm container).
    expect(runs.map((r) => r.cold)).toEqual([true, true, false]);
    for (const run of runs) {
      expect(run.sync).toHaveLength(1);
      expect(run.metrics).toHaveLength(1);
      const [sync, m] = [run.sync[0]!, run.metrics[0]!];
      expect(m._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'secretsync',
          Dimensions: [['Cluster', 'Outcome', 'Reason']],
          Metrics: [
            { Name: 'Invocations', Unit: 'Count' },
            { Name: 'Duration', Unit: 'Milliseconds' },
            { Name: 'KeysWritten', Unit: 'Count' },
          ],
        },
      ]);
      expect(m).toMatchObject({ Cluster: bed().clusterName, Outcome: sync.outcome, Invocations: 1 });
      expect(m.Duration).toBeGreaterThanOrEqual(0);
      expect(Math.abs(m._aws.Timestamp - Date.parse(m.timestamp))).toBeLessThan(1000);
    }
    expect(runs.map((r) => [r.metrics[0]!.Outcome, r.metrics[0]!.Reason, r.metrics[0]!.KeysWritten])).toEqual(
      [
        ['Synced', 'Synced', 2],
        ['Synced', 'Synced', 1],
        ['Failed', 'InvalidKey', 0],
      ],
    );
  });

  it('a staged AWSPENDING version routes no event; moving AWSCURRENT to it routes exactly one and syncs it', async () => {
    const p = await provision(json({ password: 'old' }));
    await idle();
    const eventsBefore = (await eventsFor(p.arn)).length;
    const before = await readTarget(p);

    const pending = await putValue(p.arn, json({ password: 'rotated' }), ['AWSPENDING']);
    await idle();
    expect(await eventsFor(p.arn)).toHaveLength(eventsBefore);
    const during = await readTarget(p);
    expect(decoded(during)).toEqual({ password: 'old' });
    expect(during.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);

    await new SecretsManagerClient(awsConfig()).send(
      new UpdateSecretVersionStageCommand({
        SecretId: p.arn,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pending,
        RemoveFromVersionId: p.version,
      }),
    );
    await idle();
    const routed = (await eventsFor(p.arn)).slice(eventsBefore);
    expect(routed).toHaveLength(1);
    expect(routed[0]!.event['detail-type']).toBe('Secret Label Updated');
    expect(routed[0]!.event.detail).toMatchObject({ labelUpdated: 'AWSCURRENT', versionId: pending });
    expect(routed[0]!.deliveries.map((d) => d.status)).toEqual(['succeeded']);
    const ss = await syncedTo(p, pending);
    expect(decoded(await readTarget(p))).toEqual({ password: 'rotated' });
    expect(counts(ss)).toMatchObject({ updated: 1 });
  });

  it('duplicate, out-of-order events naming an old version converge on the current value', async () => {
    const p = await provision(json({ password: 'v1' }));
    await change(p, json({ password: 'v2' }));
    const { version: v3 } = await change(p, json({ password: 'v3' }));
    const rvBefore = (await readTarget(p)).metadata?.resourceVersion;

    const [, , , region, account] = p.arn.split(':');
    const stale = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Secret Label Updated',
      source: 'aws.secretsmanager',
      account,
      time: new Date().toISOString(),
      region,
      resources: [p.arn],
      detail: { name: `lambda-sync/${p.ns}/app`, labelUpdated: 'AWSCURRENT', versionId: p.version },
    };
    const lambda = new LambdaClient(awsConfig());
    const sent = await Promise.all(
      Array.from({ length: 5 }, () =>
        lambda.send(
          new InvokeCommand({
            FunctionName: p.fn,
            InvocationType: 'Event',
            Payload: Buffer.from(json({ ...stale, id: randomUUID() })),
          }),
        ),
      ),
    );
    expect(sent.map((o) => o.StatusCode)).toEqual([202, 202, 202, 202, 202]);
    await idle();

    const ids = new Set(sent.map((o) => o.$metadata.requestId));
    const ran = (await invocations()).filter((i) => ids.has(i.requestId));
    expect(ran).toHaveLength(5);
    expect(ran.every((i) => i.ok && i.attempts.length === 1)).toBe(true);
    const records = (await syncRecords(p.fn)).filter((r) => ids.has(r.requestId as string));
    expect(records.map((r) => [r.trigger, r.outcome, r.versionId, r.wrote])).toEqual(
      Array(5).fill(['event', 'Synced', v3, false]),
    );

    const secret = await readTarget(p);
    expect(decoded(secret)).toEqual({ password: 'v3' });
    expect(secret.metadata?.resourceVersion).toBe(rvBefore);
    const ss = await syncedTo(p, v3);
    expect(ss.status?.syncedVersionId).toBe(await currentVersion(p.arn));
    expect(counts(ss)).toEqual({ added: 0, updated: 0, unchanged: 1, removed: 0, kept: 0 });
  });

  it('overlapping invocations from two quick changes end with the last value, round after round', async () => {
    const p = await provision(json({ n: 'start' }));
    // Two changes; `between` runs after the first. The Secret and the status must end at the second.
    // Returns the request ids of the two runs the changes set off.
    const twoChanges = async (label: string, between: (callsMark: number) => Promise<unknown>) => {
      const eventsBefore = (await eventsFor(p.arn)).length;
      const callsMark = (await control<CallRecord[]>('calls')).length;
      await putValue(p.arn, json({ n: `${label}-first` }));
      await between(callsMark);
      const last = await putValue(p.arn, json({ n: `${label}-last`, label }));
      await idle();
      expect(decoded(await readTarget(p))).toEqual({ n: `${label}-last`, label });
      const ss = await syncedTo(p, last);
      expect(ss.status?.syncedVersionId).toBe(await currentVersion(p.arn));
      expect(ss.status?.syncedKeys).toBe(2);
      const routed = (await eventsFor(p.arn)).slice(eventsBefore);
      expect(routed.map((r) => r.deliveries.map((d) => d.status))).toEqual([['succeeded'], ['succeeded']]);
      return routed.map((r) => r.deliveries[0]!.invocation!.requestId);
    };

    // Back to back: both runs start within milliseconds and run side by side (each in its own process).
    let overlapped = 0;
    for (let round = 0; round < 5; round++) {
      const [a, b] = await twoChanges(`together-${round}`, async () => {});
      const lines = await logLines(p.fn);
      const at = (id: string | undefined, what: string) =>
        lines.find((l) => l.requestId === id && l.stream === 'platform' && l.text.startsWith(what))?.time ??
        0;
      if (at(b, 'START') < at(a, 'END') && at(a, 'START') < at(b, 'END')) overlapped++;
    }
    // The check means something only if the runs did overlap.
    expect(overlapped).toBeGreaterThan(0);

    // Staggered: the second change lands once the first run has read the first value (its
    // GetSecretValue reached the front door), so a run holding a stale value is still in flight, or
    // just done, when the next change arrives.
    for (let round = 0; round < 5; round++) {
      await twoChanges(`staggered-${round}`, (mark) =>
        eventually('the first run read the first value', async () =>
          (await control<CallRecord[]>('calls'))
            .slice(mark)
            .some((c) => c.operation === 'GetSecretValue' && c.resource === p.arn && c.status === 200)
            ? true
            : undefined,
        ),
      );
    }
  });

  it('never lets a secret value reach logs, status, Events, metrics or the audit log, on success and on failure', async () => {
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    const p = await provision(json({ api_token: canary, user: 'svc' }));
    expect(decoded(await readTarget(p)).api_token).toBe(canary);

    const lambda = new LambdaClient(awsConfig());
    const scan = async (when: string) => {
      const logs = (await logLines(p.fn)).map((l) => l.text);
      expect(logs.length, `${when}: function logs`).toBeGreaterThan(0);
      const places: Record<string, string> = {
        logs: logs.join('\n'),
        status: json(await getSecretSync(p.ns, p.name)),
        events: json(await core().listNamespacedEvent({ namespace: p.ns })),
        functionConfiguration: json(
          await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: p.fn })),
        ),
        controllerMetrics: await controller.metricsText(),
        // Metadata-level audit: who did what to which object; a value must not leak into it either.
        auditLog: readFileSync(bed().auditLogPath, 'utf8'),
        testBedLogs: readdirSync(bed().logsDir)
          .filter((f) => f !== 'audit.log')
          .map((f) => readFileSync(join(bed().logsDir, f), 'utf8'))
          .join('\n'),
      };
      for (const [where, text] of Object.entries(places)) {
        expect(text.includes(canary), `${when}: canary in ${where}`).toBe(false);
      }
    };
    await scan('after the first sync');

    // Failure: an invalid key next to the canary (holding it too).
    await putValue(p.arn, json({ api_token: canary, 'bad key!': canary }));
    await idle();
    await failedWith(p, 'InvalidKey');
    await scan('after InvalidKey');

    // Text that almost is JSON (a parser's error would quote it): stored under `value`.
    const almost = await putValue(p.arn, `{"api_token": "${canary}"`);
    await idle();
    await syncedTo(p, almost);
    expect(decoded(await readTarget(p))).toEqual({ value: `{"api_token": "${canary}"` });
    await scan('after a near-JSON value');

    // Failure: the target Secret is gone (TargetMissing), then recreated and synced again.
    await core().deleteNamespacedSecret({ namespace: p.ns, name: p.target });
    const again = await putValue(p.arn, json({ api_token: canary }));
    await idle();
    await syncedTo(p, again);
    await idle();
    await scan('after TargetMissing and recovery');
  });

  it('a deleted target Secret reports TargetMissing; the controller recreates it and the value arrives again', async () => {
    const p = await provision(json({ password: 'before' }));
    await core().deleteNamespacedSecret({ namespace: p.ns, name: p.target });
    const version = await putValue(p.arn, json({ password: 'after' }));
    await idle();

    // The function found no target and said so (the condition may already have moved on).
    await eventually('a TargetMissing report', async () => {
      const failed = (await syncRecords(p.fn)).find((r) => r.reason === 'TargetMissing');
      return failed ? true : undefined;
    });
    // The status change reaches the controller through its watch: it recreates the Secret and
    // invokes the function, which fills it.
    const ss = await syncedTo(p, version);
    await idle();
    expect(decoded(await readTarget(p))).toEqual({ password: 'after' });
    expect(counts(ss)).toEqual({ added: 1, updated: 0, unchanged: 0, removed: 0, kept: 0 });
    const triggers = (await syncRecords(p.fn)).map((r) => `${r.trigger}:${r.reason ?? r.outcome}`);
    expect(triggers).toEqual(['first-sync:Synced', 'event:TargetMissing', 'target-recreated:Synced']);
  });

  it('the function’s EKS identity may get/patch its target and its status, and nothing else', async () => {
    const p = await provision(json({ k: 'v' }));
    const otherNs = await freshNamespace('ls-other');
    for (const [namespace, name] of [
      [p.ns, 'unrelated'],
      [otherNs, p.target],
    ] as const) {
      await core().createNamespacedSecret({
        namespace,
        body: { metadata: { name }, stringData: { k: 'v' } },
      });
    }
    await core().createNamespacedConfigMap({
      namespace: p.ns,
      body: { metadata: { name: 'cm' }, data: { a: 'b' } },
    });
    // Another SecretSync in the namespace (its source does not exist; only its status matters here).
    await applySecretSync(p.ns, 'other', { source: { secretId: `lambda-sync/${p.ns}/missing` } });

    // The function's role, assumed through the front door, signs the token as the function would.
    const assumed = await new STSClient(awsConfig()).send(
      new AssumeRoleCommand({ RoleArn: p.ss.status!.roleArn!, RoleSessionName: p.fn.slice(0, 64) }),
    );
    const c = assumed.Credentials!;
    const token = await eksToken({
      region: bed().aws.region,
      clusterName: bed().clusterName,
      credentials: {
        accessKeyId: c.AccessKeyId!,
        secretAccessKey: c.SecretAccessKey!,
        sessionToken: c.SessionToken!,
      },
      signingDate: new Date(),
    });
    const kc = tokenKubeConfig(token);
    const roles = await rbac().listNamespacedRole({
      namespace: p.ns,
      labelSelector: 'secretsync.io/secretsync=app',
    });
    const roleName = roles.items[0]!.metadata!.name!;
    const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`secretsync:${p.ns}:${p.name}`);

    const as: { core: CoreV1Api; custom: CustomObjectsApi; rbac: RbacAuthorizationV1Api } = {
      core: core(kc),
      custom: customObjects(kc),
      rbac: rbac(kc),
    };
    const ns = p.ns;
    const dry = { dryRun: 'All' };
    const secretBody = (name: string) => ({ metadata: { name }, stringData: { x: 'y' } });
    const statusPatch = { status: { syncedKeys: 1 } };
    const checks: Record<string, () => Promise<unknown>> = {
      // allowed
      'get the target': () => as.core.readNamespacedSecret({ namespace: ns, name: p.target }),
      'patch the target': () =>
        as.core.patchNamespacedSecret(
          { namespace: ns, name: p.target, body: { metadata: { labels: { x: 'y' } } }, ...dry },
          mergePatch,
        ),
      'update the target': async () => {
        const s = await as.core.readNamespacedSecret({ namespace: ns, name: p.target });
        return as.core.replaceNamespacedSecret({ namespace: ns, name: p.target, body: s, ...dry });
      },
      'get its SecretSync': () =>
        as.custom.getNamespacedCustomObject({ ...api, namespace: ns, name: p.name }),
      'patch its status': () =>
        as.custom.patchNamespacedCustomObjectStatus(
          { ...api, namespace: ns, name: p.name, body: statusPatch, ...dry },
          mergePatch,
        ),
      // denied
      'get another Secret': () => as.core.readNamespacedSecret({ namespace: ns, name: 'unrelated' }),
      'patch another Secret': () =>
        as.core.patchNamespacedSecret(
          { namespace: ns, name: 'unrelated', body: { data: { x: b64('y') } }, ...dry },
          mergePatch,
        ),
      'get the same name in another namespace': () =>
        as.core.readNamespacedSecret({ namespace: otherNs, name: p.target }),
      'patch the same name in another namespace': () =>
        as.core.patchNamespacedSecret(
          { namespace: otherNs, name: p.target, body: { data: { x: b64('y') } }, ...dry },
          mergePatch,
        ),
      'list Secrets': () => as.core.listNamespacedSecret({ namespace: ns }),
      'watch Secrets': () => as.core.listNamespacedSecret({ namespace: ns, watch: true, timeoutSeconds: 1 }),
      'list Secrets in all namespaces': () => as.core.listSecretForAllNamespaces(),
      'delete the target': () => as.core.deleteNamespacedSecret({ namespace: ns, name: p.target, ...dry }),
      'delete all Secrets': () => as.core.deleteCollectionNamespacedSecret({ namespace: ns, ...dry }),
      'create a Secret': () =>
        as.core.createNamespacedSecret({ namespace: ns, body: secretBody('new'), ...dry }),
      'get another SecretSync’s status': () =>
        as.custom.getNamespacedCustomObjectStatus({ ...api, namespace: ns, name: 'other' }),
      'patch another SecretSync’s status': () =>
        as.custom.patchNamespacedCustomObjectStatus(
          { ...api, namespace: ns, name: 'other', body: statusPatch, ...dry },
          mergePatch,
        ),
      'get its status subresource': () =>
        as.custom.getNamespacedCustomObjectStatus({ ...api, namespace: ns, name: p.name }),
      'get another SecretSync': () =>
        as.custom.getNamespacedCustomObject({ ...api, namespace: ns, name: 'other' }),
      'patch its SecretSync spec': () =>
        as.custom.patchNamespacedCustomObject(
          { ...api, namespace: ns, name: p.name, body: { spec: { target: { name: 'unrelated' } } }, ...dry },
          mergePatch,
        ),
      'delete its SecretSync': () =>
        as.custom.deleteNamespacedCustomObject({ ...api, namespace: ns, name: p.name, ...dry }),
      'list SecretSyncs': () => as.custom.listNamespacedCustomObject({ ...api, namespace: ns }),
      'get a ConfigMap': () => as.core.readNamespacedConfigMap({ namespace: ns, name: 'cm' }),
      'list ConfigMaps': () => as.core.listNamespacedConfigMap({ namespace: ns }),
      'patch its Role': () =>
        as.rbac.patchNamespacedRole(
          { namespace: ns, name: roleName, body: { rules: [] }, ...dry },
          mergePatch,
        ),
      'create a RoleBinding': () =>
        as.rbac.createNamespacedRoleBinding({
          namespace: ns,
          body: {
            metadata: { name: 'escalate' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
            subjects: [
              { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `secretsync:${ns}:${p.name}` },
            ],
          },
          ...dry,
        }),
      'list namespaces': () => as.core.listNamespace(),
    };
    const allowed = [
      'get the target',
      'patch the target',
      'update the target',
      'get its SecretSync',
      'patch its status',
    ];
    const results: Record<string, number | undefined> = {};
    for (const [what, call] of Object.entries(checks)) {
      results[what] = await call().then(
        () => 200,
        (err: unknown) => statusOf(err),
      );
    }
    const expected = Object.fromEntries(Object.keys(checks).map((k) => [k, allowed.includes(k) ? 200 : 403]));
    expect(results).toEqual(expected);
    expect(Object.values(expected).filter((s) => s === 403).length).toBeGreaterThanOrEqual(12);

    // Nothing above changed the target.
    expect(decoded(await readTarget(p))).toEqual({ k: 'v' });
  });
});
