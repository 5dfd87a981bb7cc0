// The whole test bed plus a second cluster of the same name in another region (POST /_testbed/clusters):
// real kube-apiservers, each with the EKS authenticator of its own (region, name).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateAccessEntryCommand,
  DescribeClusterCommand,
  EKSClient,
  ListAccessEntriesCommand,
} from '@aws-sdk/client-eks';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eksToken } from '../../src/lambda/eks-token.ts';
import { type ClusterInfo, startExtraCluster, stopExtraCluster } from './cluster.ts';
import { startTestbed, type Testbed } from './index.ts';
import { binaries } from './paths.ts';
import { LAMBDA_TRUST } from './test-front-door.ts';

const run = promisify(execFile);

const HOME = 'eu-west-1'; // the test bed's own cluster
const OTHER = 'us-east-1'; // the extra one, same name

let bed: Testbed;
let stopped = false;
let extra: ClusterInfo;
const clients: { destroy(): void }[] = [];
const eksIn = (region: string) => {
  const c = new EKSClient({ endpoint: bed.info.aws.url, region, credentials: bed.info.aws.credentials });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  bed = await startTestbed({ quiet: true, region: HOME });
  extra = await startExtraCluster(bed.info.aws.url, { region: OTHER });
}, 300_000);

afterAll(async () => {
  for (const c of clients) c.destroy();
  if (!stopped) await bed?.stop();
}, 60_000);

/** Who the API server says the bearer of the token is (SelfSubjectReview), or its refusal status. */
function whoAmI(
  apiUrl: string,
  caPem: string,
  token: string,
): Promise<{ status: number; username?: string }> {
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  return new Promise((resolve, reject) => {
    const req = request(
      `${apiUrl}/apis/authentication.k8s.io/v1/selfsubjectreviews`,
      {
        method: 'POST',
        ca: caPem,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const out = JSON.parse(Buffer.concat(chunks).toString() || '{}');
          resolve({ status: res.statusCode ?? 0, username: out.status?.userInfo?.username });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A role with an access entry on the cluster in `region` only, and a token maker for it. */
async function roleWithEntryIn(region: string, name: string) {
  const aws = bed.info.aws;
  const iam = new IAMClient({ endpoint: aws.url, region, credentials: aws.credentials });
  const sts = new STSClient({ endpoint: aws.url, region, credentials: aws.credentials });
  clients.push(iam, sts);
  const { Role } = await iam.send(
    new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: LAMBDA_TRUST }),
  );
  await eksIn(region).send(
    new CreateAccessEntryCommand({
      clusterName: bed.info.clusterName,
      principalArn: Role!.Arn!,
      username: name,
    }),
  );
  // Through the front door, so the test bed records the secret and the authenticators verify signatures.
  const { Credentials: c } = await sts.send(
    new AssumeRoleCommand({ RoleArn: Role!.Arn!, RoleSessionName: 's' }),
  );
  const credentials = {
    accessKeyId: c!.AccessKeyId!,
    secretAccessKey: c!.SecretAccessKey!,
    sessionToken: c!.SessionToken!,
  };
  // As the function would: signed for the region of the cluster it talks to, with the (shared) name.
  return {
    arn: Role!.Arn!,
    tokenFor: (tokenRegion: string) =>
      eksToken({
        region: tokenRegion,
        clusterName: bed.info.clusterName,
        credentials,
        signingDate: new Date(),
      }),
  };
}

describe('a second cluster of the same name in another region', () => {
  it('is another cluster: its own API server, CA and DescribeCluster answer, in its region', async () => {
    expect(extra).toMatchObject({ region: OTHER, clusterName: bed.info.clusterName });
    expect(extra.apiUrl).not.toBe(bed.info.apiUrl);
    expect(extra.caPem).not.toBe(bed.info.caPem);
    const home = (await eksIn(HOME).send(new DescribeClusterCommand({ name: bed.info.clusterName }))).cluster;
    const other = (await eksIn(OTHER).send(new DescribeClusterCommand({ name: bed.info.clusterName })))
      .cluster;
    expect(home?.endpoint).toBe(bed.info.apiUrl);
    expect(other).toMatchObject({
      endpoint: extra.apiUrl,
      certificateAuthority: { data: Buffer.from(extra.caPem).toString('base64') },
      accessConfig: { authenticationMode: 'API_AND_CONFIG_MAP' },
    });
    expect(other?.arn).toContain(`:eks:${OTHER}:`);
    // The CRDs are installed there too.
    const crds = await run(binaries.kubectl(), [
      '--kubeconfig',
      extra.kubeconfigPath,
      'get',
      'crd',
      '-o',
      'name',
    ]);
    expect(crds.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/secretsyncs.secretsync.io');
    await expect(startExtraCluster(bed.info.aws.url, { region: OTHER })).rejects.toThrow(/409/);
  });

  it('a token authenticates only on the cluster whose region holds its access entry', async () => {
    const r = await roleWithEntryIn(OTHER, 'regional-r');
    const r2 = await roleWithEntryIn(HOME, 'regional-r2');

    expect(await whoAmI(extra.apiUrl, extra.caPem, await r.tokenFor(OTHER))).toEqual({
      status: 201,
      username: 'regional-r',
    });
    expect((await whoAmI(bed.info.apiUrl, bed.info.caPem, await r.tokenFor(HOME))).status).toBe(401);

    expect(await whoAmI(bed.info.apiUrl, bed.info.caPem, await r2.tokenFor(HOME))).toEqual({
      status: 201,
      username: 'regional-r2',
    });
    expect((await whoAmI(extra.apiUrl, extra.caPem, await r2.tokenFor(OTHER))).status).toBe(401);

    // Refused for the missing entry, not for the token (host, signature): the authenticators say why.
    const log = readFileSync(join(bed.info.logsDir, 'testbed.log'), 'utf8');
    const name = bed.info.clusterName;
    expect(log).toContain(
      `eks-authenticator ${HOME}/${name}: refused: no access entry on cluster ${name} (${HOME}) for ${r.arn}`,
    );
    expect(log).toContain(
      `eks-authenticator ${OTHER}/${name}: refused: no access entry on cluster ${name} (${OTHER}) for ${r2.arn}`,
    );
  }, 30_000);

  it('DELETE stops it and removes it from moto with its entries; the primary carries on', async () => {
    const name = bed.info.clusterName;
    expect(bed.accessEntries.list(name, OTHER)).not.toEqual([]);
    await stopExtraCluster(bed.info.aws.url, { region: OTHER });
    await expect(eksIn(OTHER).send(new DescribeClusterCommand({ name }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    expect(bed.accessEntries.list(name, OTHER)).toEqual([]);
    await expect(whoAmI(extra.apiUrl, extra.caPem, 'x')).rejects.toThrow(/ECONNREFUSED/);
    await expect(stopExtraCluster(bed.info.aws.url, { region: OTHER })).rejects.toThrow(/404/);
    expect((await eksIn(HOME).send(new DescribeClusterCommand({ name }))).cluster?.endpoint).toBe(
      bed.info.apiUrl,
    );
  }, 60_000);

  it('starts again clean after a delete, and the test bed stop() stops it', async () => {
    extra = await startExtraCluster(bed.info.aws.url, { region: OTHER });
    const { accessEntries } = await eksIn(OTHER).send(
      new ListAccessEntriesCommand({ clusterName: bed.info.clusterName }),
    );
    expect(accessEntries).toEqual([]);
    stopped = true;
    await bed.stop();
    await expect(whoAmI(extra.apiUrl, extra.caPem, 'x')).rejects.toThrow(/ECONNREFUSED/);
  }, 120_000);
});
