import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
