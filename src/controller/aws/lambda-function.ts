// The sync function. Code is updated only when the bundle's SHA-256 differs from CodeSha256, the
// configuration only in the fields that differ, so a steady state makes no writes and does not
// bump LastModified. Lambda runs one update at a time: while one is in progress we requeue.

import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  type FunctionConfiguration,
  GetFunctionCommand,
  type GetFunctionCommandOutput,
  GetFunctionEventInvokeConfigCommand,
  type LambdaClient,
  PutFunctionEventInvokeConfigCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type UpdateFunctionConfigurationCommandInput,
} from '@aws-sdk/client-lambda';
import { type OwnerRef, ownedBy } from '../naming.ts';
import type { AwsClients } from './clients.ts';
import type { DesiredFunction } from './desired.ts';
import { aws, isNotFound, NotOursError, RetryLaterError } from './errors.ts';
import { diffTags } from './tags.ts';

export interface FunctionResult {
  arn: string;
  changed: boolean;
  /** Active with no update in progress: it can be invoked now. False right after a create or update. */
  ready: boolean;
  /** Created by this pass. */
  created?: boolean;
}

const KIND = 'Lambda function';
const UPDATE_POLL_MS = 3_000;

export async function ensureFunction(
  clients: Pick<AwsClients, 'lambda'>,
  desired: DesiredFunction,
  owner: OwnerRef,
): Promise<FunctionResult> {
  const { lambda } = clients;
  const FunctionName = desired.name;
  const ctx = (operation: string) => ({ operation, resource: FunctionName });
  const current = await getFunction(lambda, FunctionName);
  if (current === undefined) {
    const created = await aws(ctx('CreateFunction'), () =>
      lambda.send(new CreateFunctionCommand(createInput(desired))),
    );
    return { arn: created.FunctionArn ?? desired.arn, changed: true, ready: isReady(created), created: true };
  }
  if (!ownedBy(current.Tags, owner)) throw new NotOursError(KIND, ctx('GetFunction'));
  const config = current.Configuration ?? {};
  const arn = config.FunctionArn ?? desired.arn;
  if (!isReady(config)) throw updating(FunctionName, config);

  let changed = false;
  const tags = diffTags(desired.tags, current.Tags);
  if (Object.keys(tags.set).length > 0) {
    await aws(ctx('TagResource'), () =>
      lambda.send(new TagResourceCommand({ Resource: arn, Tags: tags.set })),
    );
    changed = true;
  }
  if (tags.remove.length > 0) {
    await aws(ctx('UntagResource'), () =>
      lambda.send(new UntagResourceCommand({ Resource: arn, TagKeys: tags.remove })),
    );
    changed = true;
  }

  let latest: FunctionConfiguration = config;
  const update = configurationDiff(desired, config);
  if (update !== undefined) {
    latest = await aws(ctx('UpdateFunctionConfiguration'), () =>
      lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName, ...update })),
    );
    changed = true;
  }
  if (codeDiffers(desired, config)) {
    // One update at a time: the code waits for the configuration update to finish (next pass).
    if (!isReady(latest)) throw updating(FunctionName, latest);
    latest = await aws(ctx('UpdateFunctionCode'), () =>
      lambda.send(
        new UpdateFunctionCodeCommand({
          FunctionName,
          ZipFile: desired.code.zip,
          Architectures: [desired.architecture],
        }),
      ),
    );
    changed = true;
  }
  return { arn, changed, ready: isReady(latest) };
}

/**
 * Lambda's handling of an asynchronous invocation whose run failed: retries, how long it may wait
 * for them, where it goes after the last one. Read and compared first, so a steady state writes
 * nothing; written whole (Put replaces, so a field set by hand is reset to ours). Deleted with the
 * function.
 */
