import { Agent, request } from 'node:https';

/**
 * The smallest Kubernetes client the sync function needs: JSON over HTTPS to one API server,
 * trusting only the cluster CA it was given (no kubeconfig, no temp files), with a bearer token.
 * The agent keeps connections alive across invocations of a warm container.
 */
export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

export class KubeHttpError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  constructor(status: number, method: string, path: string, reason: string | undefined, message: string) {
    super(`${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`);
    this.status = status;
    this.reason = reason;
  }
}

/** A network-level failure (connection refused, reset, timeout): the API server could not be reached. */
export class KubeUnreachableError extends Error {}

export interface KubeClient {
  request<T>(
    method: string,
    path: string,
    opts?: { body?: unknown; contentType?: string; query?: Record<string, string> },
  ): Promise<KubeResponse<T>>;
}

export function createKubeClient(opts: {
  endpoint: string;
  caPem: string;
  token: () => Promise<string>;
  timeoutMs?: number;
}): KubeClient {
  const base = new URL(opts.endpoint);
  const agent = new Agent({ ca: opts.caPem, keepAlive: true, maxSockets: 4 });
  const timeout = opts.timeoutMs ?? 10_000;

  return {
    async request<T>(
      method: string,
      path: string,
      o: { body?: unknown; contentType?: string; query?: Record<string, string> } = {},
    ) {
      const token = await opts.token();
      const qs = o.query ? `?${new URLSearchParams(o.query).toString()}` : '';
      const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
      return new Promise<KubeResponse<T>>((resolve, reject) => {
        const req = request(
          {
            agent,
            host: base.hostname,
            port: base.port || 443,
            method,
            path: `${base.pathname.replace(/\/$/, '')}${path}${qs}`,
            headers: {
              authorization: `Bearer ${token}`,
              accept: 'application/json',
              ...(payload
                ? { 'content-type': o.contentType ?? 'application/json', 'content-length': payload.length }
                : {}),
            },
            timeout,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let body: unknown = text;
              try {
                body = text ? JSON.parse(text) : undefined;
              } catch {
                // non-JSON error pages stay text
              }
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) {
                resolve({ status, body: body as T });
                return;
              }
              const st = body as { reason?: string; message?: string } | undefined;
              reject(
                new KubeHttpError(
                  status,
                  method,
                  path,
                  st?.reason,
                  typeof st?.message === 'string' ? st.message : String(text).slice(0, 200),
                ),
              );
            });
            res.on('error', (e) => reject(new KubeUnreachableError(e.message)));
          },
        );
        req.on('timeout', () => req.destroy(new Error(`timed out after ${timeout} ms`)));
        req.on('error', (e) => reject(new KubeUnreachableError(`${method} ${path}: ${e.message}`)));
        req.end(payload);
      });
    },
  };
}
