import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { endsAsZip, formatTable, identify } from '../../src/lib/content_formats';
import { BANNED_TYPES, bannedTypeOf, extensionOf } from '../../src/lib/banned_types';
import { TarReader } from '../../src/lib/tar_reader';
import { tarOf } from '../../src/lib/tar_archive';
import { fileNames } from '../../src/lib/mime_params';
import { zip } from '../support/zip';

describe('content formats: what a part is, by its bytes', () => {
  it('knows formats by magic, whatever the name would say', () => {
    const cases: [Buffer, string][] = [
      [zip([{ name: 'a.txt', data: Buffer.from('hello') }]), 'zip'],
      [zlib.gzipSync(Buffer.from('hello')), 'gzip'],
      [Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4]), '7z'],
      [Buffer.from('BZh91AY&SY', 'latin1'), 'bzip2'],
      [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4]), 'xz'],
      [Buffer.from('LZIP\x01', 'latin1'), 'lzip'],
      [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]), 'zstd'],
      [Buffer.from([0x1f, 0x9d, 0x90]), 'compress'],
      [Buffer.from([0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]), 'lzma'],
      [tarOf([{ name: 'a', data: Buffer.from('x') }]), 'tar'],
      [Buffer.from('xar!\x00\x1c\x00\x01', 'latin1'), 'xar'],
      [Buffer.from('%PDF-1.7\n', 'latin1'), 'pdf'],
      [Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), 'ole2'],
      [Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1'), 'rar'],
    ];
    for (const [bytes, id] of cases) assert.equal(identify(bytes)?.id, id, id);
    assert.equal(identify(Buffer.from('just some text\r\n')), undefined);
    assert.equal(identify(Buffer.from([0x5d, 0, 0, 0x81, 0])), undefined, 'not a dictionary size: not LZMA');
  });

  it('marks XAR as never sent to clamd, and every relay-opened format with how it is opened', () => {
    const table = formatTable();
    assert.ok(table.find((f) => f.id === 'xar')?.unsafe);
    for (const f of table.filter((r) => r.row === 'relay')) assert.ok(f.opener, f.id);
    assert.equal(new Set(table.map((f) => f.id)).size, table.length, 'one row per format');
  });

  it('finds a ZIP at the end of other bytes (self-extracting, appended to a picture)', () => {
    const archive = zip([{ name: 'a.txt', data: Buffer.from('hello') }]);
    const withPrefix = Buffer.concat([Buffer.from('\xff\xd8\xff\xe0 a picture', 'latin1'), archive]);
    assert.equal(identify(withPrefix), undefined);
    assert.ok(endsAsZip(withPrefix.subarray(-65_557)));
    assert.ok(!endsAsZip(Buffer.concat([archive, Buffer.from('trailing')])), 'an end record must end the file (with its comment)');
  });
});

describe('banned types: by content and by name', () => {
  const pe = (dll: boolean): Buffer => {
    const b = Buffer.alloc(512);
    b.write('MZ', 0, 'latin1');
    b.writeUInt32LE(0x80, 0x3c);
    b.write('PE\0\0', 0x80, 'latin1');
    b.writeUInt16LE(dll ? 0x2102 : 0x0102, 0x80 + 22);
    return b;
  };

  it('tells a program from a library by the PE header, whatever it is called', () => {
    assert.equal(bannedTypeOf(['exe', 'dll'], pe(false), ['holiday.jpg']), 'exe');
    assert.equal(bannedTypeOf(['exe', 'dll'], pe(true), ['holiday.jpg']), 'dll');
    assert.equal(bannedTypeOf(['dll'], pe(false), []), undefined);
    assert.equal(bannedTypeOf([], pe(false), ['a.exe']), undefined, 'nothing banned by default');
  });

  it('reads the extension as Windows does (case, trailing dots and blanks, folders)', () => {
    assert.equal(extensionOf('Invoice.PDF.exe. '), 'exe');
    assert.equal(extensionOf('dir\\sub/run.JS'), 'js');
    assert.equal(extensionOf('noext'), undefined);
    assert.equal(bannedTypeOf(['script'], Buffer.from('plain'), ['report.vbs']), 'script');
    assert.equal(bannedTypeOf(['html'], Buffer.from('<!DOCTYPE html><html>'), []), 'html');
    assert.equal(bannedTypeOf(['html'], Buffer.from('just text'), ['notes.txt']), undefined);
  });

  it('takes every name a reader could: RFC 2231 continuations and charsets, encoded words, plain readings', () => {
    assert.ok(fileNames(`attachment; filename*=UTF-8''evil%2Eexe`, 'filename').includes('evil.exe'));
    assert.ok(fileNames('attachment; filename*0="ev"; filename*1="il.exe"', 'filename').includes('evil.exe'));
    assert.ok(fileNames('application/x; name="=?utf-8?B?ZXZpbC5leGU=?="', 'name').includes('evil.exe'));
    assert.ok(fileNames('application/x; name="=?utf-8?Q?evil=2Eexe?="', 'name').includes('evil.exe'));
  });
});

