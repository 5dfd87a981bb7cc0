import {
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
  type RuleState,
  type Target,
} from '@aws-sdk/client-eventbridge';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { AddPermissionCommand, CreateFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
  UpdateSecretCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventBridgeEvent,
  EventRouter,
  policyAllowsRule,
  type RoutedEvent,
  targetInput,
} from './event-router.ts';
import { LambdaRunner } from './lambda-runner.ts';
import { LAMBDA_TRUST, makeZip, startTestAws, type TestAws } from './test-front-door.ts';

let aws: TestAws;
let runner: LambdaRunner;
let router: EventRouter;
let sm: SecretsManagerClient;
let events: EventBridgeClient;
let lambda: LambdaClient;
let roleArn: string;
/** Credentials the runner handed to functions, and the calls functions made through the front door. */
const issued: { accessKeyId: string; roleArn: string }[] = [];
const seen: { service: string; operation?: string; accessKeyId?: string }[] = [];

const ACCOUNT = '123456789012';
const fnArn = (name: string) => `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${name}`;

beforeAll(async () => {
  aws = await startTestAws();
  runner = new LambdaRunner({
    endpoint: aws.endpoint,
    asyncRetryDelaysMs: [10, 10],
    onCredentials: (c) => issued.push(c),
  });
  router = new EventRouter({ endpoint: aws.endpoint, runner });
  aws.use(runner.interceptor);
  aws.observe(router.observer);
  aws.observe((req) => {
    seen.push({ service: req.service, operation: req.operation, accessKeyId: req.accessKeyId });
  });
  const cfg = { endpoint: aws.endpoint.url, region: 'us-east-1', credentials: aws.endpoint.credentials };
  sm = new SecretsManagerClient(cfg);
  events = new EventBridgeClient(cfg);
  lambda = new LambdaClient(cfg);
  const role = await new IAMClient(cfg).send(
    new CreateRoleCommand({ RoleName: 'sync-role', AssumeRolePolicyDocument: LAMBDA_TRUST }),
  );
  roleArn = role.Role!.Arn!;
  const fns = {
    recorder: 'export const handler = async (event) => ({ received: event });',
    failing: `export const handler = async () => { throw new Error('nope'); };`,
  };
  for (const [name, src] of Object.entries(fns)) {
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: name,
        Runtime: 'nodejs24.x',
        Role: role.Role!.Arn!,
        Handler: 'index.handler',
        Code: { ZipFile: makeZip({ 'index.mjs': src }) },
      }),
    );
  }
}, 60_000);

afterAll(async () => {
  await router?.close();
  await runner?.close();
  await aws?.stop();
});

/** The rule the controller provisions for one secret (DESIGN §4), its Lambda target and permission. */
async function ruleFor(
  name: string,
  pattern: Record<string, unknown>,
  opts: {
    fn?: string;
    permit?: boolean;
    state?: RuleState;
    target?: Partial<Target>;
    schedule?: string;
  } = {},
) {
  const fn = opts.fn ?? 'recorder';
  const rule = await events.send(
    new PutRuleCommand({
      Name: name,
      ...(opts.schedule ? { ScheduleExpression: opts.schedule } : { EventPattern: JSON.stringify(pattern) }),
      State: opts.state ?? 'ENABLED',
    }),
  );
  await events.send(
    new PutTargetsCommand({ Rule: name, Targets: [{ Id: 'sync', Arn: fnArn(fn), ...opts.target }] }),
  );
  if (opts.permit !== false) {
    await lambda.send(
      new AddPermissionCommand({
        FunctionName: fn,
        StatementId: `events-${name}`,
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        SourceArn: rule.RuleArn!,
      }),
    );
  }
  return rule.RuleArn!;
}

const labelPattern = (arn: string) => ({
  source: ['aws.secretsmanager'],
  'detail-type': ['Secret Label Updated'],
  resources: [arn],
  detail: { labelUpdated: ['AWSCURRENT'] },
});

/** Routed events since `from` (an index into history) about one secret. */
const eventsAbout = (arn: string, from = 0): RoutedEvent[] =>
  router
    .history()
    .slice(from)
    .filter((r) => r.event.resources.includes(arn));

const deliveriesOf = (rule: string) =>
  router
    .history()
    .flatMap((r) => r.deliveries.filter((d) => d.rule === rule).map((d) => ({ ...d, event: r.event })));

