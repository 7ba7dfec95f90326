// shared/own_replies: Haraka's own replies in the server's words, the server's
// replies (DSN objects) untouched, the empty 334 as "334 ", pipelined commands
// after the final dot kept for their turn, a nested MAIL refused, and the
// queue hook's 250 sent exactly; an unknown connection is left alone.

import assert from 'node:assert/strict';
import { answerAsServer, queuedReply } from '../../src/plugins/shared/own_replies';
import { exactReply } from '../../src/plugins/shared/exact_reply';
import type { Connection, Transaction } from '../../src/plugins/shared/haraka';

interface Fake {
  notes: Record<string, unknown>;
  esmtp: boolean;
  awaiting_data_reply: boolean;
  current_line: string;
  current_data: Buffer | null;
  hello: { host?: string };
  transaction: { uuid: string; mail_from?: string } | null;
  client: { written: string[]; write(d: string): void };
  sent: [unknown, unknown][];
  mails: [string, boolean][];
  quits: string[];
  queued: unknown[];
  respond(code: unknown, msg: unknown, cb?: () => void): void;
  cmd_mail(args: string): void;
  cmd_rcpt(args: string): void;
  cmd_quit(args: string): void;
  queue_ok_respond(retval: number, msg: unknown, params: unknown): void;
}

/** Haraka 3's connection as far as own_replies goes: respond() writes as Haraka does (its "334  " included). */
function fake(): Fake {
  const conn: Fake = {
    notes: {}, esmtp: false, awaiting_data_reply: false, current_line: '', current_data: null, hello: {}, transaction: null,
    client: { written: [], write(d: string): void { this.written.push(d); } },
    sent: [], mails: [], quits: [], queued: [],
    respond(code: unknown, msg: unknown): void {
      // Haraka drops what was pipelined after the dot when it answers the end of data
      if (this.awaiting_data_reply) { this.awaiting_data_reply = false; this.current_data = null; }
      this.sent.push([code, msg]);
      const lines = (Array.isArray(msg) ? msg : [msg]).filter((l) => /\S/.test(String(l)));
      this.client.write(code === 334 && !lines.length ? '334  \r\n' : `${String(code)} ${lines.join('')}\r\n`);
    },
    cmd_mail(args: string): void { this.mails.push([args, this.esmtp]); },
    cmd_rcpt(args: string): void { this.mails.push([args, this.esmtp]); },
    cmd_quit(args: string): void { this.quits.push(args); },
    queue_ok_respond(_retval: number, _msg: unknown, params: unknown): void { this.queued.push(params); },
  };
  answerAsServer(conn as unknown as Connection, () => assert.fail('warned'));
  return conn;
}

describe("Haraka's own replies (shared/own_replies)", () => {
  it("Haraka's known replies in Postfix's words; the server's replies (DSN objects) and others untouched", () => {
    const conn = fake();
    conn.current_line = 'RSET';
    conn.respond(250, 'OK');
    conn.respond(250, exactReply({ code: 250, lines: ['OK'] }));
    conn.respond(250, 'Something else');
    assert.deepEqual(conn.sent[0], [250, ['2.0.0 Ok']]);
    assert.equal((conn.sent[1][1] as { reply: string[] }).reply[0], 'OK');
    assert.deepEqual(conn.sent[2], [250, 'Something else']);
  });

  it('an empty 334 is written "334 " (Haraka writes "334  "); one with text is not touched', () => {
    const conn = fake();
    conn.respond(334, exactReply({ code: 334, lines: [''] }));
    conn.respond(334, exactReply({ code: 334, lines: ['VXNlcm5hbWU6'] }));
    assert.deepEqual(conn.client.written, ['334 \r\n', '334 VXNlcm5hbWU6\r\n']);
    conn.client.write('334  \r\n');
    assert.equal(conn.client.written[2], '334  \r\n', 'the write is ours again after the reply');
  });

  it('what was pipelined after the final dot stays buffered for its turn', () => {
    const conn = fake();
    conn.awaiting_data_reply = true;
    conn.current_data = Buffer.from('QUIT\r\n');
    conn.respond(250, exactReply({ code: 250, lines: ['2.0.0 Ok: queued as X'] }));
    assert.equal(conn.current_data?.toString(), 'QUIT\r\n');
    assert.equal(conn.awaiting_data_reply, false);
  });

  it('a MAIL in a transaction: 503 5.5.1 nested MAIL, Haraka never sees it; parameters after HELO reach Haraka as ESMTP', () => {
    const conn = fake();
    conn.hello.host = 'client.example';
    conn.cmd_mail('FROM:<a@b > SIZE=10');
    assert.deepEqual(conn.mails, [['FROM:<a@b> SIZE=10', true]]);
    assert.equal(conn.esmtp, false, 'esmtp is Haraka\'s again after the command');
    conn.transaction = { uuid: 'T', mail_from: 'a@b' };
    conn.cmd_mail('FROM:<c@d>');
    assert.equal(conn.mails.length, 1);
    assert.deepEqual(conn.sent.at(-1), [503, ['5.5.1 Error: nested MAIL command']]);
    conn.cmd_rcpt('TO:<r@x >');
    assert.deepEqual(conn.mails.at(-1), ['TO:<r@x>', true]);
    conn.cmd_quit('now');
    assert.deepEqual(conn.quits, ['']);
  });

  it("the queue hook's 250 is sent as the server gave it (no transaction id)", () => {
    const conn = fake();
    conn.transaction = { uuid: 'T' };
    const exact = exactReply({ code: 250, lines: ['2.0.0 Ok: queued as 4F2'] });
    queuedReply(conn.transaction as unknown as Transaction, exact);
    conn.queue_ok_respond(906, '2.0.0 Ok: queued as 4F2', '2.0.0 Ok: queued as 4F2 (T)');
    assert.equal(conn.queued[0], exact);
    conn.transaction = { uuid: 'U' };
    conn.queue_ok_respond(906, 'Message Queued', 'Message Queued (U)');
    assert.equal(conn.queued[1], 'Message Queued (U)', 'another queue plugin\'s answer is Haraka\'s');
  });

  it('a connection without the methods it wraps is left alone, with a warning', () => {
    const warned: string[] = [];
    const conn = { notes: {}, respond(): void { /* nothing */ } };
    const respond = conn.respond;
    answerAsServer(conn as unknown as Connection, (m) => warned.push(m));
    assert.equal(conn.respond, respond);
    assert.match(warned[0] ?? '', /not the Haraka 3 this relay wraps/);
  });
});
