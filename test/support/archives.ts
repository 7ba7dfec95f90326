// Archive and compressed-stream samples for scanning tests: each builder takes
// the member's name and content and returns the archive's bytes. Builders run
// the installed Debian tools (Info-ZIP zip, 7zz, bsdtar, gcab, the compressors)
// in a private temp folder removed afterwards, or write the format in Node where
// that is simpler. Everything is synchronous and deterministic: members get a
// fixed mtime (2020-01-01 UTC), owner 0:0, and the build time that some tools
// write anyway (ISO 9660 volume dates, xar's TOC) is replaced by that fixed one.
//
// The bombs (a few KB to a few MB, unpacking to GiBs) are built in well under
// 5 s each: where a tool is too slow on 1 GiB of zeros (gzip, bzip2, xz, lzip),
// one compressed chunk is repeated, as the format allows (a deflate block ended
// by a full flush; concatenated streams/members/frames for bz2, xz, lzip, lz4).
//
// 7zz stores a member that does not shrink (EICAR alone): give the 7zz builders
// a few KB that compress (sevenZipZip checks the method it wrote).

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { EICAR } from './clamd';
import { zip, ZipMember } from './zip';
import { removeTempDir, tempDir } from './temp_dirs';

export interface ArchiveSample {
  format: string;
  /** archive: members listed/extracted by bsdtar or 7zz; stream: one compressed stream (bsdcat); pdf: an embedded file */
  kind: 'archive' | 'stream' | 'pdf';
  build(name: string, data: Buffer): Buffer;
}

export interface Member {
  name: string;
  data: Buffer;
}

/** The mtime every member gets */
export const FIXED_MTIME = new Date('2020-01-01T00:00:00Z');
const FIXED_SECONDS = FIXED_MTIME.getTime() / 1000;
const MIB = 1024 * 1024;

const TOOL_ENV = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };

