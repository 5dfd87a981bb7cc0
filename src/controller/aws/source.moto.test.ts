// resolveSource against a real moto server.
import { CreateSecretCommand, DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SecretNotFoundError } from './errors.ts';
import { resolveSource } from './source.ts';
import { ACCOUNT, type MotoKit, startMotoKit } from './test-support.ts';

let kit: MotoKit;
beforeAll(async () => {
  kit = await startMotoKit();
}, 60_000);
afterAll(() => kit?.stop());
beforeEach(() => kit.reset());

const sm = () => kit.clients.secretsManager;
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

async function create(Name: string, KmsKeyId?: string) {
  const out = await sm().send(
    new CreateSecretCommand({
      Name,
      SecretString: '{"password":"x"}',
      Tags: [{ Key: 'secretsync.io/allowed-namespaces', Value: 'payments' }],
      ...(KmsKeyId ? { KmsKeyId } : {}),
    }),
  );
  kit.reset();
  return out.ARN as string;
}

describe('resolveSource against moto', () => {
  it('resolves a name to the full ARN, with tags, and reads no value', async () => {
    const arn = await create('prod/payments/db');
    const source = await resolveSource(sm(), 'prod/payments/db');
    expect(source).toEqual({
      arn,
      name: 'prod/payments/db',
      kmsKeyId: undefined,
      tags: { 'secretsync.io/allowed-namespaces': 'payments' },
      deletedDate: undefined,
      // The version the stage points at, so a pass can tell whether the target holds it.
      stageVersions: { AWSCURRENT: expect.any(String) },
      lastChangedDate: expect.any(Date),
    });
    expect(arn).toMatch(/:secret:prod\/payments\/db-[A-Za-z0-9]{6}$/);
    expect(kit.commands()).toEqual(['DescribeSecret']);
  });

  it('accepts the full ARN', async () => {
    const arn = await create('by-arn');
    expect((await resolveSource(sm(), arn)).arn).toBe(arn);
  });

  it('reports a customer-managed key and hides the AWS-managed one', async () => {
    await create('customer-key', KEY_ARN);
    await create('aws-key', 'alias/aws/secretsmanager');
    expect((await resolveSource(sm(), 'customer-key')).kmsKeyId).toBe(KEY_ARN);
    expect((await resolveSource(sm(), 'aws-key')).kmsKeyId).toBeUndefined();
  });

  it('shows when the secret is scheduled for deletion', async () => {
    await create('scheduled');
    await sm().send(new DeleteSecretCommand({ SecretId: 'scheduled', RecoveryWindowInDays: 7 }));
    expect((await resolveSource(sm(), 'scheduled')).deletedDate).toBeInstanceOf(Date);
  });

  it('turns a missing secret into SecretNotFoundError (reason SecretNotFound)', async () => {
    const err = await resolveSource(sm(), 'prod/none').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretNotFoundError);
    expect(err).toMatchObject({ reason: 'SecretNotFound', resource: 'prod/none' });
  });
});
