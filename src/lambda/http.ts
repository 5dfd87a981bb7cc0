import * as http from 'node:http';
import * as https from 'node:https';

/**
 * One HTTP exchange over node:http(s) with a keep-alive agent, for the function's Kubernetes client
 * (kube-client.ts; Secrets Manager goes through the SDK's own handler). Not fetch: Node loads its
 * undici on first use, which costs the cold start tens of milliseconds and megabytes (see
 * scripts/build.ts on node:http's getters).
 */
export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A keep-alive agent for the URL's scheme; `ca` (PEM) replaces the default trust store for HTTPS. */
export function keepAliveAgent(url: URL, opts: { ca?: string; maxSockets: number }): http.Agent {
  return url.protocol === 'http:'
    ? new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets })
    : new https.Agent({ keepAlive: true, maxSockets: opts.maxSockets, ...(opts.ca ? { ca: opts.ca } : {}) });
}

/** A network-level failure (connection refused, reset, timeout): the server could not be reached. */
export class UnreachableError extends Error {}

export function send(opts: {
  url: URL;
  method: string;
  headers: Record<string, string | number>;
  body?: Buffer | undefined;
  agent: http.Agent;
  timeoutMs: number;
  /** Prefix for network error messages, e.g. "GET /api/v1/...". */
  what: string;
}): Promise<HttpResponse> {
  const { url } = opts;
  const request = url.protocol === 'http:' ? http.request : https.request;
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = request(
      {
        agent: opts.agent,
        host: url.hostname,
        port: url.port || (url.protocol === 'http:' ? 80 : 443),
        method: opts.method,
        path: `${url.pathname}${url.search}`,
        headers: opts.headers,
        timeout: opts.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (e) => reject(new UnreachableError(`${opts.what}: ${e.message}`)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)));
    req.on('error', (e) => reject(new UnreachableError(`${opts.what}: ${e.message}`)));
    req.end(opts.body);
  });
}

/** The body as JSON when it is JSON, otherwise the text (error pages of proxies and load balancers). */
export function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
