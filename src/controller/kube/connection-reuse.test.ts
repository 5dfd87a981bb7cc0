import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPki, type Pki } from '../../../e2e/testbed/pki.ts';
import { reuseConnections } from './connection-reuse.ts';

/** An API server stand-in over TLS (HTTP/2 or 1.1, as undici negotiates) that counts connections. */
let pki: Pki;
let server: Http2SecureServer;
let url: string;
let connections = 0;
const sockets = new Set<TLSSocket>();

beforeAll(async () => {
  pki = createPki(mkdtempSync(join(tmpdir(), 'connection-reuse-')));
  server = createSecureServer(
    { cert: readFileSync(pki.apiserverCert), key: readFileSync(pki.apiserverKey), allowHTTP1: true },
    (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }));
    },
  );
  server.on('secureConnection', (s: TLSSocket) => {
    connections++;
    sockets.add(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(pki.dir, { recursive: true, force: true });
});

function kubeConfig(caPem: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, caData: Buffer.from(caPem).toString('base64') }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function connectionsFor(kc: KubeConfig, requests: number): Promise<number> {
  const before = connections;
  const api = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < requests; i++) await api.readNamespace({ name: 'x' });
  // And some at once, as the workers make them.
  await Promise.all(Array.from({ length: requests }, () => api.readNamespace({ name: 'x' })));
  return connections - before;
}

describe('reuseConnections', () => {
  it('the test sees client-node open a connection per request without it', async () => {
    expect(await connectionsFor(kubeConfig(pki.read(pki.caCert)), 5)).toBeGreaterThan(5);
  });

  it('one connection for every request and watch of a KubeConfig', async () => {
    const kc = kubeConfig(pki.read(pki.caCert));
    expect(reuseConnections(kc)).toBe(true);
    expect(await connectionsFor(kc, 10)).toBe(1);
  });

  it('a connection the server drops is replaced (an API server restart)', async () => {
    const kc = kubeConfig(pki.read(pki.caCert));
    reuseConnections(kc);
    expect(await connectionsFor(kc, 3)).toBe(1);
    for (const s of sockets) s.destroy();
    // Once the close has arrived (a request sent in the same instant fails, as in-flight ones do,
    // and the work queue retries it).
    await new Promise((r) => setTimeout(r, 50));
    expect(await connectionsFor(kc, 3)).toBe(1);
  });

  it('a new connection when the TLS options change (a rotated CA)', async () => {
    const kc = kubeConfig(pki.read(pki.caCert));
    reuseConnections(kc);
    expect(await connectionsFor(kc, 3)).toBe(1);
    // The same CA with other bytes (a trailing newline): new options, so a new dispatcher.
    kc.clusters[0] = {
      ...kc.clusters[0]!,
      caData: Buffer.from(`${pki.read(pki.caCert)}\n`).toString('base64'),
    };
    expect(await connectionsFor(kc, 3)).toBe(1);
  });
});
