// The quarantine (docs/quarantine.md) with the real relay, clamd and a
// recording server: EICAR rejected, discarded and cleaned is kept byte for
// byte with its metadata before the client is answered; esets_quar lists,
// shows, releases (once, to the original recipients, as the original client)
// and deletes; a folder that cannot be written and a full disk turn the
// reject into a defer and lose nothing; two relays of two workers each write
// at once; expiry at start and by the command.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FolderQuarantineStore } from '../../src/io/quarantine_store';
import { QuarantineEntry } from '../../src/lib/quarantine';
import { CLAMAV_TESTFILES, Clamd, EICAR, startClamd } from '../support/clamd';
import { httpGet, seriesValue } from '../support/metrics';
import { eventually } from '../support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { runEsetsQuar } from '../support/esets_quar';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const quar = runEsetsQuar;

/** The bytes the relay received (what its client sent, un-stuffed), as SmtpTestClient.data sends `text`. */
const received = (text: string): Buffer => {
  const crlf = text.replace(/\r?\n/g, '\r\n');
  return Buffer.from(crlf.endsWith('\r\n') ? crlf : `${crlf}\r\n`, 'latin1');
};

let serial = 0;

describe('quarantine (av_quarantine_enabled, esets_quar)', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  const relays: Relay[] = [];
  const dirs: string[] = [];

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await Promise.all(relays.map((r) => r.stop('SIGTERM')));
    await Promise.all([clamd?.stop(), sink?.stop()]);
    for (const d of dirs) removeTempDir(d);
  });

  /** A relay with the quarantine in a folder of its own (or `dir`); its esets.cfg and the folder. */
  async function relay(
    smtp: Record<string, string | number> = {}, dir?: string, global: Record<string, string | number> = {},
  ): Promise<{ relay: Relay; cfg: string; dir: string; store: FolderQuarantineStore }> {
    const folder = dir ?? path.join(tempDir('esets-quarantine-'), 'q');
    if (!dir) dirs.push(path.dirname(folder));
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket,
      global: { daemon_quarantine: `"${folder}"`, ...global }, smtp: { av_quarantine_enabled: 'yes', ...smtp },
    }));
    const r = await startRelay(['--config', cfg], port);
    relays.push(r);
    return { relay: r, cfg, dir: folder, store: new FolderQuarantineStore(folder) };
  }

  async function send(
    port: number, text: string, rcpts = ['bob@example.org'], from = 'alice@example.com',
  ): Promise<{ code: number; text: string; trace: string }> {
    const client = await SmtpTestClient.connect(port);
    await client.read();
    await client.command('EHLO client.example');
    const r = await client.send(from, rcpts, text);
    await client.command('QUIT').catch(() => undefined);
    client.end();
    const reply = r.data ?? r.rcpts[0];
    const line = reply.lines.join(' ');
    return { code: reply.code, text: line, trace: /\(trace ([^)]+)\)$/.exec(line)?.[1] ?? '' };
  }

  const infected = (label: string): { text: string; id: string } => {
    const id = `<${label}-${++serial}-${process.pid}@quarantine.test>`;
    // a line starting with a dot: the stored copy is un-stuffed (what clamd read), not as it crossed the wire
    return { id, text: `Message-ID: ${id}\r\nSubject: ${label}\r\n\r\n.a dotted line\r\n${EICAR}\r\n` };
  };
  const atSink = (messageId: string): Buffer[] => sink.messages.filter((m) => m.data.includes(messageId)).map((m) => m.data);

  it('EICAR rejected: kept byte for byte with its metadata before the 550, named in the summary line; nothing at the server', async () => {
    const { relay: r, store, dir } = await relay();
    const m = infected('reject');
    const reply = await send(r.port, m.text, ['bob@example.org', 'carol@example.org']);
    assert.equal(reply.code, 550, reply.text);
    // the client was answered: the entry is already there, whole
    const entries = store.list();
    assert.equal(entries.length, 1, JSON.stringify(entries));
    const e = entries[0];
    assert.deepEqual(fs.readFileSync(path.join(dir, `${e.id}.eml`)), received(m.text));
    assert.equal(e.size, received(m.text).length);
    assert.equal(e.traceId, reply.trace);
    assert.deepEqual(e.client, { address: '127.0.0.1', helo: 'client.example', ...(e.client.name ? { name: e.client.name } : {}) });
    assert.equal(e.sender, '<alice@example.com>');
    assert.deepEqual(e.recipients, ['<bob@example.org>', '<carol@example.org>']);
    assert.equal(e.verdict, 'infected');
    assert.match(e.threats.join(), /Eicar/);
    assert.equal(e.action, 'reject');
    assert.deepEqual(e.decidedBy, { option: 'action_av_infected', section: '' });
    assert.equal(e.messageId, m.id);
    assert.deepEqual(e.released, []);
    assert.ok(Math.abs(Date.parse(e.storedAt) - Date.now()) < 60_000);
    for (const name of [`${e.id}.eml`, `${e.id}.json`]) assert.equal(fs.statSync(path.join(dir, name)).mode & 0o077, 0, name);
    assert.ok(await eventually(() => new RegExp(`trace=${reply.trace.replace(/\./g, '\\.')} .*quarantine=${e.id}`).test(r.output()), 10_000),
      r.output());
    assert.deepEqual(atSink(m.id), []);
  });

  it('EICAR discarded (250) and a cleaned message\'s original are kept; the cleaned copy goes to the server', async () => {
    const { relay: r, store, dir } = await relay({ action_av_infected: 'discard', av_clean_mode: 'standard' });
    const m = infected('discard');
    const dropped = await send(r.port, m.text);
    assert.equal(dropped.code, 250, dropped.text);
    assert.deepEqual(atSink(m.id), []);
    const original = fs.readFileSync(path.join(CLAMAV_TESTFILES, 'clam.mail'), 'latin1').replace(/\r?\n/g, '\r\n')
      .replace('Subject: ClamAV Test File', `Subject: cleaned ${++serial}\r\nMessage-ID: <cleaned-${serial}@quarantine.test>`);
    const cleaned = await send(r.port, original);
    assert.equal(cleaned.code, 250, cleaned.text);
    const [discardEntry, cleanedEntry] = store.list();
    assert.equal(discardEntry.action, 'discard');
    assert.equal(discardEntry.verdict, 'infected');
    assert.equal(discardEntry.messageId, m.id);
    assert.equal(cleanedEntry.verdict, 'cleaned');
    assert.equal(cleanedEntry.action, 'accept');
    // action_av_deleted = accept passed the cleaned copy on to the AS stage, which decided (action_as = accept)
    assert.deepEqual(cleanedEntry.decidedBy, { option: 'action_as', section: '' });
    assert.deepEqual(fs.readFileSync(path.join(dir, `${cleanedEntry.id}.eml`)), received(original), 'not the original');
    const delivered = atSink(`<cleaned-${serial}@quarantine.test>`);
    assert.equal(delivered.length, 1);
    assert.match(delivered[0].toString('latin1'), /has been removed by esets-relay/);
  });

  it('esets_quar: list, show, release once to the original recipients as the original client (twice only with --force), '
    + 'release --to, delete', async () => {
    const { relay: r, cfg, store } = await relay();
    const m = infected('release');
    assert.equal((await send(r.port, m.text, ['bob@example.org', 'carol@example.org'])).code, 550);
    const list = await quar(cfg, ['list']);
    assert.equal(list.code, 0, list.stderr);
    const id = /^(\d{8}T\d{6}Z-[0-9a-f]{12})\s+\S+\s+<alice@example\.com>\s+<bob@example\.org>,<carol@example\.org>\s+infected:Eicar/m
      .exec(list.stdout)?.[1];
    assert.ok(id, list.stdout);
    const filtered = await quar(cfg, ['--json', 'list', '--verdict', 'infected', '--recipient', 'CAROL']);
    const json = JSON.parse(filtered.stdout) as QuarantineEntry[];
    assert.deepEqual(json.map((e) => e.id), [id]);
    assert.deepEqual(JSON.parse((await quar(cfg, ['--json', 'list', '--verdict', 'cleaned'])).stdout), []);
    const show = await quar(cfg, ['show', id]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^sender: +<alice@example\.com>$/m);
    assert.match(show.stdout, /^Subject: release$/m);

    // the entry's client (this test's is the relay's own address): the server must see it, through XCLIENT
    await store.update(id, (e) => ({ ...e, client: { ...e.client, address: '192.0.2.55' } }));
    const release = await quar(cfg, ['release', id]);
    assert.equal(release.code, 0, release.stderr);
    assert.match(release.stdout, new RegExp(`^released ${id} to <bob@example\\.org>, <carol@example\\.org>: 250 `));
    const sent = sink.messages.filter((x) => x.data.includes(m.id));
    assert.equal(sent.length, 1, 'released once');
    assert.equal(sent[0].from, 'alice@example.com');
    assert.deepEqual(sent[0].to, ['bob@example.org', 'carol@example.org']);
    assert.equal(sent[0].clientAddress, '192.0.2.55', 'the server did not get the original client (XCLIENT)');
    const data = sent[0].data.toString('latin1');
    assert.ok(data.startsWith(`X-Quarantine-Released: ${id} (infected: Eicar`), data.slice(0, 200));
    const afterField = sent[0].data.subarray(sent[0].data.indexOf('\r\n') + 2);
    assert.ok(afterField.equals(received(m.text)), 'the stored bytes were not sent as they are');

    const again = await quar(cfg, ['release', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /was released at .*--force sends it again/);
    assert.equal(sink.messages.filter((x) => x.data.includes(m.id)).length, 1, 'released twice without --force');
    const forced = await quar(cfg, ['release', id, '--force', '--to', 'admin@example.org']);
    assert.equal(forced.code, 0, forced.stderr);
    const last = sink.messages.filter((x) => x.data.includes(m.id));
    assert.equal(last.length, 2);
    assert.deepEqual(last[1].to, ['admin@example.org']);
    const entry = JSON.parse((await quar(cfg, ['--json', 'show', id])).stdout) as QuarantineEntry;
    assert.deepEqual(entry.released.map((x) => x.to), [['<bob@example.org>', '<carol@example.org>'], ['admin@example.org']]);

    assert.equal((await quar(cfg, ['delete', id])).code, 0);
    const gone = await quar(cfg, ['show', id]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no entry/);
    assert.equal((await quar(cfg, ['release', id, '--force'])).code, 1);
  });

  it('release of a message without a header section: the field, then the empty line, then the body as it was', async () => {
    const { cfg, store } = await relay();
    const body = `first body line: not a field\r\n${EICAR}\r\n`;
    const e = await store.put({
      traceId: 'headerless', client: { address: '127.0.0.1', helo: 'client.example' }, sender: '<alice@example.com>',
      recipients: ['<bob@example.org>'], verdict: 'infected', threats: ['Eicar'], action: 'reject',
      decidedBy: { option: 'action_av_infected', section: '' }, messageId: '',
    }, Readable.from([Buffer.from(body)]));
    const release = await quar(cfg, ['release', e.id]);
    assert.equal(release.code, 0, release.stderr);
    const sent = sink.messages.find((x) => x.data.includes('first body line: not a field'))!.data.toString('latin1');
    assert.match(sent, new RegExp(`^X-Quarantine-Released: ${e.id} [^\r\n]*\r\n\r\nfirst body line: not a field\r\n`));
  });

  it('a folder that cannot be written: EICAR deferred (451 4.3.0), not refused; the summary keeps the verdict', async () => {
    const base = tempDir('esets-quarantine-file-');
    dirs.push(base);
    fs.writeFileSync(path.join(base, 'not-a-folder'), '');
    const { relay: r } = await relay({}, path.join(base, 'not-a-folder', 'q'));
    const m = infected('unwritable');
    const reply = await send(r.port, m.text);
    assert.equal(reply.code, 451, reply.text);
    assert.match(reply.text, /^4\.3\.0 Message deferred: it could not be quarantined, try again later \(trace /);
    assert.deepEqual(atSink(m.id), []);
    assert.ok(await eventually(() => /\[WARN\].*action=defer by=action_av_infected .*av="infected: Eicar.*quarantine=failed/.test(r.output()),
      10_000), r.output());
    assert.match(r.output(), /quarantine: message not stored \(.*\): deferred instead of reject/);
  });

  it('a full disk: deferred and nothing half-written; with room again, kept and refused', async function () {
    const base = tempDir('esets-quarantine-full-');
    dirs.push(base);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', base]);
    try {
      const folder = path.join(base, 'q');
      const { relay: r, store } = await relay({}, folder);
      const filler = path.join(base, 'filler');
      fs.writeFileSync(filler, Buffer.alloc(200 * 1024));
      const m = infected('full');
      const big = m.text.replace('\r\n\r\n', `\r\n\r\n${`${'x'.repeat(76)}\r\n`.repeat(1500)}`);
      const reply = await send(r.port, big);
      assert.equal(reply.code, 451, reply.text);
      assert.deepEqual(store.list(), []);
      assert.deepEqual(fs.readdirSync(path.join(folder, '.tmp')), [], 'a partial file was left');
      assert.deepEqual(atSink(m.id), []);
      fs.rmSync(filler);
      const retry = await send(r.port, big);
      assert.equal(retry.code, 550, retry.text);
      assert.equal(store.list().length, 1);
    } finally {
      execFileSync('umount', [base]);
    }
  });

  it('two relays of two workers each, one folder, 24 messages at once: 24 entries, each its own message, no id twice', async () => {
    const a = await relay({ num_proc: 2 });
    const b = await relay({ num_proc: 2 }, a.dir);
    const messages = Array.from({ length: 24 }, (_, i) => infected(`concurrent-${i}`));
    const replies = await Promise.all(messages.map((m, i) => send((i % 2 ? b : a).relay.port, m.text)));
    assert.deepEqual(replies.map((x) => x.code), Array(24).fill(550));
    const entries = a.store.list();
    assert.equal(entries.length, 24);
    assert.equal(new Set(entries.map((e) => e.id)).size, 24);
    for (const m of messages) {
      const e = entries.find((x) => x.messageId === m.id);
      assert.ok(e, `${m.id} not kept`);
      assert.deepEqual(fs.readFileSync(path.join(a.dir, `${e.id}.eml`)), received(m.text));
    }
  });

  it('/metrics counts what the store records, esets_quar\'s releases and deletes included, and stores that failed', async () => {
    const httpPort = await freePort();
    const { relay: r, cfg, dir } = await relay({ http_listen: `"127.0.0.1:${httpPort}"` });
    const scrape = async (): Promise<string> => (await httpGet(httpPort, '/metrics')).body;
    const counted = (t: string, event: string): number | undefined => (
      seriesValue(t, `esets_relay_quarantine_events_total{event="${event}"}`));
    const before = await scrape();
    for (const event of ['stored', 'released', 'deleted', 'expired']) assert.equal(counted(before, event), 0, event);
    assert.equal(seriesValue(before, 'esets_relay_quarantine_failures_total'), 0);
    assert.equal((await send(r.port, infected('metrics').text)).code, 550);
    const id = (JSON.parse((await quar(cfg, ['--json', 'list'])).stdout) as QuarantineEntry[])[0].id;
    assert.equal((await quar(cfg, ['release', id])).code, 0);
    assert.equal((await quar(cfg, ['delete', id])).code, 0);
    const after = await scrape();
    assert.deepEqual(['stored', 'released', 'deleted', 'expired'].map((e) => counted(after, e)), [1, 1, 1, 0]);
    // the folder made a file meanwhile: the message is deferred, and counted (a worker's counts come in batches: polled)
    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, '');
    assert.equal((await send(r.port, infected('metrics-failed').text)).code, 451);
    let failed: number | undefined;
    for (let i = 0; i < 40 && failed !== 1; i++) {
      failed = seriesValue(await scrape(), 'esets_relay_quarantine_failures_total');
      if (failed !== 1) await new Promise((res) => setTimeout(res, 250));
    }
    assert.equal(failed, 1);
  });

  it('expiry: past quarantine_max_age at the relay\'s start (logged); over quarantine_max_size by esets_quar expire', async () => {
    const folder = path.join(tempDir('esets-quarantine-expiry-'), 'q');
    dirs.push(path.dirname(folder));
    const store = new FolderQuarantineStore(folder);
    const put = async (label: string, storedAt: string): Promise<QuarantineEntry> => {
      const e = await store.put({
        traceId: label, client: { address: '192.0.2.1', helo: 'h' }, sender: '<a@example.com>', recipients: ['<b@example.org>'],
        verdict: 'infected', threats: ['Eicar'], action: 'reject', decidedBy: { option: 'action_av_infected', section: '' },
        messageId: label,
      }, Readable.from([Buffer.alloc(1000, 'x')]));
      return (await store.update(e.id, (now) => ({ ...now, storedAt })))!;
    };
    const old = await put('old', new Date(Date.now() - 3 * 86400_000).toISOString());
    const older = await put('older', new Date(Date.now() - 2 * 86400_000).toISOString());
    const newer = await put('newer', new Date(Date.now() - 86400_000).toISOString());
    const fresh = await put('fresh', new Date().toISOString());
    const { relay: r, cfg } = await relay({ quarantine_max_age: 2.5 * 86400 }, folder);
    assert.ok(await eventually(() => /quarantine .*: 1 expired \(1 past quarantine_max_age, 0 over quarantine_max_size\)/.test(r.output()),
      10_000), r.output());
    assert.deepEqual(store.list().map((e) => e.id), [older.id, newer.id, fresh.id]);
    assert.equal(store.get(old.id), undefined);
    fs.appendFileSync(cfg, 'quarantine_max_size = 2500\n');
    const expire = await quar(cfg, ['expire']);
    assert.equal(expire.code, 0, expire.stderr);
    assert.match(expire.stdout, new RegExp(`^1 expired\\n${older.id} \\(size\\)$`, 'm'));
    assert.deepEqual(store.list().map((e) => e.id), [newer.id, fresh.id]);
    assert.deepEqual(store.events(0).events.filter((e) => e.event === 'expired').map((e) => e.id), [old.id, older.id]);
  });
});
