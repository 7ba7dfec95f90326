// The quarantine as a folder (daemon_quarantine): one message file and one
// entry file per stopped message, readable by the relay's user only. Written
// by every worker and read by esets_quar (another process, perhaps another
// relay on the host writing at the same time), so nothing here relies on
// being the only writer:
// - an entry appears whole or not at all: its files are written and fsynced
//   under .tmp/, then linked to their names (link fails on an existing name:
//   no id is ever taken twice), the entry file last, and the folder fsynced;
//   `put` resolves only then (the client is answered after that);
// - a change to an entry (a release) replaces its file by rename, under a
//   lock file linked into place (two releases at once: one waits its turn);
//   removing an entry takes the same lock (a delete or expiry during a
//   release waits for the next time rather than half-removing it);
// - every change is one line appended to events.log (one write each, so
//   lines of several processes never mix): the counts /metrics serves come
//   from there, esets_quar's releases and expiries included.
// - the folder is the relay user's, and root reads and writes it too (the
//   manager's expiry and /metrics, esets_quar run as root): no file of it is
//   opened through a link or when it is no regular file (a FIFO would hang
//   the manager), and what root makes there is given to the folder's owner.
// Behind the QuarantineStore interface: a store shared by several relays is
// another implementation of it.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { isQuarantineId, parseEntry, QuarantineEntry, quarantineId } from '../lib/quarantine';

/** what the caller knows about the message; the store adds id, time, size and the release list */
export type NewQuarantineEntry = Omit<QuarantineEntry, 'id' | 'storedAt' | 'size' | 'released'>;

export type QuarantineEvent = 'stored' | 'released' | 'deleted' | 'expired';

export interface QuarantineStore {
  /** Keeps the message and its entry durably; resolves once both are on disk (files and folder fsynced). */
  put(entry: NewQuarantineEntry, message: Readable): Promise<QuarantineEntry>;
  /** Every whole entry, oldest first (a torn or foreign file is skipped). */
  list(): QuarantineEntry[];
  get(id: string): QuarantineEntry | undefined;
  /** The stored bytes of an entry's message. */
  message(id: string): Readable;
  /**
   * Changes an entry under its lock (held while `change` runs, a release's
   * delivery included): `change` sees the entry as it is now and returns it
   * changed, or undefined for no change. Resolves with the entry after it,
   * undefined when there is none.
   */
  update(id: string, change: EntryChange): Promise<QuarantineEntry | undefined>;
  /** Removes an entry (`why`: said in events.log); false when there was none. Throws EntryInUse while it is being released. */
  remove(id: string, why: 'deleted' | 'expired'): boolean;
  /** The events since `offset` bytes of the log, and the offset after them. */
  events(offset: number): { events: { event: QuarantineEvent; id: string }[]; offset: number };
}

export type EntryChange = (entry: QuarantineEntry) => QuarantineEntry | undefined | Promise<QuarantineEntry | undefined>;

const TMP = '.tmp';
const EVENTS = 'events.log';
const LOCK_WAIT_MS = 10_000;
/** an entry file larger than this is no entry (read whole into memory, by the root manager too) */
const MAX_ENTRY_BYTES = 4 * 1024 * 1024;
/** most of events.log read at once (the rest at the next read) */
const MAX_EVENTS_READ = 1024 * 1024;
/** a temporary file this old is a dead writer's even when its PID runs again (reused) */
const SWEEP_AFTER_MS = 24 * 60 * 60 * 1000;

/** An entry held by another process (a release under way): not removed now. */
export class EntryInUse extends Error {}

export class FolderQuarantineStore implements QuarantineStore {
  constructor(readonly dir: string) {}

