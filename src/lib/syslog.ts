// The manual's LOGGING: which class a line belongs to, whether syslog_class
// lets it through, and its syslog priority. And what a line may contain:
// the relay's records are its own, so no client byte can end a record, start
// one, pick its priority or fake one of its fields (issue 10, item 8 and LOW).
//
// The rules, for every line the relay writes:
// - escaped: a backslash is written `\\`; control characters (C0 including NUL,
//   TAB, CR, LF and ESC; DEL; C1), format characters (bidi overrides,
//   zero-width), line/paragraph separators, lone surrogates and U+FFFD (what
//   Haraka made of bytes that were not UTF-8) are written `\xNN` (below U+0100)
//   or `\u{N}`; invalid UTF-8 in raw bytes is written `\xNN` byte by byte.
//   What remains is printable text, one record per line.
// - bounded: at most MAX_LINE_BYTES bytes of UTF-8, cut between two characters
//   (never inside an escape) and ended with TRUNCATED.
// - fields: `key=value`, separated by one space. A value is bare only when it
//   is ours: a number, or a word() of [A-Za-z0-9_.:@/+-]. Every other value
//   (anything that came from the client, the config or a scanner) is double-
//   quoted with `"` and `\` escaped, so a space, `=` or `"` inside it never
//   starts a field: a reader that takes bare tokens and quoted strings in order
//   sees exactly our keys.

import type { SyslogClass, SyslogFacility } from './esets_options';

export type Severity = 'err' | 'warning' | 'notice' | 'info' | 'debug';

/**
 * Bytes of text per record. util-linux `logger` splits a longer stdin line into
 * records of about 1,024 bytes (the tail becomes a record that starts with
 * whatever text was there); 900 leaves room for its header.
 */
export const MAX_LINE_BYTES = 900;

/** Ends a cut line or value. Escaping doubles every backslash, so no client text reads as this. */
export const TRUNCATED = '\\[truncated]';

/** Text that went through this module: escaped and bounded, safe to write as one record. */
export type SafeText = string & { readonly __safeText: unique symbol };

export interface LogLine {
  logClass: SyslogClass;
  severity: Severity;
  text: SafeText;
}

/** A value of ours that may be written bare (an action, an option name, `12ms`). */
export class Word {
  constructor(readonly text: string) {}
}

export function word(text: string): Word {
  return new Word(text);
}

/** `undefined` leaves the field out; strings and bytes are always quoted. */
export type FieldValue = string | Uint8Array | number | Word | undefined;
export type Field = readonly [key: string, value: FieldValue];

/** A summary line: NOTICE for every outcome, WARNING when the relay itself failed the message (lib/summary_outcome). */
export function summaryLine(relayFailure: boolean, fields: readonly Field[]): LogLine {
  return { logClass: 'summary', severity: relayFailure ? 'warning' : 'notice', text: formatFields(fields) };
}

/** The classes whose priority is fixed (a summary's depends on its action). */
export type PlainClass = Exclude<SyslogClass, 'summary'>;

/** The manual's priorities: LOG_ERR, LOG_WARNING, LOG_INFO ("common tasks"), LOG_DEBUG. */
const CLASS_SEVERITY: Readonly<Record<PlainClass, Severity>> = { error: 'err', warning: 'warning', info: 'info', debug: 'debug' };

/** A line of `logClass`: free text (escaped, bounded) or fields (formatFields: client values quoted). */
export function classLine(logClass: PlainClass, text: string | Uint8Array | readonly Field[]): LogLine {
  const safe = typeof text === 'string' || text instanceof Uint8Array ? logText(text) : formatFields(text);
  return { logClass, severity: CLASS_SEVERITY[logClass], text: safe };
}

export function errorLine(text: string): LogLine {
  return classLine('error', text);
}

export function warningLine(text: string): LogLine {
  return classLine('warning', text);
}

export function infoLine(text: string): LogLine {
  return classLine('info', text);
}

/** Debug lines are mostly fields (`event=clamd_scan daemon="…" …`), for a reader to pick apart. */
export function debugLine(text: string | readonly Field[]): LogLine {
  return classLine('debug', text);
}

export function isLogged(line: LogLine, classes: readonly SyslogClass[]): boolean {
  return classes.includes(line.logClass);
}

/**
 * Whether a line of `logClass` is written at all: to syslog only when
 * syslog_class lists it; with syslog_facility = none every line goes to
 * Haraka's log (where Haraka's own level decides).
 */
export function isWritten(facility: SyslogFacility, classes: readonly SyslogClass[], logClass: SyslogClass): boolean {
  return facility === 'none' || classes.includes(logClass);
}

/** `logger -p` takes the priority as `facility.level`: fixed by us, never read from the text. */
export function loggerPriority(facility: Exclude<SyslogFacility, 'none'>, severity: Severity): string {
  return `${facility}.${severity}`;
}

/** Free text (an error, a stack) as one escaped, bounded line. */
export function logText(text: string | Uint8Array): SafeText {
  return bounded(escapedPieces(text, false, MAX_LINE_BYTES), MAX_LINE_BYTES) as SafeText;
}

/** Free text escaped, unbounded, not quoted. */
export function escapeText(text: string | Uint8Array): string {
  return escapedPieces(text, false).join('');
}

