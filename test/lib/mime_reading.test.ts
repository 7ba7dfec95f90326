import assert from 'node:assert/strict';
import { LeafInfo, MimeWalker, PRIMARY_READING, Reading } from '../../src/lib/mime_reading';
import { readParams } from '../../src/lib/mime_params';

interface Leaf {
  info: LeafInfo;
  bytes: Buffer;
}

/** Walks `text` in one reading; the leaves it hands on, decoded, and the walker. */
function walk(
  text: string, reading: Partial<Reading> = {}, limits = { maxDepth: 17, maxLeaves: 10000 },
): { leaves: Leaf[]; walker: MimeWalker } {
  const leaves: Leaf[] = [];
  const walker = new MimeWalker({ ...PRIMARY_READING, ...reading }, limits, {
    leafStart(info) {
      const leaf = { info, bytes: Buffer.alloc(0) };
      leaves.push(leaf);
      return { data: (b) => { leaf.bytes = Buffer.concat([leaf.bytes, b]); }, end: () => undefined };
    },
  });
  for (const line of text.split(/(?<=\r\n)/)) walker.line(Buffer.from(line, 'latin1'));
  walker.end();
  return { leaves, walker };
}

const lines = (...l: string[]): string => l.join('\r\n');
const PAYLOAD = 'payload bytes \x00\x01\xff';
const B64 = Buffer.from(PAYLOAD, 'latin1').toString('base64');

function multipart(
  delimiter: string, partHeader: string[] = ['Content-Transfer-Encoding: base64'], body = [B64],
  top = ['Content-Type: multipart/mixed; boundary="BB"'],
): string {
  return lines(...top, '', 'preamble', '--BB', 'Content-Type: text/plain', '', 'hello', delimiter, ...partHeader, '', ...body,
    '--BB--', '');
}

const decoded = (leaves: Leaf[]): string[] => leaves.map((l) => l.bytes.toString('latin1'));

