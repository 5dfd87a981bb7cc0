import { describe, expect, it } from 'vitest';
import { isSyncError, quoteKey, SYNC_REASONS, SyncError, type SyncReason } from './errors.ts';

describe('SyncError', () => {
  it('is an Error carrying reason, message and retryable', () => {
    const err = new SyncError('SecretNotFound', 'no such secret');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('SyncError');
    expect(err.reason).toBe('SecretNotFound');
    expect(err.message).toBe('no such secret');
    expect(err.retryable).toBe(false);
    expect(isSyncError(err)).toBe(true);
    expect(isSyncError(new Error('x'))).toBe(false);
  });

  const retryable: SyncReason[] = ['ApiUnavailable', 'SecretsManagerUnavailable', 'Conflict', 'Unauthorized'];
  it.each(SYNC_REASONS.map((r) => [r, retryable.includes(r)] as const))(
    '%s is retryable by default: %s',
    (reason, expected) => {
      expect(new SyncError(reason, 'm').retryable).toBe(expected);
    },
  );

  it('lets the throw site override retryable', () => {
    expect(new SyncError('AccessDenied', 'm', { retryable: true }).retryable).toBe(true);
    expect(new SyncError('ApiUnavailable', 'm', { retryable: false }).retryable).toBe(false);
  });

  it('keeps a cause when given one, and has none otherwise', () => {
    const cause = new Error('socket hang up');
    expect(new SyncError('ApiUnavailable', 'm', { cause }).cause).toBe(cause);
    expect('cause' in new SyncError('ApiUnavailable', 'm')).toBe(false);
  });
});

describe('quoteKey', () => {
  it.each([
    ['password', '"password"'],
    ['has space', '"has space"'],
    ['new\nline', '"new\\nline"'],
    ['', '""'],
  ])('quotes %j as %s', (key, expected) => {
    expect(quoteKey(key)).toBe(expected);
  });

  it('cuts a long key to 64 characters and says how long it was', () => {
    expect(quoteKey('k'.repeat(1000))).toBe(`"${'k'.repeat(64)}"… (1000 characters)`);
  });

  it('cuts by characters, never inside a surrogate pair', () => {
    const quoted = quoteKey('🔑'.repeat(100));
    expect(quoted).toBe(`"${'🔑'.repeat(64)}"… (100 characters)`);
  });
});