describe('Secret Label Updated routing', () => {
  let arnA: string;
  let arnB: string;

  beforeAll(async () => {
    arnA = (await sm.send(new CreateSecretCommand({ Name: 'team/a', SecretString: '{"k":"1"}' }))).ARN!;
    arnB = (await sm.send(new CreateSecretCommand({ Name: 'team/b', SecretString: '{"k":"1"}' }))).ARN!;
    await router.idle();
    await ruleFor('sync-a', labelPattern(arnA));
    await ruleFor('sync-b', labelPattern(arnB));
  });

  it('announces the first version of a secret created with a value', () => {
    const [created] = eventsAbout(arnA);
    expect(created?.cause).toBe('secretsmanager:CreateSecret');
    expect(created?.event.detail).toMatchObject({ name: 'team/a', labelUpdated: 'AWSCURRENT' });
    expect(created?.deliveries).toEqual([]); // its rule did not exist yet
  });

  it('PutSecretValue fires the rule for that secret exactly once, with the native event', async () => {
    const from = router.history().length;
    const put = await sm.send(new PutSecretValueCommand({ SecretId: 'team/a', SecretString: '{"k":"2"}' }));
    await router.idle();
    const routed = eventsAbout(arnA, from);
    expect(routed).toHaveLength(1);
    const { event, deliveries } = routed[0]!;
    expect(event).toEqual({
      version: '0',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      'detail-type': 'Secret Label Updated',
      source: 'aws.secretsmanager',
      account: ACCOUNT,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      region: 'us-east-1',
      resources: [arnA],
      detail: { name: 'team/a', labelUpdated: 'AWSCURRENT', versionId: put.VersionId },
    } satisfies EventBridgeEvent);
    expect(deliveries).toHaveLength(1);
    const d = deliveries[0]!;
    expect(d).toMatchObject({ rule: 'sync-a', targetArn: fnArn('recorder'), status: 'succeeded' });
    expect(d.invocation?.attempts).toHaveLength(1);
    expect(JSON.parse(d.invocation!.attempts[0]!.payload)).toEqual({ received: event });
    // The other secret's rule did not fire.
    expect(deliveriesOf('sync-b')).toEqual([]);
  });

  it('stays silent for a version staged only as AWSPENDING, then announces AWSCURRENT moving to it', async () => {
    const current = await sm.send(new PutSecretValueCommand({ SecretId: arnA, SecretString: 'y' }));
    await router.idle();
    const from = router.history().length;
    const pending = await sm.send(
      new PutSecretValueCommand({ SecretId: arnA, SecretString: '{"k":"3"}', VersionStages: ['AWSPENDING'] }),
    );
    await router.idle();
    expect(eventsAbout(arnA, from)).toEqual([]);

    // The last step of a rotation: AWSCURRENT moves onto the pending version.
    await sm.send(
      new UpdateSecretVersionStageCommand({
        SecretId: arnA,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pending.VersionId,
        RemoveFromVersionId: current.VersionId,
      }),
    );
    await router.idle();
    const moved = eventsAbout(arnA, from);
    expect(moved).toHaveLength(1);
    expect(moved[0]!.cause).toBe('secretsmanager:UpdateSecretVersionStage');
    expect(moved[0]!.event.detail).toEqual({
      name: 'team/a',
      labelUpdated: 'AWSCURRENT',
      versionId: pending.VersionId,
    });
    expect(moved[0]!.deliveries.map((d) => d.status)).toEqual(['succeeded']);
  });

  it('announces the version RotateSecret made current (read back with DescribeSecret)', async () => {
    const arn = (await sm.send(new CreateSecretCommand({ Name: 'team/rotated', SecretString: '1' }))).ARN!;
    await router.idle();
    const from = router.history().length;
    const rotated = await sm.send(new RotateSecretCommand({ SecretId: arn }));
    await router.idle();
    const routed = eventsAbout(arn, from);
    expect(routed.map((r) => [r.cause, r.event.detail.versionId])).toEqual([
      ['secretsmanager:RotateSecret', rotated.VersionId],
    ]);
  });

  it('announces UpdateSecret with a new value, and custom labels too', async () => {
    const from = router.history().length;
    const upd = await sm.send(new UpdateSecretCommand({ SecretId: arnB, SecretString: '{"k":"9"}' }));
    const custom = await sm.send(
      new PutSecretValueCommand({ SecretId: arnB, SecretString: 'z', VersionStages: ['BLUE'] }),
    );
    await router.idle();
    expect(eventsAbout(arnB, from).map((r) => r.event.detail)).toEqual([
      { name: 'team/b', labelUpdated: 'AWSCURRENT', versionId: upd.VersionId },
      { name: 'team/b', labelUpdated: 'BLUE', versionId: custom.VersionId },
    ]);
    // sync-b matches only AWSCURRENT.
    expect(deliveriesOf('sync-b').map((d) => d.event.detail.labelUpdated)).toEqual(['AWSCURRENT']);
  });

  it('stays silent for calls that move no label: a secret without a value, an idempotent retry', async () => {
    const from = router.history().length;
    const arn = (await sm.send(new CreateSecretCommand({ Name: 'team/empty' }))).ARN!;
    await router.idle();
    expect(eventsAbout(arn, from)).toEqual([]);
    const token = '00000000-0000-4000-8000-000000000001';
    await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'v', ClientRequestToken: token }));
    await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'v', ClientRequestToken: token }));
    await sm.send(new UpdateSecretCommand({ SecretId: arn, Description: 'no new value' }));
    await router.idle();
    expect(eventsAbout(arn, from).map((r) => r.event.detail.versionId)).toEqual([token]);
  });

  it('does not fire a DISABLED rule', async () => {
    const arn = (await sm.send(new CreateSecretCommand({ Name: 'team/disabled', SecretString: '1' }))).ARN!;
    await ruleFor('sync-disabled', labelPattern(arn), { state: 'DISABLED' });
    await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: '2' }));
    await router.idle();
    expect(eventsAbout(arn)).toHaveLength(2);
    expect(deliveriesOf('sync-disabled')).toEqual([]);
  });

  it('records a failed invocation, and runs nothing, when the resource policy does not allow the rule', async () => {
    const arn = (await sm.send(new CreateSecretCommand({ Name: 'team/noperm', SecretString: '1' }))).ARN!;
    const ruleArn = await ruleFor('sync-noperm', labelPattern(arn), { fn: 'failing', permit: false });
    // A permission for a different rule must not count either.
    await lambda.send(
      new AddPermissionCommand({
        FunctionName: 'failing',
        StatementId: 'other-rule',
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        SourceArn: `${ruleArn}-other`,
      }),
    );
    const before = runner.stats('failing').invocations;
    await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: '2' }));
    await router.idle();
    const [d] = deliveriesOf('sync-noperm');
    expect(d?.status).toBe('failed');
    expect(d?.reason).toContain('does not allow events.amazonaws.com');
    expect(d?.invocation).toBeUndefined();
    expect(runner.stats('failing').invocations).toBe(before);
  });

  it('retries a failing function twice (async invocation), keeping the request id', async () => {
    const arn = (await sm.send(new CreateSecretCommand({ Name: 'team/failing', SecretString: '1' }))).ARN!;
    await ruleFor('sync-failing', labelPattern(arn), { fn: 'failing' });
    await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: '2' }));
    await router.idle();
    const [d] = deliveriesOf('sync-failing');
    expect(d?.status).toBe('function-error');
    expect(d?.invocation?.attempts.map((a) => a.errorMessage)).toEqual(['nope', 'nope', 'nope']);
    expect(new Set(d?.invocation?.attempts.map((a) => a.requestId)).size).toBe(1);
  });
});

