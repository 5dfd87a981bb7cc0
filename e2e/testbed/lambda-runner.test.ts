import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  CreateFunctionCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
  UpdateFunctionCodeCommand,
} from '@aws-sdk/client-lambda';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionNameOf, LambdaRunner } from './lambda-runner.ts';
import { LAMBDA_TRUST, makeZip, startTestAws, type TestAws } from './test-front-door.ts';

let aws: TestAws;
let runner: LambdaRunner;
let lambda: LambdaClient;
let roleArn: string;

beforeAll(async () => {
  aws = await startTestAws();
  runner = new LambdaRunner({ endpoint: aws.endpoint, asyncRetryDelaysMs: [10, 10] });
  aws.use(runner.interceptor);
  const cfg = {
    endpoint: aws.endpoint.url,
    region: aws.endpoint.region,
    credentials: aws.endpoint.credentials,
  };
  lambda = new LambdaClient(cfg);
  const iam = new IAMClient(cfg);
  const role = await iam.send(
    new CreateRoleCommand({ RoleName: 'fn-role', AssumeRolePolicyDocument: LAMBDA_TRUST }),
  );
  roleArn = role.Role!.Arn!;
}, 60_000);

afterAll(async () => {
  await runner?.close();
  await aws?.stop();
});

async function createFn(
  name: string,
  files: Record<string, string>,
  opts: { handler?: string; timeout?: number; env?: Record<string, string> } = {},
) {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs24.x',
      Role: roleArn,
      Handler: opts.handler ?? 'index.handler',
      Code: { ZipFile: makeZip(files) },
      Timeout: opts.timeout ?? 10,
      ...(opts.env ? { Environment: { Variables: opts.env } } : {}),
    }),
  );
}

const invoke = (name: string, event: unknown = {}, type?: 'Event' | 'DryRun') =>
  lambda.send(
    new InvokeCommand({
      FunctionName: name,
      Payload: new TextEncoder().encode(JSON.stringify(event)),
      ...(type ? { InvocationType: type } : {}),
    }),
  );
const payloadOf = (out: InvokeCommandOutput) =>
  JSON.parse(new TextDecoder().decode(out.Payload)) as Record<string, unknown>;

const ECHO = `
export const handler = async (event, context) => ({
  event,
  env: { ...process.env },
  context: {
    functionName: context.functionName,
    awsRequestId: context.awsRequestId,
    invokedFunctionArn: context.invokedFunctionArn,
    remaining: context.getRemainingTimeInMillis(),
  },
});`;

describe('functionNameOf', () => {
  it('takes the name out of names, qualified names and ARNs', () => {
    expect(functionNameOf('f')).toBe('f');
    expect(functionNameOf('f:live')).toBe('f');
    expect(functionNameOf('arn:aws:lambda:us-east-1:123456789012:function:f:3')).toBe('f');
    expect(functionNameOf('123456789012:function:f')).toBe('f');
    expect(functionNameOf(encodeURIComponent('arn:aws:lambda:us-east-1:123456789012:function:f'))).toBe('f');
  });
});

