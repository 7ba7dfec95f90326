import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { checkZipStructure, ZipCheck } from '../../src/lib/zip_structure';
import { zip } from '../support/zip';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const LOCAL_SIG = 0x04034b50;
const CENTRAL_SIG = 0x02014b50;
const END_SIG = 0x06054b50;

function check(z: Buffer): ZipCheck {
  return checkZipStructure(z.length, (offset, length) => z.subarray(offset, offset + length));
}

function assertOk(z: Buffer, expected: { entries: number; zip64?: boolean; prefixBytes?: number }): void {
  const r = check(z);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  const { members, ...rest } = r;
  assert.deepEqual(rest, { ok: true, zip64: false, prefixBytes: 0, ...expected });
  assert.equal(members.length, expected.entries);
  // each member's data lies inside the archive, after its local header
  for (const m of members) assert.ok(m.dataStart >= 30 && m.dataStart + m.compressedSize <= z.length, m.name.toString());
}

function assertRefused(z: Buffer, reason: RegExp): void {
  const r = check(z);
  assert.equal(r.ok, false, `expected a refusal, got ${JSON.stringify(r)}`);
  if (!r.ok) assert.match(r.reason, reason);
}

// A tiny writer with the knobs the checks care about: method, data descriptor, raw placement.
interface Spec {
  name: string;
  data: Buffer;
  method?: 0 | 8;
  /** bit 3: local CRC and sizes left zero, a descriptor (with or without signature) after the data */
  descriptor?: 'signed' | 'bare';
}

interface Built {
  local: Buffer;
  central: (offset: number) => Buffer;
}

