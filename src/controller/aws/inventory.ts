// The inventory: what exists, from one paginated listing per kind — per region ListSecrets,
// ListRules and the Tagging API's GetResources (our functions and log groups, by our cluster tag),
// per account ListRoles, per cluster ListAccessEntries — instead of reading each SecretSync's
// resources one by one. Lists show less than reads (no policies, rule targets, Lambda permissions,
// invoke configs, access entry details, function configuration and State, log retention): those
// are the deep check's (drift.ts). A list that fails is left out (undefined): nothing is concluded
// from it.

import { paginateListAccessEntries } from '@aws-sdk/client-eks';
import { ListRulesCommand, type Rule } from '@aws-sdk/client-eventbridge';
import { paginateListRoles, type Role } from '@aws-sdk/client-iam';
import { paginateGetResources } from '@aws-sdk/client-resource-groups-tagging-api';
import { paginateListSecrets } from '@aws-sdk/client-secrets-manager';
import { parseClusterArn, TAG } from '../naming.ts';
import type { AwsClients } from './clients.ts';
import { type ControllerSettings, clusterArnOf } from './desired.ts';
import { aws } from './errors.ts';
import { type ResolvedSource, sourceOf } from './source.ts';
import { fromTagList, type Tags } from './tags.ts';

/** One region's lists, each keyed by name (secrets by ARN and by name). */
export interface RegionInventory {
  secrets?: { byArn: Map<string, ResolvedSource>; byName: Map<string, ResolvedSource> };
  rules?: Map<string, Rule>;
  /** Functions with our cluster tag: their tags (configuration and State are the deep check's). */
  functions?: Map<string, Tags>;
  /** Log groups with our cluster tag: their tags (retention is the deep check's). */
  logGroups?: Map<string, Tags>;
}

export interface Inventory {
  /** When the listing started: nothing changed before then is missing from it (ListSecrets aside, see below). */
  takenAt: number;
  regions: Map<string, RegionInventory>;
  /** Roles under the IAM path, by name. */
  roles?: Map<string, Role>;
  /** Principal ARNs with an access entry in the cluster. */
  accessEntries?: Set<string>;
  /** The lists that failed, as "Operation region: message". */
  failed: string[];
  /** AWS calls the listing made. */
  calls: number;
}

// AWS's page maxima: a larger page is refused (or silently capped) by the service.
const PAGE = { secrets: 100, rules: 100, tagged: 100, roles: 1000, accessEntries: 100 };

// A function's or log group's ARN as the Tagging API gives it (a log group's without `:*`).
const TAGGED =
  /^arn:[a-z-]+:(?<service>lambda|logs):[a-z0-9-]+:\d{12}:(?:function:|log-group:)(?<name>[^:]+)(?::\*)?$/;

/**
 * Lists everything a SecretSync of these settings can own, in `regions` (the home region always).
 * ListSecrets is documented to lag recent changes by up to minutes: a secret changed, created or
 * re-tagged just now may show as it was. Callers act on what it shows only to give a pass, which
 * reads the secret again before it concludes anything final.
 */
