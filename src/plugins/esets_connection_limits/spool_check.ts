// At start, the disk the relay writes messages to: the spool folder can be
// written (each process makes its own, as the user it runs as), its
// filesystem has more free than spool_min_free, and whether clamd's
// TemporaryDirectory (from the clamd.conf in force) exists and shares that
// filesystem: one client's large messages fill the disk for both.

import cluster from 'node:cluster';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MAX_CLAMD_CONF_BYTES } from '../../io/clamd_limits';
import { spoolDir } from '../../io/process_dirs';
import { freeBytes, sameFilesystem } from '../../io/spool_space';
import { parseClamdConf } from '../../lib/clamd_conf';
import type { EsetsConfig } from '../../lib/esets_options';

export interface SpoolReport {
  /** the spool cannot be written: the process must not serve */
  error?: string;
  warnings: string[];
}

/** Writes and removes one file in this process's spool folder. */
function writable(dir: string): string | undefined {
  const probe = path.join(dir, `probe-${crypto.randomUUID()}`);
  try {
    fs.writeFileSync(probe, 'x', { mode: 0o600, flag: 'wx' });
    fs.unlinkSync(probe);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/** clamd's TemporaryDirectory as its clamd.conf says (clamd's default: $TMPDIR or /tmp), for a clamd on this host. */
function clamdTempDir(clamdConfFile: string | undefined): { dir: string; line?: number } | undefined {
  if (!clamdConfFile) return undefined;
  try {
    const stat = fs.statSync(clamdConfFile);
    if (!stat.isFile() || stat.size > MAX_CLAMD_CONF_BYTES) return undefined;
    const setting = parseClamdConf(fs.readFileSync(clamdConfFile, 'utf8')).settings.get('TemporaryDirectory');
    return setting ? { dir: setting.value, line: setting.line } : { dir: '/tmp' };
  } catch {
    return undefined;
  }
}

export function checkSpool(config: EsetsConfig, clamdConfFile: string | undefined): SpoolReport {
  const warnings: string[] = [];
  let dir: string;
  try {
    dir = spoolDir();
  } catch (err) {
    return { error: `the spool folder cannot be made: ${(err as Error).message}`, warnings };
  }
  const failed = writable(dir);
  if (failed) return { error: `the spool folder ${dir} cannot be written (${failed}) by uid ${process.getuid?.() ?? '?'}`, warnings };
  // the rest is said once, by the manager
  if (cluster.isWorker) return { warnings };
  const free = freeBytes(dir);
  if (config.spool_min_free > 0 && free !== undefined && free < config.spool_min_free) {
    warnings.push(`the spool's filesystem (${path.dirname(dir)}) has ${free} bytes free, below spool_min_free `
      + `(${config.spool_min_free}): every MAIL is answered 452 4.3.1 until space is freed`);
  }
  const temp = clamdTempDir(clamdConfFile);
  if (temp) {
    const where = `${clamdConfFile}${temp.line ? `:${temp.line}` : ''}`;
    if (!fs.existsSync(temp.dir)) {
      warnings.push(`clamd's TemporaryDirectory ${temp.dir} (${where}) does not exist: clamd cannot scan what it unpacks there`);
    } else if (sameFilesystem(temp.dir, dir)) {
      warnings.push(`the spool (${path.dirname(dir)}) and clamd's TemporaryDirectory ${temp.dir} (${where}) share one filesystem: `
        + `large messages fill it for both; spool_min_free (${config.spool_min_free}) is kept free for clamd`);
    }
  }
  return { warnings };
}
