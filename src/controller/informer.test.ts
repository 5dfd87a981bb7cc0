import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { reconcileFingerprint, settled } from './informer.ts';

// Pure logic: which SecretSync updates queue a reconcile pass.
const base = {
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'SecretSync',
  metadata: {
    name: 'db',
    namespace: 'app',
    generation: 1,
    resourceVersion: '10',
    finalizers: ['secretsync.io/cleanup'],
  },
  spec: { source: { secretId: 'prod/db' } },
  status: {
    resources: [{ kind: 'IAMRole', id: 'arn:aws:iam::123456789012:role/secretsync/secretsync-db' }],
    lastSyncTime: '2026-11-29T12:00:00Z',
    conditions: [{ type: 'Synced', status: 'True', reason: 'Synced', message: 'ok' }],
  },
};
const fp = (patch: (o: typeof base & Record<string, unknown>) => void) => {
  const o = structuredClone(base) as typeof base & Record<string, unknown>;
  patch(o);
  return reconcileFingerprint(o as KubernetesObject);
};

describe('reconcileFingerprint', () => {
  const same = fp(() => {});

  it('ignores our finalizer added by the first pass (before anything was provisioned)', () => {
    const fresh = (finalizers: string[]) =>
      fp((o) => {
        o.metadata.finalizers = finalizers;
        o.status = { conditions: [] } as never;
      });
    expect(fresh(['secretsync.io/cleanup'])).toBe(fresh([]));
  });

  it("ignores the function's and the controller's status writes", () => {
    expect(
      fp((o) => {
        o.metadata.resourceVersion = '11';
        o.status.lastSyncTime = '2026-11-29T12:05:00Z';
        o.status.conditions = [{ type: 'Synced', status: 'False', reason: 'InvalidKey', message: 'x' }];
      }),
    ).toBe(same);
  });

  it.each([
    [
      'a spec change (generation)',
      (o: typeof base) => {
        o.metadata.generation = 2;
      },
    ],
    [
      'the force-sync annotation',
      (o: typeof base) =>
        void Object.assign(o.metadata, { annotations: { 'secretsync.io/force-sync': '1' } }),
    ],
    ['a label', (o: typeof base) => void Object.assign(o.metadata, { labels: { team: 'a' } })],
    [
      'deletion',
      (o: typeof base) => void Object.assign(o.metadata, { deletionTimestamp: '2026-11-29T12:06:00Z' }),
    ],
    [
      'our finalizer removed while there is something to clean up',
      (o: typeof base) => {
        o.metadata.finalizers = [];
      },
    ],
    [
      "another's finalizer added",
      (o: typeof base) => {
        o.metadata.finalizers = ['secretsync.io/cleanup', 'example.com/backup'];
      },
    ],
    [
      'the function reporting TargetMissing',
      (o: typeof base) => {
        o.status.conditions = [{ type: 'Synced', status: 'False', reason: 'TargetMissing', message: 'x' }];
      },
    ],
    [
      'the function reporting Forbidden',
      (o: typeof base) => {
        o.status.conditions = [{ type: 'Synced', status: 'False', reason: 'Forbidden', message: 'x' }];
      },
    ],
  ])('changes with %s', (_what, patch) => {
    expect(fp(patch)).not.toBe(same);
  });
});

describe('settled: SecretSyncs listed at start-up that a pass only confirms go to the back of the queue', () => {
  const ready = {
    ...base,
    status: {
      observedGeneration: 1,
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Ready', message: 'ok' },
        { type: 'Synced', status: 'True', reason: 'Synced', message: 'ok' },
      ],
    },
  };
  const with_ = (patch: (o: typeof ready & Record<string, unknown>) => void) => {
    const o = structuredClone(ready) as typeof ready & Record<string, unknown>;
    patch(o);
    return settled(o as KubernetesObject);
  };

  it('Ready for its generation', () => expect(with_(() => {})).toBe(true));
  it('a Synced failure the function reports and the controller does not act on stays settled', () =>
    expect(
      with_((o) => {
        o.status.conditions[1] = { type: 'Synced', status: 'False', reason: 'InvalidKey', message: 'x' };
      }),
    ).toBe(true));
  it.each([
    [
      'new (no status)',
      (o: Record<string, unknown>) => {
        delete o.status;
      },
    ],
    [
      'changed since its last pass',
      (o: typeof ready) => {
        o.metadata.generation = 2;
      },
    ],
    [
      'not Ready',
      (o: typeof ready) => {
        o.status.conditions[0]!.status = 'False';
      },
    ],
    [
      'being deleted',
      (o: typeof ready) => {
        Object.assign(o.metadata, { deletionTimestamp: '2026-11-29T12:06:00Z' });
      },
    ],
    [
      'its target missing',
      (o: typeof ready) => {
        o.status.conditions[1] = { type: 'Synced', status: 'False', reason: 'TargetMissing', message: 'x' };
      },
    ],
  ])('not when %s', (_what, patch) => expect(with_(patch as never)).toBe(false));
});
