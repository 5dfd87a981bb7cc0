import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SyncError } from './errors.ts';
import { MAX_SECRET_DATA_BYTES, parseSecretValue, type SecretData, secretDataFrom } from './payload.ts';
import { parseTemplate, renderTemplates, type TargetTemplate, type TemplatePart } from './template.ts';

const parsed = (text: string): TemplatePart[] => {
  const parts = parseTemplate(text);
  if (typeof parts === 'string') throw new Error(`refused ${JSON.stringify(text)}: ${parts}`);
  return parts;
};
const templateOf = (data: Record<string, string>, copyKeys = false): TargetTemplate => ({
  data: new Map(Object.entries(data).map(([k, v]) => [k, parsed(v)])),
  copyKeys,
});
const render = (data: Record<string, string>, source: SecretData) =>
  renderTemplates(templateOf(data), source, MAX_SECRET_DATA_BYTES);
const keys = (obj: Record<string, string>): SecretData =>
  new Map(Object.entries(obj).map(([k, v]) => [k, Buffer.from(v)]));
const asText = (data: SecretData) => Object.fromEntries([...data].map(([k, v]) => [k, v.toString()]));
const caught = (f: () => unknown): SyncError => {
  try {
    f();
  } catch (err) {
    if (err instanceof SyncError) return err;
    throw err;
  }
  throw new Error('did not throw');
};

describe('renderTemplates', () => {
  const creds = keys({ username: 'app', password: 'p&<>"\'/=', 'tls.crt': 'CERT', 'db password': 'x y' });

  it('substitutes each {{ key }}, values as they are: no HTML or URL escaping', () => {
    expect(
      asText(render({ DATABASE_URL: 'postgres://{{ username }}:{{ password }}@db:5432/app' }, creds)),
    ).toEqual({ DATABASE_URL: `postgres://app:p&<>"'/=@db:5432/app` });
  });

  it('ignores blanks around the name, any amount, none included', () => {
    for (const t of ['{{password}}', '{{ password }}', '{{   password\t}}', '{{\npassword\r\n}}']) {
      expect(asText(render({ out: t }, creds)).out, t).toBe(`p&<>"'/=`);
    }
  });

  it('reads dotted and spaced AWS key names as flat keys', () => {
    expect(asText(render({ a: '{{ tls.crt }}', b: '[{{ db password }}]' }, creds))).toEqual({
      a: 'CERT',
      b: '[x y]',
    });
  });

  it('keeps single braces and }} as text, so JSON templates work', () => {
    const out = render(
      { 'config.json': '{"auths":{"reg":{"user":"{{username}}","port":{{ port }}}}}' },
      keys({ username: 'app', port: '5432' }),
    );
    expect(asText(out)['config.json']).toBe('{"auths":{"reg":{"user":"app","port":5432}}}');
    expect(JSON.parse(asText(out)['config.json']!)).toEqual({ auths: { reg: { user: 'app', port: 5432 } } });
  });

  it('writes a template without placeholders as it is, and the same key any number of times', () => {
    expect(asText(render({ mode: 'require', twice: '{{username}}{{ username }}' }, creds))).toEqual({
      mode: 'require',
      twice: 'appapp',
    });
  });

  it('inserts a binary secret byte for byte', () => {
    const bytes = Buffer.from([0xff, 0x00, 0xc3, 0x28, 0x7b, 0x7b]);
    const out = render({ blob: 'pre-{{ value }}-post' }, parseSecretValue({ SecretBinary: bytes }));
    expect(out.get('blob')).toEqual(Buffer.concat([Buffer.from('pre-'), bytes, Buffer.from('-post')]));
  });

  it('inserts non-string JSON members JSON-encoded, numbers as written, and multi-byte text intact', () => {
    const source = parseSecretValue({
      SecretString: '{"port":5432.0,"tls":true,"hosts":["a","b"],"name":"dé🔑"}',
    });
    expect(asText(render({ x: '{{port}}|{{tls}}|{{hosts}}|{{name}}' }, source)).x).toBe(
      '5432.0|true|["a","b"]|dé🔑',
    );
  });

  it('refuses a key the AWS secret lacks with InvalidTemplate, naming template key and AWS key, never a value', () => {
    const err = caught(() =>
      render({ DATABASE_URL: '{{ username }}:{{ pasword }}@{{ host }}', OTHER: '{{ password }}' }, creds),
    );
    expect(err.reason).toBe('InvalidTemplate');
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      'spec.target.template.data: "DATABASE_URL" uses "pasword", "DATABASE_URL" uses "host", but the AWS secret has no such key; nothing was written. Fix the template or add the key in AWS',
    );
    for (const value of ['app', 'p&<>', 'CERT']) expect(err.message).not.toContain(value);
  });

  it('lists at most five missing keys', () => {
    const t = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, `{{ m${i} }}`]));
    expect(caught(() => render(t, creds)).message).toContain('"k4" uses "m4" and 3 more');
  });

  it('refuses output over the Secret size limit before assembling it (TooLarge)', () => {
    const big = new Map([['v', Buffer.alloc(64 * 1024, 'x')]]);
    const err = caught(() => render({ out: '{{v}}'.repeat(17) }, big));
    expect(err.reason).toBe('TooLarge');
    expect(err.message).toContain(`${17 * 64 * 1024 + 3} bytes`);
    expect(render({ out: '{{v}}'.repeat(15) }, big).get('out')).toHaveLength(15 * 64 * 1024);
  });
});

