import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { binaries } from '../testbed/paths.ts';
import { eventually } from './controller-support.ts';
import { bed, freshNamespace, rbac } from './support.ts';

/**
 * The chart's creator-consent policy (templates/admission.yaml) on the test bed's real API server:
 * a SecretSync is admitted only when the requesting user may write its target Secret. Users act by
 * impersonation (the admin is in system:masters), so the API server's own authorizer answers for each.
 */
const CHART = new URL('../../charts/secretsync/', import.meta.url).pathname;
const POLICY = 'rel-secretsync-creator-consent';
const GUARD = 'rel-secretsync-controller-guard';
/** The release namespace: the controller's ServiceAccount is rel-secretsync there. */
let releaseNs = '';
const exec = promisify(execFile);

interface Outcome {
  ok: boolean;
  message: string;
}
/** kubectl as `user` (null: the admin), a manifest on stdin; the outcome and what the API server said. */
async function as(user: string | null, args: string[], manifest?: unknown): Promise<Outcome> {
  const who = user === null ? [] : [`--as=${user}`];
  const p = exec(binaries.kubectl(), ['--kubeconfig', bed().kubeconfigPath, ...who, ...args], {
    encoding: 'utf8',
  });
  p.child.stdin?.end(manifest === undefined ? '' : JSON.stringify(manifest));
  try {
    const r = await p;
    return { ok: true, message: r.stdout.trim() };
  } catch (err) {
    return { ok: false, message: ((err as { stderr?: string }).stderr ?? String(err)).trim() };
  }
}

const secretSync = (ns: string, name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'SecretSync',
  metadata: { name, namespace: ns },
  spec: { source: { secretId: 'prod/db' }, ...spec },
});

/** A Role for `user`: SecretSync writes, and `secretVerbs` on the Secrets named `secretNames`. */
async function grant(ns: string, user: string, secretVerbs: string[], secretNames: string[]) {
  const name = user.replace(/[^a-z0-9-]/g, '-');
  const subject = user.startsWith('system:serviceaccount:')
    ? { kind: 'ServiceAccount', name: user.split(':')[3]!, namespace: user.split(':')[2]! }
    : { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user };
  await rbac().createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name },
      rules: [
        {
          apiGroups: ['secretsync.io'],
          resources: ['secretsyncs'],
          verbs: ['get', 'create', 'update', 'patch'],
        },
        ...(secretVerbs.length
          ? [{ apiGroups: [''], resources: ['secrets'], verbs: secretVerbs, resourceNames: secretNames }]
          : []),
      ],
    },
  });
  await rbac().createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [subject],
    },
  });
}

/** A merge patch of a SecretSync, as `user`. */
const mergePatch = (user: string | null, ns: string, name: string, patch: string) =>
  as(user, ['patch', 'secretsync', name, '-n', ns, '--type=merge', '-p', patch]);

const create = (user: string | null, obj: unknown) => as(user, ['create', '-f', '-'], obj);

beforeAll(async () => {
  releaseNs = await freshNamespace('release');
  const rendered = await exec(
    binaries.helm(),
    [
      'template',
      'rel',
      CHART,
      '--namespace',
      releaseNs,
      '--set',
      `clusterName=${bed().clusterName}`,
      '--set',
      `region=${bed().aws.region}`,
      '--show-only',
      'templates/admission.yaml',
    ],
    { encoding: 'utf8' },
  );
  const docs = parseAllDocuments(rendered.stdout).map((d) => d.toJS());
  expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual([
    `ValidatingAdmissionPolicy/${GUARD}`,
    `ValidatingAdmissionPolicy/${POLICY}`,
    `ValidatingAdmissionPolicyBinding/${GUARD}`,
    `ValidatingAdmissionPolicyBinding/${POLICY}`,
  ]);
  const applied = await as(null, ['apply', '-f', '-'], { apiVersion: 'v1', kind: 'List', items: docs });
  expect(applied.ok, applied.message).toBe(true);
});

afterAll(async () => {
  await as(null, ['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', POLICY, GUARD]);
  process.stdout.write(`\n[admission matrix]\nwho | tried | result\n${matrix.join('\n')}\n`);
});

/** Who tried what, and what the API server said: printed at the end (the closing note's matrix). */
const matrix: string[] = [];
const record = (who: string, what: string, o: Outcome) =>
  matrix.push(
    `${who} | ${what} | ${o.ok ? 'admitted' : `denied: ${o.message.replace(/^.*denied request: /s, '')}`}`,
  );

