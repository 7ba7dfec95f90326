// Syntax of esets.cfg-style files: `[section]` headers, `key = value` lines,
// `#` and `;` comment lines. Only syntax lives here; what keys mean and which
// values are valid is esets_options.ts.

import { Diagnostic } from './diagnostics';

export interface CfgEntry {
  key: string;
  /** the value with surrounding quotes removed */
  value: string;
  /** true when the value was written in double quotes */
  quoted: boolean;
  line: number;
}

export interface CfgSection {
  name: string;
  line: number;
  entries: CfgEntry[];
}

export interface ParsedCfg {
  file: string;
  sections: CfgSection[];
  diagnostics: Diagnostic[];
}

const SECTION_RE = /^\[([^\]]*)\]$/;
const ENTRY_RE = /^([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*)$/;

export function parseEsetsCfg(text: string, file: string): ParsedCfg {
  const sections: CfgSection[] = [];
  const diagnostics: Diagnostic[] = [];
  let current: CfgSection | undefined;
  /** under a malformed header: its lines belong to no known section (the header's error says so) */
  let broken = false;
  const lines = text.split(/\r?\n/);

  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;

    const section = SECTION_RE.exec(trimmed);
    // `[]` names no section: malformed as `[smtp` is (else the lines under it vanish without a word)
    if (section && section[1].trim()) {
      current = { name: section[1].trim(), line, entries: [] };
      sections.push(current);
      broken = false;
      return;
    }
    if (trimmed.startsWith('[')) {
      // not judged as lines of the section above: that would be a cascade of misleading warnings
      diagnostics.push({
        severity: 'error', file, line,
        message: `malformed section header '${trimmed}': expected '[name]' alone on its line; `
          + 'the lines below it, up to the next section header, are not read',
      });
      current = undefined;
      broken = true;
      return;
    }
    if (broken) return;

    const entry = ENTRY_RE.exec(trimmed);
    if (!entry) {
      diagnostics.push({
        severity: 'error', file, line,
        message: `cannot parse '${trimmed}': expected '[section]', 'key = value' or a comment starting with '#' or ';'`,
      });
      return;
    }
    const key = entry[1].toLowerCase();
    if (!current) {
      diagnostics.push({ severity: 'error', file, line, key, message: `option '${key}' appears before any [section] header` });
      return;
    }

    const value = unquote(entry[2]);
    if (value === undefined) {
      diagnostics.push({ severity: 'error', file, line, key, message: `option '${key}': ${badQuote(entry[2])}` });
      return;
    }
    const previous = current.entries.findIndex((e) => e.key === key);
    if (previous >= 0) {
      diagnostics.push({
        severity: 'warning', file, line, key,
        message: `option '${key}' repeated in [${current.name}] (first at line ${current.entries[previous].line}); the last value is used`,
      });
      current.entries.splice(previous, 1);
    }
    current.entries.push({ key, value: value.text, quoted: value.quoted, line });
  });

  return { file, sections, diagnostics };
}

function unquote(raw: string): { text: string; quoted: boolean } | undefined {
  const value = raw.trim();
  if (!value.startsWith('"')) return { text: value, quoted: false };
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  return { text: value.slice(1, -1).replace(/\\"/g, '"'), quoted: true };
}

/**
 * Why a value that opens a double quote does not end with one: most often a comment after it
 * (esets.cfg has comment lines only, as the manual says), else text after the quote, else no closing quote.
 */
function badQuote(raw: string): string {
  const value = raw.trim();
  const close = /^"(?:[^"\\]|\\.)*"/.exec(value);
  if (!close) return `unterminated double quote in ${value}`;
  const rest = value.slice(close[0].length).trim();
  if (rest.startsWith('#') || rest.startsWith(';')) {
    return `a comment after the value ('${rest}'): comments go on their own line, one starting with '#' or ';'`;
  }
  return `text after the closing double quote: '${rest}'`;
}
