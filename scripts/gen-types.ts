import { writeFileSync } from 'node:fs';
import { generateTypes, readCrd } from './crd-types.ts';

const target = new URL('../src/shared/secretsync.generated.ts', import.meta.url);
writeFileSync(target, generateTypes(readCrd()));
console.log(`wrote ${target.pathname}`);
