// Checks that a ZIP archive shows the same members to every kind of reader: those that
// trust the central directory (Info-ZIP unzip, 7-Zip, libarchive seekable, Explorer) and
// those that walk the local headers from the front (streaming readers, clamd's fallback).
// A relay that scanned what one reader sees must not call the archive scanned when the
// recipient's reader would see something else. Pure: bytes come through `read`.

/** A member as the central directory and its local header (which agree) give it. */
export interface ZipMember {
  name: Buffer;
  /** the names Info-ZIP Unicode Path fields give it, in the central entry or the local header (readers show those) */
  unicodeNames: string[];
  method: number;
  flags: number;
  /** where its compressed bytes start in the file */
  dataStart: number;
  compressedSize: number;
  size: number;
}

export type ZipCheck =
  | { ok: true; entries: number; zip64: boolean; prefixBytes: number; members: ZipMember[] }
  | { ok: false; reason: string };

const EOCD_SIG = 0x06054b50;
const EOCD64_SIG = 0x06064b50;
const LOCATOR_SIG = 0x07064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const DESCRIPTOR_SIG = 0x08074b50;
const EOCD_LEN = 22;
const LOCATOR_LEN = 20;
const EOCD64_LEN = 56;
const CENTRAL_LEN = 46;
const LOCAL_LEN = 30;
/** the end record plus the longest comment it can carry */
const TAIL_LEN = EOCD_LEN + 0xffff;
const MAX16 = 0xffff;
const MAX32 = 0xffffffff;
/** a zip64 count may claim billions; past this we refuse rather than loop */
const MAX_ENTRIES = 1_000_000;
/** reads are served from a window of this size, so small headers do not cost a call each */
const WINDOW = 64 * 1024;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_DESCRIPTOR = 0x0008;
const MULTI_DISK = 'the archive spans several disks';

/** Thrown inside the check; becomes `{ ok: false, reason }`. */
class Disagreement extends Error {}

function fail(reason: string): never {
  throw new Disagreement(reason);
}

/** Bounded reads through a small cache: never more than one window (or one header) in memory. */
class Source {
  private window: Buffer = Buffer.alloc(0);
  private start = 0;

  constructor(readonly size: number, private readonly read: (offset: number, length: number) => Buffer) {}

  /** `length` bytes at `offset`, or undefined when the file ends first. */
  bytes(offset: number, length: number): Buffer | undefined {
    if (offset < 0 || length < 0 || offset + length > this.size) return undefined;
    const from = offset - this.start;
    if (from >= 0 && from + length <= this.window.length) return this.window.subarray(from, from + length);
    const got = this.read(offset, Math.min(Math.max(length, WINDOW), this.size - offset));
    if (got.length < length) return undefined;
    this.window = got;
    this.start = offset;
    return got.subarray(0, length);
  }

  need(offset: number, length: number, what: string): Buffer {
    return this.bytes(offset, length) ?? fail(`${what} runs past the end of the file`);
  }
}

function u64(b: Buffer, at: number, what: string): number {
  const v = b.readBigUInt64LE(at);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : fail(`${what} is out of range`);
}

interface EndRecord {
  /** where the end record (or the zip64 end record before it) starts: the central directory ends there */
  cdEnd: number;
  cdStart: number;
  cdSize: number;
  entries: number;
  /** bytes between where offsets count from and the file's start (Info-ZIP's "extra bytes") */
  shift: number;
  zip64: boolean;
}

interface EocdCandidate {
  at: number;
  commentEnd: number;
  end: EndRecord;
}

/**
 * The end record at `at`: undefined when it does not describe a central directory that fits here,
 * else the record and what is wrong with it (kept apart, so a stray signature in a comment is ignored).
 */
