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

export function formatDiagnostic(d: Diagnostic): string {
  return `${where(d.file, d.line)}: ${d.severity}: ${d.message}`;
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