/** A client value as it appears in a field: `"…"` with `"` and `\` escaped. */
export function quote(text: string | Uint8Array): string {
  return `"${escapedPieces(text, true).join('')}"`;
}

/**
 * `key=value key="value" …` within maxBytes. When the fields do not fit, the
 * longest quoted values are cut (each ends in TRUNCATED inside its quotes), the
 * short ones and every key kept: a padded Message-ID cannot push size= and time=
 * off the line.
 */
export function formatFields(fields: readonly Field[], maxBytes = MAX_LINE_BYTES): SafeText {
  const rendered: { prefix: string; bare?: string; quoted?: string[] }[] = [];
  for (const [key, value] of fields) {
    if (value === undefined) continue;
    const prefix = `${safeKey(key)}=`;
    if (typeof value === 'number') rendered.push({ prefix, bare: String(value) });
    else if (value instanceof Word && BARE_WORD.test(value.text)) rendered.push({ prefix, bare: value.text });
    else rendered.push({ prefix, quoted: escapedPieces(value instanceof Word ? value.text : value, true, maxBytes) });
  }

  // what the line costs without the quoted values' contents
  let budget = maxBytes - Math.max(0, rendered.length - 1);
  for (const r of rendered) budget -= bytes(r.prefix) + (r.bare !== undefined ? bytes(r.bare) : 2);

  // water-filling: shortest values first, each gets at most an equal share of what is left
  const quoted = rendered.filter((r) => r.quoted).map((r) => ({ r, size: sumBytes(r.quoted!) }));
  quoted.sort((a, b) => a.size - b.size);
  const values = new Map<(typeof rendered)[number], string>();
  quoted.forEach(({ r, size }, i) => {
    const share = Math.floor(Math.max(0, budget) / (quoted.length - i));
    const text = size <= share ? r.quoted!.join('') : bounded(r.quoted!, Math.max(share, bytes(TRUNCATED)));
    values.set(r, text);
    budget -= bytes(text);
  });

  const line = rendered.map((r) => r.prefix + (r.bare ?? `"${values.get(r)}"`)).join(' ');
  if (bytes(line) <= maxBytes) return line as SafeText;
  // a safety net when our own keys alone are too long: cut between two characters or escapes
  return bounded(line.match(PIECE) ?? [], maxBytes) as SafeText;
}

const BARE_WORD = /^[A-Za-z0-9_.:@/+-]+$/;
// one escape or one character of an already escaped line (for the safety-net cut)
const PIECE = /\\(?:x[0-9a-f]{2}|u\{[0-9a-f]+\}|\[truncated\]|.)|[^\\]/gsu;
// what is escaped besides C0, DEL and C1: format characters (bidi, zero-width),
// line/paragraph separators, lone surrogates, the replacement character
const ESCAPED = /[\p{Cf}\p{Zl}\p{Zp}\p{Cs}\uFFFD]/u;

function safeKey(key: string): string {
  // keys are ours; this only keeps a wrong one from becoming a quote or a space
  return key.replace(/[^a-z0-9_]/gi, '_') || '_';
}

/**
 * One piece per character (an escape is one piece, never cut). With a bound,
 * stops after bound + 1 pieces: each is at least a byte, so that is already
 * over the bound (a 1 MB header costs no more than a short one).
 */
function escapedPieces(text: string | Uint8Array, quoted: boolean, bound = Infinity): string[] {
  const out: string[] = [];
  if (typeof text !== 'string') return bytesPieces(text, quoted, bound);
  for (const ch of text) {
    if (out.length > bound) break;
    out.push(escapeChar(ch, quoted));
  }
  return out;
}

function escapeChar(ch: string, quoted: boolean): string {
  const cp = ch.codePointAt(0)!;
  if (ch === '\\') return '\\\\';
  if (quoted && ch === '"') return '\\"';
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (ESCAPED.test(ch)) return `\\u{${cp.toString(16)}}`;
  return ch;
}

/** Raw bytes: each valid UTF-8 sequence as its character, each other byte as \xNN. */
function bytesPieces(buf: Uint8Array, quoted: boolean, bound: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < buf.length && out.length <= bound) {
    const n = utf8SequenceLength(buf, i);
    if (n === 0) {
      out.push(`\\x${buf[i].toString(16).padStart(2, '0')}`);
      i++;
    } else {
      out.push(escapeChar(Buffer.from(buf.subarray(i, i + n)).toString('utf8'), quoted));
      i += n;
    }
  }
  return out;
}

/** Length of the well-formed UTF-8 sequence at i (RFC 3629: no overlongs, no surrogates), 0 if none. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** The pieces joined, or as many as fit before TRUNCATED within maxBytes. */
function bounded(pieces: readonly string[], maxBytes: number): string {
  if (sumBytes(pieces) <= maxBytes) return pieces.join('');
  const room = maxBytes - bytes(TRUNCATED);
  let used = 0;
  let out = '';
  for (const p of pieces) {
    const n = bytes(p);
    if (used + n > room) break;
    used += n;
    out += p;
  }
  return out + TRUNCATED;
}

function bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function sumBytes(pieces: readonly string[]): number {
  let n = 0;
  for (const p of pieces) n += bytes(p);
  return n;
}
