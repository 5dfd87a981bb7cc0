// One shape for every provisioned thing (ACK's resource manager): a manager knows how to read,
// create, update, delete and judge one kind; `ensure` and `remove` below are the only places that
// walk read → ownership → create-or-diff → tags → health, and read → ownership → delete → confirm gone.

import { diffTags, isEmptyDiff, type TagDiff, type Tags } from './aws/tags.ts';
import { isNotFound, NotOursError, RetryLaterError } from './errors.ts';
import type { Owner } from './naming.ts';

/** The kinds a SecretSync's status records (status.resources[].kind). */
export const RECORDED_KINDS = [
  'IAMRole',
  'LogGroup',
  'Function',
  'EventRule',
  'AccessEntry',
  'Role',
  'RoleBinding',
  'Secret',
] as const;
export type RecordedKind = (typeof RECORDED_KINDS)[number];

/**
 * What a pass created, as the identity it was created with: teardown and "moved" cleanup read these,
 * never names recomputed from today's settings. `id` is the ARN of an AWS resource, the name of an
 * in-cluster one (in the SecretSync's namespace); `cluster` is the EKS cluster ARN of an access entry
 * (whose id is the principal ARN); `uid` the uid of a Secret the controller created itself.
 */
export interface ResourceRecord {
  kind: RecordedKind;
  id: string;
  cluster?: string;
  uid?: string;
}

/** What AWS (or Kubernetes) says about whether the thing can do its job. */
export type Health =
  | { state: 'ready' }
  /** Being created or updated: passes by itself. */
  | { state: 'busy'; message: string }
  /** Idle long enough for AWS to reclaim it; woken by use. */
  | { state: 'inactive'; code: string; message: string }
  /** Broken; `recreate` when AWS's documented fix is to delete and create it again. */
  | { state: 'failed'; code: string; message: string; recreate: boolean };

export const READY: Health = { state: 'ready' };

/** How an AWS resource identified by its ARN is recorded. */
export const recordedByArn = (kind: RecordedKind) => ({
  kind,
  toRecord: (arn: string): ResourceRecord => ({ kind, id: arn }),
  fromRecord: (r: ResourceRecord) => r.id,
});

/**
 * One provisioned kind. `I` identifies one instance (what `read` and `delete` need), `D` is its desired
 * state, `L` what a read returns. Env carries the clients (for AWS, per region).
 */
export interface Manager<Env, I, D, L> {
  /** For messages: "IAM role". */
  readonly title: string;
  /** Recorded in status (top-level things); sub-resources are deleted with their parent and have none. */
  readonly recorded?: {
    kind: RecordedKind;
    toRecord(id: I): ResourceRecord;
    fromRecord(r: ResourceRecord): I;
  };
  id(desired: D): I;
  /** For messages and logs. */
  describe(id: I): string;
  /** Undefined when absent. */
  read(env: Env, id: I): Promise<L | undefined>;
  /**
   * What `read` returns, from the thing as a list call showed it (the inventory) plus the reads the
   * list does not answer; undefined when it is gone meanwhile.
   */
  fromListed?(env: Env, id: I, listed: unknown): Promise<L | undefined>;
  /**
   * Whether what was read is the instance `id` names (a role found by name may sit under another
   * path: then it is not the recorded one). Default: yes.
   */
  matches?(latest: L, id: I): boolean;
  /** Whether the thing is this SecretSync's. Absent for sub-resources, which are their parent's. */
  owned?(latest: L, owner: Owner): boolean;
  create(env: Env, desired: D): Promise<L>;
  /** Why it must be deleted and created again (an immutable field differs), if it must. */
  replaceBecause?(desired: D, latest: L): string | undefined;
  /** Names of the fields (tags aside) that differ. */
  diff(desired: D, latest: L, env: Env): Promise<string[]> | string[];
  /** Writes the fields that differ; returns the new state when the answer carries it. */
  update(env: Env, desired: D, latest: L, fields: string[]): Promise<L | undefined>;
  /** Our tag keys only are compared (tags.ts); AWS's and others' are left alone. */
  tags?: {
    desired(desired: D): Tags;
    of(latest: L): Tags | undefined;
    write(env: Env, latest: L, diff: TagDiff): Promise<void>;
  };
  health?(latest: L): Health;
  delete(env: Env, latest: L, id: I): Promise<void>;
  /** The delete's answer is final and there is nothing to read back (the target Secret). */
  readonly deleteIsFinal?: boolean;
}

