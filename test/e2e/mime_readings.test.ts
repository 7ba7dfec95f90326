// What the recipient's mail reader opens is what gets scanned: structures that
// clamd's own MIME parser reads otherwise than mail readers do, sent through the
// relay (the shipped clamd snippet) to a real Postfix, and what Postfix
// delivered opened with Python's email package, munpack and ripmime. Each case
// is first shown to be real (a reader extracts EICAR from it); then EICAR must
// never be delivered, and the same structure with clean content is delivered
// when the RFCs allow it (the readers find the clean content in what was
// stored) or refused 550 5.6.0 when they do not.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Clamd, CLAMD_SNIPPET, EICAR, startClamd } from '../support/clamd';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { readersFinding } from '../support/mail_readers';
import { eventually } from '../support/processes';

const CLEAN = 'A perfectly harmless attachment, nothing to see here.';

function b64(text: string, width = 76): string[] {
  const all = Buffer.from(text, 'latin1').toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < all.length; i += width) lines.push(all.slice(i, i + width));
  return lines;
}

const HEAD = ['From: a@example.com', 'To: b@example.org', 'Subject: attachment', 'MIME-Version: 1.0'];

/** A multipart/mixed message with a text part and a base64 attachment; `o` bends one thing. */
function attachment(payload: string, o: {
  boundary?: string; contentType?: string[]; delimiter?: (b: string) => string; attachHeader?: string[];
  b64?: string[]; extraTop?: string[];
} = {}): string {
  const b = o.boundary ?? 'BB';
  const delimiter = o.delimiter ?? ((x: string): string => `--${x}`);
  return [
    ...HEAD, ...(o.extraTop ?? []),
    ...(o.contentType ?? [`Content-Type: multipart/mixed; boundary="${b}"`]),
    '',
    'This is a multi-part message in MIME format.',
    `--${b}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'See the attachment.',
    delimiter(b),
    ...(o.attachHeader ?? ['Content-Type: application/octet-stream; name="file.bin"', 'Content-Transfer-Encoding: base64']),
    '',
    ...(o.b64 ?? b64(payload)),
    `--${b}--`,
    '',
  ].join('\r\n');
}

interface Case {
  name: string;
  build: (payload: string) => string;
  /** the RFCs allow the structure: the clean twin is delivered (else refused 550 5.6.0) */
  allowed: boolean;
}

const long = (n: number, end = ' '): string => `X-Long: ${'a'.repeat(n - 9 - end.length)}${end}`;

const CASES: Case[] = [
  // padding after a boundary (RFC 2046 transport padding is blanks)
  ...['\t', ' \t', '\t ', '  \t\t  '].map((pad): Case => ({
    name: `boundary padded with ${JSON.stringify(pad)}`, allowed: true, build: (p) => attachment(p, { delimiter: (b) => `--${b}${pad}` }),
  })),
  // other bytes after a boundary: no RFC allows a line that begins with the boundary
  ...['\x0b', '\x0c', 'x', '\t\x0b'].map((pad): Case => ({
    name: `boundary followed by ${JSON.stringify(pad)}`, allowed: false, build: (p) => attachment(p, { delimiter: (b) => `--${b}${pad}` }),
  })),
  // a field left open (";" at the end, an odd number of quotes) that clamd joins to the next line
  {
    name: 'Content-Disposition ending in ";" before the multipart Content-Type', allowed: true,
    build: (p) => attachment(p, { contentType: ['Content-Disposition: inline;', 'Content-Type: multipart/mixed; boundary="BB"'] }),
  },
  {
    name: 'X- field ending in ";" before the multipart Content-Type', allowed: true,
    build: (p) => attachment(p, { contentType: ['X-Note: a;', 'Content-Type: multipart/mixed; boundary="BB"'] }),
  },
  {
    name: 'attachment Content-Type ending in ";" before its Content-Transfer-Encoding', allowed: true,
    build: (p) => attachment(p, {
      attachHeader: ['Content-Type: application/octet-stream; name="eicar.com";', 'Content-Transfer-Encoding: base64'],
    }),
  },
  {
    name: 'attachment Content-Disposition with an odd number of quotes before its encoding', allowed: true,
    build: (p) => attachment(p, {
      attachHeader: [
        'Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="a"b"', 'Content-Transfer-Encoding: base64',
      ],
    }),
  },
  // lines only clamd takes for boundaries, inside the base64 attachment (no base64 character of readers' in them)
  ...['---_.,_', '----_.,_', '---_.,_--', '-----_.,_  '].map((line): Case => ({
    name: `a line ${JSON.stringify(line)} inside the attachment (boundary _.,_)`, allowed: true,
    build: (p) => attachment(p, { boundary: '_.,_', b64: [line, ...b64(p)] }),
  })),
  {
    name: 'boundary parameter with a comment', allowed: true,
    build: (p) => attachment(p, { contentType: ['Content-Type: multipart/mixed; boundary="BB" (a comment)'] }),
  },
  {
    name: 'unquoted boundary parameter with a comment glued to it', allowed: true,
    build: (p) => attachment(p, { contentType: ['Content-Type: multipart/mixed; boundary=BB(c)'] }),
  },
  // part-header lines of 1,000 characters or more ending in blanks (clamd reads 999-byte pieces)
  ...[[1000, ' '], [1200, '   '], [2100, '\t'], [4000, ' ']].map(([n, end]): Case => ({
    name: `a ${n as number}-character part-header line ending in ${JSON.stringify(end)}`, allowed: false,
    build: (p) => attachment(p, {
      attachHeader: [long(n as number, end as string), 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64'],
    }),
  })),
  {
    name: 'a 1,500-character X- field in the message header ending in blanks', allowed: true,
    build: (p) => attachment(p, { extraTop: [long(1500, '  ')] }),
  },
  {
    name: 'a 1,500-character Content-Type in the message header', allowed: false,
    build: (p) => attachment(p, { contentType: [`Content-Type: multipart/mixed; boundary="BB"; x="${'a'.repeat(1440)}"`] }),
  },
  // decodings readers do: quoted-printable soft breaks with blanks after "=", uuencode in a text part
  {
    name: 'quoted-printable with soft breaks followed by blanks', allowed: true,
    build: (p) => attachment(p, {
      attachHeader: ['Content-Type: application/octet-stream; name="x.com"', 'Content-Transfer-Encoding: quoted-printable'],
      b64: p.match(/.{1,10}/g)!.map((s) => `${s.replace(/=/g, '=3D')}=  `),
    }),
  },
  {
    name: 'uuencoded file in a text/plain part', allowed: true,
    build: (p) => attachment(p, {
      attachHeader: ['Content-Type: text/plain'], b64: ['Here it is:', 'begin 644 file.com', ...uuencode(p), '`', 'end'],
    }),
  },
  // uuencode as lenient readers take it: any case, any mode, a tab
  ...['begin 6 a', 'begin 644\ta.com', 'begin 644', 'begin +644 a.com', 'BEGIN 644 a.com'].map((begin): Case => ({
    name: `uuencoded text after "${begin.replace('\t', '<TAB>')}" in a plain text message`, allowed: true,
    build: (p) => single(['Content-Type: text/plain'], ['Here it is:', begin, ...uuencode(p), '`', 'end']),
  })),
  {
    name: 'x-uuencode on an image/gif part with mode 0644', allowed: true,
    build: (p) => attachment(p, {
      attachHeader: ['Content-Type: image/gif; name="a.gif"', 'Content-Transfer-Encoding: x-uuencode'],
      b64: ['begin 0644 a.com', ...uuencode(p), '`', 'end'],
    }),
  },
  ...[1, 2].map((at): Case => ({
    name: `base64 with a lone "=" after ${at} character(s) of a group (Python's email skips it)`, allowed: true,
    build: (p) => attachment(p, { b64: b64WithEquals(p, at) }),
  })),
  // what Python's email and ripmime read beyond the RFCs: every message/* as a message, parameters by substring
  {
    name: 'a message/external-body part holding a message with the attachment', allowed: true,
    build: (p) => outer(['Content-Type: message/external-body', '', ...inner(p)]),
  },
  {
    name: 'a message/rfc822 part labelled base64 but sent as it is (Python ignores the label)', allowed: true,
    build: (p) => outer(['Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', '', ...inner(p)]),
  },
  {
    name: 'a boundary only ripmime finds ("xboundary=" before the real one)', allowed: true,
    build: (p) => [...HEAD, 'Content-Type: multipart/mixed; xboundary=ZZ; boundary=BB', '', '--BB', 'Content-Type: text/plain', '',
      '--ZZ', 'Content-Type: application/octet-stream; name="z.bin"', 'Content-Transfer-Encoding: base64', '', ...b64(p), '--ZZ--',
      '--BB--', ''].join('\r\n'),
  },
  {
    name: 'base64 by an X-Content-Transfer-Encoding field (ripmime reads it)', allowed: true,
    build: (p) => attachment(p, {
      attachHeader: ['Content-Type: application/octet-stream; name="x.bin"', 'X-Content-Transfer-Encoding: base64'],
    }),
  },
  {
    name: 'base64 with junk characters between the data', allowed: true,
    build: (p) => attachment(p, { b64: b64(p, 8).map((l, i) => (i % 2 ? `${l}!` : `*${l}`)) }),
  },
];