export async function takeInventory(opts: {
  awsFor: (region: string) => AwsClients;
  settings: ControllerSettings;
  regions: Iterable<string>;
  now?: () => number;
}): Promise<Inventory> {
  const { awsFor, settings } = opts;
  const inv: Inventory = {
    takenAt: (opts.now ?? Date.now)(),
    regions: new Map(),
    failed: [],
    calls: 0,
  };
  const prefix = `${settings.namePrefix}-`;
  const home = awsFor(settings.region);
  const cluster = parseClusterArn(clusterArnOf(settings));
  const list = async <T>(operation: string, region: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (err) {
      inv.failed.push(`${operation} ${region}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const count = () => {
    inv.calls++;
  };

  const regional = async (region: string) => {
    const c = awsFor(region);
    const r: RegionInventory = {};
    inv.regions.set(region, r);
    await Promise.all([
      list('ListSecrets', region, async () => {
        const byArn = new Map<string, ResolvedSource>();
        const byName = new Map<string, ResolvedSource>();
        const pages = paginateListSecrets(
          { client: c.secretsManager, pageSize: PAGE.secrets },
          { IncludePlannedDeletion: true },
        );
        for (
          let p = await next(pages, count, 'ListSecrets');
          p;
          p = await next(pages, count, 'ListSecrets')
        ) {
          for (const e of p.SecretList ?? []) {
            if (!e.ARN || !e.Name) continue;
            const s = sourceOf({
              ...e,
              ARN: e.ARN,
              Name: e.Name,
              VersionIdsToStages: e.SecretVersionsToStages,
            });
            byArn.set(s.arn, s);
            byName.set(s.name, s);
          }
        }
        r.secrets = { byArn, byName };
      }),
      list('ListRules', region, async () => {
        const rules = new Map<string, Rule>();
        let NextToken: string | undefined;
        do {
          count();
          const out = await aws({ operation: 'ListRules', resource: prefix }, () =>
            c.events.send(
              new ListRulesCommand({
                NamePrefix: prefix,
                Limit: PAGE.rules,
                ...(NextToken ? { NextToken } : {}),
              }),
            ),
          );
          for (const rule of out.Rules ?? []) if (rule.Name) rules.set(rule.Name, rule);
          NextToken = out.NextToken;
        } while (NextToken);
        r.rules = rules;
      }),
      // Functions and log groups by our cluster tag: ARNs and tags only. ListFunctions would
      // return every function's environment variables in the region: not a right we want.
      list('GetResources', region, async () => {
        const functions = new Map<string, Tags>();
        const logGroups = new Map<string, Tags>();
        const pages = paginateGetResources(
          { client: c.tagging, pageSize: PAGE.tagged },
          {
            TagFilters: [{ Key: TAG.cluster, Values: [clusterArnOf(settings)] }],
            ResourceTypeFilters: ['lambda:function', 'logs:log-group'],
          },
        );
        for (
          let p = await next(pages, count, 'GetResources');
          p;
          p = await next(pages, count, 'GetResources')
        ) {
          for (const m of p.ResourceTagMappingList ?? []) {
            const found = TAGGED.exec(m.ResourceARN ?? '');
            if (!found?.groups) continue;
            const { service, name = '' } = found.groups;
            (service === 'lambda' ? functions : logGroups).set(name, fromTagList(m.Tags));
          }
        }
        r.functions = functions;
        r.logGroups = logGroups;
      }),
    ]);
  };

  await Promise.all([
    ...[...new Set([settings.region, ...opts.regions])].map(regional),
    list('ListRoles', 'global', async () => {
      const roles = new Map<string, Role>();
      const pages = paginateListRoles(
        { client: home.iam, pageSize: PAGE.roles },
        { PathPrefix: settings.iamPath },
      );
      for (let p = await next(pages, count, 'ListRoles'); p; p = await next(pages, count, 'ListRoles')) {
        for (const role of p.Roles ?? [])
          if (role.RoleName?.startsWith(prefix)) roles.set(role.RoleName, role);
      }
      inv.roles = roles;
    }),
    list('ListAccessEntries', cluster.region, async () => {
      const entries = new Set<string>();
      const pages = paginateListAccessEntries(
        { client: awsFor(cluster.region).eks, pageSize: PAGE.accessEntries },
        { clusterName: cluster.name },
      );
      for (
        let p = await next(pages, count, 'ListAccessEntries');
        p;
        p = await next(pages, count, 'ListAccessEntries')
      ) {
        for (const arn of p.accessEntries ?? []) entries.add(arn);
      }
      inv.accessEntries = entries;
    }),
  ]);
  return inv;
}

/** The next page of an SDK paginator, counted and with AWS's errors translated; undefined when done. */
async function next<T>(
  pages: AsyncGenerator<T>,
  count: () => void,
  operation: string,
): Promise<T | undefined> {
  const out = await aws({ operation, resource: '*' }, () => pages.next());
  if (out.done) return undefined;
  count();
  return out.value;
}

/** The secret a SecretSync names, as listed: by the ARN its last pass resolved, or by spec.source.secretId. */
export function listedSecret(
  r: RegionInventory | undefined,
  secretId: string,
  resolvedArn: string | undefined,
): ResolvedSource | undefined {
  const s = r?.secrets;
  if (!s) return undefined;
  const found = (resolvedArn && s.byArn.get(resolvedArn)) || s.byArn.get(secretId) || s.byName.get(secretId);
  // The ARN recorded must still be what secretId names (a name, a full or a partial ARN).
  if (!found) return undefined;
  const named = found.arn === secretId || found.name === secretId || found.arn.startsWith(`${secretId}-`);
  return named ? found : undefined;
}
