/**
 * Lambda function states on demand (Lambda developer guide, "Lambda function states"). moto reports every
 * function Active/Successful the moment it exists, so a product that never meets Pending, Inactive or Failed
 * would first meet them in a real account. A test sets an override per (region, function name):
 * - every answer that shows the function's state through the front door carries the overridden
 *   State/StateReason/StateReasonCode/LastUpdateStatus/… (GetFunction, GetFunctionConfiguration,
 *   UpdateFunctionConfiguration, UpdateFunctionCode; ListFunctions shows no state, list-fidelity.ts);
 * - Failed and Pending: Invoke, UpdateFunctionConfiguration and UpdateFunctionCode answer 409
 *   ResourceConflictException; DeleteFunction works and drops the override, so a function created again
 *   under the name starts clean;
 * - Inactive: an Invoke fails (409, state Inactive) and starts restoring the function: Pending with
 *   StateReasonCode Restoring for `wakeMs`, then Active (override dropped). An update wakes it the same way
 *   but goes through. The docs say nothing different for asynchronous (Event) invokes, so they get the
 *   same 409;
 * - LastUpdateStatus InProgress: updates answer 409 (an update is in progress); invokes still run.
 * Invokes are refused by the Lambda runner (lambda-runner.ts), which shares this store, so an event the
 * router delivers is refused as a front-door Invoke is. Mount the interceptor after the runner's: the
 * runner answers Invoke and captures uploaded code; this one answers the control-plane calls above, and
 * only for functions that have an override (every other call passes untouched).
 */
