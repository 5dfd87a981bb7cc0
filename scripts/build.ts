import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { build, type Plugin } from 'esbuild';
import { zipSync } from 'fflate';
import { asciiOnly, type SourceMapJson } from './ascii-only.ts';

/**
 * Builds dist/: the sync function as a deterministic zip (same source → same bytes → same SHA-256,
 * which is how the controller decides whether to update a function's code), and the controller
 * and CLI bundles the image carries.
 */
const root = new URL('..', import.meta.url).pathname;
const dist = `${root}dist`;
mkdirSync(`${dist}/lambda`, { recursive: true });

/**
 * An ES import of a Node built-in reads every export to build the module namespace, and so runs
 * the lazy getters Node keeps for what is expensive — node:http's WebSocket, CloseEvent and
 * MessageEvent load Node's own undici: 55 ms and 13 MB per process on Node 24, in the function's
 * cold start and in the controller, neither of which uses them (CommonJS require() never runs
 * them). ES imports of node:http are therefore bundled as a module that re-exports everything
 * else (process.getBuiltinModule); importing one of these by name fails the build.
 */
const UNUSED_GETTERS: Record<string, string[]> = { 'node:http': ['WebSocket', 'CloseEvent', 'MessageEvent'] };
const noEagerBuiltins: Plugin = {
  name: 'no-eager-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?http$/ }, (args) =>
      args.kind === 'import-statement' || args.kind === 'dynamic-import'
        ? { path: `node:${args.path.replace(/^node:/, '')}`, namespace: 'no-eager-builtins' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'no-eager-builtins' }, (args) => {
      const skip = UNUSED_GETTERS[args.path] ?? [];
      const names = Object.getOwnPropertyNames(process.getBuiltinModule(args.path)).filter(
        (k) => k !== 'default' && !skip.includes(k) && /^[A-Za-z_$][\w$]*$/.test(k),
      );
      return {
        contents: [
          `const m = process.getBuiltinModule(${JSON.stringify(args.path)});`,
          'export default m;',
          `export const { ${names.join(', ')} } = m;`,
        ].join('\n'),
        loader: 'js',
      };
    });
  },
};

/**
 * The function passes its credentials to the SDK client itself (the ones Lambda puts in its
 * environment), so the SDK's default chain — INI files, SSO, process, IMDS and container providers,
 * a third of the client's code — is never called: the function's bundle gets a stand-in that fails
 * loudly if it ever were.
 */
const envCredentialsOnly: Plugin = {
  name: 'env-credentials-only',
  setup(b) {
    b.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, (args) => ({
      path: args.path,
      namespace: 'env-credentials-only',
    }));
    b.onLoad({ filter: /.*/, namespace: 'env-credentials-only' }, () => ({
      contents:
        "export const defaultProvider = () => async () => { throw new Error('secretsync: the function passes its credentials to the client'); };",
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
} as const;
const plugins = [noEagerBuiltins];

// The function: minified, no source map, everything bundled (the zip is all the runtime gets).
const lambda = await build({
  ...common,
  plugins: [...plugins, envCredentialsOnly],
  entryPoints: [`${root}src/lambda/handler.ts`],
  outfile: `${dist}/lambda/index.mjs`,
  minify: true,
  metafile: true,
  // ES modules first, so unused parts of the SDK are tree-shaken (CommonJS builds cannot be).
  mainFields: ['module', 'main'],
  // Some transitive CJS code calls require(); give the ESM bundle one.
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
});

const code = readFileSync(`${dist}/lambda/index.mjs`);
// Fixed timestamps and attributes: the zip depends on the code only.
const zip = zipSync(
  {
    'index.mjs': [code, { mtime: new Date('2020-01-01T00:00:00Z'), level: 9, os: 3, attrs: 0o100644 << 16 }],
  },
  { mtime: new Date('2020-01-01T00:00:00Z') },
);
writeFileSync(`${dist}/lambda/secretsync-lambda.zip`, zip);
const sha = createHash('sha256').update(zip).digest('base64');
writeFileSync(`${dist}/lambda/secretsync-lambda.zip.sha256`, `${sha}\n`);
writeFileSync(`${dist}/lambda/meta.json`, JSON.stringify(lambda.metafile));

// The controller and the CLI. V8 keeps a module's whole source in memory for as long as the
// process runs: unminified (comments, indentation) the controller's was 9.6 MB, and a few non-ASCII
// characters made it UTF-16, 19 MB. Whitespace and syntax are minified, names are not (a stack trace
// still names every function), the output is ASCII (ascii-only.ts), and the map beside each bundle
// gives source positions under `node --enable-source-maps` (off in the image: about 50 MB).
for (const [entry, out] of [
  ['src/controller/main.ts', 'controller.js'],
  ['src/cli.ts', 'cli.js'],
] as const) {
  if (!existsSync(`${root}${entry}`)) continue;
  const result = await build({
    ...common,
    plugins,
    entryPoints: [`${root}${entry}`],
    outfile: `${dist}/${out}`,
    sourcemap: true,
    minifyWhitespace: true,
    minifySyntax: true,
    // Short lines still: Node prints the line of an uncaught error's throw site.
    lineLimit: 120,
    // ES modules first, so unused parts of the AWS SDK are tree-shaken, as in the function.
    mainFields: ['module', 'main'],
    write: false,
    // The CLI runs as `secretsync` (package.json bin): a shebang, and the file is executable.
    banner: {
      js: `${out === 'cli.js' ? '#!/usr/bin/env node\n' : ''}import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);`,
    },
  });
  const file = (path: string) => result.outputFiles.find((f) => f.path === path)!.text;
  const ascii = asciiOnly(file(`${dist}/${out}`), JSON.parse(file(`${dist}/${out}.map`)) as SourceMapJson);
  writeFileSync(`${dist}/${out}`, ascii.code, { mode: 0o755 });
  chmodSync(`${dist}/${out}`, 0o755);
  writeFileSync(`${dist}/${out}.map`, JSON.stringify(ascii.map));
}

console.log(
  `lambda: index.mjs ${(code.length / 1024).toFixed(1)} KiB, zip ${(zip.length / 1024).toFixed(1)} KiB, sha256 ${sha}`,
);
