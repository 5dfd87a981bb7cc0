import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import {
  DescribeRuleCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  type Rule,
  type Target,
} from '@aws-sdk/client-eventbridge';
import { GetPolicyCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { AwsEndpoint, AwsRequest, AwsResponse, Observer } from './aws-types.ts';
import type { AsyncInvocation, LambdaRunner } from './lambda-runner.ts';
import { binaries } from './paths.ts';

/**
 * What AWS does between a secret change and the sync Lambda, which moto does not: Secrets Manager's
 * native `Secret Label Updated` event, EventBridge matching it against the rules on the default bus,
 * the Lambda resource-policy check, and the asynchronous invocation (with Lambda's retries) through
 * the LambdaRunner.
 */

export interface EventBridgeEvent {
  version: string;
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

export interface Delivery {
  rule: string;
  ruleArn: string;
  targetId: string;
  targetArn: string;
  /**
   * pending: running; succeeded: the function returned; function-error: it failed on every attempt;
   * failed: EventBridge could not invoke it (no permission, no such function) — a FailedInvocation;
   * unsupported: a target kind the test bed does not deliver to.
   */
  status: 'pending' | 'succeeded' | 'function-error' | 'failed' | 'unsupported';
  reason?: string;
  invocation?: AsyncInvocation;
}

export interface RoutedEvent {
  seq: number;
  /** What produced it, e.g. `secretsmanager:PutSecretValue`, `emit`, `fireRule`. */
  cause: string;
  event: EventBridgeEvent;
  deliveries: Delivery[];
  /** Rules whose pattern could not be evaluated, and why. */
  errors: string[];
}

/** Does `pattern` (an EventBridge EventPattern, JSON text) match `event`? */
export type PatternMatcher = (pattern: string, event: EventBridgeEvent) => Promise<boolean>;

export interface EventRouterOptions {
  endpoint: AwsEndpoint;
  runner: LambdaRunner;
  /** Default: moto's own matcher (see motoPatternMatcher). */
  matcher?: PatternMatcher;
  log?: (msg: string) => void;
}

// Labels whose moves Secrets Manager does not announce (see the `Secret Label Updated` event docs).
const SILENT_LABELS = new Set(['AWSPENDING', 'AWSPREVIOUS']);
const LAMBDA_ARN = /^arn:aws[\w-]*:lambda:[^:]+:\d{12}:function:[^:]+(?::[^:]+)?$/;

const eventTime = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

function parseJson(body: Buffer | string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(body.toString()) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export class EventRouter {
  readonly #endpoint: AwsEndpoint;
  readonly #runner: LambdaRunner;
  readonly #matcher: PatternMatcher & { close?: () => void };
  readonly #log: (msg: string) => void;
  readonly #clients = new Map<
    string,
    { events: EventBridgeClient; lambda: LambdaClient; secrets: SecretsManagerClient }
  >();
  /** Last known label -> version of each secret (by ARN), to tell a move from a no-op. */
  readonly #labels = new Map<string, Map<string, string>>();
  readonly #history: RoutedEvent[] = [];
  readonly #pending = new Set<Promise<unknown>>();
  #seq = 0;

  constructor(opts: EventRouterOptions) {
    this.#endpoint = opts.endpoint;
    this.#runner = opts.runner;
    this.#matcher = opts.matcher ?? motoPatternMatcher();
    this.#log = opts.log ?? (() => {});
  }

  /**
   * Mount on the front door. It returns at once (bookkeeping only; the routing runs in the
   * background and `idle()` waits for it), so the front door may run it before answering the client,
   * which is what makes `await call; await router.idle()` reliable.
   */
  readonly observer: Observer = (req, res) => {
    if (req.service !== 'secretsmanager' || res.status !== 200) return;
    try {
      this.#onSecretCall(req, res);
    } catch (err) {
      this.#log(`event router: ${req.operation}: ${(err as Error).message}`);
    }
  };

  // The label moves a call made, taken from the call itself (exact even when calls race):
  // CreateSecret/UpdateSecret with a value move AWSCURRENT, PutSecretValue moves the stages it
  // reports (AWSCURRENT unless told otherwise), UpdateSecretVersionStage moves VersionStage to
  // MoveToVersionId. RotateSecret's outcome is read back with DescribeSecret.
  #onSecretCall(req: AwsRequest, res: AwsResponse) {
    const op = req.operation ?? '';
    const out = parseJson(res.body);
    const arn = typeof out?.ARN === 'string' ? out.ARN : undefined;
    if (!arn) return;
    const name = typeof out?.Name === 'string' ? out.Name : secretNameOf(arn);
    const versionId = typeof out?.VersionId === 'string' ? out.VersionId : undefined;
    const cause = `secretsmanager:${op}`;
    switch (op) {
      case 'CreateSecret':
      case 'UpdateSecret':
        if (versionId) this.#moved(arn, name, [['AWSCURRENT', versionId]], cause);
        return;
      case 'PutSecretValue': {
        const stages = Array.isArray(out?.VersionStages) ? (out.VersionStages as string[]) : ['AWSCURRENT'];
        if (versionId)
          this.#moved(
            arn,
            name,
            stages.map((s) => [s, versionId] as [string, string]),
            cause,
          );
        return;
      }
      case 'UpdateSecretVersionStage': {
        const input = parseJson(req.body);
        const stage = input?.VersionStage;
        const to = input?.MoveToVersionId;
        if (typeof stage === 'string' && typeof to === 'string') this.#moved(arn, name, [[stage, to]], cause);
        return;
      }
      case 'RotateSecret':
        this.#track(this.#rereadLabels(arn, cause));
        return;
      case 'DeleteSecret':
        if (parseJson(req.body)?.ForceDeleteWithoutRecovery === true) this.#labels.delete(arn);
        return;
    }
  }

  async #rereadLabels(arn: string, cause: string) {
    const d = await this.#clientsFor(regionOf(arn)).secrets.send(
      new DescribeSecretCommand({ SecretId: arn }),
    );
    const moves: [string, string][] = [];
    for (const [version, stages] of Object.entries(d.VersionIdsToStages ?? {})) {
      for (const s of stages) moves.push([s, version]);
    }
    this.#moved(arn, d.Name ?? secretNameOf(arn), moves, cause);
  }

  /** One `Secret Label Updated` event per announced label that now points at a different version. */
  #moved(arn: string, name: string, moves: [label: string, versionId: string][], cause: string) {
    const known = this.#labels.get(arn) ?? new Map<string, string>();
    this.#labels.set(arn, known);
    for (const [label, versionId] of moves) {
      if (SILENT_LABELS.has(label) || known.get(label) === versionId) continue;
      known.set(label, versionId);
      const [, , , region = this.#endpoint.region, account = this.#endpoint.accountId] = arn.split(':');
      this.#route(
        {
          version: '0',
          id: randomUUID(),
          'detail-type': 'Secret Label Updated',
          source: 'aws.secretsmanager',
          account,
          time: eventTime(),
          region,
          resources: [arn],
          detail: { name, labelUpdated: label, versionId },
        },
        cause,
      );
    }
  }

  /** Puts an arbitrary event on the default bus (fields not given are filled in as EventBridge would). */
  emit(
    event: Partial<EventBridgeEvent> & Pick<EventBridgeEvent, 'source' | 'detail-type'>,
  ): Promise<RoutedEvent> {
    return this.#route(
      {
        version: '0',
        id: randomUUID(),
        account: this.#endpoint.accountId,
        time: eventTime(),
        region: this.#endpoint.region,
        resources: [],
        detail: {},
        ...event,
      },
      'emit',
    );
  }

  /** Fires a (schedule) rule now: its targets get a `Scheduled Event`, as when its schedule comes round. */
  fireRule(ruleName: string, eventBusName = 'default', region = this.#endpoint.region): Promise<RoutedEvent> {
    const run = async () => {
      const { events } = this.#clientsFor(region);
      const rule = await events.send(new DescribeRuleCommand({ Name: ruleName, EventBusName: eventBusName }));
      const record = this.#record(
        {
          version: '0',
          id: randomUUID(),
          'detail-type': 'Scheduled Event',
          source: 'aws.events',
          account: rule.Arn?.split(':')[4] ?? this.#endpoint.accountId,
          time: eventTime(),
          region,
          resources: [rule.Arn ?? ''],
          detail: {},
        },
        'fireRule',
      );
      if (rule.State === 'DISABLED') record.errors.push(`${ruleName}: rule is DISABLED, nothing fired`);
      else await this.#deliver(record, rule, eventBusName);
      return record;
    };
    return this.#track(run());
  }

  /** Resolves when nothing routed is pending: no matching, no invocation (nor retry) still running. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.#pending.size) {
        await Promise.allSettled([...this.#pending]);
        continue;
      }
      await this.#runner.idle();
      if (!this.#pending.size) return;
    }
  }

  history(): RoutedEvent[] {
    return [...this.#history];
  }

  async close(): Promise<void> {
    await this.idle();
    this.#matcher.close?.();
    for (const c of this.#clients.values()) {
      c.events.destroy();
      c.lambda.destroy();
      c.secrets.destroy();
    }
    this.#clients.clear();
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    p.catch((err: Error) => this.#log(`event router: ${err.message}`)).finally(() => this.#pending.delete(p));
    return p;
  }

  #record(event: EventBridgeEvent, cause: string): RoutedEvent {
    const record: RoutedEvent = { seq: ++this.#seq, cause, event, deliveries: [], errors: [] };
    this.#history.push(record);
    return record;
  }

  /** Matches the event against every enabled rule of the default bus, then delivers to their targets. */
  #route(event: EventBridgeEvent, cause: string): Promise<RoutedEvent> {
    const record = this.#record(event, cause);
    const run = async () => {
      const { events } = this.#clientsFor(event.region);
      const rules: Rule[] = [];
      let NextToken: string | undefined;
      do {
        const page = await events.send(new ListRulesCommand({ EventBusName: 'default', NextToken }));
        rules.push(...(page.Rules ?? []));
        NextToken = page.NextToken;
      } while (NextToken);
      for (const rule of rules) {
        if (rule.State === 'DISABLED' || !rule.EventPattern || !rule.Name) continue;
        try {
          if (!(await this.#matcher(rule.EventPattern, event))) continue;
        } catch (err) {
          record.errors.push(`${rule.Name}: ${(err as Error).message}`);
          continue;
        }
        await this.#deliver(record, rule, 'default');
      }
      return record;
    };
    return this.#track(run());
  }

  async #deliver(record: RoutedEvent, rule: Rule, eventBusName: string) {
    const { events } = this.#clientsFor(record.event.region);
    const targets: Target[] = [];
    let NextToken: string | undefined;
    do {
      const page = await events.send(
        new ListTargetsByRuleCommand({ Rule: rule.Name, EventBusName: eventBusName, NextToken }),
      );
      targets.push(...(page.Targets ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    for (const t of targets) {
      const d: Delivery = {
        rule: rule.Name ?? '',
        ruleArn: rule.Arn ?? '',
        targetId: t.Id ?? '',
        targetArn: t.Arn ?? '',
        status: 'pending',
      };
      record.deliveries.push(d);
      this.#track(this.#invokeTarget(d, t, record.event));
    }
  }

  async #invokeTarget(d: Delivery, target: Target, event: EventBridgeEvent) {
    const fail = (status: Delivery['status'], reason: string) => {
      d.status = status;
      d.reason = reason;
      this.#log(`event router: ${d.rule} -> ${d.targetArn}: ${reason}`);
    };
    if (!LAMBDA_ARN.test(d.targetArn))
      return fail('unsupported', 'the test bed delivers only to Lambda targets');
    let input: unknown;
    try {
      input = targetInput(target, event);
    } catch (err) {
      return fail('unsupported', (err as Error).message);
    }
    const [, , , region = event.region, account = event.account, , name = '', qualifier] =
      d.targetArn.split(':');
    // EventBridge may invoke the function only if its resource policy lets events.amazonaws.com in
    // for this rule; otherwise the invocation fails (FailedInvocations), the function never runs.
    const { lambda } = this.#clientsFor(region);
    let policy: string | undefined;
    try {
      policy = (await lambda.send(new GetPolicyCommand({ FunctionName: name, Qualifier: qualifier }))).Policy;
    } catch (err) {
      return fail('failed', `no resource policy on ${name}: ${(err as Error).message}`);
    }
    if (!policy || !policyAllowsRule(policy, d.ruleArn, account)) {
      return fail(
        'failed',
        `resource policy of ${name} does not allow events.amazonaws.com from ${d.ruleArn}`,
      );
    }
    const inv = await this.#runner.invokeAsync(name, input, { region, ...(qualifier ? { qualifier } : {}) });
    d.invocation = inv;
    if (inv.error) fail('failed', inv.error);
    else d.status = inv.ok ? 'succeeded' : 'function-error';
  }

  #clientsFor(region: string) {
    let c = this.#clients.get(region);
    if (!c) {
      const cfg = { endpoint: this.#endpoint.motoUrl, region, credentials: this.#endpoint.credentials };
      c = {
        events: new EventBridgeClient(cfg),
        lambda: new LambdaClient(cfg),
        secrets: new SecretsManagerClient(cfg),
      };
      this.#clients.set(region, c);
    }
    return c;
  }
}

/** Same as `new EventRouter(opts)`. */
export const createEventRouter = (opts: EventRouterOptions): EventRouter => new EventRouter(opts);

const regionOf = (arn: string) => arn.split(':')[3] ?? '';
/** `arn:…:secret:prod/db-AbCdEf` -> `prod/db` (the 6-character suffix is Secrets Manager's). */
const secretNameOf = (arn: string) =>
  arn
    .split(':')
    .slice(6)
    .join(':')
    .replace(/-[A-Za-z0-9]{6}$/, '');

/** What the target receives: the event, or the target's constant Input, or the part InputPath selects. */
export function targetInput(target: Target, event: EventBridgeEvent): unknown {
  if (target.InputTransformer) throw new Error('InputTransformer is not emulated by the test bed');
  if (target.Input !== undefined) return JSON.parse(target.Input);
  if (target.InputPath) {
    const m = /^\$((?:\.[\w-]+|\[\d+\])*)$/.exec(target.InputPath);
    if (!m) throw new Error(`InputPath ${target.InputPath} is beyond the test bed's JSONPath subset`);
    let v: unknown = event;
    for (const [, key, index] of (m[1] ?? '').matchAll(/\.([\w-]+)|\[(\d+)\]/g)) {
      v = (v as Record<string, unknown> | undefined)?.[key ?? Number(index)];
    }
    return v;
  }
  return event;
}

interface Statement {
  Effect?: string;
  Principal?: string | { Service?: string | string[]; AWS?: string | string[] };
  Action?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/** The part of IAM policy evaluation a Lambda resource policy written by AddPermission needs. */
export function policyAllowsRule(policyJson: string, ruleArn: string, account: string): boolean {
  const doc = JSON.parse(policyJson) as { Statement?: Statement | Statement[] };
  const context: Record<string, string> = { 'aws:sourcearn': ruleArn, 'aws:sourceaccount': account };
  const glob = (pattern: string, value: string) =>
    new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replaceAll('*', '.*')
        .replaceAll('?', '.')}$`,
    ).test(value);
  const statements = [doc.Statement ?? []].flat();
  return statements.some((s) => {
    if (s.Effect !== 'Allow') return false;
    const p = s.Principal;
    const services = typeof p === 'object' ? [p.Service ?? []].flat() : [];
    const principalOk =
      p === '*' || services.includes('events.amazonaws.com') || (typeof p === 'object' && p.AWS === '*');
    const actionOk = [s.Action ?? []]
      .flat()
      .some((a) => ['lambda:InvokeFunction', 'lambda:*', '*'].includes(a));
    const conditionsOk = Object.entries(s.Condition ?? {}).every(([op, entries]) =>
      Object.entries(entries).every(([key, want]) => {
        const have = context[key.toLowerCase()];
        if (have === undefined) return false;
        const wants = [want].flat();
        if (op === 'ArnLike' || op === 'StringLike') return wants.some((w) => glob(w, have));
        if (op === 'ArnEquals' || op === 'StringEquals') return wants.includes(have);
        return false; // an operator we do not evaluate grants nothing
      }),
    );
    return principalOk && actionOk && conditionsOk;
  });
}

// moto 5.2.5 answers TestEventPattern with an empty body (not implemented), so we ask moto's own
// matcher directly: moto.events.models.EventPattern, the implementation moto uses to route PutEvents
// to rules. It runs in one long-lived python of the moto venv; one JSON line per question.
const MATCHER_PY = `
import json, sys
from moto.events.models import EventPattern
for line in sys.stdin:
    q = json.loads(line)
    try:
        out = {"id": q["id"], "match": EventPattern.load(q["pattern"]).matches_event(q["event"])}
    except Exception as e:
        out = {"id": q["id"], "error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(out) + "\\n")
    sys.stdout.flush()
`;

/** EventBridge pattern matching by moto's implementation (see MATCHER_PY). */
export function motoPatternMatcher(python?: string): PatternMatcher & { close(): void } {
  let proc: ChildProcess | undefined;
  let seq = 0;
  const waiting = new Map<number, { resolve: (m: boolean) => void; reject: (e: Error) => void }>();
  const start = () => {
    // -I: ignore PYTHON* variables and the working directory, so nothing shadows moto's modules.
    const p = spawn(python ?? binaries.python(), ['-I', '-c', MATCHER_PY], {
      cwd: tmpdir(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let buf = '';
    let stderr = '';
    p.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const a = JSON.parse(buf.slice(0, nl)) as { id: number; match?: boolean; error?: string };
        buf = buf.slice(nl + 1);
        const w = waiting.get(a.id);
        waiting.delete(a.id);
        if (a.error !== undefined) w?.reject(new Error(`EventPattern: ${a.error}`));
        else w?.resolve(a.match === true);
      }
    });
    p.stderr?.setEncoding('utf8').on('data', (c: string) => {
      stderr = (stderr + c).slice(-2000);
    });
    p.on('exit', (code) => {
      if (proc === p) proc = undefined;
      for (const w of waiting.values())
        w.reject(new Error(`moto pattern matcher exited (${code}): ${stderr}`));
      waiting.clear();
    });
    p.stdin?.on('error', () => {}); // reported through 'exit'
    // An idle matcher must not keep the test bed's process alive; it exits when its stdin closes.
    p.unref();
    for (const stream of [p.stdin, p.stdout, p.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
    return p;
  };
  const match: PatternMatcher = (pattern, event) => {
    proc ??= start();
    const id = ++seq;
    const p = proc;
    return new Promise<boolean>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      p.stdin?.write(`${JSON.stringify({ id, pattern, event })}\n`);
    });
  };
  return Object.assign(match, {
    close: () => {
      proc?.kill();
      proc = undefined;
    },
  });
}
