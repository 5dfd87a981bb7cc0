// ensureFunction / deleteFunction against a real moto server.
import {
  CreateFunctionCommand,
  GetFunctionCommand,
  type LambdaClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/config.ts';
import { TAG } from '../naming.ts';
import type { DesiredState } from './desired.ts';
import { NotOursError, RetryLaterError } from './errors.ts';
import { ensureRole } from './iam-role.ts';
import { deleteFunction, ensureFunction } from './lambda-function.ts';
import { functionCode, type MotoKit, sampleDesired, sampleSync, startMotoKit } from './test-support.ts';

let kit: MotoKit;
beforeAll(async () => {
  kit = await startMotoKit();
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const lambda = () => kit.clients.lambda;

/** A desired state whose role exists (moto, like Lambda, refuses a role it cannot find). */
async function fresh(name: string, settings = {}): Promise<DesiredState> {
  const d = sampleDesired({ sync: sampleSync({ name }), settings });
  await ensureRole(kit.clients, d.role, d.owner);
  kit.reset();
  return d;
}

describe('ensureFunction against moto', () => {
  it('creates the function from the zip, with its configuration, environment and tags', async () => {
    const d = await fresh('create');
    const result = await ensureFunction(kit.clients, d.function, d.owner);
    expect(result).toEqual({ arn: d.function.arn, changed: true, created: true, ready: true });
    const { Configuration: c, Tags } = await lambda().send(
      new GetFunctionCommand({ FunctionName: d.function.name }),
    );
    expect(c).toMatchObject({
      Role: d.role.arn,
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Architectures: ['arm64'],
      MemorySize: 128,
      Timeout: 30,
      CodeSha256: d.function.code.sha256,
    });
    expect(c?.Environment?.Variables?.[ENV.secretArn]).toBe(d.secretArn);
    expect(Tags).toEqual(d.function.tags);
    expect(kit.mutations()).toEqual(['CreateFunction']);
  });

  it('makes no writes on a second pass', async () => {
    const d = await fresh('steady');
    await ensureFunction(kit.clients, d.function, d.owner);
    kit.reset();
    expect(await ensureFunction(kit.clients, d.function, d.owner)).toEqual({
      arn: d.function.arn,
      changed: false,
      ready: true,
    });
    expect(kit.commands()).toEqual(['GetFunction']);
  });

  it('repairs memory drift with one UpdateFunctionConfiguration naming only MemorySize', async () => {
    const d = await fresh('memory');
    await ensureFunction(kit.clients, d.function, d.owner);
    await lambda().send(
      new UpdateFunctionConfigurationCommand({ FunctionName: d.function.name, MemorySize: 1024 }),
    );
    kit.reset();
    expect((await ensureFunction(kit.clients, d.function, d.owner)).changed).toBe(true);
    expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    expect(kit.calls.at(-1)?.input).toEqual({ FunctionName: d.function.name, MemorySize: 128 });
  });

  it('repairs an edited environment variable', async () => {
    const d = await fresh('env');
    await ensureFunction(kit.clients, d.function, d.owner);
    const Variables = {
      ...d.function.environment,
      [ENV.secretArn]: 'arn:aws:secretsmanager:us-east-1:1:secret:x-AAAAAA',
    };
    await lambda().send(
      new UpdateFunctionConfigurationCommand({ FunctionName: d.function.name, Environment: { Variables } }),
    );
    kit.reset();
    await ensureFunction(kit.clients, d.function, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    expect(kit.calls.at(-1)?.input).toEqual({
      FunctionName: d.function.name,
      Environment: { Variables: d.function.environment },
    });
  });

  it('updates the code only when the bundle hash changes', async () => {
    const d = await fresh('code');
    await ensureFunction(kit.clients, d.function, d.owner);
    const v2 = { ...d.function, code: functionCode('export const handler = async () => "v2";') };
    kit.reset();
    await ensureFunction(kit.clients, v2, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionCode']);
    const { Configuration } = await lambda().send(new GetFunctionCommand({ FunctionName: d.function.name }));
    expect(Configuration?.CodeSha256).toBe(v2.code.sha256);
    kit.reset();
    await ensureFunction(kit.clients, v2, d.owner);
    expect(kit.mutations()).toEqual([]);
  });

  it('changes the architecture through UpdateFunctionCode', async () => {
    const d = await fresh('arch');
    await ensureFunction(kit.clients, d.function, d.owner);
    kit.reset();
    await ensureFunction(kit.clients, { ...d.function, architecture: 'x86_64' }, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionCode']);
    expect(kit.calls.at(-1)?.input.Architectures).toEqual(['x86_64']);
  });

  it('repairs a removed tag, ignoring tags of others', async () => {
    const d = await fresh('tags');
    await ensureFunction(kit.clients, d.function, d.owner);
    await lambda().send(new UntagResourceCommand({ Resource: d.function.arn, TagKeys: [TAG.uid] }));
    await lambda().send(new TagResourceCommand({ Resource: d.function.arn, Tags: { team: 'payments' } }));
    kit.reset();
    await ensureFunction(kit.clients, d.function, d.owner);
    expect(kit.mutations()).toEqual(['TagResource']);
    expect(kit.calls.at(-1)?.input.Tags).toEqual({ [TAG.uid]: 'uid-1' });
    kit.reset();
    await ensureFunction(kit.clients, d.function, d.owner);
    expect(kit.mutations()).toEqual([]);
  });

  it('ignores tags AWS adds (aws:*)', async () => {
    const d = await fresh('aws-tags');
    await ensureFunction(kit.clients, d.function, d.owner);
    // Real Lambda refuses user-set aws: tags but shows those CloudFormation adds; moto lets us set one.
    await lambda().send(
      new TagResourceCommand({ Resource: d.function.arn, Tags: { 'aws:cloudformation:stack-name': 's' } }),
    );
    kit.reset();
    expect((await ensureFunction(kit.clients, d.function, d.owner)).changed).toBe(false);
    expect(kit.mutations()).toEqual([]);
  });

  it('attaches the function to the VPC, steady after, and detaches it when VPC settings go', async () => {
    const vpc = { subnetIds: ['subnet-b', 'subnet-a'], securityGroupIds: ['sg-1'] };
    const d = await fresh('vpc', { vpc });
    await ensureFunction(kit.clients, d.function, d.owner);
    const { Configuration } = await lambda().send(new GetFunctionCommand({ FunctionName: d.function.name }));
    expect(Configuration?.VpcConfig).toMatchObject({
      SubnetIds: ['subnet-a', 'subnet-b'],
      SecurityGroupIds: ['sg-1'],
    });
    kit.reset();
    await ensureFunction(kit.clients, d.function, d.owner);
    expect(kit.mutations()).toEqual([]);
    await ensureFunction(kit.clients, { ...d.function, vpc: undefined }, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    expect(kit.calls.at(-1)?.input).toEqual({
      FunctionName: d.function.name,
      VpcConfig: { SubnetIds: [], SecurityGroupIds: [] },
    });
  });

  it('waits (RetryLaterError) while Lambda still creates or updates the function', async () => {
    const d = await fresh('pending');
    await ensureFunction(kit.clients, d.function, d.owner);
    const restore = reportState(lambda(), 'GetFunction', { State: 'Active', LastUpdateStatus: 'InProgress' });
    try {
      kit.reset();
      const err = await ensureFunction(kit.clients, { ...d.function, memoryMb: 256 }, d.owner).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RetryLaterError);
      expect(err).toMatchObject({ reason: 'FunctionUpdating' });
      expect(kit.mutations()).toEqual([]);
    } finally {
      restore();
    }
  });

  it('updates configuration and code in successive passes when Lambda is still busy with the first', async () => {
    const d = await fresh('both');
    await ensureFunction(kit.clients, d.function, d.owner);
    const v2 = {
      ...d.function,
      memoryMb: 256,
      code: functionCode('export const handler = async () => "v2";'),
    };
    const restore = reportState(lambda(), 'UpdateFunctionConfiguration', {
      State: 'Active',
      LastUpdateStatus: 'InProgress',
    });
    try {
      kit.reset();
      const err = await ensureFunction(kit.clients, v2, d.owner).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'RetryLaterError', reason: 'FunctionUpdating' });
      expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    } finally {
      restore();
    }
    kit.reset();
    expect(await ensureFunction(kit.clients, v2, d.owner)).toMatchObject({ changed: true, ready: true });
    expect(kit.mutations()).toEqual(['UpdateFunctionCode']);
  });

  it('turns Lambda refusing a role it cannot assume yet into RetryLaterError(IamPropagation)', async () => {
    const d = sampleDesired({ sync: sampleSync({ name: 'no-role-yet' }) });
    const err = await ensureFunction(kit.clients, d.function, d.owner).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect(err).toMatchObject({ reason: 'IamPropagation', afterMs: 10_000 });
  });

  it('refuses a same-named function without our tags, and leaves it untouched', async () => {
    const d = await fresh('squatted');
    await lambda().send(
      new CreateFunctionCommand({
        FunctionName: d.function.name,
        Role: d.role.arn,
        Runtime: 'nodejs22.x',
        Handler: 'main.handler',
        Code: { ZipFile: d.function.code.zip },
      }),
    );
    kit.reset();
    await expect(ensureFunction(kit.clients, d.function, d.owner)).rejects.toThrow(NotOursError);
    await expect(deleteFunction(kit.clients, { functionName: d.function.name }, d.owner)).rejects.toThrow(
      NotOursError,
    );
    expect(kit.mutations()).toEqual([]);
    const { Configuration } = await lambda().send(new GetFunctionCommand({ FunctionName: d.function.name }));
    expect(Configuration?.Handler).toBe('main.handler');
  });
});

describe('deleteFunction against moto', () => {
  it('deletes the function; a second delete is a quiet no-op', async () => {
    const d = await fresh('doomed');
    await ensureFunction(kit.clients, d.function, d.owner);
    kit.reset();
    expect(await deleteFunction(kit.clients, { functionName: d.function.name }, d.owner)).toEqual({
      gone: true,
    });
    expect(kit.mutations()).toEqual(['DeleteFunction']);
    kit.reset();
    expect(await deleteFunction(kit.clients, { functionName: d.function.name }, d.owner)).toEqual({
      gone: true,
    });
    expect(kit.commands()).toEqual(['GetFunction']);
  });
});

// Rewrites the function state in one command's answers on the way back, as Lambda reports it while
// an update runs (moto finishes every create and update at once).
function reportState(
  client: LambdaClient,
  command: 'GetFunction' | 'UpdateFunctionConfiguration',
  state: { State: string; LastUpdateStatus: string },
): () => void {
  const name = 'testReportState';
  client.middlewareStack.add(
    (next, ctx) => async (args) => {
      const out = await next(args);
      if (ctx.commandName !== `${command}Command`) return out;
      const output = out.output as unknown as { Configuration?: Record<string, unknown> } & Record<
        string,
        unknown
      >;
      Object.assign(output.Configuration ?? output, state);
      return out;
    },
    { step: 'initialize', name },
  );
  return () => client.middlewareStack.remove(name);
}