describe('a bundled function using the AWS SDK', () => {
  it('is invoked by the event and reads the secret through the front door with its role credentials', async () => {
    // What the product ships: an esbuild bundle with the SDK inside, no node_modules next to it.
    const bundle = await build({
      stdin: {
        contents: `
          import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
          const sm = new SecretsManagerClient({});
          export const handler = async (event) => {
            const s = await sm.send(new GetSecretValueCommand({ SecretId: process.env.SECRET_ARN }));
            return { value: s.SecretString, versionId: s.VersionId, eventVersionId: event.detail.versionId };
          };`,
        resolveDir: new URL('../..', import.meta.url).pathname, // the repo, for node_modules
        loader: 'js',
      },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node22',
      write: false,
      logLevel: 'silent',
    });
    const arn = (await sm.send(new CreateSecretCommand({ Name: 'team/sdk', SecretString: 'v1' }))).ARN!;
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'sdk-sync',
        Runtime: 'nodejs24.x',
        Role: roleArn,
        Handler: 'index.handler',
        Timeout: 30,
        Code: { ZipFile: makeZip({ 'index.js': bundle.outputFiles[0]!.text }) },
        Environment: { Variables: { SECRET_ARN: arn } },
      }),
    );
    await ruleFor('sync-sdk', labelPattern(arn), { fn: 'sdk-sync' });
    const put = await sm.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'v2' }));
    await router.idle();
    const [d] = deliveriesOf('sync-sdk');
    expect(d?.status).toBe('succeeded');
    expect(JSON.parse(d!.invocation!.attempts[0]!.payload)).toEqual({
      value: 'v2',
      versionId: put.VersionId,
      eventVersionId: put.VersionId,
    });
    // The function's GetSecretValue came through the front door, signed with the credentials the
    // runner got by assuming the function's role.
    const call = seen.find((c) => c.operation === 'GetSecretValue');
    expect(call?.accessKeyId).toBeDefined();
    expect(issued.find((c) => c.accessKeyId === call?.accessKeyId)?.roleArn).toBe(roleArn);
  });
});

