import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * scripts/build.ts bundles ES imports of node:http without its lazy WebSocket/MessageEvent getters,
 * which load Node's own undici (tens of milliseconds and megabytes of every cold start). Checked on
 * the built bundles (`make test` builds before it runs the tests) by what Node actually loaded.
 */
const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const UNDICI = 'NativeModule internal/deps/undici/undici';

async function loadedModules(args: string[]): Promise<string[]> {
  // A preload that prints what Node loaded when the process ends (the controller exits after --help).
  const report = `process.on('exit', () => process.stderr.write('\\n' + JSON.stringify(process.moduleLoadList)));`;
  const { stderr } = await run(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(report)}`, ...args],
    { cwd: root, env: { PATH: process.env.PATH } },
  );
  return JSON.parse(stderr.trim().split('\n').at(-1)!) as string[];
}

describe('bundles do not load Node’s undici through node:http', () => {
  it('the check sees it when an ES import of node:http does load it', async () => {
    expect(await loadedModules(['--input-type=module', '-e', "import 'node:http';"])).toContain(UNDICI);
  });

  it.each([
    ['the sync function', ['--input-type=module', '-e', "await import('./dist/lambda/index.mjs');"]],
    ['the controller', ['dist/controller.js', '--help']],
  ])('%s', async (_what, args) => {
    expect(existsSync(`${root}dist/lambda/index.mjs`), 'run `make build` first').toBe(true);
    const loaded = await loadedModules(args);
    expect(loaded).toContain('NativeModule http');
    expect(loaded).not.toContain(UNDICI);
  });
});

/**
 * V8 keeps a module's source for the life of the process, one byte per character only when the file
 * is all ASCII (scripts/ascii-only.ts): checked on the built bundles.
 */
describe('the controller and CLI bundles are ASCII', () => {
  it.each(['controller.js', 'cli.js'])('%s', (file) => {
    const text = readFileSync(`${root}dist/${file}`, 'latin1');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range is the point
    expect(/[^\x00-\x7f]/.exec(text)?.index).toBeUndefined();
  });
});

/**
 * The CLI as users install it: `npm pack`, then `npm install --global` of the tarball (no
 * dependencies: the bundles are self-contained), and `secretsync` runs from the bin directory.
 */
describe('the CLI installs with npm and runs as `secretsync`', () => {
  it('packs the bundles, installs without dependencies, and answers', async () => {
    const cli = `${root}dist/cli.js`;
    expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(cli).mode & 0o111, 'executable').toBe(0o111);

    const tmp = mkdtempSync(join(tmpdir(), 'secretsync-pack-'));
    try {
      const npm = (args: string[]) =>
        run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
          cwd: root,
          env: { ...process.env, npm_config_cache: join(tmp, 'cache') },
        });
      // The bundles are built (make test builds first): no prepack rebuild here.
      const packed = JSON.parse(
        (await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', tmp])).stdout,
      ) as {
        filename: string;
        files: { path: string }[];
      }[];
      const files = packed[0]!.files.map((f) => f.path);
      expect(files).toEqual(
        expect.arrayContaining([
          'dist/cli.js',
          'dist/controller.js',
          'dist/lambda/secretsync-lambda.zip',
          'package.json',
        ]),
      );
      expect(files.filter((f) => f.startsWith('src/') || f.startsWith('e2e/') || f.endsWith('.map'))).toEqual(
        [],
      );

      const prefix = join(tmp, 'global');
      await npm([
        'install',
        '--global',
        '--offline',
        '--ignore-scripts',
        '--prefix',
        prefix,
        join(tmp, packed[0]!.filename),
      ]);
      const bin = join(prefix, 'bin', 'secretsync');
      const help = await run(bin, ['--help'], { env: { PATH: process.env.PATH } });
      expect(help.stdout).toContain('Usage: secretsync <command>');
      const policy = await run(
        bin,
        ['iam-policy', '--account', '123456789012', '--region', 'eu-west-1', '--cluster', 'c1'],
        {
          env: { PATH: process.env.PATH },
        },
      );
      expect(JSON.parse(policy.stdout)).toMatchObject({ Version: '2012-10-17' });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);
});
