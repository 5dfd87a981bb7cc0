import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AwsEndpoint } from './aws-types.ts';
import { type FrontDoor, startFrontDoor } from './front-door.ts';
import { LambdaRunner } from './lambda-runner.ts';
import {
  clearFunctionStates,
  FunctionStateStore,
  functionStatesControl,
  functionStatesInterceptor,
  setFunctionState,
} from './lambda-states.ts';
import { listFidelity } from './list-fidelity.ts';
import { startMoto } from './moto.ts';
import { LAMBDA_TRUST, makeZip } from './test-front-door.ts';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'AKIASTATESTEST000001', secretAccessKey: 'x' };
const ZIP = makeZip({ 'index.mjs': 'export const handler = async () => ({ ran: true });' });

let dir: string;
let moto: { url: string; stop(): Promise<void> };
let frontDoor: FrontDoor;
let runner: LambdaRunner;
let roleArn: string;
const store = new FunctionStateStore({ defaultRegion: REGION });
const clients = new Map<string, LambdaClient>();
const lambda = (region = REGION) => {
  let c = clients.get(region);
  if (!c) {
    c = new LambdaClient({ endpoint: frontDoor.url, region, credentials: CREDENTIALS, maxAttempts: 1 });
    clients.set(region, c);
  }
  return c;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lambda-states-'));
  moto = await startMoto({ logsDir: dir });
  frontDoor = await startFrontDoor({ motoUrl: moto.url });
  const endpoint: AwsEndpoint = {
    url: frontDoor.url,
    motoUrl: moto.url,
    region: REGION,
    accountId: ACCOUNT,
    credentials: CREDENTIALS,
  };
  // Mounted as index.ts mounts them: the runner (Invoke, code capture) first, then the states; ListFunctions
  // is list-fidelity.ts's, as in the test bed.
  runner = new LambdaRunner({ endpoint, functionStates: store, asyncRetryDelaysMs: [10, 10] });
  frontDoor.use(runner.interceptor);
  frontDoor.use(functionStatesInterceptor({ motoUrl: moto.url, accountId: ACCOUNT, store }));
  frontDoor.use(listFidelity({ motoUrl: moto.url }));
  frontDoor.control('/_testbed/function-state', functionStatesControl(store));
  const iam = new IAMClient({ endpoint: moto.url, region: REGION, credentials: CREDENTIALS });
  const { Role } = await iam.send(
    new CreateRoleCommand({ RoleName: 'states-fn', AssumeRolePolicyDocument: LAMBDA_TRUST }),
  );
  roleArn = Role!.Arn!;
}, 60_000);

afterEach(() => clearFunctionStates(frontDoor.url));

afterAll(async () => {
  for (const c of clients.values()) c.destroy();
  await runner?.close();
  await frontDoor?.close();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const createFn = (name: string, region = REGION) =>
  lambda(region).send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs24.x',
      Role: roleArn,
      Handler: 'index.handler',
      Code: { ZipFile: ZIP },
      Timeout: 10,
    }),
  );
const invoke = (name: string, type?: 'Event') =>
  lambda().send(new InvokeCommand({ FunctionName: name, ...(type ? { InvocationType: type } : {}) }));
const config = async (name: string, region = REGION) =>
  (await lambda(region).send(new GetFunctionCommand({ FunctionName: name }))).Configuration;

