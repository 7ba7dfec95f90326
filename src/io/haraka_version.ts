// Which Haraka runs, and its version: the launcher says it at start, --check
// says it, and the modules that wrap Haraka 3's connection internals
// (plugins/shared/haraka_internals) act only under version 3.

import fs from 'node:fs';
import path from 'node:path';

export interface HarakaVersion {
  version: string;
  /** the Haraka folder (where its package.json is) */
  path: string;
  /** undefined when the version is not a number.number... */
  major: number | undefined;
}

/** The Haraka 3 that client_input and own_replies wrap; elsewhere they leave Haraka as it is. */
export const WRAPPED_HARAKA_MAJOR = 3;

/** What is lost where the Haraka in use is not version 3: the wrappers' own `notDone` words. */
export const WITHOUT_WRAPPERS = 'client input not bounded (a client that pipelines while a hook waits is buffered, not paused), '
  + "Haraka's own replies sent in its words (not the mail server's)";

function readAt(packageJson: string): HarakaVersion | undefined {
  try {
    const version = (JSON.parse(fs.readFileSync(packageJson, 'utf8')) as { version?: unknown }).version;
    if (typeof version !== 'string') return undefined;
    const major = Number(version.split('.')[0]);
    return { version, path: path.dirname(packageJson), major: Number.isInteger(major) ? major : undefined };
  } catch {
    return undefined;
  }
}

/**
 * The Haraka this process runs (or would run): resolved from the main script's folder, the current
 * folder and this package; undefined where none is found.
 */
export function harakaInUse(): HarakaVersion | undefined {
  const from = [require.main?.filename ? path.dirname(require.main.filename) : process.cwd(), process.cwd(), __dirname];
  try {
    return readAt(require.resolve('Haraka/package.json', { paths: from }));
  } catch {
    return undefined;
  }
}

/** The Haraka installed in an operator's Haraka folder (DIR/node_modules/Haraka), if any. */
export function harakaIn(dir: string): HarakaVersion | undefined {
  return readAt(path.join(dir, 'node_modules', 'Haraka', 'package.json'));
}

/** One line naming the Haraka in use, and the warning when it is not the one the relay wraps (undefined: none). */
export function harakaVersionReport(haraka: HarakaVersion | undefined): { line: string; warning?: string } {
  if (!haraka) {
    return {
      line: 'Haraka: not found',
      warning: `no Haraka package.json found: the relay's wrappers of Haraka ${WRAPPED_HARAKA_MAJOR} are not in force: ${WITHOUT_WRAPPERS}`,
    };
  }
  const line = `Haraka ${haraka.version} (${haraka.path})`;
  if (haraka.major === WRAPPED_HARAKA_MAJOR) return { line };
  return {
    line,
    warning: `Haraka ${haraka.version} is not the Haraka ${WRAPPED_HARAKA_MAJOR}.x this relay wraps: not in force: ${WITHOUT_WRAPPERS}`,
  };
}

/** Why the launcher cannot run where no Haraka is found: a peer dependency, installed beside the package. */
export function noHarakaFound(): string {
  const packageDir = path.resolve(__dirname, '..', '..', '..');
  return `no Haraka found beside ${packageDir}: install it there (npm install Haraka@3 in the folder that holds `
    + `node_modules/esets-relay, or in this checkout: npm ci)`;
}
