import { GetRoleCommand } from '@aws-sdk/client-iam';
import { HttpResponse } from '@smithy/protocol-http';
import { describe, expect, it } from 'vitest';
import { createAwsClients } from './clients.ts';
import { type AwsService, DEFAULT_RATE_LIMITS, RateLimiters } from './rate-limit.ts';

/** Records every reservation; never makes anyone wait. */
class RecordingLimiters extends RateLimiters {
  readonly reserved: string[] = [];
  constructor() {
    super(DEFAULT_RATE_LIMITS);
  }
  override reserve(service: AwsService, region: string): number {
    this.reserved.push(`${service}/${region}`);
    return 0;
  }
}

describe('AWS clients (no network: a stub HTTP handler)', () => {
  it('every attempt, retries included, takes a token of its service and region', async () => {
    const limiters = new RecordingLimiters();
    const clients = createAwsClients({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      limiters,
    });
    let attempts = 0;
    const xml = (status: number, body: string) =>
      new HttpResponse({
        statusCode: status,
        headers: { 'content-type': 'text/xml' },
        body: Buffer.from(body),
      });
    clients.iam.config.requestHandler = {
      handle: async () => {
        attempts++;
        // A 500 twice (the SDK retries it after ~50-100 ms), then the role.
        const response =
          attempts < 3
            ? xml(
                500,
                '<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>x</Message></Error></ErrorResponse>',
              )
            : xml(
                200,
                '<GetRoleResponse><GetRoleResult><Role><RoleName>r</RoleName><Arn>arn:aws:iam::123456789012:role/r</Arn><Path>/</Path><RoleId>AROAEXAMPLE</RoleId><CreateDate>2024-01-01T00:00:00Z</CreateDate></Role></GetRoleResult></GetRoleResponse>',
              );
        return { response };
      },
    } as typeof clients.iam.config.requestHandler;
    const out = await clients.iam.send(new GetRoleCommand({ RoleName: 'r' }));
    expect(out.Role?.RoleName).toBe('r');
    expect(attempts).toBe(3);
    expect(limiters.reserved).toEqual(['iam/eu-west-1', 'iam/eu-west-1', 'iam/eu-west-1']);
  });

  it('without limiters, no rate-limit middleware at all', () => {
    const plain = createAwsClients({ region: 'eu-west-1' });
    const limited = createAwsClients({ region: 'eu-west-1', limiters: new RecordingLimiters() });
    for (const key of Object.keys(plain) as (keyof typeof plain)[]) {
      const names = (c: (typeof plain)[typeof key]) =>
        (c.middlewareStack as { identify: () => string[] }).identify().join('\n');
      expect(names(plain[key])).not.toContain('secretsyncRateLimit');
      expect(names(limited[key])).toContain('secretsyncRateLimit');
    }
  });
});
