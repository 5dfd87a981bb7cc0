import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { FORCE_SYNC_ANNOTATION, READY_REASONS } from '../src/controller/reconcile.ts';
import { SYNC_REASONS } from '../src/lambda/errors.ts';

// The documentation keeps up with the code: every condition reason the code can set has its own
// section in docs/troubleshooting.md, the examples are well-formed manifests the reference links
// to, and relative links resolve. (e2e/tests/examples.test.ts has the API server accept the examples.)

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.generated.ts'))
    .map((f) => join(dir, f));
}

// Where a reason literal reaches a condition: `new Stop('X'` (Ready), `new SyncError('X'` (Synced),
// `reason: 'X'` and `reason: cond ? 'X' : …` (both).
const REASON_SITES = [
  /\bnew (?:Stop|SyncError)\(\s*'([A-Za-z]+)'/g,
  /\breason:\s*'([A-Za-z]+)'/g,
  /\breason:[^'\n,]*\?\s*'([A-Za-z]+)'/g,
];

function literalReasons(dir: string): Set<string> {
  const found = new Set<string>();
  for (const file of sourceFiles(dir)) {
    const text = read(file);
    for (const re of REASON_SITES) for (const m of text.matchAll(re)) found.add(m[1] as string);
  }
  return found;
}

/** Reasons with a `### \`Reason\`` heading in the `## <title>` section of the page. */
function documentedReasons(markdown: string, title: string): Set<string> {
  const start = markdown.indexOf(`\n## ${title}\n`);
  if (start < 0) return new Set();
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return new Set([...section.matchAll(/^###\s+`([A-Za-z]+)`/gm)].map((m) => m[1] as string));
}

const controllerLiterals = literalReasons('src/controller');
const lambdaLiterals = literalReasons('src/lambda');
const readyReasons = [...new Set<string>([...READY_REASONS, ...controllerLiterals])].sort();
const syncedReasons = [...new Set<string>([...SYNC_REASONS, 'Synced', ...lambdaLiterals])].sort();
const troubleshooting = read('docs/troubleshooting.md');

describe('condition reasons in docs/troubleshooting.md', () => {
  it('are gathered from the code (the source scan still finds the known sites)', () => {
    for (const r of [
      'Provisioning',
      'Suspended',
      'Ready',
      'PolicyDenied',
      'ClusterUnavailable',
      'KubernetesError',
    ])
      expect(controllerLiterals).toContain(r);
    for (const r of ['Synced', 'InvalidKey', 'TooLarge', 'TargetMissing', 'Unauthorized'])
      expect(lambdaLiterals).toContain(r);
  });

  it('that the code sets are all declared in READY_REASONS / SYNC_REASONS', () => {
    expect([...controllerLiterals].filter((r) => !(READY_REASONS as readonly string[]).includes(r))).toEqual(
      [],
    );
    expect(
      [...lambdaLiterals].filter((r) => r !== 'Synced' && !(SYNC_REASONS as readonly string[]).includes(r)),
    ).toEqual([]);
  });

  const ready = documentedReasons(troubleshooting, 'Ready reasons');
  const synced = documentedReasons(troubleshooting, 'Synced reasons');

  it.each(readyReasons)('Ready reason %s has a section under "Ready reasons"', (reason) => {
    expect(ready, `add "### \`${reason}\`" under "## Ready reasons"`).toContain(reason);
  });

  it.each(syncedReasons)('Synced reason %s has a section under "Synced reasons"', (reason) => {
    expect(synced, `add "### \`${reason}\`" under "## Synced reasons"`).toContain(reason);
  });

  it('documents no reason the code does not set', () => {
    expect([...ready].filter((r) => !readyReasons.includes(r))).toEqual([]);
    expect([...synced].filter((r) => !syncedReasons.includes(r))).toEqual([]);
  });
});

interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

const exampleFiles = readdirSync(join(root, 'examples'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const examples = exampleFiles.map((file) => {
  const text = read(`examples/${file}`);
  const docs = parseAllDocuments(text);
  return { file, text, docs, manifest: (docs[0]?.toJS() ?? {}) as Manifest };
});

describe('examples/', () => {
  // One object per file, except where the case needs several (shared-target.yaml: two SecretSyncs).
  it.each(examples)('$file holds SecretSyncs or SecretSyncPolicies under a comment header', (ex) => {
    expect(ex.docs).toHaveLength(ex.file === 'shared-target.yaml' ? 2 : 1);
    expect(ex.text.startsWith('# ')).toBe(true);
    for (const doc of ex.docs) {
      expect(doc.errors).toEqual([]);
      const m = doc.toJS() as Manifest;
      expect(m.apiVersion).toBe('secretsync.io/v1alpha1');
      expect(['SecretSync', 'SecretSyncPolicy']).toContain(m.kind);
      // Applied into whatever namespace the reader chooses; SecretSyncPolicy is cluster-scoped anyway.
      expect(m.metadata?.namespace).toBeUndefined();
      expect(m.metadata?.name).toMatch(/^[a-z0-9-]{1,63}$/);
    }
  });

  it('cover every case the reference lists', () => {
    const specs = examples.map((e) => e.manifest.spec ?? {});
    expect(examples.map((e) => e.manifest.kind)).toContain('SecretSyncPolicy');
    expect(specs.some((s) => s.mergePolicy === 'Replace')).toBe(true);
    expect(specs.some((s) => s.deletionPolicy === 'Delete')).toBe(true);
    expect(specs.some((s) => typeof s.resyncInterval === 'string')).toBe(true);
    expect(specs.some((s) => Array.isArray((s.target as { keys?: unknown } | undefined)?.keys))).toBe(true);
    expect(specs.some((s) => (s.target as { template?: unknown } | undefined)?.template !== undefined)).toBe(
      true,
    );
    expect(
      examples.some((e) => e.manifest.metadata?.annotations?.[FORCE_SYNC_ANNOTATION] !== undefined),
    ).toBe(true);
  });

  it.each(exampleFiles)('%s is linked from docs/secretsync-reference.md', (file) => {
    expect(read('docs/secretsync-reference.md')).toContain(`](../examples/${file})`);
  });
});

describe('relative links in README.md and docs/', () => {
  const pages = ['README.md', ...readdirSync(join(root, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
    f.endsWith('.md'),
  );
  const links = pages.flatMap((page) =>
    [...read(page).matchAll(/\]\(([^)\s]+)\)/g)]
      .map((m) => (m[1] as string).split('#')[0] as string)
      .filter((target) => target !== '' && !/^[a-z]+:/.test(target))
      .map((target) => ({ page, target })),
  );

  it('exist', () => expect(links.length).toBeGreaterThan(0));

  it.each(links)('$page → $target resolves', ({ page, target }) => {
    const path = join(root, dirname(page), target);
    expect(existsSync(path), `${relative(root, path)} does not exist`).toBe(true);
  });
});
