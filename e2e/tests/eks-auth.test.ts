import { CreateAccessEntryCommand, DeleteAccessEntryCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { beforeAll, describe, expect, it } from 'vitest';
import { eksToken, presignGetCallerIdentity, TOKEN_PREFIX } from '../../src/lambda/eks-token.ts';
import { awsConfig, bed, core, freshNamespace, rbac, statusOf, tokenKubeConfig } from './support.ts';

/**
 * The EKS authentication path end to end on the real API server: a token presigned with
 * assumed-role credentials (the product's own signer) → our TokenReview webhook → the access
 * entry's username → real RBAC.
 */
interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

async function roleWithCredentials(name: string): Promise<{ roleArn: string; creds: Creds }> {
  const iam = new IAMClient(awsConfig());
  const role = await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      Path: '/secretsync/',
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  const sts = new STSClient(awsConfig());
  const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: role.Role!.Arn!, RoleSessionName: name }));
  const c = assumed.Credentials!;
  return {
    roleArn: role.Role!.Arn!,
    creds: {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    },
  };
}

const token = (creds: Creds, o: { cluster?: string; region?: string; at?: Date } = {}) =>
  eksToken({
    region: o.region ?? bed().aws.region,
    clusterName: o.cluster ?? bed().clusterName,
    credentials: creds,
    signingDate: o.at ?? new Date(),
  });

/** Status of reading a Secret as the token's identity. */
const readSecretAs = (tok: string, namespace: string, name: string) =>
  core(tokenKubeConfig(tok))
    .readNamespacedSecret({ namespace, name })
    .then(
      () => 200,
      (e: unknown) => statusOf(e),
    );

