// The Lambda function manager through the generic ensure / remove, against a real moto server.
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
import { NotOursError, RetryLaterError } from '../errors.ts';
import { ensure, remove } from '../manager.ts';
import { type Owner, TAG } from '../naming.ts';
import type { DesiredFunction, DesiredState } from './desired.ts';
import { roleManager } from './iam-role.ts';
import { functionManager } from './lambda-function.ts';
import { functionCode, type MotoKit, sampleDesired, sampleSync, startMotoKit } from './test-support.ts';

let kit: MotoKit;
beforeAll(async () => {
  kit = await startMotoKit();
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const lambda = () => kit.clients.lambda;
const ensureFunction = (d: DesiredFunction, owner: Owner) => ensure(functionManager, kit.env, d, owner);
const removeFunction = (arn: string, owner: Owner) => remove(functionManager, kit.env, arn, owner);
const READY = { state: 'ready' };

/** A desired state whose role exists (moto, like Lambda, refuses a role it cannot find). */
async function fresh(name: string, settings = {}): Promise<DesiredState> {
  const d = sampleDesired({ sync: sampleSync({ name }), settings });
  await ensure(roleManager, kit.env, d.role, d.owner);
  kit.reset();
  return d;
}

describe('Lambda function: ensure against moto', () => {
  it('creates the function from the zip, with its configuration, environment and tags', async () => {
    const d = await fresh('create');
    const result = await ensureFunction(d.function, d.owner);
    expect(result).toMatchObject({ changed: true, created: true, health: READY });
    expect(result.latest.config.FunctionArn).toBe(d.function.arn);
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
    await ensureFunction(d.function, d.owner);
    kit.reset();
    const again = await ensureFunction(d.function, d.owner);
    expect(again).toMatchObject({ changed: false, created: false, health: READY });
    expect(again.latest.config.FunctionArn).toBe(d.function.arn);
    expect(kit.commands()).toEqual(['GetFunction']);
  });

  it('repairs memory drift with one UpdateFunctionConfiguration naming only MemorySize', async () => {
    const d = await fresh('memory');
    await ensureFunction(d.function, d.owner);
    await lambda().send(
      new UpdateFunctionConfigurationCommand({ FunctionName: d.function.name, MemorySize: 1024 }),
    );
    kit.reset();
    expect((await ensureFunction(d.function, d.owner)).changed).toBe(true);
    expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    expect(kit.calls.at(-1)?.input).toEqual({ FunctionName: d.function.name, MemorySize: 128 });
  });

  it('repairs an edited environment variable', async () => {
    const d = await fresh('env');
    await ensureFunction(d.function, d.owner);
    const Variables = {
      ...d.function.environment,
      [ENV.secretArn]: 'arn:aws:secretsmanager:us-east-1:1:secret:x-AAAAAA',
    };
    await lambda().send(
      new UpdateFunctionConfigurationCommand({ FunctionName: d.function.name, Environment: { Variables } }),
    );
    kit.reset();
    await ensureFunction(d.function, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    expect(kit.calls.at(-1)?.input).toEqual({
      FunctionName: d.function.name,
      Environment: { Variables: d.function.environment },
    });
  });

  it('updates the code only when the bundle hash changes', async () => {
    const d = await fresh('code');
    await ensureFunction(d.function, d.owner);
    const v2 = { ...d.function, code: functionCode('export const handler = async () => "v2";') };
    kit.reset();
    await ensureFunction(v2, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionCode']);
    const { Configuration } = await lambda().send(new GetFunctionCommand({ FunctionName: d.function.name }));
    expect(Configuration?.CodeSha256).toBe(v2.code.sha256);
    kit.reset();
    await ensureFunction(v2, d.owner);
    expect(kit.mutations()).toEqual([]);
  });

  it('changes the architecture through UpdateFunctionCode', async () => {
    const d = await fresh('arch');
    await ensureFunction(d.function, d.owner);
    kit.reset();
    await ensureFunction({ ...d.function, architecture: 'x86_64' }, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionCode']);
    expect(kit.calls.at(-1)?.input.Architectures).toEqual(['x86_64']);
  });

  it('repairs a removed tag, ignoring tags of others', async () => {
    const d = await fresh('tags');
    await ensureFunction(d.function, d.owner);
    await lambda().send(new UntagResourceCommand({ Resource: d.function.arn, TagKeys: [TAG.uid] }));
    await lambda().send(new TagResourceCommand({ Resource: d.function.arn, Tags: { team: 'payments' } }));
    kit.reset();
    await ensureFunction(d.function, d.owner);
    expect(kit.mutations()).toEqual(['TagResource']);
    expect(kit.calls.at(-1)?.input.Tags).toEqual({ [TAG.uid]: 'uid-1' });
    kit.reset();
    await ensureFunction(d.function, d.owner);
    expect(kit.mutations()).toEqual([]);
  });

  it('ignores tags AWS adds (aws:*)', async () => {
    const d = await fresh('aws-tags');
    await ensureFunction(d.function, d.owner);
    // Real Lambda refuses user-set aws: tags but shows those CloudFormation adds; moto lets us set one.
    await lambda().send(
      new TagResourceCommand({ Resource: d.function.arn, Tags: { 'aws:cloudformation:stack-name': 's' } }),
    );
    kit.reset();
    expect((await ensureFunction(d.function, d.owner)).changed).toBe(false);
    expect(kit.mutations()).toEqual([]);
  });

  it('attaches the function to the VPC, steady after, and detaches it when VPC settings go', async () => {
    const vpc = { subnetIds: ['subnet-b', 'subnet-a'], securityGroupIds: ['sg-1'] };
    const d = await fresh('vpc', { vpc });
    await ensureFunction(d.function, d.owner);
    const { Configuration } = await lambda().send(new GetFunctionCommand({ FunctionName: d.function.name }));
    expect(Configuration?.VpcConfig).toMatchObject({
      SubnetIds: ['subnet-a', 'subnet-b'],
      SecurityGroupIds: ['sg-1'],
    });
    kit.reset();
    await ensureFunction(d.function, d.owner);
    expect(kit.mutations()).toEqual([]);
    await ensureFunction({ ...d.function, vpc: undefined }, d.owner);
    expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    expect(kit.calls.at(-1)?.input).toEqual({
      FunctionName: d.function.name,
      VpcConfig: { SubnetIds: [], SecurityGroupIds: [] },
    });
  });

  it('waits (RetryLaterError) while Lambda still creates or updates the function', async () => {
    const d = await fresh('pending');
    await ensureFunction(d.function, d.owner);
    const restore = reportState(lambda(), 'GetFunction', { State: 'Active', LastUpdateStatus: 'InProgress' });
    try {
      kit.reset();
      const err = await ensureFunction({ ...d.function, memoryMb: 256 }, d.owner).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RetryLaterError);
      // The generic ensure's answer to a busy resource: no update while another runs.
      expect(err).toMatchObject({ reason: 'Busy', afterMs: 3_000 });
      expect((err as Error).message).toMatch(/has an update in progress/);
      expect(kit.mutations()).toEqual([]);
    } finally {
      restore();
    }
  });

  it('updates configuration and code in successive passes when Lambda is still busy with the first', async () => {
    const d = await fresh('both');
    await ensureFunction(d.function, d.owner);
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
      const err = await ensureFunction(v2, d.owner).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'RetryLaterError', reason: 'FunctionUpdating' });
      expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
    } finally {
      restore();
    }
    kit.reset();
    expect(await ensureFunction(v2, d.owner)).toMatchObject({ changed: true, health: READY });
    expect(kit.mutations()).toEqual(['UpdateFunctionCode']);
  });

  it('deletes and creates again a function Lambda reports Failed, saying why', async () => {
    const d = await fresh('failed');
    await ensureFunction(d.function, d.owner);
    const restore = reportState(lambda(), 'GetFunction', {
      State: 'Failed',
      StateReasonCode: 'InvalidSubnet',
      StateReason: 'The subnet does not exist',
    });
    try {
      kit.reset();
      const out = await ensureFunction(d.function, d.owner);
      expect(out).toMatchObject({
        created: true,
        replaced: 'InvalidSubnet: The subnet does not exist',
        health: READY,
      });
      expect(kit.mutations()).toEqual(['DeleteFunction', 'CreateFunction']);
    } finally {
      restore();
    }
  });

  it('applies the whole configuration again after a failed update (the previous one still runs)', async () => {
    const d = await fresh('update-failed');
    await ensureFunction(d.function, d.owner);
    const restore = reportState(lambda(), 'GetFunction', { State: 'Active', LastUpdateStatus: 'Failed' });
    try {
      kit.reset();
      const out = await ensureFunction(d.function, d.owner);
      expect(out).toMatchObject({ created: false, changed: true, health: READY });
      expect(out.replaced).toBeUndefined();
      expect(kit.mutations()).toEqual(['UpdateFunctionConfiguration']);
      expect(kit.calls.at(-1)?.input).toEqual({
        FunctionName: d.function.name,
        Role: d.role.arn,
        Runtime: 'nodejs24.x',
        Handler: 'index.handler',
        Description: d.function.description,
        MemorySize: 128,
        Timeout: 30,
        Environment: { Variables: d.function.environment },
      });
    } finally {
      restore();
    }
  });

  it('turns Lambda refusing a role it cannot assume yet into RetryLaterError(IamPropagation)', async () => {
    const d = sampleDesired({ sync: sampleSync({ name: 'no-role-yet' }) });
    const err = await ensureFunction(d.function, d.owner).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect(err).toMatchObject({ reason: 'IamPropagation', afterMs: 5_000 });
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
    await expect(ensureFunction(d.function, d.owner)).rejects.toThrow(NotOursError);
    expect(await removeFunction(d.function.arn, d.owner)).toBe('not-ours');
    expect(kit.mutations()).toEqual([]);
    const { Configuration } = await lambda().send(new GetFunctionCommand({ FunctionName: d.function.name }));
    expect(Configuration?.Handler).toBe('main.handler');
  });
});

describe('Lambda function: remove against moto', () => {
  it('deletes the function; a second delete is a quiet no-op', async () => {
    const d = await fresh('doomed');
    await ensureFunction(d.function, d.owner);
    kit.reset();
    expect(await removeFunction(d.function.arn, d.owner)).toBe('gone');
    expect(kit.mutations()).toEqual(['DeleteFunction']);
    kit.reset();
    expect(await removeFunction(d.function.arn, d.owner)).toBe('gone');
    expect(kit.commands()).toEqual(['GetFunction']);
  });
});

// Rewrites the function state in one command's answers on the way back, as Lambda reports it while
// an update runs (moto finishes every create and update at once).
function reportState(
  client: LambdaClient,
  command: 'GetFunction' | 'UpdateFunctionConfiguration',
  state: Record<string, string>,
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
