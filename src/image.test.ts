import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageNodeOptions } from '../scripts/image-node-options.ts';

/**
 * The Dockerfile, checked without a Docker engine: what the build stage copies exists and is in
 * the build context (.dockerignore), what the runtime stage copies is what `npm run build` makes,
 * and the runtime stage's /app — assembled here from its COPY lines — runs without node_modules.
 * Needs dist/ (`make test` builds before it runs the tests).
 */
const root = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot parse Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`cannot parse FROM ${args}`);
      stages.push({ from: f[1]!, ...(f[2] ? { name: f[2] } : {}), instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`${op} before FROM`);
      stage.instructions.push({ op, args });
    }
  }
  return stages;
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
  workdir: string;
}

function copiesOf(stage: Stage): Copy[] {
  let workdir = '/';
  const out: Copy[] = [];
  for (const i of stage.instructions) {
    if (i.op === 'WORKDIR') workdir = posix.resolve(workdir, i.args);
    if (i.op !== 'COPY' && i.op !== 'ADD') continue;
    const words = i.args.split(/\s+/);
    const flags = words.filter((w) => w.startsWith('--'));
    const paths = words.filter((w) => !w.startsWith('--'));
    const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
    out.push({ ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)!, workdir });
  }
  return out;
}

/** .dockerignore as BuildKit reads it: the last pattern matching a path or one of its parents wins. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize(negate ? l.slice(1) : l).replace(/\/$/, '');
      const re = pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => {
          if (part === '**/') return '(.*/)?';
          if (part === '**') return '.*';
          if (part === '*') return '[^/]*';
          if (part === '?') return '[^/]';
          return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (candidates.some((c) => r.re.test(c))) excluded = !r.negate;
    return excluded;
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

const stages = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const build = stages[0]!;
const runtime = stages.at(-1)!;
const buildWorkdir = copiesOf(build)[0]?.workdir ?? '/';
const runtimeCopies = copiesOf(runtime);
const entrypoint = runtime.instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args;
const excluded = dockerignore(readFileSync(join(root, '.dockerignore'), 'utf8'));

/** The repository file a runtime-stage COPY --from=<build stage> source is (build WORKDIR = repo root). */
const repoPathOfBuildOutput = (p: string) => relative(buildWorkdir, p);

