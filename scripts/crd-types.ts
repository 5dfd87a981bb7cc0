import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/**
 * Turns the CRD's openAPIV3Schema into TypeScript interfaces, so the CRD yaml stays the one
 * source of truth for the SecretSync shape. Covers the schema features the CRD uses: objects (maps
 * too), arrays, strings (with enums), integers, booleans; descriptions become doc comments.
 */
interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema;
  enum?: string[];
  default?: unknown;
}

export const CRD_PATH = new URL('../crds/secretsync.io_secretsyncs.yaml', import.meta.url);

const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const doc = (d: string | undefined, indent: string) =>
  d ? `${indent}/** ${d.replace(/\*\//g, '* /').replace(/\s+/g, ' ').trim()} */\n` : '';

export function generateTypes(crdText: string): string {
  const crd = parse(crdText);
  const version = crd.spec.versions[0];
  const root: Schema = version.schema.openAPIV3Schema;
  const out: string[] = [];

  function typeOf(s: Schema, name: string): string {
    if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(' | ');
    switch (s.type) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array':
        return `${typeOf(s.items ?? {}, name.replace(/s$/, ''))}[]`;
      case 'object':
        if (!s.properties)
          return `Record<string, ${s.additionalProperties ? typeOf(s.additionalProperties, name) : 'unknown'}>`;
        emit(s, name);
        return name;
      default:
        return 'unknown';
    }
  }

  function emit(s: Schema, name: string) {
    const lines: string[] = [];
    for (const [prop, ps] of Object.entries(s.properties ?? {})) {
      // Fields with a default are always present once the API server has admitted the object.
      const optional = !(s.required ?? []).includes(prop) && ps.default === undefined ? '?' : '';
      lines.push(`${doc(ps.description, '  ')}  ${prop}${optional}: ${typeOf(ps, name + pascal(prop))};`);
    }
    out.push(`${doc(s.description, '')}export interface ${name} {\n${lines.join('\n')}\n}\n`);
  }

  const spec = typeOf(root.properties!.spec!, 'SecretSyncSpec');
  const status = typeOf(root.properties!.status!, 'SecretSyncStatus');
  out.push(
    `${doc(root.description, '')}export interface SecretSync {
  apiVersion: '${crd.spec.group}/${version.name}';
  kind: '${crd.spec.names.kind}';
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec: ${spec};
  status?: ${status};
}
`,
  );
  return `// Generated from crds/secretsync.io_secretsyncs.yaml by scripts/gen-types.ts. Do not edit.
// A unit test regenerates it and fails when it differs from the CRD.

export const GROUP = '${crd.spec.group}';
export const VERSION = '${version.name}';
export const PLURAL = '${crd.spec.names.plural}';
export const KIND = '${crd.spec.names.kind}';

${out.join('\n')}`;
}

export const readCrd = (): string => readFileSync(CRD_PATH, 'utf8');
