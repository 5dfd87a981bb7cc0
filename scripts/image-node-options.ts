import { readFileSync } from 'node:fs';

/**
 * The Node flags the controller image runs with (the Dockerfile's `ENV NODE_OPTIONS`), so the
 * benchmark measures the controller as it runs in the image, and a test keeps them there.
 */
export function imageNodeOptions(): string {
  const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
  return /^ENV NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1] ?? '';
}
