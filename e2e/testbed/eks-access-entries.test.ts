import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { homedir } from 'node:os';
import {
  CreateAccessEntryCommand,
  CreateClusterCommand,
  DeleteAccessEntryCommand,
  DeleteClusterCommand,
  DescribeAccessEntryCommand,
  DescribeClusterCommand,
  EKSClient,
  ListAccessEntriesCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAccessEntryCommand,
} from '@aws-sdk/client-eks';
import { CreateRoleCommand, CreateUserCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwsRequest, AwsResponse, Interceptor } from './aws-types.ts';
import {
  AccessEntryStore,
  type ClusterOverride,
  clusterKey,
  createEksInterceptor,
  RESERVED_USERNAME_PREFIXES,
} from './eks-access-entries.ts';

const MOTO_SERVER =
  process.env.MOTO_SERVER ?? `${homedir()}/.cache/secretsync/venv-moto-5.2.5/bin/moto_server`;
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'AKIAADMIN00000000000', secretAccessKey: 'x' };
const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});

/** moto_server on a free loopback port, up until stop(). */
async function startMoto(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
  const child: ChildProcess = spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`moto_server did not start: ${stderr}`);
    try {
      if ((await fetch(`${url}/moto-api/`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A minimal front door: classify the request, let the interceptor answer, else pass it on to moto. */
async function startFrontDoor(
  motoUrl: string,
  interceptor: Interceptor,
): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\//.exec(
      String(req.headers.authorization ?? ''),
    );
    const awsReq: AwsRequest = {
      method: req.method ?? 'GET',
      path: q < 0 ? raw : raw.slice(0, q),
      query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)),
      headers: req.headers,
      body,
      service: scope?.[3] ?? '',
      region: scope?.[2] ?? REGION,
      ...(scope?.[1] ? { accessKeyId: scope[1] } : {}),
    };
    let out: AwsResponse | undefined = await interceptor(awsReq);
    if (!out) {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined && !['host', 'connection', 'content-length'].includes(k))
          headers.set(k, String(v));
      }
      const r = await fetch(`${motoUrl}${raw}`, {
        method: awsReq.method,
        headers,
        ...(body.length ? { body: new Uint8Array(body) } : {}),
      });
      const h: Record<string, string> = {};
      for (const k of ['content-type', 'x-amzn-errortype', 'x-amzn-requestid']) {
        const v = r.headers.get(k);
        if (v !== null) h[k] = v;
      }
      out = { status: r.status, headers: h, body: Buffer.from(await r.arrayBuffer()) };
    }
    res.writeHead(out.status, out.headers);
    res.end(out.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

let moto: { url: string; stop: () => Promise<void> };
let frontDoor: { url: string; server: Server };
let eks: EKSClient;
let iam: IAMClient;
const store = new AccessEntryStore();
const overrides: Record<string, ClusterOverride> = {};
const roleArn = (name: string, path = '/') => `arn:aws:iam::${ACCOUNT}:role${path}${name}`;
const CLUSTER = 'test-cluster';

beforeAll(async () => {
  moto = await startMoto();
  const direct = { endpoint: moto.url, region: REGION, credentials: CREDENTIALS };
  iam = new IAMClient(direct);
  const motoEks = new EKSClient(direct);
  for (const name of [CLUSTER, 'legacy-cluster', 'doomed-cluster', 'plain-cluster']) {
    await motoEks.send(
      new CreateClusterCommand({ name, roleArn: roleArn('cluster-role'), resourcesVpcConfig: {} }),
    );
  }
  for (const [name, path] of [
    ['role-a', '/secretsync/'],
    ['role-b', '/'],
    ['role-c', '/'],
    ['role-d', '/'],
  ] as const) {
    await iam.send(new CreateRoleCommand({ RoleName: name, Path: path, AssumeRolePolicyDocument: TRUST }));
  }
  overrides[clusterKey(REGION, CLUSTER)] = {
    endpoint: 'https://127.0.0.1:6443',
    certificateAuthorityData: Buffer.from(
      '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n',
    ).toString('base64'),
    authenticationMode: 'API',
  };
  overrides[clusterKey(REGION, 'legacy-cluster')] = {
    ...overrides[clusterKey(REGION, CLUSTER)]!,
    authenticationMode: 'CONFIG_MAP',
  };
  const interceptor = createEksInterceptor({
    motoUrl: moto.url,
    region: REGION,
    accountId: ACCOUNT,
    store,
    clusterOverrides: overrides,
  });
  frontDoor = await startFrontDoor(moto.url, interceptor);
  eks = new EKSClient({ endpoint: frontDoor.url, region: REGION, credentials: CREDENTIALS, maxAttempts: 1 });
}, 60_000);

afterAll(async () => {
  eks?.destroy();
  await new Promise((r) => frontDoor?.server.close(r));
  await moto?.stop();
});

/** The SDK error as the product would see it. */
async function failure(
  p: Promise<unknown>,
): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the call to fail');
}