export interface Ensured<L> {
  latest: L;
  /** Something was written. */
  changed: boolean;
  created: boolean;
  health: Health;
  /** Set when it was deleted and created again: why. */
  replaced?: string;
}

/** How a pass may skip a read: what it already knows about the thing. */
export interface Known {
  /** There is nothing: its parent was created this pass. */
  absent?: boolean;
  /**
   * A list (the inventory) did not show it: create without reading first — a create that finds it
   * exists after all (created since the list) reads and goes on as usual. Only for kinds whose create
   * refuses an existing thing (not PutRule, which would overwrite).
   */
  unlisted?: boolean;
  /** As a list showed it, for `fromListed`. */
  listed?: unknown;
}

/** A create refused because the thing exists (IAM, Logs, Lambda and EKS each say it their way). */
const EXISTS = new Set(['AlreadyExists', 'ResourceInUse', 'FunctionUpdating']);
const existed = (err: unknown) => err instanceof RetryLaterError && EXISTS.has(err.reason);

/**
 * Read → not ours? refuse → must be replaced? delete → absent? create : diff → update → tag diff.
 * `known` skips reads the caller has answered (Known). A busy resource is not updated (AWS allows
 * one update at a time): the pass is retried shortly.
 */
export async function ensure<Env, I, D, L>(
  m: Manager<Env, I, D, L>,
  env: Env,
  desired: D,
  owner: Owner,
  known: Known = {},
): Promise<Ensured<L>> {
  const id = m.id(desired);
  if (known.unlisted && !known.absent) {
    try {
      const created = await m.create(env, desired);
      return { latest: created, changed: true, created: true, health: m.health?.(created) ?? READY };
    } catch (err) {
      if (!existed(err)) throw err;
    }
  }
  let latest = known.absent
    ? undefined
    : known.listed !== undefined && m.fromListed
      ? await m.fromListed(env, id, known.listed)
      : await m.read(env, id);
  let replaced: string | undefined;
  if (latest !== undefined) {
    if (m.owned && !m.owned(latest, owner)) throw new NotOursError(m.title, m.describe(id));
    const health = m.health?.(latest) ?? READY;
    replaced =
      m.replaceBecause?.(desired, latest) ??
      (health.state === 'failed' && health.recreate ? `${health.code}: ${health.message}` : undefined);
    if (replaced !== undefined) {
      await m.delete(env, latest, id).catch(ignoreNotFound);
      latest = undefined;
    } else if (health.state === 'busy') {
      throw new RetryLaterError('Busy', `${m.title} ${m.describe(id)} ${health.message}`, undefined, {
        afterMs: 3_000,
      });
    }
  }
  if (latest === undefined) {
    const created = await m.create(env, desired);
    return {
      latest: created,
      changed: true,
      created: true,
      health: m.health?.(created) ?? READY,
      ...(replaced === undefined ? {} : { replaced }),
    };
  }
  let changed = false;
  const { fields, tags } = await drift(m, env, desired, latest);
  if (fields.length > 0) {
    latest = (await m.update(env, desired, latest, fields)) ?? latest;
    changed = true;
  }
  if (m.tags && tags && !isEmptyDiff(tags)) {
    await m.tags.write(env, latest, tags);
    changed = true;
  }
  return { latest, changed, created: false, health: m.health?.(latest) ?? READY };
}

