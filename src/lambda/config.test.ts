import { describe, expect, it } from 'vitest';
import { compactCa, ENV, type FunctionConfig, loadConfig, type SyncSpec, specOf, toEnv } from './config.ts';
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
const CA_DER = CA_PEM.replace(/-----[A-Z ]+-----|\s/g, '');
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/payments/db-AbCdEf';

const VALID: Record<string, string> = {
  [ENV.secretArn]: ARN,
  [ENV.clusterName]: 'prod-cluster',
  [ENV.apiEndpoint]: 'https://ABCDEF0123456789.gr7.eu-west-1.eks.amazonaws.com',
  [ENV.ca]: CA_DER,
  [ENV.namespace]: 'payments',
  [ENV.syncName]: 'db',
};

function problemsOf(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(SyncError);
    expect((err as SyncError).reason).toBe('InvalidConfiguration');
    expect((err as SyncError).retryable).toBe(false);
    return (err as SyncError).message;
  }
  throw new Error('expected InvalidConfiguration');
}

describe('loadConfig', () => {
  it("loads a complete environment; the region is the secret ARN's", () => {
    expect(loadConfig(VALID)).toEqual<FunctionConfig>({
      secretArn: ARN,
      region: 'eu-west-1',
      clusterName: 'prod-cluster',
      apiEndpoint: 'https://abcdef0123456789.gr7.eu-west-1.eks.amazonaws.com',
      caPem: CA_PEM,
      namespace: 'payments',
      syncName: 'db',
    });
  });

  it.each<[string, Record<string, string | undefined>, Partial<FunctionConfig>]>([
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
    ['a CA bundle of two certificates', { [ENV.ca]: `${CA_DER},${CA_DER}` }, { caPem: `${CA_PEM}${CA_PEM}` }],
    [
      'China partition ARN',
      { [ENV.secretArn]: 'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x-AbCdEf' },
      { region: 'cn-north-1' },
    ],
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
    ['CA not base64', { [ENV.ca]: 'not base64!' }, `${ENV.ca} must be comma-separated base64 DER`],
    [
      'CA not a certificate',
      { [ENV.ca]: Buffer.from('hello').toString('base64') },
      'does not decode to a certificate',
    ],
    ['CA given as PEM', { [ENV.ca]: CA_PEM }, `${ENV.ca} must be comma-separated base64 DER`],
    ['namespace with capitals', { [ENV.namespace]: 'Payments' }, `${ENV.namespace} must be a namespace name`],
    ['namespace with a dot', { [ENV.namespace]: 'a.b' }, `${ENV.namespace} must be a namespace name`],
    [
      'SecretSync name over 63 characters',
      { [ENV.syncName]: 'a'.repeat(64) },
      `${ENV.syncName} must be a DNS-1123 subdomain`,
    ],
  ])('rejects %s', (_name, overrides, message) => {
    expect(problemsOf(() => loadConfig({ ...VALID, ...overrides }))).toContain(message);
  });

  it('reports every problem in one message', () => {
    const message = problemsOf(() => loadConfig({ [ENV.apiEndpoint]: 'http://x', [ENV.namespace]: 'Bad' }));
    for (const expected of [
      `${ENV.secretArn} is missing`,
      `${ENV.clusterName} is missing`,
      `${ENV.apiEndpoint} must be an https URL`,
      `${ENV.ca} is missing`,
      `${ENV.namespace} must be a namespace name`,
      `${ENV.syncName} is missing`,
    ]) {
      expect(message).toContain(expected);
    }
    expect(message.startsWith('invalid function configuration: ')).toBe(true);
  });

  it('bounds how much of a bad value it repeats', () => {
    expect(
      problemsOf(() => loadConfig({ ...VALID, [ENV.namespace]: `X${'y'.repeat(5000)}` })).length,
    ).toBeLessThan(300);
  });
});

describe('toEnv', () => {
  it('round-trips through loadConfig', () => {
    const config = loadConfig(VALID);
    expect(loadConfig(toEnv(config))).toEqual(config);
  });

  it('sets only SECRETSYNC_ variables, the CA as base64 DER', () => {
    const env = toEnv(loadConfig(VALID));
    expect(Object.keys(env).every((name) => name.startsWith('SECRETSYNC_'))).toBe(true);
    expect(env[ENV.ca]).toBe(CA_DER);
    expect(compactCa(`${CA_PEM}\n${CA_PEM}`)).toBe(`${CA_DER},${CA_DER}`);
  });

  it("stays far below Lambda's 4 KB with the longest names the CRD and EKS allow", () => {
    // An RSA-2048 EKS CA is about 1.1 KB of DER; the test CA is smaller, so pad to that size.
    const env = toEnv({
      secretArn: `arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:${'s'.repeat(512)}-AbCdEf`,
      clusterName: 'c'.repeat(100),
      apiEndpoint: `https://${'A'.repeat(32)}.gr7.us-gov-west-1.eks.amazonaws.com`,
      caPem: CA_PEM,
      namespace: 'n'.repeat(63),
      syncName: 's'.repeat(63),
    });
    const measured = JSON.stringify(env).length - CA_DER.length + Math.ceil(1_100 / 3) * 4;
    expect(measured).toBeLessThan(2_600);
  });
});

