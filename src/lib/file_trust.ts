// Whether a configuration file can be changed by someone other than its
// owner: the user_config decides how mail is scanned, so a file any local
// user can write, or swap, hands them the policy. Pure: the caller stats.

import { Diagnostic, NamedAt } from './diagnostics';

export interface FileFacts {
  /** the path as esets.cfg names it (resolved) */
  path: string;
  /** set when path is a symbolic link: what it points to */
  symlinkTarget?: string;
  /** st_mode of the file read (the link's target for a link) */
  mode: number;
  /** st_mode of the folder that holds path */
  dirMode: number;
}

export type { NamedAt } from './diagnostics';

const WORLD_WRITABLE = 0o002;
const STICKY = 0o1000;

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

/** One warning per way the file can be changed by others, located where it is named. */
export function fileTrustWarnings(option: string, facts: FileFacts, namedAt: NamedAt): Diagnostic[] {
  const at = { severity: 'warning' as const, file: namedAt.file, line: namedAt.line, key: option };
  const found: Diagnostic[] = [];
  if (facts.symlinkTarget !== undefined) {
    found.push({
      ...at,
      message: `${option} ${facts.path} is a symbolic link (to ${facts.symlinkTarget}): `
        + 'whoever can change the link chooses the file; name the file itself',
    });
  }
  if (facts.mode & WORLD_WRITABLE) {
    found.push({
      ...at,
      message: `${option} ${facts.path} is world-writable (mode ${octal(facts.mode)}): any local user can change the policy; chmod o-w it`,
    });
  }
  // with the sticky bit (as /tmp) others may not rename or remove a file they do not own
  if (facts.dirMode & WORLD_WRITABLE && !(facts.dirMode & STICKY)) {
    found.push({
      ...at,
      message: `${option} ${facts.path} is in a world-writable folder without the sticky bit (mode ${octal(facts.dirMode)}): `
        + 'any local user can replace it; chmod o-w the folder',
    });
  }
  return found;
}
