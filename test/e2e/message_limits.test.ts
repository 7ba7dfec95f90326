// One client, one share (DESIGN.md): the size a client is told is the size it
// is held to (552 5.3.4, at MAIL for a declared SIZE=, at the end of data for
// one that did not say: nothing past the limit is stored or scanned), and a
// spool that fills or fails costs the one message it could not keep
// (452 4.3.1), never the worker and the other sessions on it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { SIZE_ROOM_BYTES } from '../../src/lib/message_size';
import { Clamd, startClamd } from '../support/clamd';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { childPids, eventually } from '../support/processes';
import { linesOf, relayReplyTrace } from '../support/relay_reply';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { message, SmtpTestClient } from '../support/smtp_client';
import { removeTempDir, tempDir } from '../support/temp_dirs';

/** A message of exactly `size` bytes as the client sends it (un-stuffed, CRLF counted; RFC 1870). */
function messageOfSize(id: string, size: number): string {
  const head = `Message-ID: <${id}>\r\nSubject: size ${size}\r\n\r\n`;
  const line = `${'s'.repeat(76)}\r\n`;
  let body = line.repeat(Math.floor((size - head.length) / line.length));
  const rest = size - head.length - body.length;
  // the last line, CRLF included, makes up the rest (at least 2 bytes are left)
  if (rest >= 2) body += `${'t'.repeat(rest - 2)}\r\n`;
  const text = head + body;
  assert.equal(Buffer.byteLength(text), size);
  return text;
}

function extension(lines: string[], name: string): string | undefined {
  return lines.slice(1).find((l) => l.toUpperCase().startsWith(name));
}

function delivered(sink: Sink, id: string): boolean {
  return sink.messages.some((m) => m.data.includes(`Message-ID: <${id}>`));
}

