import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { classify, serverError, throttlingError } from './aws-classify.ts';
import type { AwsRequest, AwsResponse, Interceptor, Observer } from './aws-types.ts';

/**
 * The one address the product's AWS SDK clients talk to. Each request is classified (service,
 * operation), recorded, possibly failed on purpose (fault rules), offered to the interceptors that
 * emulate what moto lacks, and otherwise forwarded to moto unchanged; observers then see moto's answer.
 * Paths under /_testbed/ are the test bed's own control API.
 */
export interface FaultRule {
  service?: string;
  operation?: string;
  /**
   * throttle/500/503: answered at once with that error; timeout: never answered (nothing done);
   * hold-before: never answered and never done — the caller is stuck before the step;
   * hold-after: done (moto and the test bed act on it) but never answered — the caller is stuck
   * after the step without knowing it happened. The hold kinds mark a kill point for crash tests.
   * delay: done and answered normally, `delayMs` later (a slow endpoint; a pass kept in flight).
   */
  kind: 'throttle' | '500' | '503' | 'timeout' | 'hold-before' | 'hold-after' | 'delay';
  /** delay: how long the call waits before it goes on. */
  delayMs?: number;
  /** Only calls signed with this access key (e.g. the controller's, not the functions'). */
  accessKeyId?: string;
  /** Only calls whose resource (name/ARN in the body or path) contains this. */
  resource?: string;
  /** Probability per matching call, 0..1. */
  rate?: number;
  /** Fail exactly the Nth matching calls (1-based), counted from when the rule was added. */
  nth?: number[];
  /** Deterministic randomness for `rate`, so a run can be repeated. */
  seed?: number;
}

export interface CallRecord {
  seq: number;
  time: number;
  service: string;
  operation: string;
  method: string;
  path: string;
  region: string;
  accessKeyId?: string;
  status: number;
  fault?: string;
  /** Resource named by the call when it is easy to tell (name/ARN in the body or path). */
  resource?: string;
}

export type ControlHandler = (
  req: IncomingMessage,
  body: Buffer,
  query: URLSearchParams,
) => Promise<{ status?: number; json?: unknown } | undefined>;

export interface FrontDoor {
  url: string;
  use(interceptor: Interceptor): void;
  observe(observer: Observer): void;
  control(path: string, handler: ControlHandler): void;
  calls(): CallRecord[];
  resetCalls(): void;
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  close(): Promise<void>;
}

interface ActiveFault {
  rule: FaultRule;
  seen: number;
  rand: () => number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

function resourceOf(req: AwsRequest): string | undefined {
  const ct = String(req.headers['content-type'] ?? '');
  try {
    if (ct.includes('json') && req.body.length > 0) {
      const b = JSON.parse(req.body.toString('utf8')) as Record<string, unknown>;
      for (const k of [
        'SecretId',
        'Name',
        'FunctionName',
        'Rule',
        'logGroupName',
        'ResourceArn',
        'resourceArn',
      ]) {
        if (typeof b[k] === 'string') return b[k] as string;
      }
    }
    if (ct.startsWith('application/x-www-form-urlencoded')) {
      const q = new URLSearchParams(req.body.toString('utf8'));
      for (const k of ['RoleName', 'PolicyArn', 'RoleArn']) {
        const v = q.get(k);
        if (v) return v;
      }
    }
  } catch {
    // not JSON: no resource
  }
  const m = /^\/(?:20\d\d-\d\d-\d\d\/functions|clusters|2017-03-31\/tags|tags)\/([^/]+)/.exec(req.path);
  return m ? decodeURIComponent(m[1]!) : undefined;
}

/** Sends a request on to moto as it came (moto checks no signature) and returns moto's answer. */
export function forward(motoUrl: string, req: AwsRequest): Promise<AwsResponse> {
  const target = new URL(motoUrl);
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: target.host };
    const qs = req.query.toString();
    const out = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.path + (qs ? `?${qs}` : ''),
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') h[k] = String(v);
          }
          resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(req.body);
  });
}

