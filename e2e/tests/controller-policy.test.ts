import { DescribeRuleCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  controllerCalls,
  deleteAndFinalize,
  namesFor,
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
  idle,
  secretData,
} from './controller-support.ts';
import { awsConfig, core, customObjects, freshNamespace, rbac, statusOf } from './support.ts';

const POLICY = { group: 'secretsync.io', version: 'v1alpha1', plural: 'secretsyncpolicies' } as const;
const iam = () => new IAMClient(awsConfig());
const lambda = () => new LambdaClient(awsConfig());
const events = () => new EventBridgeClient(awsConfig());

/** 'exists' or the error name an AWS read answers with. */
const existence = (p: Promise<unknown>) =>
  p.then(
    () => 'exists',
    (e: { name?: string }) => e.name ?? 'error',
  );

describe('SecretSyncPolicy: the cluster-admin way to allow (--tenancy=tag)', () => {
  let c: TestController;
  const made: [string, string][] = [];
  const policies: string[] = [];

  beforeAll(async () => {
    // The informer watches only an empty namespace: every pass here is one the test calls.
    const home = await freshNamespace('pol-home');
    c = await startControllerWith({ args: ['--tenancy=tag', `--namespaces=${home}`] });
  });
  afterAll(async () => {
    for (const name of policies)
      await customObjects()
        .deleteClusterCustomObject({ ...POLICY, name })
        .catch(() => {});
    for (const [ns, name] of made) await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
  });

  it('rejects a policy that names no namespaces or no secrets (CEL)', async () => {
    const create = (name: string, spec: object) =>
      customObjects()
        .createClusterCustomObject({
          ...POLICY,
          body: { apiVersion: 'secretsync.io/v1alpha1', kind: 'SecretSyncPolicy', metadata: { name }, spec },
        })
        .then(
          () => {
            policies.push(name);
            return 'created';
          },
          (e: { body?: unknown }) => String(e.body),
        );
    expect(await create('pol-no-namespaces', { secrets: ['x/*'] })).toContain(
      'set spec.namespaces, spec.namespaceSelector, or both',
    );
    expect(await create('pol-no-secrets', { namespaces: ['x'], secrets: [] })).toContain(
      'spec.secrets must list at least one',
    );
  });

  it('no policy → denied; a policy by label selector and name glob → synced; policy deleted → torn down', async () => {
    const ns = await freshNamespace('pol');
    const name = 'app';
    const secretId = `policy/${ns}/db`;
    // No secretsync.io/namespaces tag: only a policy can allow this.
    await createAwsSecret(secretId, JSON.stringify({ user: 'u', password: 'p1' }));
    await applySecretSync(ns, name, { source: { secretId }, target: { name: 'creds' } });
    made.push([ns, name]);
    const n = namesFor(ns, name);

    await resetAwsCalls();
    let ss = await reconcileUntil(c, ns, name, readyIs('False', 'PolicyDenied'));
    const denial = condition(ss, 'Ready')?.message ?? '';
    expect(denial).toContain('secretsync.io/namespaces tag');
    expect(denial).toContain('SecretSyncPolicy');
    expect(writesOf(await controllerCalls())).toEqual([]);
    expect(ss?.metadata.finalizers ?? []).toEqual([]);

    // The cluster admin labels the namespace and grants it the secret by a name glob.
    await core().patchNamespace(
      { name: ns, body: { metadata: { labels: { 'secretsync-test/policy': ns } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const policyName = `grant-${ns}`;
    await customObjects().createClusterCustomObject({
      ...POLICY,
      body: {
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'SecretSyncPolicy',
        metadata: { name: policyName },
        spec: {
          namespaceSelector: { matchLabels: { 'secretsync-test/policy': ns } },
          secrets: [`policy/${ns}/*`],
        },
      },
    });
    policies.push(policyName);

    ss = await reconcileUntil(c, ns, name, readyIs('True', 'Ready'));
    expect(condition(ss, 'Ready')?.status).toBe('True');
    await idle();
    await eventually('first sync', async () =>
      (await secretData(ns, 'creds'))?.password === 'p1' ? true : undefined,
    );

    // The grant is withdrawn: the next pass tears the sync path down; the Secret's data stays.
    await customObjects().deleteClusterCustomObject({ ...POLICY, name: policyName });
    ss = await reconcileUntil(c, ns, name, readyIs('False', 'PolicyDenied'));
    expect(await existence(iam().send(new GetRoleCommand({ RoleName: n.roleName })))).toBe(
      'NoSuchEntityException',
    );
    expect(
      await existence(lambda().send(new GetFunctionConfigurationCommand({ FunctionName: n.functionName }))),
    ).toBe('ResourceNotFoundException');
    expect(await existence(events().send(new DescribeRuleCommand({ Name: n.ruleName })))).toBe(
      'ResourceNotFoundException',
    );
    const role = await rbac()
      .readNamespacedRole({ name: n.rbacName, namespace: ns })
      .then(
        () => 200,
        (e: unknown) => statusOf(e),
      );
    expect(role).toBe(404);
    expect(ss?.metadata.finalizers ?? []).toEqual([]);
    expect(await secretData(ns, 'creds')).toEqual({ user: 'u', password: 'p1' });
  });
});
