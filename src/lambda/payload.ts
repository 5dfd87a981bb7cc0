// From a GetSecretValue result to the bytes of the Secret's data keys.
//
// - SecretString holding a JSON object → one key per member. String members as UTF-8; any other
//   member (number, boolean, null, array, object) JSON-encoded, with numbers kept exactly as
//   written (12345678901234567890 stays that, instead of becoming 12345678901234567000).
// - Any other SecretString (plain text, "", a JSON array, a JSON scalar, `null`) → key `value`, the
//   string as UTF-8, untouched.
// - SecretBinary → key `value`, the bytes as they are.
// - A key mapping then selects and renames; a mapped `from` the secret lacks is InvalidPayload.
// - A template (template.ts) builds keys from the secret's keys as parsed, before the mapping; the
//   Secret then gets the templated keys only, or with copyKeys the mapped keys too (a templated key
//   taking the place of a copied one of the same name).
// - Every resulting key must be a valid Secret key (InvalidKey) and the total must fit Kubernetes'
//   Secret size limit (TooLarge). Nothing is written when either fails.
// - Text that is not valid Unicode (an unpaired UTF-16 surrogate, which JSON's \uD800 escapes can
//   carry) has no exact UTF-8 form: InvalidPayload, rather than writing U+FFFD and reporting Synced.
// Errors name keys (InvalidKey, missing mapped keys, InvalidTemplate) but never values.

import { quoteKey, SyncError } from './errors.ts';
import { renderTemplates, type TargetTemplate } from './template.ts';

/** The fields of GetSecretValueCommandOutput this module reads. */
export interface SecretValue {
  SecretString?: string | undefined;
  SecretBinary?: Uint8Array | undefined;
}

/** One entry of spec.target.keys: copy AWS key `from` to Secret key `to` (default: `from`). */
export interface KeyMapping {
  from: string;
  to?: string | undefined;
}

export type SecretData = Map<string, Buffer>;

/** The key a non-JSON-object or binary secret is stored under (documented in the CRD). */
export const PLAIN_SECRET_KEY = 'value';

// Kubernetes' own rule (apimachinery IsConfigMapKey), repeated in the CRD for `to` and `from`. The
// API server also refuses a key that starts with '..' (a projected volume's own `..data` entries).
export const SECRET_KEY_RULE =
  "letters, digits, '-', '_' and '.', at most 253 characters, not '.' and not starting with '..'";
const SECRET_KEY_PATTERN = /^[-._a-zA-Z0-9]+$/;
const MAX_SECRET_KEY_LENGTH = 253;

export function isValidSecretKey(key: string): boolean {
  return (
    key.length <= MAX_SECRET_KEY_LENGTH &&
    SECRET_KEY_PATTERN.test(key) &&
    key !== '.' &&
    !key.startsWith('..')
  );
}

// The API server rejects a Secret whose data (sum of key bytes + value bytes, before base64) exceeds
// 1 MiB. We apply the same rule to the AWS keys alone, which is conservative in one direction only:
// under Merge, keys other writers keep in the Secret also count, and the API server will still refuse
// that write (reported from its answer, not from here). Secrets Manager caps a secret at 64 KiB, so
// this guards the mapping code and other sources rather than today's AWS.
export const MAX_SECRET_DATA_BYTES = 1024 * 1024;

const MAX_KEYS_LISTED = 5;

/** Parse, map, render and validate: the keys the target Secret should hold. */
export function secretDataFrom(
  value: SecretValue,
  mapping: readonly KeyMapping[] | undefined,
  template?: TargetTemplate,
): SecretData {
  const parsed = parseSecretValue(value);
  const copied: SecretData =
    template === undefined || template.copyKeys ? applyKeyMapping(parsed, mapping) : new Map();
  const data =
    template === undefined
      ? copied
      : new Map([...copied, ...renderTemplates(template, parsed, MAX_SECRET_DATA_BYTES)]);
  validateSecretData(data);
  return data;
}

