import { describe, expect, it } from 'vitest';
import { decideTenancy, globMatch, NAMESPACES_TAG } from './tenancy.ts';

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
