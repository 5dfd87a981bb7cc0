import { GetRolePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  GetFunctionEventInvokeConfigCommand,
  LambdaClient,
  PutFunctionEventInvokeConfigCommand,
} from '@aws-sdk/client-lambda';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORCE_SYNC_ANNOTATION } from '../../src/controller/reconcile.ts';
import { metric, namesFor, patchSecretSync } from '../tests/controller-helpers.ts';
import {
  api,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  idle,
  secretData,
  startControllerWith,
  type TestController,
} from '../tests/controller-support.ts';
import { awsConfig, control, customObjects, freshNamespace } from '../tests/support.ts';

/**
 * Lambda's retries of a failed run, as the controller configures them (PutFunctionEventInvokeConfig:
 * retry attempts, maximum event age, on-failure destination), and what a user sees when a sync
 * fails for good: Synced=False with the reason on the status, the secretsync_sync_failed metric,
 * the failure record in the destination queue — and the target Secret untouched.
 */

const CANARY = 'canary-retries-7f3a';

interface Invocation {
  functionName: string;
  ok: boolean;
  attempts: unknown[];
  onFailure?: { destination: string; delivered: boolean };
}

describe('Lambda retries and the on-failure destination', () => {
  let ns: string;
  let controller: TestController;
  let secretArn: string;
  let queueUrl: string;
  let queueArn: string;
  const sqs = () => new SQSClient(awsConfig());

  beforeAll(async () => {
    ns = await freshNamespace('retries');
    secretArn = await createAwsSecret(`retries/${ns}`, '{"token":"v1"}');
    queueUrl = (await sqs().send(new CreateQueueCommand({ QueueName: `failures-${ns}` }))).QueueUrl!;
    queueArn = (
      await sqs().send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    controller = await startControllerWith({
      args: [
        '--tenancy=allow-all',
        `--namespaces=${ns}`,
        '--lambda-retry-attempts=1',
        '--lambda-max-event-age=600',
        `--on-failure-destination=${queueArn}`,
      ],
      logLevel: 'warn',
    });
    await customObjects().createNamespacedCustomObject({
      ...api,
      namespace: ns,
      body: {
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'SecretSync',
        metadata: { name: 'app' },
        spec: { source: { secretId: secretArn }, target: { name: 'app' } },
      },
    });
    await eventually(
      'first sync',
      async () => ((await secretData(ns, 'app'))?.token === 'v1' ? true : undefined),
      60_000,
    );
  });

  afterAll(async () => {
    await control('faults', { method: 'DELETE' });
    await customObjects()
      .deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'app' })
      .catch(() => {});
    await eventually(
      'deleted',
      async () => ((await getSecretSync(ns, 'app')) ? undefined : true),
      60_000,
    ).catch(() => {});
    await controller.stop();
  });

  it('configures the retries and the destination, and lets the role send only there', async () => {
    const names = namesFor(ns, 'app');
    const config = await new LambdaClient(awsConfig()).send(
      new GetFunctionEventInvokeConfigCommand({ FunctionName: names.functionName }),
    );
    expect(config).toMatchObject({
      MaximumRetryAttempts: 1,
      MaximumEventAgeInSeconds: 600,
      DestinationConfig: { OnFailure: { Destination: queueArn } },
    });
    const policy = await new IAMClient(awsConfig()).send(
      new GetRolePolicyCommand({ RoleName: names.roleName, PolicyName: 'secretsync' }),
    );
    const statements = JSON.parse(decodeURIComponent(policy.PolicyDocument!)).Statement as Record<
      string,
      unknown
    >[];
    expect(statements.find((s) => s.Sid === 'SendFailedInvocations')).toEqual({
      Sid: 'SendFailedInvocations',
      Effect: 'Allow',
      Action: 'sqs:SendMessage',
      Resource: queueArn,
    });
  });

  it('repairs an invoke config changed by hand at its next pass', async () => {
    const lambda = new LambdaClient(awsConfig());
    const FunctionName = namesFor(ns, 'app').functionName;
    await lambda.send(new PutFunctionEventInvokeConfigCommand({ FunctionName, MaximumRetryAttempts: 2 }));
    await controller.reconcileNow(`${ns}/app`);
    expect(await lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName }))).toMatchObject({
      MaximumRetryAttempts: 1,
      DestinationConfig: { OnFailure: { Destination: queueArn } },
    });
  });

  it('a sync that fails every try: Synced=False with the reason, the metric, one record in the queue, the Secret untouched', async () => {
    const fn = namesFor(ns, 'app').functionName;
    const before = (await control<Invocation[]>('invocations')).length;
    const secretBefore = await secretData(ns, 'app');
    // Secrets Manager answers 503 to every GetSecretValue (only the functions call it).
    await control('faults', {
      method: 'POST',
      body: JSON.stringify({ service: 'secretsmanager', operation: 'GetSecretValue', kind: '503', rate: 1 }),
    });
    try {
      await new SecretsManagerClient(awsConfig()).send(
        new PutSecretValueCommand({ SecretId: secretArn, SecretString: JSON.stringify({ token: CANARY }) }),
      );
      await idle();
    } finally {
      await control('faults', { method: 'DELETE' });
    }
    const runs = (await control<Invocation[]>('invocations'))
      .slice(before)
      .filter((i) => i.functionName === fn);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ ok: false, onFailure: { destination: queueArn, delivered: true } });
    expect(runs[0]!.attempts).toHaveLength(2); // the first run and the one retry configured

    const ss = await getSecretSync(ns, 'app');
    expect(condition(ss, 'Synced')).toMatchObject({ status: 'False', reason: 'SecretsManagerUnavailable' });
    expect(JSON.stringify(ss?.status)).not.toContain(CANARY);
    expect(await secretData(ns, 'app')).toEqual(secretBefore);
    // The metric is computed from the controller's cache, so it shows as soon as the status does.
    await eventually('secretsync_sync_failed', async () =>
      metric(await controller.metricsText(), 'secretsync_sync_failed', {
        namespace: ns,
        name: 'app',
        reason: 'SecretsManagerUnavailable',
      }) === 1
        ? true
        : undefined,
    );

    const received = await sqs().send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }),
    );
    expect(received.Messages).toHaveLength(1);
    const body = received.Messages![0]!.Body!;
    expect(body).not.toContain(CANARY);
    expect(JSON.parse(body)).toMatchObject({
      requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 2 },
      responseContext: { functionError: 'Unhandled' },
    });

    // A force-sync once Secrets Manager is back: synced, the metric clears.
    await patchSecretSync(ns, 'app', {
      metadata: { annotations: { [FORCE_SYNC_ANNOTATION]: 'after-outage' } },
    });
    await eventually(
      'the value after the outage',
      async () => ((await secretData(ns, 'app'))?.token === CANARY ? true : undefined),
      60_000,
    );
    await eventually('the metric to clear', async () =>
      metric(await controller.metricsText(), 'secretsync_sync_failed', { namespace: ns, name: 'app' }) === 0
        ? true
        : undefined,
    );
  });
});
