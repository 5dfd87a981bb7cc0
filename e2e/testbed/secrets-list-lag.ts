/**
 * ListSecrets as late as AWS says it may be: "All Secrets Manager operations are eventually consistent.
 * ListSecrets might not reflect changes from the last five minutes. You can get more recent information for
 * a specific secret by calling DescribeSecret." (API reference, ListSecrets). moto's list is always current.
 *
 * With UnkindSettings.listSecretsLagMs at L > 0, ListSecrets answers with each secret as it was L ms ago: one
 * created since is absent, one deleted since still listed, tags, stages, dates and deletion marks as they
 * were. Every other call sees the present. All pages of one listing show the same moment (the token carries
 * it). ListSecrets with Filters is left to moto, unlagged. 0 (the default) turns it off and forgets.
 *
 * What the secrets were is recorded while the lag is on, as list entries by ARN with the time they began:
 * - a region's secrets when it is first touched (a ListSecrets there, or a change about to be forwarded),
 *   each as present since its CreatedDate: what happened before the lag was set is taken to be the present;
 * - after each change the front door forwards (CreateSecret, PutSecretValue, TagResource, DeleteSecret, …),
 *   the secret as DescribeSecret at moto then shows it, or gone when moto no longer knows it;
 * - at the first page of each listing, moto's list: what changed without passing the front door (straight
 *   at moto) is recorded as changed then, so it too shows late.
 */
import type { AwsRequest, AwsResponse, Interceptor, Observer } from './aws-types.ts';
import {
  invalidNextToken,
  jsonAnswer,
  jsonBody,
  LIST_SECRETS_DEFAULT,
  listedSecret,
  PAGE_MAX,
  refuseListSecrets,
} from './list-fidelity.ts';
import type { UnkindSettings } from './unkind.ts';

type Entry = Record<string, unknown>;

interface Snapshot {
  /** When the secret began to look like this (ms). */
  at: number;
  /** undefined: gone. */
  entry?: Entry;
}

const READS = /^(Get|List|Describe|BatchGet|Validate)/;
const regionOf = (arn: string) => arn.split(':')[3] ?? '';
// LastAccessedDate moves with reads (a day at a time), not with changes.
const sameEntry = (a: Entry | undefined, b: Entry | undefined) => {
  const key = (e: Entry | undefined) => (e ? JSON.stringify({ ...e, LastAccessedDate: undefined }) : '');
  return key(a) === key(b);
};

export class ListSecretsLag {
  readonly #motoUrl: string;
  readonly #accessKeyId: string;
  readonly #settings: Pick<UnkindSettings, 'listSecretsLagMs'>;
  readonly #now: () => number;
  /** By ARN, oldest first; insertion order is the listing order (moto's: by creation). */
  readonly #history = new Map<string, Snapshot[]>();
  readonly #regions = new Set<string>();

  constructor(opts: {
    motoUrl: string;
    credentials: { accessKeyId: string };
    /** Read on every request, so a change through /_testbed/unkind counts at once. */
    settings: Pick<UnkindSettings, 'listSecretsLagMs'>;
    now?: () => number;
  }) {
    this.#motoUrl = opts.motoUrl;
    this.#accessKeyId = opts.credentials.accessKeyId;
    this.#settings = opts.settings;
    this.#now = opts.now ?? Date.now;
  }

