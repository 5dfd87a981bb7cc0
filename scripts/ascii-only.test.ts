import { SourceMap } from 'node:module';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { asciiOnly, type SourceMapJson } from './ascii-only.ts';

const SOURCE = [
  'export const unit = (s: string) => /^(\\d+)(ns|µs|ms)$/.exec(s)?.[2];',
  "export const label = 'µs';",
  'export const both = (s: string) => /[–—]µ/.test(s) && marker(s);',
  'function marker(s: string) { return s.length > 0; }',
].join('\n');

async function bundle(): Promise<{ code: string; map: SourceMapJson }> {
  const out = await build({
    stdin: { contents: SOURCE, loader: 'ts', sourcefile: 'src.ts' },
    bundle: true,
    format: 'esm',
    minifyWhitespace: true,
    sourcemap: 'external',
    outfile: 'out.js',
    write: false,
  });
  const file = (ext: string) => out.outputFiles.find((f) => f.path.endsWith(ext))!.text;
  return { code: file('.js'), map: JSON.parse(file('.js.map')) as SourceMapJson };
}

/** Where `token` (its n-th occurrence) maps to in the source. */
function origin(code: string, map: SourceMapJson, token: string, n = 0) {
  let at = -1;
  for (let i = 0; i <= n; i++) at = code.indexOf(token, at + 1);
  const line = code.slice(0, at).split('\n').length - 1;
  const column = at - (code.lastIndexOf('\n', at - 1) + 1);
  const e = new SourceMap(map as never).findEntry(line, column) as {
    originalLine: number;
    originalColumn: number;
  };
  return [e.originalLine, e.originalColumn];
}

describe('asciiOnly', () => {
  it('leaves a bundle with only ASCII, whose regular expressions match as before', async () => {
    const { code, map } = await bundle();
    expect(code).toMatch(/µ/); // what esbuild leaves: the regular expression literals
    const escaped = asciiOnly(code, map);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range is the point
    expect(escaped.code).toMatch(/^[\x00-\x7f]*$/);
    const before = await import(`data:text/javascript,${encodeURIComponent(code)}`);
    const after = await import(`data:text/javascript,${encodeURIComponent(escaped.code)}`);
    for (const s of ['10µs', '10ms', '10us']) expect(after.unit(s)).toBe(before.unit(s));
    expect(after.label).toBe('µs');
    for (const s of ['–µ', '—µ', '-µ']) expect(after.both(s)).toBe(before.both(s));
  });

  it('keeps source positions exact after the escapes', async () => {
    const { code, map } = await bundle();
    const escaped = asciiOnly(code, map);
    for (const [token, n] of [
      ['exec', 0],
      ['test', 0],
      ['marker', 1],
      ['length', 0],
    ] as const)
      expect(origin(escaped.code, escaped.map, token, n)).toEqual(origin(code, map, token, n));
  });

  it('refuses an identity escape, whose meaning \\u would change', () => {
    expect(() => asciiOnly('const r = /\\µ/;', { mappings: '' })).toThrow(/escaped non-ASCII/);
  });
});
