// Mail readers opening a message as a recipient's would: Python's `email`
// package (get_payload(decode=True) of every part), `munpack` (mpack) and
// `ripmime`, each extracting every part it finds into a folder of its own.
// Tests ask which readers extract a given content (EICAR) from what the mail
// server stored.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const READERS = ['python-email', 'munpack', 'ripmime'] as const;
export type ReaderName = typeof READERS[number];

const PYTHON = `
import email, sys
data = open(sys.argv[1], 'rb').read()
msg = email.message_from_bytes(data)
n = 0
for part in msg.walk():
    if part.is_multipart():
        continue
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        n += 1
        open('%s/part%d' % (sys.argv[2], n), 'wb').write(payload)
`;
import { removeTempDir, tempDir } from './temp_dirs';

/** Every file each reader extracts from `message`, by reader. */
export function extractAll(message: Buffer): Record<ReaderName, Buffer[]> {
  const dir = tempDir('esets-readers-');
  try {
    const file = path.join(dir, 'message.eml');
    fs.writeFileSync(file, message);
    const out: Record<string, Buffer[]> = {};
    for (const reader of READERS) {
      const into = path.join(dir, reader);
      fs.mkdirSync(into);
      const run = (cmd: string, args: string[]): void => {
        try {
          execFileSync(cmd, args, { cwd: into, stdio: 'ignore', timeout: 20_000 });
        } catch {
          // a reader that gives up on a broken message extracts what it got so far
        }
      };
      if (reader === 'python-email') run('python3', ['-c', PYTHON, file, into]);
      if (reader === 'munpack') run('munpack', ['-q', '-t', '-C', into, file]);
      if (reader === 'ripmime') run('ripmime', ['-i', file, '-d', into]);
      out[reader] = walkFiles(into).map((f) => fs.readFileSync(f));
    }
    return out as Record<ReaderName, Buffer[]>;
  } finally {
    removeTempDir(dir);
  }
}

/** The readers that extract a file holding `needle`. */
export function readersFinding(message: Buffer, needle: string | Buffer): ReaderName[] {
  const all = extractAll(message);
  return READERS.filter((r) => all[r].some((b) => b.includes(needle)));
}

function walkFiles(dir: string): string[] {
  const found: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) found.push(...walkFiles(p));
    else if (e.isFile()) found.push(p);
  }
  return found;
}
