import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  DescribeLogGroupsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { EventBridgeClient, ListRulesCommand, PutRuleCommand } from '@aws-sdk/client-eventbridge';
import {
  CreatePolicyCommand,
  CreateRoleCommand,
  GetRoleCommand,
  IAMClient,
  ListRolesCommand,
} from '@aws-sdk/client-iam';
import {
  CreateFunctionCommand,
  GetFunctionCommand,
  LambdaClient,
  ListFunctionsCommand,
  paginateListFunctions,
} from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  paginateListSecrets,
  SecretsManagerClient,
  TagResourceCommand,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FrontDoor, startFrontDoor } from './front-door.ts';
import { listFidelity } from './list-fidelity.ts';
import { startMoto } from './moto.ts';
import { ListSecretsLag } from './secrets-list-lag.ts';
import { LAMBDA_TRUST, makeZip } from './test-front-door.ts';
import { defaultUnkindSettings, setUnkind, unkindControl } from './unkind.ts';

const REGION = 'eu-west-1';
const CREDENTIALS = { accessKeyId: 'AKIALISTFIDELITY0001', secretAccessKey: 'x' };

const LAG_REGION = 'us-west-2';
// Long enough for the checks made "at once" to stay within it on a busy machine.
const LAG = 3000;
/** When the secrets the lag test finds already there were created. */
let lagSecretsCreated: number;

let dir: string;
let moto: { url: string; stop(): Promise<void> };
let frontDoor: FrontDoor;
const settings = defaultUnkindSettings();

// Clients through the front door (what the product sees) and straight at moto (setup).
const clients: { destroy(): void }[] = [];
function client<T extends { destroy(): void }>(
  Ctor: new (c: object) => T,
  opts: { region?: string; direct?: boolean } = {},
): T {
  const c = new Ctor({
    endpoint: opts.direct ? moto.url : frontDoor.url,
    region: opts.region ?? REGION,
    credentials: CREDENTIALS,
    maxAttempts: 1,
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'list-fidelity-'));
  moto = await startMoto({ logsDir: dir });
  frontDoor = await startFrontDoor({ motoUrl: moto.url });
  // Mounted as index.ts mounts them: the lag answers ListSecrets first while it is set.
  const lag = new ListSecretsLag({ motoUrl: moto.url, credentials: CREDENTIALS, settings });
  frontDoor.use(lag.interceptor);
  frontDoor.observe(lag.observer);
  frontDoor.use(listFidelity({ motoUrl: moto.url }));
  frontDoor.control('/_testbed/unkind', unkindControl(settings, defaultUnkindSettings()));
  // Early, so that they are older than the lag by the time its test runs.
  const direct = client(SecretsManagerClient, { region: LAG_REGION, direct: true });
  for (const Name of ['lag-old', 'lag-gone', 'lag-soft'])
    await direct.send(new CreateSecretCommand({ Name, SecretString: 'v1' }));
  lagSecretsCreated = Date.now();
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.destroy();
  await frontDoor?.close();
  await moto?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `n` creations, a few at a time (moto is one process on a busy machine). */
async function times(n: number, create: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += 8) {
    await Promise.all(Array.from({ length: Math.min(8, n - i) }, (_, j) => create(i + j)));
  }
}

const pad = (i: number) => String(i).padStart(3, '0');

async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the call to fail');
}

const tooBig = (v: number, member: string, max: number) =>
  `1 validation error detected: Value '${v}' at '${member}' failed to satisfy constraint: Member must have value less than or equal to ${max}`;
const tooSmall = (v: number, member: string) =>
  `1 validation error detected: Value '${v}' at '${member}' failed to satisfy constraint: Member must have value greater than or equal to 1`;

const authorization = (service: string, region = REGION) =>
  `AWS4-HMAC-SHA256 Credential=${CREDENTIALS.accessKeyId}/20250101/${region}/${service}/aws4_request, SignedHeaders=host, Signature=0`;

