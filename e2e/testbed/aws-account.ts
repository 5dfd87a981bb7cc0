/**
 * Account-level AWS APIs that moto lacks and `secretsync doctor` reads, answered in front of moto:
 *
 * - Lambda GetAccountSettings: the concurrency limit is a setting of the test bed (new AWS accounts
 *   start at 10, established ones at 1000); usage is counted from moto's functions.
 * - Lambda ListLayers / ListLayerVersions: the runtime and architecture filters are checked against
 *   the service model's enums (botocore's, in the moto venv) the way Lambda validates them — the
 *   one read-only way to ask a region whether it knows a runtime — then forwarded to moto.
 * - Service Quotas GetServiceQuota / GetAWSDefaultServiceQuota for the quotas a SecretSync consumes
 *   (EventBridge rules per bus, Lambda concurrency, IAM roles); values are settings of the test bed.
 * - IAM SimulatePrincipalPolicy: the principal's policies (inline, attached, groups, permissions
 *   boundary) are read from moto and evaluated by an IAM policy simulator
 *   (@cloud-copilot/iam-simulate, built from AWS's Service Authorization Reference).
 * - Lambda PutFunctionEventInvokeConfig replaces the function's config, as Lambda does (moto
 *   appends, and its Get keeps answering with the first one).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  GetGroupPolicyCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  GetUserCommand,
  GetUserPolicyCommand,
  IAMClient,
  ListAttachedGroupPoliciesCommand,
  ListAttachedRolePoliciesCommand,
  ListAttachedUserPoliciesCommand,
  ListGroupPoliciesCommand,
  ListGroupsForUserCommand,
  ListRolePoliciesCommand,
  ListUserPoliciesCommand,
} from '@aws-sdk/client-iam';
import {
  DeleteFunctionEventInvokeConfigCommand,
  LambdaClient,
  paginateListFunctions,
} from '@aws-sdk/client-lambda';
import { isWildcardOnlyAction, runSimulation } from '@cloud-copilot/iam-simulate';
import type { AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';
import { venvDir } from './paths.ts';

export interface AccountSettings {
  /** Lambda's account concurrency limit (AWS: 1000 by default, 10 for many new accounts). */
  lambdaConcurrency: number;
  /** Service Quotas values by `service/QuotaCode`. */
  quotas: Record<string, number>;
}

/** The quotas a SecretSync consumes, with AWS's default values and names (and regions that differ). */
export const KNOWN_QUOTAS: Record<
  string,
  { name: string; value: number; regional?: Record<string, number> }
> = {
  'events/L-244521F2': {
    name: 'Maximum number of rules per event bus',
    value: 300,
    // EventBridge quotas page: 100 in these regions, 300 in every other.
    regional: { 'af-south-1': 100, 'eu-south-1': 100 },
  },
  'lambda/L-B99A9384': { name: 'Concurrent executions', value: 1000 },
  'iam/L-FE177D64': { name: 'Roles per account', value: 1000 },
};

/** AWS's default for a quota in a region. */
export function defaultQuota(key: string, region: string): number | undefined {
  const known = KNOWN_QUOTAS[key];
  return known && (known.regional?.[region] ?? known.value);
}

/**
 * The quota in force in a region: the test bed's setting, except that a setting left at AWS's
 * general default means the region's own default (so eu-south-1 has 100 rules per bus unless raised).
 */
export function quotaValue(settings: AccountSettings, key: string, region: string): number | undefined {
  const set = settings.quotas[key];
  if (set === undefined || set === KNOWN_QUOTAS[key]?.value) return defaultQuota(key, region) ?? set;
  return set;
}

export const defaultAccountSettings = (): AccountSettings => ({
  lambdaConcurrency: 1000,
  quotas: Object.fromEntries(Object.entries(KNOWN_QUOTAS).map(([k, v]) => [k, v.value])),
});

