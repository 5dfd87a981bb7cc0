// Shared by the *.moto.test.ts files: a real moto (through the test bed's minimal front door, so the
// EKS access-entry emulation can sit in front of it), SDK clients that record every command they
// send, and a desired state for a sample SecretSync. Test-only; not imported by the controller.

import { replacingInvokeConfigPut } from '../../../e2e/testbed/moto-fixes.ts';
import { makeZip, startTestAws, type TestAws } from '../../../e2e/testbed/test-front-door.ts';
import type { SecretSync } from '../../shared/secretsync.generated.ts';
import { type Owner, ownershipTags } from '../naming.ts';
import { type AwsClients, type AwsEnv, createAwsClients, singleRegion } from './clients.ts';
import {
  type ControllerSettings,
  clusterArnOf,
  type DesiredState,
  desiredState,
  type FunctionCode,
  functionCodeOf,
  withDefaults,
} from './desired.ts';
import type { Tags } from './tags.ts';

export interface RecordedCall {
  command: string;
  input: Record<string, unknown>;
}

export interface MotoKit {
  aws: TestAws;
  clients: AwsClients;
  /** What the managers take, over `clients`: every region is answered in the kit's own region. */
  env: AwsEnv;
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
  aws.use(replacingInvokeConfigPut(aws.endpoint.motoUrl));
  const clients = createAwsClients({ region, endpoint: url, credentials, maxAttempts: 1 });
  const calls: RecordedCall[] = [];
  recordCalls(clients, calls);
  const commands = () => calls.map((c) => c.command);
  return {
    aws,
    clients,
    env: singleRegion(clients, region),
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
  return functionCodeOf(makeZip({ 'index.mjs': source }));
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

/** The identity of sampleSettings(): the EKS cluster's ARN (its region defaults to `region`). */
export const CLUSTER_ARN = clusterArnOf(sampleSettings());
/** A cluster of the same name and account in another region: another cluster, never ours. */
export const SAME_NAME_OTHER_REGION = clusterArnOf(sampleSettings({ clusterRegion: 'eu-west-1' }));

/** The same SecretSync (namespace, name, uid) as seen by the controller of another cluster. */
export const inOtherCluster = (owner: Owner, clusterArn = SAME_NAME_OTHER_REGION): Owner => ({
  ...owner,
  clusterArn,
});

/** Ownership tags of that SecretSync in another cluster: what its controller would have written. */
export const otherClusterTags = (owner: Owner): Tags => ownershipTags(inOtherCluster(owner));

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
