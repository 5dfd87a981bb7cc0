// Events on SecretSyncs, correlated as client-go's EventRecorder does (tools/record/events_cache.go),
// so a thousand flapping SecretSyncs do not flood the API server with Event objects:
// - the same event again (object, type, reason, message) within 10 minutes bumps the existing Event's
//   count and lastTimestamp (a PATCH) instead of creating another;
// - more than 10 events for one object and reason with different messages within 10 minutes are
//   folded into one Event whose message starts "(combined from similar events): ";
// - a token bucket per object (burst 25, one more every 5 minutes) drops what is still too much.
// The cache is in memory and bounded; Events expire on the API server anyway (one hour by default).
import { type CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { SecretSync } from '../../shared/secretsync.generated.ts';
import { isNotFound } from '../errors.ts';
import { kube } from './errors.ts';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export const SIMILAR_WINDOW_MS = 10 * 60_000;
export const MAX_SIMILAR = 10;
export const SPAM_BURST = 25;
export const SPAM_REFILL_MS = 5 * 60_000;
const MAX_KEYS = 4096;
const COMBINED = '(combined from similar events): ';

interface Seen {
  name: string;
  count: number;
  at: number;
}
interface Bucket {
  tokens: number;
  at: number;
}

/** A small LRU map: the least recently used entry goes first when full. */
class Lru<V> {
  readonly #m = new Map<string, V>();
  get(k: string): V | undefined {
    const v = this.#m.get(k);
    if (v !== undefined) {
      this.#m.delete(k);
      this.#m.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.#m.delete(k);
    this.#m.set(k, v);
    if (this.#m.size > MAX_KEYS) this.#m.delete(this.#m.keys().next().value as string);
  }
}

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  readonly #api: CoreV1Api;
  readonly #instance: string;
  readonly #now: () => number;
  readonly #seen = new Lru<Seen>();
  readonly #messages = new Lru<{ at: number; messages: Set<string> }>();
  readonly #buckets = new Lru<Bucket>();

  constructor(api: CoreV1Api, reportingInstance: string, now: () => number = Date.now) {
    this.#api = api;
    this.#instance = reportingInstance.slice(0, 128);
    this.#now = now;
  }

  /** Records one event; answers what it did (for tests and debug logs). */
  async record(
    ss: SecretSync,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<'created' | 'counted' | 'dropped'> {
    const now = this.#now();
    const object = `${ss.metadata.namespace}/${ss.metadata.name}/${ss.metadata.uid ?? ''}`;
    if (!this.#take(object, now)) return 'dropped';

    // Similar events (same object and reason, other messages): past MAX_SIMILAR, one combined Event.
    const similarKey = `${object}|${type}|${reason}`;
    let similar = this.#messages.get(similarKey);
    if (!similar || now - similar.at > SIMILAR_WINDOW_MS) similar = { at: now, messages: new Set() };
    similar.messages.add(message);
    this.#messages.set(similarKey, similar);
    const combined = similar.messages.size > MAX_SIMILAR;
    const text = combined ? `${COMBINED}${message}` : message;
    const key = combined ? similarKey : `${similarKey}|${message}`;

    const seen = this.#seen.get(key);
    if (seen && now - seen.at <= SIMILAR_WINDOW_MS) {
      const count = seen.count + 1;
      try {
        await kube({ operation: 'PATCH Event', resource: `${ss.metadata.namespace}/${seen.name}` }, () =>
          this.#api.patchNamespacedEvent(
            {
              name: seen.name,
              namespace: ss.metadata.namespace!,
              body: { count, lastTimestamp: new Date(now), message: text.slice(0, 1024) },
            },
            MERGE_PATCH,
          ),
        );
        this.#seen.set(key, { name: seen.name, count, at: now });
        return 'counted';
      } catch (err) {
        // Expired (Events live an hour) or deleted: start a new one.
        if (!isNotFound(err)) throw err;
      }
    }
    const created = await this.#create(ss, type, reason, text, now);
    this.#seen.set(key, { name: created, count: 1, at: now });
    return 'created';
  }

  #take(object: string, now: number): boolean {
    const b = this.#buckets.get(object) ?? { tokens: SPAM_BURST, at: now };
    const refill = Math.floor((now - b.at) / SPAM_REFILL_MS);
    const tokens = Math.min(SPAM_BURST, b.tokens + refill);
    const at = refill > 0 ? b.at + refill * SPAM_REFILL_MS : b.at;
    if (tokens < 1) {
      this.#buckets.set(object, { tokens, at });
      return false;
    }
    this.#buckets.set(object, { tokens: tokens - 1, at });
    return true;
  }

  async #create(ss: SecretSync, type: EventType, reason: string, message: string, now: number) {
    const t = new Date(now);
    const ev = await kube(
      { operation: 'POST Event', resource: `${ss.metadata.namespace}/${ss.metadata.name}` },
      () =>
        this.#api.createNamespacedEvent({
          namespace: ss.metadata.namespace!,
          body: {
            metadata: { generateName: `${ss.metadata.name}.`, namespace: ss.metadata.namespace },
            involvedObject: {
              apiVersion: ss.apiVersion,
              kind: ss.kind,
              name: ss.metadata.name,
              namespace: ss.metadata.namespace,
              ...(ss.metadata.uid ? { uid: ss.metadata.uid } : {}),
            },
            reason,
            message: message.slice(0, 1024),
            type,
            firstTimestamp: t,
            lastTimestamp: t,
            count: 1,
            source: { component: 'secretsync-controller' },
            reportingComponent: 'secretsync.io/controller',
            reportingInstance: this.#instance,
          },
        }),
    );
    return ev.metadata?.name ?? '';
  }
}
