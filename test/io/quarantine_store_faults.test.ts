// The folder store against what a crash, a full log or another process can
// leave in the folder: an entry is whole or absent after each, and the root
// manager (expiry, /metrics) and esets_quar run as root never write through a
// link, hang on a FIFO, or leave files the relay's user cannot read.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expireOnce } from '../../src/io/quarantine_expiry';
import { FolderQuarantineStore, NewQuarantineEntry } from '../../src/io/quarantine_store';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const meta = (n = 0): NewQuarantineEntry => ({
  traceId: `T.${n}`, client: { address: '192.0.2.1', helo: 'client.example' }, sender: 'a@example.com', recipients: ['b@example.org'],
  verdict: 'infected', threats: ['Eicar-Signature'], action: 'reject', decidedBy: { option: 'action_av_infected', section: '' },
  messageId: `<m${n}@example.com>`,
});

const entryFiles = (dir: string): string[] => fs.readdirSync(dir).filter((n) => /\.(json|eml)$/.test(n)).sort();
const isRoot = process.getuid?.() === 0;

describe('quarantine folder store: crashes, races and a hostile folder (io/quarantine_store)', () => {
  let dir: string;
  beforeEach(() => { dir = path.join(tempDir('esets-quar-attack-'), 'quarantine'); });
  afterEach(() => removeTempDir(path.dirname(dir)));

  it('events.log that cannot be appended to: put fails and leaves neither of the entry\'s files', async () => {
    const store = new FolderQuarantineStore(dir);
    store.prepare();
    fs.mkdirSync(path.join(dir, 'events.log'));
    await assert.rejects(store.put(meta(), Readable.from([Buffer.from('Subject: x\r\n\r\nbody\r\n')])));
    assert.deepEqual(entryFiles(dir), [], 'an entry file was left without its message (or the reverse)');
  });

  it('a lock file left empty (its maker killed before it wrote its PID) does not block the entry for ever', async function () {
    this.timeout(60_000);
    const store = new FolderQuarantineStore(dir);
    const e = await store.put(meta(), Readable.from([Buffer.from('x')]));
    fs.writeFileSync(path.join(dir, '.tmp', `${e.id}.lock`), '');
    const after = await store.update(e.id, (now) => ({ ...now, released: [{ at: new Date().toISOString(), to: ['x@y'], reply: '250' }] }));
    assert.equal(after?.released.length, 1);
  });

  it('a delete or expiry while a release holds the entry: no entry file brought back without its message', async () => {
    const store = new FolderQuarantineStore(dir);
    const e = await store.put(meta(), Readable.from([Buffer.from('x')]));
    let removed: boolean | Error = false;
    await store.update(e.id, async (now) => {
      // the release is talking to the mail server; esets_quar delete (or the manager's expiry) runs meanwhile
      try { removed = store.remove(e.id, 'deleted'); } catch (err) { removed = err as Error; }
      await new Promise((r) => setTimeout(r, 20));
      return { ...now, released: [{ at: new Date().toISOString(), to: ['x@y'], reply: '250' }] };
    });
    const files = entryFiles(dir);
    assert.ok(files.length === 0 || files.length === 2, `half an entry left: ${files.join(', ')} (remove said ${String(removed)})`);
    if (files.length === 2) assert.equal(store.get(e.id)?.released.length, 1);
  });

  it('events.log replaced by a link: nothing is written through it', async () => {
    const store = new FolderQuarantineStore(dir);
    const e = await store.put(meta(), Readable.from([Buffer.from('x')]));
    const outside = path.join(path.dirname(dir), 'outside');
    fs.writeFileSync(outside, 'precious\n');
    fs.rmSync(path.join(dir, 'events.log'));
    fs.symlinkSync(outside, path.join(dir, 'events.log'));
    try { store.remove(e.id, 'expired'); } catch { /* refused: fine */ }
    assert.equal(fs.readFileSync(outside, 'utf8'), 'precious\n');
  });

  it('an entry file or events.log that is a FIFO: list, get and events return (the root manager does not hang)', async () => {
    const store = new FolderQuarantineStore(dir);
    await store.put(meta(), Readable.from([Buffer.from('x')]));
    const fifoId = '20260101T000000Z-0123456789ab';
    spawnSync('mkfifo', [path.join(dir, `${fifoId}.json`)]);
    fs.writeFileSync(path.join(dir, `${fifoId}.eml`), 'x');
    fs.rmSync(path.join(dir, 'events.log'));
    spawnSync('mkfifo', [path.join(dir, 'events.log')]);
    const script = `
      const { FolderQuarantineStore } = require(${JSON.stringify(require.resolve('../../src/io/quarantine_store'))});
      const s = new FolderQuarantineStore(process.argv[1]);
      console.log(JSON.stringify([s.list().length, s.get(${JSON.stringify(fifoId)}) === undefined, s.events(0).events.length]));`;
    const r = spawnSync(process.execPath, ['-e', script, dir], { timeout: 20_000, encoding: 'utf8' });
    assert.equal(r.signal, null, 'the store hung on a FIFO');
    assert.deepEqual(JSON.parse(r.stdout), [1, true, 0]);
  });

  (isRoot ? it : it.skip)('run as root (esets_quar, the manager\'s expiry): the files it writes stay the folder owner\'s', async () => {
    const store = new FolderQuarantineStore(dir);
    const e = await store.put(meta(), Readable.from([Buffer.from('x')]));
    fs.rmSync(path.join(dir, 'events.log'));
    const nobody = 65534;
    for (const name of ['', '.tmp', `${e.id}.json`, `${e.id}.eml`]) fs.chownSync(path.join(dir, name), nobody, nobody);
    await store.update(e.id, (now) => ({ ...now, released: [{ at: new Date().toISOString(), to: ['x@y'], reply: '250' }] }));
    for (const name of [`${e.id}.json`, 'events.log']) {
      assert.equal(fs.statSync(path.join(dir, name)).uid, nobody, `${name} is root's: the relay's user cannot read or append to it`);
    }
  });
});

