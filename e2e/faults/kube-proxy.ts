import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * A plain-HTTP proxy in front of the test bed's API server, for one client (the controller) that
 * should see faults the real server only produces by chance: a watch ended with 410 Gone ("too old
 * resource version", what a client whose resourceVersion was compacted away gets), and a period
 * in which SecretSync requests fail with 503 while everything else in the cluster moves on, and
 * Lease requests that hang unanswered.
 * Upstream it authenticates as the test bed's admin.
 */
export interface KubeProxy {
  kubeConfig(): KubeConfig;
  /** Requests seen, in order. */
  requests: { method: string; path: string; watch: boolean }[];
  /** Ends every open SecretSync watch with an ERROR event carrying 410 Expired. */
  expireWatches(): number;
  /** While true, SecretSync lists and watches answer 503. */
  blockSecretSyncs(blocked: boolean): void;
  /** While true, Lease requests are held unanswered (a hung API server, as client-go's timeouts expect). */
  hangLeases(hang: boolean): void;
  close(): Promise<void>;
}

const isSecretSyncs = (path: string) => path.includes('/secretsync.io/') && path.includes('/secretsyncs');

export async function startKubeProxy(adminKubeconfigPath: string): Promise<KubeProxy> {
  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfigPath);
  const cluster = admin.getCurrentCluster()!;
  const user = admin.getCurrentUser()!;
  const upstream = new URL(cluster.server);
  const tls = {
    ca: Buffer.from(cluster.caData!, 'base64'),
    cert: Buffer.from(user.certData!, 'base64'),
    key: Buffer.from(user.keyData!, 'base64'),
  };
  const requests: KubeProxy['requests'] = [];
  const watches = new Set<ServerResponse>();
  let blocked = false;
  let hanging = false;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    requests.push({ method: req.method ?? 'GET', path: url.pathname, watch });
    if (hanging && url.pathname.includes('/leases')) {
      // Never answered; the client's own timeout must end it.
      req.socket.setTimeout(0);
      return;
    }
    if (blocked && isSecretSyncs(url.pathname)) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: 'test bed: SecretSyncs unavailable',
          reason: 'ServiceUnavailable',
          code: 503,
        }),
      );
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    const out = httpsRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
        ...tls,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (watch && isSecretSyncs(url.pathname)) {
          watches.add(res);
          res.on('close', () => {
            watches.delete(res);
            up.destroy();
          });
        }
        up.pipe(res);
      },
    );
    out.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(out);
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    requests,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        // client-node refuses plain HTTP unless told it is deliberate; loopback only.
        clusters: [{ name: 'proxy', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: 'proxy' }],
        contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
        currentContext: 'proxy',
      });
      return kc;
    },
    expireWatches() {
      const open = [...watches];
      for (const res of open) {
        res.write(
          `${JSON.stringify({
            type: 'ERROR',
            object: {
              kind: 'Status',
              apiVersion: 'v1',
              metadata: {},
              status: 'Failure',
              message: 'too old resource version: 1 (2)',
              reason: 'Expired',
              code: 410,
            },
          })}\n`,
        );
        res.end();
      }
      return open.length;
    },
    blockSecretSyncs(b) {
      blocked = b;
    },
    hangLeases(hang) {
      hanging = hang;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
