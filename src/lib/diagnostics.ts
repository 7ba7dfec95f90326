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

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line === undefined ? d.file : `${d.file}:${d.line}`;
  return `${where}: ${d.severity}: ${d.message}`;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}