describe('quarantine expiry and a writer killed mid-store (io/quarantine_expiry)', () => {
  let dir: string;
  beforeEach(() => { dir = path.join(tempDir('esets-quar-sweep-'), 'quarantine'); });
  afterEach(() => removeTempDir(path.dirname(dir)));

  it('what a killed writer left in .tmp is removed at the next expiry run; a live writer\'s file and the entries stay', async () => {
    const store = new FolderQuarantineStore(dir);
    const e = await store.put(meta(), Readable.from([Buffer.from('x')]));
    // a worker killed (-9) while writing a message: its PID no longer runs
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
    const left = path.join(dir, '.tmp', `${dead}-0123456789ab.eml`);
    fs.writeFileSync(left, Buffer.alloc(100_000, 'x'));
    const writing = path.join(dir, '.tmp', `${process.pid}-0123456789ab.eml`);
    fs.writeFileSync(writing, 'x');
    expireOnce({ dir, limits: { maxAgeS: 0, maxBytes: 0 } });
    assert.equal(fs.existsSync(left), false, 'a dead writer\'s half message stays for ever');
    assert.equal(fs.existsSync(writing), true, 'a live writer\'s file was removed');
    assert.deepEqual(store.list().map((x) => x.id), [e.id]);
  });
});

describe('quarantine folder replaced by a link (io/quarantine_store)', () => {
  let base: string;
  beforeEach(() => { base = tempDir('esets-quar-link-'); });
  afterEach(() => removeTempDir(base));

  it('a link to a folder others can write (planted where the parent is writable): nothing is kept there, put fails', async () => {
    const theirs = path.join(base, 'theirs');
    fs.mkdirSync(theirs);
    fs.chmodSync(theirs, 0o777);
    if (isRoot) fs.chownSync(theirs, 65534, 65534);
    const dir = path.join(base, 'quarantine');
    fs.symlinkSync(theirs, dir);
    const store = new FolderQuarantineStore(dir);
    await assert.rejects(store.put(meta(), Readable.from([Buffer.from('Subject: secret\r\n\r\nx\r\n')])), /writable by others/);
    assert.deepEqual(fs.readdirSync(theirs).filter((n) => n !== '.tmp'), [], 'the message went to the planted folder');
  });
});
