// One client, one share (docs/security.md#one-client-one-share): a client that
// pipelines without reading is stopped by TCP backpressure, not fed; a client
// that keeps the relay stuck, drips bytes or stays too long is cut with 421
// 4.4.2; a real Postfix pipelining 1,000 recipients is never refused. Each
// attack runs with a bystander session that must complete meanwhile. Outcomes
// and orders are asserted, with generous bounds (a busy 2-core machine).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { Clamd, startClamd } from '../support/clamd';
import { baseMainCf, startPostfixInstance } from '../support/postfix';
import { childPids, eventually } from '../support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { reply, ScriptedServer } from '../support/scripted_server';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

/** a bystander's whole session must end within this (ms) while an attack runs */
const BYSTANDER_BOUND_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let seq = 0;

/** Whether the server holds exactly one message carrying `id`. */
type Delivered = (id: string) => boolean;

const inSink = (sink: Sink): Delivered => (id) => sink.messages.filter((m) => m.data.includes(id)).length === 1;

/** Another client: EHLO, MAIL, RCPT, DATA, QUIT; its message must reach the server. */
async function bystander(relay: Relay, server: Sink | Delivered): Promise<number> {
  const delivered = server instanceof Sink ? inSink(server) : server;
  const id = `bystander-${process.pid}-${++seq}@test`;
  const started = Date.now();
  const client = await SmtpTestClient.connect(relay.port);
  try {
    assert.equal((await client.read(BYSTANDER_BOUND_MS)).code, 220);
    assert.equal((await client.command('EHLO bystander.example', BYSTANDER_BOUND_MS)).code, 250);
    const { data } = await client.send(
      'by@example.com', ['stander@example.org'], `Subject: bystander\r\nMessage-ID: <${id}>\r\n\r\nhello\r\n`, '', BYSTANDER_BOUND_MS,
    );
    assert.equal(data?.code, 250, `the bystander was told ${data?.code} ${data?.lines.join(' ')}`);
    assert.equal((await client.command('QUIT', BYSTANDER_BOUND_MS)).code, 221);
  } finally {
    client.destroy();
  }
  const took = Date.now() - started;
  assert.ok(took < BYSTANDER_BOUND_MS, `the bystander's session took ${took} ms`);
  assert.ok(await eventually(() => delivered(id), 10_000), 'the bystander\'s message at the server, once');
  return took;
}

/** A client that writes and never reads. */
class Flooder {
  readonly socket: net.Socket;
  sent = 0;
  closed = false;
  /** when a write stayed unflushed for `stuckMs` (TCP backpressure), ms since epoch */
  blockedAt?: number;
  closedAt?: number;

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1' });
    this.socket.pause(); // never reads
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => { this.closed = true; this.closedAt = Date.now(); });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  /**
   * Writes `head` once, then `line` over and over in 64 KiB chunks until a write stays
   * unflushed for `stuckMs`, `maxBytes` are written or `maxMs` pass.
   */
  async flood(head: string, line: string, maxBytes: number, maxMs: number, stuckMs = 3_000): Promise<void> {
    this.socket.write(head);
    const chunk = Buffer.from(line.repeat(Math.ceil(65536 / line.length)));
    const until = Date.now() + maxMs;
    while (!this.closed && this.sent < maxBytes && Date.now() < until) {
      this.sent += chunk.length;
      if (this.socket.write(chunk)) continue;
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => { this.socket.off('drain', onDrain); resolve(false); }, stuckMs);
        const onDrain = (): void => { clearTimeout(timer); resolve(true); };
        this.socket.once('drain', onDrain);
      });
      if (!drained) {
        this.blockedAt = Date.now();
        return;
      }
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