function parseEnd(src: Source, at: number, tail: Buffer, tailStart: number): (EocdCandidate & { problem?: string }) | undefined {
  const e = tail.subarray(at - tailStart, at - tailStart + EOCD_LEN);
  const commentEnd = at + EOCD_LEN + e.readUInt16LE(20);
  if (commentEnd > src.size) return undefined;
  const problems: string[] = [];
  const disk = e.readUInt16LE(4);
  const cdDisk = e.readUInt16LE(6);
  const onDisk = e.readUInt16LE(8);
  let entries = e.readUInt16LE(10);
  let cdSize = e.readUInt32LE(12);
  let cdOffset = e.readUInt32LE(16);
  let cdEnd = at;
  const locator = at >= LOCATOR_LEN ? src.bytes(at - LOCATOR_LEN, LOCATOR_LEN) : undefined;
  const zip64 = locator !== undefined && locator.readUInt32LE(0) === LOCATOR_SIG;
  if (!zip64) {
    if ([disk, cdDisk, onDisk, entries].includes(MAX16) || [cdSize, cdOffset].includes(MAX32)) return undefined;
    if (disk !== 0 || cdDisk !== 0 || onDisk !== entries) problems.push(MULTI_DISK);
  } else {
    const locatorAt = at - LOCATOR_LEN;
    const recordOffset = u64(locator, 8, 'zip64 locator offset');
    if (locator.readUInt32LE(4) !== 0 || locator.readUInt32LE(16) > 1) problems.push(MULTI_DISK);
    // the zip64 end record normally sits right before the locator; otherwise where the locator says
    let recordAt = locatorAt - EOCD64_LEN;
    let r = src.bytes(recordAt, EOCD64_LEN);
    if (r?.readUInt32LE(0) !== EOCD64_SIG) {
      recordAt = recordOffset;
      r = src.bytes(recordAt, EOCD64_LEN);
    }
    if (r?.readUInt32LE(0) !== EOCD64_SIG) return undefined;
    if (recordAt + 12 + u64(r, 4, 'zip64 end record size') !== locatorAt) problems.push('zip64 end record and locator disagree');
    const onDisk64 = u64(r, 24, 'zip64 entry count');
    const entries64 = u64(r, 32, 'zip64 entry count');
    const cdSize64 = u64(r, 40, 'zip64 central directory size');
    const cdOffset64 = u64(r, 48, 'zip64 central directory offset');
    if (r.readUInt32LE(16) !== 0 || r.readUInt32LE(20) !== 0 || onDisk64 !== entries64) problems.push(MULTI_DISK);
    if ((disk !== MAX16 && disk !== 0) || (cdDisk !== MAX16 && cdDisk !== 0)) problems.push(MULTI_DISK);
    // a 32-bit field is either "see zip64" or the same value: readers pick one or the other
    if ((entries !== MAX16 && entries !== entries64) || (cdSize !== MAX32 && cdSize !== cdSize64)
      || (cdOffset !== MAX32 && cdOffset !== cdOffset64)) {
      problems.push('end record and zip64 end record disagree');
    }
    entries = entries64;
    cdSize = cdSize64;
    cdOffset = cdOffset64;
    cdEnd = recordAt;
    if (recordAt - recordOffset !== cdEnd - cdSize - cdOffset) problems.push('zip64 locator points elsewhere than the central directory');
  }
  const cdStart = cdEnd - cdSize;
  const shift = cdStart - cdOffset;
  if (cdStart < 0 || shift < 0) return undefined;
  if (entries > 0 && src.bytes(cdStart, 4)?.readUInt32LE(0) !== CENTRAL_SIG) return undefined;
  return { at, commentEnd, end: { cdEnd, cdStart, cdSize, entries, shift, zip64 }, problem: problems[0] };
}

function findEnd(src: Source): EndRecord {
  const tailStart = Math.max(0, src.size - TAIL_LEN);
  const tail = src.need(tailStart, src.size - tailStart, 'the end record');
  const found: (EocdCandidate & { problem?: string })[] = [];
  for (let i = tail.length - EOCD_LEN; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== EOCD_SIG) continue;
    try {
      const c = parseEnd(src, tailStart + i, tail, tailStart);
      if (c) found.push(c);
    } catch (e) {
      // out-of-range zip64 values: this candidate does not fit
      if (!(e instanceof Disagreement)) throw e;
    }
  }
  if (found.length === 0) fail('no end-of-central-directory record');
  // scanned backwards, so the first found is the last in the file, the one most readers take
  const [last, ...earlier] = found;
  // a reader that wants the comment to reach the end of the file takes the outer record
  if (earlier.some((c) => c.commentEnd > last.at)) fail('an end-of-central-directory record hides in the comment of another');
  if (last.problem) fail(last.problem);
  return last.end;
}