describe('EKS token authentication and RBAC on the real API server', () => {
  let ns: string;
  let otherNs: string;
  let creds: Creds;
  let roleArn: string;
  const username = () => `secretsync:${ns}:demo`;

  beforeAll(async () => {
    ns = await freshNamespace('auth');
    otherNs = await freshNamespace('auth-other');
    ({ roleArn, creds } = await roleWithCredentials(`auth-${ns}`));
    const eks = new EKSClient(awsConfig());
    await eks.send(
      new CreateAccessEntryCommand({
        clusterName: bed().clusterName,
        principalArn: roleArn,
        username: username(),
        type: 'STANDARD',
      }),
    );
    for (const n of [ns, otherNs]) {
      for (const name of ['target', 'other']) {
        await core().createNamespacedSecret({
          namespace: n,
          body: { metadata: { name }, stringData: { k: 'v' } },
        });
      }
    }
    await rbac().createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'demo' },
        rules: [
          {
            apiGroups: [''],
            resources: ['secrets'],
            resourceNames: ['target'],
            verbs: ['get', 'update', 'patch'],
          },
        ],
      },
    });
    await rbac().createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'demo' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'demo' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: username() }],
      },
    });
  });

  it('authenticates as the access entry username, which RBAC lets read exactly the one Secret', async () => {
    const tok = await token(creds);
    expect(tok.startsWith(TOKEN_PREFIX)).toBe(true);
    const review = await core(tokenKubeConfig(tok))
      .readNamespacedSecret({ namespace: ns, name: 'target' })
      .then((s) => s.metadata?.name);
    expect(review).toBe('target');
  });

  it('refuses everything else the identity might try (403)', async () => {
    const tok = await token(creds);
    const c = core(tokenKubeConfig(tok));
    const attempts: [string, () => Promise<unknown>][] = [
      ['another Secret in the namespace', () => c.readNamespacedSecret({ namespace: ns, name: 'other' })],
      [
        'the same name in another namespace',
        () => c.readNamespacedSecret({ namespace: otherNs, name: 'target' }),
      ],
      ['list Secrets in the namespace', () => c.listNamespacedSecret({ namespace: ns })],
      ['list Secrets cluster-wide', () => c.listSecretForAllNamespaces()],
      ['watch Secrets', () => c.listNamespacedSecret({ namespace: ns, watch: true, timeoutSeconds: 1 })],
      ['delete the target', () => c.deleteNamespacedSecret({ namespace: ns, name: 'target' })],
      [
        'create a Secret',
        () => c.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'x' } } }),
      ],
      ['read a ConfigMap', () => c.readNamespacedConfigMap({ namespace: ns, name: 'kube-root-ca.crt' })],
    ];
    for (const [what, attempt] of attempts) {
      const status = await attempt().then(
        () => 200,
        (e: unknown) => statusOf(e),
      );
      expect(status, what).toBe(403);
    }
  });

  it.each([
    ['expired (signed 20 minutes ago)', async () => token(creds, { at: new Date(Date.now() - 20 * 60_000) })],
    ['signed for another cluster', async () => token(creds, { cluster: 'another-cluster' })],
    [
      'pointing at another host',
      async () => {
        const url = await presignGetCallerIdentity({
          region: bed().aws.region,
          clusterName: bed().clusterName,
          credentials: creds,
          signingDate: new Date(),
        });
        const evil = url.replace(/^https:\/\/[^/]+/, 'https://sts.attacker.example');
        return TOKEN_PREFIX + Buffer.from(evil).toString('base64url');
      },
    ],
    [
      'base64 with padding',
      async () => {
        const url = await presignGetCallerIdentity({
          region: bed().aws.region,
          clusterName: bed().clusterName,
          credentials: creds,
          signingDate: new Date(),
        });
        // Pick a URL (a no-op fragment) whose base64 needs padding, then pad it as std base64 would.
        const variant = ['', '#', '##'].map((f) => url + f).find((u) => Buffer.from(u).length % 3 !== 0)!;
        const raw = Buffer.from(variant).toString('base64url');
        const b64 = raw + '='.repeat((4 - (raw.length % 4)) % 4);
        expect(b64.endsWith('=')).toBe(true);
        return TOKEN_PREFIX + b64;
      },
    ],
    ['not an EKS token at all', async () => 'k8s-aws-v2.abc'],
  ])('rejects a token %s (401)', async (_what, make) => {
    expect(await readSecretAs(await make(), ns, 'target')).toBe(401);
  });

  it('rejects a principal without an access entry, and one whose entry was deleted (401)', async () => {
    const stranger = await roleWithCredentials(`stranger-${ns}`);
    expect(await readSecretAs(await token(stranger.creds), ns, 'target')).toBe(401);

    const gone = await roleWithCredentials(`gone-${ns}`);
    const eks = new EKSClient(awsConfig());
    await eks.send(
      new CreateAccessEntryCommand({
        clusterName: bed().clusterName,
        principalArn: gone.roleArn,
        username: `secretsync:${ns}:gone`,
      }),
    );
    // Authenticated but unauthorized while the entry exists: 403, not 401.
    expect(await readSecretAs(await token(gone.creds), ns, 'target')).toBe(403);
    await eks.send(
      new DeleteAccessEntryCommand({ clusterName: bed().clusterName, principalArn: gone.roleArn }),
    );
    // kube-apiserver caches a successful token for 10 s (as EKS does); a token signed in a later
    // second is a different token, so it is decided afresh.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await readSecretAs(await token(gone.creds), ns, 'target')).toBe(401);
  });

  it('service-account tokens work (TokenRequest) alongside EKS tokens', async () => {
    await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'sa' } } });
    const tr = await core().createNamespacedServiceAccountToken({
      namespace: ns,
      name: 'sa',
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const status = await core(tokenKubeConfig(tr.status?.token ?? ''))
      .readNamespacedSecret({ namespace: ns, name: 'target' })
      .then(
        () => 200,
        (e: unknown) => statusOf(e),
      );
    expect(status).toBe(403); // authenticated as system:serviceaccount:<ns>:sa, which has no grant
  });
});