export function parseSecretValue(value: SecretValue): SecretData {
  if (value.SecretString !== undefined) {
    const object = parseJsonObject(value.SecretString);
    if (object === undefined) return new Map([[PLAIN_SECRET_KEY, utf8(value.SecretString)]]);
    const data: SecretData = new Map();
    for (const [key, member] of Object.entries(object)) {
      // Non-string members need no check: JSON.stringify escapes an unpaired surrogate losslessly.
      data.set(key, typeof member === 'string' ? utf8(member, key) : Buffer.from(encodeMember(key, member)));
    }
    return data;
  }
  if (value.SecretBinary !== undefined) return new Map([[PLAIN_SECRET_KEY, Buffer.from(value.SecretBinary)]]);
  throw new SyncError('InvalidPayload', 'the secret version has neither SecretString nor SecretBinary');
}

export function applyKeyMapping(data: SecretData, mapping: readonly KeyMapping[] | undefined): SecretData {
  if (mapping === undefined) return data;
  const missing = mapping.filter((m) => !data.has(m.from)).map((m) => m.from);
  if (missing.length > 0) {
    throw new SyncError(
      'InvalidPayload',
      `spec.target.keys names ${listKeys(missing)} but the AWS secret has no such key` +
        (missing.length > 1 ? 's' : ''),
    );
  }
  return new Map(mapping.map((m) => [m.to ?? m.from, data.get(m.from)!]));
}

export function validateSecretData(data: SecretData): void {
  const invalid = [...data.keys()].filter((key) => !isValidSecretKey(key));
  if (invalid.length > 0) {
    const what = invalid.length === 1 ? 'is not a valid Secret key' : 'are not valid Secret keys';
    throw new SyncError(
      'InvalidKey',
      `${listKeys(invalid)} ${what} (allowed: ${SECRET_KEY_RULE}); ` +
        'rename with spec.target.keys or fix the AWS secret',
    );
  }
  let size = 0;
  for (const [key, bytes] of data) size += Buffer.byteLength(key, 'utf8') + bytes.length;
  if (size > MAX_SECRET_DATA_BYTES) {
    throw new SyncError(
      'TooLarge',
      `the synced keys total ${size} bytes, over Kubernetes' Secret limit of ${MAX_SECRET_DATA_BYTES} bytes`,
    );
  }
}

// JSON.rawJSON and the reviver's source text (ES2025, Node ≥ 21) are not in TypeScript's es2024 lib.
type RawJson = JSON & { rawJSON(text: string): unknown };

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    // JSON.parse itself is iterative in V8, so depth cannot overflow the stack here. Its error
    // message quotes the input, so it is dropped: not JSON just means plain text.
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  try {
    // Second pass only for objects: keep every number's source text so re-encoding is lossless.
    // The reviver walk recurses, unlike the parse; deep nesting ends up in the catch below.
    return JSON.parse(text, (_key, member, context?: { source?: string }) =>
      typeof member === 'number' && context?.source !== undefined
        ? (JSON as RawJson).rawJSON(context.source)
        : member,
    ) as Record<string, unknown>;
  } catch (err) {
    throw tooDeep(err);
  }
}

// Buffer.from would turn an unpaired surrogate into U+FFFD: the Secret would hold something other
// than the AWS value while the status said Synced.
function utf8(text: string, key?: string): Buffer {
  if (text.isWellFormed()) return Buffer.from(text, 'utf8');
  const what = key === undefined ? "the secret's text" : `the value of ${quoteKey(key)}`;
  throw new SyncError(
    'InvalidPayload',
    `${what} is not valid Unicode (it holds an unpaired UTF-16 surrogate), so it has no exact UTF-8 form; fix the AWS secret`,
  );
}

function encodeMember(key: string, member: unknown): string {
  try {
    return JSON.stringify(member);
  } catch (err) {
    throw tooDeep(err, key);
  }
}

// JSON.stringify and the reviver recurse; a value nested some thousands of levels deep exhausts the
// stack. That is a RangeError, caught here so a hostile secret yields a status, not a crash.
function tooDeep(err: unknown, key?: string): unknown {
  if (!(err instanceof RangeError)) return err;
  const where = key === undefined ? 'a value' : `the value of ${quoteKey(key)}`;
  return new SyncError('InvalidPayload', `${where} in the secret's JSON is nested too deeply to re-encode`);
}

function listKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, MAX_KEYS_LISTED).map(quoteKey).join(', ');
  return keys.length > MAX_KEYS_LISTED ? `${shown} and ${keys.length - MAX_KEYS_LISTED} more` : shown;
}
