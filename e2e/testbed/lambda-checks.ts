/**
 * What Lambda checks on the way in and moto does not, answered in front of moto with Lambda's own words
 * (REST JSON: `x-amzn-errortype`, `{Type, Message}`):
 * - CreateFunction / UpdateFunctionConfiguration: the environment's 4 KB limit (Lambda measures the JSON
 *   of the Variables map); the execution role must be assumable by Lambda — its name contains none of
 *   UnkindSettings.unassumableRoles (as an SCP would refuse), its trust policy lets the service principal
 *   lambda.amazonaws.com sts:AssumeRole, and its creation or trust change has propagated
 *   (iam-propagation.ts; only while propagation is on). moto itself refuses a role that does not exist.
 * - AddPermission: the function policy's 20 KB limit, measured on the policy it would hold afterwards.
 * Trust policies are remembered from the CreateRole/UpdateAssumeRolePolicy calls seen passing; a role
 * created straight at moto is read once (GetRole) and remembered too.
 * Mount the interceptor before the Lambda runner's, so a refused upload leaves no code behind.
 */
import { randomUUID } from 'node:crypto';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetPolicyCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { AwsRequest, AwsResponse, Interceptor, Observer } from './aws-types.ts';
import { type IamPropagation, roleNameOf } from './iam-propagation.ts';
import { apiError, functionNameOf, LambdaApiError } from './lambda-runner.ts';
import type { UnkindSettings } from './unkind.ts';

/** Lambda's limit on the environment: the JSON of the Variables map, in bytes. */
export const ENVIRONMENT_LIMIT = 4096;
/** Lambda's limit on a function's resource-based policy, in bytes. */
export const FUNCTION_POLICY_LIMIT = 20_480;

export const CANNOT_ASSUME = 'The role defined for the function cannot be assumed by Lambda.';

/** Lambda's refusal of an environment over 4 KB, or undefined if it fits. */
export function environmentTooLarge(variables: unknown): LambdaApiError | undefined {
  if (!variables || typeof variables !== 'object') return undefined;
  const measured = JSON.stringify(variables);
  if (Buffer.byteLength(measured) <= ENVIRONMENT_LIMIT) return undefined;
  return new LambdaApiError(
    400,
    'InvalidParameterValueException',
    `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${measured}`,
  );
}

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/**
 * Whether a trust policy lets lambda.amazonaws.com call sts:AssumeRole: an Allow statement naming the
 * service (or `*`) and the action (or a wildcard over it), and no Deny doing the same. Conditions are
 * not evaluated (Lambda's request carries the account and ARN conditions usually test).
 */
export function lambdaMayAssume(document: unknown): boolean {
  const doc = document as { Statement?: unknown };
  const matches = (s: Record<string, unknown>) => {
    const actions = asList(s.Action).map((a) => String(a).toLowerCase());
    const action = actions.some((a) => a === '*' || a === 'sts:*' || a === 'sts:assumerole');
    const p = s.Principal;
    const principal =
      p === '*' ||
      (typeof p === 'object' &&
        p !== null &&
        (asList((p as Record<string, unknown>).Service).includes('lambda.amazonaws.com') ||
          asList((p as Record<string, unknown>).AWS).includes('*')));
    return action && principal;
  };
  const statements = asList(doc?.Statement).filter(
    (s): s is Record<string, unknown> => typeof s === 'object' && s !== null,
  );
  if (statements.some((s) => s.Effect === 'Deny' && matches(s))) return false;
  return statements.some((s) => s.Effect === 'Allow' && matches(s));
}

export interface LambdaChecksOptions {
  motoUrl: string;
  accountId: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  settings: UnkindSettings;
  propagation: IamPropagation;
}

const FUNCTIONS = /^\/2015-03-31\/functions\/?$/;
const CONFIGURATION = /^\/2015-03-31\/functions\/([^/]+)\/configuration$/;
const POLICY = /^\/2015-03-31\/functions\/([^/]+)\/policy$/;

