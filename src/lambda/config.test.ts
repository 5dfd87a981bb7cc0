import { describe, expect, it } from 'vitest';
import { ENV, loadConfig, type SyncConfig, toEnv } from './config.ts';
import { SyncError } from './errors.ts';

// A throwaway self-signed certificate (no key kept anywhere), standing in for an EKS cluster CA.
const CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBkTCCATegAwIBAgIULR6zW9SPjw6ybucxCF+PCl5hGJMwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSc2VjcmV0c3luYy10ZXN0LWNhMCAXDTI2MTEyOTEzNTA0N1oY
DzIxMjYxMTA1MTM1MDQ3WjAdMRswGQYDVQQDDBJzZWNyZXRzeW5jLXRlc3QtY2Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT4DK1kLHwM1cqgdNtmjlYOmn+tSFko
IpVpNHJGmZgS+aRKHLloWLlLHW5Q3Nsyms9MkZ1y8Dh/v2b9VebYiuJ9o1MwUTAd
BgNVHQ4EFgQU0Axev3hbWDKx1+ptpD6V4XqBSG8wHwYDVR0jBBgwFoAU0Axev3hb
WDKx1+ptpD6V4XqBSG8wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
AiBOXsXb35TaSO8T6I+PJ3EVK6PwM0Cjki4AMGGkfwnU2QIhAJqTfazskkDCys0q
w5A5+vBHuuAGv9Yu3oMW4ZHm/VQm
-----END CERTIFICATE-----
`;
const CA_DATA = Buffer.from(CA_PEM).toString('base64');
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/payments/db-AbCdEf';

const VALID: Record<string, string> = {
  [ENV.secretArn]: ARN,
  [ENV.region]: 'eu-west-1',
  [ENV.clusterName]: 'prod-cluster',
  [ENV.apiEndpoint]: 'https://ABCDEF0123456789.gr7.eu-west-1.eks.amazonaws.com',
  [ENV.caData]: CA_DATA,
  [ENV.namespace]: 'payments',
  [ENV.targetName]: 'db-creds',
  [ENV.syncName]: 'db',
};

function problemsOf(env: Record<string, string | undefined>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(SyncError);
    expect((err as SyncError).reason).toBe('InvalidConfiguration');
    expect((err as SyncError).retryable).toBe(false);
    return (err as SyncError).message;
  }
  throw new Error('expected InvalidConfiguration');
}

describe('loadConfig', () => {
  it('loads a complete environment, with defaults for stage, policy and mapping', () => {
    expect(loadConfig(VALID)).toEqual<SyncConfig>({
      secretArn: ARN,
      versionStage: 'AWSCURRENT',
      region: 'eu-west-1',
      clusterName: 'prod-cluster',
      apiEndpoint: 'https://abcdef0123456789.gr7.eu-west-1.eks.amazonaws.com',
      caPem: CA_PEM,
      namespace: 'payments',
      targetName: 'db-creds',
      syncName: 'db',
      keyMapping: undefined,
      mergePolicy: 'Merge',
    });
  });

  it.each<[string, Record<string, string | undefined>, Partial<SyncConfig>]>([
    [
      'region falls back to AWS_REGION',
      { [ENV.region]: undefined, AWS_REGION: 'eu-west-1' },
      { region: 'eu-west-1' },
    ],
    ['explicit version stage', { [ENV.versionStage]: 'blue' }, { versionStage: 'blue' }],
    ['Replace policy', { [ENV.mergePolicy]: 'Replace' }, { mergePolicy: 'Replace' }],
    ['empty mapping variable = all keys', { [ENV.keyMapping]: '' }, { keyMapping: undefined }],
    [
      'key mapping with and without to',
      { [ENV.keyMapping]: '[{"from":"password","to":"DB_PASSWORD"},{"from":"user"}]' },
      { keyMapping: [{ from: 'password', to: 'DB_PASSWORD' }, { from: 'user' }] },
    ],
    [
      'a mapped from that is no valid Secret key is fine when renamed',
      { [ENV.keyMapping]: '[{"from":"db password","to":"DB_PASSWORD"}]' },
      { keyMapping: [{ from: 'db password', to: 'DB_PASSWORD' }] },
    ],
    [
      'endpoint with port and trailing slash',
      { [ENV.apiEndpoint]: 'https://127.0.0.1:6443/' },
      { apiEndpoint: 'https://127.0.0.1:6443' },
    ],
    [
      'endpoint with a path prefix',
      { [ENV.apiEndpoint]: 'https://proxy.example/k8s/' },
      { apiEndpoint: 'https://proxy.example/k8s' },
    ],
    ['CA data wrapped over lines', { [ENV.caData]: CA_DATA.replace(/(.{76})/g, '$1\n') }, { caPem: CA_PEM }],
    [
      'China partition ARN',
      {
        [ENV.secretArn]: 'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-AbCdEf',
        [ENV.region]: 'cn-north-1',
      },
      { region: 'cn-north-1' },
    ],
    ['dotted target name', { [ENV.targetName]: 'db.creds.v1' }, { targetName: 'db.creds.v1' }],
  ])('%s', (_name, overrides, expected) => {
    expect(loadConfig({ ...VALID, ...overrides })).toMatchObject(expected);
  });

  it.each<[string, Record<string, string | undefined>, string]>([
    ['missing ARN', { [ENV.secretArn]: undefined }, `${ENV.secretArn} is missing`],
    ['blank ARN', { [ENV.secretArn]: '  ' }, `${ENV.secretArn} is missing`],
    [
      'a secret name instead of an ARN',
      { [ENV.secretArn]: 'prod/payments/db' },
      'must be a full Secrets Manager secret ARN',
    ],
    [
      'an ARN without the 6-character suffix',
      { [ENV.secretArn]: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db' },
      'must be a full Secrets Manager secret ARN',
    ],
    [
      'an ARN of another service',
      { [ENV.secretArn]: 'arn:aws:ssm:eu-west-1:123456789012:parameter/db-AbCdEf' },
      'must be a full Secrets Manager secret ARN',
    ],
    [
      'no region at all',
      { [ENV.region]: undefined, AWS_REGION: undefined },
      `${ENV.region} is missing (and so is AWS_REGION)`,
    ],
    ['malformed region', { [ENV.region]: 'Europe' }, `${ENV.region} must be an AWS region`],
    [
      'region other than the ARN',
      { [ENV.region]: 'us-east-1' },
      'is us-east-1 but the secret ARN is in eu-west-1',
    ],
    ['bad stage', { [ENV.versionStage]: 'a b' }, `${ENV.versionStage} must be a staging label`],
    [
      'cluster name with a slash',
      { [ENV.clusterName]: 'a/b' },
      `${ENV.clusterName} must be an EKS cluster name`,
    ],
    [
      'cluster name over 100 characters',
      { [ENV.clusterName]: 'c'.repeat(101) },
      `${ENV.clusterName} must be an EKS`,
    ],
    ['http endpoint', { [ENV.apiEndpoint]: 'http://example.com' }, `${ENV.apiEndpoint} must be an https URL`],
    ['endpoint not a URL', { [ENV.apiEndpoint]: 'example.com' }, `${ENV.apiEndpoint} must be an https URL`],
    [
      'endpoint with credentials',
      { [ENV.apiEndpoint]: 'https://u:p@example.com' },
      'without credentials, query or fragment',
    ],
    [
      'endpoint with a query',
      { [ENV.apiEndpoint]: 'https://example.com/?x=1' },
      'without credentials, query or fragment',
    ],
    ['CA data not base64', { [ENV.caData]: 'not base64!' }, `${ENV.caData} must be the base64-encoded PEM`],
    [
      'CA data not a certificate',
      { [ENV.caData]: Buffer.from('hello').toString('base64') },
      'does not decode to a PEM certificate',
    ],
    [
      'CA given as raw PEM instead of base64',
      { [ENV.caData]: CA_PEM },
      `${ENV.caData} must be the base64-encoded PEM`,
    ],
    ['namespace with capitals', { [ENV.namespace]: 'Payments' }, `${ENV.namespace} must be a namespace name`],
    ['namespace with a dot', { [ENV.namespace]: 'a.b' }, `${ENV.namespace} must be a namespace name`],
    [
      'target name with underscore',
      { [ENV.targetName]: 'db_creds' },
      `${ENV.targetName} must be a DNS-1123 subdomain`,
    ],
    [
      'SecretSync name over 63 characters',
      { [ENV.syncName]: 'a'.repeat(64) },
      `${ENV.syncName} must be a DNS-1123 subdomain`,
    ],
    [
      'unknown merge policy',
      { [ENV.mergePolicy]: 'merge' },
      `${ENV.mergePolicy} must be Merge or Replace (got "merge")`,
    ],
    ['mapping not JSON', { [ENV.keyMapping]: '{from: a}' }, `${ENV.keyMapping} must be a JSON array`],
    ['mapping not an array', { [ENV.keyMapping]: '{"from":"a"}' }, `${ENV.keyMapping} must be a JSON array`],
    ['mapping empty', { [ENV.keyMapping]: '[]' }, 'must list at least one key; omit it to copy every key'],
    ['mapping entry not an object', { [ENV.keyMapping]: '["a"]' }, `${ENV.keyMapping}[0] must be an object`],
    [
      'mapping entry without from',
      { [ENV.keyMapping]: '[{"to":"a"}]' },
      `${ENV.keyMapping}[0].from must be a string`,
    ],
    [
      'mapping entry with a non-string to',
      { [ENV.keyMapping]: '[{"from":"a","to":1}]' },
      `${ENV.keyMapping}[0].to must be a string`,
    ],
    [
      'mapping entry with a typo',
      { [ENV.keyMapping]: '[{"from":"a","too":"b"}]' },
      'has unknown field "too"',
    ],
    [
      'mapping to an invalid key',
      { [ENV.keyMapping]: '[{"from":"a","to":"b/c"}]' },
      'maps to "b/c", not a valid Secret key',
    ],
    [
      'mapping from an invalid key without to',
      { [ENV.keyMapping]: '[{"from":"a b"}]' },
      'maps to "a b", not a valid',
    ],
    [
      'two entries mapping to one key',
      { [ENV.keyMapping]: '[{"from":"a","to":"x"},{"from":"x"}]' },
      `${ENV.keyMapping}[1] maps to "x" again`,
    ],
    [
      'more than 100 entries',
      { [ENV.keyMapping]: JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ from: `k${i}` }))) },
      'has 101 entries, at most 100',
    ],
  ])('rejects %s', (_name, overrides, message) => {
    expect(problemsOf({ ...VALID, ...overrides })).toContain(message);
  });

  it('reports every problem in one message', () => {
    const message = problemsOf({
      [ENV.apiEndpoint]: 'http://x',
      [ENV.namespace]: 'Bad',
      [ENV.mergePolicy]: 'Sometimes',
    });
    for (const expected of [
      `${ENV.secretArn} is missing`,
      `${ENV.region} is missing`,
      `${ENV.clusterName} is missing`,
      `${ENV.apiEndpoint} must be an https URL`,
      `${ENV.caData} is missing`,
      `${ENV.namespace} must be a namespace name`,
      `${ENV.targetName} is missing`,
      `${ENV.syncName} is missing`,
      `${ENV.mergePolicy} must be Merge or Replace`,
    ]) {
      expect(message).toContain(expected);
    }
    expect(message.startsWith('invalid function configuration: ')).toBe(true);
  });

  it('bounds how much of a bad value it repeats', () => {
    expect(problemsOf({ ...VALID, [ENV.targetName]: `X${'y'.repeat(5000)}` }).length).toBeLessThan(300);
  });
});

describe('toEnv', () => {
  it.each<[string, Record<string, string>]>([
    ['defaults', {}],
    [
      'mapping and Replace',
      { [ENV.keyMapping]: '[{"from":"a","to":"B"},{"from":"c"}]', [ENV.mergePolicy]: 'Replace' },
    ],
  ])('round-trips through loadConfig: %s', (_name, overrides) => {
    const config = loadConfig({ ...VALID, ...overrides });
    expect(loadConfig(toEnv(config))).toEqual(config);
  });

  it('sets only SECRETSYNC_ variables, and the CA as base64', () => {
    const env = toEnv(loadConfig(VALID));
    expect(Object.keys(env).every((name) => name.startsWith('SECRETSYNC_'))).toBe(true);
    expect(env[ENV.caData]).toBe(CA_DATA);
    expect(env[ENV.keyMapping]).toBeUndefined();
  });
});
