import { randomBytes } from 'node:crypto';
import { DeleteSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { V1Secret } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadyReason } from '../../src/controller/reconcile.ts';
import type { SyncReason } from '../../src/lambda/errors.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  idle,
  startTestController,
  type TestController,
} from '../tests/controller-support.ts';
import { INVALID_SECRETSYNCS } from '../tests/invalid-secretsyncs.ts';
import { awsConfig, core, freshNamespace } from '../tests/support.ts';

/**
 * SecretSyncs the API server accepts but that cannot work, found out only at run time: by the
 * controller (Ready=False) or by the function (Synced=False), each with the product's precise
 * reason, no secret value in what it says, and a Secret that existed before left exactly as it was.
 * The controller runs with the default tenancy (the secret's owner consents by tag).
 */

const CANARY = `canary-${randomBytes(12).toString('hex')}`;
const NAMESPACES_TAG = 'secretsync.io/namespaces';
const json = (v: unknown) => JSON.stringify(v);
const consent = (ns: string) => [{ Key: NAMESPACES_TAG, Value: ns }];

/** Who finds out, with that one's reasons: the controller (Ready) or the function (Synced). */
type Outcome = { condition: 'Ready'; reason: ReadyReason } | { condition: 'Synced'; reason: SyncReason };

type Case = Outcome & {
  name: string;
  message: RegExp;
  /** Creates what the SecretSync refers to; returns its spec. */
  setup: (ns: string, secretName: string) => Promise<Record<string, unknown>>;
  /** A Secret already in place under the target's name (it must stay untouched). */
  existing?: V1Secret;
};

const GOOD = json({ user: 'app', password: CANARY });
const sm = () => new SecretsManagerClient(awsConfig());

const CASES: Case[] = [
  {
    name: 'a secretId no AWS secret has',
    condition: 'Ready',
    reason: 'SecretNotFound',
    message: /^AWS secret hostile-ss\/\S+ was not found in eu-west-1$/,
    setup: async (_ns, secretName) => ({ source: { secretId: secretName } }),
  },
  {
    name: 'a region the secret is not in',
    condition: 'Ready',
    reason: 'SecretNotFound',
    message: /^AWS secret hostile-ss\/\S+ was not found in us-east-1$/,
    setup: async (ns, secretName) => {
      await createAwsSecret(secretName, GOOD, consent(ns));
      return { source: { secretId: secretName, region: 'us-east-1' } };
    },
  },
  {
    name: 'a secret scheduled for deletion',
    condition: 'Ready',
    reason: 'SecretScheduledForDeletion',
    message:
      /^AWS secret arn:aws:secretsmanager:\S+ is scheduled for deletion .*restore it to resume syncing$/,
    setup: async (ns, secretName) => {
      const arn = await createAwsSecret(secretName, GOOD, consent(ns));
      await sm().send(new DeleteSecretCommand({ SecretId: arn, RecoveryWindowInDays: 7 }));
      return { source: { secretId: secretName } };
    },
  },
  {
    name: 'a secret whose owner did not consent (no tag)',
    condition: 'Ready',
    reason: 'PolicyDenied',
    message: /has no secretsync.io\/namespaces tag, and no SecretSyncPolicy grants namespace/,
    setup: async (_ns, secretName) => {
      await createAwsSecret(secretName, GOOD);
      return { source: { secretId: secretName } };
    },
  },
  {
    name: 'a secret whose consent names other namespaces',
    condition: 'Ready',
    reason: 'PolicyDenied',
    message: /tag \(team-\*, prod\) does not include namespace/,
    setup: async (_ns, secretName) => {
      await createAwsSecret(secretName, GOOD, [{ Key: NAMESPACES_TAG, Value: 'team-*, prod' }]);
      return { source: { secretId: secretName } };
    },
  },
  {
    name: 'a versionStage no version carries',
    condition: 'Synced',
    reason: 'SecretNotFound',
    message: /^the AWS secret or the requested stage does not exist: /,
    setup: async (ns, secretName) => {
      await createAwsSecret(secretName, GOOD, consent(ns));
      return { source: { secretId: secretName, versionStage: 'BLUE' } };
    },
  },
  {
    name: 'a mapped key the secret does not have',
    condition: 'Synced',
    reason: 'InvalidPayload',
    message: /^spec.target.keys names "pass" but the AWS secret has no such key$/,
    setup: async (ns, secretName) => {
      await createAwsSecret(secretName, GOOD, consent(ns));
      return { source: { secretId: secretName }, target: { keys: [{ from: 'user' }, { from: 'pass' }] } };
    },
  },
  {
    name: 'a basic-auth target under Replace, from a secret with neither username nor password',
    condition: 'Synced',
    reason: 'InvalidPayload',
    message: /^the API server refused the Secret: .*data\[username\]: Required value/,
    setup: async (ns, secretName) => {
      await createAwsSecret(secretName, json({ token: CANARY }), consent(ns));
      return {
        source: { secretId: secretName },
        target: { type: 'kubernetes.io/basic-auth' },
        mergePolicy: 'Replace',
      };
    },
  },
  {
    name: 'a target that exists and is immutable',
    condition: 'Synced',
    reason: 'InvalidPayload',
    message: /^the API server refused the Secret: .*field is immutable/,
    existing: { immutable: true, data: { theirs: Buffer.from('keep me').toString('base64') } },
    setup: async (ns, secretName) => {
      await createAwsSecret(secretName, GOOD, consent(ns));
      return { source: { secretId: secretName } };
    },
  },
  {
    name: 'a target that exists with another type, under Replace',
    condition: 'Synced',
    reason: 'InvalidPayload',
    message: /^the API server refused the Secret: .*\.dockerconfigjson.*Required value/,
    existing: {
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
    },
    setup: async (ns, secretName) => {
      await createAwsSecret(secretName, GOOD, consent(ns));
      return { source: { secretId: secretName }, mergePolicy: 'Replace' };
    },
  },
];