describe('EKS access entries through @aws-sdk/client-eks', () => {
  const arnA = roleArn('role-a', '/secretsync/');

  it('creates an entry with the EKS default username and binds it to the role ID', async () => {
    const { accessEntry } = await eks.send(
      new CreateAccessEntryCommand({ clusterName: CLUSTER, principalArn: arnA }),
    );
    expect(accessEntry).toMatchObject({
      clusterName: CLUSTER,
      principalArn: arnA,
      kubernetesGroups: [],
      // Path dropped, as EKS does for the generated username.
      username: `arn:aws:sts::${ACCOUNT}:assumed-role/role-a/{{SessionName}}`,
      type: 'STANDARD',
      tags: {},
    });
    expect(accessEntry?.createdAt).toBeInstanceOf(Date);
    expect(accessEntry?.accessEntryArn).toMatch(
      new RegExp(
        `^arn:aws:eks:${REGION}:${ACCOUNT}:access-entry/${CLUSTER}/role/${ACCOUNT}/role-a/[0-9a-f-]{36}$`,
      ),
    );
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: 'role-a' }));
    expect(store.get(CLUSTER, arnA)?.principalId).toBe(Role?.RoleId);
  });

  it('creates an entry with a custom username, groups and tags', async () => {
    const { accessEntry } = await eks.send(
      new CreateAccessEntryCommand({
        clusterName: CLUSTER,
        principalArn: roleArn('role-b'),
        username: 'secretsync:team-a:db',
        kubernetesGroups: ['secretsync-writers'],
        tags: { 'managed-by': 'secretsync' },
        clientRequestToken: 'token-b',
      }),
    );
    expect(accessEntry).toMatchObject({
      username: 'secretsync:team-a:db',
      kubernetesGroups: ['secretsync-writers'],
      tags: { 'managed-by': 'secretsync' },
    });
  });

  it('refuses a second entry for the same principal with 409 ResourceInUseException', async () => {
    const err = await failure(
      eks.send(new CreateAccessEntryCommand({ clusterName: CLUSTER, principalArn: arnA })),
    );
    expect(err).toMatchObject({ name: 'ResourceInUseException', status: 409 });
  });

  it('answers a retried create with the same clientRequestToken with the same entry', async () => {
    const again = await eks.send(
      new CreateAccessEntryCommand({
        clusterName: CLUSTER,
        principalArn: roleArn('role-b'),
        username: 'secretsync:team-a:db',
        clientRequestToken: 'token-b',
      }),
    );
    expect(again.accessEntry?.accessEntryArn).toBe(store.get(CLUSTER, roleArn('role-b'))?.accessEntryArn);
  });

  it('describes an entry by its principal ARN (path included)', async () => {
    const { accessEntry } = await eks.send(
      new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn: arnA }),
    );
    expect(accessEntry?.principalArn).toBe(arnA);
    expect(accessEntry?.modifiedAt).toEqual(accessEntry?.createdAt);
  });

  it('lists entries page by page', async () => {
    const first = await eks.send(new ListAccessEntriesCommand({ clusterName: CLUSTER, maxResults: 1 }));
    expect(first.accessEntries).toHaveLength(1);
    expect(first.nextToken).toBeDefined();
    const second = await eks.send(
      new ListAccessEntriesCommand({ clusterName: CLUSTER, maxResults: 1, nextToken: first.nextToken }),
    );
    expect([...(first.accessEntries ?? []), ...(second.accessEntries ?? [])].sort()).toEqual(
      [arnA, roleArn('role-b')].sort(),
    );
    expect(second.nextToken).toBeUndefined();
    const all = await eks.send(new ListAccessEntriesCommand({ clusterName: CLUSTER }));
    expect(all.accessEntries).toHaveLength(2);
    const err = await failure(
      eks.send(new ListAccessEntriesCommand({ clusterName: CLUSTER, maxResults: 101 })),
    );
    expect(err).toMatchObject({ name: 'InvalidParameterException', status: 400 });
  });

  it('updates username and groups', async () => {
    const { accessEntry } = await eks.send(
      new UpdateAccessEntryCommand({
        clusterName: CLUSTER,
        principalArn: arnA,
        username: 'secretsync:team-b:api',
        kubernetesGroups: ['g1', 'g2'],
      }),
    );
    expect(accessEntry).toMatchObject({ username: 'secretsync:team-b:api', kubernetesGroups: ['g1', 'g2'] });
    const err = await failure(
      eks.send(
        new UpdateAccessEntryCommand({ clusterName: CLUSTER, principalArn: arnA, username: 'eks:nope' }),
      ),
    );
    expect(err).toMatchObject({ name: 'InvalidParameterException', status: 400 });
  });

  it('tags, lists tags of and untags an access entry by its ARN', async () => {
    const arn = store.get(CLUSTER, arnA)?.accessEntryArn as string;
    await eks.send(new TagResourceCommand({ resourceArn: arn, tags: { a: '1', b: '2' } }));
    await eks.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ['a'] }));
    const { tags } = await eks.send(new ListTagsForResourceCommand({ resourceArn: arn }));
    expect(tags).toEqual({ b: '2' });
    const err = await failure(eks.send(new ListTagsForResourceCommand({ resourceArn: `${arn}x` })));
    expect(err).toMatchObject({ name: 'NotFoundException', status: 404 });
  });

  it('deletes an entry; then it is not found (404 ResourceNotFoundException)', async () => {
    await eks.send(new DeleteAccessEntryCommand({ clusterName: CLUSTER, principalArn: roleArn('role-b') }));
    for (const cmd of [
      new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn: roleArn('role-b') }),
      new DeleteAccessEntryCommand({ clusterName: CLUSTER, principalArn: roleArn('role-b') }),
      new UpdateAccessEntryCommand({ clusterName: CLUSTER, principalArn: roleArn('role-b'), username: 'x' }),
    ]) {
      // biome-ignore lint/suspicious/noExplicitAny: three command types, one send
      expect(await failure(eks.send(cmd as any))).toMatchObject({
        name: 'ResourceNotFoundException',
        status: 404,
      });
    }
  });

  it('creates an entry for an IAM user; its default username is the user ARN', async () => {
    const { User } = await iam.send(new CreateUserCommand({ UserName: 'human', Path: '/ops/' }));
    const principalArn = `arn:aws:iam::${ACCOUNT}:user/ops/human`;
    const { accessEntry } = await eks.send(
      new CreateAccessEntryCommand({ clusterName: CLUSTER, principalArn }),
    );
    expect(accessEntry?.username).toBe(principalArn);
    expect(store.get(CLUSTER, principalArn)?.principalId).toBe(User?.UserId);
  });

  it('answers ResourceNotFoundException for an unknown cluster', async () => {
    const err = await failure(
      eks.send(
        new CreateAccessEntryCommand({ clusterName: 'no-such-cluster', principalArn: roleArn('role-c') }),
      ),
    );
    expect(err).toMatchObject({ name: 'ResourceNotFoundException', status: 404 });
    expect(err.message).toContain('no-such-cluster');
  });

  const invalid: Array<{
    name: string;
    input: { principalArn: string; username?: string } & Record<string, unknown>;
  }> = [
    {
      name: 'an STS assumed-role ARN',
      input: { principalArn: `arn:aws:sts::${ACCOUNT}:assumed-role/role-c/session` },
    },
    { name: 'a role that does not exist', input: { principalArn: roleArn('no-such-role') } },
    { name: 'an existing role under the wrong path', input: { principalArn: roleArn('role-c', '/other/') } },
    { name: 'a non-IAM ARN', input: { principalArn: 'arn:aws:s3:::bucket' } },
    { name: 'another partition', input: { principalArn: `arn:aws-cn:iam::${ACCOUNT}:role/role-c` } },
    { name: 'another account', input: { principalArn: 'arn:aws:iam::210987654321:role/role-c' } },
    ...RESERVED_USERNAME_PREFIXES.map((p) => ({
      name: `username starting with ${p}`,
      input: { principalArn: roleArn('role-c'), username: `${p}someone` },
    })),
    {
      name: 'group starting with system:',
      input: { principalArn: roleArn('role-c'), kubernetesGroups: ['system:masters'] },
    },
    { name: 'type EC2_LINUX (not emulated)', input: { principalArn: roleArn('role-c'), type: 'EC2_LINUX' } },
  ];
  it.each(invalid)('refuses $name with 400 InvalidParameterException', async ({ input }) => {
    const err = await failure(eks.send(new CreateAccessEntryCommand({ clusterName: CLUSTER, ...input })));
    expect(err).toMatchObject({ name: 'InvalidParameterException', status: 400 });
    expect(store.get(CLUSTER, input.principalArn)).toBeUndefined();
  });

  it('explains why an assumed-role ARN is refused', async () => {
    const err = await failure(
      eks.send(
        new CreateAccessEntryCommand({
          clusterName: CLUSTER,
          principalArn: `arn:aws:sts::${ACCOUNT}:assumed-role/role-c/s`,
        }),
      ),
    );
    expect(err.message).toMatch(/STS session/);
  });

  it('refuses access entries on a CONFIG_MAP cluster with InvalidRequestException', async () => {
    const err = await failure(
      eks.send(
        new CreateAccessEntryCommand({ clusterName: 'legacy-cluster', principalArn: roleArn('role-c') }),
      ),
    );
    expect(err).toMatchObject({ name: 'InvalidRequestException', status: 400 });
  });

  it('patches DescribeCluster of an overridden cluster and leaves the others alone', async () => {
    const { cluster } = await eks.send(new DescribeClusterCommand({ name: CLUSTER }));
    expect(cluster).toMatchObject({
      name: CLUSTER,
      endpoint: 'https://127.0.0.1:6443',
      certificateAuthority: { data: overrides[clusterKey(REGION, CLUSTER)]?.certificateAuthorityData },
      accessConfig: { authenticationMode: 'API' },
      status: 'ACTIVE',
    });
    const plain = await eks.send(new DescribeClusterCommand({ name: 'plain-cluster' }));
    expect(plain.cluster?.endpoint).toMatch(/\.eks\.amazonaws\.com/);
    const err = await failure(eks.send(new DescribeClusterCommand({ name: 'no-such-cluster' })));
    expect(err).toMatchObject({ name: 'ResourceNotFoundException', status: 404 });
  });

  it('drops the entries of a deleted cluster', async () => {
    await eks.send(
      new CreateAccessEntryCommand({ clusterName: 'doomed-cluster', principalArn: roleArn('role-d') }),
    );
    await eks.send(new DeleteClusterCommand({ name: 'doomed-cluster' }));
    expect(store.list('doomed-cluster')).toEqual([]);
  });
});

