// The folder store on a real file system: entries whole or absent, files for
// the relay's user only, many writers at once (processes too), releases under
// a lock, the events log, and a write that fails leaving nothing behind.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FolderQuarantineStore, NewQuarantineEntry } from '../../src/io/quarantine_store';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const meta = (n = 0): NewQuarantineEntry => ({
  traceId: `T.${n}`, client: { address: '192.0.2.1', helo: 'client.example' }, sender: 'a@example.com', recipients: ['b@example.org'],
  verdict: 'infected', threats: ['Eicar-Signature'], action: 'reject', decidedBy: { option: 'action_av_infected', section: '' },
  messageId: `<m${n}@example.com>`,
});

const bytes = (s: Readable): Promise<Buffer> => new Promise((resolve, reject) => {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
});

describe('quarantine folder store (io/quarantine_store)', () => {
  let dir: string;
  beforeEach(() => { dir = path.join(tempDir('esets-quar-'), 'quarantine'); });
  afterEach(() => removeTempDir(path.dirname(dir)));

  it('keeps the bytes exactly and the entry, for the owner only; list, get, message, remove', async () => {
    const store = new FolderQuarantineStore(dir);
    const message = Buffer.concat([Buffer.from('Subject: x\r\n\r\n.line\r\n'), Buffer.from([0, 255, 13, 10])]);
    const e = await store.put(meta(1), Readable.from([message]));
    assert.equal(e.size, message.length);
    assert.deepEqual(store.list().map((x) => x.id), [e.id]);
    assert.deepEqual(store.get(e.id), e);
    assert.deepEqual(await bytes(store.message(e.id)), message);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    for (const name of fs.readdirSync(dir).filter((n) => n !== '.tmp')) {
      assert.equal(fs.statSync(path.join(dir, name)).mode & 0o077, 0, `${name} is readable by others`);
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, '.tmp')), [], 'a temporary file was left');
    assert.equal(store.remove(e.id, 'deleted'), true);
    assert.equal(store.remove(e.id, 'deleted'), false);
    assert.deepEqual(store.list(), []);
    assert.deepEqual(store.events(0).events.map((x) => x.event), ['stored', 'deleted']);
  });

  it('a message stream that fails leaves no entry and no file', async () => {
    const store = new FolderQuarantineStore(dir);
    const failing = new Readable({ read() { this.destroy(new Error('EIO: read failed')); } });
    await assert.rejects(store.put(meta(), failing), /EIO/);
    assert.deepEqual(store.list(), []);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n !== '.tmp'), []);
    assert.deepEqual(fs.readdirSync(path.join(dir, '.tmp')), []);
  });

  it('a folder it cannot write: put fails (the caller defers), nothing half-written', async () => {
    fs.mkdirSync(dir, { mode: 0o500 });
    const store = new FolderQuarantineStore(dir);
    // as root the mode does not stop a write: a file where the folder's .tmp should be does
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(path.join(dir, '.tmp'), '');
    await assert.rejects(store.put(meta(), Readable.from([Buffer.from('x')])));
    assert.deepEqual(store.list(), []);
  });

  it('four processes writing 25 entries each at once: 100 entries, every id once, none torn', async function () {
    this.timeout(60_000);
    const script = `
      const { FolderQuarantineStore } = require(${JSON.stringify(require.resolve('../../src/io/quarantine_store'))});
      const { Readable } = require('node:stream');
      const store = new FolderQuarantineStore(process.argv[1]);
      (async () => {
        await Promise.all(Array.from({ length: 25 }, (_, i) => store.put({
          traceId: process.pid + '.' + i, client: { address: '192.0.2.1', helo: 'h' }, sender: 's@x', recipients: ['r@y'],
          verdict: 'infected', threats: ['t'], action: 'reject', decidedBy: { option: 'action_av_infected', section: '' }, messageId: '',
        }, Readable.from([Buffer.alloc(10_000 + i, 'x')]))));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const codes = await Promise.all(Array.from({ length: 4 }, () => new Promise<number | null>((resolve) => {
      spawn(process.execPath, ['-e', script, dir], { stdio: 'inherit' }).once('exit', resolve);
    })));
    assert.deepEqual(codes, [0, 0, 0, 0]);
    const store = new FolderQuarantineStore(dir);
    const entries = store.list();
    assert.equal(entries.length, 100);
    assert.equal(new Set(entries.map((e) => e.id)).size, 100);
    assert.equal(new Set(entries.map((e) => e.traceId)).size, 100);
    for (const e of entries) assert.equal(fs.statSync(path.join(dir, `${e.id}.eml`)).size, e.size);
    assert.equal(store.events(0).events.filter((x) => x.event === 'stored').length, 100);
  });

  it('updates run one at a time under the entry\'s lock; the events log is read on from an offset', async () => {
    const store = new FolderQuarantineStore(dir);
    const e = await store.put(meta(), Readable.from([Buffer.from('x')]));
    const first = store.events(0);
    assert.equal(first.events.length, 1);
    // ten releases at once, each adding one: all ten kept (none lost to a concurrent rewrite)
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.update(e.id, (now) => ({
      ...now, released: [...now.released, { at: new Date().toISOString(), to: [`r${i}@example.org`], reply: '250 ok' }],
    }))));
    assert.equal(store.get(e.id)!.released.length, 10);
    const next = store.events(first.offset);
    assert.deepEqual(next.events.map((x) => x.event), Array(10).fill('released'));
    assert.deepEqual(store.events(next.offset).events, []);
    assert.equal(await store.update('20261206T120000Z-0123456789ab', (x) => x), undefined, 'no such entry');
  });
});
