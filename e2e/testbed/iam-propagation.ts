/**
 * IAM's eventual consistency, which moto lacks: a change to a role is seen by the rest of AWS only after a
 * while ("Changes that I make are not always immediately visible", IAM user guide, troubleshooting). Per role
 * this remembers when it was created, when its trust policy changed and when its permissions changed (inline
 * or attached policies, boundary), from moto's successful answers passing the front door; each change draws
 * its own delay in UnkindSettings.iamPropagationMs. While that change has not propagated:
 * - trust (create, UpdateAssumeRolePolicy): Lambda CreateFunction/UpdateFunctionConfiguration naming the role
 *   are refused (lambda-checks.ts asks `trustPending`);
 * - permissions (create, Put/DeleteRolePolicy, Attach/DetachRolePolicy, boundary): Secrets Manager
 *   GetSecretValue/DescribeSecret signed with credentials issued for the role answer AccessDeniedException —
 *   whichever way the change went (an unkind simplification: AWS may serve the old or the new permissions);
 * - creation: EKS CreateAccessEntry for the role answers that the principal is invalid.
 * Access entries propagate too: a new or changed entry is honoured by the authenticator only after
 * UnkindSettings.accessEntryPropagationMs (`entryEffective`, asked by eks-authenticator.ts).
 * Nothing is checked while the settings are off; the bookkeeping is a map update per IAM write, and the hot
 * path (a function's GetSecretValue) costs a map lookup: moto is asked only to word a refusal.
 */
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { jsonError } from './aws-classify.ts';
import type { AwsRequest, AwsResponse, Interceptor, Observer } from './aws-types.ts';
import type { AccessEntry } from './eks-access-entries.ts';
import { delayWithin, type UnkindSettings } from './unkind.ts';

/** One change: when moto answered it, and its draw (0..1) within the configured range. */
interface Change {
  at: number;
  u: number;
}

interface RoleChanges {
  created?: Change;
  trust?: Change;
  permissions?: Change;
}

const TRUST_CHANGES = new Set(['CreateRole', 'UpdateAssumeRolePolicy']);
const PERMISSION_CHANGES = new Set([
  'CreateRole',
  'PutRolePolicy',
  'DeleteRolePolicy',
  'AttachRolePolicy',
  'DetachRolePolicy',
  'PutRolePermissionsBoundary',
  'DeleteRolePermissionsBoundary',
]);
const SECRET_READS = new Set(['GetSecretValue', 'DescribeSecret']);

/** The role name of a role ARN (path dropped), or undefined for anything else. */
export function roleNameOf(arn: string): string | undefined {
  return /^arn:[^:]+:iam::\d{12}:role\/(?:.*\/)?([^/]+)$/.exec(arn)?.[1];
}

export interface IamPropagationOptions {
  /** Read on every check, so a change through /_testbed/unkind takes effect at once. */
  settings: UnkindSettings;
  motoUrl: string;
  /** Admin credentials, to word a refusal (who the caller is, the secret's ARN). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  now?: () => number;
  random?: () => number;
}

export class IamPropagation {
  readonly #opts: IamPropagationOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #roles = new Map<string, RoleChanges>();
  /** Access key id → role ARN, for every set of credentials issued for a role. */
  readonly #keys = new Map<string, string>();
  /** Per entry object: the modification it was last seen with, and that change's draw. */
  readonly #entries = new WeakMap<AccessEntry, Change>();

  constructor(opts: IamPropagationOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
  }

