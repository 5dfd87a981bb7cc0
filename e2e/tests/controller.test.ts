import { DescribeAccessEntryCommand, EKSClient } from '@aws-sdk/client-eks';
import { DescribeRuleCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningController } from '../../src/controller/controller.ts';
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
  waitReady,
} from './controller-support.ts';
import { awsConfig, bed, core, customObjects, freshNamespace } from './support.ts';

describe('controller end to end: apply, change, delete', () => {
  let controller: RunningController;
  beforeAll(async () => {
    controller = await startTestController(['--tenancy=tag']);
  });
  afterAll(async () => {
    await controller?.stop();
  });

  it('provisions, syncs the first value, follows a change, and cleans up on delete', async () => {
    const ns = await freshNamespace('e2e');
    const arn = await createAwsSecret(
      `e2e/${ns}/db`,
      JSON.stringify({ username: 'app', password: 'first' }),
      [{ Key: 'secretsync.io/namespaces', Value: ns }],
    );
    await applySecretSync(ns, 'db', { source: { secretId: `e2e/${ns}/db` }, target: { name: 'db-creds' } });

    const ss = await waitReady(ns, 'db');
    expect(ss.status?.secretArn).toBe(arn);
    expect(ss.status?.accessEntryUsername).toBe(`secretsync:${ns}:db`);
    expect(ss.metadata.finalizers).toContain('secretsync.io/cleanup');

    await eventually('first sync', async () =>
      (await secretData(ns, 'db-creds'))?.password === 'first' ? true : undefined,
    );
    const synced = await eventually('Synced=True', async () => {
      const s = await getSecretSync(ns, 'db');
      return condition(s, 'Synced')?.status === 'True' ? s : undefined;
    });
    expect(synced.status?.syncedKeys).toBe(2);
    const metrics = await controller.metricsText();
    expect(metrics).toMatch(/secretsync_secretsyncs\{condition="Ready",status="True"\} [1-9]/);
    expect(metrics).toMatch(
      /secretsync_aws_calls_total\{service="iam",operation="CreateRoleCommand",outcome="ok"\} 1/,
    );
    expect(metrics).toMatch(/secretsync_reconcile_total\{result="success"\} [1-9]/);

    const sm = new SecretsManagerClient(awsConfig());
    await sm.send(
      new PutSecretValueCommand({
        SecretId: arn,
        SecretString: JSON.stringify({ username: 'app', password: 'second' }),
      }),
    );
    await idle();
    await eventually('the change', async () =>
      (await secretData(ns, 'db-creds'))?.password === 'second' ? true : undefined,
    );

    // Delete: everything in AWS goes, the target Secret stays (deletionPolicy Retain).
    const roleName = ss.status!.roleArn!.split('/').pop()!;
    const fnName = ss.status!.functionArn!.split(':').pop()!;
    const ruleName = ss.status!.ruleArn!.split('/').pop()!;
    await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'db' });
    await eventually('SecretSync gone', async () =>
      (await getSecretSync(ns, 'db')) === undefined ? true : undefined,
    );
    const gone = (p: Promise<unknown>) =>
      p.then(
        () => 'exists',
        (e: { name?: string }) => e.name,
      );
    expect(await gone(new IAMClient(awsConfig()).send(new GetRoleCommand({ RoleName: roleName })))).toBe(
      'NoSuchEntityException',
    );
    expect(
      await gone(new LambdaClient(awsConfig()).send(new GetFunctionCommand({ FunctionName: fnName }))),
    ).toBe('ResourceNotFoundException');
    expect(
      await gone(new EventBridgeClient(awsConfig()).send(new DescribeRuleCommand({ Name: ruleName }))),
    ).toBe('ResourceNotFoundException');
    expect(
      await gone(
        new EKSClient(awsConfig()).send(
          new DescribeAccessEntryCommand({
            clusterName: bed().clusterName,
            principalArn: ss.status!.roleArn!,
          }),
        ),
      ),
    ).toBe('ResourceNotFoundException');
    expect((await secretData(ns, 'db-creds'))?.password).toBe('second');
  });
  it('never deletes a Secret it did not create, even with deletionPolicy Delete', async () => {
    const ns = await freshNamespace('e2e');
    // Someone's Secret, which the SecretSync's author names as its target.
    await core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'theirs' }, stringData: { keep: 'me' } },
    });
    await createAwsSecret(`e2e/${ns}/other`, JSON.stringify({ k: 'v' }), [
      { Key: 'secretsync.io/namespaces', Value: ns },
    ]);
    await applySecretSync(ns, 'grab', {
      source: { secretId: `e2e/${ns}/other` },
      target: { name: 'theirs' },
      deletionPolicy: 'Delete',
    });
    const ss = await waitReady(ns, 'grab');
    // Recorded without a uid: it existed before, so it is never ours to delete.
    expect(ss.status?.resources?.find((r) => r.kind === 'Secret')).toEqual({
      kind: 'Secret',
      id: `${ns}/theirs`,
    });
    await customObjects().deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'grab' });
    await eventually('SecretSync gone', async () =>
      (await getSecretSync(ns, 'grab')) === undefined ? true : undefined,
    );
    expect((await secretData(ns, 'theirs'))?.keep).toBe('me');
  });
});
