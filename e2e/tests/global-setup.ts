import type { TestProject } from 'vitest/node';
import { RAISED_QUOTAS, startTestbed, type TestbedInfo } from '../testbed/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    testbed: TestbedInfo;
  }
}

// One test bed for the whole integration run; its logs stay on disk when a test failed.
export default async function setup(project: TestProject) {
  // One account for the whole run: hundreds of SecretSyncs, more than AWS's 300 rules per bus, and
  // not all of them deleted. The quota tests (e2e/unkind) lower the quotas themselves.
  const bed = await startTestbed({ quiet: true, quotas: RAISED_QUOTAS });
  project.provide('testbed', bed.info);
  return async () => {
    // Component logs (kube-apiserver, etcd, moto, audit, webhook) stay on disk when a test failed.
    const failed =
      project.vitest.state.getCountOfFailedTests() > 0 || process.env.SECRETSYNC_KEEP_LOGS === '1';
    await bed.stop({ keepLogs: failed });
  };
}
