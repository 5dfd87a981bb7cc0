import { describe, expect, it } from 'vitest';
import { type ConditionView, createMetrics } from './metrics.ts';

const ss = (name: string, conditions: { type: string; status: string; reason: string }[] | undefined) =>
  ({ metadata: { namespace: 'payments', name }, status: conditions && { conditions } }) as ConditionView;

/** The gauge's samples as `labels value` lines, as a scrape would see them. */
async function samples(objects: ConditionView[], metric: string): Promise<string[]> {
  const text = await createMetrics(() => objects).registry.getSingleMetricAsString(metric);
  return text
    .split('\n')
    .filter((l) => l.startsWith(metric))
    .map((l) => l.slice(metric.length));
}

describe('the per-SecretSync gauges, read from the watch cache at scrape time', () => {
  const objects = [
    ss('ok', [
      { type: 'Ready', status: 'True', reason: 'Ready' },
      { type: 'Synced', status: 'True', reason: 'Synced' },
    ]),
    ss('suspended', [{ type: 'Ready', status: 'True', reason: 'Suspended' }]),
    ss('denied', [
      { type: 'Ready', status: 'False', reason: 'PolicyDenied' },
      { type: 'Synced', status: 'False', reason: 'AccessDenied' },
    ]),
    ss('aws', [{ type: 'Ready', status: 'Unknown', reason: 'AwsError' }]),
    ss('new', undefined),
  ];

  it('secretsync_not_ready: 1 for each SecretSync whose Ready is not True, with its reason', async () => {
    expect(await samples(objects, 'secretsync_not_ready')).toEqual([
      '{namespace="payments",name="denied",reason="PolicyDenied"} 1',
      '{namespace="payments",name="aws",reason="AwsError"} 1',
      // Not processed yet: counted, without a reason.
      '{namespace="payments",name="new",reason=""} 1',
    ]);
  });

  it('agrees with the count by condition, and with secretsync_sync_failed for Synced', async () => {
    const counts = await samples(objects, 'secretsync_secretsyncs');
    expect(counts).toContain('{condition="Ready",status="True"} 2');
    expect(counts).toContain('{condition="Ready",status="False"} 1');
    expect(counts).toContain('{condition="Ready",status="Unknown"} 2');
    expect(await samples(objects, 'secretsync_sync_failed')).toEqual([
      '{namespace="payments",name="denied",reason="AccessDenied"} 1',
    ]);
  });

  it('forgets a SecretSync once it is Ready (or gone): nothing stale between scrapes', async () => {
    const live = [...objects];
    const metrics = createMetrics(() => live);
    expect(await metrics.registry.getSingleMetricAsString('secretsync_not_ready')).toContain('name="aws"');
    live.splice(0, live.length, ss('aws', [{ type: 'Ready', status: 'True', reason: 'Ready' }]));
    expect(await metrics.registry.getSingleMetricAsString('secretsync_not_ready')).not.toContain('name=');
  });
});