/** A message with a plain multipart/mixed of one base64 attachment (the body of an attached message). */
function inner(payload: string): string[] {
  return ['From: c@example.net', 'Subject: inner', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="IN"', '',
    '--IN', 'Content-Type: application/octet-stream; name="in.bin"', 'Content-Transfer-Encoding: base64', '', ...b64(payload), '--IN--'];
}

/** A multipart/mixed whose second part is `part` (header and body). */
function outer(part: string[]): string {
  return [...HEAD, 'Content-Type: multipart/mixed; boundary="OUT"', '', '--OUT', 'Content-Type: text/plain', '', 'see the attachment',
    '--OUT', ...part, '--OUT--', ''].join('\r\n');
}

/** A message of one text/plain part (no multipart). */
function single(headers: string[], body: string[]): string {
  return [...HEAD, ...headers, '', ...body, ''].join('\r\n');
}

/** base64 of `p` with a lone "=" put after `at` characters of its first group (CPython skips it). */
function b64WithEquals(p: string, at: number): string[] {
  const all = Buffer.from(p, 'latin1').toString('base64');
  return [`${all.slice(0, at)}=${all.slice(at)}`];
}

function uuencode(text: string): string[] {
  const bytes = Buffer.from(text, 'latin1');
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 45) {
    const chunk = bytes.subarray(i, i + 45);
    let line = String.fromCharCode(32 + chunk.length);
    for (let j = 0; j < chunk.length; j += 3) {
      const [a, b, c] = [chunk[j], chunk[j + 1] ?? 0, chunk[j + 2] ?? 0];
      for (const v of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) {
        line += v === 0 ? '`' : String.fromCharCode(32 + v);
      }
    }
    lines.push(line);
  }
  return lines;
}