function member(spec: Spec): Built {
  const name = Buffer.from(spec.name, 'utf8');
  const method = spec.method ?? 8;
  const body = method === 8 ? zlib.deflateRawSync(spec.data) : spec.data;
  const crc = zlib.crc32(spec.data);
  const flags = spec.descriptor ? 0x0008 : 0;
  const local = Buffer.alloc(30);
  local.writeUInt32LE(LOCAL_SIG, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(flags, 6);
  local.writeUInt16LE(method, 8);
  if (!spec.descriptor) {
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(spec.data.length, 22);
  }
  local.writeUInt16LE(name.length, 26);
  const pieces: Buffer[] = [local, name, body];
  if (spec.descriptor) {
    const d = Buffer.alloc(16);
    d.writeUInt32LE(0x08074b50, 0);
    d.writeUInt32LE(crc, 4);
    d.writeUInt32LE(body.length, 8);
    d.writeUInt32LE(spec.data.length, 12);
    pieces.push(spec.descriptor === 'signed' ? d : d.subarray(4));
  }
  const central = (offset: number): Buffer => {
    const c = Buffer.alloc(46);
    c.writeUInt32LE(CENTRAL_SIG, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(spec.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    return Buffer.concat([c, name]);
  };
  return { local: Buffer.concat(pieces), central };
}

function endRecord(count: number, cdSize: number, cdOffset: number, comment: Buffer = Buffer.alloc(0)): Buffer {
  const e = Buffer.alloc(22);
  e.writeUInt32LE(END_SIG, 0);
  e.writeUInt16LE(count, 8);
  e.writeUInt16LE(count, 10);
  e.writeUInt32LE(cdSize, 12);
  e.writeUInt32LE(cdOffset, 16);
  e.writeUInt16LE(comment.length, 20);
  return Buffer.concat([e, comment]);
}

/** Members one after another, then their central directory and end record. */
function archive(specs: Spec[], comment?: Buffer): Buffer {
  const built = specs.map(member);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const b of built) {
    centrals.push(b.central(offset));
    locals.push(b.local);
    offset += b.local.length;
  }
  const cd = Buffer.concat(centrals);
  return Buffer.concat([...locals, cd, endRecord(built.length, cd.length, offset, comment)]);
}

const text = (n: number): Buffer => Buffer.from('All work and no play makes Jack a dull boy. '.repeat(n));

// Offsets inside a finished archive without comment, for editing bytes in the negative tests.
function endAt(z: Buffer): number {
  return z.lastIndexOf(Buffer.from('PK\x05\x06', 'latin1'));
}

function centralAt(z: Buffer, index: number): number {
  const e = endAt(z);
  let at = e - z.readUInt32LE(e + 12);
  for (let i = 0; i < index; i++) at += 46 + z.readUInt16LE(at + 28) + z.readUInt16LE(at + 30) + z.readUInt16LE(at + 32);
  return at;
}

function localAt(z: Buffer, index: number): number {
  return z.readUInt32LE(centralAt(z, index) + 42);
}

describe('ZIP structure: what central-directory and streaming readers would both see', () => {
  let dir = '';
  const tool = (cmd: string, args: string[], input?: string): Buffer =>
    execFileSync(cmd, args, { cwd: dir, input, stdio: ['pipe', 'pipe', 'pipe'] });
  const file = (name: string): Buffer => fs.readFileSync(path.join(dir, name));

  before(() => {
    dir = tempDir('esets-zip-');
    fs.writeFileSync(path.join(dir, 'a.txt'), text(40));
    fs.writeFileSync(path.join(dir, 'b.bin'), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    fs.writeFileSync(path.join(dir, 'empty'), '');
  });

  after(() => {
    removeTempDir(dir);
  });

  describe('real archives', () => {
    it('accepts an Info-ZIP archive with a deflated, a stored and an empty member', () => {
      tool('zip', ['-q', '-X', 'plain.zip', 'a.txt', 'b.bin', 'empty']);
      assertOk(file('plain.zip'), { entries: 3 });
    });

    it('accepts a 7-Zip archive', () => {
      tool('7zz', ['a', '-tzip', '-bd', '-bso0', 'seven.zip', 'a.txt', 'b.bin', 'empty']);
      assertOk(file('seven.zip'), { entries: 3 });
    });

    it('accepts data descriptors with the local sizes left zero (zip -fd)', () => {
      tool('zip', ['-q', '-fd', 'fd.zip', 'a.txt', 'b.bin']);
      const z = file('fd.zip');
      assert.equal(z.readUInt16LE(6) & 0x0008, 0x0008, 'zip -fd sets bit 3');
      assertOk(z, { entries: 2 });
    });

    it('accepts a streamed archive (bit 3, zip64 local extra, 64-bit descriptor)', () => {
      const z = tool('zip', ['-q', '-', '-'], 'data from a pipe');
      assert.equal(z.readUInt16LE(6) & 0x0008, 0x0008, 'zip to a pipe sets bit 3');
      assertOk(z, { entries: 1 });
    });

    it('accepts a zip64 archive and says so (zip -fz)', () => {
      tool('zip', ['-q', '-fz', 'z64.zip', 'a.txt', 'b.bin']);
      assertOk(file('z64.zip'), { entries: 2, zip64: true });
    });

    it('accepts prepended bytes, with offsets relative to the archive or fixed by zip -A', () => {
      tool('zip', ['-q', 'inner.zip', 'a.txt', 'b.bin']);
      const stub = Buffer.alloc(1000, 0x90);
      const joined = Buffer.concat([stub, file('inner.zip')]);
      assertOk(joined, { entries: 2, prefixBytes: 1000 });
      fs.writeFileSync(path.join(dir, 'sfx.zip'), joined);
      tool('zip', ['-q', '-A', 'sfx.zip']);
      const fixed = file('sfx.zip');
      assert.equal(localAt(fixed, 0), 1000, 'zip -A makes the offsets count from the file\'s start');
      assertOk(fixed, { entries: 2, prefixBytes: 1000 });
    });

    it('refuses a data descriptor that contradicts the central directory', () => {
      tool('zip', ['-q', '-fd', 'fd-bad.zip', 'a.txt']);
      const z = file('fd-bad.zip');
      const descriptor = z.indexOf(Buffer.from('PK\x07\x08', 'latin1'));
      z.writeUInt32LE(z.readUInt32LE(descriptor + 4) ^ 1, descriptor + 4);
      assertRefused(z, /data descriptor of "a\.txt" disagrees/);
    });
  });

  describe('archives built here', () => {
    it('accepts the support writer\'s archives and an empty archive', () => {
      assertOk(zip([{ name: 'x.txt', data: text(3) }, { name: 'y.txt', data: text(9) }]), { entries: 2 });
      assertOk(archive([]), { entries: 0 });
    });

    it('accepts stored and empty members, with and without descriptor signatures', () => {
      assertOk(archive([
        { name: 'stored', data: text(2), method: 0 },
        { name: 'empty', data: Buffer.alloc(0), method: 0 },
        { name: 'signed', data: text(5), descriptor: 'signed' },
        { name: 'bare', data: text(5), descriptor: 'bare' },
        { name: 'empty-described', data: Buffer.alloc(0), method: 0, descriptor: 'signed' },
      ]), { entries: 5 });
    });

    it('reads a large archive a window at a time', () => {
      const big = archive([{ name: 'big', data: Buffer.alloc(3 * 1024 * 1024, 7), method: 0 }, { name: 'small', data: text(1) }]);
      let largest = 0;
      const r = checkZipStructure(big.length, (offset, length) => {
        largest = Math.max(largest, length);
        return big.subarray(offset, offset + length);
      });
      assert.ok(r.ok && r.entries === 2 && !r.zip64 && r.prefixBytes === 0);
      const listed = r.members.map((m) => [m.name.toString(), m.size, m.method]);
      assert.deepEqual(listed, [['big', 3 * 1024 * 1024, 0], ['small', text(1).length, 8]]);
      assert.ok(largest <= 65557, `read ${largest} bytes at once`);
    });
  });

  describe('disagreements', () => {
    it('refuses a local header that understates the compressed size', () => {
      const z = archive([{ name: 'a.txt', data: text(40) }, { name: 'b.txt', data: text(2) }]);
      const csize = z.readUInt32LE(centralAt(z, 0) + 20);
      z.writeUInt32LE(10, localAt(z, 0) + 18);
      assertRefused(z, new RegExp(`local header of "a\\.txt" says compressed size 10, central directory says ${csize}`));
    });

    it('refuses a local header with another name', () => {
      const z = archive([{ name: 'a.txt', data: text(4) }]);
      z.write('e', localAt(z, 0) + 30 + 4, 'latin1');
      assertRefused(z, /local header of "a\.txt" names "a\.txe"/);
    });

    it('refuses a local header with another method', () => {
      const z = archive([{ name: 'a.txt', data: text(4) }]);
      z.writeUInt16LE(0, localAt(z, 0) + 8);
      assertRefused(z, /local header of "a\.txt" says method 0, central directory says 8/);
    });

    it('refuses a local member that the central directory leaves out', () => {
      const hidden = member({ name: 'hidden.exe', data: text(3) }).local;
      const a = member({ name: 'a.txt', data: text(4) });
      const cd = a.central(0);
      const z = Buffer.concat([a.local, hidden, cd, endRecord(1, cd.length, a.local.length + hidden.length)]);
      assertRefused(z, /local member "hidden\.exe" at offset \d+ is not in the central directory/);
    });

    it('refuses a local member hidden in the prepended bytes', () => {
      const hidden = member({ name: 'hidden.exe', data: text(3) }).local;
      assertRefused(Buffer.concat([hidden, archive([{ name: 'a.txt', data: text(4) }])]), /local member "hidden\.exe" at offset 0/);
    });

    it('refuses bytes between members that no entry accounts for', () => {
      const a = member({ name: 'a.txt', data: text(4) });
      const b = member({ name: 'b.txt', data: text(4) });
      const gap = Buffer.alloc(7, 0x41);
      const cd = Buffer.concat([a.central(0), b.central(a.local.length + gap.length)]);
      const z = Buffer.concat([a.local, gap, b.local, cd, endRecord(2, cd.length, a.local.length + gap.length + b.local.length)]);
      assertRefused(z, /7 bytes at offset \d+ belong to no member/);
    });

    it('refuses two central entries on one local header', () => {
      const a = member({ name: 'a.txt', data: text(4) });
      const cd = Buffer.concat([a.central(0), member({ name: 'b.txt', data: text(4) }).central(0)]);
      assertRefused(Buffer.concat([a.local, cd, endRecord(2, cd.length, a.local.length)]), /"a\.txt" and "b\.txt" share one local header/);
    });

    it('refuses a member nested inside the stored data of another', () => {
      const inner = member({ name: 'inner', data: text(2), method: 0 });
      const outer = member({ name: 'outer', data: inner.local, method: 0 });
      const cd = Buffer.concat([outer.central(0), inner.central(30 + 'outer'.length)]);
      const z = Buffer.concat([outer.local, cd, endRecord(2, cd.length, outer.local.length)]);
      assertRefused(z, /members "outer" and "inner" overlap/);
    });

    it('refuses a name that appears twice', () => {
      assertRefused(archive([{ name: 'a.txt', data: text(1) }, { name: 'a.txt', data: text(2) }]), /name "a\.txt" appears twice/);
      assertOk(archive([{ name: 'a.txt', data: text(1) }, { name: 'A.txt', data: text(2) }]), { entries: 2 });
    });

    it('refuses an end record whose entry count is wrong either way', () => {
      const fewer = archive([{ name: 'a.txt', data: text(1) }, { name: 'b.txt', data: text(2) }]);
      fewer.writeUInt16LE(1, endAt(fewer) + 8);
      fewer.writeUInt16LE(1, endAt(fewer) + 10);
      assertRefused(fewer, /end record says 1 entries, the central directory holds more/);
      const more = archive([{ name: 'a.txt', data: text(1) }]);
      more.writeUInt16LE(2, endAt(more) + 8);
      more.writeUInt16LE(2, endAt(more) + 10);
      assertRefused(more, /end record says 2 entries, the central directory holds 1/);
    });

    it('refuses a multi-disk archive', () => {
      const z = archive([{ name: 'a.txt', data: text(1) }]);
      z.writeUInt16LE(1, endAt(z) + 4);
      z.writeUInt16LE(1, endAt(z) + 6);
      assertRefused(z, /several disks/);
    });

    it('refuses an end record hidden in the comment of another', () => {
      const inner = archive([{ name: 'a.txt', data: text(1) }]);
      const cdStart = centralAt(inner, 0);
      const innerTail = inner.subarray(cdStart);
      const outer = archive([{ name: 'a.txt', data: text(1) }], innerTail);
      assertRefused(outer, /end-of-central-directory record hides in the comment of another/);
    });

    it('ignores a stray end signature in the comment that describes nothing', () => {
      const comment = Buffer.from('see PK\x05\x06 here, padded to be long enough', 'latin1');
      assertOk(archive([{ name: 'a.txt', data: text(1) }], comment), { entries: 1 });
    });

    it('refuses a central entry that points at no local header', () => {
      const z = archive([{ name: 'a.txt', data: text(1) }]);
      z.writeUInt32LE(5, centralAt(z, 0) + 42);
      assertRefused(z, /no local header for "a\.txt"/);
    });

    it('refuses an end record whose count contradicts the zip64 end record', () => {
      tool('zip', ['-q', '-fz', 'z64-bad.zip', 'a.txt', 'b.bin']);
      const z = file('z64-bad.zip');
      z.writeUInt16LE(1, endAt(z) + 8);
      z.writeUInt16LE(1, endAt(z) + 10);
      assertRefused(z, /end record and zip64 end record disagree/);
    });

    it('refuses a zip64 count beyond the limit without walking it', () => {
      tool('zip', ['-q', '-fz', 'many.zip', 'b.bin']);
      const z = file('many.zip');
      const record = z.indexOf(Buffer.from('PK\x06\x06', 'latin1'));
      z.writeBigUInt64LE(2_000_000n, record + 24);
      z.writeBigUInt64LE(2_000_000n, record + 32);
      z.writeUInt16LE(0xffff, endAt(z) + 8);
      z.writeUInt16LE(0xffff, endAt(z) + 10);
      assertRefused(z, /more than 1000000/);
    });

    it('refuses a truncated file and a file that is no archive', () => {
      const z = archive([{ name: 'a.txt', data: text(1) }]);
      assertRefused(z.subarray(0, z.length - 5), /no end-of-central-directory record/);
      assertRefused(Buffer.from('hello'), /no end-of-central-directory record/);
    });
  });
});
