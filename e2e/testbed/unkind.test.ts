import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAccessEntryCommand, CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  CreateEventBusCommand,
  DeleteRuleCommand,
  EventBridgeClient,
  ListRulesCommand,
  PutRuleCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateRoleCommand,
  DeleteRoleCommand,
  IAMClient,
  ListRolesCommand,
  PutRolePolicyCommand,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import {
  AddPermissionCommand,
  CreateFunctionCommand,
  GetFunctionConfigurationCommand,
  GetPolicyCommand,
  LambdaClient,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eksToken } from '../../src/lambda/eks-token.ts';
import { defaultAccountSettings, quotaValue } from './aws-account.ts';
import { AccessEntryStore, createEksInterceptor } from './eks-access-entries.ts';
import { authenticateEksToken } from './eks-authenticator.ts';
import { type FrontDoor, startFrontDoor } from './front-door.ts';
import { IamPropagation } from './iam-propagation.ts';
import { CANNOT_ASSUME, lambdaChecks, lambdaMayAssume } from './lambda-checks.ts';
import { startMoto } from './moto.ts';
import { quotas, ROLES_QUOTA, RULES_QUOTA } from './quotas.ts';
import { LAMBDA_TRUST, makeZip } from './test-front-door.ts';
import {
  defaultUnkindSettings,
  getUnkind,
  initialUnkindSettings,
  resetUnkind,
  setUnkind,
  UNKIND_ENV,
  type UnkindSettings,
  unkindControl,
} from './unkind.ts';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const ADMIN = { accessKeyId: 'AKIAUNKINDADMIN00001', secretAccessKey: 'x' };
const ZIP = makeZip({ 'index.mjs': 'export const handler = async () => ({ ran: true });' });
const EC2_TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});
/** Short delays for the tests: denied before, allowed after, no long sleeps. */
const WINDOW: Pick<UnkindSettings, 'iamPropagationMs' | 'accessEntryPropagationMs'> = {
  iamPropagationMs: [400, 400],
  accessEntryPropagationMs: [400, 400],
};

let dir: string;
let moto: { url: string; stop(): Promise<void> };
let frontDoor: FrontDoor;
const settings = defaultUnkindSettings();
const account = defaultAccountSettings();
const entries = new AccessEntryStore();
let propagation: IamPropagation;
let iam: IAMClient;
let lambda: LambdaClient;
let events: EventBridgeClient;
let eks: EKSClient;
let sm: SecretsManagerClient;
let sts: STSClient;
let motoIam: IAMClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'unkind-'));
  moto = await startMoto({ logsDir: dir });
  frontDoor = await startFrontDoor({ motoUrl: moto.url });
  // Wired as index.ts wires them.
  propagation = new IamPropagation({ settings, motoUrl: moto.url, credentials: ADMIN });
  frontDoor.observe(propagation.observer);
  frontDoor.use(propagation.interceptor);
  frontDoor.use(
    createEksInterceptor({ motoUrl: moto.url, accountId: ACCOUNT, store: entries, credentials: ADMIN }),
  );
  const quota = quotas({ motoUrl: moto.url, region: REGION, credentials: ADMIN, settings: account });
  frontDoor.use(quota.interceptor);
  frontDoor.observe(quota.observer);
  const checks = lambdaChecks({
    motoUrl: moto.url,
    accountId: ACCOUNT,
    credentials: ADMIN,
    settings,
    propagation,
  });
  frontDoor.use(checks.interceptor);
  frontDoor.observe(checks.observer);
  frontDoor.control('/_testbed/unkind', unkindControl(settings, defaultUnkindSettings()));

  const config = { endpoint: frontDoor.url, region: REGION, credentials: ADMIN, maxAttempts: 1 };
  iam = new IAMClient(config);
  lambda = new LambdaClient(config);
  events = new EventBridgeClient(config);
  eks = new EKSClient(config);
  sm = new SecretsManagerClient(config);
  sts = new STSClient(config);
  motoIam = new IAMClient({ ...config, endpoint: moto.url });
}, 60_000);

