// The AWS SDK clients every ensure/delete gets. Passed in (never built inside a module) so the
// controller decides region, endpoint (AWS_ENDPOINT_URL, the test bed) and credentials in one place.

import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EKSClient } from '@aws-sdk/client-eks';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient, type IAMClientConfig } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

export interface AwsClients {
  iam: IAMClient;
  lambda: LambdaClient;
  events: EventBridgeClient;
  logs: CloudWatchLogsClient;
  eks: EKSClient;
  secretsManager: SecretsManagerClient;
}

export interface AwsClientOptions {
  /** Region of the SecretSync's secret: function, rule and log group are created there too. */
  region: string;
  /** Overrides every service's endpoint (the test bed); otherwise the SDK's default resolution. */
  endpoint?: string;
  credentials?: IAMClientConfig['credentials'];
  /** SDK-level retries of throttling and 5xx within one call; the reconcile's requeue handles the rest. */
  maxAttempts?: number;
}

export function createAwsClients(options: AwsClientOptions): AwsClients {
  const config = {
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    maxAttempts: options.maxAttempts ?? 3,
  };
  return {
    iam: new IAMClient(config),
    lambda: new LambdaClient(config),
    events: new EventBridgeClient(config),
    logs: new CloudWatchLogsClient(config),
    eks: new EKSClient(config),
    secretsManager: new SecretsManagerClient(config),
  };
}
