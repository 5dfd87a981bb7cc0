import { readFileSync } from 'node:fs';

/**
 * The Node flags the controller image runs with (the Dockerfile's `ENV NODE_OPTIONS`), so the
 * benchmark measures the controller as it runs in the image, and a test keeps them there.
 */
export function imageNodeOptions(): string {
  return imageEnv().NODE_OPTIONS ?? '';
}

/**
 * The environment the runtime stage sets (its `ENV` lines: NODE_OPTIONS, MALLOC_ARENA_MAX…), for
 * the benchmark to run the controller bundle with.
 */
export function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
  const runtime = dockerfile.split(/^FROM\s/m).at(-1) ?? '';
  const env: Record<string, string> = {};
  for (const line of runtime.match(/^ENV\s.*$/gm) ?? [])
    for (const m of line.slice(4).matchAll(/(\w+)=(?:"([^"]*)"|(\S*))/g)) env[m[1]!] = m[2] ?? m[3] ?? '';
  return env;
}
