/**
 * SecretSyncs the API server must refuse, each with the words a person should see in the error.
 * Shared by the CRD test here and the hostile-input corpus of the fault suite.
 */
export interface InvalidCase {
  name: string;
  spec: unknown;
  /** Override metadata.name (default: a valid generated name). */
  metadataName?: string;
  /** A fragment of the API server's message. */
  expect: RegExp;
}

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf';

export const INVALID_SECRETSYNCS: InvalidCase[] = [
  { name: 'no spec', spec: undefined, expect: /spec: Required value/ },
  { name: 'no source', spec: {}, expect: /spec.source: Required value/ },
  { name: 'empty secretId', spec: { source: { secretId: '' } }, expect: /secretId/ },
  {
    name: 'secretId with spaces',
    spec: { source: { secretId: 'prod db' } },
    expect: /secretId must be a secret name of 1-512 letters, digits and/,
  },
  {
    name: 'ARN of another service',
    spec: { source: { secretId: 'arn:aws:ssm:eu-west-1:123456789012:parameter/x' } },
    expect: /full Secrets Manager ARN/,
  },
  {
    name: 'ARN without the 6-character suffix',
    spec: { source: { secretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db' } },
    expect: /secret:<name>-<6 characters>/,
  },
  {
    name: 'ARN with a short account',
    spec: { source: { secretId: 'arn:aws:secretsmanager:eu-west-1:1234:secret:prod/db-AbCdEf' } },
    expect: /12-digit account/,
  },
  {
    name: 'region differs from the ARN',
    spec: { source: { secretId: ARN, region: 'us-east-1' } },
    expect: /region must match the region in spec.source.secretId/,
  },
  {
    name: 'malformed region',
    spec: { source: { secretId: 'db', region: 'Europe' } },
    expect: /region must look like an AWS region/,
  },
  {
    name: 'AWSPENDING stage',
    spec: { source: { secretId: 'db', versionStage: 'AWSPENDING' } },
    expect: /sends no change event for those labels/,
  },
  {
    name: 'stage with a slash',
    spec: { source: { secretId: 'db', versionStage: 'a/b' } },
    expect: /versionStage may contain only/,
  },
  {
    name: 'target name with capitals',
    spec: { source: { secretId: 'db' }, target: { name: 'DB_Creds' } },
    expect: /target.name must be a DNS-1123 subdomain/,
  },
  {
    name: 'unknown Secret type',
    spec: { source: { secretId: 'db' }, target: { type: 'kubernetes.io/service-account-token' } },
    expect: /Unsupported value: "kubernetes.io\/service-account-token"/,
  },
  {
    name: 'ssh-auth target type (cannot exist empty before the first sync)',
    spec: { source: { secretId: 'db' }, target: { type: 'kubernetes.io/ssh-auth' } },
    expect: /Unsupported value: "kubernetes.io\/ssh-auth"/,
  },
  {
    name: 'key mapping to an invalid key',
    spec: { source: { secretId: 'db' }, target: { keys: [{ from: 'password', to: 'db password' }] } },
    expect: /to must be a valid Secret key/,
  },
  {
    name: 'key mapping with an invalid from and no to',
    spec: { source: { secretId: 'db' }, target: { keys: [{ from: 'db password' }] } },
    expect: /from is not a valid Secret key .*set 'to' to rename it/,
  },
  {
    name: 'two mappings to the same key',
    spec: {
      source: { secretId: 'db' },
      target: {
        keys: [
          { from: 'a', to: 'x' },
          { from: 'b', to: 'x' },
        ],
      },
    },
    expect: /may appear only once in target.keys/,
  },
  {
    name: 'key mapping to ".."',
    spec: { source: { secretId: 'db' }, target: { keys: [{ from: 'a', to: '..' }] } },
    expect: /to must be a valid Secret key/,
  },
  {
    name: 'unknown merge policy',
    spec: { source: { secretId: 'db' }, mergePolicy: 'Overwrite' },
    expect: /Unsupported value: "Overwrite": supported values: "Merge", "Replace"/,
  },
  {
    name: 'unknown deletion policy',
    spec: { source: { secretId: 'db' }, deletionPolicy: 'Orphan' },
    expect: /supported values: "Retain", "Delete"/,
  },
  {
    name: 'resync interval not a duration',
    spec: { source: { secretId: 'db' }, resyncInterval: 'daily' },
    expect: /resyncInterval must be "0" or a duration between 1m and 8760h/,
  },
  {
    name: 'resync interval too short',
    spec: { source: { secretId: 'db' }, resyncInterval: '10s' },
    expect: /resyncInterval must be "0" or a duration between 1m and 8760h/,
  },
  {
    name: 'suspend not a boolean',
    spec: { source: { secretId: 'db' }, suspend: 'yes' },
    expect: /spec.suspend: Invalid value: "string": spec.suspend in body must be of type boolean/,
  },
  {
    name: 'key mapping to a key starting with ".." (the API server refuses it in a Secret)',
    spec: { source: { secretId: 'db' }, target: { keys: [{ from: 'a', to: '..data' }] } },
    expect: /to must be a valid Secret key .*not starting with '\.\.'/,
  },
  {
    name: 'key mapping from a key starting with ".." and no to',
    spec: { source: { secretId: 'db' }, target: { keys: [{ from: '..data' }] } },
    expect: /from is not a valid Secret key .*set 'to' to rename it/,
  },
  {
    name: 'key mapping to an empty key',
    spec: { source: { secretId: 'db' }, target: { keys: [{ from: 'a', to: '' }] } },
    expect: /to in body should be at least 1 chars long/,
  },
  {
    name: 'key mapping to a key longer than 253 characters',
    spec: { source: { secretId: 'db' }, target: { keys: [{ from: 'a', to: 'k'.repeat(254) }] } },
    expect: /keys\[0\]\.to: Too long: may not be more than 253/,
  },
  {
    name: 'key mapping without from',
    spec: { source: { secretId: 'db' }, target: { keys: [{ to: 'x' }] } },
    expect: /keys\[0\]\.from: Required value/,
  },
  {
    name: 'more than 100 key mappings',
    spec: {
      source: { secretId: 'db' },
      target: { keys: Array.from({ length: 101 }, (_, i) => ({ from: `k${i}` })) },
    },
    expect: /spec.target.keys: Too many: 101: must have at most 100 items/,
  },
  {
    name: 'key mappings not a list',
    spec: { source: { secretId: 'db' }, target: { keys: { from: 'a' } } },
    expect: /spec.target.keys in body must be of type array/,
  },
  {
    name: 'AWSPREVIOUS stage',
    spec: { source: { secretId: 'db', versionStage: 'AWSPREVIOUS' } },
    expect: /versionStage cannot be AWSPENDING or AWSPREVIOUS/,
  },
  {
    name: 'empty stage',
    spec: { source: { secretId: 'db', versionStage: '' } },
    expect: /versionStage in body should be at least 1 chars long/,
  },
  {
    name: 'secret name of 513 characters',
    spec: { source: { secretId: 's'.repeat(513) } },
    expect: /secretId must be a secret name of 1-512 letters/,
  },
  {
    name: 'secretId longer than 2048 characters',
    spec: { source: { secretId: 's'.repeat(2049) } },
    expect: /spec.source.secretId: Too long: may not be more than 2048/,
  },
  {
    name: 'secretId with a NUL byte',
    spec: { source: { secretId: 'prod/db\u0000x' } },
    expect: /secretId must be a secret name of 1-512 letters/,
  },
  {
    name: 'secretId with a non-ASCII letter',
    spec: { source: { secretId: 'prod/dé' } },
    expect: /secretId must be a secret name of 1-512 letters/,
  },
  {
    name: 'secretId not a string',
    spec: { source: { secretId: 42 } },
    expect: /spec.source.secretId in body must be of type string/,
  },
  {
    name: 'source not an object',
    spec: { source: 'prod/db' },
    expect: /spec.source in body must be of type object/,
  },
  {
    name: 'target name ending with a dash',
    spec: { source: { secretId: 'db' }, target: { name: 'db-' } },
    expect: /target.name must be a DNS-1123 subdomain/,
  },
  {
    name: 'target name longer than 253 characters',
    spec: { source: { secretId: 'db' }, target: { name: 'n'.repeat(254) } },
    expect: /spec.target.name: Too long: may not be more than 253/,
  },
  {
    name: 'merge policy in lower case',
    spec: { source: { secretId: 'db' }, mergePolicy: 'merge' },
    expect: /Unsupported value: "merge": supported values: "Merge", "Replace"/,
  },
  {
    name: 'resync interval over a year',
    spec: { source: { secretId: 'db' }, resyncInterval: '8761h' },
    expect: /resyncInterval must be "0" or a duration between 1m and 8760h/,
  },
  {
    name: 'negative resync interval',
    spec: { source: { secretId: 'db' }, resyncInterval: '-1h' },
    expect: /resyncInterval must be "0" or a duration between 1m and 8760h/,
  },
  {
    name: 'template key that is not a Secret key',
    spec: { source: { secretId: 'db' }, target: { template: { data: { 'db url': '{{ a }}' } } } },
    expect: /each key of target.template.data must be a valid Secret key/,
  },
  {
    name: 'template key starting with ".."',
    spec: { source: { secretId: 'db' }, target: { template: { data: { '..data': '{{ a }}' } } } },
    expect: /each key of target.template.data must be a valid Secret key .*not starting with '\.\.'/,
  },
  {
    name: 'template with an unclosed placeholder',
    spec: {
      source: { secretId: 'db' },
      target: { template: { data: { url: 'postgres://{{ username @db:5432/app' } } },
    },
    expect:
      /spec.target.template.data\[url\]: Invalid value: .*: every \{\{ must be closed by \}\} with the name of an AWS key in between/,
  },
  {
    name: 'template with an empty placeholder',
    spec: { source: { secretId: 'db' }, target: { template: { data: { url: 'x{{ }}y' } } } },
    expect: /every \{\{ must be closed by \}\} with the name of an AWS key/,
  },
  {
    name: 'template with mustache triple braces',
    spec: { source: { secretId: 'db' }, target: { template: { data: { pw: '{{{ password }}}' } } } },
    expect: /\{\{\{ is not allowed: values are inserted as they are, never escaped/,
  },
  {
    name: 'template with a mustache section',
    spec: {
      source: { secretId: 'db' },
      target: { template: { data: { pw: '{{#password}}set{{/password}}' } } },
    },
    expect: /templates are logic-less: a placeholder holds the name of one AWS key/,
  },
  {
    name: 'template with a Go-template field',
    spec: { source: { secretId: 'db' }, target: { template: { data: { pw: '{{ .password }}' } } } },
    expect: /templates are logic-less: .*Go-template fields/,
  },
  {
    name: 'template longer than 8192 characters',
    spec: { source: { secretId: 'db' }, target: { template: { data: { big: 'x'.repeat(8193) } } } },
    expect: /spec.target.template.data.big: Too long: may not be more than 8192/,
  },
  {
    name: 'template not a string',
    spec: { source: { secretId: 'db' }, target: { template: { data: { port: 5432 } } } },
    expect: /spec.target.template.data.port in body must be of type string/,
  },
  {
    name: 'template without data',
    spec: { source: { secretId: 'db' }, target: { template: { copyKeys: true } } },
    expect: /spec.target.template.data: Required value/,
  },
  {
    name: 'template with no keys',
    spec: { source: { secretId: 'db' }, target: { template: { data: {} } } },
    expect: /spec.target.template.data: Invalid value: .*should have at least 1 properties/,
  },
  {
    name: 'more than 50 template keys',
    spec: {
      source: { secretId: 'db' },
      target: {
        template: { data: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'x'])) },
      },
    },
    expect: /spec.target.template.data: Too many: 51: must have at most 50/,
  },
  {
    name: 'target.keys next to a template that copies nothing',
    spec: {
      source: { secretId: 'db' },
      target: { keys: [{ from: 'password' }], template: { data: { url: '{{ password }}' } } },
    },
    expect: /set target.template.copyKeys to true to copy the selected keys too, or remove target.keys/,
  },
  {
    name: 'a key both copied by target.keys and templated',
    spec: {
      source: { secretId: 'db' },
      target: {
        keys: [{ from: 'pw', to: 'password' }],
        template: { copyKeys: true, data: { password: 'x{{ pw }}' } },
      },
    },
    expect: /a Secret key is both copied by target.keys and written by target.template.data/,
  },
  {
    name: 'name too long for the access entry username',
    spec: { source: { secretId: 'db' } },
    metadataName: `s${'x'.repeat(70)}`,
    expect: /metadata.name must be at most 63 characters/,
  },
];