import { randomUUID } from 'node:crypto';
import type { AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';
import { type ControlHandler, forward } from './front-door.ts';
import { apiError, functionNameOf, LambdaApiError } from './lambda-runner.ts';

export const FUNCTION_STATES = ['Pending', 'Active', 'Inactive', 'Failed'] as const;
export type FunctionState = (typeof FUNCTION_STATES)[number];
export const LAST_UPDATE_STATUSES = ['Successful', 'Failed', 'InProgress'] as const;
export type LastUpdateStatus = (typeof LAST_UPDATE_STATUSES)[number];

/** The body of POST /_testbed/function-state. */
export interface FunctionStateRequest {
  functionName: string;
  /** Default: the test bed's region. */
  region?: string;
  state?: FunctionState;
  stateReason?: string;
  stateReasonCode?: string;
  lastUpdateStatus?: LastUpdateStatus;
  lastUpdateStatusReason?: string;
  lastUpdateStatusReasonCode?: string;
  /** How long an Inactive function stays Pending (Restoring) once woken; default 2000 ms. */
  wakeMs?: number;
}

/** The FunctionConfiguration fields an override sets; undefined removes the field from moto's answer. */
export type StateFields = Partial<
  Record<
    | 'State'
    | 'StateReason'
    | 'StateReasonCode'
    | 'LastUpdateStatus'
    | 'LastUpdateStatusReason'
    | 'LastUpdateStatusReasonCode',
    string | undefined
  >
>;

/** One override as GET/POST /_testbed/function-state show it. */
export interface FunctionStateView {
  region: string;
  functionName: string;
  wakeMs: number;
  configuration: StateFields;
}

interface Override extends FunctionStateView {
  timer?: NodeJS.Timeout;
}

// What Lambda reports with each state when the test does not say (reason codes from the API reference).
const DEFAULT_REASONS: Partial<Record<FunctionState, [code: string, reason: string]>> = {
  Pending: ['Creating', 'The function is being created.'],
  Inactive: ['Idle', 'The function is inactive because it has not been invoked for a long time.'],
  Failed: ['InternalError', 'The function could not be created.'],
};
const RESTORING: StateFields = {
  State: 'Pending',
  StateReasonCode: 'Restoring',
  StateReason: 'The function is being restored.',
};

const stateConflict = (state: string) =>
  new LambdaApiError(
    409,
    'ResourceConflictException',
    `The operation cannot be performed at this time. The function is currently in the following state: ${state}`,
  );

/** Overrides by (region, function name), shared by the interceptor, the runner and the control endpoint. */
export class FunctionStateStore {
  readonly #overrides = new Map<string, Override>();
  readonly #defaultRegion: string;
  readonly #defaultWakeMs: number;

  constructor(opts: { defaultRegion: string; defaultWakeMs?: number }) {
    this.#defaultRegion = opts.defaultRegion;
    this.#defaultWakeMs = opts.defaultWakeMs ?? 2000;
  }

  /** Replaces the function's override (no merging with an earlier one). */
  set(r: FunctionStateRequest): FunctionStateView {
    const region = r.region ?? this.#defaultRegion;
    this.delete(region, r.functionName);
    const configuration: StateFields = {};
    if (r.state) {
      const [code, reason] = DEFAULT_REASONS[r.state] ?? [];
      Object.assign(configuration, {
        State: r.state,
        StateReasonCode: r.stateReasonCode ?? code,
        StateReason: r.stateReason ?? reason,
      });
    }
    if (r.lastUpdateStatus) {
      Object.assign(configuration, {
        LastUpdateStatus: r.lastUpdateStatus,
        LastUpdateStatusReasonCode: r.lastUpdateStatusReasonCode,
        LastUpdateStatusReason: r.lastUpdateStatusReason,
      });
    }
    const o: Override = {
      region,
      functionName: r.functionName,
      wakeMs: r.wakeMs ?? this.#defaultWakeMs,
      configuration,
    };
    this.#overrides.set(key(region, r.functionName), o);
    return view(o);
  }

  get(region: string, functionName: string): FunctionStateView | undefined {
    const o = this.#overrides.get(key(region, functionName));
    return o && view(o);
  }

  list(): FunctionStateView[] {
    return [...this.#overrides.values()].map(view);
  }

  get size(): number {
    return this.#overrides.size;
  }

  delete(region: string, functionName: string): void {
    const k = key(region, functionName);
    clearTimeout(this.#overrides.get(k)?.timer);
    this.#overrides.delete(k);
  }

  clear(): void {
    for (const o of this.#overrides.values()) clearTimeout(o.timer);
    this.#overrides.clear();
  }

  /** Writes the override's fields into a FunctionConfiguration-shaped object (moto's answer). */
  patch(region: string, config: Record<string, unknown>): void {
    const name = typeof config.FunctionName === 'string' ? config.FunctionName : '';
    const o = this.#overrides.get(key(region, name));
    for (const [field, value] of Object.entries(o?.configuration ?? {})) {
      if (value === undefined) delete config[field];
      else config[field] = value;
    }
  }

  /** Why Lambda would refuse to invoke the function now, if it would; invoking an Inactive one wakes it. */
  refuseInvoke(region: string, functionName: string): LambdaApiError | undefined {
    const o = this.#overrides.get(key(region, functionName));
    const state = o?.configuration.State;
    if (!o || !state || state === 'Active') return undefined;
    if (state === 'Inactive') this.#wake(o);
    return stateConflict(state);
  }

  /** Why UpdateFunctionConfiguration/UpdateFunctionCode would be refused now; an Inactive function wakes. */
  refuseUpdate(region: string, functionName: string, functionArn: string): LambdaApiError | undefined {
    const o = this.#overrides.get(key(region, functionName));
    const state = o?.configuration.State;
    if (!o) return undefined;
    if (state === 'Failed' || state === 'Pending') return stateConflict(state);
    if (o.configuration.LastUpdateStatus === 'InProgress') {
      return new LambdaApiError(
        409,
        'ResourceConflictException',
        `The operation cannot be performed at this time. An update is in progress for resource: ${functionArn}`,
      );
    }
    if (state === 'Inactive') this.#wake(o);
    return undefined;
  }

  // Lambda recreates the function's resources (Pending, Restoring), then it is Active again: here the
  // override simply goes away, unless a test replaced it in the meantime.
  #wake(o: Override): void {
    o.configuration = { ...o.configuration, ...RESTORING };
    o.timer = setTimeout(() => {
      const k = key(o.region, o.functionName);
      if (this.#overrides.get(k) === o) this.#overrides.delete(k);
    }, o.wakeMs);
    o.timer.unref();
  }
}

const key = (region: string, functionName: string) => `${region}/${functionName}`;
const view = ({ region, functionName, wakeMs, configuration }: Override): FunctionStateView => ({
  region,
  functionName,
  wakeMs,
  configuration: { ...configuration },
});

const FUNCTIONS = /^\/2015-03-31\/functions\/?$/;
const FUNCTION = /^\/2015-03-31\/functions\/([^/]+)(\/configuration|\/code)?\/?$/;

/** The front-door interceptor; see the file comment. */
export function functionStatesInterceptor(opts: {
  motoUrl: string;
  accountId: string;
  store: FunctionStateStore;
}): Interceptor {
  const { motoUrl, accountId, store } = opts;
  const json = (res: AwsResponse) => JSON.parse(res.body.toString()) as Record<string, unknown>;
  const reply = (res: AwsResponse, body: unknown): AwsResponse => ({ ...res, body: JSON.stringify(body) });

  return async (req) => {
    // Nothing overridden: leave every call alone (the common case costs one check).
    if (req.service !== 'lambda' || store.size === 0) return undefined;
    if (FUNCTIONS.test(req.path)) {
      if (req.method === 'POST') {
        // A function created under a name starts clean, even if the old one vanished behind our back.
        const name = parseName(req);
        if (!name || !store.get(req.region, name)) return undefined;
        const res = await forward(motoUrl, req);
        if (res.status < 300) store.delete(req.region, name);
        return res;
      }
      return undefined;
    }
    const m = FUNCTION.exec(req.path);
    if (!m) return undefined;
    const segment = decodeURIComponent(m[1]!);
    const region = segment.startsWith('arn:') ? (segment.split(':')[3] ?? req.region) : req.region;
    const name = functionNameOf(segment);
    if (!store.get(region, name)) return undefined;
    const sub = m[2] ?? '';

    if (req.method === 'DELETE' && sub === '') {
      const res = await forward(motoUrl, req);
      if (res.status < 300 && !req.query.get('Qualifier')) store.delete(region, name);
      return res;
    }
    // GetFunction, GetFunctionConfiguration; UpdateFunctionConfiguration, UpdateFunctionCode.
    const read = req.method === 'GET' && sub !== '/code';
    const update = req.method === 'PUT' && sub !== '';
    if (update) {
      const arn = `arn:aws:lambda:${region}:${accountId}:function:${name}`;
      const refusal = store.refuseUpdate(region, name, arn);
      if (refusal) return apiError(randomUUID(), refusal);
    }
    if (read || update) {
      const res = await forward(motoUrl, req);
      if (res.status !== 200) return res;
      const body = json(res);
      // GetFunction nests the configuration; the others answer with it.
      const config = sub === '' ? (body.Configuration as Record<string, unknown> | undefined) : body;
      if (config) store.patch(region, config);
      return reply(res, body);
    }
    return undefined;
  };
}

function parseName(req: AwsRequest): string | undefined {
  try {
    const name = (JSON.parse(req.body.toString()) as { FunctionName?: unknown }).FunctionName;
    return typeof name === 'string' ? functionNameOf(name) : undefined;
  } catch {
    return undefined;
  }
}

/** Checks a POST body; throws with the reason the endpoint answers 400 with. */
export function parseFunctionStateRequest(value: unknown): FunctionStateRequest {
  const r = value as Record<string, unknown>;
  if (!r || typeof r !== 'object') throw new Error('body must be a JSON object');
  if (typeof r.functionName !== 'string' || r.functionName === '')
    throw new Error('functionName is required');
  if (r.state !== undefined && !FUNCTION_STATES.includes(r.state as FunctionState))
    throw new Error(`state must be one of ${FUNCTION_STATES.join(', ')}`);
  if (
    r.lastUpdateStatus !== undefined &&
    !LAST_UPDATE_STATUSES.includes(r.lastUpdateStatus as LastUpdateStatus)
  )
    throw new Error(`lastUpdateStatus must be one of ${LAST_UPDATE_STATUSES.join(', ')}`);
  if (r.state === undefined && r.lastUpdateStatus === undefined)
    throw new Error('state or lastUpdateStatus is required');
  for (const f of [
    'region',
    'stateReason',
    'stateReasonCode',
    'lastUpdateStatusReason',
    'lastUpdateStatusReasonCode',
  ]) {
    if (r[f] !== undefined && typeof r[f] !== 'string') throw new Error(`${f} must be a string`);
  }
  if ((r.stateReason ?? r.stateReasonCode) !== undefined && r.state === undefined)
    throw new Error('stateReason/stateReasonCode need a state');
  if ((r.lastUpdateStatusReason ?? r.lastUpdateStatusReasonCode) !== undefined && !r.lastUpdateStatus)
    throw new Error('lastUpdateStatusReason/lastUpdateStatusReasonCode need a lastUpdateStatus');
  if (r.wakeMs !== undefined && !(typeof r.wakeMs === 'number' && r.wakeMs >= 0))
    throw new Error('wakeMs must be a number >= 0');
  return r as unknown as FunctionStateRequest;
}

/** POST sets one override, DELETE clears all, GET lists them. */
export function functionStatesControl(store: FunctionStateStore): ControlHandler {
  return async (req, body) => {
    if (req.method === 'DELETE') {
      store.clear();
      return { json: { ok: true } };
    }
    if (req.method === 'GET') return { json: store.list() };
    if (req.method !== 'POST') return { status: 405, json: { error: 'GET, POST or DELETE' } };
    try {
      return { json: store.set(parseFunctionStateRequest(JSON.parse(body.toString()))) };
    } catch (err) {
      return { status: 400, json: { error: (err as Error).message } };
    }
  };
}

async function control(frontDoorUrl: string, method: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${frontDoorUrl}/_testbed/function-state`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const out = (await res.json()) as { error?: string };
  if (!res.ok) throw new Error(`${method} /_testbed/function-state: ${res.status} ${out.error ?? ''}`);
  return out;
}

/** Client for tests in other workers: sets (replaces) the override of one function. */
export async function setFunctionState(
  frontDoorUrl: string,
  request: FunctionStateRequest,
): Promise<FunctionStateView> {
  return (await control(frontDoorUrl, 'POST', request)) as FunctionStateView;
}

/** Client for tests in other workers: drops every override (functions show what moto says again). */
export async function clearFunctionStates(frontDoorUrl: string): Promise<void> {
  await control(frontDoorUrl, 'DELETE');
}
