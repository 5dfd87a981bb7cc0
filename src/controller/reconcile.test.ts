import { describe, expect, it } from 'vitest';
import type { SecretSync } from '../shared/secretsync.generated.ts';
import { EVENT_GRACE_MS, missedChange, RETRY_GRACE_MS } from './reconcile.ts';

// Pure logic: when a reconcile pass decides a change event was missed and invokes the function.
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