afterEach(async () => {
  await resetUnkind(frontDoor.url);
  Object.assign(account, defaultAccountSettings());
});

afterAll(async () => {
  for (const c of [iam, lambda, events, eks, sm, sts, motoIam]) c?.destroy();
  await frontDoor?.close();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The SDK error as the product sees it. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the call to fail');
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cannotAssume = { name: 'InvalidParameterValueException', status: 400, message: CANNOT_ASSUME };

let serial = 0;
const unique = (prefix: string) => `${prefix}-${++serial}`;
async function role(name: string, trust = LAMBDA_TRUST): Promise<string> {
  const { Role } = await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trust }));
  return Role!.Arn!;
}
const createFn = (name: string, roleArn: string, variables?: Record<string, string>) =>
  lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs24.x',
      Role: roleArn,
      Handler: 'index.handler',
      Code: { ZipFile: ZIP },
      ...(variables ? { Environment: { Variables: variables } } : {}),
    }),
  );

describe('Lambda limits (always on)', () => {
  it('refuses an environment whose JSON is over 4 KB, measured as Lambda measures it', async () => {
    const arn = await role(unique('env'));
    // {"A":"xxx…"}: 8 bytes of JSON around the value.
    const fits = { A: 'x'.repeat(4096 - 8) };
    expect(JSON.stringify(fits)).toHaveLength(4096);
    await createFn(unique('env-fits'), arn, fits);
    const over = { A: 'x'.repeat(4096 - 7) };
    const name = unique('env-over');
    expect(await failure(createFn(name, arn, over))).toEqual({
      name: 'InvalidParameterValueException',
      status: 400,
      message: `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${JSON.stringify(over)}`,
    });
    // The same on an update, and the function keeps its environment.
    const fn = unique('env-update');
    await createFn(fn, arn, { SMALL: '1' });
    const big = { A: 'a'.repeat(3000), B: 'b'.repeat(1200) };
    expect(
      await failure(
        lambda.send(
          new UpdateFunctionConfigurationCommand({ FunctionName: fn, Environment: { Variables: big } }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidParameterValueException', status: 400 });
    const config = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }));
    expect(config.Environment?.Variables).toEqual({ SMALL: '1' });
  });

  it('refuses AddPermission once the function policy would pass 20 KB', async () => {
    const fn = unique('policy');
    await createFn(fn, await role(unique('policy')));
    const add = (n: number) =>
      lambda.send(
        new AddPermissionCommand({
          FunctionName: fn,
          StatementId: `s-${n}`,
          Action: 'lambda:InvokeFunction',
          Principal: 'events.amazonaws.com',
          SourceArn: `arn:aws:events:${REGION}:${ACCOUNT}:rule/${'r'.repeat(200)}-${n}`,
        }),
      );
    let n = 0;
    let size = 0;
    for (;;) {
      const err = await add(++n).then(
        () => undefined,
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => e,
      );
      if (err) {
        expect(err.name).toBe('PolicyLengthExceededException');
        expect(err.$metadata?.httpStatusCode).toBe(400);
        const m = /^The final policy size \((\d+)\) is bigger than the limit \(20480\)\.$/.exec(err.message);
        expect(m, err.message).not.toBeNull();
        const final = Number(m![1]);
        expect(final).toBeGreaterThan(20_480);
        // What moto holds now plus one statement of the same shape.
        expect(final - size).toBeGreaterThan(300);
        expect(final - size).toBeLessThan(500);
        break;
      }
      size = Buffer.byteLength(
        JSON.stringify(JSON.parse((await lambda.send(new GetPolicyCommand({ FunctionName: fn }))).Policy!)),
      );
      expect(n).toBeLessThan(100);
    }
    expect(n).toBeGreaterThan(40);
    // The refused statement is not there.
    const { Policy } = await lambda.send(new GetPolicyCommand({ FunctionName: fn }));
    expect(JSON.parse(Policy!).Statement).toHaveLength(n - 1);
  });
});

describe('roles Lambda cannot assume (always on)', () => {
  it('refuses a role named in unassumableRoles, on create and on update', async () => {
    const blocked = await role(unique('team-blocked'));
    const fine = await role(unique('team-fine'));
    const fn = unique('assume');
    await createFn(fn, blocked); // the list is empty by default
    await setUnkind(frontDoor.url, { unassumableRoles: ['blocked'] });
    expect(await failure(createFn(unique('assume'), blocked))).toEqual(cannotAssume);
    expect(
      await failure(lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Role: blocked }))),
    ).toEqual(cannotAssume);
    await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Role: fine }));
    await createFn(unique('assume'), fine);
  });

  it('refuses a role whose trust policy does not let Lambda assume it', async () => {
    const name = unique('ec2-only');
    const arn = await role(name, EC2_TRUST);
    expect(await failure(createFn(unique('trust'), arn))).toEqual(cannotAssume);
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: name, PolicyDocument: LAMBDA_TRUST }));
    await createFn(unique('trust'), arn);
    // A role made straight at moto (never seen passing) is read from moto.
    const direct = unique('direct');
    const { Role } = await motoIam.send(
      new CreateRoleCommand({ RoleName: direct, AssumeRolePolicyDocument: EC2_TRUST }),
    );
    expect(await failure(createFn(unique('trust'), Role!.Arn!))).toEqual(cannotAssume);
  });

  it('reads trust policies as IAM does', () => {
    const allow = (Principal: unknown, Action: unknown = 'sts:AssumeRole', Effect = 'Allow') => ({
      Statement: [{ Effect, Principal, Action }],
    });
    expect(lambdaMayAssume(JSON.parse(LAMBDA_TRUST))).toBe(true);
    expect(lambdaMayAssume(allow({ Service: ['ec2.amazonaws.com', 'lambda.amazonaws.com'] }))).toBe(true);
    expect(lambdaMayAssume(allow('*', ['sts:TagSession', 'sts:*']))).toBe(true);
    expect(lambdaMayAssume(allow({ Service: 'lambda.amazonaws.com' }, 'sts:AssumeRoleWithWebIdentity'))).toBe(
      false,
    );
    expect(lambdaMayAssume(allow({ AWS: `arn:aws:iam::${ACCOUNT}:root` }))).toBe(false);
    expect(lambdaMayAssume({})).toBe(false);
    expect(
      lambdaMayAssume({
        Statement: [
          ...allow('*').Statement,
          ...allow({ Service: 'lambda.amazonaws.com' }, '*', 'Deny').Statement,
        ],
      }),
    ).toBe(false);
  });
});