describe('lib/mime_reading: the MIME walk as readers read', () => {
  it('hands on each leaf decoded, with its path; the line ending before a boundary belongs to the boundary', () => {
    const { leaves, walker } = walk(multipart('--BB'));
    assert.deepEqual(decoded(leaves), ['hello', PAYLOAD]);
    assert.deepEqual(leaves.map((l) => l.info.path), ['1.1', '1.2']);
    assert.equal(walker.malformed, undefined);
    assert.equal(walker.triggered.size, 0, 'a plain message reads one way');
  });

  it('takes a boundary with blank padding as one (RFC 2046) and notes that exact-match readers do not', () => {
    const { leaves, walker } = walk(multipart('--BB\t '));
    assert.deepEqual(decoded(leaves), ['hello', PAYLOAD]);
    assert.ok(walker.triggered.get('boundary')?.has('exact'));
    const exact = walk(multipart('--BB\t '), { boundary: 'exact' });
    assert.equal(exact.leaves.length, 1, 'an exact-match reader reads the padded line as text of the first part');
  });

  it('refuses a line that begins with the boundary but is no boundary line; a prefix reader takes it as one', () => {
    const { walker } = walk(multipart('--BB\x0b'));
    assert.match(walker.malformed ?? '', /begins with the boundary/);
    assert.deepEqual(decoded(walk(multipart('--BBx'), { boundary: 'prefix' }).leaves), ['hello', PAYLOAD]);
  });

  it('reads a field left open by ";" as RFC 5322 does, and the joined reading as clamd does', () => {
    const top = ['Content-Disposition: inline;', 'Content-Type: multipart/mixed; boundary="BB"'];
    const rfc = walk(multipart('--BB', undefined, undefined, top));
    assert.deepEqual(decoded(rfc.leaves), ['hello', PAYLOAD]);
    assert.deepEqual([...rfc.walker.triggered.get('unfold') ?? []], ['join']);
    const joined = walk(multipart('--BB', undefined, undefined, top), { unfold: 'join' });
    assert.equal(joined.leaves.length, 1);
    assert.equal(joined.leaves[0].info.contentType, 'text/plain');
  });

  it('notes a line of extra dashes that clamd takes for the boundary, and reads the part whole', () => {
    const text = multipart('--BB', undefined, ['---BB', B64]);
    const rfc = walk(text);
    assert.equal(rfc.leaves.length, 2, 'the dashes line is data of the part');
    assert.ok(rfc.walker.triggered.get('boundary')?.has('dashes'));
    assert.equal(walk(text, { boundary: 'dashes' }).leaves.length, 3, 'to clamd it starts an empty part');
  });

  it('refuses a header line over 998 characters, a non-field line in a part header, and two different Content-Types', () => {
    assert.match(walk(multipart('--BB', [`X-A: ${'a'.repeat(995)}`, 'Content-Transfer-Encoding: base64'])).walker.malformed ?? '', /longer than 998/);
    assert.match(walk(multipart('--BB', ['garbage', 'Content-Transfer-Encoding: base64'])).walker.malformed ?? '', /not a header field/);
    const twice = walk(multipart('--BB', ['Content-Type: text/plain', 'Content-Type: application/zip',
      'Content-Transfer-Encoding: base64']));
    assert.match(twice.walker.malformed ?? '', /2 different content-type fields/);
  });

  it('decodes quoted-printable soft breaks followed by blanks, and notes readers that keep them', () => {
    const { leaves, walker } = walk(multipart('--BB', ['Content-Transfer-Encoding: quoted-printable'], ['ab=  ', 'c=3D=41', 'd']));
    assert.equal(decoded(leaves)[1], 'abc=A\r\nd');
    assert.ok(walker.triggered.get('qp')?.has('literal'));
  });

  it('decodes a uuencoded block in a text part as a leaf of its own', () => {
    const { leaves } = walk(multipart('--BB', ['Content-Type: text/plain'], ['begin 644 a.txt', '#86)C', '`', 'end']));
    assert.deepEqual(leaves.map((l) => l.info.path), ['1.1', '1.2', '1.2/uu1']);
    assert.equal(leaves[2].bytes.toString(), 'abc');
  });

  it('notes base64 readers that differ on junk: "-" and "_" (URL alphabet), stopping at "=" or junk', () => {
    const { walker } = walk(multipart('--BB', undefined, ['QUJD-_', 'RA==QQ==']));
    assert.deepEqual([...walker.triggered.get('base64') ?? []].sort(), ['python', 'stop', 'url']);
    assert.equal(decoded(walk(multipart('--BB', undefined, ['QUJD', 'RA==', 'QQ=='])).leaves)[1], 'ABCDA');
    const both = walk(multipart('--BB', undefined, ['QUJD', 'RA==', 'QQ==']), { base64: ['skip', 'stop'] });
    assert.deepEqual(decoded(both.leaves).slice(1), ['ABCDA', 'ABCD'], 'each decoding listed is a leaf of its own');
    assert.equal(both.leaves[2].info.path, '1.2/base64-stop');
  });

  it('walks into attached messages, and stops at clamd\'s MaxRecursion and MaxFiles', () => {
    const inner = lines('Content-Type: message/rfc822', '', 'Subject: inner', 'Content-Type: multipart/mixed; boundary="CC"', '',
      '--CC', 'Content-Transfer-Encoding: base64', '', B64, '--CC--');
    const text = lines('Content-Type: multipart/mixed; boundary="BB"', '', '--BB', inner, '--BB--', '');
    const { leaves } = walk(text);
    assert.deepEqual(leaves.map((l) => [l.info.path, l.bytes.toString('latin1')]), [['1.1.1.1', PAYLOAD]]);
    assert.match(walk(text, {}, { maxDepth: 2, maxLeaves: 10 }).walker.overLimit ?? '', /deeper than 2/);
    assert.match(walk(multipart('--BB'), {}, { maxDepth: 17, maxLeaves: 1 }).walker.overLimit ?? '', /more than 1 MIME parts/);
  });

  it('walks into an attached message sent in base64 too (readers that decode it first), beside scanning it decoded', () => {
    const inner = lines('Subject: inner', 'Content-Type: multipart/mixed; boundary="CC"', '', '--CC\t',
      'Content-Transfer-Encoding: base64', '', B64, '--CC--', '');
    const text = lines('Content-Type: multipart/mixed; boundary="BB"', '', '--BB', 'Content-Type: message/rfc822',
      'Content-Transfer-Encoding: base64', '', ...Buffer.from(inner).toString('base64').match(/.{1,76}/g)!, '--BB--', '');
    const { leaves, walker } = walk(text);
    // 1.1: the part decoded; 1.1.1.1: its attachment, walked in the decoded message; 1.1.1: the body of the
    // part's lines read as a message as they are (Python's email ignores a message/* part's encoding)
    assert.deepEqual(leaves.map((l) => l.info.path).sort(), ['1.1', '1.1.1', '1.1.1.1']);
    assert.equal(leaves.find((l) => l.info.path === '1.1')!.bytes.toString('latin1'), inner);
    assert.equal(leaves.find((l) => l.info.path === '1.1.1.1')!.bytes.toString('latin1'), PAYLOAD);
    assert.ok(walker.triggered.get('boundary')?.has('exact'), "the inner walk's findings are the message's");
  });

  it('notes what loose readers take from anywhere in a header (ripmime): a boundary in a comment or another field', () => {
    const text = multipart('--BB', undefined, undefined, ['Content-Type: multipart/mixed; xboundary=ZZ; boundary="BB"']);
    const { walker } = walk(text);
    assert.ok(walker.triggered.get('params')?.has('loose-first'));
    const loose = walk(text, { params: 'loose-first' });
    assert.equal(loose.leaves.length, 0, 'with boundary ZZ, no delimiter: the whole body is preamble');
    assert.ok(walk(lines('Subject: boundary=ZZ', 'Content-Type: multipart/mixed; boundary="BB"', '', '--BB', '', 'x', '--BB--', ''))
      .walker.triggered.get('params')?.has('loose-first'));
  });

  it('asks its sink for the decodings of each part: only the part another decoder reads otherwise gets them', () => {
    const text = lines('Content-Type: multipart/mixed; boundary="BB"', '', '--BB', 'Content-Transfer-Encoding: base64', '', B64,
      '--BB', 'Content-Transfer-Encoding: base64', '', 'QUJD-_', '--BB--', '');
    const noted = new Map<string, Set<string>>();
    const sources: (string | undefined)[] = [];
    const sink = {
      leafStart(info: LeafInfo) { sources.push(info.source); return { data: () => undefined, end: () => undefined }; },
      decodingsOf: (at: string, enc: string) => [...(noted.get(`${at}:${enc}`) ?? [])],
      noteDecoding: (at: string, enc: string, mode: string) => {
        const set = noted.get(`${at}:${enc}`) ?? new Set<string>();
        noted.set(`${at}:${enc}`, set.add(mode));
      },
    };
    const once = (): void => {
      const w = new MimeWalker(PRIMARY_READING, { maxDepth: 17, maxLeaves: 100 }, sink);
      for (const line of text.split(/(?<=\r\n)/)) w.line(Buffer.from(line, 'latin1'));
      w.end();
    };
    once();
    assert.equal(noted.size, 1, 'one part read otherwise');
    sources.length = 0;
    once();
    // the second part: skip, then url and stop (its own); the first: skip only
    assert.equal(sources.length, 4, sources.join(' '));
    assert.equal(new Set(sources).size, 4, 'each decoding of each part has a source of its own');
  });

  it('reads parameters with quoted strings, comments and RFC 2231 continuations', () => {
    assert.equal(readParams('multipart/mixed; boundary="a;b" (c)', 'rfc').get('boundary'), 'a;b');
    assert.equal(readParams('multipart/mixed; boundary=BB(c)', 'rfc').get('boundary'), 'BB');
    assert.equal(readParams('multipart/mixed; boundary=BB(c)', 'plain').get('boundary'), 'BB(c)');
    assert.equal(readParams("x/y; boundary*0=\"ab\"; boundary*1*=%41", 'rfc').get('boundary'), 'abA');
  });
});
