import { defineConfig } from 'vitest/config';

// Two projects: unit tests sit beside the code and need nothing running; integration tests start
// the test bed (real etcd + kube-apiserver, moto behind our front door) once per run.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'e2e/testbed/**/*.test.ts', 'scripts/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          // e2e/faults: the fault suite (make test-faults): crashes, AWS throttling/5xx, API server
          // restarts, hostile input — counts, never timings. One project, so one test bed at a time.
          // e2e/unkind (make test-unkind): IAM propagation delays, Lambda limits and quotas switched on.
          include: ['e2e/tests/**/*.test.ts', 'e2e/faults/**/*.test.ts', 'e2e/unkind/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['e2e/tests/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // make test-node (as root): a real node (containerd, kubelet) beside the test bed, the image
          // built from the Dockerfile, the chart installed with helm. Not part of make test.
          name: 'node',
          include: ['e2e/node/**/*.test.ts'],
          environment: 'node',
          testTimeout: 900_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