/** A JSON-protocol call through the front door, answered as it is on the wire. */
async function rawJson(service: string, target: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(frontDoor.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': target,
      authorization: authorization(service),
    },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

const callsOf = (operation: string) => frontDoor.calls().filter((c) => c.operation === operation).length;

describe('ListSecrets', () => {
  let sm: SecretsManagerClient;

  beforeAll(async () => {
    sm = client(SecretsManagerClient);
    const direct = client(SecretsManagerClient, { direct: true });
    await direct.send(
      new CreateSecretCommand({
        Name: 'ls-tagged',
        SecretString: 'v',
        KmsKeyId: 'alias/custom',
        Tags: [{ Key: 'team', Value: 'a' }],
      }),
    );
    await times(100, (i) =>
      direct.send(new CreateSecretCommand({ Name: `ls-${pad(i)}`, SecretString: 'v' })),
    );
    await direct.send(new DeleteSecretCommand({ SecretId: 'ls-000', RecoveryWindowInDays: 7 }));
  }, 60_000);

  it('pages 100 at most, refuses MaxResults outside 1..100 and tokens it never gave', async () => {
    frontDoor.resetCalls();
    let listed = 0;
    for await (const page of paginateListSecrets(
      { client: sm, pageSize: 100 },
      { IncludePlannedDeletion: true },
    ))
      listed += page.SecretList?.length ?? 0;
    expect(listed).toBe(101);
    expect(callsOf('ListSecrets')).toBe(2);
    expect((await sm.send(new ListSecretsCommand({}))).SecretList).toHaveLength(100);

    expect(await failure(sm.send(new ListSecretsCommand({ MaxResults: 101 })))).toEqual({
      name: 'ValidationException',
      status: 400,
      message: tooBig(101, 'maxResults', 100),
    });
    expect((await failure(sm.send(new ListSecretsCommand({ MaxResults: 0 })))).message).toBe(
      tooSmall(0, 'maxResults'),
    );
    expect(await failure(sm.send(new ListSecretsCommand({ NextToken: 'garbage' })))).toMatchObject({
      name: 'InvalidNextTokenException',
      status: 400,
    });
  });

  it("shows ListSecrets' fields: stages, tags, dates, the KMS key; deleted ones only when asked", async () => {
    const all = (await rawJson('secretsmanager', 'secretsmanager.ListSecrets', {
      IncludePlannedDeletion: true,
      MaxResults: 100,
    })) as { SecretList: Record<string, unknown>[] };
    const tagged = all.SecretList.find((s) => s.Name === 'ls-tagged')!;
    expect(tagged).toMatchObject({
      KmsKeyId: 'alias/custom',
      Tags: [{ Key: 'team', Value: 'a' }],
      SecretVersionsToStages: expect.any(Object),
      LastChangedDate: expect.any(Number),
      CreatedDate: expect.any(Number),
    });
    expect(Object.values(tagged.SecretVersionsToStages as object)).toEqual([['AWSCURRENT']]);
    // DescribeSecret's name for the stages, and nulls, are not on the wire.
    expect(tagged).not.toHaveProperty('VersionIdsToStages');
    for (const s of all.SecretList) expect(Object.values(s)).not.toContain(null);
    expect(all.SecretList.find((s) => s.Name === 'ls-000')).toMatchObject({
      DeletedDate: expect.any(Number),
    });

    const live = await sm.send(new ListSecretsCommand({ MaxResults: 100 }));
    expect(live.SecretList).toHaveLength(100);
    expect(live.NextToken).toBeUndefined();
    expect(live.SecretList?.map((s) => s.Name)).not.toContain('ls-000');
  });
});

describe('ListRules', () => {
  let events: EventBridgeClient;

  beforeAll(async () => {
    events = client(EventBridgeClient);
    const direct = client(EventBridgeClient, { direct: true });
    const pattern = '{"source":["aws.secretsmanager"]}';
    await times(101, (i) => direct.send(new PutRuleCommand({ Name: `lr-${pad(i)}`, EventPattern: pattern })));
    for (const Name of ['dot.x', 'dotzx'])
      await direct.send(new PutRuleCommand({ Name, EventPattern: pattern }));
  }, 60_000);

  it('pages 100 when no Limit is given, refuses a Limit outside 1..100', async () => {
    const first = await events.send(new ListRulesCommand({ NamePrefix: 'lr-' }));
    expect(first.Rules).toHaveLength(100);
    const rest = await events.send(new ListRulesCommand({ NamePrefix: 'lr-', NextToken: first.NextToken }));
    expect(rest.Rules?.map((r) => r.Name)).toEqual(['lr-100']);
    expect(rest.NextToken).toBeUndefined();
    expect((await events.send(new ListRulesCommand({ NamePrefix: 'lr-', Limit: 100 }))).Rules).toHaveLength(
      100,
    );

    expect(await failure(events.send(new ListRulesCommand({ Limit: 101 })))).toEqual({
      name: 'ValidationException',
      status: 400,
      message: tooBig(101, 'limit', 100),
    });
    expect((await failure(events.send(new ListRulesCommand({ Limit: 0 })))).message).toBe(
      tooSmall(0, 'limit'),
    );
  });

  it('matches NamePrefix as a prefix and shows no CreatedBy', async () => {
    const out = (await rawJson('events', 'AWSEvents.ListRules', { NamePrefix: 'dot.' })) as {
      Rules: Record<string, unknown>[];
    };
    expect(out.Rules.map((r) => r.Name)).toEqual(['dot.x']);
    expect(out.Rules[0]).toMatchObject({
      Arn: expect.any(String),
      EventPattern: expect.any(String),
      State: 'ENABLED',
    });
    expect(out.Rules[0]).not.toHaveProperty('CreatedBy');
  });
});

describe('ListFunctions', () => {
  let lambda: LambdaClient;

  beforeAll(async () => {
    lambda = client(LambdaClient);
    const iam = client(IAMClient, { direct: true });
    const { Role } = await iam.send(
      new CreateRoleCommand({ RoleName: 'lf-role', AssumeRolePolicyDocument: LAMBDA_TRUST }),
    );
    const direct = client(LambdaClient, { direct: true });
    const zip = makeZip({ 'index.mjs': 'export const handler = async () => 1;' });
    // Created out of order: pages come in name order all the same.
    await times(52, (i) =>
      direct.send(
        new CreateFunctionCommand({
          FunctionName: `lf-${pad(51 - i)}`,
          Runtime: 'nodejs22.x',
          Handler: 'index.handler',
          Role: Role!.Arn!,
          Code: { ZipFile: zip },
        }),
      ),
    );
  }, 60_000);

  it('pages 50 at most whatever MaxItems says, with markers; refuses MaxItems outside 1..10000', async () => {
    const first = await lambda.send(new ListFunctionsCommand({ MaxItems: 1000 }));
    expect(first.Functions).toHaveLength(50);
    expect(first.NextMarker).toBeDefined();
    const rest = await lambda.send(new ListFunctionsCommand({ Marker: first.NextMarker }));
    expect(rest.Functions?.map((f) => f.FunctionName)).toEqual(['lf-050', 'lf-051']);
    expect(rest.NextMarker).toBeUndefined();

    frontDoor.resetCalls();
    const names: string[] = [];
    for await (const page of paginateListFunctions({ client: lambda, pageSize: 10 }, {}))
      names.push(...(page.Functions ?? []).map((f) => f.FunctionName!));
    expect(names).toEqual(Array.from({ length: 52 }, (_, i) => `lf-${pad(i)}`));
    expect(callsOf('ListFunctions')).toBe(6);

    for (const [v, message] of [
      [0, tooSmall(0, 'maxItems')],
      [10_001, tooBig(10_001, 'maxItems', 10_000)],
    ] as const) {
      expect(await failure(lambda.send(new ListFunctionsCommand({ MaxItems: v })))).toEqual({
        name: 'ValidationException',
        status: 400,
        message,
      });
    }
  });

  it('leaves State, LastUpdateStatus and the like to GetFunction', async () => {
    const res = await fetch(`${frontDoor.url}/2015-03-31/functions/?MaxItems=1`, {
      headers: { authorization: authorization('lambda') },
    });
    const { Functions } = (await res.json()) as { Functions: Record<string, unknown>[] };
    expect(Functions[0]).toMatchObject({
      FunctionName: 'lf-000',
      Runtime: 'nodejs22.x',
      CodeSize: expect.any(Number),
    });
    for (const field of [
      'State',
      'StateReason',
      'StateReasonCode',
      'LastUpdateStatus',
      'RuntimeVersionConfig',
    ])
      expect(Functions[0], field).not.toHaveProperty(field);
    expect(Object.values(Functions[0]!)).not.toContain(null);
    const got = await lambda.send(new GetFunctionCommand({ FunctionName: 'lf-000' }));
    expect(got.Configuration).toMatchObject({ State: 'Active', LastUpdateStatus: 'Successful' });
  });
});

describe('DescribeLogGroups and ListRoles', () => {
  it('DescribeLogGroups: limit 1..50, else InvalidParameterException', async () => {
    const logs = client(CloudWatchLogsClient);
    await logs.send(new CreateLogGroupCommand({ logGroupName: '/aws/lambda/lg-a' }));
    const out = await logs.send(
      new DescribeLogGroupsCommand({ logGroupNamePrefix: '/aws/lambda/lg-', limit: 50 }),
    );
    expect(out.logGroups?.map((g) => g.logGroupName)).toEqual(['/aws/lambda/lg-a']);
    for (const [limit, message] of [
      [0, tooSmall(0, 'limit')],
      [51, tooBig(51, 'limit', 50)],
    ] as const) {
      expect(await failure(logs.send(new DescribeLogGroupsCommand({ limit })))).toEqual({
        name: 'InvalidParameterException',
        status: 400,
        message,
      });
    }
  });

  it('ListRoles: MaxItems 1..1000, trust policy URL-encoded, no boundary, tags or last use', async () => {
    const iam = client(IAMClient);
    const { Policy } = await iam.send(
      new CreatePolicyCommand({
        PolicyName: 'lr-boundary',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
        }),
      }),
    );
    await iam.send(
      new CreateRoleCommand({
        RoleName: 'lr-role',
        Path: '/lr/',
        AssumeRolePolicyDocument: LAMBDA_TRUST,
        PermissionsBoundary: Policy!.Arn,
        Tags: [{ Key: 'team', Value: 'a' }],
      }),
    );
    const { Roles } = await iam.send(new ListRolesCommand({ PathPrefix: '/lr/', MaxItems: 1000 }));
    expect(Roles).toHaveLength(1);
    const [role] = Roles!;
    expect(role!.AssumeRolePolicyDocument).toMatch(/^%7B%22Version%22%3A/);
    expect(JSON.parse(decodeURIComponent(role!.AssumeRolePolicyDocument!))).toEqual(JSON.parse(LAMBDA_TRUST));
    // As GetRole has it (moto encodes there already).
    const { Role: got } = await iam.send(new GetRoleCommand({ RoleName: 'lr-role' }));
    expect(role!.AssumeRolePolicyDocument).toBe(got!.AssumeRolePolicyDocument);
    expect(got!.PermissionsBoundary).toBeDefined();
    for (const field of ['PermissionsBoundary', 'Tags', 'RoleLastUsed'])
      expect(role, field).not.toHaveProperty(field);

    for (const [v, message] of [
      [0, tooSmall(0, 'maxItems')],
      [1001, tooBig(1001, 'maxItems', 1000)],
    ] as const) {
      expect(await failure(iam.send(new ListRolesCommand({ MaxItems: v })))).toEqual({
        name: 'ValidationError',
        status: 400,
        message,
      });
    }
  });
});

