import { DescribeRuleCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextResyncAt } from '../../src/controller/invocation.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import {
  controllerCalls,
  deleteAndFinalize,
  namesFor,
  opsOf,
  patchSecretSync,
  readyIs,
  reconcileUntil,
  resetAwsCalls,
  startControllerWith,
  type TestController,
  writesOf,
} from './controller-helpers.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  idle,
  secretData,
} from './controller-support.ts';
import { currentVersion, eventsFor, putValue, syncRecords } from './lambda-support.ts';
import { awsConfig, core, freshNamespace, rbac, statusOf } from './support.ts';

/**
 * Spec changes after the first sync: each mutable field (target.name, target.keys, versionStage,
 * mergePolicy, resyncInterval) is patched as an admin would, one pass is driven, and the AWS side,
 * the RBAC and the target are checked to be updated in place — with exactly the AWS writes the
 * change needs (the function reads its spec at run time: none but the rule's and the sync) — and
 * what the old spec had made removed. secretId and region are immutable (CRD rule).
 */

const events = () => new EventBridgeClient(awsConfig());
const sm = () => new SecretsManagerClient(awsConfig());
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * Real Lambda reports LastUpdateStatus InProgress while it applies an update (a controller upgrade
 * with new code, a settings change) and finishes a moment later; moto finishes at once. This makes
 * every Lambda client in the process (the in-process controller's included) see a function whose
 * update stays in progress, until the returned function restores it.
 */
function pretendUpdateInProgress(): () => void {
  const proto = LambdaClient.prototype as unknown as { send: (...args: unknown[]) => Promise<unknown> };
  const own = Object.hasOwn(proto, 'send');
  const original = proto.send;
  proto.send = async function (this: unknown, command: unknown, ...rest: unknown[]) {
    const out = await original.call(this, command, ...rest);
    const config = (out as { Configuration?: object }).Configuration;
    return command instanceof GetFunctionCommand && config
      ? { ...(out as object), Configuration: { ...config, LastUpdateStatus: 'InProgress' } }
      : out;
  };
  return () => {
    if (own) proto.send = original;
    else delete (proto as { send?: unknown }).send;
  };
}

describe('controller spec change: updated in place, old parts removed', () => {
  let c: TestController;
  const made: [string, string][] = [];

  beforeAll(async () => {
    // The informer watches an empty namespace: each pass is one the test drives, so the call log
    // after a patch holds exactly what the pass for that change did.
    const home = await freshNamespace('spec-ctl');
    c = await startControllerWith({ args: ['--tenancy=allow-all', `--namespaces=${home}`] });
  });
  afterAll(async () => {
    for (const [ns, name] of made) await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
  });

  /** A complete, successful pass has seen the current generation: status and Ready both say so. */
  const settled = (ss: SecretSync | undefined, reason = 'Ready') =>
    readyIs('True', reason)(ss) &&
    ss?.status?.observedGeneration === ss?.metadata.generation &&
    condition(ss, 'Ready')?.observedGeneration === ss?.metadata.generation;

  /** Waits for the function to report Synced=True for the current generation. */
  const syncedAtGeneration = (ns: string, name: string) =>
    eventually(`${ns}/${name} Synced at its generation`, async () => {
      const ss = await getSecretSync(ns, name);
      const synced = condition(ss, 'Synced');
      return synced?.status === 'True' && synced.observedGeneration === ss?.metadata.generation
        ? ss
        : undefined;
    });

  /** Secret + SecretSync, driven to Ready and the first sync. */
  async function provision(prefix: string, value: object, spec: Record<string, unknown> = {}) {
    const ns = await freshNamespace(prefix);
    const name = 'app';
    const secretId = `${prefix}/${ns}/app`;
    const arn = await createAwsSecret(secretId, JSON.stringify(value));
    await applySecretSync(ns, name, { source: { secretId }, ...spec });
    made.push([ns, name]);
    const first = await reconcileUntil(c, ns, name, (x) => settled(x));
    expect(first?.status?.observedGeneration).toBe(1);
    await idle();
    const ss = await syncedAtGeneration(ns, name);
    const names = namesFor(ns, name);
    return { ns, name, secretId, arn, names, fn: names.functionName, ss };
  }

  /**
   * Patches the spec (merge patch, as an admin), drives the pass that sees it and returns the
   * controller's AWS calls during it; then waits for the test bed to be idle (the invocation ran).
   */
  async function change(s: { ns: string; name: string }, spec: Record<string, unknown>, reason = 'Ready') {
    const before = (await getSecretSync(s.ns, s.name))!;
    await patchSecretSync(s.ns, s.name, { spec });
    await resetAwsCalls();
    const ss = await reconcileUntil(c, s.ns, s.name, (x) => settled(x, reason));
    const calls = await controllerCalls();
    expect(ss!.metadata.generation, 'a spec change bumps the generation').toBe(
      before.metadata.generation! + 1,
    );
    expect(ss!.status?.observedGeneration).toBe(ss!.metadata.generation);
    await idle();
    return { ss: ss!, calls, before };
  }

  const roleSecretNames = async (ns: string, rbacName: string) =>
    (await rbac().readNamespacedRole({ name: rbacName, namespace: ns })).rules?.find((r) =>
      r.resources?.includes('secrets'),
    )?.resourceNames;
  const lastSync = async (fn: string) => (await syncRecords(fn)).at(-1);

  describe('target.name', () => {
    it('Retain: the new Secret is created and filled, the Role names only it, the old Secret is kept untouched', async () => {
      const s = await provision(
        'tgt-retain',
        { user: 'u', password: 'p1' },
        { target: { name: 'creds-a' }, deletionPolicy: 'Retain' },
      );
      const old = await core().readNamespacedSecret({ namespace: s.ns, name: 'creds-a' });
      expect(await secretData(s.ns, 'creds-a')).toEqual({ user: 'u', password: 'p1' });

      const { ss, calls } = await change(s, { target: { name: 'creds-b' } });
      // AWS: only the sync that fills the new Secret (the function reads its target at run time).
      expect(opsOf(writesOf(calls))).toEqual(['Invoke']);
      expect(ss.status?.targetName).toBe('creds-b');
      expect(await roleSecretNames(s.ns, s.names.rbacName)).toEqual(['creds-b']);

      await syncedAtGeneration(s.ns, s.name);
      expect(await secretData(s.ns, 'creds-b')).toEqual({ user: 'u', password: 'p1' });
      const created = await core().readNamespacedSecret({ namespace: s.ns, name: 'creds-b' });
      expect(created.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('secretsync');
      expect((await lastSync(s.fn))?.trigger).toBe('target-recreated');

      // The old Secret: still there, not written since (same resourceVersion, same data).
      const kept = await core().readNamespacedSecret({ namespace: s.ns, name: 'creds-a' });
      expect(kept.metadata?.resourceVersion).toBe(old.metadata?.resourceVersion);
      expect(kept.data).toEqual(old.data);

      // And the next pass is quiet.
      await resetAwsCalls();
      await c.reconcileNow(`${s.ns}/${s.name}`);
      expect(writesOf(await controllerCalls())).toEqual([]);
    });

    it('Delete: the old Secret is deleted, the new one filled', async () => {
      const s = await provision(
        'tgt-delete',
        { user: 'u', password: 'p1' },
        { target: { name: 'creds-a' }, deletionPolicy: 'Delete' },
      );
      expect(await secretData(s.ns, 'creds-a')).toEqual({ user: 'u', password: 'p1' });

      const { ss, calls } = await change(s, { target: { name: 'creds-b' } });
      expect(opsOf(writesOf(calls))).toEqual(['Invoke']);
      expect(ss.status?.targetName).toBe('creds-b');
      expect(
        statusOf(
          await core()
            .readNamespacedSecret({ namespace: s.ns, name: 'creds-a' })
            .catch((e) => e),
        ),
      ).toBe(404);
      expect(await roleSecretNames(s.ns, s.names.rbacName)).toEqual(['creds-b']);
      await syncedAtGeneration(s.ns, s.name);
      expect(await secretData(s.ns, 'creds-b')).toEqual({ user: 'u', password: 'p1' });
    });
  });

  it('target.keys: a sync applies the new mapping with no AWS change and no function update, unmapped keys go', async () => {
    const s = await provision(
      'keys',
      { user: 'u', password: 'p1', host: 'db.example' },
      {
        target: {
          name: 'creds',
          keys: [
            { from: 'user', to: 'DB_USER' },
            { from: 'password', to: 'DB_PASSWORD' },
          ],
        },
        mergePolicy: 'Merge',
      },
    );
    expect(await secretData(s.ns, 'creds')).toEqual({ DB_USER: 'u', DB_PASSWORD: 'p1' });
    // A key another writer owns: Merge keeps it.
    await core().patchNamespacedSecret(
      { namespace: s.ns, name: 'creds', body: { data: { extra: Buffer.from('x').toString('base64') } } },
      mergePatch,
    );
    const version = s.ss.status?.syncedVersionId;

    const { calls } = await change(s, {
      target: {
        keys: [{ from: 'password', to: 'PASSWORD' }, { from: 'host' }],
      },
    });
    expect(opsOf(writesOf(calls))).toEqual(['Invoke']);

    const ss = await syncedAtGeneration(s.ns, s.name);
    // The same AWS version, synced again because the spec changed.
    expect(ss.status?.syncedVersionId).toBe(version);
    const record = await lastSync(s.fn);
    expect(record).toMatchObject({ trigger: 'spec-changed', outcome: 'Synced', versionId: version });
    // The keys no longer mapped were ours: removed. The other writer's key stays.
    expect(await secretData(s.ns, 'creds')).toEqual({ PASSWORD: 'p1', host: 'db.example', extra: 'x' });
    expect(record).toMatchObject({ added: 2, removed: 2 });
  });

  it('versionStage: the rule pattern and the function follow the custom label, and moving that label fires the rule', async () => {
    const s = await provision('stage', { k: 'v1' }, { target: { name: 'creds' } });
    const v1 = await currentVersion(s.arn);
    // v2 carries BLUE (and AWSPENDING, so it exists without moving AWSCURRENT).
    const v2 = await putValue(s.arn, JSON.stringify({ k: 'v2' }), ['AWSPENDING']);
    await sm().send(
      new UpdateSecretVersionStageCommand({ SecretId: s.arn, VersionStage: 'BLUE', MoveToVersionId: v2 }),
    );
    await idle();
    // The rule still matches AWSCURRENT only: BLUE moving did nothing yet.
    expect((await getSecretSync(s.ns, s.name))?.status?.syncedVersionId).toBe(v1);
    expect(await secretData(s.ns, 'creds')).toEqual({ k: 'v1' });

    const { calls } = await change(s, { source: { versionStage: 'BLUE' } });
    expect(opsOf(writesOf(calls))).toEqual(['Invoke', 'PutRule']);
    const rule = await events().send(new DescribeRuleCommand({ Name: s.names.ruleName }));
    expect(JSON.parse(rule.EventPattern!)).toEqual({
      source: ['aws.secretsmanager'],
      'detail-type': ['Secret Label Updated'],
      resources: [s.arn],
      detail: { labelUpdated: ['BLUE'] },
    });
    expect(rule.State).toBe('ENABLED');
    let ss = await syncedAtGeneration(s.ns, s.name);
    expect(ss.status?.syncedVersionId).toBe(v2);
    expect(await secretData(s.ns, 'creds')).toEqual({ k: 'v2' });
    expect((await lastSync(s.fn))?.trigger).toBe('spec-changed');

    // BLUE moves to v3: the native event fires the rule, the function syncs v3.
    const v3 = await putValue(s.arn, JSON.stringify({ k: 'v3' }), ['AWSPENDING']);
    await sm().send(
      new UpdateSecretVersionStageCommand({
        SecretId: s.arn,
        VersionStage: 'BLUE',
        MoveToVersionId: v3,
        RemoveFromVersionId: v2,
      }),
    );
    await idle();
    ss = await eventually('synced v3', async () => {
      const x = await getSecretSync(s.ns, s.name);
      return x?.status?.syncedVersionId === v3 ? x : undefined;
    });
    expect(await secretData(s.ns, 'creds')).toEqual({ k: 'v3' });
    expect((await lastSync(s.fn))?.trigger).toBe('event');
    const blue = (await eventsFor(s.arn)).filter((e) => e.event.detail.labelUpdated === 'BLUE').at(-1);
    expect(blue?.event.detail.versionId).toBe(v3);
    expect(blue?.deliveries.map((d) => [d.rule, d.status])).toEqual([[s.names.ruleName, 'succeeded']]);

    // AWSCURRENT moving no longer concerns this SecretSync: no delivery, the Secret keeps v3.
    await putValue(s.arn, JSON.stringify({ k: 'v4' }));
    await idle();
    const current = (await eventsFor(s.arn))
      .filter((e) => e.event.detail.labelUpdated === 'AWSCURRENT')
      .at(-1);
    expect(current?.deliveries).toEqual([]);
    expect(await secretData(s.ns, 'creds')).toEqual({ k: 'v3' });
  });

  it('mergePolicy Merge → Replace: the function switches, and the next sync drops keys others wrote', async () => {
    const s = await provision(
      'policy',
      { a: '1', b: '2' },
      { target: { name: 'creds' }, mergePolicy: 'Merge' },
    );
    await core().patchNamespacedSecret(
      { namespace: s.ns, name: 'creds', body: { data: { extra: Buffer.from('x').toString('base64') } } },
      mergePatch,
    );
    const { calls } = await change(s, { mergePolicy: 'Replace' });
    expect(opsOf(writesOf(calls))).toEqual(['Invoke']);
    await syncedAtGeneration(s.ns, s.name);
    expect((await lastSync(s.fn))?.trigger).toBe('spec-changed');
    expect(await secretData(s.ns, 'creds')).toEqual({ a: '1', b: '2' });
  });

  it('a function update still in progress (as real Lambda answers) defers the spec-changed sync to the next pass, not loses it', {
    timeout: 180_000,
  }, async () => {
    const s = await provision('inprogress', { user: 'u', password: 'p1' }, { target: { name: 'creds-a' } });
    const key = `${s.ns}/${s.name}`;
    await patchSecretSync(s.ns, s.name, { spec: { target: { name: 'creds-b' } } });
    const restore = pretendUpdateInProgress();
    try {
      await resetAwsCalls();
      // The function cannot be invoked until the update is done: nothing is written to AWS.
      expect(await c.reconcileNow(key)).toEqual({ requeueAfterMs: 3_000 });
      expect(opsOf(writesOf(await controllerCalls()))).toEqual([]);
      const waiting = await getSecretSync(s.ns, s.name);
      expect(condition(waiting, 'Ready')).toMatchObject({
        status: 'False',
        reason: 'Provisioning',
        observedGeneration: 2,
      });
      // Not complete: the status does not claim generation 2 is provisioned yet.
      expect(waiting?.status?.observedGeneration).toBe(1);
    } finally {
      restore();
    }
    // The next pass finds the update done and runs the sync the change needs.
    await resetAwsCalls();
    const ss = await reconcileUntil(c, s.ns, s.name, (x) => settled(x));
    expect(opsOf(writesOf(await controllerCalls()))).toEqual(['Invoke']);
    expect(ss?.status?.targetName).toBe('creds-b');
    await idle();
    await syncedAtGeneration(s.ns, s.name);
    expect(await secretData(s.ns, 'creds-b')).toEqual({ user: 'u', password: 'p1' });
  });

  it('suspend → resume: a value changed while the rule was disabled is synced on resume', async () => {
    const s = await provision('resume', { k: 'v1' }, { target: { name: 'creds' } });
    const suspended = await change(s, { suspend: true }, 'Suspended');
    expect(opsOf(writesOf(suspended.calls))).toEqual(['PutRule']);
    const v2 = await putValue(s.arn, JSON.stringify({ k: 'v2' }));
    await idle();
    expect(await secretData(s.ns, 'creds')).toEqual({ k: 'v1' });

    const resumed = await change(s, { suspend: false });
    expect(opsOf(writesOf(resumed.calls))).toEqual(['Invoke', 'PutRule']);
    const ss = await syncedAtGeneration(s.ns, s.name);
    expect(ss.status?.syncedVersionId).toBe(v2);
    expect(await secretData(s.ns, 'creds')).toEqual({ k: 'v2' });
    expect((await lastSync(s.fn))?.trigger).toBe('spec-changed');
  });

  it('resyncInterval: no AWS write but the one sync that applies the generation; the backstop follows the new interval', async () => {
    const s = await provision('resync', { k: 'v' }, { target: { name: 'creds' } });
    // No requeue for the backstop: the inventory pass starts it when due (drift.ts).
    expect(await c.reconcileNow(`${s.ns}/${s.name}`)).toBeUndefined();
    // The default 24h (jittered by up to −10%) after the last invocation.
    const dueAt = async () => {
      const ss = (await getSecretSync(s.ns, s.name))!;
      return nextResyncAt(ss, ss.status?.lastInvokeTime)! - Date.parse(ss.status!.lastInvokeTime!);
    };
    expect(await dueAt()).toBeGreaterThan(0.9 * 24 * 3600_000 - 1_000);
    expect(await dueAt()).toBeLessThanOrEqual(24 * 3600_000);
    const invokesBefore = (await syncRecords(s.fn)).length;

    await patchSecretSync(s.ns, s.name, { spec: { resyncInterval: '5m' } });
    await resetAwsCalls();
    expect(await c.reconcileNow(`${s.ns}/${s.name}`)).toBeUndefined();
    const calls = await controllerCalls();
    // Every generation is applied by one sync, so Synced.observedGeneration follows any spec change.
    expect(opsOf(writesOf(calls))).toEqual(['Invoke']);
    expect(await dueAt()).toBeGreaterThan(0.9 * 5 * 60_000 - 1_000);
    expect(await dueAt()).toBeLessThanOrEqual(5 * 60_000);
    const ss = await getSecretSync(s.ns, s.name);
    expect(settled(ss)).toBe(true);
    expect(ss?.metadata.generation).toBe(2);
    await idle();
    await syncedAtGeneration(s.ns, s.name);
    expect((await syncRecords(s.fn)).length, 'one sync for the new generation').toBe(invokesBefore + 1);

    // The next pass is quiet.
    await resetAwsCalls();
    await c.reconcileNow(`${s.ns}/${s.name}`);
    expect(writesOf(await controllerCalls())).toEqual([]);

    // "0" disables the backstop.
    await patchSecretSync(s.ns, s.name, { spec: { resyncInterval: '0' } });
    await resetAwsCalls();
    expect(await c.reconcileNow(`${s.ns}/${s.name}`)).toBeUndefined();
    expect(opsOf(writesOf(await controllerCalls()))).toEqual(['Invoke']);
    const off = (await getSecretSync(s.ns, s.name))!;
    expect(settled(off)).toBe(true);
    expect(nextResyncAt(off, off.status?.lastInvokeTime)).toBeUndefined();
  });
});
