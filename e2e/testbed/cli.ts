import { startTestbed } from './index.ts';

// `make testbed`: start everything, print export lines, run until Ctrl-C.
const bed = await startTestbed();
process.stdout.write(`\n# The test bed is up. In another shell:\n${bed.exports()}\n\n# Ctrl-C stops it.\n`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('\n[testbed] stopping\n');
  await bed.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