describe('IAM propagation', () => {
  it('is off by default: a role is usable the moment it exists', async () => {
    expect((await getUnkind(frontDoor.url)).enabled).toBe(false);
    const name = unique('instant');
    const arn = await role(name);
    await createFn(unique('instant'), arn);
    await iam.send(
      new PutRolePolicyCommand({ RoleName: name, PolicyName: 'read', PolicyDocument: readPolicy('*') }),
    );
    const creds = await assume(arn);
    const secret = await newSecret();
    await secretsAs(creds).send(new GetSecretValueCommand({ SecretId: secret.name }));
  });

  it('Lambda cannot assume a new role, or one whose trust just changed, until it has propagated', async () => {
    await setUnkind(frontDoor.url, { enabled: true, ...WINDOW });
    const name = unique('fresh');
    const arn = await role(name);
    expect(await failure(createFn(unique('fresh'), arn))).toEqual(cannotAssume);
    await sleep(450);
    const fn = unique('fresh');
    await createFn(fn, arn);
    // A trust change starts a new window; an inline-policy change does not concern Lambda's AssumeRole.
    await iam.send(
      new PutRolePolicyCommand({ RoleName: name, PolicyName: 'p', PolicyDocument: readPolicy('*') }),
    );
    await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Role: arn }));
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: name, PolicyDocument: LAMBDA_TRUST }));
    expect(
      await failure(lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Role: arn }))),
    ).toEqual(cannotAssume);
    // An update that names no role is not concerned.
    await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Timeout: 5 }));
    await sleep(450);
    await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Role: arn }));
  });

  it("denies the role's sessions its secrets until its policy has propagated; each change restarts the window", async () => {
    const name = unique('reader');
    const arn = await role(name);
    const secret = await newSecret();
    const put = () =>
      iam.send(
        new PutRolePolicyCommand({
          RoleName: name,
          PolicyName: 'read',
          PolicyDocument: readPolicy(secret.arn),
        }),
      );
    await put();
    const creds = await assume(arn); // assumed while propagation was off: still the role's session
    await setUnkind(frontDoor.url, { enabled: true, iamPropagationMs: [600, 600] });
    await put();
    const client = secretsAs(creds);
    const denied = (action: string) => ({
      name: 'AccessDeniedException',
      status: 400,
      message: `User: arn:aws:sts::${ACCOUNT}:assumed-role/${name}/unkind-test is not authorized to perform: secretsmanager:${action} on resource: ${secret.arn} because no identity-based policy allows the secretsmanager:${action} action`,
    });
    expect(await failure(client.send(new GetSecretValueCommand({ SecretId: secret.name })))).toEqual(
      denied('GetSecretValue'),
    );
    expect(await failure(client.send(new DescribeSecretCommand({ SecretId: secret.arn })))).toEqual(
      denied('DescribeSecret'),
    );
    // The admin (no role session) is not concerned.
    await sm.send(new GetSecretValueCommand({ SecretId: secret.name }));
    await sleep(350);
    await put(); // restarts the 600 ms window: without it, the next read (700 ms in) would pass
    await sleep(350);
    expect(await failure(client.send(new GetSecretValueCommand({ SecretId: secret.name })))).toEqual(
      denied('GetSecretValue'),
    );
    await sleep(300);
    const out = await client.send(new GetSecretValueCommand({ SecretId: secret.name }));
    expect(out.SecretString).toBe('s3cret');
    // Turned off at run time: allowed at once.
    await put();
    await setUnkind(frontDoor.url, { enabled: false });
    await client.send(new GetSecretValueCommand({ SecretId: secret.name }));
  });

  it('holds the role sessions the Lambda runner reports as well', async () => {
    const name = unique('runner');
    const arn = await role(name);
    const creds = await motoAssume(arn); // the runner assumes straight at moto
    propagation.credentialsIssued(creds.accessKeyId, arn);
    await setUnkind(frontDoor.url, { enabled: true, ...WINDOW });
    const secret = await newSecret();
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: name,
        PolicyName: 'read',
        PolicyDocument: readPolicy(secret.arn),
      }),
    );
    expect(
      await failure(secretsAs(creds).send(new GetSecretValueCommand({ SecretId: secret.name }))),
    ).toMatchObject({
      name: 'AccessDeniedException',
      status: 400,
    });
    await sleep(450);
    await secretsAs(creds).send(new GetSecretValueCommand({ SecretId: secret.name }));
  });

  it('EKS refuses an access entry for a role it does not know yet; the authenticator honours a new entry late', async () => {
    const cluster = unique('cluster');
    await eks.send(
      new CreateClusterCommand({
        name: cluster,
        roleArn: await role(unique('cluster-role')),
        resourcesVpcConfig: {},
      }),
    );
    await setUnkind(frontDoor.url, { enabled: true, ...WINDOW });
    const name = unique('member');
    const arn = await role(name);
    const create = () => eks.send(new CreateAccessEntryCommand({ clusterName: cluster, principalArn: arn }));
    expect(await failure(create())).toEqual({
      name: 'InvalidParameterException',
      status: 400,
      message: 'The specified principalArn is invalid: invalid principal',
    });
    await sleep(450);
    await create();

    const creds = await assume(arn);
    const review = async () =>
      authenticateEksToken(await token(creds, cluster), {
        motoUrl: moto.url,
        region: REGION,
        clusterName: cluster,
        store: entries,
        entryEffective: (e) => propagation.entryEffective(e),
      });
    const before = await review();
    expect(before.authenticated).toBe(false);
    expect(before).toMatchObject({ error: expect.stringContaining('has not propagated yet') });
    await sleep(450);
    expect(await review()).toMatchObject({ authenticated: true });
    // A changed entry waits again; off, every entry counts at once.
    const entry = entries.get(cluster, arn, REGION)!;
    entry.modifiedAt = new Date();
    expect((await review()).authenticated).toBe(false);
    await setUnkind(frontDoor.url, { enabled: false });
    expect((await review()).authenticated).toBe(true);
  });

  it('draws each delay within the range, per change', () => {
    let now = 1_000;
    const draws = [0, 0.5, 1];
    const p = new IamPropagation({
      settings: { ...defaultUnkindSettings(), enabled: true, iamPropagationMs: [2000, 6000] },
      motoUrl: 'http://unused',
      credentials: ADMIN,
      now: () => now,
      random: () => draws.shift() ?? 0,
    });
    p.roleChanged('a', 'CreateRole'); // created 0, trust 0.5, permissions 1 → 2000, 4000, 6000 ms
    now += 1999;
    expect([p.creationPending('a'), p.trustPending('a'), p.permissionsPending('a')]).toEqual([
      true,
      true,
      true,
    ]);
    now += 1;
    expect([p.creationPending('a'), p.trustPending('a'), p.permissionsPending('a')]).toEqual([
      false,
      true,
      true,
    ]);
    now += 2000;
    expect([p.trustPending('a'), p.permissionsPending('a')]).toEqual([false, true]);
    now += 2000;
    expect(p.permissionsPending('a')).toBe(false);
    expect(p.trustPending('never-seen')).toBe(false);
  });
});

