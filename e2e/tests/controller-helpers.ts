import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GetRolePolicyCommand,
  IAMClient,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { RunningController } from '../../src/controller/controller.ts';
import { clusterArn, type ResourceNames, resourceNames } from '../../src/controller/naming.ts';
import type { ProcessResult } from '../../src/controller/workqueue.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import { api, condition, getSecretSync } from './controller-support.ts';
import { awsConfig, bed, control, core, customObjects, rbac, tokenKubeConfig } from './support.ts';

/**
 * Helpers for the controller's reconcile and runtime tests: a controller with its own Kubernetes
 * identity (so the audit log tells its requests apart), the front door's call log and faults,
 * and a kubebuilder-style driver that calls reconcile directly until a condition holds.
 */

export interface CallRecord {
  seq: number;
  time: number;
  service: string;
  operation: string;
  method: string;
  path: string;
  status: number;
  resource?: string;
  accessKeyId?: string;
  fault?: string;
}

/** The AWS calls the front door recorded since the last reset. */
export const awsCalls = () => control<CallRecord[]>('calls');
export const resetAwsCalls = () => control('calls', { method: 'DELETE' });

/** Calls made with the controller's (the admin's) keys: not the functions' assumed-role keys. */
export async function controllerCalls(): Promise<CallRecord[]> {
  const admin = bed().aws.credentials.accessKeyId;
  return (await awsCalls()).filter((c) => c.accessKeyId === admin);
}

export const isRead = (operation: string) => /^(Get|Describe|List)/.test(operation);
export const writesOf = (calls: CallRecord[]) => calls.filter((c) => !isRead(c.operation));
export const opsOf = (calls: CallRecord[]) => calls.map((c) => c.operation).sort();

export async function addFault(rule: {
  service?: string;
  operation?: string;
  kind: 'throttle' | '500' | '503' | 'timeout';
  rate?: number;
  nth?: number[];
  seed?: number;
}): Promise<void> {
  await control('faults', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
}
export const clearFaults = () => control('faults', { method: 'DELETE' });

export async function setAuthMode(mode: 'API' | 'API_AND_CONFIG_MAP' | 'CONFIG_MAP'): Promise<void> {
  await control('auth-mode', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mode }),
  });
}

/** The test bed cluster's ARN: the in-process controller's identity. */
export const testbedClusterArn = () =>
  clusterArn({
    partition: 'aws',
    region: bed().aws.region,
    accountId: bed().aws.accountId,
    name: bed().clusterName,
  });

/** Names the controller derives for namespace/name (uid plays no part in them). */
export function namesFor(namespace: string, name: string): ResourceNames {
  return resourceNames({ clusterArn: testbedClusterArn(), namespace, name });
}

/**
 * A Kubernetes identity for an in-process controller: a ServiceAccount bound to cluster-admin,
 * authenticated by a TokenRequest token. Cluster-admin on purpose: what the audit log then shows
 * the controller did not read, it did not read by choice, not for lack of permission.
 */
export async function controllerIdentity(namespace: string): Promise<{ kc: KubeConfig; username: string }> {
  const sa = 'secretsync-controller';
  await core().createNamespacedServiceAccount({ namespace, body: { metadata: { name: sa } } });
  await rbac().createClusterRoleBinding({
    body: {
      metadata: { name: `${namespace}-${sa}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace }],
    },
  });
  const tr = await core().createNamespacedServiceAccountToken({
    name: sa,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3 * 3600 } },
  });
  return {
    kc: tokenKubeConfig(tr.status?.token ?? ''),
    username: `system:serviceaccount:${namespace}:${sa}`,
  };
}

export { startControllerWith, type TestController } from './controller-support.ts';

/**
 * Calls reconcile directly, as kubebuilder tests do, until `done` holds for the SecretSync (or it is
 * gone, when `done` accepts undefined). Errors are retried as the queue would; requeue delays are
 * honoured up to a cap so a test does not wait minutes for a slow-retry reason.
 */
export async function reconcileUntil(
  c: RunningController,
  namespace: string,
  name: string,
  done: (ss: SecretSync | undefined, result: ProcessResult) => boolean,
  timeoutMs = 60_000,
): Promise<SecretSync | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    let result: ProcessResult;
    try {
      result = await c.reconcileNow(`${namespace}/${name}`);
      last = undefined;
    } catch (err) {
      last = err;
    }
    const ss = await getSecretSync(namespace, name);
    if (last === undefined && done(ss, result)) return ss;
    if (Date.now() > deadline) {
      const ready = condition(ss, 'Ready');
      throw new Error(
        `reconcile of ${namespace}/${name} did not converge: Ready=${ready?.status} ${ready?.reason}: ${ready?.message}` +
          (last ? `; last error: ${String(last)}` : ''),
      );
    }
    await sleep(Math.min(result?.requeueAfterMs ?? 250, 500));
  }
}

export const readyIs = (status: string, reason?: string) => (ss: SecretSync | undefined) => {
  const r = condition(ss, 'Ready');
  return r?.status === status && (reason === undefined || r.reason === reason);
};

/** Deletes a SecretSync and drives its finalization to the end. */
export async function deleteAndFinalize(
  c: RunningController,
  namespace: string,
  name: string,
  timeoutMs = 60_000,
): Promise<void> {
  try {
    await customObjects().deleteNamespacedCustomObject({ ...api, namespace, name });
  } catch {
    // already gone
  }
  await reconcileUntil(c, namespace, name, (ss) => ss === undefined, timeoutMs);
}

export async function patchSecretSync(namespace: string, name: string, patch: object): Promise<void> {
  await customObjects().patchNamespacedCustomObject({ ...api, namespace, name, body: patch }, mergePatch);
}

/** A merge patch on the status subresource, as an admin would (the status is the controller's). */
export async function patchSecretSyncStatus(namespace: string, name: string, patch: object): Promise<void> {
  await customObjects().patchNamespacedCustomObjectStatus(
    { ...api, namespace, name, body: patch },
    mergePatch,
  );
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  userAgent?: string;
  requestReceivedTimestamp: string;
  user: { username: string };
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
  };
  responseStatus?: { code?: number };
}

/** The API server's audit log (complete requests only), optionally only one user's. */
export function auditEvents(username?: string): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (const line of readFileSync(bed().auditLogPath, 'utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEvent;
    if (e.stage !== 'ResponseComplete') continue;
    if (username !== undefined && e.user.username !== username) continue;
    out.push(e);
  }
  return out;
}

/** A sample's value from Prometheus text, e.g. metric('secretsync_invocations_total', {trigger: 'resync'}). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1] as string, x[2] as string]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

/**
 * Drift only a read shows: the function role's inline policy broadened out of band (every Secrets
 * Manager action on every secret). `restored()` says whether it is back to what the controller wrote.
 */
export async function broadenInlinePolicy(RoleName: string): Promise<{ restored: () => Promise<boolean> }> {
  const iam = new IAMClient(awsConfig());
  const [PolicyName] = (await iam.send(new ListRolePoliciesCommand({ RoleName }))).PolicyNames!;
  const read = async () =>
    JSON.parse(
      decodeURIComponent(
        (await iam.send(new GetRolePolicyCommand({ RoleName, PolicyName }))).PolicyDocument!,
      ),
    ) as unknown;
  const original = JSON.stringify(await read());
  await iam.send(
    new PutRolePolicyCommand({
      RoleName,
      PolicyName,
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'secretsmanager:*', Resource: '*' }],
      }),
    }),
  );
  return { restored: async () => JSON.stringify(await read()) === original };
}
