import { describe, expect, it } from 'vitest';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import type { Inventory } from './aws/inventory.ts';
import type { ResolvedSource } from './aws/source.ts';
import { ACCOUNT, functionCode, sampleSettings, sampleSync } from './aws/test-support.ts';
import { deepCheckAt, inventoryIntent, knownFrom, planHash, planOf } from './drift.ts';
import { plannedRecords } from './provision.ts';

// Pure logic: what the inventory decides per SecretSync, from lists built here (no AWS).
const settings = sampleSettings();
const code = functionCode();
const cluster = {
  endpoint: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
  certificateAuthorityData: 'Q0E=',
};
const ARN = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:prod/payments/db-AbCdEf`;
const NOW = Date.parse('2026-12-07T12:00:00Z');
const HOUR = 3_600_000;
const DEEP = 12 * HOUR;
const iso = (t: number) => new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');

const source = (over: Partial<ResolvedSource> = {}): ResolvedSource => ({
  arn: ARN,
  name: 'prod/payments/db',
  kmsKeyId: undefined,
  tags: {},
  deletedDate: undefined,
  stageVersions: { AWSCURRENT: 'v1' },
  lastChangedDate: new Date(NOW - 2 * HOUR),
  ...over,
});

/** A SecretSync Ready for its generation, last checked an hour ago, synced at v1. */
function settledSync(over: { uid?: string; checked?: number; lastInvoke?: number } = {}): SecretSync {
  const ss = sampleSync(over.uid ? { uid: over.uid } : {});
  ss.metadata.generation = 1;
  const plan = planOf(ss, { settings, code, cluster, secret: source() });
  ss.status = {
    observedGeneration: 1,
    secretArn: ARN,
    syncedVersionId: 'v1',
    lastSyncTime: iso(NOW - HOUR),
    lastInvokeTime: iso(over.lastInvoke ?? NOW - HOUR),
    checkedTime: iso(over.checked ?? NOW - HOUR),
    provisionedHash: planHash(plan, 'AROAROLEID'),
    conditions: [
      { type: 'Ready', status: 'True', reason: 'Ready', message: '', lastTransitionTime: iso(NOW) },
      { type: 'Synced', status: 'True', reason: 'Synced', message: '', lastTransitionTime: iso(NOW) },
    ],
  } as SecretSync['status'];
  return ss;
}

/** The lists as AWS would show that SecretSync's things, all in place. */
function inventoryOf(ss: SecretSync, src = source()): Inventory {
  const { aws } = planOf(ss, { settings, code, cluster, secret: src });
  return {
    takenAt: NOW,
    calls: 5,
    failed: [],
    regions: new Map([
      [
        'us-east-1',
        {
          secrets: { byArn: new Map([[src.arn, src]]), byName: new Map([[src.name, src]]) },
          rules: new Map([
            [
              aws.rule.name,
              {
                Name: aws.rule.name,
                Arn: aws.rule.arn,
                EventPattern: aws.rule.eventPattern,
                State: aws.rule.state,
                Description: aws.rule.description,
              },
            ],
          ]),
          functions: new Map([[aws.function.name, aws.function.tags]]),
          logGroups: new Map([[aws.logGroup.name, aws.logGroup.tags]]),
        },
      ],
    ]),
    roles: new Map([
      [
        aws.role.name,
        {
          RoleName: aws.role.name,
          Path: aws.role.path,
          Arn: aws.role.arn,
          RoleId: 'AROAROLEID',
          Description: aws.role.description,
          // As IAM lists it: URL-encoded.
          AssumeRolePolicyDocument: encodeURIComponent(aws.role.assumeRolePolicyDocument),
          CreateDate: new Date(NOW - 10 * HOUR),
        },
      ],
    ]),
    accessEntries: new Set([aws.accessEntry.principalArn]),
  };
}

const decide = (ss: SecretSync, inv: Inventory, now = NOW) =>
  inventoryIntent(ss, inv, { settings, code, cluster, now, deepMs: DEEP }).intent;

describe('inventoryIntent', () => {
  it('asks nothing of a settled SecretSync whose things are all listed as planned', () => {
    const ss = settledSync();
    expect(decide(ss, inventoryOf(ss))).toBeUndefined();
  });

  it('names each listed difference', () => {
    const ss = settledSync();
    const { aws } = planOf(ss, { settings, code, cluster, secret: source() });
    const cases: [string, (inv: Inventory) => void][] = [
      ['IAM role missing', (inv) => inv.roles?.clear()],
      ['log group missing', (inv) => inv.regions.get('us-east-1')?.logGroups?.clear()],
      ['function missing', (inv) => inv.regions.get('us-east-1')?.functions?.clear()],
      ['rule missing', (inv) => inv.regions.get('us-east-1')?.rules?.clear()],
      ['access entry missing', (inv) => inv.accessEntries?.clear()],
      ['secret not listed', (inv) => inv.regions.get('us-east-1')?.secrets?.byArn.clear()],
      [
        'rule differs',
        (inv) =>
          Object.assign(inv.regions.get('us-east-1')!.rules!.get(aws.rule.name)!, { State: 'DISABLED' }),
      ],
      [
        'IAM role differs',
        (inv) =>
          Object.assign(inv.roles!.get(aws.role.name)!, {
            AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
          }),
      ],
    ];
    for (const [why, edit] of cases) {
      const inv = inventoryOf(ss);
      edit(inv);
      if (why === 'secret not listed') inv.regions.get('us-east-1')!.secrets!.byName.clear();
      expect(decide(ss, inv)?.differs, why).toContain(why);
    }
  });

  it('concludes nothing from a list that failed', () => {
    const ss = settledSync();
    const inv = inventoryOf(ss);
    inv.roles = undefined;
    inv.accessEntries = undefined;
    const r = inv.regions.get('us-east-1')!;
    r.functions = undefined;
    r.rules = undefined;
    expect(decide(ss, inv)).toBeUndefined();
  });

  it('sees a plan changed by the settings, the code or a re-created role (the recorded digest)', () => {
    const ss = settledSync();
    const other = inventoryIntent(ss, inventoryOf(ss), {
      settings: sampleSettings({ memoryMb: 256 }),
      code,
      cluster,
      now: NOW,
      deepMs: DEEP,
    }).intent;
    expect(other?.differs).toContain('plan changed (settings, code, cluster or secret key)');
    const inv = inventoryOf(ss);
    inv.roles!.get([...inv.roles!.keys()][0]!)!.RoleId = 'AROANEWROLE';
    expect(decide(ss, inv)?.differs).toContain('plan changed (settings, code, cluster or secret key)');
  });

  it('catches a lost change event from the listed stage map, after the grace minute', () => {
    const ss = settledSync();
    const moved = source({
      stageVersions: { AWSCURRENT: 'v2' },
      lastChangedDate: new Date(NOW - 5 * 60_000),
    });
    expect(decide(ss, inventoryOf(ss, moved))?.differs).toEqual(['change event missed']);
    const justNow = source({ stageVersions: { AWSCURRENT: 'v2' }, lastChangedDate: new Date(NOW - 10_000) });
    expect(decide(ss, inventoryOf(ss, justNow))).toBeUndefined();
  });

  it('leaves SecretSyncs that are not settled to the work queue', () => {
    const ss = settledSync();
    ss.metadata.generation = 2;
    const inv = inventoryOf(ss);
    inv.roles?.clear();
    expect(decide(ss, inv)).toBeUndefined();
  });

  it('asks for the backstop resync alone when only it is due', () => {
    const ss = settledSync({ lastInvoke: NOW - 25 * HOUR });
    expect(decide(ss, inventoryOf(ss))).toEqual({ differs: [], deep: false, resync: true });
  });

  it('asks for a deep check when it is due', () => {
    const ss = settledSync({ checked: NOW - 2 * DEEP });
    expect(decide(ss, inventoryOf(ss))).toEqual({ differs: [], deep: true, resync: false });
  });
});

describe('deepCheckAt', () => {
  it('is never within half a period of the last check, and always within one and a half', () => {
    for (let i = 0; i < 200; i++) {
      const ss = settledSync({ uid: `uid-${i}`, checked: NOW });
      const at = deepCheckAt(ss, DEEP);
      expect(at).toBeGreaterThanOrEqual(NOW + DEEP / 2);
      expect(at).toBeLessThan(NOW + 1.5 * DEEP);
    }
  });

  it('spreads SecretSyncs checked together evenly over the period', () => {
    const slots = new Array(12).fill(0) as number[];
    for (let i = 0; i < 1200; i++) {
      const at = deepCheckAt(settledSync({ uid: `uid-${i}`, checked: NOW }), DEEP);
      slots[Math.floor((at - NOW - DEEP / 2) / HOUR)]!++;
    }
    // 100 an hour expected; a fair hash stays within ±40 % (a fixed set of uids: deterministic).
    for (const n of slots) expect(n).toBeGreaterThan(60);
    for (const n of slots) expect(n).toBeLessThan(140);
  });

  it('is due at once for a SecretSync never checked', () => {
    const ss = settledSync();
    delete ss.status?.checkedTime;
    expect(deepCheckAt(ss, DEEP)).toBe(0);
  });
});

describe('knownFrom', () => {
  const ss = settledSync();
  const plan = planOf(ss, { settings, code, cluster, secret: source() });
  const empty = (): Inventory => {
    const inv = inventoryOf(ss);
    inv.roles?.clear();
    inv.accessEntries?.clear();
    const r = inv.regions.get('us-east-1')!;
    r.functions?.clear();
    r.logGroups?.clear();
    r.rules?.clear();
    return inv;
  };

  it('creates what no list showed and no record names, without reading first; never the rule', () => {
    expect(knownFrom(empty(), plan, false, () => false)).toEqual({
      rule: {},
      role: { unlisted: true },
      logGroup: { unlisted: true },
      function: { unlisted: true },
      accessEntry: { unlisted: true },
    });
  });

  it('reads what status has a record of (written before each create: it may exist since the list)', () => {
    const recorded = new Set(plannedRecords(plan).map((r) => `${r.kind} ${r.id}`));
    const known = knownFrom(empty(), plan, false, (r) => recorded.has(`${r.kind} ${r.id}`));
    expect(known).toEqual({ rule: {}, role: {}, logGroup: {}, function: {}, accessEntry: {} });
  });

  it('hands listed rule and log group to a pass the inventory asked for only', () => {
    const inv = inventoryOf(ss);
    expect(knownFrom(inv, plan, false, () => true).rule).toEqual({});
    const asked = knownFrom(inv, plan, true, () => true);
    expect(asked.rule?.listed).toMatchObject({ Name: plan.aws.rule.name });
    expect(asked.logGroup?.listed).toEqual(plan.aws.logGroup.tags);
    expect(knownFrom(undefined, plan, true, () => false)).toEqual({});
  });
});
