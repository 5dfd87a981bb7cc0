import { EventBridgeClient, ListRulesCommand } from '@aws-sdk/client-eventbridge';
import { GetRoleCommand, IAMClient, paginateListRoles } from '@aws-sdk/client-iam';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import {
  awsCalls,
  type CallRecord,
  controllerCalls,
  deleteAndFinalize,
  namesFor,
  patchSecretSyncStatus,
  readyIs,
  reconcileUntil,
  resetAwsCalls,
  startControllerWith,
  type TestController,
} from '../tests/controller-helpers.ts';
import {
  applySecretSync,
  condition,
  createAwsSecret,
  eventually,
  getSecretSync,
  secretData,
} from '../tests/controller-support.ts';
import { awsConfig, bed, control, freshNamespace } from '../tests/support.ts';

/**
 * `make test-unkind`: the product against an AWS as unkind as the real one (e2e/testbed/unkind.ts) —
 * IAM and access-entry propagation delays at their defaults (2–6 s and 2–5 s, jittered), Lambda's
 * 4 KB environment, quotas enforced. Everything must work with no manual step. Figures (time to the
 * first sync, AWS calls per SecretSync) are printed, never asserted: benchmarks measure, tests check.
 */

const iam = () => new IAMClient(awsConfig());
const lambda = () => new LambdaClient(awsConfig());
const events = () => new EventBridgeClient(awsConfig());

const unkind = (body: unknown) =>
  control('unkind', { method: 'POST', body: JSON.stringify(body) }) as Promise<Record<string, unknown>>;
const account = (quotas: Record<string, number>) =>
  control('account', { method: 'POST', body: JSON.stringify({ quotas }) });
const ROLES = 'iam/L-FE177D64';
const RULES = 'events/L-244521F2';

async function countRoles(): Promise<number> {
  let n = 0;
  for await (const page of paginateListRoles({ client: iam() }, {})) n += page.Roles?.length ?? 0;
  return n;
}

async function countRules(): Promise<number> {
  let n = 0;
  let NextToken: string | undefined;
  do {
    const out = await events().send(new ListRulesCommand({ NextToken }));
    n += out.Rules?.length ?? 0;
    NextToken = out.NextToken;
  } while (NextToken);
  return n;
}

const exists = (p: Promise<unknown>) =>
  p.then(
    () => true,
    (err: { name?: string }) => {
      if (/NotFound|NoSuchEntity/.test(err.name ?? '')) return false;
      throw err;
    },
  );

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};

const refusals = (calls: CallRecord[], operation: string) =>
  calls.filter((c) => c.operation === operation && c.status >= 400 && c.status < 500 && !c.fault).length;

