// spec.target.template: Secret values built from the AWS keys by logic-less `{{ key }}` substitution.
//
// Our own few lines rather than a template library. mustache.js, the obvious candidate, would add
// ~10 KB to a ~37 KiB zip and still need working around at every point that matters here: it
// HTML-escapes `{{ }}` by default (a password with `&` or `<` would be written changed), reads
// `{{ tls.crt }}` as a path into nested objects (AWS keys are flat and often dotted), renders a
// missing key as "" (we must refuse it: InvalidTemplate), works on strings only (a binary secret's
// bytes must pass untouched), and brings sections, partials and delimiter changes we do not want.
//
// The grammar, the same as the CRD's rule (crds/secretsync.io_secretsyncs.yaml), so what the API
// server admitted parses here:
// - A placeholder is `{{`, a key name, `}}`. The name is the text in between without surrounding
//   blanks (space, tab, CR, LF, FF: RE2's \s), holds no brace and does not start with one of
//   # ^ / ! > & = . (mustache tags and Go-template fields, refused rather than read as key names).
// - Everything else is literal, including single braces and `}}` (so JSON templates work); `{{`
//   cannot be written literally, and `{{{` is refused (values are never escaped, so mustache's
//   triple braces are not needed, and would silently keep a brace otherwise).
// Values are inserted byte for byte: strings as UTF-8, other JSON members JSON-encoded, a binary
// secret's bytes as they are. Errors name template keys and AWS key names, never values.

import { quoteKey, SyncError } from './errors.ts';
import type { SecretData } from './payload.ts';

/** A parsed template: literal text and the AWS keys between it. */
export type TemplatePart = { text: string } | { key: string };

export interface TargetTemplate {
  /** Secret key → its template. */
  data: ReadonlyMap<string, readonly TemplatePart[]>;
  /** Also copy the AWS keys (every key, or those spec.target.keys selects) next to the templated ones. */
  copyKeys: boolean;
}

/** The CRD's limits on spec.target.template.data. */
export const MAX_TEMPLATES = 50;
export const MAX_TEMPLATE_LENGTH = 8192;

export const TEMPLATE_RULE =
  'every {{ must be closed by }} with the name of an AWS key in between, for example {{ password }}';

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
const BLANKS = /^[\t\n\f\r ]+|[\t\n\f\r ]+$/g;
const NOT_A_KEY_NAME = /^[#^/!>&=.]/;

/** Parses one template, or says what is wrong with it (no value is involved: templates are spec). */
export function parseTemplate(text: string): TemplatePart[] | string {
  if (text.includes('{{{'))
    return '{{{ is not allowed: values are inserted as they are, never escaped, so write {{ key }}';
  const parts: TemplatePart[] = [];
  let at = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    const literal = text.slice(at, m.index);
    if (literal.includes('{{')) return TEMPLATE_RULE;
    if (literal !== '') parts.push({ text: literal });
    const key = (m[1] ?? '').replace(BLANKS, '');
    if (key === '') return TEMPLATE_RULE;
    if (NOT_A_KEY_NAME.test(key)) {
      return `${quoteKey(`{{${m[1]}}}`)} is not a key name: templates are logic-less (no sections, comments, partials or Go-template fields); write {{ key }}`;
    }
    parts.push({ key });
    at = m.index + m[0].length;
  }
  const rest = text.slice(at);
  if (rest.includes('{{')) return TEMPLATE_RULE;
  if (rest !== '') parts.push({ text: rest });
  return parts;
}

/**
 * Renders every template from the AWS keys (`source`: the secret's keys before any mapping). A key
 * a template names that the secret lacks is InvalidTemplate, listing each template key and the AWS
 * key it misses; a result over `maxBytes` (Kubernetes' Secret size) is TooLarge, found before it is
 * assembled: a template may repeat a 64 KiB value many times.
 */
export function renderTemplates(template: TargetTemplate, source: SecretData, maxBytes: number): SecretData {
  const missing: string[] = [];
  let size = 0;
  for (const [target, parts] of template.data) {
    size += Buffer.byteLength(target, 'utf8');
    for (const part of parts) {
      if ('text' in part) size += Buffer.byteLength(part.text, 'utf8');
      else if (source.has(part.key)) size += source.get(part.key)!.length;
      else missing.push(`${quoteKey(target)} uses ${quoteKey(part.key)}`);
    }
  }
  if (missing.length > 0) {
    const shown =
      missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '');
    throw new SyncError(
      'InvalidTemplate',
      `spec.target.template.data: ${shown}, but the AWS secret has no such key; nothing was written. ` +
        'Fix the template or add the key in AWS',
    );
  }
  if (size > maxBytes) {
    throw new SyncError(
      'TooLarge',
      `the rendered templates total ${size} bytes, over Kubernetes' Secret limit of ${maxBytes} bytes`,
    );
  }
  const out: SecretData = new Map();
  for (const [target, parts] of template.data) {
    out.set(
      target,
      Buffer.concat(parts.map((p) => ('text' in p ? Buffer.from(p.text, 'utf8') : source.get(p.key)!))),
    );
  }
  return out;
}
