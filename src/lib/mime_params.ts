// Content-* field values as readers parse them: the media type and the
// parameters, in the RFC's way (quoted strings, comments, RFC 2231
// continuations and charsets) or a plain one (name=value up to ";" or a blank).

/** `rfc`: RFC 2045/2231; `plain`: name=value up to ";" or a blank, the first of each */
export type ParamStyle = 'rfc' | 'plain';

export function mediaType(value: string, style: ParamStyle): string | undefined {
  const text = style === 'rfc' ? stripComments(value) : value;
  const m = /^\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*\/\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)/.exec(text);
  return m ? `${m[1]}/${m[2]}`.toLowerCase() : undefined;
}

/** Comments (parenthesised, nested, outside quoted strings) removed. */
export function stripComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += ch + (value[i + 1] ?? '');
      i++;
      continue;
    }
    if (depth === 0 && ch === '"') quoted = !quoted;
    if (!quoted && ch === '(') { depth++; continue; }
    if (!quoted && ch === ')' && depth > 0) { depth--; continue; }
    if (depth === 0) out += ch;
  }
  return out;
}

/** Parameters of a Content-* value, lower-case names; with `rfc`, RFC 2231 continuations joined. */
export function readParams(value: string, style: ParamStyle): Map<string, string> {
  const params = new Map<string, string>();
  if (style === 'plain') {
    for (const m of value.matchAll(/;\s*([^\s=;]+)\s*=\s*("[^"]*"|[^;\s]*)/g)) {
      const name = m[1].toLowerCase();
      if (!params.has(name)) params.set(name, m[2].replace(/^"|"$/g, ''));
    }
    return params;
  }
  const text = stripComments(value);
  const pieces = new Map<string, Map<number, string>>();
  const re = /;\s*([^\s=;*"]+)(\*(\d+))?(\*)?\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))/g;
  for (const m of text.matchAll(re)) {
    const name = m[1].toLowerCase();
    let v = m[5] !== undefined ? m[5].replace(/\\(.)/g, '$1') : m[6];
    if (m[4]) v = decode2231(v, m[3] === undefined || m[3] === '0');
    if (m[2] !== undefined) {
      const parts = pieces.get(name) ?? new Map<number, string>();
      if (!parts.has(Number(m[3]))) parts.set(Number(m[3]), v);
      pieces.set(name, parts);
    } else if (!params.has(name)) {
      params.set(name, v);
    }
  }
  for (const [name, parts] of pieces) {
    if (params.has(name)) continue;
    const joined: string[] = [];
    for (let i = 0; parts.has(i); i++) joined.push(parts.get(i)!);
    if (joined.length) params.set(name, joined.join(''));
  }
  return params;
}

function decode2231(v: string, first: boolean): string {
  const body = first ? v.replace(/^[^']*'[^']*'/, '') : v;
  return body.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Every name a reader could take from `param` of a Content-* value (`name`,
 * `filename`): RFC 2231 and plain readings, each also with its RFC 2047
 * encoded words decoded (bytes as latin1: what matters is the extension).
 */
export function fileNames(value: string | undefined, param: string): string[] {
  if (value === undefined) return [];
  const names = new Set<string>();
  const add = (v: string): void => {
    names.add(v);
    names.add(decodeWords(v));
  };
  for (const style of ['rfc', 'plain'] as const) {
    const params = readParams(value, style);
    for (const [key, v] of params) {
      // `filename*`, `filename*0` read plainly keep the star in the key
      if (key === param || key.startsWith(`${param}*`)) add(v);
    }
  }
  // every occurrence, as lenient readers take them: a parameter given twice, a value with blanks up to ";"
  const every = new RegExp(`(?:^|;)\\s*${param}(\\*?\\d*\\*?)\\s*=\\s*("(?:[^"\\\\]|\\\\.)*"?|[^;]*)`, 'gi');
  for (const m of value.matchAll(every)) {
    let v = m[2].trim();
    if (v.startsWith('"')) v = v.replace(/^"|"$/g, '').replace(/\\(.)/g, '$1');
    add(v);
    if (m[1].endsWith('*')) add(decode2231(v, !/\d/.test(m[1]) || /^\*0\*$/.test(m[1])));
  }
  return [...names].filter(Boolean);
}

/** RFC 2047 encoded words decoded to their bytes (latin1). */
function decodeWords(text: string): string {
  return text.replace(/=\?[^?]*\?([bBqQ])\?([^?]*)\?=\s*/g, (_m, enc: string, data: string) => {
    if (enc.toLowerCase() === 'b') return Buffer.from(data, 'base64').toString('latin1');
    return data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
  });
}