/** What an update would write: the fields that differ, and our tags that differ. */
async function drift<Env, I, D, L>(
  m: Manager<Env, I, D, L>,
  env: Env,
  desired: D,
  latest: L,
): Promise<{ fields: string[]; tags: TagDiff | undefined }> {
  const fields = await m.diff(desired, latest, env);
  return { fields, tags: m.tags && diffTags(m.tags.desired(desired), m.tags.of(latest)) };
}

export type InspectedState = 'exists' | 'differs' | 'missing' | 'not-ours';

export interface Inspection<L> {
  state: InspectedState;
  /** Absent when missing. */
  latest?: L;
  /** What `ensure` would change (differs): fields, tags, or why it would replace it. */
  differences: string[];
}

/**
 * `ensure` without writing (`secretsync plan --check`): read → not ours? → what it would replace or
 * update. Only the manager's reads run (its `diff` may read too: the role's inline policy).
 */
export async function inspect<Env, I, D, L>(
  m: Manager<Env, I, D, L>,
  env: Env,
  desired: D,
  owner: Owner,
  known: { absent?: boolean } = {},
): Promise<Inspection<L>> {
  const latest = known.absent ? undefined : await m.read(env, m.id(desired));
  if (latest === undefined) return { state: 'missing', differences: [] };
  if (m.owned && !m.owned(latest, owner)) return { state: 'not-ours', latest, differences: [] };
  const differences: string[] = [];
  const health = m.health?.(latest) ?? READY;
  const replace =
    m.replaceBecause?.(desired, latest) ??
    (health.state === 'failed' && health.recreate ? `${health.code}: ${health.message}` : undefined);
  if (replace !== undefined) differences.push(`replaced: ${replace}`);
  else {
    const { fields, tags } = await drift(m, env, desired, latest);
    differences.push(...fields);
    if (tags && Object.keys(tags.set).length > 0)
      differences.push(`tags: ${Object.keys(tags.set).join(', ')}`);
    if (tags && tags.remove.length > 0) differences.push(`tags removed: ${tags.remove.join(', ')}`);
  }
  return { state: differences.length > 0 ? 'differs' : 'exists', latest, differences };
}

export type Removal = 'gone' | 'not-ours' | 'pending';

/**
 * Read → absent (or something else now under that name)? gone → not ours? leave it → delete →
 * read again. 'pending' when it is still there (AWS deletes some things asynchronously).
 */
export async function remove<Env, I, D, L>(
  m: Manager<Env, I, D, L>,
  env: Env,
  id: I,
  owner: Owner,
): Promise<Removal> {
  const isIt = (l: L | undefined): l is L => l !== undefined && (m.matches?.(l, id) ?? true);
  const latest = await m.read(env, id);
  if (!isIt(latest)) return 'gone';
  if (m.owned && !m.owned(latest, owner)) return 'not-ours';
  try {
    await m.delete(env, latest, id);
  } catch (err) {
    if (err instanceof NotOursError) return 'not-ours';
    ignoreNotFound(err);
  }
  if (m.deleteIsFinal) return 'gone';
  return isIt(await m.read(env, id)) ? 'pending' : 'gone';
}

/**
 * Polls `read` until the thing is healthy (a function just created or updated takes a second or
 * two). Only for the pass that created or updated it: see invocation.ts for why this beats a requeue.
 */
export async function waitUntilHealthy<Env, I, D, L>(
  m: Manager<Env, I, D, L>,
  env: Env,
  id: I,
  budgetMs: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<Health | undefined> {
  let waited = 0;
  let last: Health | undefined;
  for (const delay of [500, 1_000, 1_500, 2_000, 3_000]) {
    if (waited + delay > budgetMs) return last;
    await sleep(delay);
    waited += delay;
    const latest = await m.read(env, id);
    last = latest === undefined ? undefined : (m.health?.(latest) ?? READY);
    if (last?.state !== 'busy') return last;
  }
  return last;
}

export function ignoreNotFound(err: unknown): void {
  if (!isNotFound(err)) throw err;
}
