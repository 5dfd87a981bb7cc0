import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { binaries } from '../testbed/paths.ts';

/** What integration tests share: the running test bed and clients for it. */
export const bed = () => inject('testbed');

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(bed().kubeconfigPath);
  return kc;
}

/** A KubeConfig that authenticates with a bearer token (an EKS token or a service-account token). */
export function tokenKubeConfig(token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'testbed', server: bed().apiUrl, caData: Buffer.from(bed().caPem).toString('base64') },
    ],
    users: [{ name: 'token', token }],
    contexts: [{ name: 'token', cluster: 'testbed', user: 'token' }],
    currentContext: 'token',
  });
  return kc;
}

export const core = (kc = adminKubeConfig()) => kc.makeApiClient(CoreV1Api);
export const rbac = (kc = adminKubeConfig()) => kc.makeApiClient(RbacAuthorizationV1Api);
export const customObjects = (kc = adminKubeConfig()) => kc.makeApiClient(CustomObjectsApi);

/** A fresh namespace per test keeps tests independent on one shared API server. */
export async function freshNamespace(prefix = 't'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await core().createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function kubectl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(binaries.kubectl(), ['--kubeconfig', bed().kubeconfigPath, ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** The test bed's control API on the AWS front door. */
export async function control<T = unknown>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(`${bed().aws.url}/_testbed/${path}`, init);
  if (!res.ok) throw new Error(`test bed control ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** AWS SDK client configuration for the test bed (what the product gets from AWS_ENDPOINT_URL). */
export const awsConfig = () => ({
  endpoint: bed().aws.url,
  region: bed().aws.region,
  credentials: bed().aws.credentials,
});

/** The HTTP status of a failed @kubernetes/client-node call. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number } };
  return e.code ?? e.statusCode ?? e.response?.statusCode;
}

/** A finished process: its exit code (-1 when killed) and output. */
export interface Exited {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `file` to its end, `input` on stdin, never throwing for a non-zero exit (tests read `code`).
 * Helm keeps its cache and config under `helmHome`, a throwaway directory, not the user's home.
 */
export function runTool(file: string, args: string[], helmHome: string, input = ''): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(helmHome, 'cache'),
        HELM_CONFIG_HOME: join(helmHome, 'config'),
        HELM_DATA_HOME: join(helmHome, 'data'),
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}