interface Zip64Want {
  usize: boolean;
  csize: boolean;
  offset: boolean;
  disk: boolean;
}

/** The name in an Info-ZIP Unicode Path extra field (0x7075): what Info-ZIP, 7-Zip and libarchive show instead. */
function unicodePath(extra: Buffer): string | undefined {
  for (let p = 0; p + 4 <= extra.length;) {
    const tag = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (p + 4 + len > extra.length) break;
    if (tag === 0x7075 && len >= 5) return extra.subarray(p + 9, p + 4 + len).toString('utf8');
    p += 4 + len;
  }
  return undefined;
}

/** Values of the zip64 extra field (0x0001), in the order the 32-bit fields that say "see zip64" appear. */
function zip64Extra(extra: Buffer, want: Zip64Want, what: string): { values: number[]; present: boolean } {
  for (let p = 0; p + 4 <= extra.length;) {
    const tag = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (p + 4 + len > extra.length) break;
    if (tag === 0x0001) {
      const data = extra.subarray(p + 4, p + 4 + len);
      const values: number[] = [];
      let q = 0;
      for (const w of [want.usize, want.csize, want.offset]) {
        if (!w) continue;
        if (q + 8 > data.length) fail(`zip64 extra field of ${what} is too short`);
        values.push(u64(data, q, `zip64 value of ${what}`));
        q += 8;
      }
      if (want.disk && q + 4 > data.length) fail(`zip64 extra field of ${what} is too short`);
      if (want.disk && data.readUInt32LE(q) !== 0) fail(MULTI_DISK);
      return { values, present: true };
    }
    p += 4 + len;
  }
  if (want.usize || want.csize || want.offset || want.disk) fail(`${what} needs a zip64 extra field and has none`);
  return { values: [], present: false };
}

interface Member {
  label: string;
  start: number;
  end: number;
  dataStart: number;
  /** the local header's Unicode Path name, if it has one */
  unicodeName?: string;
}

interface CentralEntry {
  name: Buffer;
  unicodeName?: string;
  label: string;
  flags: number;
  method: number;
  crc: number;
  csize: number;
  usize: number;
  offset: number;
  usedZip64: boolean;
  next: number;
}

function readCentral(src: Source, at: number, cdEnd: number, index: number): CentralEntry {
  const h = src.bytes(at, CENTRAL_LEN);
  if (at + CENTRAL_LEN > cdEnd || h?.readUInt32LE(0) !== CENTRAL_SIG) fail(`central directory entry ${index + 1} is missing or damaged`);
  const nameLen = h.readUInt16LE(28);
  const extraLen = h.readUInt16LE(30);
  const next = at + CENTRAL_LEN + nameLen + extraLen + h.readUInt16LE(32);
  if (next > cdEnd) fail(`central directory entry ${index + 1} runs past the central directory`);
  const name = Buffer.from(src.need(at + CENTRAL_LEN, nameLen, 'a central directory entry'));
  const label = JSON.stringify(name.toString('utf8'));
  const extra = src.need(at + CENTRAL_LEN + nameLen, extraLen, 'a central directory entry');
  let csize = h.readUInt32LE(20);
  let usize = h.readUInt32LE(24);
  let offset = h.readUInt32LE(42);
  const disk = h.readUInt16LE(34);
  const want = { usize: usize === MAX32, csize: csize === MAX32, offset: offset === MAX32, disk: disk === MAX16 };
  const { values } = zip64Extra(extra, want, `central entry ${label}`);
  if (want.usize) usize = values.shift() ?? 0;
  if (want.csize) csize = values.shift() ?? 0;
  if (want.offset) offset = values.shift() ?? 0;
  if (!want.disk && disk !== 0) fail(MULTI_DISK);
  return {
    name, label, flags: h.readUInt16LE(8), method: h.readUInt16LE(10), crc: h.readUInt32LE(16),
    csize, usize, offset, usedZip64: want.usize || want.csize || want.offset, next, unicodeName: unicodePath(extra),
  };
}

