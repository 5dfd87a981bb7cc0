import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubectl } from './support.ts';

// Every manifest in examples/ must pass the real API server's validation (schema, defaults, CEL
// rules) of the CRDs in crds/, so the documented examples cannot drift from the API.
const dir = fileURLToPath(new URL('../../examples/', import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/** kubectl's error output, when it refused. */
const refusal = (err: unknown) => String((err as { stderr?: string }).stderr ?? err);

describe('examples/ on a real API server', () => {
  let ns = '';
  beforeAll(async () => {
    ns = await freshNamespace('examples');
  });

  it('has the examples', () => {
    expect(files.length).toBeGreaterThanOrEqual(9);
  });

  it.each(files)('kubectl apply --dry-run=server accepts %s', async (file) => {
    const { stdout } = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', join(dir, file)]).catch(
      (err: unknown) => {
        throw new Error(`${file} was refused: ${refusal(err)}`);
      },
    );
    expect(stdout).toMatch(/ created \(server dry run\)/);
  });

  it('and the whole directory at once', async () => {
    const { stdout } = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', dir]);
    // shared-target.yaml holds two SecretSyncs.
    expect(stdout.trim().split('\n')).toHaveLength(files.length + 1);
  });

  it('the dry run does validate: a broken example is refused with the CRD message', async () => {
    const broken = readFileSync(join(dir, 'resync-interval.yaml'), 'utf8').replace(
      'resyncInterval: 1h',
      'resyncInterval: 30s',
    );
    expect(broken).toContain('resyncInterval: 30s');
    const path = join(mkdtempSync(join(tmpdir(), 'secretsync-examples-')), 'broken.yaml');
    writeFileSync(path, broken);
    const err = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', path]).then(
      () => undefined,
      (e: unknown) => refusal(e),
    );
    expect(err).toMatch(/resyncInterval must be "0" or a duration between 1m and 8760h/);
  });
});