export interface AccountInterceptorOptions {
  motoUrl: string;
  region: string;
  accountId: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Read on every request, so a test may change it (control API /_testbed/account). */
  settings: AccountSettings;
}

let lambdaEnums: { runtimes: Set<string>; architectures: Set<string> } | undefined;
/** Lambda's Runtime and Architecture enums from the service model botocore ships. */
export function lambdaModelEnums(): { runtimes: Set<string>; architectures: Set<string> } {
  if (lambdaEnums) return lambdaEnums;
  const lib = join(venvDir(), 'lib');
  const python = readdirSync(lib).find((d) => d.startsWith('python'));
  if (!python) throw new Error(`no python lib directory under ${lib}`);
  const file = join(lib, python, 'site-packages/botocore/data/lambda/2015-03-31/service-2.json.gz');
  const model = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as {
    shapes: Record<string, { enum?: string[] }>;
  };
  lambdaEnums = {
    runtimes: new Set(model.shapes.Runtime?.enum ?? []),
    architectures: new Set(model.shapes.Architecture?.enum ?? []),
  };
  return lambdaEnums;
}

const jsonAnswer = (status: number, body: unknown, errorType?: string): AwsResponse => ({
  status,
  headers: {
    'content-type': 'application/json',
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  },
  body: JSON.stringify(body),
});

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** An error as IAM's query protocol answers it. */
export function iamError(status: number, code: string, message: string): AwsResponse {
  return {
    status,
    headers: { 'content-type': 'text/xml' },
    body: `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>testbed</RequestId></ErrorResponse>`,
  };
}

/** `Name.member.N` (and `Name.member.N.Sub`) of an AWS query-protocol form, in order. */
function members(form: URLSearchParams, name: string): string[] {
  const out: string[] = [];
  for (let n = 1; form.has(`${name}.member.${n}`); n++) out.push(form.get(`${name}.member.${n}`)!);
  return out;
}

interface NamedPolicy {
  name: string;
  policy: unknown;
}