describe('what the mail reader opens is what gets scanned (MIME read as readers do)', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  let relay: Relay;
  /** the same relay with a clamd that does not read mail itself (ScanMail no): only the relay's walk finds a part */
  let blindClamd: Clamd;
  let walkOnly: Relay;

  before(async () => {
    sink = new Sink();
    await sink.start();
    const noMail = fs.readFileSync(CLAMD_SNIPPET, 'utf8').replace(/^ScanMail yes$/m, 'ScanMail no');
    assert.match(noMail, /^ScanMail no$/m);
    [clamd, blindClamd, postfix] = await Promise.all([
      startClamd(), startClamd(undefined, false, noMail), startPostfixServer({ deliverTo: sink.port }),
    ]);
    const [port, port2] = [await freePort(), await freePort()];
    [relay, walkOnly] = await Promise.all([
      startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: postfix.port, clamdSocket: clamd.socket }))], port),
      startRelay(['--config', writeEsetsCfg(esetsCfg(port2, { serverPort: postfix.port, clamdSocket: blindClamd.socket }))], port2),
    ]);
  });

  after(async () => {
    await Promise.all([relay?.stop(), walkOnly?.stop()]);
    await postfix?.stop();
    await sink?.stop();
    await Promise.all([clamd?.stop(), blindClamd?.stop()]);
  });

  async function send(text: string, through = relay): Promise<{ code?: number; text: string; stored?: Buffer }> {
    sink.messages.length = 0;
    const client = await SmtpTestClient.connect(through.port);
    await client.read();
    await client.command('EHLO client.example');
    const r = await client.send('a@example.com', ['b@example.org'], text);
    await client.command('QUIT').catch(() => undefined);
    client.end();
    await postfix.settle();
    return { code: r.data?.code, text: r.data?.lines.join(' ') ?? '', stored: sink.messages[0]?.data };
  }

  for (const c of CASES) {
    it(`${c.name}: EICAR never delivered; clean content ${c.allowed ? 'delivered and readable' : 'refused 550 5.6.0'}`, async () => {
      const attack = c.build(EICAR);
      // the case is real: a mail reader extracts EICAR from the message as sent
      if (c.allowed) {
        assert.ok(readersFinding(Buffer.from(attack, 'latin1'), EICAR).length > 0, 'no reader extracts EICAR from this message');
      }
      const infected = await send(attack);
      assert.equal(infected.code, 550, infected.text);
      assert.equal(infected.stored, undefined, 'nothing delivered');
      // the relay's own walk finds it where clamd does not read the message as a mail at all
      const blind = await send(attack, walkOnly);
      assert.equal(blind.code, 550, `walk only: ${blind.text}`);
      assert.equal(blind.stored, undefined, 'nothing delivered (walk only)');

      const clean = await send(c.build(CLEAN));
      if (c.allowed) {
        assert.equal(clean.code, 250, clean.text);
        assert.ok(clean.stored);
        assert.ok(readersFinding(clean.stored, CLEAN).length > 0, 'a reader finds the clean content in what was stored');
      } else {
        assert.equal(clean.code, 550, clean.text);
        assert.match(clean.text, /5\.6\.0 Message refused: malformed message \(/);
        assert.equal(clean.stored, undefined);
      }
    });
  }

  it('delivers a clean multipart newsletter (alternative text/html, related images) and a message of 200 parts', async () => {
    const png = Buffer.alloc(3000, 7).toString('base64').match(/.{1,76}/g)!;
    const newsletter = [
      ...HEAD, 'Content-Type: multipart/alternative; boundary="=_alt_1"', '',
      '--=_alt_1', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '',
      'Our news this week =E2=80=93 read on.=', ' Soft break above.', '',
      '--=_alt_1', 'Content-Type: multipart/related; boundary="=_rel_2"', '',
      '--=_rel_2', 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: 7bit', '',
      '<html><body><p>News</p><img src="cid:logo"></body></html>',
      '--=_rel_2', 'Content-Type: image/png', 'Content-ID: <logo>', 'Content-Transfer-Encoding: base64', '', ...png,
      '--=_rel_2--', '', '--=_alt_1--', '',
    ].join('\r\n');
    const r1 = await send(newsletter);
    assert.equal(r1.code, 250, r1.text);
    const body = newsletter.slice(newsletter.indexOf('\r\n\r\n'));
    assert.ok(r1.stored?.toString('latin1').endsWith(body), 'the newsletter reached the server as sent');

    const parts: string[] = [];
    for (let i = 0; i < 200; i++) {
      parts.push('--P200', `Content-Type: text/plain; name="n${i}.txt"`, 'Content-Transfer-Encoding: base64', '',
        ...b64(`note ${i} ${CLEAN}`));
    }
    const many = [...HEAD, 'Content-Type: multipart/mixed; boundary="P200"', '', ...parts, '--P200--', ''].join('\r\n');
    const r2 = await send(many);
    assert.equal(r2.code, 250, r2.text);
    assert.ok(readersFinding(r2.stored!, 'note 199 ').length > 0);
  });

  it('delivers ordinary mail with RFC quirks: a forwarded .eml opening with an mbox From line, '
    + 'a quoted-printable multipart from a bulk mailer, 1,000 distinct small parts', async () => {
    const eml = [
      ...HEAD, 'Content-Type: multipart/mixed; boundary="F"', '', '--F', 'Content-Type: text/plain', '', 'Forwarded.', '--F',
      'Content-Type: message/rfc822', '', 'From someone@example.net Mon Nov 30 10:00:00 2026', 'From: someone@example.net',
      'Subject: old', '', `${CLEAN}`, '--F--', '',
    ].join('\r\n');
    const r1 = await send(eml);
    assert.equal(r1.code, 250, r1.text);
    const bulk = [
      ...HEAD, 'Content-Type: multipart/alternative; boundary="Q"', 'Content-Transfer-Encoding: quoted-printable', '',
      '--Q', 'Content-Type: text/plain', '', CLEAN, '--Q', 'Content-Type: text/html', '', `<p>${CLEAN}</p>`, '--Q--', '',
    ].join('\r\n');
    const r2 = await send(bulk);
    assert.equal(r2.code, 250, r2.text);
    const parts: string[] = [];
    for (let i = 0; i < 1000; i++) parts.push('--K', 'Content-Type: text/plain', '', `leaf ${i}`);
    const r3 = await send([...HEAD, 'Content-Type: multipart/mixed; boundary="K"', '', ...parts, '--K--', ''].join('\r\n'));
    assert.equal(r3.code, 250, r3.text);
  });

  it('refuses 550 5.6.0, promptly, a part header of Content-* fields folded over 40,000 lines each (bounded work)', async () => {
    const header: string[] = [];
    for (let i = 0; i < 10; i++) header.push(`Content-X${i}: a`, ...Array.from({ length: 40_000 }, () => ' a'));
    const r = await send(attachment(CLEAN, { attachHeader: [...header, 'Content-Transfer-Encoding: base64'] }));
    assert.equal(r.code, 550, r.text);
    assert.match(r.text, /5\.6\.0 Message refused: malformed message \(a content-x0 field longer than 65536 bytes/);
  });

  it('finds EICAR in the 200th of 200 parts, naming the part', async () => {
    const parts: string[] = [];
    for (let i = 1; i <= 200; i++) {
      parts.push('--P200', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '',
        ...b64(i === 200 ? EICAR : `note ${i}`));
    }
    // clamd's reading of the whole message is made blind to the part (tab padding), so the part's own scan decides
    const text = [...HEAD, 'Content-Type: multipart/mixed; boundary="P200"', '', ...parts.map((l) => (l === '--P200' ? '--P200\t' : l)),
      '--P200--', ''].join('\r\n');
    const r = await send(text);
    assert.equal(r.code, 550, r.text);
    assert.match(r.text, /virus found \(Eicar-Test-Signature[^)]*\(part 1\.200\)/);
    // the summary line says which option decided and where the virus was
    const summary = /action=reject by=action_av_infected .*av="infected: Eicar-Test-Signature[^"]*\(part 1\.200\)"/;
    assert.ok(await eventually(() => summary.test(relay.output())), relay.output().slice(-2000));
  });
});