function run(cmd: string, args: string[], cwd?: string, input?: Buffer): Buffer {
  return execFileSync(cmd, args, { cwd, input, env: TOOL_ENV, maxBuffer: 1024 * MIB, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs `fn` in a new temp folder, removed afterwards */
function inTemp<T>(fn: (dir: string) => T): T {
  const dir = tempDir('esets-archive-');
  try {
    return fn(dir);
  } finally {
    removeTempDir(dir);
  }
}

function checkName(name: string): void {
  if (!name || path.isAbsolute(name) || name.split('/').includes('..')) throw new Error(`bad member name: ${name}`);
}

/** Writes the members under `dir` with the fixed mtime; returns their names */
function writeMembers(dir: string, members: Member[]): string[] {
  for (const m of members) {
    checkName(m.name);
    const file = path.join(dir, m.name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, m.data);
    fs.chmodSync(file, 0o644);
    fs.utimesSync(file, FIXED_MTIME, FIXED_MTIME);
  }
  return members.map((m) => m.name);
}

// ---------------------------------------------------------------- zip

/** Info-ZIP zip; `options` e.g. ['-0'] (stored), ['-fz'] (zip64) */
export function infoZip(members: Member[], options: string[] = []): Buffer {
  return inTemp((dir) => {
    const names = writeMembers(dir, members);
    run('zip', ['-q', '-X', ...options, 'out.zip', ...names], dir);
    return fs.readFileSync(path.join(dir, 'out.zip'));
  });
}

/** Info-ZIP zip writing to a pipe: sizes and CRC follow the data (general purpose flag bit 3) */
export function zipWithDataDescriptor(members: Member[]): Buffer {
  const out = inTemp((dir) => run('zip', ['-q', '-X', '-', ...writeMembers(dir, members)], dir));
  if ((out.readUInt16LE(6) & 8) === 0) throw new Error('zip did not write a data descriptor');
  return out;
}

/** ZIP method ids (local header offset 8) that 7zz writes for its -mm names */
export const ZIP_METHOD_IDS: Record<string, number> = { Copy: 0, Deflate: 8, Deflate64: 9, BZip2: 12, LZMA: 14, XZ: 95, PPMd: 98 };

/**
 * 7zz -tzip -mm=METHOD. 7zz stores a member that does not shrink (EICAR alone does not): this
 * throws unless every local header carries the method asked for, so give it a few KB that compress.
 */
export function sevenZipZip(members: Member[], method: keyof typeof ZIP_METHOD_IDS | string): Buffer {
  const out = inTemp((dir) => {
    const names = writeMembers(dir, members);
    run('7zz', ['a', '-bso0', '-bsp0', '-tzip', `-mm=${method}`, '-mmt=1', 'out.zip', ...names], dir);
    return fs.readFileSync(path.join(dir, 'out.zip'));
  });
  for (const offset of localHeaders(out)) {
    const id = out.readUInt16LE(offset + 8);
    if (id !== ZIP_METHOD_IDS[method]) {
      throw new Error(`7zz wrote method ${id}, not ${method} (${ZIP_METHOD_IDS[method]}): member too small or incompressible`);
    }
  }
  return out;
}

function localHeaders(zipBytes: Buffer): number[] {
  // from the central directory, not by scanning the data
  const eocd = zipBytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('no end of central directory');
  const count = zipBytes.readUInt16LE(eocd + 10);
  let p = zipBytes.readUInt32LE(eocd + 16);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    offsets.push(zipBytes.readUInt32LE(p + 42));
    p += 46 + zipBytes.readUInt16LE(p + 28) + zipBytes.readUInt16LE(p + 30) + zipBytes.readUInt16LE(p + 32);
  }
  return offsets;
}

/**
 * One deflated member whose local header understates its sizes (compressed and uncompressed,
 * `fraction` of the real ones) while the central directory has the real ones.
 */
export function zipWithUnderstatedLocalSize(name: string, data: Buffer, fraction = 0.5): Buffer {
  const out = zip([{ name, data }]);
  const compressed = out.readUInt32LE(18);
  out.writeUInt32LE(Math.floor(compressed * fraction), 18);
  out.writeUInt32LE(Math.floor(data.length * fraction), 22);
  return out;
}

/** Zip in zip, `depth` zips deep (1: a zip of the member), EICAR (or `data`) innermost */
export function nested(depth: number, data: Buffer = Buffer.from(EICAR), name = 'eicar.com'): Buffer {
  let bytes = zip([{ name, data }]);
  for (let level = 2; level <= depth; level++) bytes = zip([{ name: `nested-${level - 1}.zip`, data: bytes }]);
  return bytes;
}

// ---------------------------------------------------------------- 7z

export const SEVEN_Z_METHODS = ['LZMA2', 'LZMA', 'PPMd', 'BZip2', 'Deflate', 'Deflate64', 'Copy'] as const;

export function sevenZip(members: Member[], method: (typeof SEVEN_Z_METHODS)[number] | string = 'LZMA2'): Buffer {
  return inTemp((dir) => {
    const names = writeMembers(dir, members);
    run('7zz', ['a', '-bso0', '-bsp0', '-t7z', `-m0=${method}`, '-mtc=off', '-mta=off', '-mmt=1', 'out.7z', ...names], dir);
    return fs.readFileSync(path.join(dir, 'out.7z'));
  });
}

// ---------------------------------------------------------------- tar, cpio, ar (Node)

function octal(value: number, width: number): string {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`${value} too large for a ${width}-byte tar field`);
  return digits.padStart(width - 1, '0') + '\0';
}

function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  let base = name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut < 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar name too long: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0);
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(FIXED_SECONDS, 12), 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0' + '00', 257);
  h.write('root', 265);
  h.write('root', 297);
  h.write(prefix, 345);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** A ustar archive (regular files only), padded to 10240-byte records as tar does */
