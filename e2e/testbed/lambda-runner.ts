import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  type FunctionConfiguration,
  GetFunctionCommand,
  GetFunctionEventInvokeConfigCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { unzipSync } from 'fflate';
import type { AwsEndpoint, AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';

/**
 * Runs stored Lambda functions the way AWS would: the zip the controller uploaded, unpacked once per
 * code SHA-256; a fresh `node` process per execution environment with only the function's environment,
 * the variables the Lambda runtime sets and the assumed-role credentials of the function's role;
 * the function's Timeout enforced. moto keeps the control plane (GetFunction is the source of truth
 * for configuration and CodeSha256); moto cannot run functions (it needs Docker), so Invoke is
 * answered here.
 */

const BOOTSTRAP = join(dirname(fileURLToPath(import.meta.url)), 'lambda-bootstrap.mjs');
const END_MARK = '\u0000secretsync-invocation-end ';
const FUNCTIONS = '/2015-03-31/functions';
const INIT_TIMEOUT_MS = 10_000; // Lambda's limit for the init phase of on-demand functions
const MAX_LOG_LINES = 10_000; // per function, so a long benchmark cannot exhaust memory

/** A function name from a path segment or body field: name, `name:qualifier`, or a (partial) ARN. */
export function functionNameOf(nameOrArn: string): string {
  const s = decodeURIComponent(nameOrArn);
  const parts = s.split(':');
  if (s.startsWith('arn:')) return parts[6] ?? s;
  // partial ARN `123456789012:function:name`
  if (parts[1] === 'function') return parts[2] ?? s;
  return parts[0] ?? s;
}

const sha256b64 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('base64');

/**
 * Captures function code from CreateFunction / UpdateFunctionCode requests on their way to moto, since
 * moto will not hand the zip back. Stored by CodeSha256 (base64, as Lambda reports it), so a request
 * moto rejects changes nothing: the runner only ever asks for the hash GetFunction reports.
 */
export class FunctionCodeStore {
  readonly #bySha = new Map<string, Uint8Array>();
  readonly #byName = new Map<string, string>();

  /** Mount on the front door; it never answers (returns undefined), it only looks. */
  readonly interceptor: Interceptor = async (req) => {
    this.observe(req);
    return undefined;
  };

  observe(req: AwsRequest): void {
    if (req.service !== 'lambda' || !req.path.startsWith(FUNCTIONS)) return;
    const rest = req.path.slice(FUNCTIONS.length).replace(/\/$/, '');
    if (req.method === 'POST' && rest === '') {
      const body = parseJson(req.body) as { FunctionName?: string; Code?: { ZipFile?: string } } | undefined;
      if (body?.FunctionName && body.Code?.ZipFile) {
        this.put(functionNameOf(body.FunctionName), Buffer.from(body.Code.ZipFile, 'base64'));
      }
      return;
    }
    const code = /^\/([^/]+)\/code$/.exec(rest);
    if (req.method === 'PUT' && code) {
      const body = parseJson(req.body) as { ZipFile?: string; DryRun?: boolean } | undefined;
      if (body?.ZipFile && !body.DryRun)
        this.put(functionNameOf(code[1]!), Buffer.from(body.ZipFile, 'base64'));
      return;
    }
    const fn = /^\/([^/]+)$/.exec(rest);
    if (req.method === 'DELETE' && fn && !req.query.get('Qualifier')) this.delete(functionNameOf(fn[1]!));
  }

  /** Stores a zip; returns its CodeSha256. */
  put(functionName: string, zip: Uint8Array): string {
    const sha = sha256b64(zip);
    this.#bySha.set(sha, zip);
    this.#byName.set(functionName, sha);
    return sha;
  }

  get(codeSha256: string): Uint8Array | undefined {
    return this.#bySha.get(codeSha256);
  }

  /** The zip last uploaded for a function name (what a test usually means by "its code"). */
  latest(functionName: string): Uint8Array | undefined {
    const sha = this.#byName.get(functionName);
    return sha ? this.#bySha.get(sha) : undefined;
  }

  delete(functionName: string): void {
    const sha = this.#byName.get(functionName);
    this.#byName.delete(functionName);
    if (sha && ![...this.#byName.values()].includes(sha)) this.#bySha.delete(sha);
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return body.length ? JSON.parse(body.toString('utf8')) : undefined;
  } catch {
    return undefined;
  }
}

/** An error Lambda's API itself returns (not a function error), with its HTTP status. */
export class LambdaApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = code;
    this.status = status;
    this.code = code;
  }
}

export interface LogLine {
  time: number;
  functionName: string;
  requestId?: string;
  /** `platform` for the START/END/REPORT lines Lambda itself writes. */
  stream: 'stdout' | 'stderr' | 'platform';
  text: string;
}

export interface InvokeResult {
  requestId: string;
  functionName: string;
  version: string;
  /** The response payload as Lambda returns it: the handler's JSON, or the error object. */
  payload: string;
  /** Set when the function failed, as in the X-Amz-Function-Error header. */
  functionError?: 'Unhandled';
  errorType?: string;
  errorMessage?: string;
  coldStart: boolean;
  initDurationMs?: number;
  durationMs: number;
  logs: LogLine[];
}

export interface AsyncInvocation {
  requestId: string;
  functionName: string;
  /** Every attempt, first one first; Lambda retries an async invocation that failed in the function. */
  attempts: InvokeResult[];
  ok: boolean;
  /** Why no attempt could run (function gone, not Active, code unknown). */
  error?: string;
  /** Where the failure record went, when the function has an on-failure destination. */
  onFailure?: { destination: string; delivered: boolean };
}

export interface FunctionStats {
  invocations: number;
  coldStarts: number;
  errors: number;
  timeouts: number;
  durationsMs: number[];
  initDurationsMs: number[];
  /** Peak RSS of the environment after each invocation (Lambda's Max Memory Used). */
  maxRssMb: number[];
}

export interface InvokeOptions {
  qualifier?: string;
  /** Reuse a live execution environment (module state survives), as a warm Lambda does. */
  warm?: boolean;
  /** Async invocations keep one request id across retries. */
  requestId?: string;
  /** Region of the function when its name is not an ARN (a front-door Invoke: the region it was signed for). */
  region?: string;
}

export interface LambdaRunnerOptions {
  endpoint: AwsEndpoint;
  codeStore?: FunctionCodeStore;
  /** Default for InvokeOptions.warm. */
  warm?: boolean;
  /** Where zips are unpacked; a fresh temp dir by default (outside any node_modules tree, as on Lambda). */
  workDir?: string;
  /**
   * Asynchronous invocations running at once; the rest wait in the queue, as Lambda's async queue
   * waits for the account's concurrency. Default: twice the CPU count, so a thousand first syncs
   * do not start a thousand processes on a small machine.
   */
  maxAsyncConcurrency?: number;
  /** Delays before the retries of a failed async invocation; AWS retries twice, after ~1 and ~2 min. */
  asyncRetryDelaysMs?: number[];
  /** A warm environment idle this long is shut down (Lambda recycles idle environments too). */
  warmIdleMs?: number;
  /** Pass the parent's PATH so tools spawned by the function resolve; nothing else is inherited. */
  inheritPath?: boolean;
  /** Further test-bed-only variables (e.g. NODE_EXTRA_CA_CERTS for a TLS front door). */
  extraEnv?: Record<string, string>;
  /**
   * Told about every set of credentials handed to a function (AssumeRole goes to moto directly, not
   * through the front door), e.g. so the EKS authenticator can verify signatures made with them.
   */
  onCredentials?: (creds: {
    roleArn: string;
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
  }) => void;
  /** Function states set by tests (lambda-states.ts): invoking a Failed, Pending or Inactive function is refused. */
  functionStates?: { refuseInvoke(region: string, functionName: string): LambdaApiError | undefined };
}

interface Resolved {
  config: FunctionConfiguration & { FunctionName: string; FunctionArn: string };
  version: string;
  /** Same function, same code and configuration -> same execution environments. */
  envKey: string;
}

type Outcome = (
  | { ok: true; payload: string }
  | { ok: false; error: { errorType: string; errorMessage: string; trace?: string[] } }
) & { maxRssMb?: number };

type ChildMessage =
  | { type: 'ready' }
  | { type: 'init-error'; error: { errorType: string; errorMessage: string } }
  | ({ type: 'result'; id: string } & Outcome);

/** One execution environment: a node process running lambda-bootstrap.mjs. */
class Sandbox {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly logStream: string;
  initDurationMs = 0;
  /** Set while initialising or invoking, so a concurrent invocation starts another environment. */
  busy = true;
  dead = false;
  idleTimer: NodeJS.Timeout | undefined;
  #current: { id: string; marks: number; outcome?: Outcome; done: (o: Outcome) => void } | undefined;
  #failInit: ((err: InitError) => void) | undefined;

  constructor(
    env: Record<string, string>,
    memoryMb: number,
    onLine: (l: Omit<LogLine, 'functionName'>) => void,
  ) {
    const started = performance.now();
    this.logStream = env.AWS_LAMBDA_LOG_STREAM_NAME ?? '';
    // The runtime caps the heap below the configured memory; this approximates it.
    const args = [`--max-old-space-size=${Math.max(64, Math.floor(memoryMb * 0.9))}`, BOOTSTRAP];
    this.child = spawn(process.execPath, args, {
      cwd: env.LAMBDA_TASK_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.#lines(this.child.stdout!, 'stdout', onLine);
    this.#lines(this.child.stderr!, 'stderr', onLine);
    this.ready = new Promise<void>((resolveReady, reject) => {
      this.#failInit = reject;
      this.child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') {
          this.initDurationMs = performance.now() - started;
          this.#failInit = undefined;
          resolveReady();
        } else if (m.type === 'init-error') {
          reject(new InitError(m.error.errorType, m.error.errorMessage));
        } else if (m.type === 'result' && this.#current?.id === m.id) {
          this.#current.outcome = m;
          this.#settle();
        }
      });
    });
    this.ready.catch(() => {}); // the invocation that started it awaits and reports it
    const initTimer = setTimeout(() => {
      this.#failInit?.(
        new InitError('Sandbox.Timedout', `INIT timed out after ${INIT_TIMEOUT_MS / 1000} seconds`),
      );
      this.kill();
    }, INIT_TIMEOUT_MS);
    this.ready.then(
      () => clearTimeout(initTimer),
      () => clearTimeout(initTimer),
    );
    this.child.on('exit', (code, signal) => {
      this.dead = true;
      const why = signal ? `signal: ${signal}` : `exit status ${code}`;
      this.#failInit?.(new InitError('Runtime.ExitError', `Runtime exited during init with error: ${why}`));
      const cur = this.#current;
      if (cur && !cur.outcome) {
        cur.outcome = exitError(cur.id, why);
      }
    });
    // Output ends only once the process is gone and its pipes are drained: nothing more can come.
    this.child.on('close', () => {
      if (this.#current) this.#current.marks = 2;
      this.#settle();
    });
  }

  #lines(stream: Readable, name: 'stdout' | 'stderr', onLine: (l: Omit<LogLine, 'functionName'>) => void) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (text.startsWith(END_MARK)) {
          if (this.#current?.id === text.slice(END_MARK.length)) this.#current.marks++;
          this.#settle();
        } else {
          onLine({
            time: Date.now(),
            stream: name,
            text,
            ...(this.#current ? { requestId: this.#current.id } : {}),
          });
        }
      }
    });
  }

  /** An invocation is over when its result arrived and both output streams passed its end mark. */
  #settle() {
    const cur = this.#current;
    if (cur?.outcome && cur.marks >= 2) {
      this.#current = undefined;
      cur.done(cur.outcome);
    }
  }

  run(
    id: string,
    event: unknown,
    context: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Outcome | 'timeout'> {
    if (this.dead) return Promise.resolve(exitError(id, 'environment already stopped'));
    return new Promise((done) => {
      const timer = setTimeout(() => {
        // Lambda stops the environment at the timeout; whatever it was still doing is lost with it.
        this.#current = undefined;
        this.kill();
        done('timeout');
      }, timeoutMs);
      this.#current = {
        id,
        marks: 0,
        done: (o) => {
          clearTimeout(timer);
          done(o);
        },
      };
      this.child.send({ type: 'invoke', id, event, deadlineMs: Date.now() + timeoutMs, context });
    });
  }

  kill() {
    clearTimeout(this.idleTimer);
    if (!this.dead) this.child.kill('SIGKILL');
    this.dead = true;
  }
}