describe('specOf', () => {
  const ss = (spec: Record<string, unknown>, generation = 3) => ({ metadata: { generation }, spec });

  it('defaults stage, policy, target and mapping', () => {
    expect(specOf(ss({ source: {}, target: {} }), 'db')).toEqual<SyncSpec>({
      generation: 3,
      targetName: 'db',
      versionStage: 'AWSCURRENT',
      keyMapping: undefined,
      template: undefined,
      mergePolicy: 'Merge',
    });
  });

  it('reads a template: parsed, copyKeys defaulting to false', () => {
    const got = specOf(
      ss({ target: { template: { data: { url: 'postgres://{{ username }}:{{password}}@db/app' } } } }),
      'db',
    );
    expect(got.template?.copyKeys).toBe(false);
    expect([...(got.template?.data ?? [])]).toEqual([
      [
        'url',
        [
          { text: 'postgres://' },
          { key: 'username' },
          { text: ':' },
          { key: 'password' },
          { text: '@db/app' },
        ],
      ],
    ]);
    const withKeys = specOf(
      ss({ target: { keys: [{ from: 'a' }], template: { data: { b: '{{ a }}' }, copyKeys: true } } }),
      'db',
    );
    expect(withKeys.template?.copyKeys).toBe(true);
    expect(withKeys.keyMapping).toEqual([{ from: 'a' }]);
  });

  it('reads what the spec says, 100 mappings of the longest names included', () => {
    const keys = Array.from({ length: 100 }, (_, i) => ({
      from: `${String(i).padStart(3, '0')}${'f'.repeat(253)}`,
      to: `${String(i).padStart(3, '0')}${'t'.repeat(250)}`,
    }));
    const got = specOf(
      ss({
        source: { versionStage: 'BLUE' },
        target: { name: 'db.creds.v1', keys },
        mergePolicy: 'Replace',
      }),
      'db',
    );
    expect(got).toMatchObject({ targetName: 'db.creds.v1', versionStage: 'BLUE', mergePolicy: 'Replace' });
    expect(got.keyMapping).toEqual(keys);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['bad stage', { source: { versionStage: 'a b' } }, 'spec.source.versionStage must be a staging label'],
    ['target with underscore', { target: { name: 'db_creds' } }, 'spec.target.name must be a DNS-1123'],
    [
      'unknown merge policy',
      { mergePolicy: 'merge' },
      'spec.mergePolicy must be Merge or Replace (got "merge")',
    ],
    ['mapping not a list', { target: { keys: { from: 'a' } } }, 'spec.target.keys must be a list'],
    ['mapping empty', { target: { keys: [] } }, 'must list at least one key; omit it to copy every key'],
    ['entry not an object', { target: { keys: ['a'] } }, 'spec.target.keys[0] must be an object'],
    ['entry without from', { target: { keys: [{ to: 'a' }] } }, 'spec.target.keys[0].from must be a string'],
    [
      'non-string to',
      { target: { keys: [{ from: 'a', to: 1 }] } },
      'spec.target.keys[0].to must be a string',
    ],
    ['a typo', { target: { keys: [{ from: 'a', too: 'b' }] } }, 'has unknown field "too"'],
    [
      'an invalid key',
      { target: { keys: [{ from: 'a', to: 'b/c' }] } },
      'maps to "b/c", not a valid Secret key',
    ],
    [
      'two entries mapping to one key',
      { target: { keys: [{ from: 'a', to: 'x' }, { from: 'x' }] } },
      'spec.target.keys[1] maps to "x" again',
    ],
    ['template not an object', { target: { template: 'x' } }, 'spec.target.template must be an object'],
    ['template without data', { target: { template: {} } }, 'spec.target.template.data must be a map'],
    ['template with no keys', { target: { template: { data: {} } } }, 'must have at least one key'],
    [
      'template key not a Secret key',
      { target: { template: { data: { 'a b': 'x' } } } },
      'spec.target.template.data["a b"]: not a valid Secret key',
    ],
    [
      'unclosed placeholder',
      { target: { template: { data: { url: '{{ user' } } } },
      'spec.target.template.data["url"]: every {{ must be closed by }}',
    ],
    [
      'a mustache section',
      { target: { template: { data: { url: '{{#user}}x{{/user}}' } } } },
      '"{{#user}}" is not a key name: templates are logic-less',
    ],
    [
      'template not a string',
      { target: { template: { data: { url: 1 } } } },
      'spec.target.template.data["url"] must be a string of at most 8192 characters',
    ],
    [
      'copyKeys not a boolean',
      { target: { template: { data: { a: 'x' }, copyKeys: 'yes' } } },
      'copyKeys must be true or false',
    ],
    [
      'keys with a template that copies nothing',
      { target: { keys: [{ from: 'a' }], template: { data: { b: '{{ a }}' } } } },
      'spec.target.keys is set but spec.target.template.copyKeys is not',
    ],
    [
      'more than 100 entries',
      { target: { keys: Array.from({ length: 101 }, (_, i) => ({ from: `k${i}` })) } },
      'has 101 entries, at most 100',
    ],
  ])('rejects %s', (_name, spec, message) => {
    const text = problemsOf(() => specOf(ss(spec), 'db'));
    expect(text).toContain(message);
    expect(text.startsWith('invalid SecretSync spec: ')).toBe(true);
  });
});