export function tar(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    checkName(m.name);
    parts.push(tarHeader(m.name, m.data.length), m.data, Buffer.alloc((512 - (m.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  const body = Buffer.concat(parts);
  return Buffer.concat([body, Buffer.alloc((10240 - (body.length % 10240)) % 10240)]);
}

/** cpio "newc" (SVR4, no CRC), as `cpio -H newc` writes */
export function cpio(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  const entry = (ino: number, mode: number, nlink: number, name: string, data: Buffer): void => {
    const nameBytes = Buffer.from(name + '\0');
    const fields = [ino, mode, 0, 0, nlink, mode ? FIXED_SECONDS : 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''));
    parts.push(header, nameBytes, Buffer.alloc((4 - ((header.length + nameBytes.length) % 4)) % 4));
    parts.push(data, Buffer.alloc((4 - (data.length % 4)) % 4));
  };
  members.forEach((m, i) => { checkName(m.name); entry(i + 1, 0o100644, 1, m.name, m.data); });
  entry(0, 0, 1, 'TRAILER!!!', Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** A Unix ar archive: GNU-style names ("name/") up to 15 bytes, BSD "#1/len" beyond */
export function ar(members: Member[]): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')];
  for (const m of members) {
    checkName(m.name);
    const nameBytes = Buffer.from(m.name);
    const long = nameBytes.length > 15 || m.name.includes('/') || m.name.includes(' ');
    const field = long ? `#1/${nameBytes.length}` : `${m.name}/`;
    const size = m.data.length + (long ? nameBytes.length : 0);
    const header = field.padEnd(16) + String(FIXED_SECONDS).padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6)
      + '100644'.padEnd(8) + String(size).padEnd(10) + '`\n';
    parts.push(Buffer.from(header, 'latin1'));
    if (long) parts.push(nameBytes);
    parts.push(m.data);
    if (size % 2) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- libarchive, gcab

/** Replaces the ISO 9660 dates of the build time (ASCII 17-byte and binary 7-byte forms) with the fixed one */
function fixIsoDates(iso: Buffer, from: number, to: number): Buffer {
  const fixed = new Date(FIXED_MTIME);
  const ascii = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const binary = (d: Date): Buffer => Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(),
    d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);
  for (let s = from; s <= to; s++) {
    const d = new Date(s * 1000);
    for (const [needle, replacement] of [[Buffer.from(ascii(d)), Buffer.from(ascii(fixed))], [binary(d), binary(fixed)]]) {
      for (let i = iso.indexOf(needle); i >= 0; i = iso.indexOf(needle, i + 1)) {
        replacement.copy(iso, i);
        // the ASCII form is followed by hundredths of a second
        if (needle.length === 14) iso.write('00', i + 14);
      }
    }
  }
  return iso;
}

/** bsdtar --format iso9660 (with Rock Ridge and Joliet, libarchive's defaults) */
export function iso9660(members: Member[]): Buffer {
  return inTemp((dir) => {
    const names = writeMembers(dir, members);
    const from = Math.floor(Date.now() / 1000);
    const out = run('bsdtar', ['--format', 'iso9660', '--uid', '0', '--gid', '0', '-cf', '-', ...names], dir);
    return fixIsoDates(out, from, Math.ceil(Date.now() / 1000));
  });
}

/**
 * bsdtar --format xar, its TOC rewritten without what changes from build to build (times,
 * inode and device numbers): recompressed, with the header's lengths and the TOC's SHA-1 updated.
 */
export function xar(members: Member[]): Buffer {
  const out = inTemp((dir) => {
    const names = writeMembers(dir, members);
    return run('bsdtar', ['--format', 'xar', '--uid', '0', '--gid', '0', '--uname', 'root', '--gname', 'root', '-cf', '-', ...names], dir);
  });
  if (out.toString('latin1', 0, 4) !== 'xar!') throw new Error('not a xar archive');
  const headerSize = out.readUInt16BE(4);
  const tocLength = Number(out.readBigUInt64BE(8));
  if (out.readUInt32BE(24) !== 1) throw new Error('xar TOC checksum is not SHA-1');
  const stamp = FIXED_MTIME.toISOString().replace('.000', '');
  const toc = zlib.inflateSync(out.subarray(headerSize, headerSize + tocLength)).toString('utf8')
    .replace(/<(creation-time|atime|ctime|mtime)>[^<]*</g, `<$1>${stamp}<`)
    .replace(/<(inode|deviceno)>\d+</g, '<$1>0<');
  const tocBytes = Buffer.from(toc, 'utf8');
  const compressed = zlib.deflateSync(tocBytes, { level: 9 });
  const header = Buffer.from(out.subarray(0, headerSize));
  header.writeBigUInt64BE(BigInt(compressed.length), 8);
  header.writeBigUInt64BE(BigInt(tocBytes.length), 16);
  const heap = Buffer.from(out.subarray(headerSize + tocLength));
  // the TOC's checksum is the heap's first bytes (<checksum><offset>0</offset><size>20</size>)
  crypto.createHash('sha1').update(compressed).digest().copy(heap, 0);
  return Buffer.concat([header, compressed, heap]);
}

/** gcab -c (stored) or with `compress` MSZIP (-z) */
export function cab(members: Member[], compress = true): Buffer {
  return inTemp((dir) => {
    const names = writeMembers(dir, members);
    run('gcab', ['-c', ...(compress ? ['-z'] : []), 'out.cab', ...names], dir);
    return fs.readFileSync(path.join(dir, 'out.cab'));
  });
}

// ---------------------------------------------------------------- single streams

export type Compressor = 'gz' | 'bz2' | 'xz' | 'lzma' | 'lz' | 'Z' | 'zst' | 'lz4';

const COMPRESSORS: Record<Exclude<Compressor, 'gz'>, [string, string[]]> = {
  bz2: ['bzip2', ['-c', '-9']],
  xz: ['xz', ['-c', '-6']],
  lzma: ['xz', ['-c', '--format=lzma']],
  lz: ['lzip', ['-c']],
  Z: ['compress', ['-c']],
  zst: ['zstd', ['-c', '-q', '-19']],
  lz4: ['lz4', ['-c', '-q']],
};

/** One compressed stream of `data` (gzip: Node's zlib, no name, mtime 0) */
export function compress(kind: Compressor, data: Buffer): Buffer {
  if (kind === 'gz') return zlib.gzipSync(data, { level: 9 });
  const [cmd, args] = COMPRESSORS[kind];
  return run(cmd, args, undefined, data);
}

/** bzip2 of two streams, concatenated: an empty one, then the data */
export function bz2TwoStreams(data: Buffer): Buffer {
  return Buffer.concat([compress('bz2', Buffer.alloc(0)), compress('bz2', data)]);
}

// ---------------------------------------------------------------- PDF

function pdfString(s: string): string {
  return '(' + s.replace(/[\\()]/g, (c) => '\\' + c) + ')';
}

/** The largest divisor of n up to n/2 (and 80): PNG rows that cover the data exactly, at least two of them */
function pngColumns(n: number): number {
  for (let c = Math.min(80, Math.floor(n / 2)); c > 1; c--) if (n % c === 0) return c;
  return n >= 1 && n <= 80 ? n : 1;
}

/** Rows of `columns` bytes, each preceded by PNG filter type 2 (Up) */
function pngUp(data: Buffer, columns: number): Buffer {
  const rows = data.length / columns;
  const out = Buffer.alloc(rows * (columns + 1));
  for (let r = 0; r < rows; r++) {
    out[r * (columns + 1)] = 2;
    for (let c = 0; c < columns; c++) {
      const above = r > 0 ? data[(r - 1) * columns + c] : 0;
      out[r * (columns + 1) + 1 + c] = (data[r * columns + c] - above) & 0xff;
    }
  }
  return out;
}

/**
 * A one-page PDF whose document-level EmbeddedFiles name tree holds `data` as `name`, its stream
 * FlateDecode'd, with `predictor` a PNG predictor (/Predictor 12, rows of /Columns bytes filtered Up).
 */
export function pdfWithAttachment(name: string, data: Buffer, predictor = false, indirectEF = false): Buffer {
  // indirectEF: the file specification's /EF is a reference, and the stream says no /Type (readers need neither)
  let streamDict = indirectEF ? '/Filter /FlateDecode' : '/Type /EmbeddedFile /Filter /FlateDecode';
  let encoded: Buffer;
  if (predictor) {
    const columns = pngColumns(data.length);
    if (data.length % columns !== 0) throw new Error('no PNG row width fits the data');
    encoded = zlib.deflateSync(pngUp(data, columns));
    streamDict += ` /DecodeParms << /Predictor 12 /Columns ${columns} >>`;
  } else {
    encoded = zlib.deflateSync(data);
  }
  streamDict += ` /Params << /Size ${data.length} >> /Length ${encoded.length}`;
  const objects: Buffer[] = [
    Buffer.from('<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 3 0 R >> >>'),
    Buffer.from('<< /Type /Pages /Kids [4 0 R] /Count 1 >>'),
    Buffer.from(`<< /Names [${pdfString(name)} 5 0 R] >>`),
    Buffer.from('<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> >>'),
    Buffer.from(`<< /Type /Filespec /F ${pdfString(name)} /UF ${pdfString(name)} /EF ${indirectEF ? '7 0 R' : '<< /F 6 0 R >>'} >>`),
    Buffer.concat([Buffer.from(`<< ${streamDict} >>\nstream\n`), encoded, Buffer.from('\nendstream')]),
    ...(indirectEF ? [Buffer.from('<< /F 6 0 R >>')] : []),
  ];
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let offset = parts[0].length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(offset);
    const obj = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), body, Buffer.from('\nendobj\n')]);
    parts.push(obj);
    offset += obj.length;
  });
  const xref = [`xref\n0 ${objects.length + 1}\n`, '0000000000 65535 f \n',
    ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`),
    `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${offset}\n%%EOF\n`].join('');
  parts.push(Buffer.from(xref));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- the table

const one = (name: string, data: Buffer): Member[] => [{ name, data }];

export const ARCHIVE_SAMPLES: ArchiveSample[] = [
  { format: 'zip', kind: 'archive', build: (n, d) => infoZip(one(n, d)) },
  { format: 'zip stored', kind: 'archive', build: (n, d) => infoZip(one(n, d), ['-0']) },
  { format: 'zip64', kind: 'archive', build: (n, d) => infoZip(one(n, d), ['-fz']) },
  { format: 'zip data descriptor', kind: 'archive', build: (n, d) => zipWithDataDescriptor(one(n, d)) },
  ...['LZMA', 'PPMd', 'BZip2', 'Deflate64', 'XZ'].map((m): ArchiveSample => (
    { format: `zip ${m}`, kind: 'archive', build: (n, d) => sevenZipZip(one(n, d), m) })),
  ...SEVEN_Z_METHODS.map((m): ArchiveSample => ({ format: `7z ${m}`, kind: 'archive', build: (n, d) => sevenZip(one(n, d), m) })),
  { format: 'tar', kind: 'archive', build: (n, d) => tar(one(n, d)) },
  ...(['gz', 'bz2', 'xz', 'zst', 'lz', 'Z'] as const).map((c): ArchiveSample => (
    { format: `tar.${c}`, kind: 'archive', build: (n, d) => compress(c, tar(one(n, d))) })),
  ...(['gz', 'bz2', 'xz', 'lzma', 'lz', 'Z', 'zst', 'lz4'] as const).map((c): ArchiveSample => (
    { format: c, kind: 'stream', build: (_n, d) => compress(c, d) })),
  { format: 'bz2 two streams', kind: 'stream', build: (_n, d) => bz2TwoStreams(d) },
  { format: 'cpio', kind: 'archive', build: (n, d) => cpio(one(n, d)) },
  { format: 'ar', kind: 'archive', build: (n, d) => ar(one(n, d)) },
  { format: 'iso9660', kind: 'archive', build: (n, d) => iso9660(one(n, d)) },
  { format: 'cab', kind: 'archive', build: (n, d) => cab(one(n, d)) },
  { format: 'cab stored', kind: 'archive', build: (n, d) => cab(one(n, d), false) },
  { format: 'xar', kind: 'archive', build: (n, d) => xar(one(n, d)) },
  { format: 'pdf FlateDecode', kind: 'pdf', build: (n, d) => pdfWithAttachment(n, d) },
  { format: 'pdf FlateDecode PNG predictor', kind: 'pdf', build: (n, d) => pdfWithAttachment(n, d, true) },
  { format: 'zip understated local size', kind: 'archive', build: (n, d) => zipWithUnderstatedLocalSize(n, d) },
];

// ---------------------------------------------------------------- bombs

/** `mib` MiB of zeros deflated: one 1 MiB block ended by a full flush, repeated, then an empty final block */
function deflatedZeros(mib: number): { compressed: Buffer; crc: number; size: number } {
  const chunk = Buffer.alloc(MIB);
  const block = zlib.deflateRawSync(chunk, { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  let crc = 0;
  for (let i = 0; i < mib; i++) crc = zlib.crc32(chunk, crc);
  const compressed = Buffer.concat([...Array.from({ length: mib }, () => block), zlib.deflateRawSync(Buffer.alloc(0))]);
  return { compressed, crc, size: mib * MIB };
}

/** A zip of one member of `mib` MiB of zeros (under 4096: no zip64) */
export function zipOfZeros(mib: number, name = 'zeros.bin'): Buffer {
  if (mib >= 4096) throw new Error('zipOfZeros: under 4096 MiB');
  return zip([{ name, data: Buffer.alloc(0), ...deflatedZeros(mib) }]);
}

/**
 * 42.zip in small: `depth` levels of zips each holding `width` copies of the level below, the
 * innermost zips one member of `leafMiB` MiB of zeros: width^depth × leafMiB MiB in all.
 */
export function zipBomb42(width = 16, depth = 3, leafMiB = 16): Buffer {
  let bytes = zipOfZeros(leafMiB, 'zeros.bin');
  for (let level = 1; level <= depth; level++) {
    bytes = zip(Array.from({ length: width }, (_, i): ZipMember => ({ name: `${level}-${i}.zip`, data: bytes })));
  }
  return bytes;
}

/** gzip of `mib` MiB of zeros, one member (about 1 KB per MiB) */
export function gzBomb(mib = 1024): Buffer {
  const { compressed, crc, size } = deflatedZeros(mib);
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(size % 2 ** 32, 4);
  return Buffer.concat([header, compressed, trailer]);
}

function zerosThrough(cmd: string, args: string[], bytes: number): Buffer {
  return run('sh', ['-c', `head -c ${bytes} /dev/zero | ${cmd} ${args.join(' ')}`]);
}

/**
 * `mib` MiB of zeros as `kind`. bz2, xz, lz, lz4: one stream (lzip member, lz4 frame) of 64 MiB,
 * repeated (bzip2, xz and lzip take 12-15 s per GiB here); zst, Z: one stream, the zeros piped
 * through the tool (compress: 4-8 s per GiB here, so Z defaults to 256 MiB); gz: gzBomb.
 */
export function streamBomb(kind: Exclude<Compressor, 'lzma'>, mib = kind === 'Z' ? 256 : 1024): Buffer {
  if (kind === 'gz') return gzBomb(mib);
  const [cmd] = COMPRESSORS[kind];
  const fast: Record<typeof kind, string[]> = {
    bz2: ['-c', '-1'], xz: ['-c', '-1'], lz: ['-c', '-0'], lz4: ['-c', '-q'], zst: ['-c', '-q', '-3'], Z: ['-c'],
  };
  if (kind === 'zst' || kind === 'Z') return zerosThrough(cmd, fast[kind], mib * MIB);
  const chunkMiB = Math.min(64, mib);
  if (mib % chunkMiB) throw new Error('streamBomb: mib below 64 or a multiple of 64');
  const stream = zerosThrough(cmd, fast[kind], chunkMiB * MIB);
  return Buffer.concat(Array.from({ length: mib / chunkMiB }, () => stream));
}

/** A tar of `count` members of one byte each */
export function tarManyMembers(count = 20_000): Buffer {
  return tar(Array.from({ length: count }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x') })));
}

/** A zip of `count` members of one byte each */
export function zipManyMembers(count = 20_000): Buffer {
  return zip(Array.from({ length: count }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x') })));
}
