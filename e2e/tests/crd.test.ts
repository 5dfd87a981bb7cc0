import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { INVALID_SECRETSYNCS } from './invalid-secretsyncs.ts';
import { customObjects, freshNamespace, kubectl } from './support.ts';

const api = { group: 'secretsync.io', version: 'v1alpha1', plural: 'secretsyncs' };

async function create(namespace: string, name: string, spec: unknown) {
  return customObjects().createNamespacedCustomObject({
    ...api,
    namespace,
    body: {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name },
      ...(spec ? { spec } : {}),
    },
  });
}

/** The API server's message for a refused object (client-node puts the Status in `body`). */
function messageOf(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  const parsed =
    typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string });
  return parsed?.message ?? String(err);
}

describe('the SecretSync CRD on a real API server', () => {
  it('is served, and kubectl explain shows the field descriptions', async () => {
    const { stdout } = await kubectl(['explain', 'secretsync.spec']);
    expect(stdout).toContain('What to sync, where to, and how.');
    expect(stdout).toMatch(/mergePolicy\s+<string>/);
    const source = await kubectl(['explain', 'secretsync.spec.source.secretId']);
    expect(source.stdout).toContain('resolved once to the full ARN with DescribeSecret');
    const template = await kubectl(['explain', 'secretsync.spec.target.template']);
    expect(template.stdout).toContain('logic-less templates');
    expect(template.stdout).toMatch(/copyKeys\s+<boolean>/);
  });

  it('accepts a minimal SecretSync and fills in the defaults', async () => {
    const ns = await freshNamespace('crd');
    const created = (await create(ns, 'db', { source: { secretId: 'prod/db' } })) as {
      spec: Record<string, unknown>;
    };
    expect(created.spec).toEqual({
      source: { secretId: 'prod/db', versionStage: 'AWSCURRENT' },
      target: { type: 'Opaque' },
      mergePolicy: 'Merge',
      deletionPolicy: 'Retain',
      resyncInterval: '24h',
      suspend: false,
    });
  });

  it('accepts a full SecretSync with an ARN, mapping and custom stage', async () => {
    const ns = await freshNamespace('crd');
    await expect(
      create(ns, 'full', {
        source: {
          secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf',
          region: 'eu-west-1',
          versionStage: 'BLUE',
        },
        target: {
          name: 'db-creds',
          type: 'kubernetes.io/basic-auth',
          keys: [{ from: 'user', to: 'username' }, { from: 'password' }],
        },
        mergePolicy: 'Replace',
        deletionPolicy: 'Delete',
        resyncInterval: '1h30m',
        suspend: true,
      }),
    ).resolves.toBeTruthy();
  });

  it('accepts templates: JSON text, blanks in placeholders, dotted names, copyKeys with target.keys', async () => {
    const ns = await freshNamespace('crd');
    const data = {
      DATABASE_URL: 'postgres://{{ username }}:{{password}}@{{\thost\n}}:5432/app',
      'config.json': '{"db":{"port":{{ port }}}}',
      'tls.crt': '{{ tls.crt }}',
      spaced: '{{ db password }}',
      constant: 'require',
      long: `${'x'.repeat(8180)}{{ a }}`,
    };
    const created = (await create(ns, 'tpl', {
      source: { secretId: 'prod/db' },
      target: { keys: [{ from: 'username', to: 'user' }], template: { copyKeys: true, data } },
    })) as { spec: { target: { template: unknown } } };
    expect(created.spec.target.template).toEqual({ copyKeys: true, data });
    const defaulted = (await create(ns, 'tpl2', {
      source: { secretId: 'prod/db' },
      target: { template: { data: { url: '{{ a }}' } } },
    })) as { spec: { target: { template: unknown } } };
    expect(defaulted.spec.target.template).toEqual({ copyKeys: false, data: { url: '{{ a }}' } });
  });

  it.each(INVALID_SECRETSYNCS)('rejects $name with a readable message', async (c) => {
    const ns = await freshNamespace('bad');
    const err = await create(ns, c.metadataName ?? 'bad', c.spec).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'the API server accepted it').toBeDefined();
    expect(messageOf(err)).toMatch(c.expect);
  });

  it('keeps the AWS secret immutable and says how to change it; target and stage may change', async () => {
    const ns = await freshNamespace('crd');
    await create(ns, 'imm', { source: { secretId: 'prod/db' }, target: { name: 'one' } });
    const patch = (p: unknown) =>
      customObjects()
        .patchNamespacedCustomObject(
          { ...api, namespace: ns, name: 'imm', body: p },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )
        .then(
          () => 'accepted',
          (e: unknown) => messageOf(e),
        );
    expect(await patch({ spec: { source: { secretId: 'prod/other' } } })).toMatch(
      /spec.source.secretId and spec.source.region are immutable; create a new SecretSync/,
    );
    expect(await patch({ spec: { source: { region: 'us-east-1' } } })).toMatch(/are immutable/);
    expect(
      await patch({
        spec: { target: { name: 'two' }, source: { versionStage: 'BLUE' }, resyncInterval: '2h' },
      }),
    ).toBe('accepted');
  });

  it('shows the printer columns', async () => {
    const ns = await freshNamespace('crd');
    await create(ns, 'cols', { source: { secretId: 'prod/db' } });
    const { stdout } = await kubectl(['get', 'secretsyncs', '-n', ns, '-o', 'wide']);
    const header = stdout.split('\n')[0] ?? '';
    for (const col of ['NAME', 'SOURCE', 'TARGET', 'READY', 'SYNCED', 'LAST SYNC', 'REASON', 'AGE']) {
      expect(header).toContain(col);
    }
    expect((await kubectl(['get', 'ssync', '-n', ns])).stdout).toContain('prod/db');
    // The singular name resolves to this one resource (a category of the same name once made it ambiguous).
    expect((await kubectl(['get', 'secretsync', 'cols', '-n', ns, '-o', 'name'])).stdout.trim()).toBe(
      'secretsync.secretsync.io/cols',
    );
  });
});
