import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateTypes, readCrd } from './crd-types.ts';

describe('SecretSync TypeScript types', () => {
  it('are exactly what the CRD generates (run `npm run gen:types` after editing the CRD)', () => {
    const committed = readFileSync(new URL('../src/shared/secretsync.generated.ts', import.meta.url), 'utf8');
    expect(committed).toBe(generateTypes(readCrd()));
  });

  it('carry every spec field of the CRD', () => {
    const ts = generateTypes(readCrd());
    for (const field of [
      'secretId',
      'versionStage',
      'mergePolicy',
      'deletionPolicy',
      'resyncInterval',
      'suspend',
    ]) {
      expect(ts).toMatch(new RegExp(`\\b${field}\\??:`));
    }
    expect(ts).toContain('mergePolicy: "Merge" | "Replace"');
  });
});