export function lambdaChecks(opts: LambdaChecksOptions): { interceptor: Interceptor; observer: Observer } {
  const iam = new IAMClient({ endpoint: opts.motoUrl, region: 'us-east-1', credentials: opts.credentials });
  const lambdas = new Map<string, LambdaClient>();
  const lambdaIn = (region: string) => {
    let c = lambdas.get(region);
    if (!c) {
      c = new LambdaClient({ endpoint: opts.motoUrl, region, credentials: opts.credentials, maxAttempts: 1 });
      lambdas.set(region, c);
    }
    return c;
  };
  /** Trust policies by role name; null: the role is not in moto (moto then refuses it itself). */
  const trust = new Map<string, unknown>();

  async function trustOf(roleName: string): Promise<unknown> {
    if (trust.has(roleName)) return trust.get(roleName);
    try {
      const { Role } = await iam.send(new GetRoleCommand({ RoleName: roleName }));
      const doc = JSON.parse(decodeURIComponent(Role?.AssumeRolePolicyDocument ?? '{}')) as unknown;
      trust.set(roleName, doc);
      return doc;
    } catch (err) {
      if ((err as Error).name === 'NoSuchEntityException') return null; // not remembered: it may come
      throw err;
    }
  }

  async function roleRefused(roleArn: unknown): Promise<LambdaApiError | undefined> {
    if (typeof roleArn !== 'string') return undefined;
    const name = roleNameOf(roleArn);
    if (!name) return undefined; // moto words a malformed ARN
    const cannot = () => new LambdaApiError(400, 'InvalidParameterValueException', CANNOT_ASSUME);
    if (opts.settings.unassumableRoles.some((s) => name.includes(s))) return cannot();
    const doc = await trustOf(name);
    if (doc !== null && !lambdaMayAssume(doc)) return cannot();
    if (opts.propagation.trustPending(name)) return cannot();
    return undefined;
  }

  async function functionPolicyTooLarge(
    req: AwsRequest,
    segment: string,
  ): Promise<LambdaApiError | undefined> {
    const body = parse(req.body);
    const qualifier = req.query.get('Qualifier') ?? undefined;
    const region = segment.startsWith('arn:') ? (segment.split(':')[3] ?? req.region) : req.region;
    const name = functionNameOf(segment);
    let policy: { Version: string; Id: string; Statement: unknown[] } = {
      Version: '2012-10-17',
      Id: 'default',
      Statement: [],
    };
    try {
      const out = await lambdaIn(region).send(
        new GetPolicyCommand({ FunctionName: name, ...(qualifier ? { Qualifier: qualifier } : {}) }),
      );
      if (out.Policy) policy = JSON.parse(out.Policy);
    } catch (err) {
      if ((err as Error).name !== 'ResourceNotFoundException') throw err;
      // No policy yet (or no function: moto answers that one).
    }
    const partition = region.startsWith('cn-')
      ? 'aws-cn'
      : region.startsWith('us-gov-')
        ? 'aws-us-gov'
        : 'aws';
    const arn = `arn:${partition}:lambda:${region}:${opts.accountId}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
    policy.Statement.push(statementOf(body, arn));
    const size = Buffer.byteLength(JSON.stringify(policy));
    if (size <= FUNCTION_POLICY_LIMIT) return undefined;
    return new LambdaApiError(
      400,
      'PolicyLengthExceededException',
      `The final policy size (${size}) is bigger than the limit (${FUNCTION_POLICY_LIMIT}).`,
    );
  }

  async function check(req: AwsRequest): Promise<LambdaApiError | undefined> {
    if (req.method === 'POST' && FUNCTIONS.test(req.path)) {
      const body = parse(req.body);
      return environmentTooLarge(envVariables(body)) ?? (await roleRefused(body.Role));
    }
    if (req.method === 'PUT' && CONFIGURATION.test(req.path)) {
      const body = parse(req.body);
      return environmentTooLarge(envVariables(body)) ?? (await roleRefused(body.Role));
    }
    const policy = req.method === 'POST' ? POLICY.exec(req.path) : null;
    if (policy) return functionPolicyTooLarge(req, decodeURIComponent(policy[1]!));
    return undefined;
  }

  return {
    interceptor: async (req): Promise<AwsResponse | undefined> => {
      if (req.service !== 'lambda') return undefined;
      const refusal = await check(req);
      return refusal ? apiError(randomUUID(), refusal) : undefined;
    },
    observer: (req, res) => {
      if (req.service !== 'iam' || res.status !== 200) return;
      if (
        req.operation !== 'CreateRole' &&
        req.operation !== 'UpdateAssumeRolePolicy' &&
        req.operation !== 'DeleteRole'
      )
        return;
      const f = new URLSearchParams(req.body.toString('utf8'));
      const name = f.get('RoleName');
      if (!name) return;
      if (req.operation === 'DeleteRole') {
        trust.delete(name);
        return;
      }
      try {
        trust.set(name, JSON.parse(f.get('PolicyDocument') ?? f.get('AssumeRolePolicyDocument') ?? ''));
      } catch {
        trust.delete(name); // read from moto when next needed
      }
    },
  };
}

function parse(body: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(body.toString('utf8') || '{}');
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function envVariables(body: Record<string, unknown>): unknown {
  return (body.Environment as { Variables?: unknown } | undefined)?.Variables;
}

/** The statement Lambda adds for an AddPermission request (API reference, AddPermission). */
function statementOf(b: Record<string, unknown>, resource: string): Record<string, unknown> {
  const principal = String(b.Principal ?? '');
  const condition: Record<string, Record<string, unknown>> = {};
  const put = (op: string, key: string, value: unknown) => {
    if (value !== undefined) condition[op] = { ...condition[op], [key]: value };
  };
  put('StringEquals', 'AWS:SourceAccount', b.SourceAccount);
  put('ArnLike', 'AWS:SourceArn', b.SourceArn);
  put('StringEquals', 'aws:PrincipalOrgID', b.PrincipalOrgID);
  put('StringEquals', 'lambda:FunctionUrlAuthType', b.FunctionUrlAuthType);
  return {
    Sid: b.StatementId ?? randomUUID(),
    Effect: 'Allow',
    Principal: principal.endsWith('.amazonaws.com')
      ? { Service: principal }
      : principal === '*'
        ? '*'
        : { AWS: /^\d{12}$/.test(principal) ? `arn:aws:iam::${principal}:root` : principal },
    Action: b.Action,
    Resource: resource,
    ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
  };
}
