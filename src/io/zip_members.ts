// The members of a ZIP whose members are all stored or deflated (what Office
// documents, and most zips mailed, are), read in the relay's own process with
// Node's zlib: no tool to start. lib/zip_structure has checked that every reader
// sees these members; anything else (other methods, encryption) goes to bsdtar.

import zlib from 'node:zlib';
import type { ZipMember } from '../lib/zip_structure';
import type { MemberSink, UnpackResult } from './unpack';

const STORED = 0;
const DEFLATED = 8;
const ENCRYPTED = 0x0001;
/** general-purpose bit 3: sizes and CRC follow the data */
const DESCRIBED = 0x0008;
const DESCRIPTOR_SIG = Buffer.from('PK\x07\x08', 'latin1');
/** Compressed bytes read per step. */
const READ_BYTES = 64 * 1024;

/** All members stored or deflated, none encrypted: the relay reads them itself. */
export function readableInProcess(members: readonly ZipMember[]): boolean {
  return members.every((m) => (m.method === STORED || m.method === DEFLATED) && (m.flags & ENCRYPTED) === 0);
}

/** Reads the archive's bytes: `length` bytes at `offset` (fewer at its end). */
export type ReadAt = (offset: number, length: number) => Buffer;

export async function zipMembers(
  read: ReadAt, members: readonly ZipMember[], sink: MemberSink, signal: AbortSignal,
): Promise<UnpackResult> {
  for (const m of members) {
    if (signal.aborted) return { ok: 'stopped' };
    const name = m.name.toString('utf8');
    // a folder entry holds nothing
    if (name.endsWith('/') && m.size === 0) continue;
    if (!sink.member(name, m.unicodeNames)) return { ok: 'stopped' };
    const result = await readMember(read, m, sink, signal);
    if (result.ok !== true) return result;
    if (result.size !== m.size) {
      return { ok: false, reason: `member ${JSON.stringify(name)} unpacks to ${result.size} bytes, the directory says ${m.size}` };
    }
    sink.memberEnd();
  }
  return { ok: true };
}

async function readMember(
  read: ReadAt, m: ZipMember, sink: MemberSink, signal: AbortSignal,
): Promise<{ ok: true; size: number } | { ok: false; reason: string } | { ok: 'stopped' }> {
  let size = 0;
  let stopped = false;
  // a stored member with a descriptor: its bytes are searched for the descriptor's signature
  let signatureSeen = false;
  let edge = Buffer.alloc(0);
  const take = (bytes: Buffer): void => {
    if (stopped) return;
    size += bytes.length;
    if (!sink.data(bytes)) stopped = true;
  };
  const inflate = m.method === DEFLATED ? zlib.createInflateRaw() : undefined;
  let failed: string | undefined;
  let ended = false;
  // one promise for the inflater's end, whenever it comes (it may end before all input is written)
  const done = new Promise<void>((resolve) => {
    if (!inflate) return resolve();
    inflate.on('data', take);
    inflate.on('end', () => { ended = true; resolve(); });
    inflate.on('error', (err) => { failed = err.message; resolve(); });
    inflate.on('close', () => resolve());
  });
  try {
    for (let at = 0; at < m.compressedSize && !stopped && !failed && !ended;) {
      if (signal.aborted) return { ok: 'stopped' };
      const chunk = read(m.dataStart + at, Math.min(READ_BYTES, m.compressedSize - at));
      if (chunk.length === 0) return { ok: false, reason: 'the archive ends inside a member' };
      at += chunk.length;
      if (!inflate) {
        if (m.flags & DESCRIBED) {
          // the signature may straddle two chunks: each is searched with the end of the one before
          signatureSeen ||= Buffer.concat([edge, chunk]).includes(DESCRIPTOR_SIG);
          edge = Buffer.from(chunk.subarray(-3));
        }
        take(chunk);
      } else if (!inflate.write(chunk)) {
        await Promise.race([new Promise((resolve) => inflate.once('drain', resolve)), done]);
      }
      const room = sink.room();
      if (room) await room;
    }
    if (inflate && !stopped && !failed && !ended) {
      inflate.end();
      await done;
    }
  } finally {
    // no more data from it into the sink, whatever ended the loop
    inflate?.destroy();
  }
  if (stopped) return { ok: 'stopped' };
  if (failed) return { ok: false, reason: `deflate data: ${failed}` };
  // with a data descriptor, a streaming reader ends the member where its data ends and reads on from there:
  // what lies between that end and the directory's compressed size would be another member to it
  if (m.flags & DESCRIBED) {
    if (inflate && inflate.bytesWritten !== m.compressedSize) {
      return { ok: false, reason: `deflate data of ${JSON.stringify(m.name.toString('utf8'))} ends before its compressed size` };
    }
    if (!inflate && signatureSeen) {
      return { ok: false, reason: `stored data of ${JSON.stringify(m.name.toString('utf8'))} holds a data descriptor signature` };
    }
  }
  return { ok: true, size };
}
