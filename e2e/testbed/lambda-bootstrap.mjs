// The test bed's stand-in for the Lambda Node.js runtime: one execution environment per process.
// Spawned by lambda-runner.ts with the function's environment only; talks to it over the IPC channel.
// Protocol: child -> {type:'ready'} | {type:'init-error', error}; parent -> {type:'invoke', id, event,
// context}; child -> {type:'result', id, ok, payload | error}. Before each result it writes END_MARK
// lines to stdout and stderr so the parent knows it has every log line of that invocation.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

const END_MARK = '\u0000secretsync-invocation-end ';
let currentRequestId;

// The real runtime prefixes console output with time, request id and level, one line per call
// (newlines become \r so a multi-line message stays one log event). Direct stdout writes (pino) pass as is.
for (const [method, level] of [
  ['log', 'INFO'],
  ['info', 'INFO'],
  ['warn', 'WARN'],
  ['error', 'ERROR'],
  ['debug', 'DEBUG'],
  ['trace', 'TRACE'],
]) {
  console[method] = (...args) => {
    const msg = format(...args).replaceAll('\n', '\r');
    process.stdout.write(
      `${new Date().toISOString()}\t${currentRequestId ?? 'undefined'}\t${level}\t${msg}\n`,
    );
  };
}

// Same shape as the real runtime's error response: errorType is the error's name; a thrown non-Error
// gives its typeof and string form.
function toError(err) {
  if (err instanceof Error) {
    return { errorType: err.name, errorMessage: err.message, trace: String(err.stack ?? '').split('\n') };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

// `dir/index.handler` -> module `dir/index`, export path `handler` (further dots walk nested objects).
async function loadHandler() {
  const spec = process.env._HANDLER ?? '';
  const root = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0)
    throw Object.assign(new Error(`Bad handler ${spec}`), { name: 'Runtime.MalformedHandlerName' });
  const modulePath = spec.slice(0, dot);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => join(root, modulePath + ext)).find((f) => existsSync(f));
  if (!file) {
    throw Object.assign(new Error(`Error: Cannot find module '${modulePath}'`), {
      name: 'Runtime.ImportModuleError',
    });
  }
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw Object.assign(new Error(`${err?.name ?? 'Error'}: ${err?.message ?? err}`), {
      name: 'Runtime.ImportModuleError',
    });
  }
  let fn = mod;
  for (const part of spec.slice(dot + 1).split('.')) fn = fn?.[part];
  if (typeof fn !== 'function') {
    throw Object.assign(new Error(`${spec} is undefined or not exported`), {
      name: 'Runtime.HandlerNotFound',
    });
  }
  return fn;
}

function finish(id, message) {
  process.stdout.write(`${END_MARK}${id}\n`);
  process.stderr.write(`${END_MARK}${id}\n`);
  currentRequestId = undefined;
  // Peak resident memory of this environment so far, which Lambda reports as Max Memory Used.
  process.send({ type: 'result', id, maxRssMb: peakRssMb(), ...message });
}

// VmHWM, the high-water mark of this process image. Not getrusage's maxRSS: Linux carries the
// spawning process's peak over exec into it, so a function started from a 250 MB test runner
// would report 250 MB.
function peakRssMb() {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

// An exception that escapes the handler's promise kills the environment, as on Lambda.
function crash(error) {
  if (currentRequestId) finish(currentRequestId, { ok: false, error });
  else process.stderr.write(`${error.errorType}: ${error.errorMessage}\n`);
  setImmediate(() => process.exit(129));
}
process.on('uncaughtException', (err) => crash(toError(err)));
process.on('unhandledRejection', (err) =>
  crash({ ...toError(err), errorType: 'Runtime.UnhandledPromiseRejection' }),
);

let handler;
try {
  handler = await loadHandler();
} catch (err) {
  process.exitCode = 1;
  process.send({ type: 'init-error', error: toError(err) }, () => process.disconnect());
}

if (handler) {
  process.on('message', async (msg) => {
    if (msg?.type !== 'invoke') return;
    const { id, event, deadlineMs, context: fields } = msg;
    currentRequestId = id;
    // nodejs24.x dropped callback-style handlers: the result is the returned value or promise.
    const context = {
      ...fields,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    };
    try {
      const result = await handler(event, context);
      let payload;
      try {
        payload = JSON.stringify(result === undefined ? null : result);
      } catch (err) {
        finish(id, {
          ok: false,
          error: { errorType: 'Runtime.MarshalError', errorMessage: String(err?.message) },
        });
        return;
      }
      finish(id, { ok: true, payload });
    } catch (err) {
      finish(id, { ok: false, error: toError(err) });
    }
  });
  // The runner went away: nothing will ever invoke this environment again.
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready' });
}