/** The SDK error as the product sees it. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the call to fail');
}
const conflict = (state: string) => ({
  name: 'ResourceConflictException',
  status: 409,
  message: `The operation cannot be performed at this time. The function is currently in the following state: ${state}`,
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

describe('Lambda function states on demand', () => {
  it('shows an override in every configuration answer, for that region only, until cleared', async () => {
    await createFn('shown');
    await createFn('shown', 'eu-west-1');
    // What moto says by itself; the baseline the override must visibly change.
    expect(await config('shown')).toMatchObject({ State: 'Active', LastUpdateStatus: 'Successful' });

    const set = await setFunctionState(frontDoor.url, {
      functionName: 'shown',
      state: 'Inactive',
      lastUpdateStatus: 'Failed',
      lastUpdateStatusReasonCode: 'SubnetOutOfIPAddresses',
      lastUpdateStatusReason: 'no free IP',
    });
    expect(set).toMatchObject({ region: REGION, functionName: 'shown', wakeMs: 2000 });
    const expected = {
      FunctionName: 'shown',
      State: 'Inactive',
      StateReasonCode: 'Idle',
      LastUpdateStatus: 'Failed',
      LastUpdateStatusReasonCode: 'SubnetOutOfIPAddresses',
      LastUpdateStatusReason: 'no free IP',
    };
    expect(await config('shown')).toMatchObject(expected);
    expect(await lambda().send(new GetFunctionConfigurationCommand({ FunctionName: 'shown' }))).toMatchObject(
      expected,
    );
    // ListFunctions leaves the state to GetFunction, overridden or not.
    const { Functions } = await lambda().send(new ListFunctionsCommand({}));
    const listed = Functions?.find((f) => f.FunctionName === 'shown');
    expect(listed).toBeDefined();
    for (const field of Object.keys(expected).filter((k) => k !== 'FunctionName'))
      expect(listed, field).not.toHaveProperty(field);
    // Same name, other region: another function, untouched.
    expect(await config('shown', 'eu-west-1')).toMatchObject({
      State: 'Active',
      LastUpdateStatus: 'Successful',
    });

    await clearFunctionStates(frontDoor.url);
    expect(await config('shown')).toMatchObject({ State: 'Active', LastUpdateStatus: 'Successful' });
  });

  it('Failed: invokes (sync, Event, routed) and updates answer 409; delete clears it; a new function starts clean', async () => {
    await createFn('broken');
    await setFunctionState(frontDoor.url, { functionName: 'broken', state: 'Failed' });
    expect(await config('broken')).toMatchObject({ State: 'Failed', StateReasonCode: 'InternalError' });

    expect(await failure(invoke('broken'))).toEqual(conflict('Failed'));
    expect(await failure(invoke('broken', 'Event'))).toEqual(conflict('Failed'));
    // The event router's way in: straight to the runner, not through the front door.
    const routed = await runner.invokeAsync('broken', {});
    expect(routed).toMatchObject({ ok: false, attempts: [], error: conflict('Failed').message });

    expect(
      await failure(
        lambda().send(new UpdateFunctionConfigurationCommand({ FunctionName: 'broken', Timeout: 20 })),
      ),
    ).toEqual(conflict('Failed'));
    expect(
      await failure(lambda().send(new UpdateFunctionCodeCommand({ FunctionName: 'broken', ZipFile: ZIP }))),
    ).toEqual(conflict('Failed'));
    expect((await config('broken'))?.Timeout).toBe(10); // the refused update never reached moto

    await lambda().send(new DeleteFunctionCommand({ FunctionName: 'broken' }));
    expect(store.get(REGION, 'broken')).toBeUndefined();
    await createFn('broken');
    expect(await config('broken')).toMatchObject({ State: 'Active' });
    expect(new TextDecoder().decode((await invoke('broken')).Payload)).toBe('{"ran":true}');
  }, 30_000);

  it('Inactive: an invoke fails and restores the function (Pending, Restoring) for wakeMs, then it runs', async () => {
    await createFn('sleepy');
    await setFunctionState(frontDoor.url, { functionName: 'sleepy', state: 'Inactive', wakeMs: 600 });
    expect(await failure(invoke('sleepy', 'Event'))).toEqual(conflict('Inactive'));
    expect(await config('sleepy')).toMatchObject({ State: 'Pending', StateReasonCode: 'Restoring' });
    expect(await failure(invoke('sleepy'))).toEqual(conflict('Pending'));
    const waited = await until('Active again', async () => (await config('sleepy'))?.State === 'Active');
    expect(waited).toBeGreaterThan(300);
    expect(store.get(REGION, 'sleepy')).toBeUndefined();
    expect((await invoke('sleepy')).StatusCode).toBe(200);
  }, 30_000);

  it('Inactive: UpdateFunctionConfiguration goes through and wakes the function', async () => {
    await createFn('dozing');
    await setFunctionState(frontDoor.url, { functionName: 'dozing', state: 'Inactive', wakeMs: 300 });
    const updated = await lambda().send(
      new UpdateFunctionConfigurationCommand({ FunctionName: 'dozing', Timeout: 20 }),
    );
    expect(updated).toMatchObject({ Timeout: 20, State: 'Pending', StateReasonCode: 'Restoring' });
    await until('Active again', async () => (await config('dozing'))?.State === 'Active');
    expect((await config('dozing'))?.Timeout).toBe(20);
  });

  it('LastUpdateStatus InProgress: updates answer 409, invokes still run the current code', async () => {
    await createFn('updating');
    await setFunctionState(frontDoor.url, { functionName: 'updating', lastUpdateStatus: 'InProgress' });
    const err = await failure(
      lambda().send(new UpdateFunctionCodeCommand({ FunctionName: 'updating', ZipFile: ZIP })),
    );
    expect(err).toEqual({
      name: 'ResourceConflictException',
      status: 409,
      message: `The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:${REGION}:${ACCOUNT}:function:updating`,
    });
    expect((await invoke('updating')).StatusCode).toBe(200);
  }, 30_000);

  it('refuses a malformed override with 400', async () => {
    await expect(
      // biome-ignore lint/suspicious/noExplicitAny: a state the type does not allow, on purpose
      setFunctionState(frontDoor.url, { functionName: 'x', state: 'Sleeping' as any }),
    ).rejects.toThrow(/400 state must be one of/);
    await expect(setFunctionState(frontDoor.url, { functionName: 'x' })).rejects.toThrow(
      /400 state or lastUpdateStatus is required/,
    );
    expect(store.size).toBe(0);
  });
});
