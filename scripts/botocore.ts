// Runs one of the scripts/*-vectors.py cross-checks with the test bed's venv (it has botocore) and
// returns its JSON answer. Used by unit tests that compare what we sign with what botocore signs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VENV = process.env.SECRETSYNC_VENV ?? join(homedir(), '.cache', 'secretsync', 'venv-moto-5.2.5');
const PYTHON = join(VENV, 'bin', 'python');

/** `script` is a file name under scripts/; `what` names the check in the missing-venv message. */
export function botocoreVectors<T>(script: string, cases: unknown, what: string): T {
  if (!existsSync(PYTHON)) {
    throw new Error(
      `botocore venv not found: ${PYTHON} does not exist. ${what} is checked against botocore; ` +
        'run `make test` (it installs the venv) or set SECRETSYNC_VENV to a venv with botocore.',
    );
  }
  // A bare environment: no AWS_* settings of the developer's reach botocore (the scripts drop them too).
  const run = spawnSync(PYTHON, [fileURLToPath(new URL(script, import.meta.url))], {
    input: JSON.stringify(cases),
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: homedir() },
    timeout: 60_000,
  });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`${script} exited ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}
