// A part's bytes as they arrive (a decoded MIME part, an archive member):
// held in memory while small (and while the message's budget allows), else
// written to a file in the spool folder in large pieces; its first and last
// bytes kept for identification (lib/content_formats), and searched for the
// XAR header and a PDF header wherever they are. Limits (clamd's MaxFileSize,
// MaxScanSize) are counted as the bytes come.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HEAD_BYTES, TAIL_BYTES, XAR_MAGIC } from '../lib/content_formats';
import { spoolDir } from './process_dirs';
import type { ReadAt } from './zip_members';

/** Parts up to this size are scanned once per distinct content, together (io/part_scans). */
export const SMALL_PART_BYTES = 64 * 1024;
/** A larger part is written to its file in pieces of about this size. */
const WRITE_BYTES = 256 * 1024;
/** Bytes are held in blocks of this size. */
const BLOCK_BYTES = 64 * 1024;
const PDF_MAGIC = Buffer.from('%PDF-', 'latin1');
const NEEDLE_BYTES = Math.max(XAR_MAGIC.length, PDF_MAGIC.length);

/** What a collector answers to: the message's limits and memory budget, and whether its scan goes on. */
export interface PartBudget {
  readonly stopped: boolean;
  readonly limits: { maxFileSize: number; maxScanSize: number };
  notScanned?: string;
  /** a part could not be written to the spool (ENOSPC, EIO): the message fails with 452 4.3.1 */
  spoolFailure?: string;
  /** counts bytes taken for scanning; false past MaxScanSize */
  count(bytes: number): boolean;
  /** a part of this many bytes may stay in memory */
  mayHold(size: number): boolean;
  /** a part of this many bytes stays in memory until scanned */
  hold(size: number): void;
}

/** A part or member, whole: its bytes (small) or its file (large). */
export interface Item {
  /** how the summary names it: `part 1.2 "a.zip"`, then ` > member` per archive level */
  label: string;
  /** archive levels above it (0: a MIME part) */
  depth: number;
  names: string[];
  attachment: boolean;
  /** a MIME part's declared media type */
  contentType?: string;
  head: Buffer;
  tail: Buffer;
  /** the XAR header is somewhere in its bytes */
  holdsXar: boolean;
  /** a PDF header is somewhere in its bytes */
  holdsPdf: boolean;
  bytes?: Buffer;
  file?: string;
  size: number;
}

/** Takes a part's bytes as they come; `failed` says why it cannot be scanned. */
export class Collector {
  /** a small part's bytes; a large one's bytes not yet written */
  /** filled blocks; `block` is being filled (decoded text comes a line at a time: one object per line would tax the GC) */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private block?: Buffer;
  private blockUsed = 0;
  private head: Buffer[] = [];
  private headBytes = 0;
  /** the last written buffers, at least TAIL_BYTES of them once there are */
  private recent: Buffer[] = [];
  private recentBytes = 0;
  /** the end of what was searched, so a needle across two writes is found */
  private carry = Buffer.alloc(0);
  private holdsXar = false;
  private holdsPdf = false;
  private fd?: number;
  private file?: string;
  size = 0;
  failed?: string;
  contentType?: string;

  constructor(
    private readonly scans: PartBudget,
    readonly label: string,
    readonly depth: number,
    readonly names: string[],
    readonly attachment: boolean,
  ) {}

  /** false: stop sending (a limit was reached, or the scan ended) */
  data(bytes: Buffer): boolean {
    if (this.failed || this.scans.stopped) return false;
    if (this.size + bytes.length > this.scans.limits.maxFileSize) {
      this.fail(`${this.label} is larger than ${this.scans.limits.maxFileSize} bytes (clamd MaxFileSize)`);
      return false;
    }
    if (!this.scans.count(bytes.length)) {
      this.fail(`the parts and members of the message exceed ${this.scans.limits.maxScanSize} bytes (clamd MaxScanSize)`);
      return false;
    }
    if (this.headBytes < HEAD_BYTES) {
      const piece = bytes.subarray(0, HEAD_BYTES - this.headBytes);
      this.head.push(piece);
      this.headBytes += piece.length;
    }
    this.size += bytes.length;
    // decoded text comes a line at a time: bytes are gathered and written in large pieces
    this.keep(bytes);
    if (this.fd === undefined && (this.size <= SMALL_PART_BYTES || this.scans.mayHold(this.size))) return true;
    if (this.heldBytes >= WRITE_BYTES || this.fd === undefined) return this.write();
    return true;
  }

