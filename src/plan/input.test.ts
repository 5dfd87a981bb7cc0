import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INVALID_SECRETSYNCS } from '../../e2e/tests/invalid-secretsyncs.ts';
import { InputError, readSecretSync, validSecretSync } from './input.ts';

const doc = (name: string, secretId = 'prod/db') => `apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata:
  name: ${name}
spec:
  source:
    secretId: ${secretId}
`;
const read = (text: string, opts: { name?: string; namespace?: string } = {}) =>
  readSecretSync(text, { file: 'ss.yaml', ...opts });

describe('readSecretSync', () => {
  it('applies the CRD defaults the controller sees', () => {
    expect(read(doc('db'))).toEqual({
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name: 'db', namespace: 'default' },
      spec: {
        source: { secretId: 'prod/db', versionStage: 'AWSCURRENT' },
        target: { type: 'Opaque' },
        mergePolicy: 'Merge',
        deletionPolicy: 'Retain',
        resyncInterval: '24h',
        suspend: false,
      },
    });
    expect(read(doc('db'), { namespace: 'payments' }).metadata.namespace).toBe('payments');
  });

  it('picks one of several documents by --name, and says which there are otherwise', () => {
    const two = `${doc('a')}---\n${doc('b')}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n`;
    expect(read(two, { name: 'b' }).metadata.name).toBe('b');
    expect(() => read(two)).toThrow('ss.yaml holds 2 SecretSyncs (a, b); choose one with --name');
    expect(() => read(two, { name: 'c' })).toThrow('ss.yaml holds no SecretSync named c (it holds: a, b)');
    expect(() => read('apiVersion: v1\nkind: ConfigMap\n')).toThrow('holds no SecretSync');
    expect(() => read('a: [')).toThrow(/not valid YAML/);
  });

  it('refuses a namespace that differs from --namespace', () => {
    const text = doc('db').replace('  name: db', '  name: db\n  namespace: a');
    expect(() => read(text, { namespace: 'b' })).toThrow('metadata.namespace a differs from --namespace b');
  });

  it('accepts every SecretSync of examples/ (which the API server accepts: examples.test.ts)', () => {
    const dir = new URL('../../examples/', import.meta.url);
    let n = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      for (const name of [...text.matchAll(/^kind: SecretSync\nmetadata:\n {2}name: (\S+)/gm)].map(
        (m) => m[1],
      )) {
        expect(read(text, { name }).metadata.name).toBe(name);
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(10);
  });

  // The corpus the API server must refuse (crd.test.ts): plan refuses each too, before any AWS call.
  it.each(INVALID_SECRETSYNCS)('refuses $name', (c) => {
    const raw = {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name: c.metadataName ?? 'valid-name' },
      ...(c.spec === undefined ? {} : { spec: c.spec }),
    };
    expect(() => validSecretSync(raw)).toThrow(InputError);
  });

  it('lists every problem at once, by field', () => {
    const raw = {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name: 'db' },
      spec: {
        source: { secretId: 'db', versionStage: 'AWSPENDING' },
        mergePolicy: 'Overwrite',
        suspend: 'yes',
      },
    };
    expect(() => validSecretSync(raw)).toThrow(
      /invalid SecretSync:\n {2}- spec\.source\.versionStage cannot be AWSPENDING[\s\S]*spec\.suspend must be true or false[\s\S]*spec\.mergePolicy must be Merge or Replace/,
    );
  });
});
