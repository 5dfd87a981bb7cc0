import { describe, expect, it } from 'vitest';
import {
  EventRecorder,
  MAX_SIMILAR,
  SIMILAR_WINDOW_MS,
  SPAM_BURST,
  SPAM_REFILL_MS,
} from '../../src/controller/kube/events.ts';
import type { SecretSync } from '../../src/shared/secretsync.generated.ts';
import { applySecretSync, getSecretSync } from './controller-support.ts';
import { core, freshNamespace } from './support.ts';

/**
 * Events correlated as client-go's EventRecorder does, against the real API server: repeats counted on
 * one Event, similar ones combined, a flood per object cut by a token bucket. The recorder's clock is
 * the test's, so ten minutes pass at once.
 */
async function subject(name: string): Promise<SecretSync> {
  const ns = await freshNamespace('events');
  await applySecretSync(ns, name, { source: { secretId: 'prod/db' } });
  return (await getSecretSync(ns, name))!;
}
const eventsOf = async (ss: SecretSync) =>
  (
    await core().listNamespacedEvent({
      namespace: ss.metadata.namespace!,
      fieldSelector: `involvedObject.name=${ss.metadata.name}`,
    })
  ).items;

describe('Events on SecretSyncs (EventRecorder-style correlation)', () => {
  it('the same event again is counted on one Event, with its lastTimestamp moved', async () => {
    const ss = await subject('flap');
    let now = Date.parse('2026-12-07T10:00:00Z');
    const rec = new EventRecorder(core(), 'ctl-0', () => now);
    const did: string[] = [];
    for (let i = 0; i < 5; i++) {
      did.push(await rec.record(ss, 'Warning', 'AwsError', 'IAM answered 500'));
      now += 30_000;
    }
    expect(did).toEqual(['created', 'counted', 'counted', 'counted', 'counted']);
    const [ev, ...more] = await eventsOf(ss);
    expect(more).toEqual([]);
    expect(ev).toMatchObject({ count: 5, reason: 'AwsError', type: 'Warning', reportingInstance: 'ctl-0' });
    expect(new Date(ev!.lastTimestamp!).getTime() - new Date(ev!.firstTimestamp!).getTime()).toBe(4 * 30_000);

    // Past the window, or once the Event is gone, a new one starts.
    now += SIMILAR_WINDOW_MS + 1;
    expect(await rec.record(ss, 'Warning', 'AwsError', 'IAM answered 500')).toBe('created');
    for (const e of await eventsOf(ss))
      await core().deleteNamespacedEvent({ name: e.metadata!.name!, namespace: ss.metadata.namespace! });
    now += 1000;
    expect(await rec.record(ss, 'Warning', 'AwsError', 'IAM answered 500')).toBe('created');
    expect((await eventsOf(ss)).map((e) => e.count)).toEqual([1]);
  });

  it(`more than ${MAX_SIMILAR} similar events (same reason, other messages) become one combined Event`, async () => {
    const ss = await subject('similar');
    const now = Date.parse('2026-12-07T10:00:00Z');
    const rec = new EventRecorder(core(), 'ctl-0', () => now);
    for (let i = 0; i < MAX_SIMILAR + 5; i++) await rec.record(ss, 'Warning', 'AwsError', `call ${i} failed`);
    const events = await eventsOf(ss);
    expect(events).toHaveLength(MAX_SIMILAR + 1);
    const combined = events.filter((e) => e.message?.startsWith('(combined from similar events): '));
    expect(combined).toHaveLength(1);
    expect(combined[0]).toMatchObject({
      count: 5,
      message: `(combined from similar events): call ${MAX_SIMILAR + 4} failed`,
    });
  });

  it(`a flood on one object is cut at ${SPAM_BURST}, then one more every ${SPAM_REFILL_MS / 60_000} minutes`, async () => {
    const ss = await subject('flood');
    const other = await subject('quiet');
    let now = Date.parse('2026-12-07T10:00:00Z');
    const rec = new EventRecorder(core(), 'ctl-0', () => now);
    const did: string[] = [];
    for (let i = 0; i < SPAM_BURST + 10; i++)
      did.push(await rec.record(ss, 'Normal', 'Ready', `ready ${i % 3}`));
    expect(did.filter((d) => d !== 'dropped')).toHaveLength(SPAM_BURST);
    expect(did.slice(SPAM_BURST)).toEqual(Array(10).fill('dropped'));
    // Another object has its own bucket.
    expect(await rec.record(other, 'Normal', 'Ready', 'ready')).toBe('created');
    now += SPAM_REFILL_MS;
    expect(await rec.record(ss, 'Normal', 'Ready', 'ready 0')).toBe('counted');
    expect(await rec.record(ss, 'Normal', 'Ready', 'ready 0')).toBe('dropped');
  });
});
