// Issue 24, "Replies that are still Haraka's" and "Commands pipelined after the
// final dot": the replies Haraka's core gives of its own (before or without any
// hook of ours) are Postfix's, byte for byte, as a DIRECT session with the same
// real Postfix 3.7 gives them (cyrus SASL on, smtpd_helo_required = yes); what
// the server received through the relay is checked on a recording tap. And the
// SMTP smuggling variants pipelined around the final dot never make a second
// message or command at the server, while a client's legitimate pipelining
// after the dot (QUIT, or the next transaction) is answered as Postfix answers it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Clamd, startClamd } from '../support/clamd';
import { startPostfix } from '../support/postfix';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { Tap } from '../support/tap';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const OUTSIDE = '127.0.0.2';

/** A client that records every reply as the bytes it came in (multi-line replies whole). */
class RawClient {
  private readonly replies: string[] = [];
  private partial = '';
  private pending = '';
  private taken = 0;
  closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d) => {
      this.pending += d.toString('latin1');
      let nl: number;
      while ((nl = this.pending.indexOf('\n')) >= 0) {
        const line = this.pending.slice(0, nl + 1);
        this.pending = this.pending.slice(nl + 1);
        this.partial += line;
        if (line[3] !== '-') {
          this.replies.push(this.partial);
          this.partial = '';
        }
      }
    });
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', localAddress: OUTSIDE });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: string): void {
    this.socket.write(bytes, 'latin1');
  }

  /** The next `n` replies, raw; 'closed' for each that never came because the connection closed. */
  async next(n: number, ms = 30_000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (this.replies.length < this.taken + n && !this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const got = this.replies.slice(this.taken, this.taken + n);
    this.taken += got.length;
    while (got.length < n) got.push(this.closed ? 'closed' : 'no reply');
    return got;
  }

  /** Every reply not taken yet, once the connection closed (bounded). */
  async rest(ms = 30_000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const got = this.replies.slice(this.taken);
    this.taken = this.replies.length;
    return got;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A step: the bytes to send (CRLF added unless `raw`), how many replies to read, and whether to compare them. */
interface Step { send: string; replies?: number; raw?: boolean; compare?: boolean }

/** Postfix's queue ids differ from one session to the next. */
const sameIds = (reply: string): string => reply.replace(/queued as [0-9A-F]+/g, 'queued as ID');

const MESSAGE = 'From: a@example.com\r\nTo: user@example.org\r\nSubject: own replies\r\n\r\nhello\r\n.\r\n';

describe('Haraka\'s own replies are the server\'s; commands pipelined after the dot (issue 24)', function () {
  this.timeout(180_000);
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  let tap: Tap;
  let relay: Relay;
  let saslDir: string;
  const open: RawClient[] = [];

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
    // cyrus SASL (sasldb) for Postfix's AUTH: the empty 334 challenge is compared byte for byte
    saslDir = tempDir('esets-sasl-');
    fs.chmodSync(saslDir, 0o755);
    const db = path.join(saslDir, 'sasldb2');
    execFileSync('saslpasswd2', ['-p', '-f', db, '-c', '-u', 'mx.server.test', 'user'], { input: 'S3cret-pw\n' });
    fs.chmodSync(db, 0o644);
    fs.writeFileSync(
      path.join(saslDir, 'smtpd.conf'), `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: ${db}\n`,
    );
    postfix = await startPostfixServer({
      deliverTo: sink.port,
      main: {
        smtpd_helo_required: 'yes',
        smtpd_sasl_auth_enable: 'yes',
        smtpd_sasl_type: 'cyrus',
        smtpd_sasl_path: 'smtpd',
        cyrus_sasl_config_path: saslDir,
      },
    });
    tap = new Tap(postfix.port);
    await tap.start();
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: tap.port, clamdSocket: clamd.socket }))], port);
  });
  after(async () => {
    for (const c of open) c.destroy();
    await relay?.stop();
    await tap?.stop();
    await postfix?.stop();
    await sink?.stop();
    await clamd?.stop();
    if (saslDir) removeTempDir(saslDir);
  });

  beforeEach(() => {
    tap.reset();
    sink.messages.length = 0;
  });

  async function connect(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    open.push(client);
    return client;
  }

  /** Runs the steps after the greeting; the replies of each step, and whatever came after the last. */
  async function converse(port: number, steps: Step[]): Promise<{ all: string[][]; compared: string[][] }> {
    const client = await connect(port);
    await client.next(1);
    const all: string[][] = [];
    const compared: string[][] = [];
    for (const step of steps) {
      client.write(step.raw ? step.send : `${step.send}\r\n`);
      const replies = (await client.next(step.replies ?? 1)).map(sameIds);
      all.push(replies);
      if (step.compare !== false) compared.push(replies);
    }
    client.write('QUIT\r\n');
    await client.rest(10_000);
    client.destroy();
    await tap.idle();
    return { all, compared };
  }

  /** The same steps through the relay and directly with Postfix: the compared replies must be the same bytes. */
  async function asDirect(steps: Step[]): Promise<string[][]> {
    const viaRelay = await converse(relay.port, steps);
    // (the direct session does not pass the tap: tap.commands() stay the relay's)
    const direct = await converse(postfix.port, steps);
    assert.deepEqual(viaRelay.compared, direct.compared, 'through the relay (actual) and directly with Postfix (expected)');
    return viaRelay.all;
  }

  const EHLO: Step = { send: 'EHLO client.example', compare: false };
  const MAIL: Step = { send: 'MAIL FROM:<a@example.com>' };
  const RCPT: Step = { send: 'RCPT TO:<user@example.org>' };

  describe('replies Haraka gives before or without our hooks, as Postfix gives them', () => {
    it('DATA without RCPT: 554 5.5.1 Error: no valid recipients; the server never gets DATA', async () => {
      const replies = await asDirect([EHLO, MAIL, { send: 'DATA' }]);
      assert.deepEqual(replies[2], ['554 5.5.1 Error: no valid recipients\r\n']);
      assert.ok(!tap.commands().includes('DATA'), tap.commands().join(' / '));
    });

    it('DATA without MAIL, RCPT without MAIL: 503 5.5.1 Error: need RCPT command / need MAIL command', async () => {
      const replies = await asDirect([EHLO, { send: 'DATA' }, RCPT]);
      assert.deepEqual(replies.slice(1), [['503 5.5.1 Error: need RCPT command\r\n'], ['503 5.5.1 Error: need MAIL command\r\n']]);
      assert.ok(!tap.commands().some((c) => /^(DATA|RCPT)/.test(c)), tap.commands().join(' / '));
    });

    it('DATA when every recipient was refused, one by one and pipelined: 554 5.5.1 Error: no valid recipients', async () => {
      const refused: Step = { send: 'RCPT TO:<u@elsewhere.test>' };
      const replies = await asDirect([
        EHLO, MAIL, refused, { send: 'DATA' }, { send: 'RSET' },
        { send: 'MAIL FROM:<a@example.com>\r\nRCPT TO:<u@elsewhere.test>\r\nDATA', replies: 3 },
      ]);
      assert.deepEqual(replies[3], ['554 5.5.1 Error: no valid recipients\r\n']);
      assert.equal(replies[5][2], '554 5.5.1 Error: no valid recipients\r\n');
      assert.ok(!tap.commands().includes('DATA'), tap.commands().join(' / '));
    });

    it('ETRN and AUTH after RSET (and after a refused recipient) are answered as directly, not "transaction in progress"', async () => {
      const plain = Buffer.from('\0user\0S3cret-pw').toString('base64');
      const replies = await asDirect([
        EHLO, MAIL, RCPT, { send: 'RSET' }, { send: 'ETRN example.org' },
        MAIL, { send: 'RCPT TO:<u@elsewhere.test>' }, { send: 'RSET' }, { send: `AUTH PLAIN ${plain}` },
      ]);
      assert.match(replies[4][0], /^250 /, replies[4][0]);
      // (whatever this Postfix's SASL answers, as directly: never the 503 of a transaction left open at the server)
      assert.doesNotMatch(replies[8][0], /^503 /, replies[8][0]);
    });

    it('a quoted local part holding a space and `>` reaches the server as written', async () => {
      await asDirect([EHLO, MAIL, { send: 'RCPT TO:<"us er >"@example.org>' }]);
      assert.ok(tap.commands().includes('RCPT TO:<"us er >"@example.org>'), tap.commands().join(' / '));
    });

    it('an unknown verb and an empty line: 500 5.5.2 Error: command not recognized / bad syntax', async () => {
      const replies = await asDirect([EHLO, { send: 'FOO bar' }, { send: '' }]);
      assert.deepEqual(replies.slice(1), [['500 5.5.2 Error: command not recognized\r\n'], ['500 5.5.2 Error: bad syntax\r\n']]);
      assert.ok(!tap.commands().some((c) => /^FOO/.test(c)), tap.commands().join(' / '));
    });

    it('a second MAIL in a transaction: 503 5.5.1 Error: nested MAIL command, the first transaction stays and is delivered', async () => {
      const replies = await asDirect([
        EHLO, MAIL, { send: 'MAIL FROM:<b@example.com>' }, RCPT, { send: 'DATA' }, { send: MESSAGE, raw: true },
      ]);
      assert.deepEqual(replies[2], ['503 5.5.1 Error: nested MAIL command\r\n']);
      assert.match(replies[5][0], /^250 2\.0\.0 Ok: queued as ID\r\n$/);
      // the server saw one MAIL, and no RSET before DATA
      assert.deepEqual(tap.commands().filter((c) => /^(MAIL|RSET)/.test(c)), ['MAIL FROM:<a@example.com>']);
      await postfix.settle();
      assert.deepEqual(sink.messages.map((m) => m.from), ['a@example.com', 'a@example.com']);
    });

    it('MAIL before HELO/EHLO: 503 5.5.1 Error: send HELO/EHLO first (smtpd_helo_required = yes)', async () => {
      const replies = await asDirect([MAIL, RCPT]);
      assert.deepEqual(replies, [['503 5.5.1 Error: send HELO/EHLO first\r\n'], ['503 5.5.1 Error: need MAIL command\r\n']]);
      assert.ok(!tap.commands().some((c) => /^MAIL/.test(c)), tap.commands().join(' / '));
    });

    it('354 End data with <CR><LF>.<CR><LF>; RSET and NOOP 250 2.0.0 Ok', async () => {
      const replies = await asDirect([
        EHLO, MAIL, RCPT, { send: 'DATA' }, { send: MESSAGE, raw: true }, { send: 'RSET' }, { send: 'NOOP' },
      ]);
      assert.deepEqual(replies[3], ['354 End data with <CR><LF>.<CR><LF>\r\n']);
      assert.deepEqual(replies.slice(5), [['250 2.0.0 Ok\r\n'], ['250 2.0.0 Ok\r\n']]);
    });

    it('the 250 at end of data is the server\'s reply exactly (no transaction id after it)', async () => {
      const client = await connect(relay.port);
      await client.next(1);
      client.write('EHLO client.example\r\n');
      await client.next(1);
      client.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n');
      await client.next(3);
      client.write(MESSAGE);
      const [end] = await client.next(1);
      client.write('QUIT\r\n');
      await client.rest(10_000);
      await tap.idle();
      const fromServer = Buffer.concat(tap.sessions.flatMap((s) => s.received)).toString('latin1');
      const queued = /^250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n/m.exec(fromServer)?.[0];
      assert.ok(queued, `no 250 from the server:\n${fromServer}`);
      assert.equal(end, queued);
    });

    it('MAIL SIZE=10 and RCPT NOTIFY=NEVER after HELO are taken, and reach the server', async () => {
      const replies = await asDirect([
        { send: 'HELO client.example', compare: false }, { send: 'MAIL FROM:<a@example.com> SIZE=10' },
        { send: 'RCPT TO:<user@example.org> NOTIFY=NEVER' }, { send: 'RSET' },
      ]);
      assert.deepEqual(replies.slice(1, 3), [['250 2.1.0 Ok\r\n'], ['250 2.1.5 Ok\r\n']]);
      assert.ok(tap.commands().includes('MAIL FROM:<a@example.com> SIZE=10'), tap.commands().join(' / '));
      assert.ok(tap.commands().includes('RCPT TO:<user@example.org> NOTIFY=NEVER'), tap.commands().join(' / '));
    });

    it('white space inside the address brackets is read as Postfix reads it', async () => {
      const replies = await asDirect([
        EHLO, { send: 'MAIL FROM:< a@example.com >' }, { send: 'RCPT TO:<r@x >' }, { send: 'RCPT TO:<user@example.org >' },
      ]);
      assert.deepEqual(replies.slice(1), [['250 2.1.0 Ok\r\n'], ['554 5.7.1 <r@x>: Relay access denied\r\n'], ['250 2.1.5 Ok\r\n']]);
      assert.ok(tap.commands().includes('RCPT TO:<user@example.org>'), tap.commands().join(' / '));
    });

    it('HELO and EHLO without a name: 501 Syntax: HELO hostname / EHLO hostname', async () => {
      const replies = await asDirect([{ send: 'HELO' }, { send: 'EHLO' }]);
      assert.deepEqual(replies, [['501 Syntax: HELO hostname\r\n'], ['501 Syntax: EHLO hostname\r\n']]);
    });

    it('DATA and RSET with an argument: 501 5.5.4 Syntax; QUIT with text: 221', async () => {
      const client = await connect(relay.port);
      await client.next(1);
      const direct = await connect(postfix.port);
      await direct.next(1);
      const steps = ['EHLO client.example', 'MAIL FROM:<a@example.com>', 'RCPT TO:<user@example.org>', 'DATA x', 'RSET x', 'QUIT now'];
      const got: string[][] = [[], []];
      for (const line of steps) {
        for (const [i, c] of [client, direct].entries()) {
          c.write(`${line}\r\n`);
          got[i].push(...(await c.next(1)));
        }
      }
      assert.deepEqual(got[0].slice(3), got[1].slice(3));
      assert.deepEqual(got[0].slice(3), ['501 5.5.4 Syntax: DATA\r\n', '501 5.5.4 Syntax: RSET\r\n', '221 2.0.0 Bye\r\n']);
      await tap.idle();
    });

    it('the empty AUTH challenge is "334 " byte for byte, as Postfix (cyrus SASL) sends it', async () => {
      const replies = await asDirect([EHLO, { send: 'AUTH PLAIN' }, { send: '*' }]);
      assert.deepEqual(replies[1], ['334 \r\n']);
    });
  });

  describe('commands pipelined after the final dot', () => {
    const SMUGGLED = 'MAIL FROM:<ceo@example.org>\r\nRCPT TO:<finance@example.org>\r\nDATA\r\n'
      + 'From: ceo@example.org\r\nSubject: smuggled\r\n\r\nPay invoice 4711 today.\r\n';
    const HEAD = 'From: a@example.com\r\nTo: user@example.org\r\nSubject: first\r\n\r\nclean first part';
    const VARIANTS: [string, string][] = [
      ['<LF>.<LF>', '\n.\n'],
      ['<CRLF>.<LF>', '\r\n.\n'],
      ['<LF>.<CRLF>', '\n.\r\n'],
      ['<CR>.<CRLF>', '\r.\r\n'],
      ['<CRLF>.<CR><CRLF>', '\r\n.\r\r\n'],
      ['.<CRLF> after a bare LF line', '\r\n\n.\r\n'],
    ];

    /** MAIL, RCPT, DATA pipelined (as a PIPELINING client sends them), then `raw` in one write. */
    async function pipelined(raw: string): Promise<{ replies: string[]; afterDot: string[] }> {
      const client = await connect(relay.port);
      await client.next(1);
      client.write('EHLO client.example\r\n');
      await client.next(1);
      client.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n');
      const replies = await client.next(3);
      assert.deepEqual(replies.map((r) => r.slice(0, 3)), ['250', '250', '354'], replies.join(''));
      client.write(raw);
      const afterDot = await client.rest(20_000);
      await tap.idle();
      await postfix.settle();
      return { replies, afterDot };
    }

    for (const [name, sequence] of VARIANTS) {
      it(`${name}, a smuggled MAIL…DATA, the final dot and QUIT pipelined: no second message or command at the server`, async () => {
        const mark = postfix.mark();
        const { afterDot } = await pipelined(`${HEAD}${sequence}${SMUGGLED}.\r\nQUIT\r\n`);
        // refused: Haraka's 451 for a bare LF (and the connection closed), 550 5.6.0 for a bare CR; QUIT after that
        assert.ok(/^(451 |550 5\.6\.0)/.test(afterDot[0] ?? ''), afterDot.join(''));
        assert.ok(!afterDot.some((r) => /^250 2\.1\.0/.test(r)), `the smuggled MAIL was answered: ${afterDot.join('')}`);
        assert.ok(!tap.sent().includes('ceo@example.org'), 'the smuggled envelope reached the server');
        const atServer = tap.commands().filter((c) => /^(MAIL|DATA)/.test(c));
        assert.deepEqual(atServer, ['MAIL FROM:<a@example.com>'], tap.commands().join(' / '));
        assert.deepEqual(sink.messages, [], 'a message was delivered');
        assert.doesNotMatch(postfix.logSince(mark), /ceo@example\.org|: from=</, 'Postfix queued a message');
      });
    }

    it('a legitimate .<CRLF>QUIT<CRLF>: the server\'s 250 and 221, as Postfix answers it directly', async () => {
      const { afterDot } = await pipelined(`${HEAD}\r\n.\r\nQUIT\r\n`);
      const direct = await connect(postfix.port);
      await direct.next(1);
      direct.write('EHLO client.example\r\n');
      await direct.next(1);
      direct.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n');
      await direct.next(3);
      direct.write(`${HEAD}\r\n.\r\nQUIT\r\n`);
      const directAfter = await direct.rest(20_000);
      assert.deepEqual(afterDot.map(sameIds), directAfter.map(sameIds));
      assert.deepEqual(afterDot.map(sameIds), ['250 2.0.0 Ok: queued as ID\r\n', '221 2.0.0 Bye\r\n']);
      await postfix.settle();
      assert.equal(sink.messages.filter((m) => m.data.toString('latin1').includes('clean first part')).length, 2);
    });

    it('a real Postfix as the client pipelines QUIT after the final dot: the server\'s 250, no 503 after it', async () => {
      // a tap between the Postfix client and the relay records what each says
      const clientTap = new Tap(relay.port);
      await clientTap.start();
      const client = await startPostfix(clientTap.port);
      try {
        const submit = await SmtpTestClient.connect(client.port);
        await submit.read();
        await submit.command('EHLO submitter.example');
        const r = await submit.send('a@example.com', ['user@example.org'], 'Subject: through Postfix\r\n\r\nhello\r\n');
        submit.end();
        assert.equal(r.data?.code, 250);
        for (let i = 0; i < 300 && !sink.messages.some((m) => m.data.toString().includes('through Postfix')); i++) {
          await new Promise((res) => setTimeout(res, 100));
        }
        await clientTap.idle(20_000);
        const sent = clientTap.sent();
        const replies = Buffer.concat(clientTap.sessions.flatMap((x) => x.received)).toString('latin1');
        assert.match(sent, /\r\n\.\r\nQUIT\r\n$/, 'Postfix sent QUIT right after the dot');
        // Haraka writes its 503 in the same write as the 250; Postfix does not wait for the 221 (smtp_skip_quit_response)
        assert.match(replies, /^250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n(?:221 2\.0\.0 Bye\r\n)?$/m, replies);
        assert.doesNotMatch(replies, /^503/m, replies);
        assert.doesNotMatch(client.log(), /503|Bad sequence/, client.log());
      } finally {
        await client.stop();
        await clientTap.stop();
      }
    });

    it('a legitimate .<CRLF>MAIL…RCPT…DATA<CRLF>: both messages delivered, each once, as Postfix answers directly', async () => {
      const second = 'From: b@example.com\r\nTo: user@example.org\r\nSubject: second\r\n\r\nsecond part\r\n.\r\nQUIT\r\n';
      const run = async (port: number): Promise<string[]> => {
        const client = await connect(port);
        await client.next(1);
        client.write('EHLO client.example\r\n');
        await client.next(1);
        client.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n');
        await client.next(3);
        client.write(`${HEAD}\r\n.\r\nMAIL FROM:<b@example.com>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n`);
        const first = await client.next(4);
        client.write(second);
        return [...first, ...(await client.rest(20_000))].map(sameIds);
      };
      const viaRelay = await run(relay.port);
      await tap.idle();
      const relayed = tap.commands().filter((c) => /^(MAIL|DATA)/.test(c));
      const direct = await run(postfix.port);
      assert.deepEqual(viaRelay, direct);
      assert.deepEqual(viaRelay.map((r) => r.slice(0, 3)), ['250', '250', '250', '354', '250', '221']);
      assert.deepEqual(relayed, ['MAIL FROM:<a@example.com>', 'DATA', 'MAIL FROM:<b@example.com>', 'DATA']);
      await postfix.settle();
      const bodies = sink.messages.map((m) => m.data.toString('latin1'));
      assert.equal(bodies.filter((b) => b.includes('clean first part')).length, 2, 'the first message, relayed and direct');
      assert.equal(bodies.filter((b) => b.includes('second part')).length, 2, 'the second message, relayed and direct');
    });
  });
});
