import { DeleteFunctionCommand, GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import { clearFunctionStates, setFunctionState } from '../testbed/lambda-states.ts';
import {
  controllerCalls,
  deleteAndFinalize,
  namesFor,
  readyIs,
  reconcileUntil,
  resetAwsCalls,
  startControllerWith,
  type TestController,
} from './controller-helpers.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  idle,
} from './controller-support.ts';
import { putValue, readTarget, syncedTo } from './lambda-support.ts';
import { awsConfig, bed, core, freshNamespace, rbac, statusOf } from './support.ts';

/**
 * Ownership in the cluster (a same-named Role or RoleBinding that is not ours is never touched) and
 * what Lambda says about the function's health (a Failed function is reported, then re-created).
 */

const lambda = () => new LambdaClient(awsConfig());

describe('controller: ownership of in-cluster children, function health', () => {
  let c: TestController;
  let home: string;
  const made: [string, string][] = [];

  beforeAll(async () => {
    home = await freshNamespace('own');
    // The informer watches an empty namespace: every pass is one the test drives (reconcileUntil).
    const idleNs = await freshNamespace('own-idle');
    c = await startControllerWith({ args: ['--tenancy=allow-all', `--namespaces=${idleNs}`] });
  });
  afterEach(() => clearFunctionStates(bed().aws.url));
  afterAll(async () => {
    for (const [ns, name] of made) await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
  });

  async function sync(name: string, value: object): Promise<string> {
    const arn = await createAwsSecret(`own/${home}/${name}`, JSON.stringify(value));
    await applySecretSync(home, name, { source: { secretId: arn } });
    made.push([home, name]);
    return arn;
  }

  for (const kind of ['Role', 'RoleBinding'] as const) {
    it(`refuses a ${kind} with our name that is not ours (Conflict), leaves it untouched, and never deletes it`, async () => {
      const name = `squat-${kind.toLowerCase()}`;
      const rbacName = namesFor(home, name).rbacName;
      const theirs =
        kind === 'Role'
          ? await rbac().createNamespacedRole({
              namespace: home,
              body: {
                metadata: { name: rbacName, labels: { team: 'theirs' } },
                rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
              },
            })
          : await rbac().createNamespacedRoleBinding({
              namespace: home,
              body: {
                metadata: { name: rbacName, labels: { team: 'theirs' } },
                roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
                subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'someone' }],
              },
            });
      await sync(name, { k: 'v' });
      const ss = await reconcileUntil(c, home, name, readyIs('False', 'Conflict'));
      expect(condition(ss, 'Ready')?.message).toContain(`${kind} ${home}/${rbacName} exists but`);
      const read = () =>
        kind === 'Role'
          ? rbac().readNamespacedRole({ namespace: home, name: rbacName })
          : rbac().readNamespacedRoleBinding({ namespace: home, name: rbacName });
      expect((await read()).metadata?.resourceVersion).toBe(theirs.metadata?.resourceVersion);

      // Deleting the SecretSync removes everything of ours, and not their object.
      await deleteAndFinalize(c, home, name);
      expect((await read()).metadata?.resourceVersion).toBe(theirs.metadata?.resourceVersion);
    });
  }

  it('gives its Role and RoleBinding our labels and an ownerReference to the SecretSync, and removes them on delete', async () => {
    const name = 'children';
    await sync(name, { k: 'v' });
    const ss = (await reconcileUntil(c, home, name, readyIs('True'))) as SecretSync;
    const rbacName = namesFor(home, name).rbacName;
    for (const obj of [
      await rbac().readNamespacedRole({ namespace: home, name: rbacName }),
      await rbac().readNamespacedRoleBinding({ namespace: home, name: rbacName }),
    ]) {
      expect(obj.metadata?.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'secretsync',
        'secretsync.io/secretsync': name,
      });
      expect(obj.metadata?.ownerReferences).toEqual([
        { apiVersion: 'secretsync.io/v1alpha1', kind: 'SecretSync', name, uid: ss.metadata.uid },
      ]);
    }
    expect(ss.status?.resources?.map((r) => r.kind)).toEqual([
      'IAMRole',
      'LogGroup',
      'Function',
      'EventRule',
      'AccessEntry',
      'Role',
      'RoleBinding',
      'Secret',
    ]);
    await deleteAndFinalize(c, home, name);
    for (const read of [
      () => rbac().readNamespacedRole({ namespace: home, name: rbacName }),
      () => rbac().readNamespacedRoleBinding({ namespace: home, name: rbacName }),
    ]) {
      expect(statusOf(await read().catch((e: unknown) => e))).toBe(404);
    }
  });

  it('reports a Failed function as FunctionFailed with its reason code, re-creates it, and is Ready again', async () => {
    const name = 'failing';
    const arn = await sync(name, { password: 'one' });
    const ready = (await reconcileUntil(c, home, name, readyIs('True'))) as SecretSync;
    await idle();
    const fn = namesFor(home, name).functionName;
    const before = await lambda().send(new GetFunctionCommand({ FunctionName: fn }));
    await resetAwsCalls();

    await setFunctionState(bed().aws.url, {
      functionName: fn,
      state: 'Failed',
      stateReasonCode: 'SubnetOutOfIPAddresses',
      stateReason: 'All subnets in the VPC configuration are out of IP addresses.',
    });
    const failed = await reconcileUntil(c, home, name, readyIs('False', 'FunctionFailed'));
    const message = condition(failed, 'Ready')?.message ?? '';
    expect(message).toContain('SubnetOutOfIPAddresses');
    expect(message).toContain('out of IP addresses');
    // Seen by people too: a Warning Event with the reason.
    const events = await core().listNamespacedEvent({ namespace: home });
    expect(
      events.items.some(
        (e) => e.involvedObject.name === name && e.type === 'Warning' && e.reason === 'FunctionFailed',
      ),
    ).toBe(true);

    const again = await reconcileUntil(c, home, name, readyIs('True', 'Ready'));
    const after = await lambda().send(new GetFunctionCommand({ FunctionName: fn }));
    // Deleted and created again, once: a new function under the same name, ours, Active.
    const writes = (await controllerCalls()).filter(
      (x) => x.resource === fn && ['DeleteFunction', 'CreateFunction'].includes(x.operation),
    );
    expect(writes.map((x) => x.operation)).toEqual(['DeleteFunction', 'CreateFunction']);
    expect(after.Configuration?.State ?? 'Active').toBe('Active');
    expect(after.Tags).toEqual(before.Tags);
    expect(again?.status?.functionArn).toBe(ready.status?.functionArn);

    // And it syncs: the next change reaches the target.
    const version = await putValue(arn, JSON.stringify({ password: 'two' }));
    await syncedTo({ ns: home, name }, version);
    const target = await readTarget({ ns: home, target: name });
    expect(Buffer.from(target.data?.password ?? '', 'base64').toString()).toBe('two');
  });

  it('reports an Inactive function as FunctionInactive and wakes it', async () => {
    const name = 'sleeping';
    await sync(name, { k: 'v' });
    await reconcileUntil(c, home, name, readyIs('True'));
    await idle();
    const fn = namesFor(home, name).functionName;
    await setFunctionState(bed().aws.url, {
      functionName: fn,
      state: 'Inactive',
      stateReasonCode: 'Idle',
      stateReason: 'The function is inactive because it has not been invoked for a long time.',
      wakeMs: 1500,
    });
    const inactive = await reconcileUntil(c, home, name, readyIs('False', 'FunctionInactive'));
    expect(condition(inactive, 'Ready')?.message).toContain('Idle');
    // The pass invoked it; Lambda restores it (Pending) and it becomes Active again.
    await reconcileUntil(c, home, name, readyIs('True', 'Ready'));
  });

  it('leaves a function someone deleted by hand to be re-created by the next pass', async () => {
    const name = 'deleted';
    await sync(name, { k: 'v' });
    await reconcileUntil(c, home, name, readyIs('True'));
    await idle();
    const fn = namesFor(home, name).functionName;
    await lambda().send(new DeleteFunctionCommand({ FunctionName: fn }));
    await reconcileUntil(c, home, name, readyIs('True'));
    await eventually('function back', async () =>
      (await lambda().send(new GetFunctionCommand({ FunctionName: fn }))).Configuration ? true : undefined,
    );
    expect((await getSecretSync(home, name))?.status?.resources?.length).toBe(8);
  });
});
