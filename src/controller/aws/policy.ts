// JSON documents AWS stores for us (IAM policies, event patterns, Lambda resource policies) come
// back re-serialized, sometimes URL-encoded, with single values where we sent lists. Comparing
// strings would then see drift on every pass; these helpers compare meaning instead.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** JSON with object keys sorted at every level: equal values always give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** Parses a document as IAM returns it: URL-encoded (RFC 3986) JSON; plain JSON is accepted too. */
export function parseAwsDocument(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return JSON.parse(decodeURIComponent(raw));
  }
}

// Keys whose value IAM treats as a set: a single string means the same as a one-element list, and
// order carries no meaning.
const SET_VALUED = new Set(['Action', 'NotAction', 'Resource', 'NotResource']);

/** An IAM policy reduced to a canonical form, so two documents that grant the same compare equal. */
export function normalizePolicy(doc: unknown): Json {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return doc as Json;
  const { Statement, ...rest } = doc as Record<string, unknown>;
  const statements = Statement === undefined ? [] : Array.isArray(Statement) ? Statement : [Statement];
  return sortKeys({ ...rest, Statement: statements.map(normalizeStatement) }) as Json;
}

function normalizeStatement(statement: unknown): unknown {
  if (statement === null || typeof statement !== 'object') return statement;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(statement)) {
    if (SET_VALUED.has(key)) out[key] = asSet(value);
    else if (key === 'Principal' || key === 'NotPrincipal') out[key] = mapValues(value, asSet);
    // Condition: { operator: { key: value | [values] } }; the values of one key are a set.
    else if (key === 'Condition') out[key] = mapValues(value, (byKey) => mapValues(byKey, asSet));
    else out[key] = value;
  }
  return out;
}

function asSet(value: unknown): unknown {
  const list = Array.isArray(value) ? value : [value];
  return list.every((v) => typeof v === 'string') ? [...new Set(list as string[])].sort() : value;
}

function mapValues(value: unknown, f: (v: unknown) => unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return f(value);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, f(v)]));
}

/** Whether two IAM policy documents (objects or raw strings as AWS returns them) grant the same. */
export function samePolicy(a: unknown, b: unknown): boolean {
  const parse = (d: unknown) => (typeof d === 'string' ? parseAwsDocument(d) : d);
  return canonicalJson(normalizePolicy(parse(a))) === canonicalJson(normalizePolicy(parse(b)));
}

/** Whether two JSON documents (e.g. event patterns) are equal regardless of key order and spacing. */
export function sameJson(a: string, b: string): boolean {
  try {
    return canonicalJson(JSON.parse(a)) === canonicalJson(JSON.parse(b));
  } catch {
    return a === b;
  }
}
