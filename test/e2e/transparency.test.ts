// Issue 11 ("the relay is invisible"), its "Must show" list end to end: the
// launcher with a real clamd, in front of (1) a scripted server that records
// every byte it receives and answers as each test sets it (scripted_server.ts),
// (2) a real Postfix 3.7 as the mail server (XCLIENT authorized for the relay,
// a recording tap in front of it, delivering to a sink), and (3) a real
// Postfix as the client, for DSN.
//
// The transparency contract (DESIGN.md): what the client sees is the
// server's: the greeting that follows XCLIENT, the EHLO reply (first line and
// extensions in order) minus STARTTLS, CHUNKING, BINARYMIME, XCLIENT and
// XFORWARD (never advertised, always refused) and minus what the server lacks,
// AUTH exchanges (never logged), VRFY/EXPN/HELP/NOOP/ETRN, and the exact reply
// to MAIL, RCPT, DATA and end of data (code, enhanced code, every line). What
// the server sees is the client: its HELO name, its MAIL/RCPT parameters, its
// message byte for byte (minus the client's X-Virus-Scanner:/X-Spam-*, plus
// ours). The relay's own replies: the policy's, and 421 4.4.x when the server
// cannot be reached at connect.
//
// The relay in front of the scripted server logs at Haraka's most verbose
// level (protocol): AUTH lines must not reach its log at any level. The last
// section runs the same exchanges against the scripted server directly (no
// relay), so that a failure above is the relay's and not the test's.

import assert from 'node:assert/strict';
import { eventually } from '../support/processes';
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_CONFIG } from '../../src/lib/esets_options';
import { advertisedSize, SIZE_ROOM_BYTES, sizeLimit, withSizeLine } from '../../src/lib/message_size';
import { SmtpReply, SmtpReplyReader } from '../../src/lib/smtp_reply';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { startPostfix } from '../support/postfix';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { EHLO_POSTFIX_LIKE, reply, ScriptedServer, ScriptedSession } from '../support/scripted_server';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { Tap } from '../support/tap';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const OUTSIDE = '127.0.0.2';
const HIDDEN = ['STARTTLS', 'CHUNKING', 'BINARYMIME', 'XCLIENT', 'XFORWARD'];
const isHidden = (line: string): boolean => HIDDEN.includes(line.split(/\s+/)[0].toUpperCase());
/** The server's EHLO lines as the relay passes them on: SIZE less the room for its own fields (docs/transparency.md). */
function asRelayed(lines: string[]): string[] {
  return withSizeLine(lines, sizeLimit(advertisedSize(lines), DEFAULT_CONFIG.message_size_limit));
}
const USER = 'relay-user@example.org';
const PASSWORD = 'S3cret-Pa55word';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const PLAIN = b64(`\0${USER}\0${PASSWORD}`);
const PLAIN_WRONG = b64(`\0${USER}\0not-the-password`);
/** the text of a reply as the server wrote it: its lines, without codes */
const linesOf = (raw: string): string[] => raw.split('\r\n').filter(Boolean).map((l) => l.slice(4));
const codeOf = (raw: string): number => Number(raw.slice(0, 3));

type Reply = SmtpReply | 'closed';
const show = (r: Reply | undefined): string => (
  r === undefined ? 'none' : r === 'closed' ? 'connection closed' : `${r.code} ${r.lines.join(' | ')}`
);

async function readOrClosed(client: SmtpTestClient, timeoutMs = 15_000): Promise<Reply> {
  try {
    return await client.read(timeoutMs);
  } catch (err) {
    if (/closed/.test((err as Error).message)) return 'closed';
    throw err;
  }
}

/** Asserts that `got` is exactly the server's reply `raw` (code and every line). */
function assertExact(got: Reply, raw: string, what: string): void {
  const want = { code: codeOf(raw), lines: linesOf(raw) };
  assert.ok(got !== 'closed', `${what}: the connection was closed instead of ${want.code} ${want.lines.join(' | ')}`);
  assert.deepEqual(
    { code: got.code, lines: got.lines }, want,
    `${what}: the client got ${show(got)}, the server said ${want.code} ${want.lines.join(' | ')}`,
  );
}

/** The replies the server sent, in order, in the relay's session for OUTSIDE (the one whose XCLIENT names it) */
function serverReplies(tap: Tap): SmtpReply[] {
  const session = tap.sessions.find((s) => /^XCLIENT .*\bADDR=127\.0\.0\.2\b/m.test(Buffer.concat(s.sent).toString('latin1')));
  return new SmtpReplyReader().push(Buffer.concat(session?.received ?? []).toString('latin1'));
}

/** config/ with Haraka's log at its most verbose level (every command line is logged unless the relay keeps it out) */
function verboseHarakaConfig(): string {
  const dir = tempDir('esets-haraka-verbose-');
  fs.cpSync(path.join(PROJECT_DIR, 'config'), dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'log.ini'), '[main]\nlevel=protocol\ntimestamps=true\nformat=default\n');
  return dir;
}

/** A message's header section lines (up to the empty line) and the rest. */
function splitMessage(text: string): { header: string[]; body: string } {
  const at = text.indexOf('\r\n\r\n');
  return { header: text.slice(0, at).split('\r\n'), body: text.slice(at + 4) };
}

/** Header lines without the fields (with their continuation lines) whose name matches `name`. */
function withoutFields(header: string[], name: RegExp): string[] {
  const out: string[] = [];
  let dropping = false;
  for (const line of header) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) out.push(line);
      continue;
    }
    dropping = name.test(line.slice(0, line.indexOf(':') + 1));
    if (!dropping) out.push(line);
  }
  return out;
}

const CLIENT_SCANNER_FIELDS = /^(X-Virus-Scanner|X-Spam-[\w-]*):$/i;
const LONG_HEADER = `X-Long-Header: ${'h'.repeat(998 - 'X-Long-Header: '.length)}`;
const LONG_BODY = `${'b'.repeat(997)}.`;
/** A signed-looking message as a client sends it (dot-stuffed already: one body line starts with a dot) */
const MESSAGE_HEADER = [
  'Received: from origin.example (origin.example [192.0.2.1])',
  '\tby mx.example.com with ESMTP id 4ABCDEF; Wed, 25 Nov 2026 10:00:00 +0000',
  'Authentication-Results: mx.example.com;',
  '\tdkim=pass header.d=example.com header.s=s1;',
  '\tspf=pass smtp.mailfrom=example.com',
  'DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; d=example.com; s=s1;',
  '\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;',
  `\tb=${'Q'.repeat(70)}`,
  'X-Virus-Scanner: forged by the client; clean',
  'From: Alice <a@example.com>',
  'To: user@example.org',
  'X-Spam-Status: No, score=-100 (forged by the client)',
  'Subject: byte for byte',
  'X-Spam-Flag: NO',
  'Date: Wed, 25 Nov 2026 10:00:00 +0000',
  'Message-ID: <transparency-1@example.com>',
  LONG_HEADER,
  'x-spam-level: ****',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=us-ascii',
];
const MESSAGE_BODY = [
  'First line.', LONG_BODY, '..a line that starts with a dot (stuffed)', 'Trailing spaces   ', '', 'Last line.', '',
].join('\r\n');
const MESSAGE = `${MESSAGE_HEADER.join('\r\n')}\r\n\r\n${MESSAGE_BODY}`;

