import { describe, expect, it } from 'vitest';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import {
  decideTrigger,
  EVENT_GRACE_MS,
  invocationTrigger,
  missedChange,
  nextResyncAt,
  RETRY_GRACE_MS,
} from './invocation.ts';

// Pure logic: when a reconcile pass invokes the function itself (a missed change event, the first
// sync, a force-sync, a spec change, the backstop resync).
const NOW = Date.parse('2026-11-29T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

function sync(status: Partial<NonNullable<SecretSync['status']>>, stage?: string): SecretSync {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretSync',
    metadata: { name: 'db', namespace: 'app' },
    spec: { source: { secretId: 'prod/db', ...(stage ? { versionStage: stage } : {}) } },
    status: { lastInvokeTime: ago(3_600_000), ...status },
  } as SecretSync;
}
const source = (current: string, changedAgo: number) => ({
  stageVersions: { AWSCURRENT: current, AWSPREVIOUS: 'v0' },
  lastChangedDate: new Date(NOW - changedAgo),
});
const failed = (reason: string): NonNullable<SecretSync['status']>['conditions'] => [
  { type: 'Synced', status: 'False', reason, message: 'x', lastTransitionTime: ago(0) },
];

describe('missedChange', () => {
  it('is false while the target holds the current version', () => {
    expect(
      missedChange(sync({ syncedVersionId: 'v2', lastSyncTime: ago(10) }), source('v2', 600_000), NOW),
    ).toBe(false);
  });

  it('is true when the function has not run since the change, once the event had time to arrive', () => {
    const ss = sync({ syncedVersionId: 'v1', lastSyncTime: ago(3_600_000) });
    expect(missedChange(ss, source('v2', EVENT_GRACE_MS - 1), NOW)).toBe(false);
    expect(missedChange(ss, source('v2', EVENT_GRACE_MS), NOW)).toBe(true);
  });

  it('counts a first sync that never completed (no synced version yet)', () => {
    expect(missedChange(sync({}), source('v1', 10 * 60_000), NOW)).toBe(true);
  });

  it('waits after its own invocation', () => {
    const ss = sync({ syncedVersionId: 'v1', lastInvokeTime: ago(1_000) });
    expect(missedChange(ss, source('v2', 600_000), NOW)).toBe(false);
  });

  it('follows the stage the SecretSync reads', () => {
    const ss = sync({ syncedVersionId: 'v0', lastSyncTime: ago(3_600_000) }, 'AWSPREVIOUS');
    expect(missedChange(ss, source('v2', 600_000), NOW)).toBe(false);
  });

  it('retries a transient failure after Lambda’s own retries, never a permanent one', () => {
    const ran = (reason: string, ranAgo: number) =>
      sync({ syncedVersionId: 'v1', lastSyncTime: ago(ranAgo), conditions: failed(reason) });
    // The function ran (and failed) after the change.
    const changedBefore = (ranAgo: number) => source('v2', ranAgo + 60_000);
    const soon = RETRY_GRACE_MS - 1;
    for (const reason of [
      'ApiUnavailable',
      'SecretsManagerUnavailable',
      'Unauthorized',
      'Conflict',
      'Forbidden',
    ]) {
      expect(missedChange(ran(reason, soon), changedBefore(soon), NOW), reason).toBe(false);
      expect(missedChange(ran(reason, RETRY_GRACE_MS), changedBefore(RETRY_GRACE_MS), NOW), reason).toBe(
        true,
      );
    }
    const day = 24 * 3_600_000;
    for (const reason of ['InvalidKey', 'TooLarge', 'InvalidPayload', 'AccessDenied', 'DecryptionFailed'])
      expect(missedChange(ran(reason, day), changedBefore(day), NOW), reason).toBe(false);
  });
});

describe('nextResyncAt', () => {
  const withInterval = (uid: string, resyncInterval: string) =>
    ({
      ...sync({}),
      metadata: { name: 'db', namespace: 'app', uid },
      spec: { ...sync({}).spec, resyncInterval },
    }) as SecretSync;
  const last = ago(0);

  it('is the last invocation plus the interval, shortened by up to 10% with a jitter fixed per SecretSync', () => {
    const due = nextResyncAt(withInterval('uid-1', '24h'), last) as number;
    expect(due).toBeGreaterThan(NOW + 0.9 * 86_400_000);
    expect(due).toBeLessThanOrEqual(NOW + 86_400_000);
    // The same every pass (the desired state must not change), another for another SecretSync.
    expect(nextResyncAt(withInterval('uid-1', '24h'), last)).toBe(due);
    const others = new Set(['a', 'b', 'c', 'd'].map((u) => nextResyncAt(withInterval(u, '24h'), last)));
    expect(others.size).toBe(4);
  });

  it('is never due without an interval or before the first invocation', () => {
    expect(nextResyncAt(withInterval('uid-1', '0'), last)).toBeUndefined();
    expect(nextResyncAt(withInterval('uid-1', '24h'), undefined)).toBeUndefined();
  });
});

