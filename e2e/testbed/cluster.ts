import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateClusterCommand, DeleteClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateRoleCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  type AccessEntry,
  type AccessEntryStore,
  type ClusterOverride,
  clusterKey,
} from './eks-access-entries.ts';
import { startEksAuthenticator, writeWebhookKubeconfig } from './eks-authenticator.ts';
import type { SecretLookup } from './eks-token-check.ts';
import { type Kube, startKube } from './kube.ts';
import { binaries } from './paths.ts';
import { createPki, type Pki } from './pki.ts';
import { waitFor } from './process.ts';

/**
 * One EKS cluster of the test bed: its own etcd + kube-apiserver (own directory, PKI and random ports, so
 * several run at once), an EKS authenticator bound to (region, name), the cluster record in moto in that
 * region with DescribeCluster patched to point at the API server, and the CRDs installed. The primary
 * cluster and the extra ones (POST /_testbed/clusters) are all started by startCluster.
 */

const CRD_DIR = new URL('../../crds/', import.meta.url).pathname;
const run = promisify(execFile);

// Asynchronous on purpose: an extra cluster starts while the front door and the other clusters'
// authenticators (same process) keep serving; a blocking kubectl would stall them all.
async function kubectl(kubeconfig: string, args: string[]): Promise<string> {
  try {
    return (await run(binaries.kubectl(), ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' }))
      .stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** What every cluster shares: the running moto and the test bed's EKS emulation. */
export interface ClusterContext {
  motoUrl: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  accessEntries: AccessEntryStore;
  /** Keyed by clusterKey(region, name); read by the EKS interceptor. */
  clusterOverrides: Record<string, ClusterOverride>;
  /** Secrets of the access keys the test bed saw issued, so the authenticator verifies signatures. */
  secretFor: SecretLookup;
  /** Access-entry propagation (iam-propagation.ts): whether the authenticators honour an entry yet. */
  entryEffective?: (entry: AccessEntry) => boolean;
  log: (message: string) => void;
}

/** Plain data about a cluster; what POST /_testbed/clusters answers. */
export interface ClusterInfo {
  region: string;
  clusterName: string;
  kubeconfigPath: string;
  apiUrl: string;
  /** The cluster CA, PEM. */
  caPem: string;
  auditLogPath: string;
}

export interface Cluster {
  info: ClusterInfo;
  kube: Kube;
  /** Its PKI (e2e/node issues the node's certificates from the same CA). */
  pki: Pki;
  /** Stops the API server, etcd and the authenticator. */
  stop(): Promise<void>;
  /** stop(), and the cluster leaves moto, the override table and the access-entry store too. */
  remove(): Promise<void>;
}

export interface ClusterOptions {
  region: string;
  clusterName: string;
  /** The cluster's own directory (PKI, etcd data, kubeconfigs). */
  dir: string;
  /** Where its processes log; its own, since process logs are named after the process. */
  logsDir: string;
  authenticationMode?: ClusterOverride['authenticationMode'];
  /** The address its API server listens on (default 127.0.0.1). */
  host?: string;
  /** Install the CRDs from crds/ (default true; e2e/node installs them from the chart instead). */
  crds?: boolean;
}

export async function startCluster(ctx: ClusterContext, opts: ClusterOptions): Promise<Cluster> {
  const { region, clusterName, dir, logsDir } = opts;
  mkdirSync(dir, { recursive: true });
  mkdirSync(logsDir, { recursive: true });
  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stoppers.reverse()) await s().catch(() => {});
    stoppers.length = 0;
  };
  const eks = new EKSClient({ endpoint: ctx.motoUrl, region, credentials: ctx.credentials });
  let created = false; // only a cluster record this call made is ever deleted
  const forget = async () => {
    if (created) {
      delete ctx.clusterOverrides[clusterKey(region, clusterName)];
      ctx.accessEntries.deleteCluster(clusterName, region);
      await eks.send(new DeleteClusterCommand({ name: clusterName })).catch(() => {});
    }
    eks.destroy();
  };
  try {
    const pki = createPki(dir, opts.host);
    const caPem = pki.read(pki.caCert);
    const authenticator = await startEksAuthenticator({
      motoUrl: ctx.motoUrl,
      region,
      clusterName,
      store: ctx.accessEntries,
      tls: { cert: pki.read(pki.webhookCert), key: pki.read(pki.webhookKey) },
      secretFor: ctx.secretFor,
      ...(ctx.entryEffective ? { entryEffective: ctx.entryEffective } : {}),
      log: (m) => ctx.log(`eks-authenticator ${region}/${clusterName}: ${m}`),
    });
    stoppers.push(authenticator.close);
    const webhookKubeconfigPath = join(dir, 'webhook.kubeconfig');
    await writeWebhookKubeconfig(webhookKubeconfigPath, { url: authenticator.url, caPem });
    const kube = await startKube({
      dir,
      logsDir,
      pki,
      webhookKubeconfigPath,
      ...(opts.host ? { host: opts.host } : {}),
    });
    stoppers.push(kube.stop);

    // The EKS cluster record: moto keeps it (in its region), DescribeCluster answers with the real API server.
    await eks.send(
      new CreateClusterCommand({
        name: clusterName,
        roleArn: await clusterRoleArn(ctx, clusterName),
        version: '1.35',
        resourcesVpcConfig: { subnetIds: ['subnet-testbed'], endpointPublicAccess: true },
      }),
    );
    created = true;
    ctx.clusterOverrides[clusterKey(region, clusterName)] = {
      endpoint: kube.apiUrl,
      certificateAuthorityData: Buffer.from(caPem).toString('base64'),
      authenticationMode: opts.authenticationMode ?? 'API_AND_CONFIG_MAP',
    };

    if (opts.crds !== false) {
      await kubectl(kube.kubeconfigPath, ['apply', '--server-side', '-f', CRD_DIR]);
      await kubectl(kube.kubeconfigPath, [
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd/secretsyncs.secretsync.io',
        'crd/secretsyncpolicies.secretsync.io',
      ]);
      // Established is not yet servable: the first lists answer 429 "storage is (re)initializing".
      await waitFor('the SecretSync API', async () => {
        await kubectl(kube.kubeconfigPath, ['get', 'secretsyncs', '-A']);
        return true;
      });
    }

    return {
      info: {
        region,
        clusterName,
        kubeconfigPath: kube.kubeconfigPath,
        apiUrl: kube.apiUrl,
        caPem,
        auditLogPath: kube.auditLogPath,
      },
      kube,
      pki,
      stop,
      async remove() {
        await stop();
        await forget();
      },
    };
  } catch (err) {
    await stop();
    await forget();
    throw err;
  }
}

/** The cluster's IAM role; IAM is global, so same-named clusters in two regions share it. */
async function clusterRoleArn(ctx: ClusterContext, clusterName: string): Promise<string> {
  const iam = new IAMClient({ endpoint: ctx.motoUrl, region: 'us-east-1', credentials: ctx.credentials });
  const RoleName = `${clusterName}-cluster`;
  try {
    const { Role } = await iam.send(
      new CreateRoleCommand({
        RoleName,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'eks.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
      }),
    );
    return Role!.Arn!;
  } catch (err) {
    if ((err as Error).name !== 'EntityAlreadyExistsException') throw err;
    return (await iam.send(new GetRoleCommand({ RoleName }))).Role!.Arn!;
  } finally {
    iam.destroy();
  }
}

async function control(frontDoorUrl: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${frontDoorUrl}/_testbed/${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const out = (await res.json()) as { error?: string };
  if (!res.ok) throw new Error(`${method} /_testbed/${path}: ${res.status} ${out.error ?? ''}`);
  return out;
}

/**
 * Client for tests in other workers: starts another cluster (default name: the test bed's) in `region`,
 * sharing the test bed's moto and front door. Takes as long as an API server start (tens of seconds).
 */
export async function startExtraCluster(
  frontDoorUrl: string,
  opts: { region: string; clusterName?: string },
): Promise<ClusterInfo> {
  return (await control(frontDoorUrl, 'POST', 'clusters', opts)) as ClusterInfo;
}

/** Client for tests in other workers: stops an extra cluster and removes it from moto with its entries. */
export async function stopExtraCluster(
  frontDoorUrl: string,
  opts: { region: string; clusterName?: string },
): Promise<void> {
  const q = new URLSearchParams({
    region: opts.region,
    ...(opts.clusterName ? { clusterName: opts.clusterName } : {}),
  });
  await control(frontDoorUrl, 'DELETE', `clusters?${q}`);
}
