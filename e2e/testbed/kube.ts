import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { binaries } from './paths.ts';
import type { Pki } from './pki.ts';
import { freePort, type Managed, startProcess, waitFor } from './process.ts';

/**
 * Real etcd + kube-apiserver, envtest style (no kubelet, scheduler or controller-manager, so no
 * garbage collector and no token controller; e2e/node adds them for make test-node). RBAC authorization; client-certificate admin;
 * service-account tokens via TokenRequest; bearer tokens checked by our EKS authenticator webhook;
 * an audit log at Metadata level so tests can prove who read what.
 */
export interface Kube {
  apiUrl: string;
  kubeconfigPath: string;
  auditLogPath: string;
  /** Stops and starts the API server (etcd keeps its data); for fault tests. */
  restartApiserver(): Promise<void>;
  /** Stops kube-apiserver (clients see connection refused) until startApiserver(). */
  stopApiserver(): Promise<void>;
  startApiserver(): Promise<void>;
  /** Stops kube-apiserver and etcd, starts etcd again on the same data, then kube-apiserver. */
  restartEtcd(): Promise<void>;
  stop(): Promise<void>;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # Health checks and leases are noise; everything else is recorded with who, verb and object.
  - level: None
    nonResourceURLs: ['/readyz*', '/livez*', '/healthz*', '/version', '/openapi/*']
  - level: None
    resources: [{ group: coordination.k8s.io, resources: [leases] }]
    users: ['system:apiserver']
  - level: Metadata
`;

/** A kubeconfig for the admin; `client` names another client certificate (e2e/node's components). */
export function writeKubeconfig(
  path: string,
  apiUrl: string,
  pki: Pki,
  client: { crt: string; key: string } = { crt: pki.adminCert, key: pki.adminKey },
): string {
  const b64 = (p: string) => Buffer.from(pki.read(p)).toString('base64');
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: ${apiUrl}
    certificate-authority-data: ${b64(pki.caCert)}
users:
- name: testbed-admin
  user:
    client-certificate-data: ${b64(client.crt)}
    client-key-data: ${b64(client.key)}
contexts:
- name: testbed
  context: { cluster: testbed, user: testbed-admin }
current-context: testbed
`,
  );
  return path;
}

export async function startKube(opts: {
  dir: string;
  logsDir: string;
  pki: Pki;
  webhookKubeconfigPath: string;
  /** The address the API server listens on and advertises (default 127.0.0.1). */
  host?: string;
}): Promise<Kube> {
  const { dir, logsDir, pki } = opts;
  const etcdPort = await freePort();
  const peerPort = await freePort();
  const apiPort = await freePort();
  const etcdDir = join(dir, 'etcd');
  mkdirSync(etcdDir, { recursive: true });
  const etcdArgs = [
    `--data-dir=${etcdDir}`,
    `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
    `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
  const startEtcd = async () => {
    const proc = startProcess('etcd', binaries.etcd(), etcdArgs, { logsDir });
    await waitFor('etcd', async () => (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok, {
      proc,
      timeoutMs: 30_000,
    });
    return proc;
  };
  let etcd = await startEtcd();

  const auditPolicy = join(dir, 'audit-policy.yaml');
  writeFileSync(auditPolicy, AUDIT_POLICY);
  const auditLogPath = join(logsDir, 'audit.log');
  const host = opts.host ?? '127.0.0.1';
  const apiUrl = `https://${host}:${apiPort}`;
  const args = [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    `--secure-port=${apiPort}`,
    `--bind-address=${host}`,
    `--advertise-address=${host}`,
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${pki.apiserverCert}`,
    `--tls-private-key-file=${pki.apiserverKey}`,
    `--client-ca-file=${pki.caCert}`,
    // Node: a real node's kubelet (e2e/node) reads only what its pods need.
    '--authorization-mode=Node,RBAC',
    `--kubelet-client-certificate=${pki.kubeletClientCert}`,
    `--kubelet-client-key=${pki.kubeletClientKey}`,
    '--kubelet-preferred-address-types=InternalIP',
    '--anonymous-auth=false',
    `--authentication-token-webhook-config-file=${opts.webhookKubeconfigPath}`,
    '--authentication-token-webhook-version=v1',
    // EKS caches too, but tests that remove an access entry must see the effect at once.
    '--authentication-token-webhook-cache-ttl=0s',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    `--audit-policy-file=${auditPolicy}`,
    `--audit-log-path=${auditLogPath}`,
    '--audit-log-format=json',
    '--audit-log-maxsize=0',
    '--profiling=false',
    '--enable-priority-and-fairness=false',
    '--v=1',
  ];
  let apiserver: Managed = startProcess('kube-apiserver', binaries.kubeApiserver(), args, { logsDir });
  const kubeconfigPath = join(dir, 'admin.kubeconfig');
  writeKubeconfig(kubeconfigPath, apiUrl, pki);
  const ready = () =>
    waitFor('kube-apiserver', () => readyz(apiUrl, pki), { proc: apiserver, timeoutMs: 120_000 });
  await ready();
  return {
    apiUrl,
    kubeconfigPath,
    auditLogPath,
    async restartApiserver() {
      await apiserver.stop();
      apiserver = startProcess('kube-apiserver', binaries.kubeApiserver(), args, { logsDir });
      await ready();
    },
    async stopApiserver() {
      await apiserver.stop();
    },
    async startApiserver() {
      apiserver = startProcess('kube-apiserver', binaries.kubeApiserver(), args, { logsDir });
      await ready();
    },
    async restartEtcd() {
      await apiserver.stop();
      await etcd.stop();
      etcd = await startEtcd();
      apiserver = startProcess('kube-apiserver', binaries.kubeApiserver(), args, { logsDir });
      await ready();
    },
    async stop() {
      await apiserver.stop();
      await etcd.stop();
    },
  };
}

function readyz(apiUrl: string, pki: Pki): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${apiUrl}/readyz`,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
