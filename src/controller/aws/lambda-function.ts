// The sync function. Code is updated only when the bundle's SHA-256 differs from CodeSha256, the
// configuration only in the fields that differ, so a steady state makes no writes and does not
// bump LastModified. Lambda runs one update at a time: while one is in progress the pass is retried.
// Health is Lambda's State and LastUpdateStatus (docs: "Lambda function states"): a Failed function
// must be deleted and created again; an Inactive one wakes when invoked; a failed update leaves the
// previous configuration running, and is applied again.

import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  type FunctionConfiguration,
  GetFunctionCommand,
  type GetFunctionCommandOutput,
  type LambdaClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type UpdateFunctionConfigurationCommandInput,
} from '@aws-sdk/client-lambda';
import { isNotFound, RetryLaterError } from '../errors.ts';
import { type Health, type Manager, READY, recordedByArn } from '../manager.ts';
import { ownedBy } from '../naming.ts';
import { nameOfArn, regionOfArn } from './arn.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredFunction } from './desired.ts';
import { aws } from './errors.ts';
import type { Tags } from './tags.ts';

export interface LatestFunction {
  config: FunctionConfiguration;
  tags: Tags | undefined;
}

export const lambdaOf = (env: AwsEnv, arn: string): LambdaClient => env.clients(regionOfArn(arn)).lambda;

export const functionManager: Manager<AwsEnv, string, DesiredFunction, LatestFunction> = {
  title: 'Lambda function',
  recorded: recordedByArn('Function'),
  id: (d) => d.arn,
  describe: nameOfArn,
  async read(env, arn) {
    const out = await getFunction(lambdaOf(env, arn), nameOfArn(arn));
    return out?.Configuration ? { config: out.Configuration, tags: out.Tags } : undefined;
  },
  owned: (l, owner) => ownedBy(l.tags, owner),
  async create(env, d) {
    const config = await aws({ operation: 'CreateFunction', resource: d.name }, () =>
      lambdaOf(env, d.arn).send(new CreateFunctionCommand(createInput(d))),
    );
    return { config, tags: d.tags };
  },
  diff: (d, l) => functionDiff(d, l.config),
  async update(env, d, l, fields) {
    const lambda = lambdaOf(env, d.arn);
    const FunctionName = d.name;
    let latest = l.config;
    if (fields.includes('configuration')) {
      const update = configurationDiff(d, l.config) ?? configurationOf(d);
      latest = await aws({ operation: 'UpdateFunctionConfiguration', resource: FunctionName }, () =>
        lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName, ...update })),
      );
    }
    if (fields.includes('code')) {
      // One update at a time: the code waits for the configuration update to finish (next pass).
      if (healthOf(latest).state === 'busy') {
        throw new RetryLaterError(
          'FunctionUpdating',
          `Lambda function ${FunctionName} has an update in progress; its code follows`,
          { operation: 'UpdateFunctionCode', resource: FunctionName },
          { afterMs: 3_000 },
        );
      }
      latest = await aws({ operation: 'UpdateFunctionCode', resource: FunctionName }, () =>
        lambda.send(
          new UpdateFunctionCodeCommand({
            FunctionName,
            ZipFile: d.code.zip,
            Architectures: [d.architecture],
          }),
        ),
      );
    }
    return { config: latest, tags: l.tags };
  },
  tags: {
    desired: (d) => d.tags,
    of: (l) => l.tags,
    async write(env, l, diff) {
      const arn = l.config.FunctionArn as string;
      const lambda = lambdaOf(env, arn);
      const ctx = (operation: string) => ({ operation, resource: l.config.FunctionName });
      if (Object.keys(diff.set).length > 0) {
        await aws(ctx('TagResource'), () =>
          lambda.send(new TagResourceCommand({ Resource: arn, Tags: diff.set })),
        );
      }
      if (diff.remove.length > 0) {
        await aws(ctx('UntagResource'), () =>
          lambda.send(new UntagResourceCommand({ Resource: arn, TagKeys: diff.remove })),
        );
      }
    },
  },
  health: (l) => healthOf(l.config),
  // Its resource policy (the EventBridge permission) and event invoke config go with it.
  async delete(env, _l, arn) {
    const FunctionName = nameOfArn(arn);
    await aws({ operation: 'DeleteFunction', resource: FunctionName }, () =>
      lambdaOf(env, arn).send(new DeleteFunctionCommand({ FunctionName })),
    );
  },
};

/**
 * The fields to update: 'configuration', 'code'. From GetFunction or a ListFunctions entry (which
 * lacks LastUpdateStatus: a failed update is then seen by the deep check).
 */
