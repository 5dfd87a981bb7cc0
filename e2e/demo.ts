import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { startTestbed } from './testbed/index.ts';
import { binaries } from './testbed/paths.ts';

/**
 * `make demo`: the whole story on the local test bed. The controller runs as its own process from
 * the built bundle, exactly as the image runs it; the function runs from the built zip.
 */
const say = (s: string) => process.stdout.write(`\n\x1b[1m▶ ${s}\x1b[0m\n`);
const bed = await startTestbed();
const { info } = bed;
// Asynchronous on purpose: the test bed's AWS side runs in this process and must keep answering.
const kubectl = async (...args: string[]) =>
  (
    await promisify(execFile)(binaries.kubectl(), ['--kubeconfig', info.kubeconfigPath, ...args], {
      encoding: 'utf8',
    })
  ).stdout;
const awsEnv = {
  AWS_ENDPOINT_URL: info.aws.url,
  AWS_REGION: info.aws.region,
  AWS_ACCESS_KEY_ID: info.aws.credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: info.aws.credentials.secretAccessKey,
};
const controller = spawn(
  process.execPath,
  [
    '--enable-source-maps',
    new URL('../dist/controller.js', import.meta.url).pathname,
    `--cluster-name=${info.clusterName}`,
    '--leader-elect=false',
    '--metrics-port=0',
    '--health-port=0',
  ],
  {
    env: { PATH: process.env.PATH, KUBECONFIG: info.kubeconfigPath, ...awsEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
const controllerLog = join(info.logsDir, 'controller.log');
controller.stdout.on('data', (d: Buffer) => writeFileSync(controllerLog, d, { flag: 'a' }));
controller.stderr.on('data', (d: Buffer) => writeFileSync(controllerLog, d, { flag: 'a' }));

let failed = false;
try {
  say('An AWS secret, tagged so that namespace "demo" may receive it (default-deny tenancy)');
  const sm = new SecretsManagerClient({
    endpoint: info.aws.url,
    region: info.aws.region,
    credentials: info.aws.credentials,
  });
  const created = await sm.send(
    new CreateSecretCommand({
      Name: 'prod/payments/db',
      SecretString: JSON.stringify({ username: 'payments', password: 'hunter2' }),
      Tags: [{ Key: 'secretsync.io/namespaces', Value: 'demo' }],
    }),
  );
  console.log(`  ${created.ARN}`);

  say('kubectl apply -f secretsync.yaml');
  const manifest = `apiVersion: v1
kind: Namespace
metadata: { name: demo }
---
apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata: { name: payments-db, namespace: demo }
spec:
  source: { secretId: prod/payments/db }
  target:
    name: db-creds
    keys: [{ from: username, to: DB_USER }, { from: password, to: DB_PASSWORD }]
`;
  console.log(manifest.replace(/^/gm, '  '));
  const file = join(info.dir, 'secretsync.yaml');
  writeFileSync(file, manifest);
  await kubectl('apply', '-f', file);
  await kubectl('wait', '-n', 'demo', 'secretsync/payments-db', '--for=condition=Ready', '--timeout=90s');
  await kubectl('wait', '-n', 'demo', 'secretsync/payments-db', '--for=condition=Synced', '--timeout=60s');
  say('kubectl get secretsyncs -n demo -o wide');
  console.log(await kubectl('get', 'secretsyncs', '-n', 'demo', '-o', 'wide'));
  // Key names and a short hash of each value: the demo shows that values change, never the values.
  const show = async () => {
    const data = JSON.parse(
      await kubectl('get', 'secret', 'db-creds', '-n', 'demo', '-o', 'jsonpath={.data}'),
    ) as Record<string, string>;
    return Object.entries(data)
      .map(
        ([k, v]) =>
          `${k}=sha256:${createHash('sha256').update(Buffer.from(v, 'base64')).digest('hex').slice(0, 12)}`,
      )
      .join(' ');
  };
  console.log(`  Secret demo/db-creds: ${await show()}`);

  say('Rotate the password in AWS Secrets Manager and watch the Secret follow');
  const before = await show();
  const t0 = performance.now();
  await sm.send(
    new PutSecretValueCommand({
      SecretId: created.ARN,
      SecretString: JSON.stringify({ username: 'payments', password: 'correct-horse-battery-staple' }),
    }),
  );
  let after = before;
  while (after === before && performance.now() - t0 < 30_000) {
    await sleep(20);
    after = await show();
  }
  console.log(`  Secret demo/db-creds: ${after}`);
  console.log(
    `  followed in ${Math.round(performance.now() - t0)} ms (event → function in a fresh process → API server)`,
  );
  if (after === before) throw new Error('the Secret did not follow the change');

  say('What the controller provisioned (status)');
  const status = JSON.parse(
    await kubectl('get', 'secretsync', 'payments-db', '-n', 'demo', '-o', 'jsonpath={.status}'),
  );
  console.log(JSON.stringify(status, null, 2).replace(/^/gm, '  '));

  const keep = process.env.KEEP !== undefined && process.env.KEEP !== '' && process.env.KEEP !== '0';
  if (!keep) {
    say(
      'kubectl delete secretsync — the AWS side and the RBAC go, the Secret stays (deletionPolicy: Retain)',
    );
    await kubectl('delete', 'secretsync', 'payments-db', '-n', 'demo', '--timeout=60s');
    console.log(await kubectl('get', 'secrets,roles,rolebindings', '-n', 'demo'));
  }
  if (keep) {
    say('KEEP=1: the test bed and the controller stay up. In another shell:');
    console.log(
      `${bed.exports()}\n  kubectl get secretsyncs -A   # KUBECONFIG above\n\nCtrl-C stops everything.`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  } else {
    say('Done. Everything is torn down; `make demo KEEP=1` keeps it running to explore.');
  }
} catch (err) {
  failed = true;
  console.error(`\ndemo failed: ${(err as Error).message}\ncontroller log: ${controllerLog}`);
} finally {
  controller.kill('SIGTERM');
  await new Promise((r) => controller.once('exit', r));
  await bed.stop({ keepLogs: failed });
}
process.exit(failed ? 1 : 0);