describe('quotas (always on, settable)', () => {
  it('counts roles across creates and deletes, and refuses CreateRole at the quota', async () => {
    const existing = (await motoIam.send(new ListRolesCommand({ MaxItems: 1000 }))).Roles!.length;
    account.quotas[ROLES_QUOTA] = existing + 2;
    const a = unique('q');
    const b = unique('q');
    await role(a);
    await role(b);
    const limited = {
      name: 'LimitExceededException',
      status: 409,
      message: `Cannot exceed quota for RolesPerAccount: ${existing + 2}`,
    };
    expect(await failure(role(unique('q')))).toEqual(limited);
    await iam.send(new DeleteRoleCommand({ RoleName: a }));
    const c = unique('q');
    await role(c);
    expect(await failure(role(unique('q')))).toEqual(limited);
    // A role created straight at moto counts too.
    await iam.send(new DeleteRoleCommand({ RoleName: c }));
    await motoIam.send(
      new CreateRoleCommand({ RoleName: unique('q'), AssumeRolePolicyDocument: LAMBDA_TRUST }),
    );
    expect(await failure(role(unique('q')))).toEqual(limited);
    // Raising the quota counts at once.
    account.quotas[ROLES_QUOTA] = existing + 3;
    await role(unique('q'));
  });

  it('counts rules per bus, refuses a new rule at the quota, lets an existing one be updated', async () => {
    const existing = (await events.send(new ListRulesCommand({}))).Rules?.length ?? 0;
    account.quotas[RULES_QUOTA] = existing + 2;
    const rule = (Name: string) =>
      events.send(
        new PutRuleCommand({ Name, EventPattern: JSON.stringify({ source: ['aws.secretsmanager'] }) }),
      );
    const a = unique('rule');
    await rule(a);
    await rule(unique('rule'));
    const limited = {
      name: 'LimitExceededException',
      status: 400,
      message: 'The requested resource exceeds the maximum number allowed.',
    };
    expect(await failure(rule(unique('rule')))).toEqual(limited);
    await rule(a); // an update
    await events.send(new DeleteRuleCommand({ Name: a }));
    await rule(unique('rule'));
    expect(await failure(rule(unique('rule')))).toEqual(limited);
    // Another bus has its own count (named by ARN or by name).
    const { EventBusArn } = await events.send(new CreateEventBusCommand({ Name: unique('bus') }));
    await events.send(
      new PutRuleCommand({
        Name: unique('rule'),
        EventPattern: JSON.stringify({ source: ['x'] }),
        EventBusName: EventBusArn,
      }),
    );
  });

  it("takes the region's default rules quota unless it was raised", () => {
    const s = defaultAccountSettings();
    expect(quotaValue(s, RULES_QUOTA, 'us-east-1')).toBe(300);
    expect(quotaValue(s, RULES_QUOTA, 'eu-south-1')).toBe(100);
    expect(quotaValue(s, RULES_QUOTA, 'af-south-1')).toBe(100);
    s.quotas[RULES_QUOTA] = 500;
    expect(quotaValue(s, RULES_QUOTA, 'eu-south-1')).toBe(500);
    expect(quotaValue(s, ROLES_QUOTA, 'eu-south-1')).toBe(1000);
  });
});