export function functionDiff(d: DesiredFunction, config: FunctionConfiguration): string[] {
  const fields: string[] = [];
  // A failed update left the previous configuration running: apply ours again, whole.
  if (configurationDiff(d, config) !== undefined || config.LastUpdateStatus === 'Failed')
    fields.push('configuration');
  if (codeDiffers(d, config)) fields.push('code');
  return fields;
}

export function healthOf(config: FunctionConfiguration): Health {
  if (config.State === 'Pending') return { state: 'busy', message: 'is being created' };
  if (config.State === 'Failed') {
    return {
      state: 'failed',
      code: config.StateReasonCode ?? 'Failed',
      message: config.StateReason ?? 'Lambda reports the function as Failed',
      recreate: true,
    };
  }
  if (config.State === 'Inactive') {
    return {
      state: 'inactive',
      code: config.StateReasonCode ?? 'Idle',
      message: config.StateReason ?? 'Lambda reclaimed its resources after a long idle time',
    };
  }
  if (config.LastUpdateStatus === 'InProgress')
    return { state: 'busy', message: 'has an update in progress' };
  if (config.LastUpdateStatus === 'Failed') {
    return {
      state: 'failed',
      code: config.LastUpdateStatusReasonCode ?? 'UpdateFailed',
      message: `its last update failed (${config.LastUpdateStatusReason ?? 'no reason given'}); the previous configuration still runs`,
      recreate: false,
    };
  }
  return READY;
}

async function getFunction(
  lambda: LambdaClient,
  FunctionName: string,
): Promise<GetFunctionCommandOutput | undefined> {
  try {
    return await aws({ operation: 'GetFunction', resource: FunctionName }, () =>
      lambda.send(new GetFunctionCommand({ FunctionName })),
    );
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function createInput(d: DesiredFunction) {
  return {
    FunctionName: d.name,
    Code: { ZipFile: d.code.zip },
    PackageType: 'Zip' as const,
    Architectures: [d.architecture],
    ...configurationOf(d),
    Tags: d.tags,
    Publish: false,
  };
}

/** Every field UpdateFunctionConfiguration takes that we manage. */
function configurationOf(d: DesiredFunction) {
  return {
    Role: d.roleArn,
    Runtime: d.runtime as FunctionConfiguration['Runtime'],
    Handler: d.handler,
    Description: d.description,
    MemorySize: d.memoryMb,
    Timeout: d.timeoutSeconds,
    Environment: { Variables: d.environment },
    ...(d.vpc ? { VpcConfig: { SubnetIds: d.vpc.subnetIds, SecurityGroupIds: d.vpc.securityGroupIds } } : {}),
  };
}

/** The fields of UpdateFunctionConfiguration that differ, or undefined when none does. */
export function configurationDiff(
  desired: DesiredFunction,
  actual: FunctionConfiguration,
): Omit<UpdateFunctionConfigurationCommandInput, 'FunctionName'> | undefined {
  const update: Omit<UpdateFunctionConfigurationCommandInput, 'FunctionName'> = {};
  if (actual.Role !== desired.roleArn) update.Role = desired.roleArn;
  if (actual.Handler !== desired.handler) update.Handler = desired.handler;
  if (actual.Runtime !== desired.runtime)
    update.Runtime = desired.runtime as FunctionConfiguration['Runtime'];
  if (actual.MemorySize !== desired.memoryMb) update.MemorySize = desired.memoryMb;
  if (actual.Timeout !== desired.timeoutSeconds) update.Timeout = desired.timeoutSeconds;
  if ((actual.Description ?? '') !== desired.description) update.Description = desired.description;
  if (!sameRecord(actual.Environment?.Variables ?? {}, desired.environment)) {
    update.Environment = { Variables: desired.environment };
  }
  const subnets = desired.vpc?.subnetIds ?? [];
  const groups = desired.vpc?.securityGroupIds ?? [];
  if (
    !sameSet(actual.VpcConfig?.SubnetIds ?? [], subnets) ||
    !sameSet(actual.VpcConfig?.SecurityGroupIds ?? [], groups)
  ) {
    // Empty lists detach the function from its VPC.
    update.VpcConfig = { SubnetIds: subnets, SecurityGroupIds: groups };
  }
  return Object.keys(update).length > 0 ? update : undefined;
}

// Architectures can only change together with the code (UpdateFunctionCode), not the configuration.
function codeDiffers(desired: DesiredFunction, actual: FunctionConfiguration): boolean {
  const architecture = actual.Architectures?.[0] ?? 'x86_64';
  return actual.CodeSha256 !== desired.code.sha256 || architecture !== desired.architecture;
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}
