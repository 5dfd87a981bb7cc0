// Resolves spec.source.secretId (a name or an ARN) to the secret's full ARN and the facts the
// desired state needs. Metadata only: the controller never calls GetSecretValue (DESIGN §1, §6).

import { DescribeSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { isNotFound } from '../errors.ts';
import { aws, SecretNotFoundError } from './errors.ts';
import { fromTagList, type Tags } from './tags.ts';

export interface ResolvedSource {
  arn: string;
  name: string;
  /** The customer-managed key as DescribeSecret names it (ARN, key id or alias); undefined for aws/secretsmanager. */
  kmsKeyId: string | undefined;
  /** The secret's tags: the tenancy check reads its opt-in tag from here. */
  tags: Tags;
  /** Set when the secret is scheduled for deletion: it still resolves, but the function cannot read it. */
  deletedDate: Date | undefined;
  /** Staging label → version id (AWSCURRENT, AWSPREVIOUS, …), to tell whether the last sync is current. */
  stageVersions: Record<string, string>;
  /** When the value or metadata last changed; undefined when AWS does not say. */
  lastChangedDate: Date | undefined;
}

// DescribeSecret omits KmsKeyId for the default key; a secret created with the alias spelled out
// reports the alias, in either form.
const AWS_MANAGED_KEY = /^(arn:[a-z-]+:kms:[a-z0-9-]+:\d{12}:)?alias\/aws\/secretsmanager$/;

export async function resolveSource(sm: SecretsManagerClient, secretId: string): Promise<ResolvedSource> {
  const ctx = { operation: 'DescribeSecret', resource: secretId };
  const out = await aws(ctx, () => sm.send(new DescribeSecretCommand({ SecretId: secretId }))).catch(
    (err: unknown) => {
      throw isNotFound(err) ? new SecretNotFoundError(`AWS secret ${secretId} not found`, ctx, err) : err;
    },
  );
  if (!out.ARN || !out.Name) throw new Error(`DescribeSecret ${secretId} returned no ARN or name`);
  return sourceOf({ ...out, ARN: out.ARN, Name: out.Name, VersionIdsToStages: out.VersionIdsToStages });
}

/**
 * The facts the controller uses, from DescribeSecret or from a ListSecrets entry (which carries the
 * same metadata, the stage map as SecretVersionsToStages).
 */
export function sourceOf(out: {
  ARN: string;
  Name: string;
  KmsKeyId?: string | undefined;
  Tags?: { Key?: string | undefined; Value?: string | undefined }[] | undefined;
  DeletedDate?: Date | undefined;
  VersionIdsToStages?: Record<string, string[]> | undefined;
  LastChangedDate?: Date | undefined;
}): ResolvedSource {
  const key = out.KmsKeyId;
  return {
    arn: out.ARN,
    name: out.Name,
    kmsKeyId: key === undefined || key === '' || AWS_MANAGED_KEY.test(key) ? undefined : key,
    tags: fromTagList(out.Tags),
    deletedDate: out.DeletedDate,
    stageVersions: Object.fromEntries(
      Object.entries(out.VersionIdsToStages ?? {}).flatMap(([id, stages]) => stages.map((st) => [st, id])),
    ),
    lastChangedDate: out.LastChangedDate,
  };
}