describe('invocationTrigger', () => {
  const ss = sync({ lastInvokeTime: ago(60_000), lastForceSync: 'a' });

  it('first-sync, then force-sync, then the pass’s own reason, then a due resync, else nothing', () => {
    expect(invocationTrigger(sync({ lastInvokeTime: undefined }), NOW, 'b', 'spec-changed')).toBe(
      'first-sync',
    );
    expect(invocationTrigger(ss, NOW, 'b', 'spec-changed')).toBe('force-sync');
    expect(invocationTrigger(ss, NOW, 'a', 'spec-changed')).toBe('spec-changed');
    expect(invocationTrigger(ss, NOW, undefined, undefined)).toBeUndefined();
    const resync = { ...ss, spec: { ...ss.spec, resyncInterval: '1m' } } as SecretSync;
    expect(invocationTrigger(resync, NOW, undefined, undefined)).toBe('resync');
  });
});

describe('decideTrigger', () => {
  // Synced v2 ten minutes ago; Ready last written for generation `readySaw`.
  const settled = (generation: number, observed: number, readySaw: number) =>
    ({
      ...sync({}),
      metadata: { name: 'db', namespace: 'app', generation },
      status: {
        lastInvokeTime: ago(600_000),
        syncedVersionId: 'v2',
        lastSyncTime: ago(600_000),
        observedGeneration: observed,
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'Provisioning',
            message: 'x',
            lastTransitionTime: ago(0),
            observedGeneration: readySaw,
          },
        ],
      },
    }) as SecretSync;
  const upToDate = source('v2', 3_600_000);
  const pass = (p: Partial<{ targetCreated: boolean; functionCreated: boolean }> = {}) => ({
    targetCreated: false,
    functionCreated: false,
    ...p,
  });

  it('syncs a re-created target at once', () => {
    expect(decideTrigger(settled(1, 1, 1), upToDate, pass({ targetCreated: true }), NOW)).toBe(
      'target-recreated',
    );
  });

  it('syncs a generation no complete pass has provisioned yet, once', () => {
    expect(decideTrigger(settled(2, 1, 1), upToDate, pass(), NOW)).toBe('spec-changed');
    // An earlier pass of generation 2 got this far, then failed before completing.
    expect(decideTrigger(settled(2, 1, 2), upToDate, pass(), NOW)).toBe('spec-changed');
    // Provisioned: nothing to sync (the function read the spec when it ran).
    expect(decideTrigger(settled(2, 2, 2), upToDate, pass(), NOW)).toBeUndefined();
  });

  it('counts a denial soon after an access change as transient (IAM propagation), not later', () => {
    // The first sync was denied 30 s after the role changed; the AWS secret is at v2, nothing synced.
    const denied = (changedAgoAtRunMs: number) => {
      const ss = settled(1, 1, 1);
      const lastRun = NOW - 6 * 60_000;
      Object.assign(ss.status as object, {
        syncedVersionId: undefined,
        lastInvokeTime: new Date(lastRun).toISOString(),
        lastSyncTime: new Date(lastRun).toISOString(),
        accessChangedTime: new Date(lastRun - changedAgoAtRunMs).toISOString(),
        conditions: [
          ...(ss.status?.conditions ?? []),
          {
            type: 'Synced',
            status: 'False',
            reason: 'AccessDenied',
            message: 'denied',
            lastTransitionTime: '',
          },
        ],
      });
      return ss;
    };
    const changedLongAgo = source('v2', 3600_000);
    expect(decideTrigger(denied(30_000), changedLongAgo, pass(), NOW)).toBe('missed-change');
    expect(decideTrigger(denied(3600_000), changedLongAgo, pass(), NOW)).toBeUndefined();
  });

  it('syncs after the function was created again, or is usable again after Failed/Inactive', () => {
    expect(decideTrigger(settled(1, 1, 1), upToDate, pass({ functionCreated: true }), NOW)).toBe(
      'function-created',
    );
    for (const reason of ['FunctionFailed', 'FunctionInactive']) {
      const ss = settled(1, 1, 1);
      (ss.status?.conditions?.[0] as { reason: string }).reason = reason;
      expect(decideTrigger(ss, upToDate, pass(), NOW)).toBe('function-recovered');
    }
    // Created in the first pass: that is the first sync, not a re-creation.
    const fresh = settled(1, 1, 1);
    delete (fresh.status as { lastInvokeTime?: string }).lastInvokeTime;
    expect(decideTrigger(fresh, upToDate, pass({ functionCreated: true }), NOW)).toBe('first-sync');
  });

  it('syncs a change event that never arrived', () => {
    expect(decideTrigger(settled(1, 1, 1), source('v3', 300_000), pass(), NOW)).toBe('missed-change');
  });
});
