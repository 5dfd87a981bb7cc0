import { describe, expect, it } from 'vitest';
import { SyncError } from './errors.ts';
import {
  applyKeyMapping,
  isValidSecretKey,
  type KeyMapping,
  MAX_SECRET_DATA_BYTES,
  parseSecretValue,
  type SecretData,
  type SecretValue,
  secretDataFrom,
  validateSecretData,
} from './payload.ts';

function asText(data: SecretData): Record<string, string> {
  return Object.fromEntries([...data].map(([k, v]) => [k, v.toString('utf8')]));
}

function caught(fn: () => unknown): SyncError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SyncError);
    return err as SyncError;
  }
  throw new Error('expected a SyncError');
}

describe('parseSecretValue', () => {
  it.each<[string, SecretValue, Record<string, string>]>([
    [
      'a JSON object: one key per member',
      { SecretString: '{"user":"app","password":"p@ss"}' },
      { user: 'app', password: 'p@ss' },
    ],
    ['string members as UTF-8', { SecretString: '{"greeting":"grüß dich ✓"}' }, { greeting: 'grüß dich ✓' }],
    [
      'non-string members JSON-encoded',
      { SecretString: '{"port":5432,"tls":true,"none":null,"hosts":["a","b"],"nested":{"x":{"y":[1]}}}' },
      { port: '5432', tls: 'true', none: 'null', hosts: '["a","b"]', nested: '{"x":{"y":[1]}}' },
    ],
    [
      'numbers keep their source text (no float rounding)',
      { SecretString: '{"big":12345678901234567890,"f":1.50,"e":1E400,"deep":{"n":9007199254740993}}' },
      { big: '12345678901234567890', f: '1.50', e: '1E400', deep: '{"n":9007199254740993}' },
    ],
    ['plain text → value', { SecretString: 'hunter2' }, { value: 'hunter2' }],
    [
      'text that merely starts like JSON → value, untouched',
      { SecretString: '{not json' },
      { value: '{not json' },
    ],
    ['a JSON array → value, untouched', { SecretString: ' [1, 2] ' }, { value: ' [1, 2] ' }],
    ['a JSON string → value, untouched (quotes kept)', { SecretString: '"quoted"' }, { value: '"quoted"' }],
    ['a JSON number → value', { SecretString: '42' }, { value: '42' }],
    ['JSON null → value', { SecretString: 'null' }, { value: 'null' }],
    ['the empty string → value with no bytes', { SecretString: '' }, { value: '' }],
    ['an empty JSON object → no keys', { SecretString: '{}' }, {}],
    [
      'a duplicated JSON member → the last one wins, as in JSON.parse',
      { SecretString: '{"a":"1","a":"2"}' },
      { a: '2' },
    ],
  ])('%s', (_name, value, expected) => {
    expect(asText(parseSecretValue(value))).toEqual(expected);
  });

  it('__proto__ and constructor are ordinary keys', () => {
    const data = parseSecretValue({ SecretString: '{"__proto__":"x","constructor":"y"}' });
    expect([...data.keys()]).toEqual(['__proto__', 'constructor']);
    expect(data.get('__proto__')!.toString()).toBe('x');
  });

  it('SecretBinary → value with the bytes as they are', () => {
    const bytes = new Uint8Array([0, 255, 10, 0x80, 0x7b]);
    const data = parseSecretValue({ SecretBinary: bytes });
    expect([...data.keys()]).toEqual(['value']);
    expect([...data.get('value')!]).toEqual([...bytes]);
  });

  it('an empty SecretBinary → value with no bytes', () => {
    expect(parseSecretValue({ SecretBinary: new Uint8Array() }).get('value')!.length).toBe(0);
  });

  it('neither SecretString nor SecretBinary → InvalidPayload', () => {
    expect(caught(() => parseSecretValue({})).reason).toBe('InvalidPayload');
  });

  it('a member nested too deeply to re-encode → InvalidPayload naming the key, not a crash', () => {
    const depth = 50_000;
    const secret = `{"deep":${'['.repeat(depth)}${']'.repeat(depth)},"password":"s3cr3t-value"}`;
    const err = caught(() => parseSecretValue({ SecretString: secret }));
    expect(err.reason).toBe('InvalidPayload');
    expect(err.message).toMatch(/nested too deeply/);
    expect(err.message).not.toContain('s3cr3t-value');
  });

  it.each<[string, string]>([
    ['plain text', 'pass\ud800word s3cr3t-value'],
    ['plain text ending in a high surrogate', 's3cr3t-value\ud83d'],
    ['a JSON member (raw)', '{"password":"s3cr3t-value\udc00"}'],
    ['a JSON member (escaped in the JSON text)', '{"password":"s3cr3t-value\\udc00"}'],
  ])('an unpaired surrogate in %s → InvalidPayload, not U+FFFD written as Synced', (_name, secret) => {
    const err = caught(() => parseSecretValue({ SecretString: secret }));
    expect(err.reason).toBe('InvalidPayload');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/not valid Unicode \(it holds an unpaired UTF-16 surrogate\)/);
    expect(err.message).not.toContain('s3cr3t-value');
    if (secret.startsWith('{')) expect(err.message).toContain('the value of "password"');
  });

  it('an unpaired surrogate inside a non-string member is re-escaped losslessly', () => {
    const data = parseSecretValue({ SecretString: '{"list":["a\\ud800"],"ok":"\ud83d\udd11"}' });
    expect(asText(data)).toEqual({ list: '["a\\ud800"]', ok: '🔑' });
  });

  it('a deeply nested JSON array that is not an object is plain text, not an error', () => {
    const text = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    expect(parseSecretValue({ SecretString: text }).get('value')!.toString()).toBe(text);
  });

  it('handles tens of thousands of keys', () => {
    const object = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    const data = parseSecretValue({ SecretString: JSON.stringify(object) });
    expect(data.size).toBe(20_000);
    expect(data.get('k19999')!.toString()).toBe('19999');
  });
});