describe('tar reader: the members an unpacker hands back', () => {
  it('reads members, long names and sizes across any chunking', () => {
    const long = `${'d/'.repeat(80)}file.bin`;
    const data = Buffer.alloc(1500, 7);
    // a GNU long-name record before the member, as bsdtar writes one
    const nameRecord = Buffer.from(`${long}\0`);
    const header = (name: string, size: number, type: string): Buffer => {
      const h = Buffer.alloc(512);
      h.write(name.slice(0, 99), 0, 'latin1');
      h.write('0000644\0', 100);
      h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
      h.write('ustar  \0', 257, 'latin1');
      h.write(type, 156, 'latin1');
      h.fill(32, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      return h;
    };
    const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
    const stream = Buffer.concat([
      header('././@LongLink', nameRecord.length, 'L'), pad(nameRecord), header('short', data.length, '0'), pad(data),
      header('dir/', 0, '5'), header('empty', 0, '0'), Buffer.alloc(1024),
    ]);
    for (const size of [1, 7, 512, 100_000]) {
      const seen: { name: string; bytes: number }[] = [];
      const reader = new TarReader({
        member: (name) => seen.push({ name, bytes: 0 }),
        data: (b) => { seen[seen.length - 1].bytes += b.length; },
        memberEnd: () => undefined,
      });
      for (let i = 0; i < stream.length; i += size) reader.write(stream.subarray(i, i + size));
      reader.end();
      assert.equal(reader.error, undefined);
      assert.deepEqual(seen, [{ name: long, bytes: 1500 }, { name: 'empty', bytes: 0 }], `chunks of ${size}`);
    }
  });

  it('refuses a stream cut inside a member, and a header with a bad checksum', () => {
    const one = tarOf([{ name: 'a', data: Buffer.alloc(600, 1) }]);
    const cut = new TarReader({ member: () => undefined, data: () => undefined, memberEnd: () => undefined });
    cut.write(one.subarray(0, 700));
    cut.end();
    assert.match(cut.error ?? '', /ends inside a member/);
    const bad = Buffer.from(one);
    bad[0] ^= 1;
    const broken = new TarReader({ member: () => undefined, data: () => undefined, memberEnd: () => undefined });
    broken.write(bad);
    assert.match(broken.error ?? '', /checksum/);
  });
});

describe('docs/containers.md: the one table, as the code has it', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'containers.md'), 'utf8');
  const who = { relay: 'the relay', clamd: 'clamd', none: 'nobody here: not scanned' } as const;

  it('has a row for every format, saying who opens it', () => {
    for (const f of formatTable()) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${f.id}\` |`));
      assert.ok(row, `no row for ${f.id}`);
      const cell = row.split('|')[2].trim();
      assert.equal(cell, f.unsafe ? 'never sent to clamd: not scanned' : who[f.row], f.id);
    }
  });

  it('lists every banned type with its extensions', () => {
    for (const t of BANNED_TYPES) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${t.name}\` |`));
      assert.ok(row, `no row for ${t.name}`);
      for (const e of t.extensions) assert.ok(row.includes(`.${e} `) || row.includes(`.${e} |`), `${t.name}: .${e}`);
    }
  });
});
