// `make bench-capacity`: only the controller-capacity run of `make bench` (1000 SecretSyncs with every
// client-side rate limit lifted, on a fresh test bed), merged into bench/results.json and the README
// row, leaving the other figures as the last full run measured them. For iterating on the
// controller's throughput without the 40-minute full run.
import { readFileSync, writeFileSync } from 'node:fs';
import { capacityTableRow, runCapacity } from './scale.ts';

const root = new URL('..', import.meta.url).pathname;
const n = Number(process.env.BENCH_CAPACITY_SIZE ?? 1000);
const result = await runCapacity(n);
console.log(`[bench] capacity: ${JSON.stringify(result)}`);

const resultsPath = `${root}bench/results.json`;
const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, unknown>;
results.controllerCapacity = { ...result, date: new Date().toISOString() };
writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);

const readmePath = `${root}README.md`;
const readme = readFileSync(readmePath, 'utf8');
const row = capacityTableRow(result);
const existing = /^\| \d+ applied at once with every client-side rate limit lifted.*$/m;
const next = existing.test(readme)
  ? readme.replace(existing, row)
  : readme.replace('\n<!-- bench:end -->', `\n${row}\n<!-- bench:end -->`);
writeFileSync(readmePath, next);
console.log(row);
process.exit(0);
