import { describe, expect, it } from 'vitest';
import {
  decideTenancy,
  globMatch,
  NAMESPACES_TAG,
  needsNamespaceLabels,
  policyGrants,
  type SecretSyncPolicy,
  secretGlobMatch,
  tagGrants,
} from './tenancy.ts';

describe('tenancy (pure)', () => {
  it.each([
    ['team-a', 'team-a', true],
    ['team-*', 'team-a', true],
    ['team-*', 'team-', true],
    ['team-*', 'other', false],
    ['*', 'anything', true],
    ['team.a', 'teamxa', false],
    ['a*b', 'a-x-b', true],
  ])('glob %s vs %s → %s', (p, v, want) => expect(globMatch(p, v)).toBe(want));

  it('denies by default: no tag, or a tag that does not list the namespace', () => {
    expect(decideTenancy('tag', 'b', { name: 's', tags: {} }).allowed).toBe(false);
    const d = decideTenancy('tag', 'b', { name: 's', tags: { [NAMESPACES_TAG]: 'a, c' } });
    expect(d).toEqual({
      allowed: false,
      why: expect.stringContaining('(a, c) does not include namespace b'),
    });
  });

  it('allows when the secret lists the namespace, and in allow-all mode', () => {
    expect(
      decideTenancy('tag', 'prod-x', { name: 's', tags: { [NAMESPACES_TAG]: 'dev prod-*' } }).allowed,
    ).toBe(true);
    expect(decideTenancy('allow-all', 'b', { name: 's', tags: {} }).allowed).toBe(true);
  });
});