/** Checks the local header against its central entry; returns the member's byte range. */
function checkLocal(src: Source, c: CentralEntry, shift: number): Member {
  const start = c.offset + shift;
  const h = src.bytes(start, LOCAL_LEN);
  if (h?.readUInt32LE(0) !== LOCAL_SIG) fail(`no local header for ${c.label} where the central directory says (offset ${start})`);
  const nameLen = h.readUInt16LE(26);
  const extraLen = h.readUInt16LE(28);
  const name = src.need(start + LOCAL_LEN, nameLen, `local header of ${c.label}`);
  if (!name.equals(c.name)) fail(`local header of ${c.label} names ${JSON.stringify(name.toString('utf8'))}`);
  const extra = src.need(start + LOCAL_LEN + nameLen, extraLen, `local header of ${c.label}`);
  const method = h.readUInt16LE(8);
  if (method !== c.method) fail(`local header of ${c.label} says method ${method}, central directory says ${c.method}`);
  const flags = h.readUInt16LE(6);
  for (const [bit, meaning] of [[FLAG_ENCRYPTED, 'encryption'], [FLAG_DESCRIPTOR, 'data descriptor']] as const) {
    if ((flags & bit) !== (c.flags & bit)) fail(`local header and central directory disagree on ${meaning} for ${c.label}`);
  }
  const crc = h.readUInt32LE(14);
  let csize = h.readUInt32LE(18);
  let usize = h.readUInt32LE(22);
  const want = { usize: usize === MAX32, csize: csize === MAX32, offset: false, disk: false };
  const { values } = zip64Extra(extra, want, `local header of ${c.label}`);
  if (want.usize) usize = values.shift() ?? 0;
  if (want.csize) csize = values.shift() ?? 0;
  const described = (flags & FLAG_DESCRIPTOR) !== 0;
  // with a data descriptor the local values may be left zero (streaming writers, macOS Archive Utility)
  const agrees = (local: number, central: number): boolean => local === central || (described && local === 0);
  const fields: [string, number, number][] = [['CRC', crc, c.crc], ['compressed size', csize, c.csize], ['size', usize, c.usize]];
  for (const [field, local, central] of fields) {
    if (!agrees(local, central)) fail(`local header of ${c.label} says ${field} ${local}, central directory says ${central}`);
  }
  const dataEnd = start + LOCAL_LEN + nameLen + extraLen + c.csize;
  if (dataEnd > src.size) fail(`data of ${c.label} runs past the end of the file`);
  const end = described ? dataEnd + descriptorLength(src, dataEnd, c) : dataEnd;
  return { label: c.label, start, end, dataStart: dataEnd - c.csize, unicodeName: unicodePath(extra) };
}

/** Length of the data descriptor after the data (0 if none follows); it must repeat the central values. */
function descriptorLength(src: Source, at: number, c: CentralEntry): number {
  const b = src.bytes(at, Math.min(24, src.size - at)) ?? Buffer.alloc(0);
  const sig = b.length >= 4 && b.readUInt32LE(0) === DESCRIPTOR_SIG ? 4 : 0;
  // no descriptor at all: the next header (or the central directory) starts right away
  if (sig === 0 && b.length >= 4 && [LOCAL_SIG, CENTRAL_SIG, EOCD_SIG].includes(b.readUInt32LE(0))) return 0;
  if (b.length >= sig + 12 && b.readUInt32LE(sig) === c.crc) {
    if (b.length >= sig + 20 && b.readBigUInt64LE(sig + 4) === BigInt(c.csize) && b.readBigUInt64LE(sig + 12) === BigInt(c.usize)) {
      return sig + 20;
    }
    if (b.readUInt32LE(sig + 4) === c.csize && b.readUInt32LE(sig + 8) === c.usize) return sig + 12;
  }
  if (sig === 0 && b.length === 0) return 0;
  return fail(`data descriptor of ${c.label} disagrees with the central directory`);
}