export async function startFrontDoor(opts: {
  motoUrl: string;
  /** The address it listens on (default 127.0.0.1). */
  host?: string;
  log?: (msg: string) => void;
}): Promise<FrontDoor> {
  const interceptors: Interceptor[] = [];
  const observers: Observer[] = [];
  const controls = new Map<string, ControlHandler>();
  let records: CallRecord[] = [];
  let seq = 0;
  let faults: ActiveFault[] = [];

  function pickFault(c: CallRecord): FaultRule | undefined {
    for (const f of faults) {
      if (f.rule.service && f.rule.service !== c.service) continue;
      if (f.rule.operation && f.rule.operation !== c.operation) continue;
      if (f.rule.accessKeyId && f.rule.accessKeyId !== c.accessKeyId) continue;
      if (f.rule.resource && !c.resource?.includes(f.rule.resource)) continue;
      f.seen++;
      if (f.rule.nth?.includes(f.seen)) return f.rule;
      if (f.rule.rate !== undefined && f.rand() < f.rule.rate) return f.rule;
    }
    return undefined;
  }

  function send(res: ServerResponse, r: AwsResponse) {
    const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
    res.writeHead(r.status, { ...r.headers, 'content-length': String(body.length) });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://front-door');
    const body = await readBody(req);
    const control = url.pathname.startsWith('/_testbed/') ? controls.get(url.pathname) : undefined;
    if (url.pathname.startsWith('/_testbed/')) {
      const out = control
        ? await control(req, body, url.searchParams)
        : { status: 404, json: { error: 'unknown' } };
      const payload = JSON.stringify(out?.json ?? {});
      res.writeHead(out?.status ?? 200, { 'content-type': 'application/json' });
      res.end(payload);
      return;
    }
    const c = classify(req.method ?? 'GET', url.pathname, req.headers, body);
    const awsReq: AwsRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body,
      service: c.service,
      operation: c.operation,
      region: c.region,
      ...(c.accessKeyId ? { accessKeyId: c.accessKeyId } : {}),
    };
    const record: CallRecord = {
      seq: ++seq,
      time: Date.now(),
      service: c.service,
      operation: c.operation,
      method: awsReq.method,
      path: awsReq.path,
      region: c.region,
      status: 0,
      ...(c.accessKeyId ? { accessKeyId: c.accessKeyId } : {}),
    };
    const resource = resourceOf(awsReq);
    if (resource) record.resource = resource;
    records.push(record);

    const rule = pickFault(record);
    const fault = rule?.kind;
    if (fault === 'hold-after') record.fault = fault;
    else if (fault === 'delay') {
      record.fault = fault;
      await sleep(rule?.delayMs ?? 0);
    } else if (fault) {
      record.fault = fault;
      if (fault === 'timeout' || fault === 'hold-before') {
        // Hold the request until the client gives up, as a hung endpoint would.
        record.status = -1;
        req.socket.setTimeout(0);
        return;
      }
      const r = fault === 'throttle' ? throttlingError(c.service) : serverError(c.service, Number(fault));
      record.status = r.status;
      send(res, r);
      return;
    }
    let answer: AwsResponse | undefined;
    for (const i of interceptors) {
      answer = await i(awsReq);
      if (answer) break;
    }
    const intercepted = answer !== undefined;
    if (!answer) answer = await forward(opts.motoUrl, awsReq);
    // hold-after: the step happened; the caller never hears so.
    record.status = fault === 'hold-after' ? -1 : answer.status;
    // Observers run before the answer goes out, so whatever a call sets off (a routed event) is
    // already pending when the caller's next request — say, GET /_testbed/idle — arrives.
    if (!intercepted) {
      for (const o of observers) {
        try {
          await o(awsReq, answer);
        } catch (err) {
          opts.log?.(`observer failed on ${c.service}.${c.operation}: ${(err as Error).message}`);
        }
      }
    }
    if (fault === 'hold-after') {
      req.socket.setTimeout(0);
      return;
    }
    send(res, answer);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      opts.log?.(`front door error: ${err.stack ?? err.message}`);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`test bed front door error: ${err.message}`);
    });
  });
  server.keepAliveTimeout = 65_000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host}:${port}`,
    use: (i) => interceptors.push(i),
    observe: (o) => observers.push(o),
    control: (path, handler) => controls.set(path, handler),
    calls: () => records,
    resetCalls: () => {
      records = [];
    },
    addFault: (rule) => faults.push({ rule, seen: 0, rand: mulberry32(rule.seed ?? 1) }),
    clearFaults: () => {
      faults = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
