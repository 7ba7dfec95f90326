// Temporary folders of the tests: made under os.tmpdir() by tempDir(), each
// recorded, and every recorded one removed when the test process exits (mocha
// runs with --exit, so 'exit' handlers run) or earlier by removeTempDir().
// Only folders made by this process are removed: other test runs may share
// the machine's /tmp at the same time.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made = new Set<string>();

function remove(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch { /* the exit goes on: one folder left is no reason to leave the others */ }
}

process.on('exit', () => {
  for (const dir of made) remove(dir);
  made.clear();
});

/** A new folder os.tmpdir()/PREFIXxxxxxx (mkdtemp: mode 0700), removed at the latest when this process exits. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Removes a folder made by tempDir() now (nothing else: a folder this process did not make is left alone). */
export function removeTempDir(dir: string): void {
  if (!made.delete(dir)) return;
  remove(dir);
}
