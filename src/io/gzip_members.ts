// A gzip file read in the relay's own process with Node's zlib, as the most
// lenient reader does: every member, one after another (Python's gzip also
// skips zero bytes between members, where gunzip and libarchive stop), as one
// stream; its name is the first member's FNAME (what `gunzip -N` restores).
// Bytes after the last member are left to identification of the whole part
// (a PDF or a ZIP after the gzip data is found there).

import zlib from 'node:zlib';
import type { MemberSink, UnpackResult } from './unpack';
import type { ReadAt } from './zip_members';

const READ_BYTES = 64 * 1024;
const FTEXT_FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
/** Members of one gzip file read at most (each is a header and a deflate stream). */
const MAX_MEMBERS = 10_000;

interface Header {
  length: number;
  name?: string;
}

/** The member header at `at`, or undefined when none starts there. */
function headerAt(read: ReadAt, at: number, size: number): Header | undefined {
  const fixed = read(at, 10);
  if (fixed.length < 10 || fixed[0] !== 0x1f || fixed[1] !== 0x8b || fixed[2] !== 8) return undefined;
  const flags = fixed[3];
  let p = at + 10;
  if (flags & FEXTRA) {
    const len = read(p, 2);
    if (len.length < 2) return undefined;
    p += 2 + len.readUInt16LE(0);
  }
  let name: string | undefined;
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    // a zero-terminated string: looked for in pieces, at most 64 KiB
    const piece = read(p, Math.min(READ_BYTES, size - p));
    const zero = piece.indexOf(0);
    if (zero < 0) return undefined;
    if (flag === FNAME) name = piece.subarray(0, zero).toString('latin1');
    p += zero + 1;
  }
  if (flags & FTEXT_FHCRC) p += 2;
  return p <= size ? { length: p - at, name } : undefined;
}

export async function gzipMembers(read: ReadAt, size: number, sink: MemberSink, signal: AbortSignal): Promise<UnpackResult> {
  const first = headerAt(read, 0, size);
  if (!first) return { ok: false, reason: 'no gzip header' };
  if (!sink.member(first.name ?? '')) return { ok: 'stopped' };
  let at = 0;
  for (let n = 0; n < MAX_MEMBERS; n++) {
    const header = n === 0 ? first : headerAt(read, at, size);
    if (!header) break;
    const inflated = await inflateAt(read, at + header.length, size, sink, signal);
    if (inflated.ok !== true) return inflated;
    // the member's CRC-32 and size follow its data
    at += header.length + inflated.consumed + 8;
    if (at > size) return { ok: false, reason: 'a gzip member is cut short' };
    // zero bytes between members (tape padding) are skipped, as Python's gzip does
    for (;;) {
      const piece = read(at, READ_BYTES);
      let zeros = 0;
      while (zeros < piece.length && piece[zeros] === 0) zeros++;
      at += zeros;
      if (zeros < piece.length || piece.length === 0) break;
    }
    if (at >= size) break;
  }
  sink.memberEnd();
  return { ok: true };
}

/** Inflates the deflate stream at `start`; `consumed`: its compressed length. */
async function inflateAt(
  read: ReadAt, start: number, size: number, sink: MemberSink, signal: AbortSignal,
): Promise<{ ok: true; consumed: number } | { ok: false; reason: string } | { ok: 'stopped' }> {
  const inflate = zlib.createInflateRaw();
  let stopped = false;
  let failed: string | undefined;
  let ended = false;
  const done = new Promise<void>((resolve) => {
    inflate.on('end', () => { ended = true; resolve(); });
    inflate.on('error', (err) => { failed = err.message; resolve(); });
    inflate.on('close', () => resolve());
  });
  inflate.on('data', (bytes: Buffer) => {
    if (!stopped && !sink.data(bytes)) {
      stopped = true;
      inflate.destroy();
    }
  });
  for (let pos = start; pos < size && !ended && !stopped && !failed;) {
    if (signal.aborted) {
      inflate.destroy();
      return { ok: 'stopped' };
    }
    const chunk = read(pos, Math.min(READ_BYTES, size - pos));
    if (chunk.length === 0) break;
    pos += chunk.length;
    if (!inflate.write(chunk)) await Promise.race([new Promise((resolve) => inflate.once('drain', resolve)), done]);
    const room = sink.room();
    if (room) await room;
  }
  if (!ended && !stopped && !failed) {
    inflate.end();
    await done;
  }
  // ended before its input did (the deflate data is over): nothing more comes from it
  inflate.destroy();
  if (stopped) return { ok: 'stopped' };
  if (failed) return { ok: false, reason: `gzip data: ${failed}` };
  if (!ended) return { ok: false, reason: 'a gzip member is cut short' };
  return { ok: true, consumed: inflate.bytesWritten };
}