describe('creator consent (ValidatingAdmissionPolicy from the chart)', () => {
  let ns = '';

  beforeAll(async () => {
    ns = await freshNamespace('consent');
    await grant(ns, 'alice', [], []);
    await grant(ns, 'bob', ['update'], ['db-creds']);
    await grant(ns, 'carol', ['update', 'patch'], ['db-creds']);
    await grant(ns, 'dave', ['update', 'patch', 'delete'], ['db-creds']);
    await grant(ns, `system:serviceaccount:${ns}:gitops`, [], []);
    // The policy is served once the API server has loaded and type-checked it.
    await eventually('the policy to take effect', async () => {
      const o = await as('alice', ['create', '--dry-run=server', '-f', '-'], secretSync(ns, 'probe'));
      return !o.ok && o.message.includes(POLICY) ? true : undefined;
    });
  });

  it('denies a user who may not write the target Secret, naming the user, the Secret and what is missing', async () => {
    const o = await create('alice', secretSync(ns, 'db', { target: { name: 'db-creds' } }));
    record('alice (no Secret rights)', 'create SecretSync db → db-creds', o);
    expect(o.ok).toBe(false);
    expect(o.message).toContain(
      `SecretSync ${ns}/db would write Secret db-creds on behalf of whoever creates it or changes its spec, so that needs update and patch on the Secret (and delete with deletionPolicy: Delete); alice may not update it.`,
    );

    const b = await create('bob', secretSync(ns, 'db', { target: { name: 'db-creds' } }));
    record('bob (update on db-creds)', 'create SecretSync db → db-creds', b);
    expect(b.ok).toBe(false);
    expect(b.message).toContain('; bob may not patch it.');
  });

  it('admits a user who may update and patch the target; the effective target defaults to the SecretSync name', async () => {
    const o = await create('carol', secretSync(ns, 'db', { target: { name: 'db-creds' } }));
    record('carol (update, patch on db-creds)', 'create SecretSync db → db-creds', o);
    expect(o.ok, o.message).toBe(true);
    // No target.name: the target is the SecretSync's own name, which carol may not write.
    const d = await create('carol', secretSync(ns, 'api-key'));
    record('carol', 'create SecretSync api-key (target defaults to api-key)', d);
    expect(d.ok).toBe(false);
    expect(d.message).toContain('would write Secret api-key');
  });

  it('deletionPolicy: Delete needs delete on the target too', async () => {
    const o = await create(
      'carol',
      secretSync(ns, 'db2', { target: { name: 'db-creds' }, deletionPolicy: 'Delete' }),
    );
    record('carol', 'create SecretSync db2 → db-creds, deletionPolicy Delete', o);
    expect(o.ok).toBe(false);
    expect(o.message).toContain('; carol may not delete it.');
    const d = await create(
      'dave',
      secretSync(ns, 'db2', { target: { name: 'db-creds' }, deletionPolicy: 'Delete' }),
    );
    record(
      'dave (update, patch, delete on db-creds)',
      'create SecretSync db2 → db-creds, deletionPolicy Delete',
      d,
    );
    expect(d.ok, d.message).toBe(true);
  });

  it('a spec change is checked against the new target; changes that leave the spec alone pass', async () => {
    const retarget = await mergePatch('carol', ns, 'db', '{"spec":{"target":{"name":"tls-cert"}}}');
    record('carol', 'patch db: target.name → tls-cert', retarget);
    expect(retarget.ok).toBe(false);
    expect(retarget.message).toContain('would write Secret tls-cert');

    const keys = await mergePatch('carol', ns, 'db', '{"spec":{"target":{"keys":[{"from":"password"}]}}}');
    record('carol', 'patch db: target.keys', keys);
    expect(keys.ok, keys.message).toBe(true);

    // Someone with SecretSync rights but no Secret rights may still label it (no spec change), as the
    // controller's finalizer writes and the function's status patches do.
    const label = await as('alice', ['label', 'secretsync', 'db', '-n', ns, 'team=payments']);
    record('alice', 'label db (metadata only)', label);
    expect(label.ok, label.message).toBe(true);
    const finalizer = await mergePatch(
      'alice',
      ns,
      'db',
      '{"metadata":{"finalizers":["secretsync.io/cleanup"]}}',
    );
    record('alice', 'patch db: add a finalizer', finalizer);
    expect(finalizer.ok, finalizer.message).toBe(true);
    await mergePatch(null, ns, 'db', '{"metadata":{"finalizers":null}}');
  });

  it("a GitOps tool's service account gets the same check", async () => {
    const sa = `system:serviceaccount:${ns}:gitops`;
    const o = await create(sa, secretSync(ns, 'from-git', { target: { name: 'db-creds' } }));
    record(`${sa} (no Secret rights)`, 'create SecretSync from-git → db-creds', o);
    expect(o.ok).toBe(false);
    expect(o.message).toContain(`; ${sa} may not update it.`);
  });
});

