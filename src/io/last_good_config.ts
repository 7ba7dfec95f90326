// The last configuration that loaded without errors, as the text of its
// files, saved by the manager process (Haraka's cluster master) in its private
// run folder. A worker that starts while a broken edit is on disk (one that
// died and was restarted) runs on it instead of failing its start again and
// again; it still watches the files and takes the fixed edit.

import fs from 'node:fs';
import path from 'node:path';
import type { RelayConfig } from './config_files';
import { processDir } from './process_dirs';

/** where the manager saved it: set before the workers are forked, so they inherit it */
export const LAST_GOOD_ENV = 'ESETS_RELAY_LAST_GOOD';

export interface SavedConfig {
  savedAt: string;
  file: string;
  texts: Record<string, string>;
}

export function saveLastGood(config: RelayConfig): void {
  const file = process.env[LAST_GOOD_ENV] ?? path.join(processDir('run'), 'last-good.json');
  process.env[LAST_GOOD_ENV] = file;
  const saved: SavedConfig = { savedAt: new Date().toISOString(), file: config.file, texts: config.texts };
  // written whole, then renamed: a worker never reads half of it
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(saved), { mode: 0o600 });
  // a run folder shared with the workers' group (daemon_user): they read this, and cannot change it
  const folder = fs.statSync(path.dirname(file));
  if (folder.gid !== process.getgid?.()) {
    fs.chownSync(temp, -1, folder.gid);
    fs.chmodSync(temp, 0o640);
  }
  fs.renameSync(temp, file);
}

/** The saved configuration, if the manager saved one for the configuration file in use. */
export function readLastGood(configFile: string): SavedConfig | undefined {
  const file = process.env[LAST_GOOD_ENV];
  if (!file) return undefined;
  try {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedConfig;
    return saved.file === configFile && typeof saved.texts === 'object' ? saved : undefined;
  } catch {
    return undefined;
  }
}
