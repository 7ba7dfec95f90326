import assert from 'node:assert/strict';
import { fieldName, HeaderSectionEditor, isScannerField, type HeaderField } from '../../src/lib/smtp_data';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const LF = 0x0a;

/**
 * The edit done on a whole header section, line by line (the relay's first
 * implementation): the independent answer the streamed editor must give.
 */
function referenceEdit(
  header: Buffer, remove: (name: string) => boolean, add: readonly HeaderField[], headerless = false,
): Buffer {
  const kept: Buffer[] = [];
  let dropping = false;
  let pos = 0;
  while (pos < header.length) {
    let nl = header.indexOf(LF, pos);
    nl = nl < 0 ? header.length : nl + 1;
    const line = header.subarray(pos, nl);
    const continues = line[0] === 0x20 || line[0] === 0x09;
    // a continuation line belongs to the field before it; any other line ends it
    if (!continues) {
      const name = fieldName(line.toString('latin1'));
      dropping = name !== undefined && remove(name);
    }
    if (!dropping) kept.push(line);
    pos = nl;
  }
  // a header section whose last line lacks its CRLF (a message of headers only) gets one first
  if (add.length && header.length && header[header.length - 1] !== LF) kept.push(Buffer.from('\r\n'));
  for (const f of add) kept.push(Buffer.from(`${f.name}: ${f.value}\r\n`));
  if (headerless && kept.length) kept.push(Buffer.from('\r\n'));
  return Buffer.concat(kept);
}


/** A small seeded generator: the same inputs on every run, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/** The header section through the editor in the given chunks. */
function streamed(
  chunks: readonly Buffer[], remove: (name: string) => boolean, add: readonly HeaderField[], headerless: boolean,
): Buffer {
  const editor = new HeaderSectionEditor(remove, add, headerless);
  const out: Buffer[] = [];
  for (const chunk of chunks) out.push(...editor.push(chunk));
  out.push(...editor.end());
  return Buffer.concat(out);
}

/** `bytes` cut at random places (empty chunks included). */
function randomSplit(bytes: Buffer, next: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const len = Math.floor(next() * Math.min(bytes.length - pos + 1, 12));
    chunks.push(bytes.subarray(pos, pos + len));
    pos += len;
  }
  return chunks;
}

const LINES = [
  'Subject: hi', 'X-Virus-Scanner: theirs', 'x-spam-flag: YES', 'X-Spam-Status : No', 'X-Spam', 'X-Spam-:',
  ' folded', '\tfolded tab', ':no name', 'NOT A HEADER', 'From someone', 'Received: a:b:c', 'X-Virus-Scanner:',
  'X-Virus-Scannerx: kept', 'X-Virus-Scanner \t: spaced', '', ' ', 'A:', 'x-spam-level:\t***', 'Subject: caf\u00e9',
];
const ENDINGS = ['\r\n', '\r\n', '\r\n', '\n', ''];
const ADDS: readonly (readonly HeaderField[])[] = [
  [], [{ name: 'X-Virus-Scanner', value: 'ours; clean' }],
  [{ name: 'X-Virus-Scanner', value: 'ours' }, { name: 'X-Spam-Flag', value: 'NO' }],
];

function randomHeader(next: () => number): Buffer {
  const n = Math.floor(next() * 8);
  let text = '';
  for (let i = 0; i < n; i++) {
    text += LINES[Math.floor(next() * LINES.length)];
    // the last line may lack its ending (a message of headers only)
    text += i === n - 1 ? ENDINGS[Math.floor(next() * ENDINGS.length)] : '\r\n';
  }
  return b(text);
}

describe('HeaderSectionEditor: the header edits as a stream', () => {
  it('gives the line-by-line edit\'s bytes for the documented cases, whole and byte by byte', () => {
    const cases: [string, readonly HeaderField[], boolean][] = [
      ['Received: from a\r\n\tby b\r\nX-Spam-Flag: YES\r\n\tfolded\r\nSubject: hi\r\n', ADDS[1], false],
      ['X-Spam-Flag: NO\r\nNOT A HEADER\r\nSubject: x\r\n', [], false],
      ['', ADDS[1], true],
      ['Received: from a\r\n', ADDS[1], true],
      ['', [], true],
      ['', ADDS[1], false],
      ['Subject: no ending', ADDS[2], false],
      ['X-Spam-Flag: no ending', ADDS[1], false],
      ['X-Spam-Flag: x\r\n folded, no ending', ADDS[1], true],
    ];
    for (const [text, add, headerless] of cases) {
      const whole = referenceEdit(b(text), isScannerField, add, headerless);
      assert.deepEqual(streamed([b(text)], isScannerField, add, headerless), whole, JSON.stringify(text));
      const bytes = [...b(text)].map((c) => Buffer.from([c]));
      assert.deepEqual(streamed(bytes, isScannerField, add, headerless), whole, JSON.stringify(text));
    }
  });

  it('gives the line-by-line edit\'s bytes for 5,000 random header sections in random chunks', () => {
    const next = random(22);
    const removers = [isScannerField, (n: string): boolean => n === 'subject', (): boolean => false];
    for (let i = 0; i < 5000; i++) {
      const header = randomHeader(next);
      const add = ADDS[Math.floor(next() * ADDS.length)];
      const remove = removers[Math.floor(next() * removers.length)];
      const headerless = next() < 0.3;
      const whole = referenceEdit(header, remove, add, headerless);
      const got = streamed(randomSplit(header, next), remove, add, headerless);
      assert.deepEqual(got, whole, `case ${i}: ${JSON.stringify(header.toString('latin1'))}`);
    }
  });

  it('holds no more than the start of a line: a large header section comes out as views into its chunks', () => {
    const line = b(`X-Long: ${'a'.repeat(70)}\r\n ${'b'.repeat(70)}\r\n`);
    const chunk = Buffer.concat(Array.from({ length: 1000 }, () => line));
    const editor = new HeaderSectionEditor(isScannerField, ADDS[1]);
    const out = editor.push(chunk);
    assert.equal(out.length, 1, 'one view for a run of kept lines');
    assert.equal(out[0].buffer, chunk.buffer, 'a view, not a copy');
    assert.equal(out[0].length, chunk.length);
  });

  it('drops a field and its continuation lines across chunk boundaries', () => {
    const chunks = [b('Subject: a\r\nX-Sp'), b('am-Flag'), b(': YES\r\n\tmore\r'), b('\n'), b(' more\r\nTo: b\r\n')];
    assert.equal(streamed(chunks, isScannerField, [], false).toString(), 'Subject: a\r\nTo: b\r\n');
  });
});