const exitError = (id: string, why: string): Outcome => ({
  ok: false,
  error: {
    errorType: 'Runtime.ExitError',
    errorMessage: `RequestId: ${id} Error: Runtime exited with error: ${why}`,
  },
});

class InitError extends Error {
  readonly errorType: string;
  constructor(errorType: string, message: string) {
    super(message);
    this.errorType = errorType;
  }
}

const emptyStats = (): FunctionStats => ({
  invocations: 0,
  coldStarts: 0,
  errors: 0,
  timeouts: 0,
  durationsMs: [],
  initDurationsMs: [],
  maxRssMb: [],
});

export class LambdaRunner {
  readonly codeStore: FunctionCodeStore;
  readonly #opts: LambdaRunnerOptions;
  readonly #lambda: LambdaClient;
  readonly #regional = new Map<string, LambdaClient>();
  readonly #sts: STSClient;
  readonly #workDir: string;
  readonly #ownsWorkDir: boolean;
  readonly #unpacked = new Map<string, Promise<string>>();
  readonly #warm = new Map<string, { envKey: string; sandboxes: Sandbox[] }>();
  readonly #collectors = new Map<string, LogLine[]>();
  /** Every running environment, warm or not, so close() leaves no process behind. */
  readonly #live = new Set<Sandbox>();
  #closed = false;
  readonly #logs = new Map<string, LogLine[]>();
  readonly #stats = new Map<string, FunctionStats>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #async: AsyncInvocation[] = [];

