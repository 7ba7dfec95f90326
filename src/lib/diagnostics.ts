// A configuration problem tied to a file and line, printed the way compilers do.

export interface Diagnostic {
  severity: 'error' | 'warning';
  /** file path, or a pseudo-source such as 'command line' */
  file: string;
  /** 1-based line; absent for the command line */
  line?: number;
  key?: string;
  message: string;
}

/** Where a file is named: an esets.cfg line, or an override such as the command line. */
export interface NamedAt {
  file: string;
  line?: number;
}

function where(file: string, line?: number): string {
  return line === undefined ? file : `${file}:${line}`;
}

/**
 * What a configuration file may hold, made safe for a terminal or a log: control characters (C0, DEL, C1,
 * which can start escape sequences), line and bidi controls, and U+FFFD (what a byte that is not UTF-8 was
 * read as) are written \xNN or \uNNNN. Idempotent: what it writes is printable ASCII, backslashes kept.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** The compiler-style line; whatever a file put in its quoted text is escaped (printable). */
export function formatDiagnostic(d: Diagnostic): string {
  return printable(`${where(d.file, d.line)}: ${d.severity}: ${d.message}`);
}

/** `(user_config, named at /etc/esets/esets.cfg:31)`: which esets.cfg line brought a file in. */
export function namedAtNote(option: string, at: NamedAt): string {
  return `(${option}, named at ${where(at.file, at.line)})`;
}

/**
 * Every diagnostic located in `file` (a file esets.cfg names, such as user_config) with
 * namedAtNote appended: whoever reads it learns which esets.cfg line to look at as well.
 */
export function withNamedAt(diagnostics: readonly Diagnostic[], file: string, option: string, at: NamedAt): Diagnostic[] {
  const note = namedAtNote(option, at);
  return diagnostics.map((d) => (d.file === file ? { ...d, message: `${d.message} ${note}` } : d));
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/**
 * The diagnostics as a reader goes through the files: grouped by file (in the order the files
 * first appear) and by line within each; those without a line keep their place after the lined ones.
 */
export function inFileOrder(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const files = new Map<string, number>();
  for (const d of diagnostics) if (!files.has(d.file)) files.set(d.file, files.size);
  // Array.prototype.sort is stable: equal keys keep the order they were found in
  return [...diagnostics].sort((a, b) => files.get(a.file)! - files.get(b.file)! || (a.line ?? Infinity) - (b.line ?? Infinity));
}