describe('secretDataFrom with a template', () => {
  const value = { SecretString: JSON.stringify({ username: 'app', password: 'pw', host: 'db' }) };

  it('writes only the templated keys by default', () => {
    expect(asText(secretDataFrom(value, undefined, templateOf({ url: '{{username}}@{{host}}' })))).toEqual({
      url: 'app@db',
    });
  });

  it('with copyKeys, also the copied keys (all, or as mapped); the template wins a clash', () => {
    const t = templateOf({ url: '{{username}}@{{host}}', host: 'override-{{ host }}' }, true);
    expect(asText(secretDataFrom(value, undefined, t))).toEqual({
      username: 'app',
      password: 'pw',
      host: 'override-db',
      url: 'app@db',
    });
    // Templates read AWS names, not mapped ones.
    expect(asText(secretDataFrom(value, [{ from: 'password', to: 'PW' }], t))).toEqual({
      PW: 'pw',
      url: 'app@db',
      host: 'override-db',
    });
  });

  it('still validates the result: the size counts copied and templated keys', () => {
    const big = { SecretString: JSON.stringify({ v: 'x'.repeat(600 * 1024) }) };
    expect(caught(() => secretDataFrom(big, undefined, templateOf({ w: '{{v}}' }, true))).reason).toBe(
      'TooLarge',
    );
  });
});

describe('parseTemplate', () => {
  it('splits text and keys', () => {
    expect(parsed('a{{ b }}c{{d}}')).toEqual([{ text: 'a' }, { key: 'b' }, { text: 'c' }, { key: 'd' }]);
    expect(parsed('')).toEqual([]);
    expect(parsed('{ } }} {x}')).toEqual([{ text: '{ } }} {x}' }]);
    expect(parsed('{a{{ b }}}')).toEqual([{ text: '{a' }, { key: 'b' }, { text: '}' }]);
    expect(parsed('ends with {')).toEqual([{ text: 'ends with {' }]);
  });

  it.each([
    ['{{ user', 'every {{ must be closed'],
    ['{{ user }', 'every {{ must be closed'],
    ['{{ a {{ b }}', 'every {{ must be closed'],
    ['{{}}', 'every {{ must be closed'],
    ['{{ \t }}', 'every {{ must be closed'],
    ['{{ a } b }}', 'every {{ must be closed'],
    ['text {{', 'every {{ must be closed'],
    ['{{{ password }}}', '{{{ is not allowed'],
    ['a{{{b}}', '{{{ is not allowed'],
    ['{{#list}}x{{/list}}', '"{{#list}}" is not a key name'],
    ['{{ ^x }}', 'is not a key name'],
    ['{{! comment }}', 'is not a key name'],
    ['{{> partial }}', 'is not a key name'],
    ['{{& raw }}', 'is not a key name'],
    ['{{=<% %>=}}', 'is not a key name'],
    ['{{ .password }}', 'is not a key name: templates are logic-less'],
  ])('refuses %j', (text, message) => {
    expect(parseTemplate(text)).toContain(message);
  });
});

// The CRD's rules for a template string, run with JavaScript's regex engine (the patterns use only
// syntax RE2 and JavaScript read alike), must admit exactly what parseTemplate accepts.
describe("the CRD's template rules", () => {
  const crd = parse(
    readFileSync(new URL('../../crds/secretsync.io_secretsyncs.yaml', import.meta.url), 'utf8'),
  );
  const target = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.target;
  const rules: { rule: string }[] =
    target.properties.template.properties.data.additionalProperties['x-kubernetes-validations'];
  // CEL string literal → regex source: its escapes \t \n \f \r and \\.
  const celUnescape = (s: string) =>
    s.replace(/\\([tnfr\\])/g, (_m, c: string) => ({ t: '\t', n: '\n', f: '\f', r: '\r', '\\': '\\' })[c]!);
  const patterns = rules.map((r) =>
    [...r.rule.matchAll(/matches\('((?:[^'\\]|\\.)*)'\)/g)].map((m) => new RegExp(celUnescape(m[1]!), 'u')),
  );
  const [grammar] = patterns[1]!;
  const [tags] = patterns[2]!;
  const admitted = (t: string) => !t.includes('{{{') && grammar!.test(t) && !tags!.test(t);

  const corpus = [
    '',
    'plain',
    '{{a}}',
    '{{ a }}',
    ' {{\ta\n}} ',
    'x{{ db password }}y',
    '{"a":{{ b }}}',
    '{a{{ b }}}',
    '{ } }} }',
    'ends {',
    '{{ tls.crt }}',
    '{{a}}{{b}}',
    '{{',
    '}}{{',
    '{{ a',
    '{{ a }',
    '{{ a {{ b }}',
    '{{}}',
    '{{ }}',
    '{{ a } b }}',
    '{{{a}}}',
    '{{{{a}}',
    'x{{{a}}',
    '{{#a}}',
    '{{ /a }}',
    '{{.a}}',
    '{{ a.b }}',
    '{{=x=}}',
    '{{\u00a0a }}',
    'a{b{{c}}d}e',
    '{{a}}{',
    '{{a}}{{',
    '{x{{a}}',
  ];
  it.each(corpus)('agrees with parseTemplate on %j', (text) => {
    expect(admitted(text)).toBe(typeof parseTemplate(text) !== 'string');
  });
});
