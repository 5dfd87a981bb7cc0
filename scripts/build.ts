import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { zipSync } from 'fflate';

/**
 * Builds dist/: the sync function as a deterministic zip (same source → same bytes → same SHA-256,
 * which is how the controller decides whether to update a function's code), and the controller
 * and CLI bundles the image carries.
 */
const root = new URL('..', import.meta.url).pathname;
const dist = `${root}dist`;
mkdirSync(`${dist}/lambda`, { recursive: true });

const common = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
} as const;

// The function: minified, no source map, everything bundled (the zip is all the runtime gets).
const lambda = await build({
  ...common,
  entryPoints: [`${root}src/lambda/handler.ts`],
  outfile: `${dist}/lambda/index.mjs`,
  minify: true,
  metafile: true,
  // ES modules first, so unused parts of the SDK are tree-shaken (CommonJS builds cannot be).
  mainFields: ['module', 'main'],
  plugins: [
    {
      name: 'lambda-env-credentials',
      setup(b) {
        b.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, () => ({
          path: `${root}src/lambda/env-credentials.ts`,
        }));
      },
    },
  ],
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

// The controller and the CLI: readable stack traces matter more than bytes here.
for (const [entry, out] of [
  ['src/controller/main.ts', 'controller.js'],
  ['src/cli.ts', 'cli.js'],
] as const) {
  if (!existsSync(`${root}${entry}`)) continue;
  await build({
    ...common,
    entryPoints: [`${root}${entry}`],
    outfile: `${dist}/${out}`,
    sourcemap: true,
    banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  });
}

console.log(
  `lambda: index.mjs ${(code.length / 1024).toFixed(1)} KiB, zip ${(zip.length / 1024).toFixed(1)} KiB, sha256 ${sha}`,
);
