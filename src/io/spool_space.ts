// Free space where the relay spools messages, as Postfix's queue_minfree reads
// it: the blocks an unprivileged writer may still use.

import fs from 'node:fs';

/** Bytes available to the relay's user on `dir`'s filesystem; undefined when the system cannot say. */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** Whether two paths are on one filesystem (one disk fills for both); undefined when either is missing. */
export function sameFilesystem(a: string, b: string): boolean | undefined {
  try {
    return fs.statSync(a).dev === fs.statSync(b).dev;
  } catch {
    return undefined;
  }
}