  /** Answers ListSecrets while the lag is on; records a region before its first change is forwarded. */
  readonly interceptor: Interceptor = async (req) => {
    const lag = this.#settings.listSecretsLagMs;
    if (lag <= 0) {
      if (this.#regions.size > 0) this.#forget();
      return undefined;
    }
    if (req.service !== 'secretsmanager') return undefined;
    if (req.operation !== 'ListSecrets') {
      if (!READS.test(req.operation ?? '') && !this.#regions.has(req.region)) await this.#sync(req.region);
      return undefined;
    }
    const body = jsonBody(req);
    if (body.Filters !== undefined) return undefined;
    const refused = refuseListSecrets(body);
    if (refused) return refused;
    let asOf: number;
    let offset = 0;
    if (body.NextToken !== undefined) {
      const token = decodeToken(body.NextToken);
      if (!token) return invalidNextToken();
      ({ asOf, offset } = token);
    } else {
      await this.#sync(req.region);
      asOf = this.#now() - lag;
    }
    const listed = this.#asOf(req.region, asOf, body.IncludePlannedDeletion === true);
    const size = Number(body.MaxResults ?? LIST_SECRETS_DEFAULT);
    const page = listed.slice(offset, offset + size);
    const more = offset + size < listed.length;
    return jsonAnswer({
      SecretList: page,
      ...(more ? { NextToken: encodeToken({ asOf, offset: offset + size }) } : {}),
    });
  };

  /** Records the secret a forwarded change touched, as moto shows it now. */
  readonly observer: Observer = async (req, res) => {
    if (this.#settings.listSecretsLagMs <= 0 || req.service !== 'secretsmanager' || res.status !== 200)
      return;
    if (READS.test(req.operation ?? '')) return;
    const id = changedSecret(req, res);
    if (!id) return;
    const at = this.#now();
    if (!this.#regions.has(req.region)) await this.#sync(req.region);
    const out = await this.#moto(req.region, 'DescribeSecret', { SecretId: id });
    if (out.status === 200) {
      const entry = listedSecret(out.json);
      this.#record(String(entry.ARN), entry, at);
      return;
    }
    const arn = this.#arnOf(id);
    if (arn) this.#record(arn, undefined, at);
  };

  /** The region's listing as it stood at `asOf`. */
  #asOf(region: string, asOf: number, includePlannedDeletion: boolean): Entry[] {
    const out: Entry[] = [];
    for (const [arn, snapshots] of this.#history) {
      if (regionOf(arn) !== region) continue;
      const then = snapshots.findLast((s) => s.at <= asOf)?.entry;
      if (!then || (then.DeletedDate !== undefined && !includePlannedDeletion)) continue;
      out.push(then);
    }
    return out;
  }

  /** Compares moto's list of the region with what was recorded; the differences began now. */
  async #sync(region: string): Promise<void> {
    const now = this.#now();
    const current = new Map<string, Entry>();
    let NextToken: unknown;
    do {
      const out = await this.#moto(region, 'ListSecrets', {
        IncludePlannedDeletion: true,
        MaxResults: PAGE_MAX.secrets,
        ...(NextToken ? { NextToken } : {}),
      });
      if (out.status !== 200)
        throw new Error(`ListSecrets at moto: ${out.status} ${JSON.stringify(out.json)}`);
      for (const raw of (out.json.SecretList ?? []) as Entry[]) {
        const entry = listedSecret(raw);
        current.set(String(entry.ARN), entry);
      }
      NextToken = out.json.NextToken;
    } while (NextToken);
    const known = this.#regions.has(region);
    for (const [arn, entry] of current) {
      if (this.#history.has(arn)) this.#record(arn, entry, now);
      else {
        // Seen for the first time: there since it was created if this is the region's first look, else
        // (created straight at moto while we watched) since now.
        const created = Number(entry.CreatedDate) * 1000;
        const since = !known && Number.isFinite(created) ? Math.min(created, now) : now;
        this.#history.set(arn, [{ at: since, entry }]);
      }
    }
    for (const arn of this.#history.keys())
      if (regionOf(arn) === region && !current.has(arn)) this.#record(arn, undefined, now);
    this.#regions.add(region);
  }

  #record(arn: string, entry: Entry | undefined, at: number): void {
    const snapshots = this.#history.get(arn);
    if (!snapshots) {
      if (entry) this.#history.set(arn, [{ at, entry }]);
      return;
    }
    const last = snapshots.at(-1)!;
    if (sameEntry(last.entry, entry)) return;
    snapshots.push({ at: Math.max(at, last.at), ...(entry ? { entry } : {}) });
  }

  /** The recorded ARN a SecretId names: a full ARN, a partial ARN (no random suffix) or a name. */
  #arnOf(id: string): string | undefined {
    for (const [arn, snapshots] of this.#history) {
      const name = snapshots.findLast((s) => s.entry)?.entry?.Name;
      if (arn === id || arn.startsWith(`${id}-`) || name === id) return arn;
    }
    return undefined;
  }

  #forget(): void {
    this.#history.clear();
    this.#regions.clear();
  }

  /** A Secrets Manager call straight at moto (no front door: nothing recorded, nothing routed). */
  async #moto(region: string, operation: string, body: unknown): Promise<{ status: number; json: Entry }> {
    const res = await fetch(this.#motoUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `secretsmanager.${operation}`,
        // moto reads the account and region from the credential scope and checks no signature.
        authorization: `AWS4-HMAC-SHA256 Credential=${this.#accessKeyId}/20250101/${region}/secretsmanager/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Entry };
  }
}

/** The secret a change named: the ARN moto answered with, else the request's SecretId (or Name). */
function changedSecret(req: AwsRequest, res: AwsResponse): string | undefined {
  try {
    const arn = (JSON.parse(res.body.toString() || '{}') as { ARN?: unknown }).ARN;
    if (typeof arn === 'string') return arn;
  } catch {
    // not JSON: the request names it
  }
  const b = jsonBody(req);
  const id = b.SecretId ?? b.Name;
  return typeof id === 'string' ? id : undefined;
}

interface Token {
  asOf: number;
  offset: number;
}
const encodeToken = (t: Token) => Buffer.from(JSON.stringify(t)).toString('base64url');
function decodeToken(v: unknown): Token | undefined {
  try {
    const t = JSON.parse(Buffer.from(String(v), 'base64url').toString('utf8')) as Partial<Token>;
    return Number.isFinite(t.asOf) && Number.isInteger(t.offset) && (t.offset ?? -1) >= 0
      ? (t as Token)
      : undefined;
  } catch {
    return undefined;
  }
}
