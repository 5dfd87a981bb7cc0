import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { planMain } from './main.ts';
import { ITEM_KINDS, type PlanReport } from './plan.ts';

// The CLI's flags, input errors, exit codes and JSON shape, without AWS (the --check side is
// e2e/tests/plan.test.ts, against the test bed).
let dir = '';
let flags: string[] = [];
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf';
const manifest = (secretId: string) =>
  `apiVersion: secretsync.io/v1alpha1\nkind: SecretSync\nmetadata: {name: db, namespace: payments}\nspec:\n  source: {secretId: "${secretId}"}\n`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'plan-'));
  writeFileSync(join(dir, 'fn.zip'), 'not really a zip');
  writeFileSync(join(dir, 'name.yaml'), manifest('prod/db'));
  writeFileSync(join(dir, 'arn.yaml'), manifest(ARN));
  flags = ['--cluster-name', 'prod', '--region', 'eu-west-1', '--lambda-zip', join(dir, 'fn.zip')];
});
afterEach(() => vi.restoreAllMocks());

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    stdout += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    stderr += String(s);
    return true;
  });
  const code = await planMain(args, {});
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

describe('secretsync plan (offline)', () => {
  it('prints the documented JSON shape, every optional field present (null when unset)', async () => {
    const { code, stdout } = await run(['-f', join(dir, 'arn.yaml'), '-o', 'json', ...flags]);
    expect(code).toBe(0);
    const r = JSON.parse(stdout) as PlanReport;
    expect(Object.keys(r)).toEqual([
      'secretSync',
      'cluster',
      'account',
      'region',
      'secretArn',
      'checked',
      'notes',
      'items',
    ]);
    // The account and partition come from the secret's ARN: the controller syncs only its own account's.
    expect(r).toMatchObject({ account: '123456789012', secretArn: ARN, checked: false });
    expect(r.items.map((i) => i.kind)).toEqual([...ITEM_KINDS]);
    const role = r.items[0] as unknown as { desired: Record<string, unknown> };
    expect(role.desired.permissionsBoundaryArn).toBeNull();
  });

  it('needs the account when the secretId is a name', async () => {
    const { code, stderr } = await run(['-f', join(dir, 'name.yaml'), ...flags]);
    expect(code).toBe(2);
    expect(stderr).toContain('pass --account <id>, or --check');
    expect((await run(['-f', join(dir, 'name.yaml'), '--account', '123456789012', ...flags])).code).toBe(0);
  });

  it('exits 2 on bad flags, controller flags included, and on an invalid SecretSync', async () => {
    expect((await run(flags)).stderr).toContain('-f <file> is required');
    expect((await run(['-f', join(dir, 'arn.yaml'), '--cluster-name', 'prod'])).stderr).toMatch(
      /--region \(or AWS_REGION\) is required/,
    );
    const bad = await run(['-f', join(dir, 'arn.yaml'), '--lambda-memory', '5', ...flags]);
    expect(bad).toMatchObject({ code: 2 });
    expect(bad.stderr).toContain('--lambda-memory must be an integer in 128..10240');
    expect(bad.stderr).toContain('Usage: secretsync plan');
    expect((await run(['-f', join(dir, 'arn.yaml'), '--bogus', ...flags])).code).toBe(2);
    writeFileSync(join(dir, 'bad.yaml'), manifest('prod db'));
    const invalid = await run(['-f', join(dir, 'bad.yaml'), ...flags]);
    expect(invalid).toMatchObject({ code: 2 });
    expect(invalid.stderr).toContain('spec.source.secretId must be a secret name');
  });

  it('takes the controller’s flags for what they change', async () => {
    const { stdout } = await run([
      '-f',
      join(dir, 'arn.yaml'),
      '-o',
      'json',
      '--name-prefix',
      'ss',
      '--iam-path',
      '/team/',
      '--lambda-memory',
      '256',
      ...flags,
    ]);
    const r = JSON.parse(stdout) as PlanReport;
    expect(r.items[0]?.arn).toMatch(/^arn:aws:iam::123456789012:role\/team\/ss-payments-db-[0-9a-f]{8}$/);
    expect(r.items.find((i) => i.kind === 'Function')?.desired.memoryMb).toBe(256);
  });

  it('--help prints its usage and exits 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Exit status: 0 planned');
  });
});
