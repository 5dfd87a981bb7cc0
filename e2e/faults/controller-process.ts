import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { ZIP } from '../tests/controller-support.ts';
import { bed } from '../tests/support.ts';

/**
 * The controller as its own process (the built bundle, as the image runs it), so a test can
 * SIGKILL it at any moment — no shutdown code runs, like a node dying under the pod.
 */
export interface ControllerProcess {
  child: ChildProcess;
  /** Log lines (JSON) so far. */
  logs: string[];
  /** Resolves once the controller has logged "starting" (it knows its AWS identity). */
  started: Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const BUNDLE = new URL('../../dist/controller.js', import.meta.url).pathname;

export function spawnController(args: string[] = [], env: NodeJS.ProcessEnv = {}): ControllerProcess {
  const b = bed();
  const child = spawn(
    process.execPath,
    [
      '--enable-source-maps',
      BUNDLE,
      `--cluster-name=${b.clusterName}`,
      `--region=${b.aws.region}`,
      `--lambda-zip=${ZIP}`,
      '--leader-elect=false',
      '--metrics-port=0',
      '--health-port=0',
      '--resync-period=30s',
      '--log-level=info',
      ...args,
    ],
    {
      env: {
        PATH: process.env.PATH,
        KUBECONFIG: b.kubeconfigPath,
        AWS_ENDPOINT_URL: b.aws.url,
        AWS_ACCESS_KEY_ID: b.aws.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: b.aws.credentials.secretAccessKey,
        AWS_REGION: b.aws.region,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: string[] = [];
  let markStarted: () => void = () => {};
  let failStart: (e: Error) => void = () => {};
  const started = new Promise<void>((resolve, reject) => {
    markStarted = resolve;
    failStart = reject;
  });
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      logs.push(line);
      if (/"msg":"starting"/.test(line)) markStarted();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.on('exit', (code, signal) =>
    failStart(
      new Error(`controller exited (${code ?? signal}) before starting:\n${logs.slice(-20).join('\n')}`),
    ),
  );
  return {
    child,
    logs,
    started,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}