describe('size: the SIZE advertised is the SIZE enforced (552 5.3.4)', function () {
  this.timeout(180_000);
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  let relay: Relay;
  const LIMIT = 300_000;
  const ADVERTISED = LIMIT - SIZE_ROOM_BYTES;

  before(async () => {
    sink = new Sink();
    await sink.start();
    [clamd, postfix] = await Promise.all([
      // TemporaryDirectory unset: the warning below names clamd's /tmp
      startClamd(undefined, false, undefined, { systemTemp: true }),
      startPostfixServer({ deliverTo: sink.port, main: { message_size_limit: String(LIMIT) } }),
    ]);
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
      serverPort: postfix.port, clamdSocket: clamd.socket, smtp: { add_header_received: 'yes' },
    }))], port);
  });
  after(async () => {
    await relay?.stop();
    await postfix?.stop();
    await sink?.stop();
    await clamd?.stop();
  });

  async function client(): Promise<{ c: SmtpTestClient; ehlo: string[] }> {
    const c = await SmtpTestClient.connect(relay.port);
    assert.equal((await c.read()).code, 220);
    const ehlo = await c.command('EHLO client.example');
    assert.equal(ehlo.code, 250);
    return { c, ehlo: ehlo.lines };
  }

  it("warns at start that the spool and clamd's TemporaryDirectory (unset: /tmp) share one filesystem", () => {
    assert.match(relay.output(), /the spool \(\S+\) and clamd's TemporaryDirectory \/tmp \(\S+clamd\.conf\) share one filesystem/);
  });

  it("advertises Postfix's message_size_limit less the room for the relay's fields", async () => {
    const { c, ehlo } = await client();
    assert.equal(extension(ehlo, 'SIZE'), `SIZE ${ADVERTISED}`);
    c.end();
  });

  it('refuses MAIL with SIZE= over it (552 5.3.4), takes SIZE= at it', async () => {
    const { c } = await client();
    const over = await c.command(`MAIL FROM:<a@example.com> SIZE=${ADVERTISED + 1}`);
    assert.equal(over.code, 552);
    assert.match(over.lines[0], /^5\.3\.4 /);
    const at = await c.command(`MAIL FROM:<a@example.com> SIZE=${ADVERTISED}`);
    assert.equal(at.code, 250);
    c.end();
  });

  it('delivers a message of exactly the advertised size, with the relay\'s fields added (Postfix takes it)', async () => {
    const { c } = await client();
    const r = await c.send('a@example.com', ['b@example.org'], messageOfSize('at-limit@test', ADVERTISED));
    assert.equal(r.data?.code, 250, r.data?.lines.join(' '));
    c.end();
    await postfix.settle();
    const got = sink.messages.find((m) => m.data.includes('Message-ID: <at-limit@test>'));
    assert.ok(got, 'the server delivered it');
    assert.match(got.data.subarray(0, 4000).toString(), /X-Virus-Scanner: /);
  });

  it('answers a message past the limit without SIZE= 552 5.3.4 at its end, sends nothing, and the session goes on', async () => {
    const { c } = await client();
    for (const size of [ADVERTISED + 1, 5_000_000]) {
      const id = `over-${size}@test`;
      const r = await c.send('a@example.com', ['b@example.org'], messageOfSize(id, size));
      assert.equal(r.data?.code, 552, r.data?.lines.join(' '));
      const trace = relayReplyTrace(r.data!.lines[0], /^5\.3\.4 Message size exceeds fixed maximum message size$/);
      // the summary of that message, found by the id the client was told
      assert.ok(await eventually(() => linesOf(relay.output(), trace).some((l) => / action=reject by=message_size /.test(l)), 10_000),
        relay.output());
    }
    const ok = await c.send('a@example.com', ['b@example.org'], message({ 'Message-ID': '<after-over@test>' }, 'small'));
    assert.equal(ok.data?.code, 250);
    c.end();
    await postfix.settle();
    assert.ok(delivered(sink, 'after-over@test'));
    for (const size of [ADVERTISED + 1, 5_000_000]) assert.ok(!delivered(sink, `over-${size}@test`));
    // the summary names the refusal
    assert.match(relay.output(), /action=reject by=message_size .*reply="552 5\.3\.4 /);
  });

  it("holds a client that says HELO (and so is told no SIZE) to the server's limit too, not storing what is past it", async () => {
    const c = await SmtpTestClient.connect(relay.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.command('HELO old.example')).code, 250);
    const r = await c.send('a@example.com', ['b@example.org'], messageOfSize('helo-over@test', 2_000_000));
    // the relay's own 552 (Postfix's would say "message file too big", after the relay stored and scanned it all)
    assert.equal(r.data?.code, 552, r.data?.lines.join(' '));
    relayReplyTrace(r.data!.lines.join(' '), /^5\.3\.4 Message size exceeds fixed maximum message size$/);
    c.end();
  });

  it('with a bare SIZE (Postfix message_size_limit = 0) advertises message_size_limit and holds clients to it', async () => {
    const unlimited = await startPostfixServer({ deliverTo: sink.port, main: { message_size_limit: '0' } });
    const port = await freePort();
    const second = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
      serverPort: unlimited.port, clamdSocket: clamd.socket, smtp: { message_size_limit: '1M' },
    }))], port);
    try {
      const c = await SmtpTestClient.connect(port);
      await c.read();
      const ehlo = await c.command('EHLO client.example');
      assert.equal(extension(ehlo.lines, 'SIZE'), 'SIZE 1048576');
      const big = await c.command('MAIL FROM:<a@example.com> SIZE=150000000');
      assert.equal(big.code, 552);
      relayReplyTrace(big.lines[0], /^5\.3\.4 Message size exceeds fixed maximum message size$/);
      c.end();
    } finally {
      await second.stop();
      await unlimited.stop();
    }
  });
});