describe('Dockerfile', () => {
  it('has a Node 24 build stage and a Node 24 runtime stage, both pinned by tag', () => {
    expect(stages).toHaveLength(2);
    expect(build.name).toBe('build');
    for (const s of stages) {
      expect(s.from).toMatch(
        /^(docker\.io\/(library\/)?)?node:24[-.][\w.-]+$|^gcr\.io\/distroless\/nodejs24-/,
      );
      expect(s.from).not.toMatch(/:latest$/);
    }
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /^npm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /^npm run build\b/.test(r))).toBe(true);
  });

  it('copies into the build context only what exists and .dockerignore lets through', () => {
    const copies = copiesOf(build);
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      expect(c.from, 'the build stage copies from the context only').toBeUndefined();
      for (const s of c.sources) {
        const path = s.replace(/\/$/, '');
        expect(existsSync(join(root, path)), `${s} exists`).toBe(true);
        expect(excluded(path), `${s} is not excluded by .dockerignore`).toBe(false);
        if (statSync(join(root, path)).isDirectory()) {
          for (const f of filesUnder(join(root, path))) {
            const rel = relative(root, f);
            // Tests may stay out of the context; everything else under a copied directory must be in it.
            if (!/\.test\.ts$/.test(rel)) expect(excluded(rel), `${rel} is in the build context`).toBe(false);
          }
        }
      }
    }
    // What scripts/build.ts bundles is in the context.
    const buildTs = readFileSync(join(root, 'scripts/build.ts'), 'utf8');
    const entries = [...buildTs.matchAll(/['`](?:\$\{root\})?(src\/[\w/.-]+\.ts)['`]/g)].map((m) => m[1]!);
    expect(entries).toEqual(expect.arrayContaining(['src/lambda/handler.ts', 'src/controller/main.ts']));
    for (const e of entries) expect(excluded(e), `${e} is in the build context`).toBe(false);
    // And what it imports from beside it, which the build stage copies too.
    const helpers = [...buildTs.matchAll(/from '\.\/([\w.-]+\.ts)'/g)].map((m) => `scripts/${m[1]}`);
    const copied = copies.flatMap((c) => c.sources);
    for (const h of helpers) expect(copied, `the build stage copies ${h}`).toContain(h);
    for (const f of ['package.json', 'package-lock.json', 'scripts/build.ts', ...helpers])
      expect(excluded(f), `${f} is in the build context`).toBe(false);
    expect(excluded('node_modules/x/index.js')).toBe(true);
    expect(excluded('dist/controller.js')).toBe(true);
  });

  it('carries only the bundles, their source maps and the function zip — no node_modules', () => {
    const carried = runtimeCopies.flatMap((c) => {
      expect(c.from, 'the runtime stage copies only from the build stage').toBe('build');
      return c.sources.map(repoPathOfBuildOutput);
    });
    expect(carried.sort()).toEqual(
      [
        'dist/cli.js',
        'dist/cli.js.map',
        'dist/controller.js',
        'dist/controller.js.map',
        'dist/lambda/secretsync-lambda.zip',
      ].sort(),
    );
    for (const c of carried) {
      expect(existsSync(join(root, c)), `${c} exists (run \`npm run build\` first; \`make test\` does)`).toBe(
        true,
      );
    }
    expect(runtime.instructions.some((i) => /node_modules/.test(i.args) && i.op !== 'RUN')).toBe(false);
    expect(runtime.instructions.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it('runs as uid 65532 with the controller bundle as entry point', () => {
    const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toMatch(/^65532(:65532)?$/);
    expect(JSON.parse(entrypoint ?? 'null')).toEqual(['node', '/app/controller.js']);
    // The heap flags make bench measures the controller with (it reads them from here).
    expect(imageNodeOptions()).toMatch(/--max-old-space-size=\d+/);
    // The controller's --lambda-zip default is lambda/secretsync-lambda.zip next to its bundle.
    const zipCopy = runtimeCopies.find((c) => c.sources.some((s) => s.endsWith('secretsync-lambda.zip')));
    expect(zipCopy?.dest).toBe('/app/lambda/secretsync-lambda.zip');
  });

  describe('the runtime stage assembled from its COPY lines', () => {
    let image: string;
    beforeAll(() => {
      image = mkdtempSync(join(tmpdir(), 'secretsync-image-'));
      for (const c of runtimeCopies) {
        for (const s of c.sources) {
          const src = join(root, repoPathOfBuildOutput(s));
          const dest = c.dest.endsWith('/')
            ? join(image, posix.resolve(c.workdir, c.dest), posix.basename(s))
            : join(image, posix.resolve(c.workdir, c.dest));
          mkdirSync(dirname(dest), { recursive: true });
          copyFileSync(src, dest);
        }
      }
    });
    afterAll(() => rmSync(image, { recursive: true, force: true }));

    const node = (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const [, ...flags] = JSON.parse(entrypoint!) as string[];
      const script = flags.pop()!;
      // The entry point's script, inside the assembled image; no node_modules anywhere above it.
      return run(process.execPath, [...flags, join(image, script), ...args], {
        cwd: image,
        env: { PATH: process.env.PATH, ...env },
      }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => ({
          code: e.code,
          stdout: e.stdout,
          stderr: e.stderr,
        }),
      );
    };

    it('has no node_modules to fall back on', () => {
      for (let d = join(image, 'app'); d !== dirname(d); d = dirname(d))
        expect(existsSync(join(d, 'node_modules')), `${d}/node_modules`).toBe(false);
    });

    it('node controller.js --help exits 0 and prints the flags', async () => {
      const r = await node(['--help']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Usage: secretsync-controller');
      expect(r.stdout).toContain('SECRETSYNC_CLUSTER_NAME');
    });

    it('finds the function zip at its default path and reports missing settings with exit 2', async () => {
      const r = await node([]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--cluster-name is required');
      expect(r.stderr).not.toMatch(/function zip .* cannot be read/);
    });

    it('carries a CLI that runs too (iam-policy, doctor)', async () => {
      const r = await run(process.execPath, [join(image, 'app/cli.js'), '--help'], { cwd: image });
      expect(r.stdout).toContain('iam-policy');
      const doctor = await run(process.execPath, [join(image, 'app/cli.js'), 'doctor', '--help'], {
        cwd: image,
      });
      expect(doctor.stdout).toContain('Usage: secretsync doctor');
    });
  });
});
