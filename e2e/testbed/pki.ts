import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The test bed's certificates, made with the openssl CLI (Node has no X.509 issuing API).
 * EC P-256 keys keep generation fast. Everything lives in one throwaway directory.
 */
export interface Pki {
  dir: string;
  caCert: string; // paths
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  adminCert: string;
  adminKey: string;
  webhookCert: string;
  webhookKey: string;
  /** The API server's client certificate towards kubelets (logs, exec, port-forward). */
  kubeletClientCert: string;
  kubeletClientKey: string;
  saKey: string;
  saPub: string;
  read(path: string): string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export function issue(
  dir: string,
  name: string,
  subject: string,
  ext: string,
  pki: { caCert: string; caKey: string },
) {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const crt = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    pki.caCert,
    '-CAkey',
    pki.caKey,
    '-CAcreateserial',
    '-days',
    '30',
    '-sha256',
    '-extfile',
    extFile,
    '-out',
    crt,
  ]);
  return { crt, key };
}

export const serverExt = (dns: string[], ips: string[] = []) =>
  [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${[...new Set(['127.0.0.1', ...ips])]
      .map((ip) => `IP:${ip}`)
      .concat(dns.map((d) => `DNS:${d}`))
      .join(',')}`,
  ].join('\n');

export const clientExt = [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=clientAuth',
].join('\n');

/** `host`: a further address the API server's certificate names (the test bed's `host` option). */
export function createPki(dir: string, host?: string): Pki {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey]);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    '/CN=secretsync-testbed-ca',
    '-days',
    '30',
    '-out',
    caCert,
  ]);
  const ca = { caCert, caKey };
  const apiserver = issue(
    dir,
    'apiserver',
    '/CN=kube-apiserver',
    serverExt(
      ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      host ? [host] : [],
    ),
    ca,
  );
  const kubeletClient = issue(
    dir,
    'apiserver-kubelet-client',
    '/O=system:masters/CN=kube-apiserver-kubelet-client',
    clientExt,
    ca,
  );
  // The admin is in system:masters, like a cluster creator; tests act as other users by token.
  const admin = issue(dir, 'admin', '/O=system:masters/CN=testbed-admin', clientExt, ca);
  const webhook = issue(dir, 'webhook', '/CN=eks-authenticator', serverExt(['localhost']), ca);
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  openssl(['genrsa', '-out', saKey, '2048']);
  openssl(['rsa', '-in', saKey, '-pubout', '-out', saPub]);
  return {
    dir,
    caCert,
    caKey,
    apiserverCert: apiserver.crt,
    apiserverKey: apiserver.key,
    adminCert: admin.crt,
    adminKey: admin.key,
    webhookCert: webhook.crt,
    webhookKey: webhook.key,
    kubeletClientCert: kubeletClient.crt,
    kubeletClientKey: kubeletClient.key,
    saKey,
    saPub,
    read: (p) => readFileSync(p, 'utf8'),
  };
}
