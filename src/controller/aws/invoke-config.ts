// Lambda's handling of an asynchronous invocation whose run failed: retries, how long it may wait
// for them, where it goes after the last one. Written whole (Put replaces, so a field set by hand
// is reset to ours). Part of the function: deleted with it, never recorded on its own.

import {
  DeleteFunctionEventInvokeConfigCommand,
  type FunctionEventInvokeConfig,
  GetFunctionEventInvokeConfigCommand,
  PutFunctionEventInvokeConfigCommand,
} from '@aws-sdk/client-lambda';
import { isNotFound } from '../errors.ts';
import type { Manager } from '../manager.ts';
import { nameOfArn } from './arn.ts';
import type { AwsEnv } from './clients.ts';
import type { DesiredInvokeConfig } from './desired.ts';
import { aws } from './errors.ts';
import { lambdaOf } from './lambda-function.ts';

export interface InvokeConfigDesired extends DesiredInvokeConfig {
  functionArn: string;
}

export const invokeConfigManager: Manager<AwsEnv, string, InvokeConfigDesired, FunctionEventInvokeConfig> = {
  title: 'event invoke config of',
  id: (d) => d.functionArn,
  describe: nameOfArn,
  async read(env, arn) {
    const FunctionName = nameOfArn(arn);
    try {
      return await aws({ operation: 'GetFunctionEventInvokeConfig', resource: FunctionName }, () =>
        lambdaOf(env, arn).send(new GetFunctionEventInvokeConfigCommand({ FunctionName })),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  },
  create: (env, d) => put(env, d),
  diff(d, l) {
    const same =
      l.MaximumRetryAttempts === d.maximumRetryAttempts &&
      l.MaximumEventAgeInSeconds === d.maximumEventAgeInSeconds &&
      (l.DestinationConfig?.OnFailure?.Destination || undefined) === d.onFailureDestination &&
      !l.DestinationConfig?.OnSuccess?.Destination;
    return same ? [] : ['invokeConfig'];
  },
  update: (env, d) => put(env, d),
  async delete(env, _l, arn) {
    const FunctionName = nameOfArn(arn);
    await aws({ operation: 'DeleteFunctionEventInvokeConfig', resource: FunctionName }, () =>
      lambdaOf(env, arn).send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName })),
    );
  },
};

function put(env: AwsEnv, d: InvokeConfigDesired): Promise<FunctionEventInvokeConfig> {
  const FunctionName = nameOfArn(d.functionArn);
  return aws({ operation: 'PutFunctionEventInvokeConfig', resource: FunctionName }, () =>
    lambdaOf(env, d.functionArn).send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName,
        MaximumRetryAttempts: d.maximumRetryAttempts,
        MaximumEventAgeInSeconds: d.maximumEventAgeInSeconds,
        DestinationConfig: d.onFailureDestination
          ? { OnFailure: { Destination: d.onFailureDestination } }
          : {},
      }),
    ),
  );
}