describe('applyKeyMapping', () => {
  const data: SecretData = new Map([
    ['user', Buffer.from('app')],
    ['password', Buffer.from('pw')],
    ['host', Buffer.from('db')],
  ]);

  it.each<[string, KeyMapping[] | undefined, Record<string, string>]>([
    ['no mapping → every key under its own name', undefined, { user: 'app', password: 'pw', host: 'db' }],
    ['selects only the mapped keys', [{ from: 'password' }], { password: 'pw' }],
    [
      'renames with to',
      [{ from: 'password', to: 'DB_PASSWORD' }, { from: 'user' }],
      { DB_PASSWORD: 'pw', user: 'app' },
    ],
    [
      'may copy one key twice under two names',
      [
        { from: 'host', to: 'A' },
        { from: 'host', to: 'B' },
      ],
      { A: 'db', B: 'db' },
    ],
  ])('%s', (_name, mapping, expected) => {
    expect(asText(applyKeyMapping(data, mapping))).toEqual(expected);
  });

  it('a mapped key the secret lacks → InvalidPayload naming that key', () => {
    const err = caught(() => applyKeyMapping(data, [{ from: 'user' }, { from: 'token' }]));
    expect(err.reason).toBe('InvalidPayload');
    expect(err.message).toContain('"token"');
    expect(err.message).not.toContain('"user"');
  });

  it('lists at most five missing keys and counts the rest', () => {
    const mapping = Array.from({ length: 8 }, (_, i) => ({ from: `missing${i}` }));
    expect(caught(() => applyKeyMapping(data, mapping)).message).toContain('and 3 more');
  });
});

describe('isValidSecretKey', () => {
  it.each([
    ['password', true],
    ['DB_PASSWORD', true],
    ['tls.crt', true],
    ['.dotfile', true],
    ['a-b_c.d', true],
    ['k'.repeat(253), true],
    ['k'.repeat(254), false],
    ['.', false],
    ['..', false],
    // The API server refuses these too ("must not start with '..'"); '..' inside a key is fine.
    ['..data', false],
    ['...', false],
    ['a..b', true],
    ['._..', true],
    ['', false],
    ['has space', false],
    ['slash/key', false],
    ['colon:key', false],
    ['ümlaut', false],
    ['new\nline', false],
  ])('%j → %s', (key, valid) => {
    expect(isValidSecretKey(key)).toBe(valid);
  });
});

describe('validateSecretData', () => {
  it('an invalid key → InvalidKey naming the key and the rule, never the value', () => {
    const err = caught(() =>
      validateSecretData(
        new Map([
          ['ok', Buffer.from('fine')],
          ['bad key', Buffer.from('s3cr3t-value')],
        ]),
      ),
    );
    expect(err.reason).toBe('InvalidKey');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('"bad key"');
    expect(err.message).toContain("letters, digits, '-', '_' and '.'");
    expect(err.message).not.toContain('s3cr3t-value');
    expect(err.message).not.toContain('"ok"');
  });

  it('truncates a very long invalid key in the message', () => {
    const key = `${'x'.repeat(10_000)}/`;
    const err = caught(() => validateSecretData(new Map([[key, Buffer.from('v')]])));
    expect(err.message.length).toBeLessThan(400);
    expect(err.message).toContain('(10001 characters)');
  });

  it('accepts data exactly at the size limit (key bytes + value bytes)', () => {
    const data = new Map([['k', Buffer.alloc(MAX_SECRET_DATA_BYTES - 1)]]);
    expect(() => validateSecretData(data)).not.toThrow();
  });

  it('one byte over the limit → TooLarge with the size, not the content', () => {
    const data = new Map([
      ['k', Buffer.alloc(MAX_SECRET_DATA_BYTES - 1, 'z')],
      ['k2', Buffer.from('')],
    ]);
    const err = caught(() => validateSecretData(data));
    expect(err.reason).toBe('TooLarge');
    expect(err.message).toContain(String(MAX_SECRET_DATA_BYTES + 2));
    expect(err.message).not.toContain('zzz');
  });
});

describe('secretDataFrom', () => {
  it('a key invalid in AWS is fine once renamed by the mapping', () => {
    const data = secretDataFrom({ SecretString: '{"db password":"pw","other key":"x"}' }, [
      { from: 'db password', to: 'DB_PASSWORD' },
    ]);
    expect(asText(data)).toEqual({ DB_PASSWORD: 'pw' });
  });

  it('an unmapped invalid key fails the whole sync (nothing is written)', () => {
    expect(caught(() => secretDataFrom({ SecretString: '{"ok":"1","not/ok":"2"}' }, undefined)).reason).toBe(
      'InvalidKey',
    );
  });

  it('a plain-text secret can be renamed from value', () => {
    expect(asText(secretDataFrom({ SecretString: 'pw' }, [{ from: 'value', to: 'PASSWORD' }]))).toEqual({
      PASSWORD: 'pw',
    });
  });
});