describe('ListSecrets lag', () => {
  const region = LAG_REGION;
  let sm: SecretsManagerClient;
  let direct: SecretsManagerClient;
  const listed = async (o: { IncludePlannedDeletion?: boolean } = {}) => {
    const out = await sm.send(new ListSecretsCommand({ ...o, MaxResults: 100 }));
    return new Map((out.SecretList ?? []).map((s) => [s.Name!, s]));
  };

  beforeAll(async () => {
    sm = client(SecretsManagerClient, { region });
    direct = client(SecretsManagerClient, { region, direct: true });
    await sleep(Math.max(0, lagSecretsCreated + LAG - Date.now()));
  });

  it('answers as things were L ms ago; DescribeSecret and everything else see the present', async () => {
    await setUnkind(frontDoor.url, { listSecretsLagMs: LAG });
    // What was there before the lag was set counts as there since it was created: listed at once.
    expect([...(await listed()).keys()].sort()).toEqual(['lag-gone', 'lag-old', 'lag-soft']);

    await sm.send(new CreateSecretCommand({ Name: 'lag-new', SecretString: 'v' }));
    await sm.send(new TagResourceCommand({ SecretId: 'lag-old', Tags: [{ Key: 'k', Value: 'v2' }] }));
    await sm.send(new PutSecretValueCommand({ SecretId: 'lag-old', SecretString: 'v2' }));
    await sm.send(new DeleteSecretCommand({ SecretId: 'lag-gone', ForceDeleteWithoutRecovery: true }));
    await sm.send(new DeleteSecretCommand({ SecretId: 'lag-soft', RecoveryWindowInDays: 7 }));
    // Straight at moto, past the front door: noticed at the next listing, late from then on.
    await direct.send(new CreateSecretCommand({ Name: 'lag-sneaky', SecretString: 'v' }));

    const before = await listed();
    const sneakyNoticed = Date.now();
    expect([...before.keys()].sort()).toEqual(['lag-gone', 'lag-old', 'lag-soft']);
    expect(before.get('lag-old')?.Tags ?? []).toEqual([]);
    expect(Object.keys(before.get('lag-old')?.SecretVersionsToStages ?? {})).toHaveLength(1);
    expect(before.get('lag-soft')?.DeletedDate).toBeUndefined();
    const now = await sm.send(new DescribeSecretCommand({ SecretId: 'lag-old' }));
    expect(now.Tags).toEqual([{ Key: 'k', Value: 'v2' }]);

    // Every page of one listing shows the same moment.
    const first = await sm.send(new ListSecretsCommand({ MaxResults: 2 }));
    const second = await sm.send(new ListSecretsCommand({ MaxResults: 2, NextToken: first.NextToken }));
    expect([...(first.SecretList ?? []), ...(second.SecretList ?? [])].map((s) => s.Name).sort()).toEqual([
      'lag-gone',
      'lag-old',
      'lag-soft',
    ]);
    expect(second.NextToken).toBeUndefined();

    await sleep(Math.max(0, sneakyNoticed + LAG + 300 - Date.now()));
    const after = await listed();
    expect([...after.keys()].sort()).toEqual(['lag-new', 'lag-old', 'lag-sneaky']);
    expect(after.get('lag-old')?.Tags).toEqual([{ Key: 'k', Value: 'v2' }]);
    expect(Object.keys(after.get('lag-old')?.SecretVersionsToStages ?? {})).toHaveLength(2);
    expect((await listed({ IncludePlannedDeletion: true })).get('lag-soft')?.DeletedDate).toBeInstanceOf(
      Date,
    );

    // Off: the present at once.
    await sm.send(new CreateSecretCommand({ Name: 'lag-last', SecretString: 'v' }));
    await setUnkind(frontDoor.url, { listSecretsLagMs: 0 });
    expect([...(await listed()).keys()].sort()).toEqual(['lag-last', 'lag-new', 'lag-old', 'lag-sneaky']);
  });

  it('refuses what AWS refuses while late, and a negative lag', async () => {
    await setUnkind(frontDoor.url, { listSecretsLagMs: LAG });
    try {
      expect((await failure(sm.send(new ListSecretsCommand({ MaxResults: 101 })))).name).toBe(
        'ValidationException',
      );
      expect((await failure(sm.send(new ListSecretsCommand({ NextToken: '100' })))).name).toBe(
        'InvalidNextTokenException',
      );
    } finally {
      await setUnkind(frontDoor.url, { listSecretsLagMs: 0 });
    }
    await expect(setUnkind(frontDoor.url, { listSecretsLagMs: -1 })).rejects.toThrow(/400/);
  });
});