export async function ensureInvokeConfig(
  clients: Pick<AwsClients, 'lambda'>,
  desired: DesiredFunction,
  fn: { created?: boolean | undefined },
): Promise<{ changed: boolean }> {
  const { lambda } = clients;
  const FunctionName = desired.name;
  const want = desired.invokeConfig;
  // A function created in this pass has none yet: no need to ask.
  const current = fn.created
    ? undefined
    : await aws({ operation: 'GetFunctionEventInvokeConfig', resource: FunctionName }, () =>
        lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName })),
      ).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
  if (
    current !== undefined &&
    current.MaximumRetryAttempts === want.maximumRetryAttempts &&
    current.MaximumEventAgeInSeconds === want.maximumEventAgeInSeconds &&
    (current.DestinationConfig?.OnFailure?.Destination || undefined) === want.onFailureDestination &&
    !current.DestinationConfig?.OnSuccess?.Destination
  )
    return { changed: false };
  await aws({ operation: 'PutFunctionEventInvokeConfig', resource: FunctionName }, () =>
    lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName,
        MaximumRetryAttempts: want.maximumRetryAttempts,
        MaximumEventAgeInSeconds: want.maximumEventAgeInSeconds,
        DestinationConfig: want.onFailureDestination
          ? { OnFailure: { Destination: want.onFailureDestination } }
          : {},
      }),
    ),
  );
  return { changed: true };
}

/** Deletes the function (its resource policy, hence the EventBridge permission, goes with it). */
export async function deleteFunction(
  clients: Pick<AwsClients, 'lambda'>,
  names: { functionName: string },
  owner: OwnerRef,
): Promise<{ gone: boolean }> {
  const { lambda } = clients;
  const FunctionName = names.functionName;
  const current = await getFunction(lambda, FunctionName);
  if (current === undefined) return { gone: true };
  if (!ownedBy(current.Tags, owner))
    throw new NotOursError(KIND, { operation: 'GetFunction', resource: FunctionName });
  await aws({ operation: 'DeleteFunction', resource: FunctionName }, () =>
    lambda.send(new DeleteFunctionCommand({ FunctionName })),
  ).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  return { gone: (await getFunction(lambda, FunctionName)) === undefined };
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

function createInput(desired: DesiredFunction) {
  return {
    FunctionName: desired.name,
    Role: desired.roleArn,
    Runtime: desired.runtime as FunctionConfiguration['Runtime'],
    Handler: desired.handler,
    Description: desired.description,
    Code: { ZipFile: desired.code.zip },
    PackageType: 'Zip' as const,
    Architectures: [desired.architecture],
    MemorySize: desired.memoryMb,
    Timeout: desired.timeoutSeconds,
    Environment: { Variables: desired.environment },
    ...(desired.vpc
      ? { VpcConfig: { SubnetIds: desired.vpc.subnetIds, SecurityGroupIds: desired.vpc.securityGroupIds } }
      : {}),
    Tags: desired.tags,
    Publish: false,
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

/**
 * Waits, within this pass, for a function just created or updated to become invocable: Lambda
 * takes a second or two (longer in a VPC). Cheaper than ending the pass and repeating every read
 * of the next one; gives up after `budgetMs` and lets the caller requeue.
 */
export async function waitUntilReady(
  clients: Pick<AwsClients, 'lambda'>,
  functionName: string,
  budgetMs: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<boolean> {
  let waited = 0;
  for (const delay of [500, 1_000, 1_500, 2_000, 3_000]) {
    if (waited + delay > budgetMs) return false;
    await sleep(delay);
    waited += delay;
    const current = await getFunction(clients.lambda, functionName);
    if (current?.Configuration && isReady(current.Configuration)) return true;
  }
  return false;
}

function isReady(config: FunctionConfiguration): boolean {
  return config.State !== 'Pending' && config.LastUpdateStatus !== 'InProgress';
}

function updating(FunctionName: string, config: FunctionConfiguration): RetryLaterError {
  const what = config.State === 'Pending' ? 'is being created' : 'has an update in progress';
  return new RetryLaterError(
    'FunctionUpdating',
    `Lambda function ${FunctionName} ${what}`,
    { operation: 'GetFunction', resource: FunctionName },
    { afterMs: UPDATE_POLL_MS },
  );
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}