describe('transparency (issue 11): the client sees the server, the server sees the client', function () {
  this.timeout(30_000);
  let clamd: Clamd;
  let scripted: ScriptedServer;
  let relay: Relay;
  let sink: Sink;
  let postfix: PostfixServer;
  let tap: Tap;
  let pfRelay: Relay;
  let logMark = 0;
  let verboseConfig = '';
  const extra: { stop(): Promise<unknown> }[] = [];

  async function relayTo(serverPort: number, args: string[] = []): Promise<Relay> {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort, clamdSocket: clamd.socket }));
    return startRelay(['--config', cfg, ...args], port);
  }

  before(async function () {
    this.timeout(90_000);
    scripted = new ScriptedServer();
    sink = new Sink();
    await Promise.all([scripted.start(), sink.start()]);
    [clamd, postfix] = await Promise.all([
      startClamd(),
      startPostfixServer({ deliverTo: sink.port, heloAccess: ['/./ INFO helo seen'] }),
    ]);
    tap = new Tap(postfix.port);
    await tap.start();
    verboseConfig = verboseHarakaConfig();
    [relay, pfRelay] = await Promise.all([relayTo(scripted.port, ['--haraka-config', verboseConfig]), relayTo(tap.port)]);
  });

  after(async () => {
    for (const x of extra.reverse()) await x.stop().catch(() => undefined);
    await relay?.stop();
    await pfRelay?.stop();
    await tap?.stop();
    await postfix?.stop();
    await scripted?.stop();
    await sink?.stop();
    await clamd?.stop();
    if (verboseConfig) removeTempDir(verboseConfig);
  });

  const clients: SmtpTestClient[] = [];
  beforeEach(async () => {
    scripted.options = {};
    await scripted.up();
    scripted.reset();
    sink.messages.length = 0;
    tap.reset();
    logMark = postfix.mark();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) if (!c.closed) c.destroy();
    await scripted.idle().catch(() => undefined);
    await tap.idle().catch(() => undefined);
  });

  async function connect(port = relay.port, from = OUTSIDE): Promise<{ client: SmtpTestClient; greeting: Reply }> {
    const client = await SmtpTestClient.connect(port, from);
    clients.push(client);
    return { client, greeting: await readOrClosed(client) };
  }

  /** A client past the greeting and its EHLO (both asserted 2xx) */
  async function session(port = relay.port, helo = 'client.example'): Promise<SmtpTestClient> {
    const { client, greeting } = await connect(port);
    assert.ok(greeting !== 'closed' && greeting.code === 220, `greeting: ${show(greeting)}`);
    const ehlo = await client.command(`EHLO ${helo}`);
    assert.equal(ehlo.code, 250, `EHLO: ${show(ehlo)}`);
    return client;
  }

  /** Ends the client's session and waits (bounded) until the relay has left the scripted server. */
  async function settle(client: SmtpTestClient): Promise<void> {
    if (!client.closed) client.end();
    await scripted.idle();
  }

  /** The scripted server's sessions for the test's client (the relay's XCLIENT names it); at least one. */
  function ours(): ScriptedSession[] {
    const found = scripted.sessions.filter((s) => s.commands.some((c) => /^XCLIENT .*\bADDR=127\.0\.0\.2\b/i.test(c)));
    assert.ok(
      found.length, `no session with the scripted server names the client (XCLIENT ADDR=${OUTSIDE}): ${scripted.commands().join(' / ')}`,
    );
    return found;
  }

  /** The scripted server's commands after the relay's own EHLO and XCLIENT (the client's part of the session). */
  function clientCommands(): string[] {
    return ours().flatMap((s) => s.commands.slice(s.commands.findIndex((c) => /^XCLIENT /i.test(c)) + 1));
  }

  /** The messages the scripted server received for the test's client, as on the wire */
  const received = (): Buffer[] => ours().flatMap((s) => s.messages);
  const receivedText = (): string => Buffer.concat(ours().flatMap((s) => s.received)).toString('latin1');

  /** MAIL, RCPT, DATA and the message (each asserted as far as DATA's 354); the reply to the end of data. */
  async function transaction(client: SmtpTestClient, message: string, from = 'a@example.com', rcpt = 'user@example.org'): Promise<Reply> {
    const mail = await client.command(`MAIL FROM:<${from}>`);
    assert.equal(mail.code, 250, `MAIL: ${show(mail)}`);
    const r = await client.command(`RCPT TO:<${rcpt}>`);
    assert.equal(r.code, 250, `RCPT: ${show(r)}`);
    const go = await client.command('DATA');
    assert.equal(go.code, 354, `DATA: ${show(go)}`);
    client.write(`${message}${message.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    return readOrClosed(client);
  }

  // ---------------------------------------------------------------------------------------------
  describe('connect: the greeting is the server\'s, after XCLIENT', () => {
    it('the relay EHLOs as itself, sends XCLIENT, and the client gets the greeting that follows XCLIENT, exactly', async () => {
      const after = reply(220, 'mx.scripted.test ESMTP Scripted 1.0 (after XCLIENT) ready');
      scripted.options = { greeting: reply(220, 'mx.scripted.test ESMTP before XCLIENT'), xclient: after };
      const { client, greeting } = await connect();
      await settle(client);
      assertExact(greeting, after, 'greeting');
      const { commands } = ours()[0];
      assert.match(commands[0] ?? '', /^EHLO \S+$/i, `the relay's first command: ${commands.join(' / ')}`);
      assert.notEqual(commands[0], 'EHLO client.example');
      assert.match(commands[1] ?? '', /^XCLIENT .*\bADDR=127\.0\.0\.2\b/i, `the relay's second command: ${commands.join(' / ')}`);
    });

    it('a multi-line greeting after XCLIENT keeps all its lines', async () => {
      const after = reply(220, 'mx.scripted.test ESMTP first line', 'second line of the greeting', 'third line');
      scripted.options = { xclient: after };
      const { client, greeting } = await connect();
      await settle(client);
      assertExact(greeting, after, 'greeting');
    });

    it('a server that refuses the client at connect (554 after XCLIENT): the client gets that 554', async () => {
      const refusal = reply(554, '5.7.1 <unknown[127.0.0.2]>: Client host rejected: scripted says no');
      scripted.options = { xclient: refusal };
      const { client, greeting } = await connect();
      await settle(client);
      assertExact(greeting, refusal, 'greeting');
      assert.ok(!clientCommands().some((c) => /^(MAIL|RCPT|DATA)\b/i.test(c)), clientCommands().join(' / '));
    });

    it("after the server's 554 greeting the session stays until QUIT: 5xx to other commands, then 221", async () => {
      scripted.options = { xclient: reply(554, '5.7.1 <unknown[127.0.0.2]>: Client host rejected: scripted says no') };
      const { client, greeting } = await connect();
      assert.ok(greeting !== 'closed' && greeting.code === 554, `greeting: ${show(greeting)}`);
      const ehlo = await client.command('EHLO client.example');
      const quit = await client.command('QUIT');
      await settle(client);
      // (Haraka repeats the refusal where RFC 5321 3.1 suggests 503: both are permanent refusals)
      assert.ok(ehlo.code === 503 || ehlo.code === 554, `EHLO: ${show(ehlo)}`);
      assert.equal(quit.code, 221, `QUIT: ${show(quit)}`);
    });

    it("a server that refuses the relay's own EHLO name: 421 4.3.0 (the operator's to fix), and the log names helo_name", async () => {
      scripted.options = {
        ehloReply: (_line, s) => (s.commands.some((c) => /^XCLIENT /i.test(c))
          ? reply(250, ...EHLO_POSTFIX_LIKE) : reply(504, '5.5.2 <vm>: Helo command rejected: need fully-qualified hostname')),
      };
      const mark = relay.output().length;
      const { client, greeting } = await connect();
      if (!client.closed) client.end();
      assert.ok(greeting !== 'closed' && greeting.code === 421 && /^4\.3\.0\b/.test(greeting.lines[0]), `greeting: ${show(greeting)}`);
      assert.ok(await eventually(() => /set helo_name in \[smtp\]/.test(relay.output().slice(mark))), 'no error log naming helo_name');
    });

    it("helo_name sets the relay's own EHLO name", async () => {
      const port = await freePort();
      const cfg = writeEsetsCfg(esetsCfg(port, {
        serverPort: scripted.port, clamdSocket: clamd.socket, smtp: { helo_name: '"relay.example.net"' },
      }));
      const named = await startRelay(['--config', cfg], port);
      extra.push(named);
      scripted.reset();
      const { client, greeting } = await connect(named.port);
      assert.ok(greeting !== 'closed' && greeting.code === 220, `greeting: ${show(greeting)}`);
      const quit = await client.command('QUIT');
      assertExact(quit, reply(221, '2.0.0 Bye'), "QUIT: the server's goodbye");
      await settle(client);
      const first = scripted.sessions.find((sess) => sess.commands.some((c) => /^XCLIENT .*ADDR=127\.0\.0\.2\b/.test(c)));
      assert.equal(first?.commands[0], 'EHLO relay.example.net');
    });

    it('the server down at connect: 421 4.4.1 at once', async () => {
      await scripted.down();
      const started = Date.now();
      const { client, greeting } = await connect();
      const took = Date.now() - started;
      if (!client.closed) client.end();
      await scripted.up();
      assert.ok(greeting !== 'closed' && greeting.code === 421 && /^4\.4\.1\b/.test(greeting.lines[0]), `greeting: ${show(greeting)}`);
      assert.ok(took < 2_000, `the 421 took ${took} ms`);
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('EHLO/HELO: the client\'s name to the server, the server\'s reply to the client', () => {
    it('EHLO: the server gets the client\'s name; the client gets its first line and extensions in order, '
      + 'minus the hidden ones', async () => {
      const { client } = await connect();
      const ehlo = await client.command('EHLO client.example');
      await settle(client);
      assert.equal(clientCommands()[0], 'EHLO client.example', `the server got: ${clientCommands().join(' / ')}`);
      assert.equal(ehlo.code, 250);
      assert.deepEqual(ehlo.lines, asRelayed(EHLO_POSTFIX_LIKE.filter((l) => !isHidden(l))));
    });

    it('SIZE is advertised with the server\'s value less the room for the relay\'s own fields', async () => {
      scripted.options = { ehlo: [...EHLO_POSTFIX_LIKE.map((l) => (l.startsWith('SIZE') ? 'SIZE 31457280' : l))] };
      const { client } = await connect();
      const ehlo = await client.command('EHLO client.example');
      await settle(client);
      assert.deepEqual(ehlo.lines.filter((l) => /^SIZE\b/i.test(l)), [`SIZE ${31457280 - SIZE_ROOM_BYTES}`], ehlo.lines.join(' | '));
    });

    it('a server without 8BITMIME, SMTPUTF8, DSN and SIZE: the client sees none of them', async () => {
      const lacking = [
        'mx.scripted.test at your service', 'PIPELINING', 'ENHANCEDSTATUSCODES', 'XCLIENT NAME ADDR PROTO HELO REVERSE_NAME',
      ];
      scripted.options = { ehlo: lacking };
      const { client } = await connect();
      const ehlo = await client.command('EHLO client.example');
      await settle(client);
      const shown = ehlo.lines.slice(1).filter((l) => /^(8BITMIME|SMTPUTF8|DSN|SIZE)\b/i.test(l));
      assert.deepEqual(shown, [], `advertised what the server lacks: ${ehlo.lines.join(' | ')}`);
      assert.deepEqual(ehlo.lines, lacking.filter((l) => !isHidden(l)));
    });

    it('HELO: the server gets the client\'s name; the client gets the server\'s reply', async () => {
      const answer = reply(250, 'mx.scripted.test says hello to a HELO');
      scripted.options = { helo: answer };
      const { client } = await connect();
      const helo = await client.command('HELO old-client.example');
      await settle(client);
      assert.equal(clientCommands()[0], 'HELO old-client.example', `the server got: ${clientCommands().join(' / ')}`);
      assertExact(helo, answer, 'HELO');
    });

    const hiddenCases: [string, string, RegExp][] = [
      ['STARTTLS', 'STARTTLS', /^STARTTLS/i],
      ['CHUNKING', 'BDAT 12 LAST', /^BDAT/i],
      ['BINARYMIME', 'MAIL FROM:<a@example.com> BODY=BINARYMIME', /BINARYMIME/i],
      ['XCLIENT', 'XCLIENT ADDR=10.9.8.7 NAME=trusted.example', /ADDR=10\.9\.8\.7/i],
      ['XFORWARD', 'XFORWARD ADDR=10.9.8.7 NAME=trusted.example', /^XFORWARD/i],
    ];
    for (const [extension, command, atServer] of hiddenCases) {
      it(`${extension}: offered by the server, never advertised; `
        + `\`${command.split(' ')[0]}\` refused with 5xx and not passed on`, async () => {
        const client = await session();
        const ehlo = await client.command('EHLO client.example');
        const refused = await readAfter(client, command);
        await settle(client);
        assert.ok(!ehlo.lines.slice(1).some((l) => l.split(/\s+/)[0].toUpperCase() === extension), `${extension} advertised: ${ehlo.lines.join(' | ')}`);
        assert.ok(refused !== 'closed' && refused.code >= 500 && refused.code < 600, `${command}: ${show(refused)}`);
        assert.ok(!clientCommands().some((c) => atServer.test(c)), `reached the server: ${clientCommands().join(' / ')}`);
      });
    }
  });

  async function readAfter(client: SmtpTestClient, line: string): Promise<Reply> {
    client.write(`${line}\r\n`);
    return readOrClosed(client);
  }

  // ---------------------------------------------------------------------------------------------
  describe('AUTH: relayed to the server, its replies exact, never logged', () => {
    const SUCCESS = reply(235, '2.7.0 Authentication successful');
    const FAILURE = reply(535, '5.7.8 Error: authentication failed: scripted says no');
    const secrets = [PLAIN, PLAIN_WRONG, b64(USER), b64(PASSWORD), b64('wrong'), PASSWORD];
    let outMark = 0;
    let connections = 0;
    beforeEach(() => {
      scripted.options = { auth: { user: USER, password: PASSWORD }, authFailure: FAILURE };
      outMark = relay.output().length;
      connections = 0;
    });

    async function authSession(): Promise<SmtpTestClient> {
      connections++;
      return session();
    }

    /**
     * After the sessions: the relay's log of them (waited for up to Haraka's disconnect line of
     * each) holds no AUTH command line and no credential, at Haraka's most verbose level.
     */
    async function assertNotLogged(): Promise<void> {
      const since = (): string => relay.output().slice(outMark);
      const ended = await eventually(() => (since().match(/\bdisconnect ip=127\.0\.0\.2\b/g) ?? []).length >= connections);
      const log = since();
      assert.ok(ended, `the relay did not log the end of ${connections} session(s):\n${log.slice(-3000)}`);
      for (const secret of secrets) {
        const line = log.split('\n').find((l) => l.includes(secret));
        assert.equal(line, undefined, `a credential (${secret}) is in the relay's log (Haraka log level protocol): ${line}`);
      }
      // the client's AUTH commands appear masked at most (the server's EHLO line "AUTH PLAIN LOGIN" is no secret)
      const authLine = log.split('\n').find((l) => /\bC: AUTH (PLAIN|LOGIN) (?!\*\*\*\*$)\S/i.test(l.replace(/ state=\d+$/, '')));
      assert.equal(authLine, undefined, `an AUTH command line is in the relay's log (Haraka log level protocol): ${authLine}`);
    }

    /** AUTH LOGIN's three steps; each reply (a refusal stops it) */
    async function authLogin(client: SmtpTestClient, password: string): Promise<SmtpReply[]> {
      const replies = [await client.command('AUTH LOGIN')];
      if (replies[0].code === 334) replies.push(await client.command(b64(USER)));
      if (replies[1]?.code === 334) replies.push(await client.command(b64(password)));
      return replies;
    }

    it('EHLO offers the server\'s AUTH mechanisms', async () => {
      const { client } = await connect();
      const ehlo = await client.command('EHLO client.example');
      await settle(client);
      assert.ok(ehlo.lines.includes('AUTH PLAIN LOGIN') && ehlo.lines.includes('AUTH=PLAIN LOGIN'), ehlo.lines.join(' | '));
    });

    it('AUTH PLAIN with an initial response: the server checks it, its 235 reaches the client exactly', async () => {
      const client = await authSession();
      const r = await client.command(`AUTH PLAIN ${PLAIN}`);
      await settle(client);
      assertExact(r, SUCCESS, 'AUTH PLAIN');
      assert.ok(clientCommands().includes(`AUTH PLAIN ${PLAIN}`), `the server got: ${clientCommands().join(' / ')}`);
      await assertNotLogged();
    });

    it('AUTH PLAIN without an initial response: the server\'s 334, the credentials, its 235', async () => {
      const client = await authSession();
      const challenge = await client.command('AUTH PLAIN');
      const r = challenge.code === 334 ? await client.command(PLAIN) : challenge;
      await settle(client);
      // an empty challenge: Haraka always writes "334 " plus one space for it (connection.respond), which
      // clients read as the same empty base64 text
      assert.ok(challenge.code === 334 && challenge.lines.every((l) => l.trim() === ''), `AUTH PLAIN: ${show(challenge)}`);
      assertExact(r, SUCCESS, 'AUTH PLAIN credentials');
      const commands = clientCommands();
      const at = commands.indexOf('AUTH PLAIN');
      assert.ok(at >= 0 && commands[at + 1] === PLAIN, `the server got: ${commands.join(' / ')}`);
      await assertNotLogged();
    });

    it('AUTH LOGIN, step by step: the server\'s two 334 challenges, then its 235', async () => {
      const client = await authSession();
      const [user, password, r] = await authLogin(client, PASSWORD);
      await settle(client);
      assertExact(user, reply(334, 'VXNlcm5hbWU6'), 'AUTH LOGIN');
      assertExact(password, reply(334, 'UGFzc3dvcmQ6'), 'AUTH LOGIN user name');
      assertExact(r, SUCCESS, 'AUTH LOGIN password');
      const commands = clientCommands();
      const at = commands.indexOf('AUTH LOGIN');
      assert.deepEqual(commands.slice(at, at + 3), ['AUTH LOGIN', b64(USER), b64(PASSWORD)], `the server got: ${commands.join(' / ')}`);
      await assertNotLogged();
    });

    it('AUTH PLAIN with a wrong password: the server\'s 535 reaches the client exactly', async () => {
      const client = await authSession();
      const r = await client.command(`AUTH PLAIN ${PLAIN_WRONG}`);
      await settle(client);
      assertExact(r, FAILURE, 'AUTH PLAIN (wrong password)');
      assert.ok(clientCommands().includes(`AUTH PLAIN ${PLAIN_WRONG}`), `the server got: ${clientCommands().join(' / ')}`);
      await assertNotLogged();
    });

    it('AUTH LOGIN with a wrong password: the server\'s 535 reaches the client exactly', async () => {
      const client = await authSession();
      const [user, password, r] = await authLogin(client, 'wrong');
      await settle(client);
      assertExact(user, reply(334, 'VXNlcm5hbWU6'), 'AUTH LOGIN');
      assertExact(password, reply(334, 'UGFzc3dvcmQ6'), 'AUTH LOGIN user name');
      assertExact(r, FAILURE, 'AUTH LOGIN (wrong password)');
      await assertNotLogged();
    });

    it('another verb in the middle of an AUTH exchange ends it: a later XCLIENT is refused by the relay, '
      + 'never sent to the server', async () => {
      const client = await authSession();
      const challenge = await client.command('AUTH LOGIN');
      assert.equal(challenge.code, 334);
      // Haraka handles VRFY itself and the relay passes it on: the server takes it as the AUTH answer
      await client.command('VRFY root');
      const xclient = await client.command('XCLIENT ADDR=127.0.0.1');
      await settle(client);
      assert.ok(xclient.code >= 500, `XCLIENT: ${show(xclient)}`);
      assert.ok(!clientCommands().some((c) => /^XCLIENT ADDR=127\.0\.0\.1/i.test(c)), `the server got: ${clientCommands().join(' / ')}`);
      await assertNotLogged();
    });

    it('pipelined AUTH lines are masked in Haraka\'s debug log too', async () => {
      const client = await authSession();
      client.write(`NOOP\r\nAUTH PLAIN ${PLAIN}\r\n`);
      await client.read();
      await client.read();
      await settle(client);
      await assertNotLogged();
    });

    it('whatever the replies, no AUTH line and no credential reaches the relay\'s log (Haraka at log level protocol)', async () => {
      for (const exchange of [
        [`AUTH PLAIN ${PLAIN}`], ['AUTH PLAIN', PLAIN], [`AUTH PLAIN ${PLAIN_WRONG}`],
        ['AUTH LOGIN', b64(USER), b64(PASSWORD)], ['AUTH LOGIN', b64(USER), b64('wrong')],
      ]) {
        const client = await authSession();
        for (const line of exchange) await readAfter(client, line);
        await settle(client);
      }
      await assertNotLogged();
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('VRFY, EXPN, HELP, NOOP, ETRN: the server answers', () => {
    const cases: [string, 'vrfy' | 'expn' | 'help' | 'noop' | 'etrn', string][] = [
      ['VRFY user@example.org', 'vrfy', reply(250, '2.1.5 Some User <user@example.org> (scripted)')],
      ['EXPN staff', 'expn', reply(
        250, '2.1.5 Alice <alice@example.org>', '2.1.5 Bob <bob@example.org>', '2.1.5 Carol <carol@example.org>',
      )],
      ['HELP', 'help', reply(
        214, '2.0.0 Scripted server, commands:', '2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY', '2.0.0 End of HELP info',
      )],
      ['NOOP', 'noop', reply(250, '2.0.0 Scripted NOOP ok')],
      ['ETRN example.org', 'etrn', reply(250, '2.0.0 Queuing started for example.org (scripted)')],
    ];
    for (const [command, key, answer] of cases) {
      it(`${command.split(' ')[0]}: the command reaches the server, its reply the client exactly`, async () => {
        scripted.options = { [key]: answer };
        const client = await session();
        const r = await readAfter(client, command);
        await settle(client);
        assertExact(r, answer, command);
        assert.ok(clientCommands().includes(command), `the server got: ${clientCommands().join(' / ')}`);
      });
    }
  });

  // ---------------------------------------------------------------------------------------------
  describe('DSN: advertised when the server offers it, its parameters delivered', () => {
    it('a raw client: DSN advertised; RET, ENVID, NOTIFY and ORCPT reach the server as sent', async () => {
      const client = await session();
      const ehlo = await client.command('EHLO client.example');
      assert.ok(ehlo.lines.includes('DSN'), `DSN not advertised: ${ehlo.lines.join(' | ')}`);
      const mail = await client.command('MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ314159+2Bx');
      const rcpt = await client.command('RCPT TO:<user+dsn@example.org> NOTIFY=SUCCESS,DELAY,FAILURE ORCPT=rfc822;user+2Bdsn@example.org');
      const data = rcpt.code === 250 ? await client.data('Subject: dsn\r\n\r\nhello\r\n') : undefined;
      await settle(client);
      assert.equal(mail.code, 250, `MAIL: ${show(mail)}`);
      assert.equal(rcpt.code, 250, `RCPT: ${show(rcpt)}`);
      assert.equal(data?.code, 250, `DATA: ${show(data)}`);
      const atServer = clientCommands();
      const m = atServer.find((c) => /^MAIL FROM:/i.test(c)) ?? '';
      const r = atServer.find((c) => /^RCPT TO:/i.test(c)) ?? '';
      for (const p of ['RET=HDRS', 'ENVID=QQ314159+2Bx']) assert.ok(m.split(' ').includes(p), `MAIL at the server: ${m} (no ${p})`);
      for (const p of ['NOTIFY=SUCCESS,DELAY,FAILURE', 'ORCPT=rfc822;user+2Bdsn@example.org']) {
        assert.ok(r.split(' ').includes(p), `RCPT at the server: ${r} (no ${p})`);
      }
    });

    it('a real Postfix as the client: it sees DSN and passes NOTIFY, ORCPT, RET and ENVID through the relay to the server', async () => {
      const postfixClient = await startPostfix(relay.port);
      let mail = '';
      let rcpt = '';
      try {
        const submit = await SmtpTestClient.connect(postfixClient.port);
        clients.push(submit);
        assert.equal((await submit.read()).code, 220);
        assert.equal((await submit.command('EHLO submitter.example')).code, 250);
        assert.equal((await submit.command('MAIL FROM:<sender@example.com> RET=HDRS ENVID=PF-ENV-42')).code, 250);
        assert.equal(
          (await submit.command('RCPT TO:<user@example.org> NOTIFY=SUCCESS,DELAY,FAILURE ORCPT=rfc822;user@example.org')).code, 250,
        );
        assert.equal(
          (await submit.data('From: sender@example.com\r\nTo: user@example.org\r\nSubject: dsn through Postfix\r\n\r\nhello\r\n')).code,
          250,
        );
        submit.end();
        // the message Postfix relayed (with or without the parameters), bounded
        const relayed = (): ScriptedSession | undefined => scripted.sessions.find((s) => s.messages.length > 0 && s.commands.some((c) => /^MAIL FROM:<sender@example\.com>/i.test(c)));
        await scripted.until(() => relayed() !== undefined);
        mail = relayed()!.commands.find((c) => /^MAIL FROM:/i.test(c)) ?? '';
        rcpt = relayed()!.commands.find((c) => /^RCPT TO:/i.test(c)) ?? '';
      } finally {
        await postfixClient.stop();
      }
      for (const p of ['RET=HDRS', 'ENVID=PF-ENV-42']) assert.ok(mail.split(' ').includes(p), `MAIL at the server: ${mail} (no ${p})`);
      assert.ok(rcpt.split(' ').includes('ORCPT=rfc822;user@example.org'), `RCPT at the server: ${rcpt} (no ORCPT)`);
      // Postfix writes the NOTIFY keywords in its own order
      const notify = rcpt.split(' ').find((p) => p.startsWith('NOTIFY='));
      assert.deepEqual(notify?.slice(7).split(',').sort(), ['DELAY', 'FAILURE', 'SUCCESS'], `RCPT at the server: ${rcpt}`);
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('MAIL and RCPT: the server\'s reply, exactly (2xx and multi-line included)', () => {
    const cases: [string, 'mail' | 'rcpt', string][] = [
      ['MAIL 250 with the server\'s text', 'mail', reply(250, '2.1.0 Sender <a@example.com> OK by scripted')],
      ['MAIL 250, multi-line', 'mail', reply(250, '2.1.0 Sender OK', '2.1.0 (scripted, second line)')],
      ['MAIL 550, multi-line', 'mail', reply(550, '5.7.1 Sender refused by scripted policy', '5.7.1 see https://scripted.test/policy')],
      ['MAIL 421', 'mail', reply(421, '4.3.2 Scripted server shutting down')],
      ['RCPT 250 with the server\'s text', 'rcpt', reply(250, '2.1.5 Recipient <user@example.org> OK by scripted')],
      ['RCPT 251', 'rcpt', reply(251, '2.1.5 User not local; will forward to <user@elsewhere.example>')],
      ['RCPT 250, multi-line', 'rcpt', reply(250, '2.1.5 Recipient OK', '2.1.5 (scripted, second line)')],
      ['RCPT 451', 'rcpt', reply(451, '4.3.2 Please try again later (scripted)')],
      ['RCPT 452', 'rcpt', reply(452, '4.5.3 Too many recipients (scripted)')],
      ['RCPT 550, multi-line', 'rcpt', reply(
        550, '5.1.1 <user@example.org>: Recipient address rejected:', '5.1.1 User unknown in scripted table',
      )],
    ];
    for (const [name, verb, answer] of cases) {
      it(name, async () => {
        scripted.options = { [verb]: answer };
        const client = await session();
        const mail = await client.command('MAIL FROM:<a@example.com>');
        const r = verb === 'mail' ? mail : await client.command('RCPT TO:<user@example.org>');
        await settle(client);
        assertExact(r, answer, verb.toUpperCase());
      });
    }
  });

  // ---------------------------------------------------------------------------------------------
  describe('DATA and end of data: the server\'s reply, exactly, at end of data', () => {
    for (const answer of [
      reply(451, '4.3.0 Error: queue file write error (scripted)'),
      reply(452, '4.3.1 Insufficient system storage (scripted)'),
      reply(552, '5.3.4 Message size exceeds fixed limit (scripted)'),
      reply(554, '5.7.1 Message rejected by the scripted content filter'),
    ]) {
      it(`${codeOf(answer)} at end of data reaches the client exactly`, async () => {
        scripted.options = { endOfData: answer };
        const client = await session();
        const r = await transaction(client, 'Subject: end of data\r\n\r\nhello\r\n');
        await settle(client);
        assert.equal(received().length, 1, 'the server did not receive the message');
        assertExact(r, answer, 'end of data');
      });
    }

    for (const answer of [
      reply(554, '5.5.1 Error: no valid recipients (scripted)'),
      reply(451, '4.3.0 Scripted server refuses DATA for now'),
    ]) {
      it(`a server that answers DATA with ${codeOf(answer)}: the client gets it exactly at end of data; `
        + 'no message content reaches the server', async () => {
        scripted.options = { data: answer };
        const client = await session();
        const r = await transaction(client, 'Subject: data refused\r\n\r\nhello\r\n');
        await settle(client);
        assertExact(r, answer, 'end of data');
        assert.deepEqual(received(), []);
        assert.ok(!receivedText().includes('Subject: data refused'), 'message content reached the server after its refusal of DATA');
      });
    }

    it('a multi-line refusal at end of data keeps every line', async () => {
      const answer = reply(554, '5.7.1 Message refused by the scripted filter:', '5.7.1 it looked like spam', '5.7.1 see https://scripted.test/why');
      scripted.options = { endOfData: answer };
      const client = await session();
      const r = await transaction(client, 'Subject: multi-line\r\n\r\nhello\r\n');
      await settle(client);
      assertExact(r, answer, 'end of data');
    });

    it('a multi-line 451 at end of data keeps its code and every line', async () => {
      const answer = reply(451, '4.7.1 Greylisted by the scripted server,', '4.7.1 please come back in 5 minutes');
      scripted.options = { endOfData: answer };
      const client = await session();
      const r = await transaction(client, 'Subject: multi-line 451\r\n\r\nhello\r\n');
      await settle(client);
      assertExact(r, answer, 'end of data');
    });

    it('250 at end of data: the server\'s reply exactly, multi-line kept (no transaction id of Haraka\'s after it)', async () => {
      scripted.options = { endOfData: reply(250, '2.0.0 Ok: queued as 4ScRiPtEd42', 'second line') };
      const client = await session();
      const r = await transaction(client, 'Subject: accepted\r\n\r\nhello\r\n');
      await settle(client);
      assertExact(r, reply(250, '2.0.0 Ok: queued as 4ScRiPtEd42', 'second line'), 'end of data');
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('the message, byte for byte', () => {
    /** Sends MESSAGE; returns the bytes the server received between its 354 and the final dot. */
    async function deliver(): Promise<string> {
      const client = await session();
      const r = await transaction(client, MESSAGE);
      await settle(client);
      assert.ok(r !== 'closed' && r.code === 250, `end of data: ${show(r)}`);
      const messages = received();
      assert.equal(messages.length, 1);
      return messages[0].toString('latin1');
    }

    it('998-character lines (a header and a body line) arrive unchanged, not folded', async () => {
      const got = await deliver();
      assert.ok(got.includes(`\r\n${LONG_HEADER}\r\n`), 'the 998-character header line was changed');
      assert.ok(got.includes(`\r\n${LONG_BODY}\r\n`), 'the 998-character body line was changed');
      assert.equal(splitMessage(got).body, MESSAGE_BODY, 'the body changed');
    });

    it('Authentication-Results: arrives unchanged, in place (no Original-Authentication-Results)', async () => {
      const got = await deliver();
      assert.doesNotMatch(got, /Original-Authentication-Results/i);
      const { header } = splitMessage(got);
      const at = header.indexOf('Authentication-Results: mx.example.com;');
      assert.ok(at >= 0, `no Authentication-Results: header:\n${header.join('\n')}`);
      assert.deepEqual(header.slice(at - 2, at + 4), MESSAGE_HEADER.slice(0, 6), 'Authentication-Results: moved or changed');
    });

    it('the header section keeps its order; only X-Virus-Scanner: is appended, at its end; the body is unchanged', async () => {
      const got = await deliver();
      const { header, body } = splitMessage(got);
      const kept = withoutFields(MESSAGE_HEADER, CLIENT_SCANNER_FIELDS);
      assert.deepEqual(header.slice(0, kept.length), kept, 'the client\'s header fields are not all there, unchanged and in order');
      const added = header.slice(kept.length);
      assert.ok(added.length >= 1 && /^X-Virus-Scanner: /.test(added[0]) && added.slice(1).every((l) => /^[ \t]/.test(l)),
        `after the client's fields, not just one X-Virus-Scanner: ${added.join('\n')}`);
      assert.equal(body, MESSAGE_BODY);
    });

    it('the client\'s X-Virus-Scanner: and X-Spam-* fields are removed, nothing else', async () => {
      const got = await deliver();
      const { header } = splitMessage(got);
      const fields = header.filter((l) => !/^[ \t]/.test(l));
      assert.deepEqual(fields.filter((l) => /^X-Spam-/i.test(l)), [], 'a client X-Spam-* field arrived');
      const scanners = fields.filter((l) => /^X-Virus-Scanner:/i.test(l));
      assert.equal(scanners.length, 1, scanners.join('\n'));
      assert.doesNotMatch(scanners[0], /forged by the client/);
      assert.deepEqual(withoutFields(header, CLIENT_SCANNER_FIELDS), withoutFields(MESSAGE_HEADER, CLIENT_SCANNER_FIELDS));
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('an EICAR message', () => {
    it('is refused (550 5.7.1) and the server receives nothing of it: no DATA command', async () => {
      const client = await session();
      const mail = await client.command('MAIL FROM:<a@example.com>');
      const rcpt = await client.command('RCPT TO:<user@example.org>');
      const r = mail.code === 250 && rcpt.code === 250
        ? await client.data(`From: a@example.com\r\nSubject: eicar\r\n\r\n${EICAR}\r\n`)
        : undefined;
      await settle(client);
      assert.ok(r && r.code === 550 && /^5\.7\.1\b/.test(r.lines[0]), `end of data: ${show(r)}`);
      assert.ok(!clientCommands().some((c) => /^DATA$/i.test(c)), `the server got DATA: ${clientCommands().join(' / ')}`);
      assert.deepEqual(received(), []);
      assert.ok(!receivedText().includes('EICAR'), 'EICAR bytes reached the server');
    });
  });

  // ---------------------------------------------------------------------------------------------
  describe('with a real Postfix as the server', () => {
    /** Ends the client's session and waits (bounded) until the relay has left Postfix and Postfix has delivered. */
    async function pfSettle(client: SmtpTestClient): Promise<void> {
      if (!client.closed) client.end();
      await tap.idle();
      await postfix.settle();
    }

    const postfixReplies = (): SmtpReply[] => serverReplies(tap);

    it('the greeting (after XCLIENT) and the EHLO reply are Postfix\'s, minus the hidden extensions', async () => {
      const { client, greeting } = await connect(pfRelay.port);
      const ehlo = await client.command('EHLO client.example');
      await pfSettle(client);
      // greeting, EHLO (the relay's), XCLIENT (a new greeting), EHLO (the client's)
      const replies = postfixReplies();
      assert.ok(replies.length >= 4, replies.map(show).join(' / '));
      const [, , afterXclient, clientEhlo] = replies;
      assert.match(afterXclient.lines[0], /^mx\.server\.test ESMTP/);
      assert.ok(greeting !== 'closed', 'no greeting');
      assert.deepEqual(
        { code: greeting.code, lines: greeting.lines },
        { code: afterXclient.code, lines: afterXclient.lines },
        `greeting: ${show(greeting)}`,
      );
      assert.ok(clientEhlo.lines.some(isHidden), `Postfix offered none of the hidden extensions: ${clientEhlo.lines.join(' | ')}`);
      assert.deepEqual(ehlo.lines, asRelayed(clientEhlo.lines.filter((l) => !isHidden(l))));
    });

    it('VRFY is answered by Postfix', async () => {
      const client = await session(pfRelay.port);
      const r = await client.command('VRFY user@example.org');
      await pfSettle(client);
      assert.deepEqual({ code: r.code, lines: r.lines }, { code: 252, lines: ['2.0.0 user@example.org'] }, `VRFY: ${show(r)}`);
      assert.ok(tap.commands().includes('VRFY user@example.org'), `Postfix got: ${tap.commands().join(' / ')}`);
    });

    it('the client\'s HELO name is in Postfix\'s log and Received: for both of two transactions', async () => {
      const client = await session(pfRelay.port, 'client-one.example');
      for (let i = 0; i < 2; i++) {
        const r = await transaction(client, `Subject: helo ${i}\r\n\r\nhello\r\n`);
        assert.ok(r !== 'closed' && r.code === 250, `transaction ${i}: ${show(r)}`);
      }
      await pfSettle(client);
      const helos = [...postfix.logSince(logMark).matchAll(/: info: RCPT from [^:]+: helo seen; .*helo=<([^>]*)>/g)].map((m) => m[1]);
      assert.deepEqual(helos, ['client-one.example', 'client-one.example'], postfix.logSince(logMark));
      assert.equal(sink.messages.length, 2);
      for (const m of sink.messages) {
        const received = m.data.toString('latin1').split('\r\n')[0];
        assert.match(received, /^Received: from client-one\.example \(unknown \[127\.0\.0\.2\]\)/, received);
      }
    });

    for (const verb of ['XCLIENT', 'XFORWARD']) {
      it(`${verb} sent by a client is refused with 5xx, never reaches Postfix, and changes nothing`, async () => {
        const client = await session(pfRelay.port);
        const forged = await client.command(`${verb} ADDR=127.0.0.1 NAME=localhost HELO=localhost`);
        await client.command('EHLO client.example');
        const mail = await client.command('MAIL FROM:<a@example.com>');
        const rcpt = await client.command('RCPT TO:<victim@elsewhere.test>');
        await pfSettle(client);
        assert.ok(forged.code >= 500 && forged.code < 600, `${verb}: ${show(forged)}`);
        assert.ok(!tap.commands().some((c) => c.startsWith(verb) && /\bADDR=127\.0\.0\.1\b/.test(c)), `the client's ${verb} reached Postfix: ${tap.commands().join(' / ')}`);
        assert.equal(mail.code, 250, `MAIL: ${show(mail)}`);
        assert.ok(rcpt.code >= 500, `relayed after ${verb}: ${show(rcpt)}`);
        assert.match(postfix.logSince(logMark), /reject: RCPT from unknown\[127\.0\.0\.2\]: 554 5\.7\.1 <victim@elsewhere\.test>: Relay access denied/);
        assert.deepEqual(sink.messages, []);
      });
    }

    it('a client Postfix refuses at connect (smtpd_delay_reject = no): the client gets Postfix\'s 554 as the greeting', async () => {
      const pf2 = await startPostfixServer({
        deliverTo: sink.port,
        main: { smtpd_delay_reject: 'no', smtpd_client_restrictions: 'check_client_access inline:{ 127.0.0.2=REJECT }' },
      });
      extra.push(pf2);
      const tap2 = new Tap(pf2.port);
      await tap2.start();
      extra.push(tap2);
      const relay2 = await relayTo(tap2.port);
      extra.push(relay2);
      const { client, greeting } = await connect(relay2.port);
      if (!client.closed) client.end();
      await tap2.idle();
      const replies = serverReplies(tap2);
      const afterXclient = replies[2];
      assert.equal(afterXclient?.code, 554, `Postfix's reply to XCLIENT: ${show(afterXclient)}`);
      assert.ok(greeting !== 'closed', 'the connection was closed without a reply');
      assert.deepEqual(
        { code: greeting.code, lines: greeting.lines },
        { code: afterXclient.code, lines: afterXclient.lines },
        `greeting: ${show(greeting)}`,
      );
    });
  });

  // ---------------------------------------------------------------------------------------------
  // Not the relay: the scripted server answered directly, so that a failure above is the relay's
  // and not the test's (the exchanges above expect exactly these replies).
  describe('control: the scripted server itself, without the relay', () => {
    async function direct(): Promise<SmtpTestClient> {
      const client = await SmtpTestClient.connect(scripted.port, OUTSIDE);
      clients.push(client);
      return client;
    }

    it('greets, EHLOs, takes XCLIENT with a new greeting, relays AUTH PLAIN/LOGIN, VRFY and a message as scripted', async () => {
      scripted.options = { auth: { user: USER, password: PASSWORD }, vrfy: reply(252, '2.0.0 maybe', 'second line') };
      const client = await direct();
      assertExact(await client.read(), reply(220, 'mx.scripted.test ESMTP before XCLIENT'), 'greeting');
      assert.deepEqual((await client.command('EHLO relay.test')).lines, EHLO_POSTFIX_LIKE);
      assertExact(await client.command('XCLIENT ADDR=127.0.0.2'), reply(220, 'mx.scripted.test ESMTP after XCLIENT'), 'XCLIENT');
      assert.equal((await client.command('EHLO client.example')).code, 250);
      assertExact(
        await client.command(`AUTH PLAIN ${PLAIN_WRONG}`), reply(535, '5.7.8 Error: authentication failed: authentication failure'),
        'AUTH PLAIN wrong',
      );
      assertExact(await client.command('AUTH LOGIN'), reply(334, 'VXNlcm5hbWU6'), 'AUTH LOGIN');
      assertExact(await client.command(b64(USER)), reply(334, 'UGFzc3dvcmQ6'), 'AUTH LOGIN user');
      assertExact(
        await client.command(b64('wrong')), reply(535, '5.7.8 Error: authentication failed: authentication failure'), 'AUTH LOGIN wrong',
      );
      assertExact(await client.command('AUTH PLAIN'), reply(334, ''), 'AUTH PLAIN (334)');
      assertExact(await client.command(PLAIN), reply(235, '2.7.0 Authentication successful'), 'AUTH PLAIN credentials');
      assertExact(await client.command('VRFY x'), reply(252, '2.0.0 maybe', 'second line'), 'VRFY');
      assert.equal((await client.command('MAIL FROM:<a@example.com> RET=HDRS')).code, 250);
      assert.equal((await client.command('RCPT TO:<b@example.org> NOTIFY=NEVER')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      client.write(`${MESSAGE}.\r\n`);
      const r = await client.read();
      await settle(client);
      assert.equal(r.code, 250);
      assert.equal(received()[0]?.toString('latin1'), MESSAGE);
      assert.ok(clientCommands().includes('MAIL FROM:<a@example.com> RET=HDRS'), clientCommands().join(' / '));
    });

    it('a refused DATA stays in command mode; a scripted end-of-data reply is given as scripted', async () => {
      const multi = reply(554, '5.7.1 one', '5.7.1 two');
      scripted.options = { data: reply(451, '4.3.0 not now') };
      const client = await direct();
      await client.read();
      await client.command('EHLO relay.test');
      await client.command('MAIL FROM:<a@example.com>');
      await client.command('RCPT TO:<b@example.org>');
      assertExact(await client.command('DATA'), reply(451, '4.3.0 not now'), 'DATA');
      assert.equal((await client.command('NOOP')).code, 250);
      scripted.options = { endOfData: multi };
      const r = await client.data('Subject: x\r\n\r\ny\r\n');
      assertExact(r, multi, 'end of data');
      client.end();
      await scripted.idle();
    });
  });
});
