import {
  CreateSecretCommand,
  DescribeSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { V1Secret } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { keysOwnedBy, targetFieldManager } from '../../src/lambda/merge.ts';
import type { SecretSync, SecretSyncSpec } from '../../src/shared/secretsync.generated.ts';
import type { RoutedEvent } from '../testbed/event-router.ts';
import type { AsyncInvocation, LogLine } from '../testbed/lambda-runner.ts';
import {
  applySecretSync,
  condition,
  eventually,
  getSecretSync,
  idle,
  waitReady,
} from './controller-support.ts';
import { awsConfig, control, core, freshNamespace } from './support.ts';

/**
 * Helpers for the sync function's integration tests (lambda-sync.test.ts): one SecretSync per test,
 * provisioned by the real controller; AWS changes through the front door; observations of the target
 * Secret, the SecretSync status and what the test bed recorded (events routed, invocations, logs).
 */

export type Value = string | Uint8Array;

/** A provisioned SecretSync whose first sync has landed. */
export interface Provisioned {
  ns: string;
  name: string;
  target: string;
  arn: string;
  /** The function's name (last part of status.functionArn). */
  fn: string;
  /** The AWS version the first sync wrote. */
  version: string;
  ss: SecretSync;
}

const sm = () => new SecretsManagerClient(awsConfig());

const secretValue = (value: Value) =>
  typeof value === 'string' ? { SecretString: value } : { SecretBinary: value };

/** Creates the AWS secret, applies a SecretSync for it and waits for Ready and the first Synced. */
export async function provision(
  value: Value,
  spec: { target?: Partial<SecretSyncSpec['target']>; mergePolicy?: SecretSyncSpec['mergePolicy'] } = {},
): Promise<Provisioned> {
  const ns = await freshNamespace('ls');
  const name = 'app';
  const target = spec.target?.name ?? 'app-secret';
  const out = await sm().send(
    new CreateSecretCommand({ Name: `lambda-sync/${ns}/app`, ...secretValue(value) }),
  );
  const arn = out.ARN!;
  await applySecretSync(ns, name, {
    source: { secretId: `lambda-sync/${ns}/app` },
    ...spec,
    target: { ...spec.target, name: target },
  });
  await waitReady(ns, name);
  const version = await currentVersion(arn);
  expect(out.VersionId).toBe(version);
  const ss = await syncedTo({ ns, name }, version);
  return { ns, name, target, arn, fn: ss.status!.functionArn!.split(':').pop()!, version, ss };
}

/** The version AWSCURRENT points to now (from metadata, as an operator would look). */
export async function currentVersion(arn: string): Promise<string> {
  const d = await sm().send(new DescribeSecretCommand({ SecretId: arn }));
  const entry = Object.entries(d.VersionIdsToStages ?? {}).find(([, stages]) =>
    stages.includes('AWSCURRENT'),
  );
  if (!entry) throw new Error(`${arn} has no AWSCURRENT version`);
  return entry[0];
}

/** PutSecretValue; returns the new VersionId. */
export async function putValue(arn: string, value: Value, stages?: string[]): Promise<string> {
  const out = await sm().send(
    new PutSecretValueCommand({
      SecretId: arn,
      ...secretValue(value),
      ...(stages ? { VersionStages: stages } : {}),
    }),
  );
  return out.VersionId!;
}

/** Changes the AWS value, waits until the test bed is idle and the sync of that version reported. */
export async function change(p: Provisioned, value: Value): Promise<{ version: string; ss: SecretSync }> {
  // The run that reported the last version may still be re-checking it; a change made meanwhile
  // would be synced by that run and leave this one nothing to count.
  await idle();
  const version = await putValue(p.arn, value);
  await idle();
  return { version, ss: await syncedTo(p, version) };
}

/** Waits for Synced=True reporting `version`. */
export function syncedTo(s: { ns: string; name: string }, version: string): Promise<SecretSync> {
  return eventually(`${s.ns}/${s.name} Synced at ${version}`, async () => {
    const ss = await getSecretSync(s.ns, s.name);
    const c = condition(ss, 'Synced');
    return c?.status === 'True' && ss?.status?.syncedVersionId === version ? ss : undefined;
  });
}

/** Waits for Synced=False with `reason`. */
export function failedWith(s: { ns: string; name: string }, reason: string): Promise<SecretSync> {
  return eventually(`${s.ns}/${s.name} Synced=False ${reason}`, async () => {
    const ss = await getSecretSync(s.ns, s.name);
    const c = condition(ss, 'Synced');
    return c?.status === 'False' && c.reason === reason ? ss : undefined;
  });
}

export const readTarget = (p: Pick<Provisioned, 'ns' | 'target'>): Promise<V1Secret> =>
  core().readNamespacedSecret({ namespace: p.ns, name: p.target });

/** A Secret's data as UTF-8 strings. */
export const decoded = (s: V1Secret): Record<string, string> =>
  Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));

export const b64 = (text: string) => Buffer.from(text).toString('base64');

/** Keys of `data` the SecretSync's function owns through server-side apply (its own field manager). */
export const lambdaOwned = (s: V1Secret, syncName: string) =>
  [...keysOwnedBy(s.metadata?.managedFields, targetFieldManager(syncName))].sort();

/** Keys of `data` a given manager owns (any operation). */
export function ownedBy(s: V1Secret, manager: string): string[] {
  const keys = new Set<string>();
  for (const e of s.metadata?.managedFields ?? []) {
    if (e.manager !== manager) continue;
    const data = (e.fieldsV1 as Record<string, Record<string, unknown>> | undefined)?.['f:data'] ?? {};
    for (const f of Object.keys(data)) if (f.startsWith('f:')) keys.add(f.slice(2));
  }
  return [...keys].sort();
}

/** The counts of lastSyncChanges with zeros filled in. */
export const counts = (ss: SecretSync) => ({
  added: 0,
  updated: 0,
  unchanged: 0,
  removed: 0,
  kept: 0,
  ...ss.status?.lastSyncChanges,
});

/** Events the router produced for one secret. */
export const eventsFor = async (arn: string) =>
  (await control<RoutedEvent[]>('history')).filter((r) => r.event.resources.includes(arn));

export const invocations = () => control<AsyncInvocation[]>('invocations');

export const logLines = (fn: string) => control<LogLine[]>(`logs?function=${encodeURIComponent(fn)}`);

/** The function's pino `sync` records (one per invocation), parsed. */
export async function syncRecords(fn: string): Promise<Record<string, unknown>[]> {
  const records: Record<string, unknown>[] = [];
  for (const l of await logLines(fn)) {
    if (l.stream !== 'stdout') continue;
    try {
      const r = JSON.parse(l.text) as Record<string, unknown>;
      if (r.message === 'sync') records.push({ ...r, requestId: l.requestId });
    } catch {
      // not JSON: not ours to judge here
    }
  }
  return records;
}
