// Shared by the *.moto.test.ts files: a real moto (through the test bed's minimal front door, so the
// EKS access-entry emulation can sit in front of it), SDK clients that record every command they
// send, and a desired state for a sample SecretSync. Test-only; not imported by the controller.

import { createHash } from 'node:crypto';
import { makeZip, startTestAws, type TestAws } from '../../../e2e/testbed/test-front-door.ts';
import type { SecretSync } from '../../shared/secretsync.generated.ts';
import { type AwsClients, createAwsClients } from './clients.ts';
import {
  type ControllerSettings,
  type DesiredState,
  desiredState,
  type FunctionCode,
  withDefaults,
} from './desired.ts';

export interface RecordedCall {
  command: string;
  input: Record<string, unknown>;
}

export interface MotoKit {
  aws: TestAws;
  clients: AwsClients;
  calls: RecordedCall[];
  /** Names of the commands sent since the last reset, "Command" suffix dropped. */
  commands(): string[];
  /** The commands that are not reads (Get*, Describe*, List*). */
  mutations(): string[];
  reset(): void;
  stop(): Promise<void>;
}

export const ACCOUNT = '123456789012';

export async function startMotoKit(): Promise<MotoKit> {
  const aws = await startTestAws();
  const { url, region, credentials } = aws.endpoint;
  const clients = createAwsClients({ region, endpoint: url, credentials, maxAttempts: 1 });
  const calls: RecordedCall[] = [];
  recordCalls(clients, calls);
  const commands = () => calls.map((c) => c.command);
  return {
    aws,
    clients,
    calls,
    commands,
    mutations: () => commands().filter((c) => !/^(Get|Describe|List)/.test(c)),
    reset: () => {
      calls.length = 0;
    },
    stop: () => aws.stop(),
  };
}

interface WithMiddleware {
  middlewareStack: {
    add(
      mw: (
        next: (args: { input: Record<string, unknown> }) => Promise<unknown>,
        ctx: { commandName?: string },
      ) => (args: { input: Record<string, unknown> }) => Promise<unknown>,
      options: { step: 'initialize'; name: string },
    ): void;
  };
}

/** Records every command each client sends, before it is serialized. */
export function recordCalls(clients: AwsClients, sink: RecordedCall[]): void {
  for (const client of Object.values(clients) as unknown as WithMiddleware[]) {
    client.middlewareStack.add(
      (next, ctx) => async (args) => {
        sink.push({ command: (ctx.commandName ?? '?').replace(/Command$/, ''), input: args.input });
        return next(args);
      },
      { step: 'initialize', name: 'secretsyncTestRecorder' },
    );
  }
}

export function functionCode(source = 'export const handler = async () => "ok";'): FunctionCode {
  const zip = makeZip({ 'index.mjs': source });
  return { zip, sha256: createHash('sha256').update(zip).digest('base64') };
}

export function sampleSync(overrides: { name?: string; uid?: string; suspend?: boolean } = {}): SecretSync {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretSync',
    metadata: { name: overrides.name ?? 'db-creds', namespace: 'payments', uid: overrides.uid ?? 'uid-1' },
    spec: {
      source: { secretId: 'prod/payments/db', versionStage: 'AWSCURRENT' },
      target: { type: 'Opaque', keys: [{ from: 'password', to: 'DB_PASSWORD' }] },
      mergePolicy: 'Merge',
      deletionPolicy: 'Retain',
      resyncInterval: '24h',
      suspend: overrides.suspend ?? false,
    },
  };
}

export function sampleSettings(overrides: Partial<ControllerSettings> = {}): ControllerSettings {
  return withDefaults({ clusterName: 'prod-eu', region: 'us-east-1', accountId: ACCOUNT, ...overrides });
}

// Not a working CA; DescribeCluster's certificateAuthority.data is only passed through to the env.
const CA_DATA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
  'base64',
);

export function sampleDesired(
  options: {
    sync?: SecretSync;
    settings?: Partial<ControllerSettings>;
    code?: FunctionCode;
    secretArn?: string;
    kmsKeyId?: string;
  } = {},
): DesiredState {
  return desiredState({
    sync: options.sync ?? sampleSync(),
    settings: sampleSettings(options.settings),
    code: options.code ?? functionCode(),
    cluster: {
      endpoint: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
      certificateAuthorityData: CA_DATA,
    },
    secret: {
      arn: options.secretArn ?? `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:prod/payments/db-AbCdEf`,
      kmsKeyId: options.kmsKeyId,
    },
  });
}