  constructor(opts: LambdaRunnerOptions) {
    this.#opts = opts;
    this.codeStore = opts.codeStore ?? new FunctionCodeStore();
    const { motoUrl, region, credentials } = opts.endpoint;
    this.#lambda = new LambdaClient({ endpoint: motoUrl, region, credentials });
    this.#sts = new STSClient({ endpoint: motoUrl, region, credentials });
    this.#ownsWorkDir = !opts.workDir;
    this.#workDir = resolve(opts.workDir ?? mkdtempSync(join(tmpdir(), 'secretsync-lambda-')));
  }

  /**
   * Mount this one on the front door: it captures code (FunctionCodeStore) and answers Invoke;
   * everything else goes on to moto.
   */
  readonly interceptor: Interceptor = async (req) => {
    this.codeStore.observe(req);
    if (req.service !== 'lambda' || req.method !== 'POST') return undefined;
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.path);
    return m ? this.#answerInvoke(req, decodeURIComponent(m[1]!)) : undefined;
  };

  async #answerInvoke(req: AwsRequest, functionName: string): Promise<AwsResponse> {
    const requestId = randomUUID();
    const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    const qualifier = req.query.get('Qualifier') ?? undefined;
    let event: unknown = {};
    if (req.body.length) {
      try {
        event = JSON.parse(req.body.toString('utf8'));
      } catch (err) {
        return apiError(
          requestId,
          new LambdaApiError(
            400,
            'InvalidRequestContentException',
            `Could not parse request body into json: ${(err as Error).message}`,
          ),
        );
      }
    }
    try {
      const fn = await this.#resolve(functionName, qualifier, req.region);
      if (type === 'DryRun') return { status: 204, headers: { 'x-amzn-requestid': requestId }, body: '' };
      if (type === 'Event') {
        this.invokeAsync(functionName, event, {
          requestId,
          region: req.region,
          ...(qualifier ? { qualifier } : {}),
        });
        return { status: 202, headers: { 'x-amzn-requestid': requestId }, body: '' };
      }
      if (type !== 'RequestResponse') {
        throw new LambdaApiError(
          400,
          'InvalidParameterValueException',
          `Unsupported invocation type ${type}`,
        );
      }
      const r = await this.#invokeResolved(fn, event, { requestId });
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-amzn-requestid': requestId,
        'x-amz-executed-version': r.version,
      };
      if (r.functionError) headers['x-amz-function-error'] = r.functionError;
      if (req.headers['x-amz-log-type'] === 'Tail') {
        // Like Lambda: the last 4 KB of the invocation's log, base64.
        const text = Buffer.from(r.logs.map((l) => `${l.text}\n`).join(''));
        headers['x-amz-log-result'] = text.subarray(Math.max(0, text.length - 4096)).toString('base64');
      }
      return { status: 200, headers, body: r.payload };
    } catch (err) {
      if (err instanceof LambdaApiError) return apiError(requestId, err);
      throw err;
    }
  }

  /** Synchronous (RequestResponse) invocation. Throws LambdaApiError for what the Invoke API would reject. */
  async invoke(functionName: string, event: unknown, opts: InvokeOptions = {}): Promise<InvokeResult> {
    return this.#invokeResolved(await this.#resolve(functionName, opts.qualifier, opts.region), event, opts);
  }

  /**
   * Asynchronous (Event) invocation with Lambda's retries on function error. Tracked: `idle()` waits
   * for it. Resolves (never rejects) with every attempt.
   */
  invokeAsync(functionName: string, event: unknown, opts: InvokeOptions = {}): Promise<AsyncInvocation> {
    const record: AsyncInvocation = {
      requestId: opts.requestId ?? randomUUID(),
      functionName,
      attempts: [],
      ok: false,
    };
    this.#async.push(record);
    const delays = this.#opts.asyncRetryDelaysMs ?? [1_000, 2_000];
    const queuedAt = Date.now();
    const run = async () => {
      try {
        // The function's event invoke config (PutFunctionEventInvokeConfig): how many retries, how
        // old an event may get, where a failed one goes. Lambda's defaults without one: 2, 6 h, nowhere.
        const config = await this.#lambdaFor(this.#regionOf(functionName, opts.region))
          .send(new GetFunctionEventInvokeConfigCommand({ FunctionName: functionName }))
          .catch(() => undefined);
        const retries = Math.min(config?.MaximumRetryAttempts ?? 2, delays.length);
        const maxAgeMs = (config?.MaximumEventAgeInSeconds ?? 21_600) * 1000;
        let condition: string | undefined;
        for (let attempt = 0; ; attempt++) {
          await this.#acquire();
          const r = await this.invoke(functionName, event, { ...opts, requestId: record.requestId }).finally(
            () => this.#release(),
          );
          record.functionName = r.functionName;
          record.attempts.push(r);
          record.ok = !r.functionError;
          if (record.ok) break;
          if (attempt >= retries) {
            condition = 'RetriesExhausted';
            break;
          }
          await new Promise((res) => setTimeout(res, delays[attempt]));
          if (Date.now() - queuedAt > maxAgeMs) {
            condition = 'EventAgeExceeded';
            break;
          }
        }
        const destination = config?.DestinationConfig?.OnFailure?.Destination;
        if (condition && destination) {
          record.onFailure = await this.#deliverFailure(destination, condition, record, event);
        }
      } catch (err) {
        record.error = (err as Error).message;
      }
      return record;
    };
    return this.#track(run());
  }

  /**
   * The record Lambda sends to an on-failure destination (Lambda developer guide, "Capturing records
   * of asynchronous invocations"): request context, the event, the last response. SQS and
   * EventBridge buses are emulated; other destination types are reported as not delivered.
   */
  async #deliverFailure(
    destination: string,
    condition: string,
    record: AsyncInvocation,
    event: unknown,
  ): Promise<{ destination: string; delivered: boolean }> {
    const last = record.attempts.at(-1);
    const message = {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId: record.requestId,
        functionArn: `arn:aws:lambda:${this.#opts.endpoint.region}:${this.#opts.endpoint.accountId}:function:${record.functionName}:$LATEST`,
        condition,
        approximateInvokeCount: record.attempts.length,
      },
      requestPayload: event,
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: last ? JSON.parse(last.payload || '{}') : {},
    };
    const [, , service, region, account, resource] = destination.split(':');
    const { motoUrl, credentials } = this.#opts.endpoint;
    if (service === 'sqs') {
      const sqs = new SQSClient({ endpoint: motoUrl, region, credentials });
      const { QueueUrl } = await sqs.send(
        new GetQueueUrlCommand({ QueueName: resource!, QueueOwnerAWSAccountId: account }),
      );
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(message) }));
      sqs.destroy();
      return { destination, delivered: true };
    }
    if (service === 'events') {
      const events = new EventBridgeClient({ endpoint: motoUrl, region, credentials });
      await events.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: destination,
              Source: 'lambda',
              DetailType: 'Lambda Function Invocation Result - Failure',
              Detail: JSON.stringify(message),
            },
          ],
        }),
      );
      events.destroy();
      return { destination, delivered: true };
    }
    return { destination, delivered: false };
  }

  #running = 0;
  readonly #waiting: (() => void)[] = [];

  async #acquire(): Promise<void> {
    const max = this.#opts.maxAsyncConcurrency ?? 2 * cpus().length;
    if (this.#running < max) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next)
      next(); // the slot passes on
    else this.#running--;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p)).catch(() => {});
    return p;
  }

  /** Resolves once no async invocation is running (including ones started while waiting). */
  async idle(): Promise<void> {
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
  }

  /** Async invocations so far (front-door Event invokes and the event router's deliveries). */
  asyncInvocations(): AsyncInvocation[] {
    return [...this.#async];
  }

  logsFor(functionName: string): LogLine[] {
    return [...(this.#logs.get(functionName) ?? [])];
  }

  stats(functionName: string): FunctionStats {
    const s = this.#stats.get(functionName) ?? emptyStats();
    return {
      ...s,
      durationsMs: [...s.durationsMs],
      initDurationsMs: [...s.initDurationsMs],
      maxRssMb: [...s.maxRssMb],
    };
  }

  /** Forget logs, counters and async records (environments stay warm). */
  reset(): void {
    this.#logs.clear();
    this.#stats.clear();
    this.#async.length = 0;
  }

  /** Stops every environment (warm or running) and removes unpacked code. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#live) s.kill();
    this.#live.clear();
    this.#warm.clear();
    this.#lambda.destroy();
    for (const c of this.#regional.values()) c.destroy();
    this.#sts.destroy();
    if (this.#ownsWorkDir) rmSync(this.#workDir, { recursive: true, force: true });
  }

  /** moto keeps each region apart: a function is looked up in its own region. */
  #lambdaFor(region: string): LambdaClient {
    if (region === this.#opts.endpoint.region) return this.#lambda;
    let c = this.#regional.get(region);
    if (!c) {
      const { motoUrl, credentials } = this.#opts.endpoint;
      c = new LambdaClient({ endpoint: motoUrl, region, credentials });
      this.#regional.set(region, c);
    }
    return c;
  }

  #regionOf(functionName: string, region: string | undefined): string {
    if (functionName.startsWith('arn:')) return functionName.split(':')[3] ?? this.#opts.endpoint.region;
    return region || this.#opts.endpoint.region;
  }

  async #resolve(functionName: string, qualifier: string | undefined, region?: string): Promise<Resolved> {
    let config: FunctionConfiguration | undefined;
    try {
      config = (
        await this.#lambdaFor(this.#regionOf(functionName, region)).send(
          new GetFunctionCommand({ FunctionName: functionName, Qualifier: qualifier }),
        )
      ).Configuration;
    } catch (err) {
      const e = err as { name?: string; message?: string };
      if (e.name === 'ResourceNotFoundException')
        throw new LambdaApiError(404, e.name, e.message ?? 'Function not found');
      throw err;
    }
    if (!config?.FunctionName || !config.FunctionArn)
      throw new Error(`GetFunction ${functionName}: no configuration`);
    // A state a test set wins over moto's (always Active); the front door's Invoke, its Event invokes and
    // the event router's deliveries all come through here, so all are refused alike.
    const fnRegion = config.FunctionArn.split(':')[3] ?? this.#opts.endpoint.region;
    const refusal = this.#opts.functionStates?.refuseInvoke(fnRegion, config.FunctionName);
    if (refusal) throw refusal;
    if (config.State && config.State !== 'Active') {
      // What Lambda answers while a function is still being created (or updated, or failed).
      throw new LambdaApiError(
        409,
        'ResourceConflictException',
        `The operation cannot be performed at this time. The function is currently in the following state: ${config.State}`,
      );
    }
    const version = config.Version ?? '$LATEST';
    const envKey = createHash('sha256')
      .update(
        JSON.stringify([
          config.FunctionArn,
          version,
          config.CodeSha256,
          config.Role,
          config.Handler,
          config.Runtime,
          config.Timeout,
          config.MemorySize,
          config.Environment?.Variables ?? {},
        ]),
      )
      .digest('hex');
    return { config: config as Resolved['config'], version, envKey };
  }

  async #invokeResolved(fn: Resolved, event: unknown, opts: InvokeOptions): Promise<InvokeResult> {
    const name = fn.config.FunctionName;
    const requestId = opts.requestId ?? randomUUID();
    const stats = this.#statsOf(name);
    stats.invocations++;
    const collected: LogLine[] = [];
    this.#collectors.set(requestId, collected);
    const platform = (text: string) =>
      this.#record({ time: Date.now(), functionName: name, stream: 'platform', requestId, text });
    const warm = opts.warm ?? this.#opts.warm ?? false;
    const timeoutMs = (fn.config.Timeout ?? 3) * 1000;
    const finish = (
      outcome: Outcome,
      coldStart: boolean,
      durationMs: number,
      initDurationMs?: number,
    ): InvokeResult => {
      this.#collectors.delete(requestId);
      stats.durationsMs.push(durationMs);
      const r: InvokeResult = {
        requestId,
        functionName: name,
        version: fn.version,
        payload: outcome.ok ? outcome.payload : JSON.stringify(outcome.error),
        coldStart,
        durationMs,
        logs: collected,
        ...(initDurationMs !== undefined ? { initDurationMs } : {}),
      };
      if (outcome.ok) return r;
      stats.errors++;
      return {
        ...r,
        functionError: 'Unhandled',
        errorType: outcome.error.errorType,
        errorMessage: outcome.error.errorMessage,
      };
    };

    let sandbox = warm ? this.#takeWarm(fn) : undefined;
    const coldStart = !sandbox;
    if (!sandbox) {
      stats.coldStarts++;
      try {
        sandbox = await this.#start(fn, requestId, warm);
        await sandbox.ready;
        stats.initDurationsMs.push(sandbox.initDurationMs);
      } catch (err) {
        sandbox?.kill();
        if (!(err instanceof InitError)) {
          this.#collectors.delete(requestId);
          throw err;
        }
        // Lambda reports a failed init as a function error of the invocation that needed it.
        platform(`INIT_REPORT Phase: init Status: error Error Type: ${err.errorType}`);
        return finish({ ok: false, error: { errorType: err.errorType, errorMessage: err.message } }, true, 0);
      }
    }
    platform(`START RequestId: ${requestId} Version: ${fn.version}`);
    const started = performance.now();
    const outcome = await sandbox.run(requestId, event, this.#context(fn, requestId, sandbox), timeoutMs);
    const durationMs = performance.now() - started;
    let final: Outcome;
    if (outcome === 'timeout') {
      stats.timeouts++;
      const msg = `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`;
      platform(`${new Date().toISOString()} ${requestId} ${msg}`);
      final = {
        ok: false,
        error: { errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${requestId} Error: ${msg}` },
      };
    } else {
      final = outcome;
    }
    platform(`END RequestId: ${requestId}`);
    const init = coldStart ? `\tInit Duration: ${sandbox.initDurationMs.toFixed(2)} ms` : '';
    const mem = fn.config.MemorySize ?? 128;
    const used = outcome === 'timeout' ? undefined : outcome.maxRssMb;
    if (used !== undefined) stats.maxRssMb.push(used);
    platform(
      `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms\tMemory Size: ${mem} MB${used === undefined ? '' : `\tMax Memory Used: ${Math.round(used)} MB`}${init}`,
    );
    if (warm) this.#returnWarm(fn, sandbox);
    else sandbox.kill();
    return finish(final, coldStart, durationMs, coldStart ? sandbox.initDurationMs : undefined);
  }

  #record(line: LogLine) {
    const all = this.#logs.get(line.functionName) ?? [];
    all.push(line);
    if (all.length > MAX_LOG_LINES) all.splice(0, all.length - MAX_LOG_LINES);
    this.#logs.set(line.functionName, all);
    if (line.requestId) this.#collectors.get(line.requestId)?.push(line);
  }

  #statsOf(name: string): FunctionStats {
    const s = this.#stats.get(name) ?? emptyStats();
    this.#stats.set(name, s);
    return s;
  }

  // Warm environments are pooled per function version; an environment serves one invocation at a time,
  // so concurrent invocations start more of them, as on Lambda.
  #slot = (fn: Resolved) => `${fn.config.FunctionArn}@${fn.version}`;

  #takeWarm(fn: Resolved): Sandbox | undefined {
    const pool = this.#warm.get(this.#slot(fn));
    if (pool?.envKey !== fn.envKey) return undefined;
    const s = pool.sandboxes.find((x) => !x.busy && !x.dead);
    if (s) {
      clearTimeout(s.idleTimer);
      s.busy = true;
    }
    return s;
  }

  #addWarm(fn: Resolved, s: Sandbox) {
    const slot = this.#slot(fn);
    let pool = this.#warm.get(slot);
    if (pool?.envKey !== fn.envKey) {
      // New code or configuration: Lambda stops serving from the old environments.
      for (const old of pool?.sandboxes ?? []) if (!old.busy) old.kill();
      pool = { envKey: fn.envKey, sandboxes: [] };
      this.#warm.set(slot, pool);
    }
    pool.sandboxes = [...pool.sandboxes.filter((x) => !x.dead), s];
  }

  #returnWarm(fn: Resolved, s: Sandbox) {
    s.busy = false;
    const pool = this.#warm.get(this.#slot(fn));
    if (s.dead || pool?.envKey !== fn.envKey) {
      s.kill();
      if (pool) pool.sandboxes = pool.sandboxes.filter((x) => x !== s);
      return;
    }
    s.idleTimer = setTimeout(() => {
      s.kill();
      pool.sandboxes = pool.sandboxes.filter((x) => x !== s);
    }, this.#opts.warmIdleMs ?? 600_000);
    s.idleTimer.unref();
  }

  async #start(fn: Resolved, requestId: string, warm: boolean): Promise<Sandbox> {
    const c = fn.config;
    if (!c.Runtime?.startsWith('nodejs')) {
      throw new LambdaApiError(
        400,
        'InvalidRuntimeException',
        `the test bed runs only nodejs runtimes, not ${c.Runtime}`,
      );
    }
    const zip = c.CodeSha256 ? this.codeStore.get(c.CodeSha256) : undefined;
    if (!zip) {
      throw new Error(
        `test bed: no code for ${c.FunctionName} (CodeSha256 ${c.CodeSha256}); create it through the front door with Code.ZipFile`,
      );
    }
    const taskRoot = await this.#unpack(c.CodeSha256!, zip);
    const creds = (
      await this.#sts.send(
        // Lambda's session name is the function name: the assumed-role ARN ends in /<function name>.
        new AssumeRoleCommand({ RoleArn: c.Role, RoleSessionName: c.FunctionName.slice(0, 64) }),
      )
    ).Credentials;
    if (!creds?.AccessKeyId || !creds.SecretAccessKey) {
      throw new Error(`AssumeRole ${c.Role}: no credentials`);
    }
    this.#opts.onCredentials?.({
      roleArn: c.Role ?? '',
      accessKeyId: creds.AccessKeyId,
      secretAccessKey: creds.SecretAccessKey,
      ...(creds.SessionToken ? { sessionToken: creds.SessionToken } : {}),
    });
    const region = c.FunctionArn.split(':')[3] ?? this.#opts.endpoint.region;
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
    const env: Record<string, string> = {
      ...(this.#opts.inheritPath !== false && process.env.PATH ? { PATH: process.env.PATH } : {}),
      ...c.Environment?.Variables, // NODE_OPTIONS, if the function sets it, arrives here
      ...this.#opts.extraEnv,
      // The one test-bed addition the product sees: the SDK sends every call to the front door.
      AWS_ENDPOINT_URL: this.#opts.endpoint.url,
      // What the Lambda runtime sets; reserved names, so they win over the function's own variables.
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_LAMBDA_FUNCTION_NAME: c.FunctionName,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(c.MemorySize ?? 128),
      AWS_LAMBDA_FUNCTION_VERSION: fn.version,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${c.FunctionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `${day}/[${fn.version}]${randomBytes(16).toString('hex')}`,
      AWS_EXECUTION_ENV: `AWS_Lambda_${c.Runtime}`,
      LAMBDA_TASK_ROOT: taskRoot,
      _HANDLER: c.Handler ?? 'index.handler',
      TZ: ':UTC',
      LANG: 'en_US.UTF-8',
      AWS_ACCESS_KEY_ID: creds.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey,
      ...(creds.SessionToken ? { AWS_SESSION_TOKEN: creds.SessionToken } : {}),
    };
    if (this.#closed) throw new Error('test bed: the Lambda runner is closed');
    const name = c.FunctionName;
    let initializing = true;
    const sandbox = new Sandbox(env, c.MemorySize ?? 128, (l) =>
      // Output of the init phase belongs to the invocation that caused the cold start.
      this.#record({ ...l, functionName: name, ...(!l.requestId && initializing ? { requestId } : {}) }),
    );
    sandbox.ready.then(
      () => {
        initializing = false;
      },
      () => {},
    );
    this.#live.add(sandbox);
    sandbox.child.on('exit', () => this.#live.delete(sandbox));
    if (warm) this.#addWarm(fn, sandbox);
    return sandbox;
  }

  #context(fn: Resolved, requestId: string, sandbox: Sandbox): Record<string, unknown> {
    const c = fn.config;
    return {
      functionName: c.FunctionName,
      functionVersion: fn.version,
      invokedFunctionArn: c.FunctionArn,
      memoryLimitInMB: String(c.MemorySize ?? 128),
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/${c.FunctionName}`,
      logStreamName: sandbox.logStream,
    };
  }

  async #unpack(codeSha256: string, zip: Uint8Array): Promise<string> {
    let p = this.#unpacked.get(codeSha256);
    if (!p) {
      p = (async () => {
        const dir = join(this.#workDir, Buffer.from(codeSha256, 'base64').toString('hex'));
        for (const [name, data] of Object.entries(unzipSync(zip))) {
          if (name.endsWith('/')) continue;
          const target = resolve(dir, name);
          if (!target.startsWith(dir + sep)) throw new Error(`zip entry escapes the task root: ${name}`);
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, data);
        }
        mkdirSync(dir, { recursive: true });
        return dir;
      })();
      this.#unpacked.set(codeSha256, p);
      p.catch(() => this.#unpacked.delete(codeSha256));
    }
    return p;
  }
}

/** A LambdaApiError as Lambda's REST API answers it. */
export function apiError(requestId: string, err: LambdaApiError): AwsResponse {
  return {
    status: err.status,
    headers: {
      'content-type': 'application/json',
      'x-amzn-errortype': err.code,
      'x-amzn-requestid': requestId,
    },
    body: JSON.stringify({ Type: 'User', Message: err.message }),
  };
}
