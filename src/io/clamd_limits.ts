// The scan limits of the clamd in force (MaxRecursion, MaxFiles), read from its
// clamd.conf (lib/clamd_conf clamdConfFor names it) and read again when the file
// changes; clamd's defaults without one.

import fs from 'node:fs';
import { ClamdScanLimits, clamdScanLimits, parseClamdConf } from '../lib/clamd_conf';

/** A clamd.conf is a few KB: a bigger "file" is not read. */
export const MAX_CLAMD_CONF_BYTES = 1024 * 1024;

const read = new Map<string, { mtimeMs: number; size: number; limits: ClamdScanLimits }>();

/** `file`: the clamd.conf in force (absolute), or undefined for none. */
export function clamdScanLimitsOf(file: string | undefined): ClamdScanLimits {
  if (!file) return clamdScanLimits(undefined);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return clamdScanLimits(undefined);
  }
  const known = read.get(file);
  if (known && known.mtimeMs === stat.mtimeMs && known.size === stat.size) return known.limits;
  let limits = clamdScanLimits(undefined);
  if (stat.isFile() && stat.size <= MAX_CLAMD_CONF_BYTES) {
    try {
      limits = clamdScanLimits(parseClamdConf(fs.readFileSync(file, 'utf8')));
    } catch {
      // unreadable: clamd's defaults
    }
  }
  read.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, limits });
  return limits;
}
