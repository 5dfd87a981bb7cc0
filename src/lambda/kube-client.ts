import { type HttpResponse, keepAliveAgent, parseBody, send, UnreachableError } from './http.ts';

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
  const prefix = base.pathname.replace(/\/$/, '');
  const agent = keepAliveAgent(base, { ca: opts.caPem, maxSockets: 4 });
  const timeoutMs = opts.timeoutMs ?? 10_000;

  return {
    async request<T>(
      method: string,
      path: string,
      o: { body?: unknown; contentType?: string; query?: Record<string, string> } = {},
    ) {
      const token = await opts.token();
      const qs = o.query ? `?${new URLSearchParams(o.query).toString()}` : '';
      const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
      const what = `${method} ${path}`;
      let res: HttpResponse;
      try {
        res = await send({
          url: new URL(`${prefix}${path}${qs}`, base),
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload
              ? { 'content-type': o.contentType ?? 'application/json', 'content-length': payload.length }
              : {}),
          },
          body: payload,
          agent,
          timeoutMs,
          what,
        });
      } catch (err) {
        throw err instanceof UnreachableError ? new KubeUnreachableError(err.message) : err;
      }
      const body = parseBody(res.text);
      if (res.status >= 200 && res.status < 300) return { status: res.status, body: body as T };
      const st = body as { reason?: string; message?: string } | undefined;
      throw new KubeHttpError(
        res.status,
        method,
        path,
        st?.reason,
        typeof st?.message === 'string' ? st.message : res.text.slice(0, 200),
      );
    },
  };
}