describe('switches', () => {
  it('starts from the option, else from SECRETSYNC_TESTBED_UNKIND', () => {
    expect(initialUnkindSettings(undefined, {}).enabled).toBe(false);
    expect(initialUnkindSettings(undefined, { [UNKIND_ENV]: '1' }).enabled).toBe(true);
    expect(initialUnkindSettings(undefined, { [UNKIND_ENV]: '0' }).enabled).toBe(false);
    expect(initialUnkindSettings(false, { [UNKIND_ENV]: '1' }).enabled).toBe(false);
    expect(initialUnkindSettings(true, {})).toEqual({ ...defaultUnkindSettings(), enabled: true });
    expect(initialUnkindSettings({ iamPropagationMs: [10, 20] }, {})).toMatchObject({
      enabled: true,
      iamPropagationMs: [10, 20],
      accessEntryPropagationMs: [2000, 5000],
    });
    expect(initialUnkindSettings({ enabled: false, unassumableRoles: ['x'] }, {})).toMatchObject({
      enabled: false,
      unassumableRoles: ['x'],
    });
  });

  it('GET, POST and DELETE /_testbed/unkind; nonsense is refused', async () => {
    expect(await getUnkind(frontDoor.url)).toEqual(defaultUnkindSettings());
    expect(
      await setUnkind(frontDoor.url, {
        iamPropagationMs: [2000, 6000],
        accessEntryPropagationMs: [1000, 3000],
        unassumableRoles: ['x'],
      }),
    ).toEqual({
      enabled: false,
      iamPropagationMs: [2000, 6000],
      accessEntryPropagationMs: [1000, 3000],
      unassumableRoles: ['x'],
      listSecretsLagMs: 0,
    });
    expect((await setUnkind(frontDoor.url, { enabled: true })).enabled).toBe(true);
    expect(settings.enabled).toBe(true);
    for (const bad of [
      { iamPropagationMs: [5, 1] },
      { enabled: 'yes' },
      { unassumableRoles: [''] },
      { listSecretsLagMs: -1 },
      { nope: 1 },
    ]) {
      const res = await fetch(`${frontDoor.url}/_testbed/unkind`, {
        method: 'POST',
        body: JSON.stringify(bad),
      });
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    expect(await resetUnkind(frontDoor.url)).toEqual(defaultUnkindSettings());
  });
});

function readPolicy(resource: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: resource }],
  });
}

async function newSecret(): Promise<{ name: string; arn: string }> {
  const name = unique('secret');
  const out = await sm.send(new CreateSecretCommand({ Name: name, SecretString: 's3cret' }));
  return { name, arn: out.ARN! };
}

interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

/** AssumeRole through the front door, as the product would. */
async function assume(roleArn: string): Promise<Creds> {
  const c = (await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'unkind-test' })))
    .Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
}

async function motoAssume(roleArn: string): Promise<Creds> {
  const direct = new STSClient({ endpoint: moto.url, region: REGION, credentials: ADMIN });
  try {
    const c = (await direct.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'fn' })))
      .Credentials!;
    return {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    };
  } finally {
    direct.destroy();
  }
}

const secretsAs = (credentials: Creds) =>
  new SecretsManagerClient({ endpoint: frontDoor.url, region: REGION, credentials, maxAttempts: 1 });

/** An EKS token, built by the function's own code. */
const token = (credentials: Creds, cluster: string): Promise<string> =>
  eksToken({ region: REGION, clusterName: cluster, credentials, signingDate: new Date() });