describe('an AWS as unkind as the real one', () => {
  let c: TestController;
  let home: string;
  const made: [string, string][] = [];

  beforeAll(async () => {
    const settings = await unkind({ enabled: true });
    expect(settings.enabled).toBe(true);
    home = await freshNamespace('unkind');
    c = await startControllerWith({
      args: ['--tenancy=allow-all', `--namespaces=${home}`],
      logLevel: 'warn',
    });
  });
  afterAll(async () => {
    await control('unkind', { method: 'DELETE' }).catch(() => {});
    await control('account', { method: 'DELETE' }).catch(() => {});
    for (const [ns, name] of made) await deleteAndFinalize(c, ns, name).catch(() => {});
    await c?.stop();
  });

  /** Every SecretSync Synced=True, as the informer and the queue get there by themselves. */
  async function allSynced(ns: string, names: string[], timeoutMs: number): Promise<SecretSync[]> {
    return eventually(
      `${names.length} SecretSyncs synced`,
      async () => {
        const all = await Promise.all(names.map((n) => getSecretSync(ns, n)));
        return all.every((ss) => condition(ss, 'Synced')?.status === 'True')
          ? (all as SecretSync[])
          : undefined;
      },
      timeoutMs,
    );
  }

  it('50 new SecretSyncs reach Ready and their first sync lands, through every propagation delay', {
    timeout: 600_000,
  }, async () => {
    const N = 50;
    const names = Array.from({ length: N }, (_, i) => `app-${String(i).padStart(2, '0')}`);
    for (const name of names)
      await createAwsSecret(`unkind/${home}/${name}`, JSON.stringify({ password: name }));
    await resetAwsCalls();
    for (const name of names) {
      await applySecretSync(home, name, { source: { secretId: `unkind/${home}/${name}` } });
      made.push([home, name]);
    }
    const synced = await allSynced(home, names, 540_000);

    for (const ss of synced) {
      expect(condition(ss, 'Ready')?.status).toBe('True');
      expect(ss.status?.accessChangedTime).toBeDefined();
      expect(await secretData(home, ss.metadata.name)).toEqual({ password: ss.metadata.name });
    }
    // The delays really bit: Lambda refused roles not yet assumable, EKS principals not yet known,
    // Secrets Manager denied functions whose role had not propagated (or the access entry had not).
    const calls = await awsCalls();
    const ctl = await controllerCalls();
    const bit = {
      createFunctionRefused: refusals(ctl, 'CreateFunction'),
      accessEntryRefused: refusals(ctl, 'CreateAccessEntry'),
      getSecretValueDenied: refusals(
        calls.filter((x) => x.accessKeyId !== bed().aws.credentials.accessKeyId),
        'GetSecretValue',
      ),
    };
    expect(bit.createFunctionRefused + bit.accessEntryRefused + bit.getSecretValueDenied).toBeGreaterThan(0);

    const seconds = synced.map(
      (ss) =>
        (Date.parse(condition(ss, 'Synced')?.lastTransitionTime ?? '') -
          Date.parse(ss.metadata.creationTimestamp ?? '')) /
        1000,
    );
    const figures = {
      secretSyncs: N,
      firstSyncSeconds: { p50: percentile(seconds, 50), max: Math.max(...seconds) },
      controllerAwsCallsPerSecretSync: +(ctl.length / N).toFixed(1),
      ...bit,
    };
    process.stdout.write(`[unkind] ${JSON.stringify(figures)}\n`);
  });

  it('100 mappings of the longest allowed names sync: the mapping is not in the 4 KB environment', {
    timeout: 120_000,
  }, async () => {
    const keys = Array.from({ length: 100 }, (_, i) => ({
      from: `${String(i).padStart(3, '0')}${'f'.repeat(253)}`,
      to: `${String(i).padStart(3, '0')}${'t'.repeat(250)}`,
    }));
    const value = Object.fromEntries(keys.map((k) => [k.from, `v${k.from.slice(0, 3)}`]));
    const name = 'many-keys';
    await createAwsSecret(`unkind/${home}/${name}`, JSON.stringify(value));
    await applySecretSync(home, name, { source: { secretId: `unkind/${home}/${name}` }, target: { keys } });
    made.push([home, name]);
    await allSynced(home, [name], 110_000);
    const data = (await secretData(home, name)) ?? {};
    expect(Object.keys(data)).toHaveLength(100);
    expect(data[keys[99]!.to]).toBe('v099');
  });

  it('a role Lambda truly cannot assume: Provisioning while IAM may still propagate, then RoleNotAssumable; fixed, it goes on', {
    timeout: 180_000,
  }, async () => {
    const ns = await freshNamespace('unassumable');
    const name = 'app';
    const { roleName, functionName } = namesFor(ns, name);
    await unkind({ unassumableRoles: [roleName] });
    try {
      await createAwsSecret(`unkind/${ns}/${name}`, JSON.stringify({ k: 'v' }));
      await applySecretSync(ns, name, { source: { secretId: `unkind/${ns}/${name}` } });
      made.push([ns, name]);
      const waiting = await reconcileUntil(c, ns, name, (ss) => ss?.status?.accessChangedTime !== undefined);
      expect(condition(waiting, 'Ready')).toMatchObject({ status: 'False', reason: 'Provisioning' });
      expect(condition(waiting, 'Ready')?.message).toContain('cannot be assumed by Lambda');

      // Ten minutes later (the role's change time moved back, as the clock would): a verdict.
      const tenMinutesAgo = new Date(Date.now() - 600_000).toISOString().replace(/\.\d+Z$/, 'Z');
      await patchSecretSyncStatus(ns, name, { status: { accessChangedTime: tenMinutesAgo } });
      const stuck = await reconcileUntil(c, ns, name, readyIs('False', 'RoleNotAssumable'));
      expect(condition(stuck, 'Ready')?.message).toMatch(/trust policy .* SCP or permissions boundary/);
      expect(await exists(lambda().send(new GetFunctionCommand({ FunctionName: functionName })))).toBe(false);
    } finally {
      await unkind({ unassumableRoles: [] });
    }
    const ready = await reconcileUntil(c, ns, name, readyIs('True', 'Ready'), 90_000);
    expect(ready?.status?.functionArn).toBeDefined();
  });

  it('quotas: a SecretSync over the rule or the role quota is refused and leaves nothing; raised, it goes on', {
    timeout: 180_000,
  }, async () => {
    const ns = await freshNamespace('quota');
    const name = 'app';
    const names = namesFor(ns, name);
    await createAwsSecret(`unkind/${ns}/${name}`, JSON.stringify({ k: 'v' }));
    await applySecretSync(ns, name, { source: { secretId: `unkind/${ns}/${name}` } });
    made.push([ns, name]);
    const nothingLeft = async () => {
      expect(await exists(iam().send(new GetRoleCommand({ RoleName: names.roleName })))).toBe(false);
      expect(await exists(lambda().send(new GetFunctionCommand({ FunctionName: names.functionName })))).toBe(
        false,
      );
      const rules = await events().send(new ListRulesCommand({ NamePrefix: names.ruleName }));
      expect(rules.Rules ?? []).toEqual([]);
    };

    // The bus is full: nothing is created at all.
    await account({ [RULES]: await countRules(), [ROLES]: 10_000 });
    const rulesFull = await reconcileUntil(c, ns, name, readyIs('False', 'QuotaExceeded'));
    expect(condition(rulesFull, 'Ready')?.message).toContain('EventBridge rules per event bus is full');
    expect(condition(rulesFull, 'Ready')?.message).toContain('--quota-code L-244521F2');
    await nothingLeft();

    // The account's roles are full: the rule created first is removed again.
    await account({ [RULES]: 10_000, [ROLES]: await countRoles() });
    const rolesFull = await reconcileUntil(c, ns, name, readyIs('False', 'QuotaExceeded'));
    expect(condition(rolesFull, 'Ready')?.message).toContain('IAM roles per account is full');
    await nothingLeft();

    await account({ [RULES]: 10_000, [ROLES]: 10_000 });
    await reconcileUntil(c, ns, name, readyIs('True', 'Ready'), 90_000);
  });
});