  /** Records a change to a role now (what the observer does for each successful IAM write). */
  roleChanged(roleName: string, operation: string): void {
    const change = (): Change => ({ at: this.#now(), u: this.#random() });
    const r = this.#roles.get(roleName) ?? {};
    if (operation === 'CreateRole') r.created = change();
    if (TRUST_CHANGES.has(operation)) r.trust = change();
    if (PERMISSION_CHANGES.has(operation)) r.permissions = change();
    this.#roles.set(roleName, r);
  }

  /** Tells which role a set of credentials was issued for (AssumeRole answers; the Lambda runner's). */
  credentialsIssued(accessKeyId: string, roleArn: string): void {
    this.#keys.set(accessKeyId, roleArn);
  }

  #pending(change: Change | undefined, range: UnkindSettings['iamPropagationMs']): boolean {
    return (
      this.#opts.settings.enabled &&
      change !== undefined &&
      this.#now() < change.at + delayWithin(range, change.u)
    );
  }

  /** Lambda cannot assume the role yet: its creation or trust change has not propagated. */
  trustPending(roleName: string): boolean {
    return this.#pending(this.#roles.get(roleName)?.trust, this.#opts.settings.iamPropagationMs);
  }

  /** Sessions of the role are not yet allowed what its (changed) policies allow. */
  permissionsPending(roleName: string): boolean {
    return this.#pending(this.#roles.get(roleName)?.permissions, this.#opts.settings.iamPropagationMs);
  }

  /** Other services do not know the role yet. */
  creationPending(roleName: string): boolean {
    return this.#pending(this.#roles.get(roleName)?.created, this.#opts.settings.iamPropagationMs);
  }

  /** Whether the authenticator honours the entry yet: its last creation or change has propagated. */
  entryEffective(entry: AccessEntry): boolean {
    const at = entry.modifiedAt.getTime();
    let seen = this.#entries.get(entry);
    if (seen?.at !== at) {
      seen = { at, u: this.#random() };
      this.#entries.set(entry, seen);
    }
    return !this.#pending(seen, this.#opts.settings.accessEntryPropagationMs);
  }

  /** Mount with frontDoor.observe: role changes and AssumeRole credentials from moto's answers. */
  readonly observer: Observer = (req, res) => {
    if (res.status !== 200) return;
    if (req.service === 'iam' && req.operation) {
      const name = form(req).get('RoleName');
      if (!name) return;
      if (req.operation === 'DeleteRole') this.#roles.delete(name);
      else if (TRUST_CHANGES.has(req.operation) || PERMISSION_CHANGES.has(req.operation))
        this.roleChanged(name, req.operation);
      return;
    }
    if (req.service === 'sts' && req.operation === 'AssumeRole') {
      const roleArn = form(req).get('RoleArn');
      const id = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(res.body.toString())?.[1];
      if (roleArn && id) this.credentialsIssued(id, roleArn);
    }
  };

  /** Mount with frontDoor.use, before the EKS interceptor (which answers CreateAccessEntry itself). */
  readonly interceptor: Interceptor = async (req) => {
    if (!this.#opts.settings.enabled) return undefined;
    if (req.service === 'secretsmanager' && req.operation && SECRET_READS.has(req.operation))
      return this.#secretRead(req, req.operation);
    if (req.service === 'eks' && req.method === 'POST') {
      const m = /^\/clusters\/([^/]+)\/access-entries\/?$/.exec(req.path);
      if (m) return this.#createAccessEntry(req, decodeURIComponent(m[1]!));
    }
    return undefined;
  };

  async #secretRead(req: AwsRequest, operation: string): Promise<AwsResponse | undefined> {
    const roleArn = req.accessKeyId ? this.#keys.get(req.accessKeyId) : undefined;
    const roleName = roleArn && roleNameOf(roleArn);
    if (!roleName || !this.permissionsPending(roleName)) return undefined;
    const secretId = String(json(req).SecretId ?? '');
    const [caller, resource] = await Promise.all([
      this.#callerArn(req, roleName),
      this.#secretArn(req.region, secretId),
    ]);
    const action = `secretsmanager:${operation}`;
    return jsonError(
      400,
      'AccessDeniedException',
      `User: ${caller} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
    );
  }

  #createAccessEntry(req: AwsRequest, clusterName: string): AwsResponse | undefined {
    const principalArn = json(req).principalArn;
    const roleName = typeof principalArn === 'string' ? roleNameOf(principalArn) : undefined;
    if (!roleName || !this.creationPending(roleName)) return undefined;
    return {
      status: 400,
      headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'InvalidParameterException' },
      body: JSON.stringify({
        clusterName,
        message: 'The specified principalArn is invalid: invalid principal',
      }),
    };
  }

  /** The caller's assumed-role ARN as STS names it (moto knows the session name it issued). */
  async #callerArn(req: AwsRequest, roleName: string): Promise<string> {
    const sts = new STSClient({
      endpoint: this.#opts.motoUrl,
      region: req.region,
      maxAttempts: 1,
      credentials: { accessKeyId: req.accessKeyId!, secretAccessKey: 'x' },
    });
    try {
      return (await sts.send(new GetCallerIdentityCommand({}))).Arn ?? `assumed-role/${roleName}`;
    } catch {
      return `arn:aws:sts::assumed-role/${roleName}`;
    } finally {
      sts.destroy();
    }
  }

  /** A secret named by name is reported by its ARN, as Secrets Manager does. */
  async #secretArn(region: string, secretId: string): Promise<string> {
    if (secretId.startsWith('arn:')) return secretId;
    const sm = new SecretsManagerClient({
      endpoint: this.#opts.motoUrl,
      region,
      maxAttempts: 1,
      credentials: this.#opts.credentials,
    });
    try {
      return (await sm.send(new DescribeSecretCommand({ SecretId: secretId }))).ARN ?? secretId;
    } catch {
      return secretId;
    } finally {
      sm.destroy();
    }
  }
}

function form(req: AwsRequest): URLSearchParams {
  return new URLSearchParams(req.body.toString('utf8'));
}

function json(req: AwsRequest): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(req.body.toString('utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