describe('LambdaRunner behind the front door', () => {
  it('runs a created function with RequestResponse and returns its result', async () => {
    await createFn('echo', { 'index.mjs': ECHO }, { env: { MY_SETTING: 'on' } });
    const out = await invoke('echo', { hello: 'world' });
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBeUndefined();
    expect(out.ExecutedVersion).toBe('$LATEST');
    const p = payloadOf(out) as { event: unknown; context: Record<string, unknown> };
    expect(p.event).toEqual({ hello: 'world' });
    expect(p.context.functionName).toBe('echo');
    expect(p.context.invokedFunctionArn).toBe('arn:aws:lambda:us-east-1:123456789012:function:echo');
    expect(p.context.awsRequestId).toBe(out.$metadata.requestId);
    expect(p.context.remaining).toBeGreaterThan(8_000);
    expect(p.context.remaining).toBeLessThanOrEqual(10_000);
  });

  it("gives the function only its own environment, the runtime's variables and its role's credentials", async () => {
    process.env.SECRETSYNC_PARENT_ONLY = 'must-not-leak';
    try {
      const env = (payloadOf(await invoke('echo')) as { env: Record<string, string> }).env;
      expect(env.SECRETSYNC_PARENT_ONLY).toBeUndefined();
      expect(env.HOME).toBeUndefined();
      expect(env.MY_SETTING).toBe('on');
      expect(env).toMatchObject({
        AWS_REGION: 'us-east-1',
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_LAMBDA_FUNCTION_NAME: 'echo',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
        TZ: ':UTC',
        _HANDLER: 'index.handler',
        AWS_ENDPOINT_URL: aws.endpoint.url,
      });
      expect(env.LAMBDA_TASK_ROOT).toBeTruthy();
      expect(env.AWS_ACCESS_KEY_ID).not.toBe(aws.endpoint.credentials.accessKeyId);
      // The credentials are moto's AssumeRole credentials of the function's role, session = function name.
      const sts = new STSClient({
        endpoint: aws.endpoint.motoUrl,
        region: 'us-east-1',
        credentials: {
          accessKeyId: env.AWS_ACCESS_KEY_ID!,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY!,
          sessionToken: env.AWS_SESSION_TOKEN!,
        },
      });
      const me = await sts.send(new GetCallerIdentityCommand({}));
      expect(me.Arn).toBe('arn:aws:sts::123456789012:assumed-role/fn-role/echo');
    } finally {
      delete process.env.SECRETSYNC_PARENT_ONLY;
    }
  });

  it('reports a thrown error as X-Amz-Function-Error: Unhandled with the error payload', async () => {
    await createFn('thrower', {
      'index.mjs': `export const handler = async () => { throw new TypeError('boom'); };`,
    });
    const out = await invoke('thrower');
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBe('Unhandled');
    expect(payloadOf(out)).toMatchObject({ errorType: 'TypeError', errorMessage: 'boom' });
  });

  it("stops the function at its Timeout and reports 'Task timed out'", async () => {
    await createFn(
      'sleeper',
      { 'index.mjs': 'export const handler = () => new Promise((r) => setTimeout(r, 30_000));' },
      { timeout: 1 },
    );
    const started = Date.now();
    const out = await invoke('sleeper');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(out.FunctionError).toBe('Unhandled');
    const p = payloadOf(out);
    expect(p.errorType).toBe('Sandbox.Timedout');
    expect(p.errorMessage).toMatch(/Task timed out after 1\.00 seconds/);
    expect(runner.stats('sleeper').timeouts).toBe(1);
  });

  it('keeps module state in warm mode and starts fresh otherwise', async () => {
    await createFn('counter', {
      'index.mjs': 'let n = 0;\nexport const handler = async () => ({ n: ++n, pid: process.pid });',
    });
    const warm = [];
    for (let i = 0; i < 3; i++)
      warm.push(JSON.parse((await runner.invoke('counter', {}, { warm: true })).payload));
    expect(warm.map((w) => w.n)).toEqual([1, 2, 3]);
    expect(new Set(warm.map((w) => w.pid)).size).toBe(1);
    const cold = JSON.parse((await runner.invoke('counter', {})).payload);
    expect(cold.n).toBe(1);
    const s = runner.stats('counter');
    expect(s.invocations).toBe(4);
    expect(s.coldStarts).toBe(2);
    expect(s.durationsMs).toHaveLength(4);
  });

  it('starts a new environment when the code changes', async () => {
    await runner.invoke('counter', {}, { warm: true });
    await lambda.send(
      new UpdateFunctionCodeCommand({
        FunctionName: 'counter',
        ZipFile: makeZip({ 'index.mjs': 'export const handler = async () => ({ v: 2 });' }),
      }),
    );
    const r = await runner.invoke('counter', {}, { warm: true });
    expect(r.coldStart).toBe(true);
    expect(JSON.parse(r.payload)).toEqual({ v: 2 });
  });

  it('captures stdout/stderr as the function log, with console lines in the runtime format', async () => {
    await createFn('logger', {
      'index.mjs': `
        process.stdout.write(JSON.stringify({ level: 30, msg: 'init' }) + '\\n');
        export const handler = async () => {
          process.stdout.write(JSON.stringify({ level: 30, msg: 'synced', keys: 2 }) + '\\n');
          console.log('plain', 1);
          console.error('oops');
          return 'ok';
        };`,
    });
    const out = await invoke('logger');
    const id = out.$metadata.requestId;
    const lines = runner.logsFor('logger');
    const json = lines.flatMap((l) => (l.text.startsWith('{') ? [JSON.parse(l.text)] : []));
    expect(json.map((j) => j.msg)).toEqual(['init', 'synced']);
    expect(lines.every((l) => l.requestId === id)).toBe(true);
    expect(lines.find((l) => l.text.includes('plain'))?.text).toMatch(
      new RegExp(`^\\S+Z\\t${id}\\tINFO\\tplain 1$`),
    );
    expect(lines.find((l) => l.text.includes('oops'))?.text).toContain('\tERROR\toops');
    expect(lines.filter((l) => l.stream === 'platform').map((l) => l.text.split(' ')[0])).toEqual([
      'START',
      'END',
      'REPORT',
    ]);
  });

  it("reports the function's own peak memory as Max Memory Used, not the runner's", async () => {
    // The runner's process grows well past a small function's footprint first.
    const ballast = Buffer.alloc(200 * 1024 * 1024, 1);
    await createFn('memory', {
      'index.mjs': `
        let keep;
        export const handler = async (event) => {
          keep = Buffer.alloc(event.mb * 1024 * 1024, 1);
          return keep.length;
        };`,
    });
    await invoke('memory', { mb: 0 });
    await invoke('memory', { mb: 64 });
    expect(ballast[0]).toBe(1);
    const [small, large] = runner.stats('memory').maxRssMb;
    expect(process.resourceUsage().maxRSS / 1024).toBeGreaterThan(250);
    expect(small).toBeLessThan(100);
    expect(large! - small!).toBeGreaterThan(60);
    const report = runner.logsFor('memory').find((l) => l.text.startsWith('REPORT'))?.text;
    expect(report).toMatch(new RegExp(`Max Memory Used: ${Math.round(small!)} MB`));
  });

  it('loads CommonJS handlers in subdirectories and reports a missing handler as an init error', async () => {
    await createFn(
      'cjs',
      { 'src/app.js': 'module.exports.handlers = { main: async (e) => ({ got: e.x }) };' },
      { handler: 'src/app.handlers.main' },
    );
    expect(payloadOf(await invoke('cjs', { x: 7 }))).toEqual({ got: 7 });
    await createFn('nohandler', { 'index.mjs': 'export const other = () => 1;' });
    const out = await invoke('nohandler');
    expect(out.FunctionError).toBe('Unhandled');
    expect(payloadOf(out).errorType).toBe('Runtime.HandlerNotFound');
  });

  it('answers Event with 202 and runs in the background, retrying function errors twice', async () => {
    const ok = await invoke('echo', { async: true }, 'Event');
    expect(ok.StatusCode).toBe(202);
    const bad = await invoke('thrower', {}, 'Event');
    expect(bad.StatusCode).toBe(202);
    await runner.idle();
    const recs = runner.asyncInvocations();
    const echo = recs.find((r) => r.functionName === 'echo')!;
    expect(echo.ok).toBe(true);
    expect(echo.requestId).toBe(ok.$metadata.requestId);
    expect(JSON.parse(echo.attempts[0]!.payload).event).toEqual({ async: true });
    const thrower = recs.find((r) => r.functionName === 'thrower')!;
    expect(thrower.ok).toBe(false);
    expect(thrower.attempts).toHaveLength(3);
    expect(new Set(thrower.attempts.map((a) => a.requestId))).toEqual(new Set([bad.$metadata.requestId]));
  });

  it('answers DryRun with 204, and unknown functions with ResourceNotFoundException', async () => {
    expect((await invoke('echo', {}, 'DryRun')).StatusCode).toBe(204);
    await expect(invoke('no-such-function')).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 404 },
      message: expect.stringContaining(
        'Function not found: arn:aws:lambda:us-east-1:123456789012:function:no-such-function',
      ),
    });
  });
});