describe('emit and fireRule', () => {
  it('routes an injected event through the rules (prefix match, InputPath)', async () => {
    await ruleFor(
      'custom-prefix',
      { source: [{ prefix: 'my.' }], detail: { n: [{ numeric: ['>', 5] }] } },
      { target: { InputPath: '$.detail' } },
    );
    const hit = await router.emit({ source: 'my.app', 'detail-type': 'Thing', detail: { n: 6 } });
    const miss = await router.emit({ source: 'my.app', 'detail-type': 'Thing', detail: { n: 5 } });
    await router.idle();
    expect(miss.deliveries).toEqual([]);
    expect(hit.deliveries).toHaveLength(1);
    expect(JSON.parse(hit.deliveries[0]!.invocation!.attempts[0]!.payload)).toEqual({ received: { n: 6 } });
  });

  it('fires a schedule rule on demand with a Scheduled Event', async () => {
    const ruleArn = await ruleFor('nightly', {}, { schedule: 'rate(1 day)' });
    const r = await router.fireRule('nightly');
    await router.idle();
    expect(r.event).toMatchObject({
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      resources: [ruleArn],
      detail: {},
    });
    expect(r.deliveries.map((d) => d.status)).toEqual(['succeeded']);
  });
});

describe('pure parts', () => {
  const ruleArn = `arn:aws:events:us-east-1:${ACCOUNT}:rule/r`;
  const stmt = (s: Record<string, unknown>) => JSON.stringify({ Version: '2012-10-17', Statement: [s] });
  const base = {
    Effect: 'Allow',
    Principal: { Service: 'events.amazonaws.com' },
    Action: 'lambda:InvokeFunction',
  };

  it('evaluates the resource policy AddPermission writes', () => {
    expect(
      policyAllowsRule(
        stmt({ ...base, Condition: { ArnLike: { 'AWS:SourceArn': ruleArn } } }),
        ruleArn,
        ACCOUNT,
      ),
    ).toBe(true);
    expect(
      policyAllowsRule(
        stmt({ ...base, Condition: { ArnLike: { 'AWS:SourceArn': `${ruleArn}x` } } }),
        ruleArn,
        ACCOUNT,
      ),
    ).toBe(false);
    expect(
      policyAllowsRule(
        stmt({ ...base, Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:events:*:*:rule/*' } } }),
        ruleArn,
        ACCOUNT,
      ),
    ).toBe(true);
    expect(policyAllowsRule(stmt(base), ruleArn, ACCOUNT)).toBe(true);
    expect(
      policyAllowsRule(stmt({ ...base, Principal: { Service: 's3.amazonaws.com' } }), ruleArn, ACCOUNT),
    ).toBe(false);
    expect(
      policyAllowsRule(
        stmt({ ...base, Condition: { StringEquals: { 'AWS:SourceAccount': '999999999999' } } }),
        ruleArn,
        ACCOUNT,
      ),
    ).toBe(false);
  });

  it('builds the target input from Input / InputPath / the event', () => {
    const ev = { source: 's', detail: { a: [{ b: 1 }] } } as unknown as EventBridgeEvent;
    expect(targetInput({ Id: 't', Arn: 'x' }, ev)).toBe(ev);
    expect(targetInput({ Id: 't', Arn: 'x', Input: '{"c":2}' }, ev)).toEqual({ c: 2 });
    expect(targetInput({ Id: 't', Arn: 'x', InputPath: '$.detail.a[0].b' }, ev)).toBe(1);
    expect(() => targetInput({ Id: 't', Arn: 'x', InputPath: '$..b' }, ev)).toThrow(/JSONPath subset/);
  });
});
