/**
 * The account's quotas enforced, at the values the account settings hold (aws-account.ts; AWS's defaults
 * until a test raises them through /_testbed/account, read on every call so a change counts at once):
 * - IAM CreateRole with the account at "Roles per account" (iam/L-FE177D64) answers 409 LimitExceeded;
 * - EventBridge PutRule creating a new rule on a bus at "Maximum number of rules per event bus"
 *   (events/L-244521F2, per region: 100 in af-south-1 and eu-south-1) answers 400 LimitExceededException;
 *   PutRule on an existing rule is an update and passes.
 * Counts are kept in memory from moto's successful answers, read from moto once (per bus: at its first
 * PutRule) and read again whenever a count comes near its quota, so something created straight at moto
 * cannot make a refusal wrong. Two creates racing for the last slot may both pass, as they may in AWS.
 */
import { EventBridgeClient, ListRulesCommand } from '@aws-sdk/client-eventbridge';
import { IAMClient, paginateListRoles } from '@aws-sdk/client-iam';
import { type AccountSettings, iamError, quotaValue } from './aws-account.ts';
import { jsonError } from './aws-classify.ts';
import type { AwsRequest, AwsResponse, Interceptor, Observer } from './aws-types.ts';

export const ROLES_QUOTA = 'iam/L-FE177D64';
export const RULES_QUOTA = 'events/L-244521F2';
/** Within this many of a quota, a count is read from moto again before it is trusted. */
const RECOUNT_MARGIN = 10;

export interface QuotasOptions {
  motoUrl: string;
  /** Only for requests that name no region. */
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  settings: AccountSettings;
}

export function quotas(opts: QuotasOptions): { interceptor: Interceptor; observer: Observer } {
  const iam = new IAMClient({ endpoint: opts.motoUrl, region: 'us-east-1', credentials: opts.credentials });
  const eventsClients = new Map<string, EventBridgeClient>();
  const eventsIn = (region: string) => {
    let c = eventsClients.get(region);
    if (!c) {
      c = new EventBridgeClient({ endpoint: opts.motoUrl, region, credentials: opts.credentials });
      eventsClients.set(region, c);
    }
    return c;
  };

  let roles: number | undefined;
  let countingRoles: Promise<number> | undefined;
  const countRoles = () => {
    countingRoles ??= (async () => {
      let n = 0;
      for await (const page of paginateListRoles({ client: iam }, { MaxItems: 1000 }))
        n += page.Roles?.length ?? 0;
      roles = n;
      return n;
    })().finally(() => {
      countingRoles = undefined;
    });
    return countingRoles;
  };

  /** Rule names per (region, bus). */
  const rules = new Map<string, Set<string>>();
  const listing = new Map<string, Promise<Set<string>>>();
  const listRules = (region: string, bus: string) => {
    const key = `${region}/${bus}`;
    let p = listing.get(key);
    if (!p) {
      p = (async () => {
        const names = new Set<string>();
        let NextToken: string | undefined;
        do {
          const page = await eventsIn(region).send(new ListRulesCommand({ EventBusName: bus, NextToken }));
          for (const r of page.Rules ?? []) if (r.Name) names.add(r.Name);
          NextToken = page.NextToken;
        } while (NextToken);
        rules.set(key, names);
        return names;
      })().finally(() => listing.delete(key));
      listing.set(key, p);
    }
    return p;
  };

  async function createRole(): Promise<AwsResponse | undefined> {
    const quota = quotaValue(opts.settings, ROLES_QUOTA, 'us-east-1') ?? Number.POSITIVE_INFINITY;
    let n = roles ?? (await countRoles());
    if (n >= quota - RECOUNT_MARGIN) n = await countRoles();
    if (n < quota) return undefined;
    return iamError(409, 'LimitExceeded', `Cannot exceed quota for RolesPerAccount: ${quota}`);
  }

  async function putRule(req: AwsRequest): Promise<AwsResponse | undefined> {
    const b = body(req);
    const name = typeof b.Name === 'string' ? b.Name : undefined;
    if (!name) return undefined; // moto words the validation error
    const bus = busName(b.EventBusName);
    const region = req.region || opts.region;
    const quota = quotaValue(opts.settings, RULES_QUOTA, region) ?? Number.POSITIVE_INFINITY;
    let names = rules.get(`${region}/${bus}`) ?? (await listRules(region, bus));
    if (names.has(name)) return undefined;
    if (names.size >= quota - RECOUNT_MARGIN) names = await listRules(region, bus);
    if (names.has(name) || names.size < quota) return undefined;
    return jsonError(
      400,
      'LimitExceededException',
      'The requested resource exceeds the maximum number allowed.',
    );
  }

  return {
    interceptor: async (req) => {
      if (req.service === 'iam' && req.operation === 'CreateRole') return createRole();
      if (req.service === 'events' && req.operation === 'PutRule') return putRule(req);
      return undefined;
    },
    observer: (req, res) => {
      if (res.status !== 200) return;
      if (req.service === 'iam') {
        if (roles === undefined) return;
        if (req.operation === 'CreateRole') roles++;
        else if (req.operation === 'DeleteRole') roles = Math.max(0, roles - 1);
        return;
      }
      if (req.service !== 'events' || (req.operation !== 'PutRule' && req.operation !== 'DeleteRule')) return;
      const b = body(req);
      const names = rules.get(`${req.region || opts.region}/${busName(b.EventBusName)}`);
      if (!names || typeof b.Name !== 'string') return;
      if (req.operation === 'PutRule') names.add(b.Name);
      else names.delete(b.Name);
    },
  };
}

/** A bus given by name or ARN; the default bus when none. */
function busName(v: unknown): string {
  if (typeof v !== 'string' || v === '') return 'default';
  return v.startsWith('arn:') ? (v.split('event-bus/')[1] ?? v) : v;
}

function body(req: AwsRequest): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(req.body.toString('utf8') || '{}');
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
