import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { ConfigError, loadControllerConfig } from './config.ts';
import { startController } from './controller.ts';
import { reuseConnections } from './kube/connection-reuse.ts';

// Entry point of the controller image: flags/env → validated config → run until SIGTERM.
let config: ReturnType<typeof loadControllerConfig>;
try {
  config = loadControllerConfig(process.argv.slice(2), process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    const help = process.argv.includes('--help');
    (help ? process.stdout : process.stderr).write(`${err.message}\n`);
    process.exit(help ? 0 : 2);
  }
  throw err;
}

const log = pino({
  level: config.logLevel,
  base: { component: 'controller' },
  timestamp: pino.stdTimeFunctions.isoTime,
});
const kc = new KubeConfig();
kc.loadFromDefault();
if (!reuseConnections(kc)) log.warn('client-node changed: API requests do not share connections');

const controller = await startController({ config, kc, log });
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down');
    controller
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err: String(err) }, 'unclean shutdown');
        process.exit(1);
      });
  });
}