describe('one client, one share: bounded input, slow clients', function () {
  this.timeout(240_000);
  let clamd: Clamd;
  let sink: Sink;
  let relay: Relay | undefined;

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await sink?.stop();
    await clamd?.stop();
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
  });

  async function start(smtp: Record<string, string | number>): Promise<Relay> {
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp }))], port);
    return relay;
  }

  /** Runs the flood and bystanders at once; returns the flooder. */
  async function underFlood(r: Relay, head: string, line: string): Promise<Flooder> {
    const flooder = new Flooder(r.port);
    await flooder.connected();
    const flood = flooder.flood(head, line, 64 * 1024 * 1024, 60_000);
    // bystanders while the flood runs: at once, and once the relay has stopped reading
    await bystander(r, sink);
    await flood;
    await bystander(r, sink);
    return flooder;
  }

  it('a NOOP flood that never reads is stopped by backpressure, not read; others are served', async () => {
    const r = await start({ timeout_client: 10 });
    const flooder = await underFlood(r, 'EHLO flood.example\r\n', 'NOOP\r\n');
    try {
      assert.ok(flooder.blockedAt !== undefined, `the relay read all ${flooder.sent} bytes: no backpressure`);
      // what the relay took is what fits in its 64 KiB and the kernel's socket buffers, not the 64 MB offered
      assert.ok(flooder.sent < 32 * 1024 * 1024, `${flooder.sent} bytes written before the relay stopped reading`);
    } finally {
      flooder.destroy();
    }
  });

  it('a RCPT flood that never reads is stopped by backpressure; others are served', async () => {
    const r = await start({ timeout_client: 10 });
    const flooder = await underFlood(
      r, 'EHLO flood.example\r\nMAIL FROM:<flood@example.com>\r\n', 'RCPT TO:<victim@example.org>\r\n',
    );
    try {
      assert.ok(flooder.blockedAt !== undefined, `the relay read all ${flooder.sent} bytes: no backpressure`);
      assert.ok(flooder.sent < 32 * 1024 * 1024, `${flooder.sent} bytes written before the relay stopped reading`);
    } finally {
      flooder.destroy();
    }
  });

  it('a client that goes on writing after its session ended (QUIT, refused at a cap) is read no more, then dropped', async () => {
    // Haraka ignores what a closed session's client sends, but would read it at line rate for as long as it comes
    const r = await start({ timeout_client: 30, max_connections_per_ip: 2 });
    const holders = [await SmtpTestClient.connect(r.port), await SmtpTestClient.connect(r.port)];
    for (const h of holders) assert.equal((await h.read()).code, 220);
    // the third connection from this address is refused at connect (421 4.7.0), then floods
    const overCap = new Flooder(r.port);
    await overCap.connected();
    const capFlood = overCap.flood('', 'x'.repeat(1000), 256 * 1024 * 1024, 30_000);
    for (const h of holders) h.end();
    await capFlood;
    const afterQuit = new Flooder(r.port);
    await afterQuit.connected();
    const quitFlood = afterQuit.flood('EHLO flood.example\r\nQUIT\r\n', 'x'.repeat(1000), 256 * 1024 * 1024, 30_000);
    await bystander(r, sink);
    await quitFlood;
    try {
      for (const [name, f] of [['refused at the cap', overCap], ['after QUIT', afterQuit]] as const) {
        assert.ok(f.blockedAt !== undefined || f.closed, `${name}: the relay read all ${f.sent} bytes`);
        assert.ok(f.sent < 32 * 1024 * 1024, `${name}: ${f.sent} bytes written before the relay stopped reading`);
        // dropped a few seconds after it stopped being read (not after timeout_client, 30 s)
        assert.ok(await eventually(() => f.closed, 15_000), `${name}: the connection is still open`);
      }
    } finally {
      overCap.destroy();
      afterQuit.destroy();
    }
  });

  it('a client that keeps the relay stuck (input full, replies unread) is cut within about timeout_client', async () => {
    // a server with a long HELP answer (8 KB): the replies the client does not read fill the relay's output
    // quickly, then its commands wait; after timeout_client of that, the relay cuts it
    const server = new ScriptedServer({ help: reply(214, ...Array.from({ length: 80 }, (_, i) => `${i} ${'h'.repeat(96)}`)) });
    await server.start();
    const delivered: Delivered = (id) => server.sessions.flatMap((x) => x.messages).filter((m) => m.includes(id)).length === 1;
    try {
      const port = await freePort();
      const cfg = esetsCfg(port, { serverPort: server.port, clamdSocket: clamd.socket, smtp: { timeout_client: 3 } });
      relay = await startRelay(['--config', writeEsetsCfg(cfg)], port);
      const flooder = new Flooder(port);
      await flooder.connected();
      const flood = flooder.flood('EHLO stuck.example\r\n', 'HELP\r\n', 64 * 1024 * 1024, 90_000, 2_000);
      const by = bystander(relay, delivered);
      await flood;
      try {
        assert.ok(flooder.blockedAt !== undefined, 'the relay never stopped reading');
        assert.ok(await eventually(() => flooder.closed, 120_000, 100), 'the stuck client was never disconnected');
        const after = (flooder.closedAt ?? 0) - flooder.blockedAt;
        // its replies pile up until the relay's output is full, then 3 s stuck, then the close: generous
        assert.ok(after < 90_000, `cut ${after} ms after its writes stopped`);
        await by;
        await bystander(relay, delivered);
      } finally {
        flooder.destroy();
      }
    } finally {
      await relay?.stop();
      relay = undefined;
      await server.stop();
    }
  });

  it('a slow-drip client (a byte a second) is cut with 421 4.4.2', async () => {
    const r = await start({ timeout_client: 3, client_min_rate: 100 });
    const by = bystander(r, sink);
    const client = await SmtpTestClient.connect(r.port);
    try {
      assert.equal((await client.read()).code, 220);
      assert.equal((await client.command('EHLO drip.example')).code, 250);
      const line = 'MAIL FROM:<drip@example.com>\r\n';
      let sent = 0;
      const started = Date.now();
      // each byte resets Haraka's inactivity timeout: only the request deadline ends this
      while (!client.closed && sent < line.length - 2 && Date.now() - started < 60_000) {
        client.write(line[sent++]);
        await sleep(1_000);
      }
      const reply = await client.read(30_000);
      assert.equal(reply.code, 421, `${reply.code} ${reply.lines.join(' ')}`);
      assert.match(reply.lines.join(' '), /^4\.4\.2 /);
      assert.ok(sent < line.length - 2, `the whole line (${sent} bytes) dripped in without a cut`);
      assert.ok(await eventually(() => /client disconnected: Client too slow/.test(r.output()), 10_000), 'the cut is logged');
      assert.ok(await eventually(() => client.closed, 15_000), 'the relay closes the session');
      await by;
    } finally {
      client.destroy();
    }
  });

  it('a slow-drip message after 354 is cut with 421 4.4.2; nothing reaches the server', async () => {
    const r = await start({ timeout_client: 3, client_min_rate: 100 });
    const client = await SmtpTestClient.connect(r.port);
    const id = `drip-data-${process.pid}@test`;
    try {
      assert.equal((await client.read()).code, 220);
      assert.equal((await client.command('EHLO drip.example')).code, 250);
      assert.equal((await client.command('MAIL FROM:<drip@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<drip@example.org>')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      client.write(`Message-ID: <${id}>\r\nSubject: drip\r\n\r\n`);
      const by = bystander(r, sink);
      const started = Date.now();
      while (!client.closed && Date.now() - started < 60_000) {
        client.write('x');
        await sleep(1_000);
        if (Date.now() - started > 40_000) break;
      }
      const reply = await client.read(30_000);
      assert.equal(reply.code, 421, `${reply.code} ${reply.lines.join(' ')}`);
      assert.match(reply.lines.join(' '), /^4\.4\.2 /);
      await by;
      assert.ok(!sink.messages.some((m) => m.data.includes(id)), 'the cut message reached the server');
    } finally {
      client.destroy();
    }
  });

  it('timeout_session: a session is cut with 421 4.4.2 between transactions, every accepted message delivered', async () => {
    const r = await start({ timeout_client: 30, timeout_session: 6 });
    const client = await SmtpTestClient.connect(r.port);
    const accepted: string[] = [];
    let cut: { code: number; text: string; inTransaction: boolean } | undefined;
    const started = Date.now();
    try {
      assert.equal((await client.read()).code, 220);
      assert.equal((await client.command('EHLO long.example')).code, 250);
      for (let i = 0; i < 30 && !cut; i++) {
        const id = `session-${process.pid}-${i}@test`;
        const mail = await client.command('MAIL FROM:<long@example.com>');
        if (mail.code !== 250) {
          cut = { code: mail.code, text: mail.lines.join(' '), inTransaction: false };
          break;
        }
        const rcpt = await client.command('RCPT TO:<long@example.org>');
        const data = rcpt.code === 250 ? await client.data(`Message-ID: <${id}>\r\nSubject: long\r\n\r\nbody\r\n`) : rcpt;
        if (data.code === 250) accepted.push(id);
        else cut = { code: data.code, text: data.lines.join(' '), inTransaction: true };
        await sleep(1_500);
      }
      const elapsed = Date.now() - started;
      assert.ok(cut, 'the session was never cut');
      assert.equal(cut.code, 421, cut.text);
      assert.match(cut.text, /^4\.4\.2 /);
      assert.equal(cut.inTransaction, false, `cut inside a transaction: ${cut.text}`);
      assert.ok(elapsed >= 5_000, `cut after ${elapsed} ms, before timeout_session`);
      assert.ok(accepted.length >= 1);
      assert.ok(await eventually(() => /client disconnected: Session too long/.test(r.output()), 10_000), 'the cut is logged');
      for (const id of accepted) {
        assert.ok(await eventually(() => inSink(sink)(id), 10_000), `${id} not delivered once`);
      }
      await bystander(r, sink);
    } finally {
      client.destroy();
    }
  });

  it('a real Postfix pipelining MAIL, 1,000 RCPT and DATA to the relay: all accepted, delivered once', async () => {
    const r = await start({});
    const postfix = await startPostfixInstance((dir) => [
      ...baseMainCf(dir, 'client.test'),
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      `relayhost = [127.0.0.1]:${r.port}`,
      'smtp_destination_recipient_limit = 1000',
    ]);
    const id = `thousand-${process.pid}@test`;
    try {
      const submit = await SmtpTestClient.connect(postfix.port);
      assert.equal((await submit.read()).code, 220);
      assert.equal((await submit.command('EHLO submit.example')).code, 250);
      // 1,000 RCPT lines of about 85 bytes: the pipelined group is over the relay's 64 KiB input bound
      const to = Array.from({ length: 1000 }, (_, i) => `r${String(i).padStart(4, '0')}-${'x'.repeat(56)}@example.org`);
      const { data } = await submit.send('many@example.com', to, `Message-ID: <${id}>\r\nSubject: 1000\r\n\r\nbody\r\n`);
      assert.equal(data?.code, 250, 'Postfix queued it');
      submit.end();
      const by = bystander(r, sink);
      const got = await eventually(() => sink.messages.some((m) => m.data.includes(id)), 120_000, 200);
      await by;
      assert.ok(got, `not delivered; postfix log:\n${postfix.log().slice(-3000)}`);
      const copies = sink.messages.filter((m) => m.data.includes(id));
      assert.equal(copies.length, 1, 'one transaction: Postfix sent the 1,000 recipients at once');
      assert.equal(copies[0].to.length, 1000);
      assert.doesNotMatch(postfix.log(), /status=deferred|status=bounced/);
    } finally {
      await postfix.stop();
    }
  });

  it('a client that speaks before its greeting, with a server slow to greet, costs its worker no CPU while it waits', async () => {
    // the server greets 3 s late (postscreen, a tarpit); Haraka polled such a client in a setImmediate loop
    const GREETING_DELAY_MS = 3_000;
    const slow = net.createServer((client) => {
      const up = net.connect(sink.port, '127.0.0.1');
      up.once('data', (first) => setTimeout(() => {
        if (client.destroyed) return;
        client.write(first);
        up.pipe(client);
      }, GREETING_DELAY_MS));
      client.pipe(up);
      for (const s of [client, up]) s.on('error', () => { client.destroy(); up.destroy(); });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const port = await freePort();
      const serverPort = (slow.address() as net.AddressInfo).port;
      relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort, clamdSocket: clamd.socket }))], port);
      const [worker] = childPids(relay.process.pid!);
      const before = cpuSeconds(worker);
      const client = await SmtpTestClient.connect(port);
      try {
        client.write('EHLO early.example\r\n');
        const greeting = await client.read(GREETING_DELAY_MS + 20_000);
        const spent = cpuSeconds(worker) - before;
        assert.equal(greeting.code, 220);
        // (Haraka answers the early EHLO after the greeting)
        assert.equal((await client.read()).code, 250);
        assert.ok(spent < 0.5, `the worker spent ${spent.toFixed(2)} s of CPU during a ${GREETING_DELAY_MS / 1000} s wait`);
      } finally {
        client.destroy();
      }
    } finally {
      slow.close();
    }
  });
});

/** A process's CPU time (user + system) so far, seconds (/proc/PID/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after "(comm)": state is field 3; utime and stime are fields 14 and 15
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
