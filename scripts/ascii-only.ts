/**
 * Node hands V8 a module's source as one byte per character only when the file is all ASCII;
 * one other character and the whole source is kept as UTF-16, two bytes per character, for the
 * life of the process (5 MB more RSS for the controller bundle). esbuild escapes non-ASCII
 * characters in strings, templates and identifiers but leaves regular expression literals as they
 * are (evanw/esbuild#4205), and comments (which minifyWhitespace drops). This escapes what is left
 * as `\uXXXX` — the same pattern in a regular expression — and shifts the source map's columns on
 * those lines by what each escape adds, so mapped positions stay exact.
 */
export interface SourceMapJson {
  mappings: string;
  [key: string]: unknown;
}

export function asciiOnly(
  code: string,
  map: SourceMapJson,
): { code: string; map: SourceMapJson; escaped: number } {
  const lines = code.split('\n');
  const mappings = map.mappings.split(';');
  let escaped = 0;
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l]!;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range is the point
    if (!/[^\x00-\x7f]/.test(line)) continue;
    const columns: number[] = []; // UTF-16 columns of the characters escaped
    let out = '';
    for (let c = 0; c < line.length; c++) {
      const unit = line.charCodeAt(c);
      if (unit < 0x80) {
        out += line[c];
        continue;
      }
      // `\µ` (an identity escape) would become `\\u00b5`: a different pattern. Refuse it.
      let backslashes = 0;
      for (let b = c - 1; b >= 0 && line[b] === '\\'; b--) backslashes++;
      if (backslashes % 2 === 1)
        throw new Error(
          `escaped non-ASCII character in the bundle: ${line.slice(Math.max(0, c - 40), c + 20)}`,
        );
      out += `\\u${unit.toString(16).padStart(4, '0')}`;
      columns.push(c);
      escaped++;
    }
    lines[l] = out;
    if (mappings[l]) mappings[l] = shiftColumns(mappings[l]!, columns);
  }
  return { code: lines.join('\n'), map: { ...map, mappings: mappings.join(';') }, escaped };
}

/**
 * Segments are column deltas from the previous segment of the line: a segment moves right by 5
 * (`µ` → `\u00b5`) for each escape between it and the previous one.
 */
function shiftColumns(segments: string, escapedColumns: number[]): string {
  let column = 0;
  let e = 0;
  return segments
    .split(',')
    .map((segment) => {
      const { value, rest } = readVlq(segment);
      column += value;
      let between = 0;
      for (; e < escapedColumns.length && escapedColumns[e]! < column; e++) between++;
      return writeVlq(value + 5 * between) + rest;
    })
    .join(',');
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function readVlq(segment: string): { value: number; rest: string } {
  let result = 0;
  let shift = 0;
  let i = 0;
  for (;;) {
    const digit = B64.indexOf(segment[i++]!);
    result += (digit & 31) << shift;
    shift += 5;
    if (!(digit & 32)) break;
  }
  const value = result & 1 ? -(result >>> 1) : result >>> 1;
  return { value, rest: segment.slice(i) };
}

function writeVlq(value: number): string {
  let v = value < 0 ? (-value << 1) | 1 : value << 1;
  let out = '';
  do {
    let digit = v & 31;
    v >>>= 5;
    if (v) digit |= 32;
    out += B64[digit];
  } while (v);
  return out;
}
