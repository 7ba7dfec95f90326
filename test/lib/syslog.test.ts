import assert from 'node:assert/strict';
import {
  classLine, debugLine, errorLine, escapeText, Field, formatFields, infoLine, isLogged, isWritten, logText, loggerPriority,
  MAX_LINE_BYTES, quote, summaryLine, TRUNCATED, warningLine, word,
} from '../../src/lib/syslog';

/**
 * A reader of summary lines: bare tokens and "quoted strings" in order, the way
 * a log parser would take them. Returns the keys it finds and their raw values.
 */
function parseFields(line: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "\\]*)(?: (?=.)|$)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < line.length && (m = re.exec(line)) !== null) out.push([m[1], m[2]]);
  assert.equal(re.lastIndex, line.length, `the whole line parses as fields: ${line}`);
  return out;
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
// nothing that a terminal, a log viewer or syslog would treat as a control or a break
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffd]/;

describe('syslog lines', () => {
  it('logs summaries at NOTICE for every outcome and WARNING for a failure of the relay, errors at ERR', () => {
    assert.deepEqual(summaryLine(false, [['action', word('reject')]]), { logClass: 'summary', severity: 'notice', text: 'action=reject' });
    assert.equal(summaryLine(true, []).severity, 'warning');
    assert.equal(errorLine('x').severity, 'err');
  });

  it('names the priority for logger -p: facility.level, fixed by us', () => {
    assert.equal(loggerPriority('mail', 'notice'), 'mail.notice');
    assert.equal(loggerPriority('daemon', 'err'), 'daemon.err');
    assert.equal(loggerPriority('local7', 'warning'), 'local7.warning');
  });

  it('filters by syslog_class', () => {
    assert.equal(isLogged(summaryLine(false, []), ['error', 'summary']), true);
    assert.equal(isLogged(summaryLine(false, []), ['error', 'warning']), false);
  });

  it('each class at its own priority: error ERR, warning WARNING, info INFO, debug DEBUG', () => {
    assert.deepEqual(errorLine('e'), { logClass: 'error', severity: 'err', text: 'e' });
    assert.deepEqual(warningLine('w'), { logClass: 'warning', severity: 'warning', text: 'w' });
    assert.deepEqual(infoLine('i'), { logClass: 'info', severity: 'info', text: 'i' });
    assert.deepEqual(debugLine('d'), { logClass: 'debug', severity: 'debug', text: 'd' });
    assert.deepEqual(classLine('info', Buffer.from('r\xffs', 'latin1')), { logClass: 'info', severity: 'info', text: 'r\\xffs' });
  });

  it('filters every class by syslog_class, and lets each through to Haraka\'s log with syslog_facility = none', () => {
    for (const line of [errorLine('e'), warningLine('w'), infoLine('i'), debugLine('d')]) {
      assert.equal(isLogged(line, [line.logClass]), true, line.logClass);
      assert.equal(isLogged(line, ['summary']), false, line.logClass);
    }
    assert.equal(isWritten('mail', ['summary', 'info'], 'info'), true);
    assert.equal(isWritten('mail', ['summary', 'info'], 'debug'), false);
    assert.equal(isWritten('none', ['summary'], 'debug'), true);
  });

  it('info and debug lines: escaped and bounded like the others; debug fields keep client text in quotes', () => {
    const hostile = `<0>bad\r\nmail.emerg x: \x1b[2J ${'z'.repeat(2000)}`;
    for (const line of [infoLine(hostile), debugLine(hostile)]) {
      assert.doesNotMatch(line.text, UNSAFE);
      assert.ok(bytes(line.text) <= MAX_LINE_BYTES);
      assert.match(line.text, /^<0>bad\\x0d\\x0amail\.emerg x: \\x1b\[2J z+\\\[truncated\]$/);
    }
    const fields = debugLine([
      ['event', word('clamd_scan')], ['daemon', '/run/c d" x=1'], ['verdict', `infected: ${hostile}`], ['time', word('3ms')],
    ]);
    assert.doesNotMatch(fields.text, UNSAFE);
    assert.ok(bytes(fields.text) <= MAX_LINE_BYTES);
    assert.deepEqual(parseFields(fields.text).map(([k]) => k), ['event', 'daemon', 'verdict', 'time']);
    assert.match(fields.text, /^event=clamd_scan daemon="\/run\/c d\\" x=1" verdict="infected: <0>bad\\x0d\\x0a.*\\\[truncated\]" time=3ms$/);
  });
});

describe('escaping', () => {
  it('writes control characters, DEL and C1 as \\xNN and a backslash as \\\\', () => {
    assert.equal(escapeText('a\r\nb'), 'a\\x0d\\x0ab');
    assert.equal(escapeText('\x1b[31mred\x1b[0m'), '\\x1b[31mred\\x1b[0m');
    assert.equal(escapeText('nul\0tab\tdel\x7f'), 'nul\\x00tab\\x09del\\x7f');
    assert.equal(escapeText('csi\u009bnel\u0085'), 'csi\\x9bnel\\x85');
    assert.equal(escapeText('c:\\x1b'), 'c:\\\\x1b', 'a literal "\\x1b" from the client is not an escape of ours');
    assert.equal(escapeText('<0>emerg'), '<0>emerg', 'printable text stays readable');
  });

  it('writes format characters, line separators, lone surrogates and U+FFFD as \\u{N}; other Unicode stays', () => {
    assert.equal(escapeText('a\u202eb\u2028c\u200bd'), 'a\\u{202e}b\\u{2028}c\\u{200b}d');
    assert.equal(escapeText('x\ud800y\ufffd'), 'x\\u{d800}y\\u{fffd}');
    assert.equal(escapeText('bücher ✉ 日本'), 'bücher ✉ 日本');
  });

  it('writes raw bytes that are not UTF-8 as \\xNN, valid sequences as characters', () => {
    assert.equal(escapeText(Buffer.from([0x61, 0xff, 0xc3, 0xbc, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x1b, 0x62])),
      'a\\xffü\\xc0\\xaf\\xed\\xa0\\x80\\x1bb');
    assert.equal(escapeText(Buffer.from([0xc2, 0x9b, 0xf0, 0x9f, 0x93, 0xa7])), '\\x9b📧', 'C1 in UTF-8 is escaped too');
  });

  it('quotes with " and \\ escaped', () => {
    assert.equal(quote('a "b" \\ c'), '"a \\"b\\" \\\\ c"');
  });

  it('bounds free text, cutting between characters (never inside an escape) with a marker', () => {
    for (let pad = 0; pad < 8; pad++) {
      const text = logText('p'.repeat(pad) + '\x1b'.repeat(400) + 'é'.repeat(200));
      assert.ok(bytes(text) <= MAX_LINE_BYTES, `pad ${pad}: ${bytes(text)} bytes`);
      assert.ok(text.endsWith(TRUNCATED));
      assert.match(text.slice(0, -TRUNCATED.length), /^p*(\\x1b)*$/, `pad ${pad}: cut inside an escape`);
    }
    assert.equal(logText('short'), 'short');
    const line = logText('x'.repeat(10_000_000));
    assert.equal(bytes(line), MAX_LINE_BYTES, 'a huge text costs a bounded line');
    assert.equal(logText('é'.repeat(1000)).slice(0, -TRUNCATED.length), 'é'.repeat((MAX_LINE_BYTES - TRUNCATED.length) >> 1));
  });

  it('error lines: one escaped, bounded line, whatever the stack holds', () => {
    const text = errorLine(`policy failed: Error: bad <0>\x1b]0;title\x07\n    at x (y.js:1:2)\n${'z'.repeat(2000)}`).text;
    assert.doesNotMatch(text, UNSAFE);
    assert.ok(bytes(text) <= MAX_LINE_BYTES);
    assert.match(text, /^policy failed: Error: bad <0>\\x1b\]0;title\\x07\\x0a {4}at x/);
  });
});

describe('formatFields', () => {
  const summary = (messageId: string): Field[] => [
    ['action', word('reject')],
    ['by', word('action_av_infected')],
    ['from', '<a@example.com>'],
    ['to', '<b@example.org>'],
    ['section', '[smtp]'],
    ['rcpts', 1],
    ['av', 'infected: Eicar-Test-Signature'],
    ['as', undefined],
    ['message_id', messageId],
    ['size', 754],
    ['time', word('4ms')],
  ];
  const KEYS = ['action', 'by', 'from', 'to', 'section', 'rcpts', 'av', 'message_id', 'size', 'time'];

  it('writes our words and numbers bare, every string quoted, undefined left out, in order', () => {
    assert.equal(formatFields(summary('<x@y>')),
      'action=reject by=action_av_infected from="<a@example.com>" to="<b@example.org>" section="[smtp]" rcpts=1 '
      + 'av="infected: Eicar-Test-Signature" message_id="<x@y>" size=754 time=4ms');
    assert.equal(formatFields([['message_id', word('-')]]), 'message_id=-', 'our "no Message-ID" stays bare');
    assert.equal(formatFields([['v', word('a b')]]), 'v="a b"', 'a word that is not a word is quoted');
    assert.equal(formatFields([['v', '']]), 'v=""');
    assert.equal(formatFields([['bad key"=', 1]]), 'bad_key__=1');
  });

  it('a client value cannot fake a field, a quote, an escape, a priority or a line', () => {
    const hostile = [
      '<x@y> action=accept by=x',
      ' action=accept',
      'a" action="accept',
      'a\\" action=accept',
      'a\\',
      '\\" action=accept "',
      '<0>\x1b[2J action=accept',
      'x\r\n<0>esets_smtp[1]: action=accept by=x',
      'x\u2028action=accept',
      '"',
    ];
    for (const id of hostile) {
      const line = formatFields(summary(id));
      assert.doesNotMatch(line, UNSAFE, JSON.stringify(id));
      const fields = parseFields(line);
      assert.deepEqual(fields.map(([k]) => k), KEYS, `${JSON.stringify(id)} → ${line}`);
      assert.equal(fields.find(([k]) => k === 'action')![1], 'reject');
      const quoted = fields.find(([k]) => k === 'message_id')![1];
      // the quoted value reads back as the client's text, its controls escaped
      assert.equal(JSON.parse(quoted.replace(/\\x([0-9a-f]{2})/g, '\\u00$1').replace(/\\u\{([0-9a-f]{4})\}/g, '\\u$1')), id);
    }
  });

  it('bounds the line: long client values are cut inside their quotes; keys, numbers and short values stay', () => {
    const inject = '<0>\x1b action=accept by=x ';
    for (const id of [`<${'a'.repeat(990)}${inject}${'b'.repeat(200)}@x>`, `<${inject}${'a'.repeat(1100)}@x>`]) {
      const line = formatFields(summary(id));
      assert.ok(bytes(line) <= MAX_LINE_BYTES, `${bytes(line)} bytes`);
      assert.ok(bytes(line) >= MAX_LINE_BYTES - 8, 'the room is used');
      const fields = parseFields(line);
      assert.deepEqual(fields.map(([k]) => k), KEYS);
      assert.equal(fields[0][1], 'reject');
      assert.ok(fields.find(([k]) => k === 'message_id')![1].endsWith(`${TRUNCATED}"`));
      assert.equal(fields.find(([k]) => k === 'from')![1], '"<a@example.com>"');
      assert.match(line, / size=754 time=4ms$/);
    }
  });

  it('shares the room between several long values and never cuts an escape', () => {
    for (let pad = 0; pad < 6; pad++) {
      const long = 'q'.repeat(pad) + '\x1b"\\é'.repeat(300);
      const line = formatFields([['action', word('reject')], ['from', long], ['to', long], ['message_id', long], ['size', 1]]);
      assert.ok(bytes(line) <= MAX_LINE_BYTES);
      const fields = parseFields(line);
      assert.deepEqual(fields.map(([k]) => k), ['action', 'from', 'to', 'message_id', 'size']);
      for (const [k, v] of fields.slice(1, 4)) {
        assert.ok(bytes(v) > 200, `${k} got a fair share`);
        assert.match(v, /^"q*(\\x1b\\"\\\\é)*(\\x1b|\\x1b\\"|\\x1b\\"\\\\)?\\\[truncated\]"$/, `${k}: ${v.slice(-40)}`);
      }
    }
  });

  it('keeps within a bound even when our own keys alone do not fit', () => {
    const fields: Field[] = Array.from({ length: 200 }, (_, i) => [`key_${i}`, i]);
    const line = formatFields(fields);
    assert.ok(bytes(line) <= MAX_LINE_BYTES);
    assert.ok(line.endsWith(TRUNCATED));
    assert.equal(formatFields([['a', 'x'.repeat(50)]], 20), 'a="xxxx\\[truncated]"');
  });
});
