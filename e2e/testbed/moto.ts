import { binaries } from './paths.ts';
import { freePort, startProcess, waitFor } from './process.ts';

/** moto in server mode on a random loopback port; one process emulates every AWS service we use. */
export async function startMoto(opts: { logsDir: string }): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = startProcess('moto', binaries.motoServer(), ['-H', '127.0.0.1', '-p', String(port)], {
    logsDir: opts.logsDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // Lambda functions are run by our runner (moto's own invoke needs Docker).
      MOTO_DOCKER_NETWORK_MODE: 'none',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('moto', async () => (await fetch(`${url}/moto-api/`)).ok, { proc, timeoutMs: 60_000 });
  return { url, stop: () => proc.stop() };
}