  /** The whole part, or undefined when it failed (the reason is then the scan's). */
  end(): Item | undefined {
    if (this.fd !== undefined && this.heldBytes > 0 && !this.failed) this.write();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    if (this.failed || this.scans.stopped) {
      this.discard();
      return undefined;
    }
    this.seal();
    // a copy of its own size (a block would keep 64 KiB for a 100-byte part)
    const bytes = this.file ? undefined : Buffer.concat(this.held, this.heldBytes);
    if (bytes) this.search(bytes);
    if (bytes && bytes.length > SMALL_PART_BYTES) this.scans.hold(bytes.length);
    const tail = bytes ?? Buffer.concat(this.recent);
    return {
      label: this.label, depth: this.depth, names: this.names, attachment: this.attachment, contentType: this.contentType,
      head: Buffer.concat(this.head), tail: tail.subarray(Math.max(0, tail.length - TAIL_BYTES)),
      holdsXar: this.holdsXar, holdsPdf: this.holdsPdf, bytes, file: this.file, size: this.size,
    };
  }

  discard(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    removeFile(this.file);
    this.file = undefined;
    this.held = [];
    this.block = undefined;
    this.recent = [];
  }

  /** Copies `bytes` into the blocks held (a large piece is kept as it is). */
  private keep(bytes: Buffer): void {
    this.heldBytes += bytes.length;
    if (bytes.length >= BLOCK_BYTES) {
      this.seal();
      this.held.push(bytes);
      return;
    }
    if (this.block && this.blockUsed + bytes.length > this.block.length) this.seal();
    this.block ??= Buffer.allocUnsafe(BLOCK_BYTES);
    bytes.copy(this.block, this.blockUsed);
    this.blockUsed += bytes.length;
  }

  private seal(): void {
    if (this.block && this.blockUsed > 0) this.held.push(this.block.subarray(0, this.blockUsed));
    this.block = undefined;
    this.blockUsed = 0;
  }

  /** What is held goes to the part's file (made on the first write). */
  private write(): boolean {
    this.seal();
    const buf = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    try {
      if (this.fd === undefined) {
        this.file = path.join(spoolDir(), `part-${crypto.randomUUID()}`);
        this.fd = fs.openSync(this.file, 'wx', 0o600);
      }
      for (let at = 0; at < buf.length;) at += fs.writeSync(this.fd, buf, at);
    } catch (err) {
      // the disk full or failing fails the message (452 4.3.1), whatever action_av_notscanned says
      this.scans.spoolFailure ??= `spool write failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      this.fail(`${this.label} could not be written for scanning: ${(err as Error).message}`);
      return false;
    }
    this.search(buf);
    this.recent.push(buf);
    this.recentBytes += buf.length;
    while (this.recent.length > 1 && this.recentBytes - this.recent[0].length >= TAIL_BYTES) {
      this.recentBytes -= this.recent.shift()!.length;
    }
    return true;
  }

  /** Looks for the XAR header and a PDF header anywhere (a PDF reader finds one after other bytes too). */
  private search(buf: Buffer): void {
    const edge = this.carry.length ? Buffer.concat([this.carry, buf.subarray(0, NEEDLE_BYTES)]) : undefined;
    const has = (needle: Buffer): boolean => buf.includes(needle) || (edge !== undefined && edge.includes(needle));
    this.holdsXar ||= has(XAR_MAGIC);
    this.holdsPdf ||= has(PDF_MAGIC);
    this.carry = Buffer.from(buf.subarray(Math.max(0, buf.length - (NEEDLE_BYTES - 1))));
  }

  private fail(reason: string): void {
    this.failed = reason;
    this.scans.notScanned ??= reason;
    this.discard();
  }
}

export function removeFile(file: string | undefined): void {
  if (!file) return;
  try {
    fs.unlinkSync(file);
  } catch { /* already gone */ }
}

/** Random access to a part's bytes: in memory, or read from its file (open until `close`). */
export function readerOf(item: Item): { read: ReadAt; close(): void } {
  const bytes = item.bytes;
  if (bytes) return { read: (offset, length) => bytes.subarray(offset, offset + length), close: () => undefined };
  let fd: number | undefined;
  return {
    read: (offset, length) => {
      fd ??= fs.openSync(item.file!, 'r');
      const buf = Buffer.alloc(Math.max(0, Math.min(length, item.size - offset)));
      let got = 0;
      while (got < buf.length) {
        const n = fs.readSync(fd, buf, got, buf.length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    },
    close: () => { if (fd !== undefined) fs.closeSync(fd); },
  };
}