describe('a full spool fails one message (452 4.3.1), never the worker', function () {
  this.timeout(240_000);
  let clamd: Clamd;
  let sink: Sink;
  let relay: Relay;
  let tmp: string;

  before(async function () {
    // a 12 MB spool filesystem: the relay's TMPDIR (its spool and run folders)
    tmp = tempDir('esets-small-spool-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m,mode=1777', 'tmpfs', tmp]);
    sink = new Sink();
    await sink.start();
    clamd = await startClamd();
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket, smtp: { spool_min_free: 0 },
    }))], port, { TMPDIR: tmp });
  });
  after(async () => {
    await relay?.stop();
    await sink?.stop();
    await clamd?.stop();
    if (tmp) {
      try { execFileSync('umount', [tmp]); } catch { /* not mounted */ }
      removeTempDir(tmp);
    }
  });

  it('refuses MAIL with 452 4.3.1 when the free space would fall below spool_min_free with the SIZE= declared', async () => {
    const port = await freePort();
    const floored = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket, smtp: { spool_min_free: '4M' },
    }))], port, { TMPDIR: tmp });
    try {
      assert.doesNotMatch(floored.output(), /below spool_min_free|share one filesystem/);
      const c = await SmtpTestClient.connect(port);
      await c.read();
      await c.command('EHLO client.example');
      const fits = await c.command('MAIL FROM:<a@example.com> SIZE=1000000');
      assert.equal(fits.code, 250);
      await c.command('RSET');
      const tooMuch = await c.command('MAIL FROM:<a@example.com> SIZE=9000000');
      assert.equal(tooMuch.code, 452, tooMuch.lines.join(' '));
      const trace = relayReplyTrace(tooMuch.lines[0], /^4\.3\.1 Insufficient system storage, try again later$/);
      c.end();
      // what the reply leaves out is in the log line of that id
      assert.ok(linesOf(floored.output(), trace).some((l) =>
        /transaction refused: spool has \d+ bytes free, below spool_min_free 4194304 plus SIZE=9000000/.test(l)), floored.output());
    } finally {
      await floored.stop();
    }
  });

  it('warns at start when the spool has less than spool_min_free, and refuses every MAIL with 452 4.3.1', async () => {
    const port = await freePort();
    const starved = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket, smtp: { spool_min_free: '13M' },
    }))], port, { TMPDIR: tmp });
    try {
      assert.match(starved.output(), /has \d+ bytes free, below spool_min_free \(13631488\): every MAIL is answered 452 4\.3\.1/);
      const c = await SmtpTestClient.connect(port);
      await c.read();
      await c.command('EHLO client.example');
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 452);
      c.end();
    } finally {
      await starved.stop();
    }
  });

  it('under concurrent traffic: each 20 MB message gets 452 4.3.1, every small one is delivered; same workers, spool emptied', async () => {
    const workersBefore = childPids(relay.process.pid!).sort();
    const big = messageOfSize('big@test', 20_000_000);
    const answers = new Map<string, number>();
    const bigClient = async (n: number): Promise<void> => {
      const c = await SmtpTestClient.connect(relay.port);
      await c.read();
      await c.command('EHLO big.example');
      const r = await c.send('a@example.com', ['b@example.org'], big.replace('big@test', `big-${n}@test`), '', 120_000);
      answers.set(`big-${n}@test`, r.data?.code ?? r.mail.code);
      c.end();
    };
    const smallClient = async (n: number): Promise<void> => {
      const c = await SmtpTestClient.connect(relay.port);
      await c.read();
      await c.command('EHLO small.example');
      for (let i = 0; i < 4; i++) {
        const id = `small-${n}-${i}@test`;
        const r = await c.send('a@example.com', ['b@example.org'], message({ 'Message-ID': `<${id}>` }, `small ${'x'.repeat(20_000)}`));
        answers.set(id, r.data?.code ?? r.mail.code);
      }
      c.end();
    };
    await Promise.all([bigClient(1), bigClient(2), bigClient(3), smallClient(1), smallClient(2), smallClient(3), smallClient(4)]);
    for (const [id, code] of answers) {
      if (id.startsWith('big')) assert.equal(code, 452, `${id}: ${code}`);
      else assert.equal(code, 250, `${id}: ${code}`);
      // what the client was told is what the server got: nothing lost, nothing doubled
      const copies = sink.messages.filter((m) => m.data.includes(`Message-ID: <${id}>`)).length;
      assert.equal(copies, code === 250 ? 1 : 0, `${id}: ${copies} copies at the server`);
    }
    assert.equal(answers.size, 3 + 16);
    assert.deepEqual(childPids(relay.process.pid!).sort(), workersBefore, 'no worker died');
    assert.match(relay.output(), /spool write failed: ENOSPC/);
    // the disk is free again: the failed messages' files are gone
    const used = fs.statfsSync(tmp);
    assert.ok((used.blocks - used.bfree) * used.bsize < 2 * 1024 * 1024, `${(used.blocks - used.bfree) * used.bsize} bytes still used`);
    const c = await SmtpTestClient.connect(relay.port);
    await c.read();
    await c.command('EHLO after.example');
    const after = await c.send('a@example.com', ['b@example.org'], message({ 'Message-ID': '<after-full@test>' }, 'after'));
    assert.equal(after.data?.code, 250);
    c.end();
  });
});