describe('SecretSyncs only the run time can refuse', () => {
  let controller: TestController;
  beforeAll(async () => {
    // It watches every namespace, so it first works through what earlier test files left on the
    // shared API server: unthrottled and wider, so that backlog does not eat each case's wait.
    controller = await startTestController([
      '--resync-period=1h',
      '--concurrency=16',
      '--aws-rate-limits=iam=0,lambda=0,events=0,logs=0,eks=0,secretsmanager=0,tagging=0',
    ]);
  });
  afterAll(async () => {
    await controller?.stop();
  });

  it('the API server’s corpus (crd.test.ts) has at least 30 distinct invalid SecretSyncs', () => {
    expect(INVALID_SECRETSYNCS.length).toBeGreaterThanOrEqual(30);
    expect(new Set(INVALID_SECRETSYNCS.map((c) => c.name)).size).toBe(INVALID_SECRETSYNCS.length);
  });

  it.each(CASES)(
    '$name → $condition=False $reason',
    async (c) => {
      const ns = await freshNamespace('hss');
      const target = 'app-secret';
      const secretName = `hostile-ss/${ns}/app`;
      const before = c.existing
        ? await core().createNamespacedSecret({
            namespace: ns,
            body: { ...c.existing, metadata: { name: target } },
          })
        : undefined;
      const spec = await c.setup(ns, secretName);
      await applySecretSync(ns, 'app', { ...spec, target: { ...(spec.target as object), name: target } });

      let seen: unknown;
      const ss = await eventually(
        `${ns}/app ${c.condition}=False ${c.reason}`,
        async () => {
          const s = await getSecretSync(ns, 'app');
          seen = s?.status?.conditions;
          const found = condition(s, c.condition);
          return found?.status === 'False' && found.reason === c.reason ? s : undefined;
        },
        180_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; conditions: ${json(seen)}`);
      });
      expect(condition(ss, c.condition)?.message).toMatch(c.message);
      if (c.condition === 'Synced') {
        expect(condition(ss, 'Ready')?.status).toBe('True');
        expect(ss?.status?.syncedVersionId).toBeUndefined();
      } else {
        expect(condition(ss, 'Synced')).toBeUndefined();
      }
      await idle();
      expect(json(await getSecretSync(ns, 'app')).includes(CANARY), 'the canary in the status').toBe(false);
      if (before) {
        const after = await core().readNamespacedSecret({ namespace: ns, name: target });
        expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
        expect(after.data).toEqual(before.data);
      }
    },
    300_000,
  );
});
