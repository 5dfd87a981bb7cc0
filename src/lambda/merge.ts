// What a sync does to the target Secret's data, computed without I/O.
//
// Merge is a server-side apply of `data` under our field manager. The API server then does the
// bookkeeping: keys we apply are ours, keys other managers own stay, and a key we applied before but
// leave out of this apply is deleted — unless another manager also owns it, in which case it stays.
// This module predicts that outcome (for the status counts and to skip no-op writes) from the
// Secret's managedFields; it does not replace it.
// Replace is a PUT of exactly the AWS keys, guarded by resourceVersion.

import type { MergePolicy } from './config.ts';
import type { SecretData } from './payload.ts';

/** The function's field manager for its SecretSync's status (DESIGN §5). */
export const LAMBDA_FIELD_MANAGER = 'secretsync-lambda';

/**
 * The field manager of one SecretSync's writes to its target Secret: one per SecretSync, so several
 * SecretSyncs can write disjoint keys of one Secret and server-side apply removes, for each, only the
 * keys it wrote. SecretSync names are at most 63 characters; managers may have 128.
 */
export const TARGET_MANAGER_PREFIX = 'secretsync/';
export const targetFieldManager = (syncName: string): string => `${TARGET_MANAGER_PREFIX}${syncName}`;

/**
 * Keys of `data` that other SecretSyncs wrote (any operation: Apply under Merge, Update under Replace),
 * each with the first such SecretSync's name.
 */
export function keysOfOtherSyncs(
  managedFields: readonly ManagedFieldsEntry[] | undefined,
  ours: string,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of managedFields ?? []) {
    if (!e.manager?.startsWith(TARGET_MANAGER_PREFIX) || e.manager === ours) continue;
    const other = e.manager.slice(TARGET_MANAGER_PREFIX.length);
    for (const key of dataKeys([e])) if (!out.has(key)) out.set(key, other);
  }
  return out;
}

/** The parts of a metav1.ManagedFieldsEntry this module reads. */
export interface ManagedFieldsEntry {
  manager?: string | undefined;
  operation?: string | undefined;
  fieldsType?: string | undefined;
  fieldsV1?: unknown;
  subresource?: string | undefined;
}

export interface SecretApplyPatch {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace: string };
  data: Record<string, string>;
}

export interface MergeInput {
  name: string;
  namespace: string;
  /** The Secret's current .data (base64 values); undefined when it has none. */
  existing: Readonly<Record<string, string>> | undefined;
  /** The keys AWS says the Secret should hold, after mapping. */
  desired: SecretData;
  /** Keys our field manager applied before: keysOwnedBy(managedFields, targetFieldManager(name)). */
  owned: ReadonlySet<string>;
  /** Keys any other manager (or our own Update operations) also owns; these survive an apply that omits them. */
  ownedByOthers?: ReadonlySet<string> | undefined;
  policy: MergePolicy;
}

/** Key names per kind of change, sorted; each key of the result appears in exactly one list. */
export interface MergeChanges {
  added: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
  kept: string[];
  /** A write is needed: the data differs, or (Merge) our ownership of a key must be claimed or released. */
  changed: boolean;
}

export type MergeOutcome =
  | (MergeChanges & { policy: 'Merge'; patch: SecretApplyPatch })
  | (MergeChanges & { policy: 'Replace'; data: Record<string, string> });

export function computeMerge(input: MergeInput): MergeOutcome {
  const existing = input.existing ?? {};
  const ownedByOthers = input.ownedByOthers ?? new Set<string>();
  const desired = new Map([...input.desired].map(([key, bytes]) => [key, bytes.toString('base64')]));
  const data = Object.fromEntries([...desired].sort(([a], [b]) => compare(a, b)));

  const added: string[] = [];
  const updated: string[] = [];
  const unchanged: string[] = [];
  for (const [key, bytes] of input.desired) {
    // hasOwn: `constructor` and `__proto__` are valid Secret keys, and must not find Object's.
    const current = Object.hasOwn(existing, key) ? existing[key] : undefined;
    if (current === undefined) added.push(key);
    // Compare bytes, not base64 text: the API server's encoding is canonical, but nothing needs it to be.
    else if (Buffer.from(current, 'base64').equals(bytes)) unchanged.push(key);
    else updated.push(key);
  }

  const removed: string[] = [];
  const kept: string[] = [];
  for (const key of Object.keys(existing)) {
    if (desired.has(key)) continue;
    const goes = input.policy === 'Replace' || (input.owned.has(key) && !ownedByOthers.has(key));
    (goes ? removed : kept).push(key);
  }

  const changes = {
    added: added.sort(compare),
    updated: updated.sort(compare),
    unchanged: unchanged.sort(compare),
    removed: removed.sort(compare),
    kept: kept.sort(compare),
  };
  const dataChanged = added.length + updated.length + removed.length > 0;

  if (input.policy === 'Replace') return { ...changes, changed: dataChanged, policy: 'Replace', data };
  // The apply is also needed when only ownership would change. A key that already holds the AWS
  // value but was written by someone else (say, before migrating to secretsync) must be claimed,
  // or its later removal in AWS would leave it behind; a key we co-own that AWS dropped must be
  // released, or it would stay ours and be deleted once the co-owner lets go.
  const ownershipChanged =
    unchanged.some((key) => !input.owned.has(key)) || kept.some((key) => input.owned.has(key));
  return {
    ...changes,
    changed: dataChanged || ownershipChanged,
    policy: 'Merge',
    patch: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: input.name, namespace: input.namespace },
      data,
    },
  };
}

/** Keys of `data` that `manager` owns through server-side apply (operation Apply). */
export function keysOwnedBy(
  managedFields: readonly ManagedFieldsEntry[] | undefined,
  manager: string,
): Set<string> {
  return dataKeys((managedFields ?? []).filter((e) => e.manager === manager && e.operation === 'Apply'));
}

/** Keys of `data` owned by any entry other than `manager`'s Apply entry (its Update entries included). */
export function keysOwnedByOthers(
  managedFields: readonly ManagedFieldsEntry[] | undefined,
  manager: string,
): Set<string> {
  return dataKeys((managedFields ?? []).filter((e) => !(e.manager === manager && e.operation === 'Apply')));
}

// fieldsV1 is a trie of "f:<field>" keys; a Secret's data keys are the "f:<key>" children of
// "f:data" ("." marks ownership of the map itself and is not a key).
function dataKeys(entries: readonly ManagedFieldsEntry[]): Set<string> {
  const keys = new Set<string>();
  for (const entry of entries) {
    if (entry.subresource || (entry.fieldsType !== undefined && entry.fieldsType !== 'FieldsV1')) continue;
    const data = asObject(asObject(entry.fieldsV1)?.['f:data']);
    for (const field of Object.keys(data ?? {})) {
      if (field.startsWith('f:')) keys.add(field.slice(2));
    }
  }
  return keys;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

// Code-unit order: stable across locales, so logs and patches are reproducible.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
