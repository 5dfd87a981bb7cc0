/**
 * How unkind the test bed's AWS is: the switches of what real AWS does and moto does not.
 *
 * - IAM propagation (iam-propagation.ts): a role change reaches Lambda, signed Secrets Manager calls and
 *   EKS only after a few seconds; a new or changed access entry reaches the authenticator only after a few
 *   seconds. Off by default, so ordinary suites keep their timing; on with SECRETSYNC_TESTBED_UNKIND=1 in
 *   the environment of the process that starts the test bed, startTestbed({unkind}) or POST /_testbed/unkind.
 * - Roles Lambda can never assume (lambda-checks.ts): role-name substrings, as an SCP would; always applied,
 *   empty by default.
 * - ListSecrets' lag (secrets-list-lag.ts): ListSecrets answers with the secrets as they were this many ms
 *   ago; applied whenever above 0, propagation or not; 0 (off) by default.
 * Lambda's limits (lambda-checks.ts) and the account's quotas (quotas.ts) are always enforced: they cost
 * nothing, and their values live with the account's settings (aws-account.ts, /_testbed/account).
 */
import type { ControlHandler } from './front-door.ts';

/** [minMs, maxMs]: a delay is drawn uniformly in it, once per change. */
export type RangeMs = [minMs: number, maxMs: number];

export interface UnkindSettings {
  /** Propagation delays on (IAM and access entries). */
  enabled: boolean;
  /** A role change (create, trust, policies, boundary) reaches Lambda, STS sessions and EKS after this. */
  iamPropagationMs: RangeMs;
  /** A new or changed access entry is honoured by the authenticator after this. */
  accessEntryPropagationMs: RangeMs;
  /** Lambda cannot assume a role whose name contains one of these (always applied, propagation or not). */
  unassumableRoles: string[];
  /** ListSecrets shows the secrets as they were this many ms ago (0: as they are). */
  listSecretsLagMs: number;
}

export const UNKIND_ENV = 'SECRETSYNC_TESTBED_UNKIND';

export const defaultUnkindSettings = (): UnkindSettings => ({
  enabled: false,
  iamPropagationMs: [2000, 6000],
  accessEntryPropagationMs: [2000, 5000],
  unassumableRoles: [],
  listSecretsLagMs: 0,
});

/** The delay a change with draw `u` (0..1) waits under `range`. */
export const delayWithin = ([min, max]: RangeMs, u: number): number => min + u * (max - min);

/**
 * What the test bed starts with: the option when given (true, false, or settings — which turn propagation
 * on unless they say `enabled: false`), else SECRETSYNC_TESTBED_UNKIND=1 (or true) turns it on.
 */
export function initialUnkindSettings(
  option: boolean | Partial<UnkindSettings> | undefined,
  env: NodeJS.ProcessEnv = process.env,
): UnkindSettings {
  const settings = defaultUnkindSettings();
  if (option === undefined) {
    settings.enabled = /^(1|true|yes|on)$/i.test(env[UNKIND_ENV] ?? '');
    return settings;
  }
  if (typeof option === 'boolean') return { ...settings, enabled: option };
  return applyUnkindPatch(settings, { enabled: true, ...parseUnkindPatch(option) });
}

const isRange = (v: unknown): v is RangeMs =>
  Array.isArray(v) &&
  v.length === 2 &&
  v.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0) &&
  v[0] <= v[1];

/** Checks a partial update; throws with the reason the control endpoint answers 400 with. */
export function parseUnkindPatch(value: unknown): Partial<UnkindSettings> {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new Error('body must be a JSON object');
  const v = value as Record<string, unknown>;
  const known = new Set(Object.keys(defaultUnkindSettings()));
  const unknown = Object.keys(v).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`unknown setting(s): ${unknown.join(', ')}`);
  if (v.enabled !== undefined && typeof v.enabled !== 'boolean') throw new Error('enabled must be a boolean');
  for (const k of ['iamPropagationMs', 'accessEntryPropagationMs']) {
    if (v[k] !== undefined && !isRange(v[k]))
      throw new Error(`${k} must be [minMs, maxMs] with 0 <= min <= max`);
  }
  if (
    v.unassumableRoles !== undefined &&
    !(Array.isArray(v.unassumableRoles) && v.unassumableRoles.every((s) => typeof s === 'string' && s !== ''))
  )
    throw new Error('unassumableRoles must be a list of non-empty strings');
  if (
    v.listSecretsLagMs !== undefined &&
    !(
      typeof v.listSecretsLagMs === 'number' &&
      Number.isFinite(v.listSecretsLagMs) &&
      v.listSecretsLagMs >= 0
    )
  )
    throw new Error('listSecretsLagMs must be a number >= 0');
  return v as Partial<UnkindSettings>;
}

/** Applies a checked update in place (the pieces hold this very object) and returns it. */
export function applyUnkindPatch(settings: UnkindSettings, patch: Partial<UnkindSettings>): UnkindSettings {
  if (patch.enabled !== undefined) settings.enabled = patch.enabled;
  if (patch.iamPropagationMs) settings.iamPropagationMs = [...patch.iamPropagationMs];
  if (patch.accessEntryPropagationMs) settings.accessEntryPropagationMs = [...patch.accessEntryPropagationMs];
  if (patch.unassumableRoles) settings.unassumableRoles = [...patch.unassumableRoles];
  if (patch.listSecretsLagMs !== undefined) settings.listSecretsLagMs = patch.listSecretsLagMs;
  return settings;
}

/** GET: the settings; POST: a partial update; DELETE: back to what the test bed started with. */
export function unkindControl(settings: UnkindSettings, initial: UnkindSettings): ControlHandler {
  return async (req, body) => {
    if (req.method === 'DELETE') {
      const start = structuredClone(initial);
      applyUnkindPatch(settings, start);
      return { json: settings };
    }
    if (req.method === 'GET') return { json: settings };
    if (req.method !== 'POST') return { status: 405, json: { error: 'GET, POST or DELETE' } };
    try {
      return { json: applyUnkindPatch(settings, parseUnkindPatch(JSON.parse(body.toString() || '{}'))) };
    } catch (err) {
      return { status: 400, json: { error: (err as Error).message } };
    }
  };
}

async function control(frontDoorUrl: string, method: string, body?: unknown): Promise<UnkindSettings> {
  const res = await fetch(`${frontDoorUrl}/_testbed/unkind`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const out = (await res.json()) as UnkindSettings & { error?: string };
  if (!res.ok) throw new Error(`${method} /_testbed/unkind: ${res.status} ${out.error ?? ''}`);
  return out;
}

/** Client for tests in other workers: changes some settings; answers with all of them. */
export const setUnkind = (frontDoorUrl: string, patch: Partial<UnkindSettings>): Promise<UnkindSettings> =>
  control(frontDoorUrl, 'POST', patch);

/** Client for tests in other workers: the settings the test bed started with again. */
export const resetUnkind = (frontDoorUrl: string): Promise<UnkindSettings> => control(frontDoorUrl, 'DELETE');

export const getUnkind = (frontDoorUrl: string): Promise<UnkindSettings> => control(frontDoorUrl, 'GET');