/** What a streaming reader would make of bytes no central entry accounts for. */
function unaccounted(src: Source, from: number, to: number): never {
  const h = src.bytes(from, LOCAL_LEN);
  if (h?.readUInt32LE(0) === LOCAL_SIG) {
    const name = src.bytes(from + LOCAL_LEN, h.readUInt16LE(26));
    const label = name ? JSON.stringify(name.toString('utf8')) : '(unnamed)';
    fail(`local member ${label} at offset ${from} is not in the central directory`);
  }
  return fail(`${to - from} bytes at offset ${from} belong to no member`);
}

/** A streaming reader that scans for the first local header would find one hidden before the archive. */
function scanBefore(src: Source, read: (offset: number, length: number) => Buffer, end: number): void {
  const sig = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
  for (let at = 0; at < end; at += WINDOW) {
    // overlap by three bytes so a signature across two reads is still seen
    const from = Math.max(0, at - 3);
    const chunk = read(from, Math.min(WINDOW + (at - from), end - from));
    const hit = chunk.indexOf(sig);
    if (hit >= 0) unaccounted(src, from + hit, end);
  }
}

function check(size: number, read: (offset: number, length: number) => Buffer, maxEntries: number): ZipCheck {
  const src = new Source(size, read);
  // the central directory is read through a window of its own: it and the local headers are far apart
  const directory = new Source(size, read);
  const end = findEnd(src);
  if (end.entries > maxEntries) fail(`${end.entries} entries: more than ${maxEntries}`);
  const names = new Set<string>();
  const members: Member[] = [];
  const listed: ZipMember[] = [];
  const byOffset = new Map<number, string>();
  let zip64 = end.zip64;
  let at = end.cdStart;
  for (let i = 0; i < end.entries; i++) {
    if (at >= end.cdEnd) fail(`end record says ${end.entries} entries, the central directory holds ${i}`);
    const c = readCentral(directory, at, end.cdEnd, i);
    // two entries on one local header: the same bytes unpacked twice (or under two names)
    const sharer = byOffset.get(c.offset);
    if (sharer !== undefined) fail(`central entries ${sharer} and ${c.label} share one local header`);
    byOffset.set(c.offset, c.label);
    const key = c.name.toString('latin1');
    if (names.has(key)) fail(`name ${c.label} appears twice`);
    names.add(key);
    zip64 ||= c.usedZip64;
    const member = checkLocal(src, c, end.shift);
    members.push(member);
    listed.push({
      name: c.name,
      unicodeNames: [c.unicodeName, member.unicodeName].filter((n): n is string => n !== undefined),
      method: c.method, flags: c.flags, dataStart: member.dataStart, compressedSize: c.csize,
      size: c.usize,
    });
    at = c.next;
  }
  if (at !== end.cdEnd) fail(`end record says ${end.entries} entries, the central directory holds more`);

  // walk the members front to back as a streaming reader does: each must start where the last ended
  members.sort((a, b) => a.start - b.start);
  const first = members.length > 0 ? members[0].start : end.cdStart;
  scanBefore(src, read, first);
  for (let i = 0; i < members.length; i++) {
    const m = members[i];
    const next = i + 1 < members.length ? members[i + 1] : undefined;
    const limit = next ? next.start : end.cdStart;
    if (m.end > end.cdStart) fail(`member ${m.label} overlaps the central directory`);
    if (m.end > limit) fail(next ? `members ${m.label} and ${next.label} overlap` : `member ${m.label} overlaps the central directory`);
    if (m.end < limit) unaccounted(src, m.end, limit);
  }
  return { ok: true, entries: end.entries, zip64, prefixBytes: first, members: listed };
}

/**
 * `size` is the file's size; `read(offset, length)` returns those bytes (fewer only at the end of the file);
 * more than `maxEntries` members (clamd's MaxFiles) is refused before any is read.
 */
export function checkZipStructure(
  size: number, read: (offset: number, length: number) => Buffer, maxEntries = MAX_ENTRIES,
): ZipCheck {
  try {
    return check(size, read, Math.min(maxEntries, MAX_ENTRIES));
  } catch (e) {
    if (e instanceof Disagreement) return { ok: false, reason: e.message };
    throw e;
  }
}