  /** Makes the folder (0700) if need be; throws what stands in the way (the caller says it, with the option). */
  prepare(): void {
    fs.mkdirSync(path.join(this.dir, TMP), { recursive: true, mode: 0o700 });
    // (a link in its place, planted where the parent is writable, points to a folder its planter can read: refused)
    const folder = fs.statSync(this.dir);
    const uid = process.getuid?.();
    if ((folder.mode & 0o022) !== 0 || (uid !== undefined && uid !== 0 && folder.uid !== uid)) {
      throw new Error(`${this.dir} is writable by others or not this user's (mode ${(folder.mode & 0o777).toString(8)}, `
        + `owner ${folder.uid}): messages are not kept there`);
    }
    fs.accessSync(this.dir, fs.constants.W_OK);
    fs.accessSync(path.join(this.dir, TMP), fs.constants.W_OK);
  }

  async put(entry: NewQuarantineEntry, message: Readable): Promise<QuarantineEntry> {
    this.prepare();
    const tmpDir = path.join(this.dir, TMP);
    const tmpName = `${process.pid}-${randomBytes(6).toString('hex')}`;
    const tmpMessage = path.join(tmpDir, `${tmpName}.eml`);
    const tmpEntry = path.join(tmpDir, `${tmpName}.json`);
    let linked: string | undefined;
    let linkedEntry: string | undefined;
    try {
      const size = await writeDurably(tmpMessage, message, (fd) => this.adopt(fd));
      // a name no other writer has: link refuses an existing one
      let id = '';
      for (let tries = 0; !linked; tries++) {
        id = quarantineId(new Date(), randomBytes(6));
        try {
          fs.linkSync(tmpMessage, this.file(id, 'eml'));
          linked = this.file(id, 'eml');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 10) throw err;
        }
      }
      const stored: QuarantineEntry = { id, storedAt: new Date().toISOString(), size, released: [], ...entry };
      await writeDurably(tmpEntry, Readable.from([Buffer.from(`${JSON.stringify(stored, null, 1)}\n`)]), (fd) => this.adopt(fd));
      fs.linkSync(tmpEntry, this.file(id, 'json'));
      linkedEntry = this.file(id, 'json');
      fsyncDir(this.dir);
      this.log('stored', id);
      return stored;
    } catch (err) {
      // the client is deferred and sends it again: no half of this entry stays (an entry file without its message is never expired)
      if (linkedEntry) fs.rmSync(linkedEntry, { force: true });
      if (linked) fs.rmSync(linked, { force: true });
      throw err;
    } finally {
      fs.rmSync(tmpMessage, { force: true });
      fs.rmSync(tmpEntry, { force: true });
    }
  }

  list(): QuarantineEntry[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const entries: QuarantineEntry[] = [];
    for (const name of names) {
      const id = name.endsWith('.json') ? name.slice(0, -5) : '';
      const entry = isQuarantineId(id) ? this.get(id) : undefined;
      if (entry) entries.push(entry);
    }
    return entries.sort((a, b) => a.storedAt.localeCompare(b.storedAt) || a.id.localeCompare(b.id));
  }

  get(id: string): QuarantineEntry | undefined {
    if (!isQuarantineId(id)) return undefined;
    const text = readRegular(this.file(id, 'json'), MAX_ENTRY_BYTES);
    const entry = text === undefined ? undefined : parseEntry(text);
    // an entry file names its own id: one copied under another name is not trusted
    return entry?.id === id && isRegular(this.file(id, 'eml')) ? entry : undefined;
  }

  message(id: string): Readable {
    if (!isQuarantineId(id)) throw new Error(`not a quarantine id: ${id}`);
    return fs.createReadStream('', { fd: openRegular(this.file(id, 'eml'), fs.constants.O_RDONLY) });
  }

  async update(id: string, change: EntryChange): Promise<QuarantineEntry | undefined> {
    if (!isQuarantineId(id)) return undefined;
    const release = await this.lock(id);
    try {
      const now = this.get(id);
      if (!now) return undefined;
      const changed = await change(now);
      if (!changed) return now;
      const tmp = path.join(this.dir, TMP, `${process.pid}-${randomBytes(6).toString('hex')}.json`);
      await writeDurably(tmp, Readable.from([Buffer.from(`${JSON.stringify({ ...changed, id }, null, 1)}\n`)]), (fd) => this.adopt(fd));
      fs.renameSync(tmp, this.file(id, 'json'));
      fsyncDir(this.dir);
      if (changed.released.length > now.released.length) this.log('released', id);
      return changed;
    } finally {
      release();
    }
  }

  remove(id: string, why: 'deleted' | 'expired'): boolean {
    if (!isQuarantineId(id) || !this.get(id)) return false;
    // under the entry's lock: a release under way would write the entry file back after it
    const unlock = this.tryLock(id);
    if (typeof unlock === 'number') throw new EntryInUse(`quarantine entry ${id} is in use by process ${unlock} (a release under way)`);
    try {
      // the entry file first: from then on the entry is gone for every reader
      try {
        fs.unlinkSync(this.file(id, 'json'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
      fs.rmSync(this.file(id, 'eml'), { force: true });
      fsyncDir(this.dir);
      this.log(why, id);
      return true;
    } finally {
      unlock();
    }
  }

  events(offset: number): { events: { event: QuarantineEvent; id: string }[]; offset: number } {
    let fd: number;
    try {
      fd = openRegular(path.join(this.dir, EVENTS), fs.constants.O_RDONLY);
    } catch {
      return { events: [], offset };
    }
    try {
      const size = fs.fstatSync(fd).size;
      // a log made anew (removed by hand) starts again from its beginning
      const from = offset > size ? 0 : offset;
      const buffer = Buffer.alloc(Math.min(size - from, MAX_EVENTS_READ));
      const read = buffer.length ? fs.readSync(fd, buffer, 0, buffer.length, from) : 0;
      const text = buffer.subarray(0, read).toString('utf8');
      // a line still being written waits for the next read
      const whole = text.slice(0, text.lastIndexOf('\n') + 1);
      const events: { event: QuarantineEvent; id: string }[] = [];
      for (const line of whole.split('\n')) {
        const m = /^\S+ (stored|released|deleted|expired) (\S+)$/.exec(line);
        if (m && isQuarantineId(m[2])) events.push({ event: m[1] as QuarantineEvent, id: m[2] });
      }
      return { events, offset: from + Buffer.byteLength(whole) };
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Removes what writers killed mid-write (kill -9, a power cut) left in .tmp:
   * files named after a process that no longer runs, or older than a day.
   * The count removed.
   */
  sweep(now = Date.now()): number {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.dir, TMP));
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      // PID-random.eml|.json|.lock|.stale (an entry's own ID.lock is taken over by the next lock instead)
      const pid = /^(\d+)-[0-9a-f]+\.(eml|json|lock|stale)$/.exec(name)?.[1];
      if (!pid) continue;
      const file = path.join(this.dir, TMP, name);
      let stat: fs.Stats;
      try {
        stat = fs.lstatSync(file);
      } catch {
        continue;
      }
      if (processAlive(Number(pid)) && now - stat.mtimeMs < SWEEP_AFTER_MS) continue;
      fs.rmSync(file, { force: true });
      removed++;
    }
    return removed;
  }

  private file(id: string, kind: 'eml' | 'json'): string {
    return path.join(this.dir, `${id}.${kind}`);
  }

  private log(event: QuarantineEvent, id: string): void {
    // one write of one short line with O_APPEND: whole, whoever else appends
    const fd = openRegular(path.join(this.dir, EVENTS), fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
    try {
      this.adopt(fd);
      fs.writeSync(fd, `${new Date().toISOString()} ${event} ${id}\n`);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * A file root made in the folder (the manager's expiry, esets_quar as root)
   * becomes the folder owner's: the relay's user keeps using it.
   */
  private adopt(fd: number): void {
    if (process.getuid?.() !== 0) return;
    const owner = fs.statSync(this.dir);
    if (owner.uid !== 0) fs.fchownSync(fd, owner.uid, owner.gid);
  }

  /**
   * An entry's lock: a file holding its owner's PID and a token, linked into
   * place whole (never seen empty); one whose owner is gone (killed
   * mid-release) is taken over. One host's processes (a store shared by hosts
   * is another implementation).
   */
  private async lock(id: string): Promise<() => void> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      const got = this.tryLock(id);
      if (typeof got === 'function') return got;
      if (Date.now() > deadline) throw new Error(`quarantine entry ${id} is in use by process ${got} (a release under way)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The lock's release, or the PID of the live process that holds it. */
  private tryLock(id: string): (() => void) | number {
    const file = path.join(this.dir, TMP, `${id}.lock`);
    const mine = `${process.pid} ${randomBytes(8).toString('hex')}`;
    for (let tries = 0; ; tries++) {
      const made = path.join(this.dir, TMP, `${process.pid}-${randomBytes(6).toString('hex')}.lock`);
      const fd = fs.openSync(made, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      try {
        fs.writeSync(fd, mine);
      } finally {
        fs.closeSync(fd);
      }
      try {
        fs.linkSync(made, file);
        // released only while it is still this one (never a lock another process took over meanwhile)
        return () => { if (readRegular(file, 100) === mine) fs.rmSync(file, { force: true }); };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 10) throw err;
      } finally {
        fs.rmSync(made, { force: true });
      }
      const held = readRegular(file, 100);
      if (held === undefined) continue;
      const pid = Number(held.split(' ')[0]) || 0;
      if (pid && processAlive(pid)) return pid;
      // its owner is gone: moved aside first, so that a lock made meanwhile by a live process is put back, not removed
      const aside = path.join(this.dir, TMP, `${process.pid}-${randomBytes(6).toString('hex')}.stale`);
      try {
        fs.renameSync(file, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (readRegular(aside, 100) !== held) {
        try { fs.linkSync(aside, file); } catch { /* another took it meanwhile: theirs */ }
      }
      fs.rmSync(aside, { force: true });
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Opens a file of the folder: never through a link, never waiting on a FIFO
 * or device, only a regular file (the folder is the relay user's; root reads
 * it too).
 */
function openRegular(file: string, flags: number, mode?: number): number {
  const fd = fs.openSync(file, flags | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, mode);
  try {
    if (!fs.fstatSync(fd).isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'EFTYPE' });
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return fd;
}

/** A regular file's text, undefined when there is none (or it is a link, a FIFO, or larger than `max`). */
function readRegular(file: string, max: number): string | undefined {
  let fd: number;
  try {
    fd = openRegular(file, fs.constants.O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size > max) return undefined;
    const buffer = Buffer.alloc(size);
    const read = size ? fs.readSync(fd, buffer, 0, size, 0) : 0;
    return buffer.subarray(0, read).toString('utf8');
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function isRegular(file: string): boolean {
  try {
    return fs.lstatSync(file).isFile();
  } catch {
    return false;
  }
}

/** Writes the stream to a new file (0600, O_EXCL) and fsyncs it; the byte count. `made`: sees the new file first. */
async function writeDurably(file: string, source: Readable, made: (fd: number) => void): Promise<number> {
  const handle = await fs.promises.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  let size = 0;
  try {
    made(handle.fd);
    for await (const chunk of source) {
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer;
      await handle.write(data);
      size += data.length;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return size;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The events of the store in `dirOf()` (read again at each call: a reload may
 * move it) since the previous call; the first call starts at the log's end,
 * so counts start at zero with the process that reads them.
 */
export function quarantineEventReader(dirOf: () => string): () => QuarantineEvent[] {
  let dir: string | undefined;
  let offset = 0;
  return () => {
    const now = dirOf();
    if (now !== dir) {
      dir = now;
      try {
        offset = fs.statSync(path.join(now, EVENTS)).size;
      } catch {
        offset = 0;
      }
      return [];
    }
    const read = new FolderQuarantineStore(now).events(offset);
    offset = read.offset;
    return read.events.map((e) => e.event);
  };
}
