import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { enhancedCode, RELAY_REPLY_KINDS, relayReply, ReplyRef, replyDetail, replyEntry, replyLine } from '../../src/lib/relay_replies';

// every kind, with a detail for the kinds that take one
const refs: ReplyRef[] = RELAY_REPLY_KINDS.map((kind) => ({ kind, detail: 'DETAIL' }) as ReplyRef);
const TRACE = 'A1B2C3D4-E5F6-4A1B-8C2D-0123456789AB.1';

describe('the relay\'s own replies (one table)', () => {
  it('every kind formats as CODE ENHANCED TEXT (trace ID), its enhanced code of the code\'s class', () => {
    assert.ok(RELAY_REPLY_KINDS.length >= 30, String(RELAY_REPLY_KINDS.length));
    for (const ref of refs) {
      const r = relayReply(ref, TRACE);
      assert.equal(r.kind, ref.kind);
      assert.match(String(r.code), /^[245]\d\d$/, ref.kind);
      assert.equal(r.enhanced.cls, Math.floor(r.code / 100), `${ref.kind}: ${r.code} ${enhancedCode(r.enhanced)}`);
      assert.equal(replyLine(r), `${r.code} ${enhancedCode(r.enhanced)} ${r.text} (trace ${TRACE})`, ref.kind);
      assert.match(r.text, /^[A-Z]/, ref.kind);
      assert.doesNotMatch(r.text, /[\r\n]|\.$/, ref.kind);
    }
  });

  it('no kind\'s text holds an address, a port, a path, an errno or a scanner\'s name', () => {
    for (const ref of refs) {
      const { text } = replyEntry(ref);
      for (const leak of [/\d+\.\d+\.\d+\.\d+/, /:\d+/, /\//, /ECONN|ENOENT|ENOSPC|EIO\b|ETIMEDOUT|EPIPE/i, /clamd|spamd/i,
        /\.cfg\b|\.conf\b|\.ini\b/, /\berror:/i]) {
        assert.doesNotMatch(text, leak, `${ref.kind}: ${text}`);
      }
    }
  });

  it('says what the sender should do: try again later (4xx), or what to change or whom to contact (5xx)', () => {
    for (const ref of refs) {
      const r = relayReply(ref, TRACE);
      if (r.code >= 400 && r.code < 500 && !/closing connection|may have been delivered|authenticate again|separate transaction|connect without it/.test(r.text)) {
        assert.match(r.text, /try again later/, ref.kind);
      }
      // refused for good: what to change, or whom to ask
      if (r.code >= 550 && r.code < 560) {
        assert.match(r.text, /postmaster|remove it|correct it|use a plain address|exceeds fixed maximum|without it/, ref.kind);
      }
    }
  });

  it('keeps the codes of the replies the relay gave before the table', () => {
    const codes = (ref: ReplyRef): string => { const r = replyEntry(ref); return `${r.code} ${enhancedCode(r.enhanced)}`; };
    assert.equal(codes({ kind: 'reject_virus', detail: 'X' }), '550 5.7.1');
    assert.equal(codes({ kind: 'defer_not_scanned' }), '451 4.7.1');
    assert.equal(codes({ kind: 'discarded' }), '250 2.0.0');
    assert.equal(codes({ kind: 'malformed', detail: 'X' }), '550 5.6.0');
    assert.equal(codes({ kind: 'too_big' }), '552 5.3.4');
    assert.equal(codes({ kind: 'spool_full' }), '452 4.3.1');
    assert.equal(codes({ kind: 'too_many_connections' }), '421 4.7.0');
    assert.equal(codes({ kind: 'server_unreachable' }), '421 4.4.1');
    assert.equal(codes({ kind: 'server_refuses_relay' }), '421 4.3.0');
    assert.equal(codes({ kind: 'server_gone' }), '451 4.4.4');
    assert.equal(codes({ kind: 'shutting_down' }), '421 4.3.2');
    assert.equal(codes({ kind: 'answer_lost' }), '421 4.4.2');
    assert.equal(codes({ kind: 'auth_again' }), '421 4.7.0');
    assert.equal(codes({ kind: 'client_too_slow' }), '421 4.4.2');
    assert.equal(codes({ kind: 'recipient_routing' }), '550 5.1.3');
    assert.equal(codes({ kind: 'sender_routing' }), '550 5.1.7');
    assert.equal(codes({ kind: 'another_policy' }), '451 4.5.3');
    assert.equal(codes({ kind: 'command_not_supported', detail: 'STARTTLS' }), '502 5.5.1');
    assert.equal(codes({ kind: 'parameter_not_supported', detail: 'BODY=BINARYMIME' }), '555 5.5.4');
    // was 4.4.0 (network and routing): a scan or policy failure is the mail system's (RFC 3463 X.3.0)
    assert.equal(codes({ kind: 'scan_failed' }), '451 4.3.0');
  });

  it('a detail is one line of printable ASCII, bounded; the trace id too', () => {
    assert.equal(replyDetail('Eicar\r\n250 fake\tname'), 'Eicar 250 fake name');
    assert.equal(replyDetail('Virus\u00e9'), 'Virus');
    assert.ok(replyDetail('x'.repeat(1000)).length <= 200);
    const r = relayReply({ kind: 'reject_virus', detail: 'A\r\nB' }, 'T\r\n1');
    assert.doesNotMatch(replyLine(r), /[\r\n]/);
  });

  it('docs/transparency.md lists every reply of the table, word for word', () => {
    const doc = fs.readFileSync(path.join(__dirname, '../../../docs/transparency.md'), 'utf8');
    const table = doc.slice(doc.indexOf("## The relay's own replies"));
    const placeholders: Record<string, string> = {
      reject_virus: 'NAMES', reject_banned: 'NAMES', defer_virus: 'NAMES', defer_banned: 'NAMES', malformed: 'WHAT',
      command_not_supported: 'VERB', parameter_not_supported: 'PARAMETER',
    };
    for (const kind of RELAY_REPLY_KINDS) {
      const shown = replyLine(relayReply({ kind, detail: placeholders[kind] ?? '' } as ReplyRef, 'ID'));
      assert.ok(table.includes(`| \`${shown}\` |`), `docs/transparency.md lacks ${shown}`);
    }
    assert.equal((table.match(/^\| `\d{3} /gm) ?? []).length, RELAY_REPLY_KINDS.length, 'a reply in the docs that the table lacks');
  });
});
