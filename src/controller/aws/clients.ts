// The AWS SDK clients every ensure/delete gets. Passed in (never built inside a module) so the
// controller decides region, endpoint (AWS_ENDPOINT_URL, the test bed) and credentials in one place.

import { setTimeout as sleep } from 'node:timers/promises';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient, type IAMClientConfig } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { awsFenceMiddleware, type Fence } from '../fence.ts';
import type { AwsService, RateLimiters } from './rate-limit.ts';

export interface AwsClients {
  iam: IAMClient;
  lambda: LambdaClient;
  events: EventBridgeClient;
  logs: CloudWatchLogsClient;
  eks: EKSClient;
  secretsManager: SecretsManagerClient;
  /** Resource Groups Tagging API: the inventory's listing of our functions, rules and log groups. */
  tagging: ResourceGroupsTaggingAPIClient;
}

/**
 * What a manager gets: clients per region (function, rule and log group live with the secret,
 * access entries with the cluster) and the home region, for global services (IAM).
 */
export interface AwsEnv {
  home: string;
  clients(region: string): AwsClients;
}

/** An AwsEnv over one set of clients (tests, and a single-region setup). */
export const singleRegion = (clients: AwsClients, home: string): AwsEnv => ({ home, clients: () => clients });

export interface AwsClientOptions {
  /** Region of the SecretSync's secret: function, rule and log group are created there too. */
  region: string;
  /** Refuses writes outside the current leadership term (fence.ts). */
  fence?: Fence;
  /** Overrides every service's endpoint (the test bed); otherwise the SDK's default resolution. */
  endpoint?: string;
  credentials?: IAMClientConfig['credentials'];
  /**
   * SDK-level attempts per call (standard mode: full-jitter exponential backoff, 1 s base for
   * throttling, a retry quota per client that stops retrying when most calls fail). Kept at 3:
   * beyond that the work queue's per-key jittered backoff takes over, which frees the worker.
   */
  maxAttempts?: number;
  /** Client-side rate limits, applied to every attempt (AWS counts retries too). */
  limiters?: RateLimiters;
}

// Lambda's control-plane quota (15/s per region) counts every API call but these, which have their
// own, far larger ones (Invoke: concurrency; GetFunction and GetPolicy: 100/s): the lambda bucket
// leaves them out as AWS does.
const LAMBDA_OUTSIDE_CONTROL_PLANE_QUOTA = new Set([
  'InvokeCommand',
  'GetFunctionCommand',
  'GetPolicyCommand',
]);

/** The service each client talks to, as --aws-rate-limits names it. */
const SERVICE_OF: Record<keyof AwsClients, AwsService> = {
  iam: 'iam',
  lambda: 'lambda',
  events: 'events',
  logs: 'logs',
  eks: 'eks',
  secretsManager: 'secretsmanager',
  tagging: 'tagging',
};

export function createAwsClients(options: AwsClientOptions): AwsClients {
  const config = {
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    maxAttempts: options.maxAttempts ?? 3,
  };
  const clients: AwsClients = {
    iam: new IAMClient(config),
    lambda: new LambdaClient(config),
    events: new EventBridgeClient(config),
    logs: new CloudWatchLogsClient(config),
    eks: new EKSClient(config),
    secretsManager: new SecretsManagerClient(config),
    tagging: new ResourceGroupsTaggingAPIClient(config),
  };
  if (options.fence) {
    for (const client of Object.values(clients)) {
      (client.middlewareStack as { add: (mw: unknown, opts: unknown) => void }).add(
        awsFenceMiddleware(options.fence),
        { step: 'initialize', name: 'secretsyncLeadershipFence' },
      );
    }
  }
  const { limiters } = options;
  if (limiters) {
    for (const [key, client] of Object.entries(clients) as [
      keyof AwsClients,
      AwsClients[keyof AwsClients],
    ][]) {
      const service = SERVICE_OF[key];
      // After the retry middleware, so each attempt waits for its token; before signing, so a
      // long wait never sends a stale signature.
      (client.middlewareStack as { addRelativeTo: (mw: unknown, opts: unknown) => void }).addRelativeTo(
        (next: (a: unknown) => Promise<unknown>, ctx: { commandName?: string }) => async (args: unknown) => {
          if (service === 'lambda' && LAMBDA_OUTSIDE_CONTROL_PLANE_QUOTA.has(ctx.commandName ?? ''))
            return next(args);
          const waitMs = limiters.reserve(service, options.region);
          if (waitMs > 0) await sleep(waitMs);
          return next(args);
        },
        { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'secretsyncRateLimit' },
      );
    }
  }
  return clients;
}
