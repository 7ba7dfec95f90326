// The programs the relay opens containers with (io/unpack, io/pdf_files),
// looked for on PATH at start: without one, every container it opens is "not
// scanned" (deferred), which an operator should hear of before mail piles up.

import fs from 'node:fs';
import path from 'node:path';

/** Each program, and the Debian package that has it. */
export const UNPACK_TOOLS: readonly { program: string; pkg: string }[] = [
  { program: 'bsdtar', pkg: 'libarchive-tools' },
  { program: 'bsdcat', pkg: 'libarchive-tools' },
  { program: 'qpdf', pkg: 'qpdf' },
  { program: 'prlimit', pkg: 'util-linux' },
];

/** The programs not found on `pathVar` (the process's PATH by default). */
export function missingUnpackTools(pathVar = process.env.PATH ?? ''): { program: string; pkg: string }[] {
  const dirs = pathVar.split(path.delimiter).filter(Boolean);
  return UNPACK_TOOLS.filter(({ program }) => !dirs.some((dir) => {
    try {
      fs.accessSync(path.join(dir, program), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }));
}
