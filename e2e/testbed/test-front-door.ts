import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { zipSync } from 'fflate';
import type { AwsEndpoint, AwsRequest, AwsResponse, Interceptor, Observer } from './aws-types.ts';
import { binaries } from './paths.ts';

/**
 * A minimal moto + front door for the unit tests of the runner and the router (the orchestrated test
 * bed has the full front door with call records and fault injection). Observers run before the
 * client gets its answer, so `await call; await router.idle()` sees everything the call caused.
 */
export interface TestAws {
  endpoint: AwsEndpoint;
  use(interceptor: Interceptor): void;
  observe(observer: Observer): void;
  stop(): Promise<void>;
}

const CREDENTIAL = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function toAwsRequest(req: IncomingMessage, body: Buffer): AwsRequest {
  const url = new URL(req.url ?? '/', 'http://front-door');
  const m = CREDENTIAL.exec(String(req.headers.authorization ?? ''));
  const target = req.headers['x-amz-target'];
  let operation = typeof target === 'string' ? target.split('.').pop() : undefined;
  if (!operation && String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
    operation = new URLSearchParams(body.toString()).get('Action') ?? undefined;
  }
  return {
    method: req.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    headers: req.headers,
    body,
    service: m?.[3] ?? 'unknown',
    region: m?.[2] ?? 'us-east-1',
    ...(operation ? { operation } : {}),
    ...(m?.[1] ? { accessKeyId: m[1] } : {}),
  };
}

function forward(motoUrl: string, req: AwsRequest): Promise<AwsResponse> {
  const target = new URL(motoUrl);
  const qs = req.query.toString();
  return new Promise((resolve, reject) => {
    const out = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.path + (qs ? `?${qs}` : ''),
        headers: { ...req.headers, host: target.host },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') headers[k] = String(v);
          }
          resolve({ status: res.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(req.body);
  });
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startTestAws(): Promise<TestAws> {
  const port = await freePort();
  const moto: ChildProcess = spawn(binaries.motoServer(), ['-H', '127.0.0.1', '-p', String(port)], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: 'ignore',
  });
  const motoUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (moto.exitCode !== null) throw new Error(`moto_server exited with ${moto.exitCode}`);
    if (
      await fetch(`${motoUrl}/moto-api/`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 300) throw new Error('moto_server did not come up in 30 s');
    await sleep(100);
  }

  const interceptors: Interceptor[] = [];
  const observers: Observer[] = [];
  const server = createServer((req, res) => {
    (async () => {
      const awsReq = toAwsRequest(req, await readBody(req));
      let answer: AwsResponse | undefined;
      for (const i of interceptors) {
        answer = await i(awsReq);
        if (answer) break;
      }
      if (!answer) {
        answer = await forward(motoUrl, awsReq);
        for (const o of observers) await o(awsReq, answer);
      }
      const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
      res.writeHead(answer.status, { ...answer.headers, 'content-length': String(body.length) });
      res.end(body);
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`test front door: ${err.stack ?? err.message}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: fdPort } = server.address() as AddressInfo;

  return {
    endpoint: {
      url: `http://127.0.0.1:${fdPort}`,
      motoUrl,
      region: 'us-east-1',
      accountId: '123456789012',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    },
    use: (i) => interceptors.push(i),
    observe: (o) => observers.push(o),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      const exited = new Promise((r) => moto.once('exit', r));
      moto.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000).then(() => moto.kill('SIGKILL'))]);
    },
  };
}

/** A deployment zip from file name -> source text. */
export function makeZip(files: Record<string, string>): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(files).map(([n, s]) => [n, new TextEncoder().encode(s)])));
}

/** Trust policy letting Lambda assume a role, for CreateRole in tests. */
export const LAMBDA_TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});
