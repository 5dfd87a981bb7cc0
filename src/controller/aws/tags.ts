// The tag diff every ensure shares. We manage only our own keys: tags AWS adds (`aws:*`) and tags
// others add (cost centres, organisation tag policies) are neither compared nor removed, so two
// writers never fight over a resource's tags.

import { isOurTagKey } from '../naming.ts';

export type Tags = Record<string, string>;

export interface TagDiff {
  /** Keys to add or overwrite. */
  set: Tags;
  /** Our keys present on the resource that the desired state no longer has. */
  remove: string[];
}

export function diffTags(desired: Readonly<Tags>, actual: Readonly<Tags> | undefined): TagDiff {
  const current = actual ?? {};
  const set: Tags = {};
  for (const [key, value] of Object.entries(desired)) if (current[key] !== value) set[key] = value;
  const remove = Object.keys(current)
    .filter((key) => !key.startsWith('aws:') && isOurTagKey(key) && !(key in desired))
    .sort();
  return { set, remove };
}

export function isEmptyDiff(diff: TagDiff): boolean {
  return Object.keys(diff.set).length === 0 && diff.remove.length === 0;
}

/** IAM and EventBridge list tags as [{Key, Value}]. */
export function fromTagList(
  list: readonly { Key?: string | undefined; Value?: string | undefined }[] | undefined,
): Tags {
  const tags: Tags = {};
  for (const t of list ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
  return tags;
}

export function toTagList(tags: Readonly<Tags>): { Key: string; Value: string }[] {
  return Object.keys(tags)
    .sort()
    .map((Key) => ({ Key, Value: tags[Key] as string }));
}