// Cluster names are unique per region only; the same name in another region is another cluster.
describe('a cluster of the same name in another region', () => {
  const OTHER = 'eu-west-1';
  const arnC = roleArn('role-c');
  let euEks: EKSClient;
  beforeAll(() => {
    euEks = new EKSClient({
      endpoint: frontDoor.url,
      region: OTHER,
      credentials: CREDENTIALS,
      maxAttempts: 1,
    });
  });
  afterAll(() => euEks?.destroy());

  it('does not exist there until it is created there', async () => {
    const err = await failure(euEks.send(new ListAccessEntriesCommand({ clusterName: CLUSTER })));
    expect(err).toMatchObject({ name: 'ResourceNotFoundException', status: 404 });
    await new EKSClient({ endpoint: moto.url, region: OTHER, credentials: CREDENTIALS }).send(
      new CreateClusterCommand({ name: CLUSTER, roleArn: roleArn('cluster-role'), resourcesVpcConfig: {} }),
    );
    expect((await euEks.send(new ListAccessEntriesCommand({ clusterName: CLUSTER }))).accessEntries).toEqual(
      [],
    );
  });

  it('keeps its own entries, with ARNs of its region', async () => {
    const { accessEntry } = await euEks.send(
      new CreateAccessEntryCommand({ clusterName: CLUSTER, principalArn: arnC, username: 'eu-user' }),
    );
    expect(accessEntry?.accessEntryArn).toMatch(
      new RegExp(`^arn:aws:eks:${OTHER}:${ACCOUNT}:access-entry/${CLUSTER}/role/${ACCOUNT}/role-c/`),
    );
    expect((await euEks.send(new ListAccessEntriesCommand({ clusterName: CLUSTER }))).accessEntries).toEqual([
      arnC,
    ]);
    const home = await eks.send(new ListAccessEntriesCommand({ clusterName: CLUSTER }));
    expect(home.accessEntries).not.toContain(arnC);
    expect(
      await failure(eks.send(new DescribeAccessEntryCommand({ clusterName: CLUSTER, principalArn: arnC }))),
    ).toMatchObject({ name: 'ResourceNotFoundException', status: 404 });
    // The home region's entry for role-a is not visible from eu-west-1 either.
    expect(
      await failure(
        euEks.send(
          new DescribeAccessEntryCommand({
            clusterName: CLUSTER,
            principalArn: roleArn('role-a', '/secretsync/'),
          }),
        ),
      ),
    ).toMatchObject({ name: 'ResourceNotFoundException', status: 404 });
    // Updates land on that region's entry only.
    await euEks.send(
      new UpdateAccessEntryCommand({ clusterName: CLUSTER, principalArn: arnC, kubernetesGroups: ['eu'] }),
    );
    expect(store.get(CLUSTER, arnC, OTHER)?.kubernetesGroups).toEqual(['eu']);
    // Which one a name-only lookup means is now ambiguous: the store refuses to guess.
    expect(() => store.get(CLUSTER, arnC)).toThrow(/several regions/);
  });

  it('tags an entry only in its own region', async () => {
    const arn = store.get(CLUSTER, arnC, OTHER)?.accessEntryArn as string;
    expect(
      await failure(eks.send(new TagResourceCommand({ resourceArn: arn, tags: { a: '1' } }))),
    ).toMatchObject({
      name: 'NotFoundException',
      status: 404,
    });
    await euEks.send(new TagResourceCommand({ resourceArn: arn, tags: { a: '1' } }));
    expect((await euEks.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags).toEqual({ a: '1' });
  });

  it('patches DescribeCluster with its own override', async () => {
    overrides[clusterKey(OTHER, CLUSTER)] = {
      endpoint: 'https://127.0.0.1:7443',
      certificateAuthorityData: Buffer.from('eu-ca').toString('base64'),
      authenticationMode: 'API_AND_CONFIG_MAP',
    };
    expect((await euEks.send(new DescribeClusterCommand({ name: CLUSTER }))).cluster).toMatchObject({
      endpoint: 'https://127.0.0.1:7443',
      accessConfig: { authenticationMode: 'API_AND_CONFIG_MAP' },
    });
    expect((await eks.send(new DescribeClusterCommand({ name: CLUSTER }))).cluster?.endpoint).toBe(
      'https://127.0.0.1:6443',
    );
  });

  it('takes only its own entries along when deleted', async () => {
    const before = store.list(CLUSTER, REGION).length;
    expect(before).toBeGreaterThan(0);
    await euEks.send(new DeleteClusterCommand({ name: CLUSTER }));
    expect(store.list(CLUSTER, OTHER)).toEqual([]);
    expect(store.list(CLUSTER, REGION)).toHaveLength(before);
    expect(store.list(CLUSTER)).toHaveLength(before); // unambiguous again
  });
});