describe('policyGrants (pure)', () => {
  const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/payments/db-AbCdEf';
  const secret = { name: 'prod/payments/db', arn: ARN };
  const pol = (name: string, spec: SecretSyncPolicy['spec']): SecretSyncPolicy => ({
    metadata: { name },
    spec,
  });
  const labels = { team: 'payments', env: 'prod' };

  it.each<[string, SecretSyncPolicy[], string, Record<string, string> | undefined, string | undefined]>([
    ['no policy → deny', [], 'pay', labels, undefined],
    [
      'namespace by name',
      [pol('p', { namespaces: ['pay'], secrets: ['prod/payments/db'] })],
      'pay',
      undefined,
      'p',
    ],
    ['namespace not listed', [pol('p', { namespaces: ['other'], secrets: ['*'] })], 'pay', labels, undefined],
    ['namespace glob', [pol('p', { namespaces: ['pay-*'], secrets: ['*'] })], 'pay-prod', undefined, 'p'],
    [
      'namespace glob miss',
      [pol('p', { namespaces: ['pay-*'], secrets: ['*'] })],
      'dev-pay',
      undefined,
      undefined,
    ],
    [
      'selector matchLabels',
      [pol('p', { namespaceSelector: { matchLabels: { team: 'payments' } }, secrets: ['*'] })],
      'x',
      labels,
      'p',
    ],
    [
      'selector matchLabels miss',
      [pol('p', { namespaceSelector: { matchLabels: { team: 'web' } }, secrets: ['*'] })],
      'x',
      labels,
      undefined,
    ],
    [
      'selector In',
      [
        pol('p', {
          namespaceSelector: {
            matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'stage'] }],
          },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      'p',
    ],
    [
      'selector In miss',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      undefined,
    ],
    [
      'selector NotIn',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      'p',
    ],
    [
      'selector NotIn, label absent',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x'] }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      'p',
    ],
    [
      'selector NotIn miss',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      undefined,
    ],
    [
      'selector Exists',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      'p',
    ],
    [
      'selector Exists miss',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      undefined,
    ],
    [
      'selector DoesNotExist',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      'p',
    ],
    [
      'selector DoesNotExist miss',
      [
        pol('p', {
          namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      undefined,
    ],
    [
      'selector: labels AND expressions',
      [
        pol('p', {
          namespaceSelector: {
            matchLabels: { team: 'payments' },
            matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }],
          },
          secrets: ['*'],
        }),
      ],
      'x',
      labels,
      undefined,
    ],
    [
      'selector without labels read',
      [pol('p', { namespaceSelector: {}, secrets: ['*'] })],
      'x',
      undefined,
      undefined,
    ],
    [
      'empty selector matches every namespace',
      [pol('p', { namespaceSelector: {}, secrets: ['*'] })],
      'x',
      {},
      'p',
    ],
    [
      'names OR selector',
      [pol('p', { namespaces: ['x'], namespaceSelector: { matchLabels: { team: 'web' } }, secrets: ['*'] })],
      'x',
      labels,
      'p',
    ],
    [
      'secret name glob',
      [pol('p', { namespaces: ['x'], secrets: ['prod/payments/*'] })],
      'x',
      undefined,
      'p',
    ],
    [
      'secret name glob miss',
      [pol('p', { namespaces: ['x'], secrets: ['prod/web/*'] })],
      'x',
      undefined,
      undefined,
    ],
    [
      'secret name must match whole',
      [pol('p', { namespaces: ['x'], secrets: ['prod/payments'] })],
      'x',
      undefined,
      undefined,
    ],
    [
      'secret ARN glob',
      [pol('p', { namespaces: ['x'], secrets: ['arn:aws:secretsmanager:*:123456789012:secret:prod/*'] })],
      'x',
      undefined,
      'p',
    ],
    [
      'secret ARN glob, other account',
      [pol('p', { namespaces: ['x'], secrets: ['arn:aws:secretsmanager:*:999999999999:secret:prod/*'] })],
      'x',
      undefined,
      undefined,
    ],
    ['secret exact ARN', [pol('p', { namespaces: ['x'], secrets: [ARN] })], 'x', undefined, 'p'],
    [
      'glob dots are literal',
      [pol('p', { namespaces: ['x'], secrets: ['prod.payments.*'] })],
      'x',
      undefined,
      undefined,
    ],
    [
      'region listed',
      [pol('p', { namespaces: ['x'], secrets: ['*'], regions: ['us-east-1', 'eu-west-1'] })],
      'x',
      undefined,
      'p',
    ],
    [
      'region not listed',
      [pol('p', { namespaces: ['x'], secrets: ['*'], regions: ['us-east-1'] })],
      'x',
      undefined,
      undefined,
    ],
    [
      'empty regions = any',
      [pol('p', { namespaces: ['x'], secrets: ['*'], regions: [] })],
      'x',
      undefined,
      'p',
    ],
    [
      'account listed',
      [pol('p', { namespaces: ['x'], secrets: ['*'], accounts: ['123456789012'] })],
      'x',
      undefined,
      'p',
    ],
    [
      'account not listed',
      [pol('p', { namespaces: ['x'], secrets: ['*'], accounts: ['999999999999'] })],
      'x',
      undefined,
      undefined,
    ],
    [
      'the first granting policy by name',
      [
        pol('b', { namespaces: ['x'], secrets: ['*'] }),
        pol('z', { namespaces: ['y'], secrets: ['*'] }),
        pol('a', { namespaces: ['x'], secrets: ['prod/*'] }),
      ],
      'x',
      undefined,
      'a',
    ],
    [
      'each policy is whole: namespace from one, secret from another grants nothing',
      [
        pol('a', { namespaces: ['x'], secrets: ['other/*'] }),
        pol('b', { namespaces: ['y'], secrets: ['prod/*'] }),
      ],
      'x',
      undefined,
      undefined,
    ],
  ])('%s', (_what, policies, ns, nsLabels, want) => {
    expect(policyGrants(policies, ns, nsLabels, secret)).toBe(want);
  });

  it('needs the namespace labels only when a policy has a selector', () => {
    expect(needsNamespaceLabels([pol('p', { namespaces: ['x'], secrets: ['*'] })])).toBe(false);
    expect(needsNamespaceLabels([pol('p', { namespaceSelector: {}, secrets: ['*'] })])).toBe(true);
  });

  it('secret globs cross / and :, namespace globs do not', () => {
    expect(secretGlobMatch('prod/*', 'prod/a/b')).toBe(true);
    expect(globMatch('prod-*', 'prod-a/b')).toBe(false);
  });

  it('a policy grant allows in tag mode; the denial names both ways to allow', () => {
    expect(decideTenancy('tag', 'x', { name: 's', tags: {} }, 'p')).toEqual({
      allowed: true,
      why: 'SecretSyncPolicy p grants namespace x',
    });
    const d = decideTenancy('tag', 'x', { name: 's', tags: {} });
    expect(d.allowed).toBe(false);
    expect(d.why).toContain(`${NAMESPACES_TAG} tag`);
    expect(d.why).toContain('SecretSyncPolicy');
    expect(tagGrants('x', { [NAMESPACES_TAG]: 'a x' })).toBe('x');
    expect(tagGrants('x', {})).toBeUndefined();
  });
});
