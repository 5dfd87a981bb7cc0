import { createHash } from 'node:crypto';
import type { Cluster, KubeConfig } from '@kubernetes/client-node';

/**
 * client-node 2.0 builds a new undici Agent for every API request (and watch) whenever the
 * connection has TLS options — a CA or a client certificate, so in-cluster and with any kubeconfig:
 * `KubeConfig.createDispatcher` caches nothing (`createAgent`, the https.Agent path, does). No
 * connection is reused: every request pays a TLS handshake, and its HTTP/2 session stays open
 * until the server closes it — with 16 workers, over 100 sockets and their TLS and nghttp2 buffers
 * (about 10 MB of RSS at 100 SecretSyncs). One dispatcher per distinct set of options fixes that;
 * when the options change (a rotated CA or client certificate) the next request gets a new one
 * and the old one is closed once its requests, watches included, are done.
 *
 * Returns false if this client-node has no such method any more (an upgrade): requests then work
 * as client-node makes them, and the unit test says the patch no longer applies.
 */
export function reuseConnections(kc: KubeConfig): boolean {
  const target = kc as unknown as {
    createDispatcher?: (cluster: Cluster | null, agentOptions: object) => Dispatcher | undefined;
  };
  const create = target.createDispatcher;
  if (typeof create !== 'function') return false;
  let current: { key: string; dispatcher: Dispatcher | undefined } | undefined;
  target.createDispatcher = (cluster, agentOptions) => {
    const key = optionsKey(kc.createDispatcherOptions(cluster, agentOptions));
    if (current?.key === key) return current.dispatcher;
    const previous = current?.dispatcher;
    current = { key, dispatcher: create.call(kc, cluster, agentOptions) };
    // Graceful: waits for the requests still running on it.
    previous?.close().catch(() => {});
    return current.dispatcher;
  };
  return true;
}

interface Dispatcher {
  close(): Promise<void>;
}

/** Options compared by value, as a digest (the key holds no certificate, key or passphrase). */
function optionsKey(options: unknown): string {
  const json = JSON.stringify(options, function (this: Record<string, unknown>, k, v: unknown) {
    const raw = this[k];
    return raw instanceof Uint8Array
      ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
      : v;
  });
  return createHash('sha256')
    .update(json ?? '')
    .digest('base64');
}