describe("controller guard (ValidatingAdmissionPolicy bound to the controller's ServiceAccount)", () => {
  let ns = '';
  let controller = '';
  const labels = (owner: string) => ({
    'app.kubernetes.io/managed-by': 'secretsync',
    'secretsync.io/secretsync': owner,
  });
  const functionRole = (owner: string, extra: object[] = []) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: `secretsync-${owner}`, namespace: ns, labels: labels(owner) },
    rules: [
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: [`${owner}-creds`],
        verbs: ['get', 'patch', 'update'],
      },
      { apiGroups: ['secretsync.io'], resources: ['secretsyncs'], resourceNames: [owner], verbs: ['get'] },
      {
        apiGroups: ['secretsync.io'],
        resources: ['secretsyncs/status'],
        resourceNames: [owner],
        verbs: ['patch'],
      },
      ...extra,
    ],
  });
  const functionBinding = (owner: string, subject = `secretsync:${ns}:${owner}`, roleRef?: object) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: `secretsync-${owner}`, namespace: ns, labels: labels(owner) },
    roleRef: roleRef ?? { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `secretsync-${owner}` },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: subject }],
  });
  const secret = (name: string, type: string, withLabels = true) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: ns,
      ...(withLabels ? { labels: labels(name) } : {}),
      ...(type === 'kubernetes.io/service-account-token'
        ? { annotations: { 'kubernetes.io/service-account.name': 'default' } }
        : {}),
    },
    type,
  });

  beforeAll(async () => {
    ns = await freshNamespace('guard');
    controller = `system:serviceaccount:${releaseNs}:rel-secretsync`;
    // The chart's grants that matter here (escalate and bind included), in this namespace.
    await rbac().createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'controller' },
        rules: [
          {
            apiGroups: ['rbac.authorization.k8s.io'],
            resources: ['roles', 'rolebindings'],
            verbs: ['get', 'create', 'patch', 'delete', 'escalate', 'bind'],
          },
          { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] },
        ],
      },
    });
    await rbac().createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'controller' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'controller' },
        subjects: [{ kind: 'ServiceAccount', name: 'rel-secretsync', namespace: releaseNs }],
      },
    });
    await eventually('the guard to take effect', async () => {
      const o = await as(
        controller,
        ['create', '--dry-run=server', '-f', '-'],
        secret('probe', 'Opaque', false),
      );
      return !o.ok && o.message.includes(GUARD) ? true : undefined;
    });
  });

  it("admits the function's Role and RoleBinding, and nothing wider", async () => {
    const role = await create(controller, functionRole('db'));
    record('controller', 'create the function Role secretsync-db', role);
    expect(role.ok, role.message).toBe(true);
    const binding = await create(controller, functionBinding('db'));
    record('controller', 'create the function RoleBinding secretsync-db → secretsync:<ns>:db', binding);
    expect(binding.ok, binding.message).toBe(true);

    const list = await create(
      controller,
      functionRole('api', [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }]),
    );
    record('controller', 'create a Role that adds list secrets', list);
    expect(list.ok).toBe(false);
    expect(list.message).toContain('may write only the function Role of a SecretSync');

    const unlabelled = await create(controller, {
      ...functionRole('api'),
      metadata: { name: 'secretsync-api', namespace: ns },
    });
    record('controller', 'create a function-shaped Role without our labels', unlabelled);
    expect(unlabelled.ok).toBe(false);
    expect(unlabelled.message).toContain('only roles it labels');

    const other = await create(controller, functionBinding('db2', 'mallory'));
    record('controller', 'bind a function Role to user mallory', other);
    expect(other.ok).toBe(false);
    expect(other.message).toContain('may bind only the Role secretsync-db2 to the function user');

    const admin = await create(
      controller,
      functionBinding('db3', `secretsync:${ns}:db3`, {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'admin',
      }),
    );
    record('controller', 'bind ClusterRole admin to a function user', admin);
    expect(admin.ok).toBe(false);

    // The guard binds the controller only: an admin still writes any Role.
    const byAdmin = await create(
      null,
      functionRole('api', [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }]),
    );
    expect(byAdmin.ok, byAdmin.message).toBe(true);
  });

  it('admits Secrets of a SecretSync type with our labels, and deletes of ours only', async () => {
    const mine = await create(controller, secret('db-creds', 'Opaque'));
    record('controller', 'create Secret db-creds (Opaque, labelled)', mine);
    expect(mine.ok, mine.message).toBe(true);
    const token = await create(controller, secret('steal', 'kubernetes.io/service-account-token'));
    record('controller', 'create a service-account-token Secret', token);
    expect(token.ok).toBe(false);
    expect(token.message).toContain('not kubernetes.io/service-account-token');

    await as(null, ['create', 'secret', 'generic', 'helm-release', '-n', ns, '--from-literal=k=v']);
    const foreign = await as(controller, ['delete', 'secret', 'helm-release', '-n', ns]);
    record('controller', 'delete Secret helm-release (not ours)', foreign);
    expect(foreign.ok).toBe(false);
    expect(foreign.message).toContain('only secrets it labels');
    const ours = await as(controller, ['delete', 'secret', 'db-creds', '-n', ns]);
    record('controller', 'delete Secret db-creds (ours)', ours);
    expect(ours.ok, ours.message).toBe(true);
  });
});