export function accountInterceptor(opts: AccountInterceptorOptions): Interceptor {
  const clientConfig = { region: opts.region, endpoint: opts.motoUrl, credentials: opts.credentials };
  const iam = new IAMClient(clientConfig);
  const lambda = new LambdaClient(clientConfig);

  async function policyDocument(arn: string): Promise<unknown> {
    const p = await iam.send(new GetPolicyCommand({ PolicyArn: arn }));
    const v = await iam.send(
      new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: p.Policy!.DefaultVersionId! }),
    );
    return JSON.parse(decodeURIComponent(v.PolicyVersion!.Document!));
  }

  /** Identity policies and boundary of a role or user, as IAM would evaluate them. */
  async function principalPolicies(
    arn: string,
  ): Promise<{ identity: NamedPolicy[]; boundary: NamedPolicy[] } | undefined> {
    const m = /^arn:aws[a-z-]*:iam::\d{12}:(role|user)\/(?:.*\/)?([^/]+)$/.exec(arn);
    if (!m) return undefined;
    const [, kind, name] = m as unknown as [string, 'role' | 'user', string];
    const identity: NamedPolicy[] = [];
    let boundaryArn: string | undefined;
    const attached = async (list: { PolicyArn?: string; PolicyName?: string }[] | undefined) => {
      for (const a of list ?? [])
        identity.push({ name: a.PolicyName!, policy: await policyDocument(a.PolicyArn!) });
    };
    const doc = (d: string | undefined) => JSON.parse(decodeURIComponent(d ?? '{}'));
    if (kind === 'role') {
      const role = await iam.send(new GetRoleCommand({ RoleName: name }));
      boundaryArn = role.Role?.PermissionsBoundary?.PermissionsBoundaryArn;
      for (const p of (await iam.send(new ListRolePoliciesCommand({ RoleName: name }))).PolicyNames ?? []) {
        const r = await iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: p }));
        identity.push({ name: p, policy: doc(r.PolicyDocument) });
      }
      await attached(
        (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name }))).AttachedPolicies,
      );
    } else {
      const user = await iam.send(new GetUserCommand({ UserName: name }));
      boundaryArn = user.User?.PermissionsBoundary?.PermissionsBoundaryArn;
      for (const p of (await iam.send(new ListUserPoliciesCommand({ UserName: name }))).PolicyNames ?? []) {
        const r = await iam.send(new GetUserPolicyCommand({ UserName: name, PolicyName: p }));
        identity.push({ name: p, policy: doc(r.PolicyDocument) });
      }
      await attached(
        (await iam.send(new ListAttachedUserPoliciesCommand({ UserName: name }))).AttachedPolicies,
      );
      for (const g of (await iam.send(new ListGroupsForUserCommand({ UserName: name }))).Groups ?? []) {
        for (const p of (await iam.send(new ListGroupPoliciesCommand({ GroupName: g.GroupName! })))
          .PolicyNames ?? []) {
          const r = await iam.send(new GetGroupPolicyCommand({ GroupName: g.GroupName!, PolicyName: p }));
          identity.push({ name: `${g.GroupName}/${p}`, policy: doc(r.PolicyDocument) });
        }
        await attached(
          (await iam.send(new ListAttachedGroupPoliciesCommand({ GroupName: g.GroupName! })))
            .AttachedPolicies,
        );
      }
    }
    const boundary = boundaryArn ? [{ name: 'boundary', policy: await policyDocument(boundaryArn) }] : [];
    return { identity, boundary };
  }

  async function simulatePrincipalPolicy(form: URLSearchParams): Promise<AwsResponse> {
    const source = form.get('PolicySourceArn') ?? '';
    let policies: Awaited<ReturnType<typeof principalPolicies>>;
    try {
      policies = await principalPolicies(source);
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchEntityException' || /not found/i.test(String(err)))
        return iamError(404, 'NoSuchEntity', `The principal ${source} cannot be found.`);
      throw err;
    }
    if (!policies) return iamError(400, 'InvalidInput', `Invalid ARN: ${source}`);
    const actions = members(form, 'ActionNames');
    const resources = members(form, 'ResourceArns');
    const context: Record<string, string | string[]> = {};
    for (let n = 1; form.has(`ContextEntries.member.${n}.ContextKeyName`); n++) {
      const values = members(form, `ContextEntries.member.${n}.ContextKeyValues`);
      const type = form.get(`ContextEntries.member.${n}.ContextKeyType`) ?? 'string';
      context[form.get(`ContextEntries.member.${n}.ContextKeyName`)!] = type.endsWith('List')
        ? values
        : (values[0] ?? '');
    }
    const results: string[] = [];
    for (const action of actions) {
      const [service, name] = action.split(':') as [string, string];
      const wildcardOnly = await isWildcardOnlyAction(service, name).catch(() => false);
      for (const asked of resources.length > 0 ? resources : ['*']) {
        const resource = wildcardOnly ? '*' : asked;
        const out = await runSimulation(
          {
            request: {
              principal: source,
              action,
              resource: { resource, accountId: resource.split(':')[4] || opts.accountId },
              contextVariables: context,
            },
            identityPolicies: policies.identity,
            serviceControlPolicies: [],
            resourceControlPolicies: [],
            ...(policies.boundary.length > 0 ? { permissionBoundaryPolicies: policies.boundary } : {}),
          },
          {},
        );
        if (out.resultType === 'error')
          return iamError(400, 'InvalidInput', `${action} on ${asked}: ${JSON.stringify(out.errors)}`);
        const overall = out.resultType === 'single' ? out.overallResult : 'ImplicitlyDenied';
        const decision =
          overall === 'Allowed'
            ? 'allowed'
            : overall === 'ExplicitlyDenied'
              ? 'explicitDeny'
              : 'implicitDeny';
        results.push(
          `<member><EvalActionName>${xmlEscape(action)}</EvalActionName><EvalResourceName>${xmlEscape(asked)}</EvalResourceName><EvalDecision>${decision}</EvalDecision><MatchedStatements/><MissingContextValues/></member>`,
        );
      }
    }
    return {
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body: `<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>${results.join('')}</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>testbed</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>`,
    };
  }

  async function accountSettings(): Promise<AwsResponse> {
    let functionCount = 0;
    let codeSize = 0;
    for await (const page of paginateListFunctions({ client: lambda }, {})) {
      for (const f of page.Functions ?? []) {
        functionCount++;
        codeSize += f.CodeSize ?? 0;
      }
    }
    const limit = opts.settings.lambdaConcurrency;
    return jsonAnswer(200, {
      AccountLimit: {
        TotalCodeSize: 80_530_636_800,
        CodeSizeUnzipped: 262_144_000,
        CodeSizeZipped: 52_428_800,
        ConcurrentExecutions: limit,
        // The product reserves no concurrency; Lambda keeps at least 10 unreserved anyway.
        UnreservedConcurrentExecutions: limit,
      },
      AccountUsage: { TotalCodeSize: codeSize, FunctionCount: functionCount },
    });
  }

  /** Lambda validates enum-typed query parameters before anything else. */
  function checkLayerFilters(req: AwsRequest): AwsResponse | undefined {
    const enums = lambdaModelEnums();
    const checks: [string, string, Set<string>][] = [
      ['CompatibleRuntime', 'compatibleRuntime', enums.runtimes],
      ['CompatibleArchitecture', 'compatibleArchitecture', enums.architectures],
    ];
    for (const [param, member, allowed] of checks) {
      const v = req.query.get(param);
      if (v !== null && !allowed.has(v))
        return jsonAnswer(
          400,
          {
            message: `1 validation error detected: Value '${v}' at '${member}' failed to satisfy constraint: Member must satisfy enum value set: [${[...allowed].join(', ')}]`,
          },
          'ValidationException',
        );
    }
    return undefined;
  }

  function serviceQuota(operation: string, body: Buffer, region: string): AwsResponse | undefined {
    const { ServiceCode, QuotaCode } = JSON.parse(body.toString('utf8') || '{}') as {
      ServiceCode?: string;
      QuotaCode?: string;
    };
    const key = `${ServiceCode}/${QuotaCode}`;
    const known = KNOWN_QUOTAS[key];
    if (!known) return undefined; // moto answers the quotas it knows (vpc) and refuses the rest
    const value =
      operation === 'GetAWSDefaultServiceQuota'
        ? defaultQuota(key, region)
        : quotaValue(opts.settings, key, region);
    return jsonAnswer(200, {
      Quota: {
        ServiceCode,
        QuotaCode,
        QuotaName: known.name,
        QuotaArn: `arn:aws:servicequotas:${region}:${opts.accountId}:${ServiceCode}/${QuotaCode}`,
        Value: value ?? known.value,
        Unit: 'None',
        Adjustable: true,
        GlobalQuota: ServiceCode === 'iam',
      },
    });
  }

  return async (req) => {
    if (req.service === 'lambda') {
      if (req.operation === 'GetAccountSettings') return accountSettings();
      if (req.operation === 'PutFunctionEventInvokeConfig') {
        const name = decodeURIComponent(req.path.split('/')[3] ?? '');
        await lambda.send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: name })).catch(() => {});
        return undefined; // now moto stores the one given
      }
      if (req.operation === 'ListLayers' || req.operation === 'ListLayerVersions')
        return checkLayerFilters(req);
      return undefined;
    }
    if (req.service === 'servicequotas' && req.operation) {
      return serviceQuota(req.operation, req.body, req.region || opts.region);
    }
    if (req.service === 'iam' && req.operation === 'SimulatePrincipalPolicy') {
      return simulatePrincipalPolicy(new URLSearchParams(req.body.toString('utf8')));
    }
    return undefined;
  };
}
