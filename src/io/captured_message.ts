// One message as the relay received it: the DATA lines un-stuffed once
// (src/lib/smtp_data.ts), in memory up to a limit and then in a private spool
// file. These bytes are what the scanners read and what the relay sends on;
// nothing else holds the message (see docs/security.md).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { CaptureFailure } from '../lib/policy';
import { HeaderBlocks, hasBareCr, hasBareLf, headerLineKind, unstuffLine } from '../lib/smtp_data';

/** Messages larger than this go to disk. */
export const MEMORY_LIMIT_BYTES = 4 * 1024 * 1024;
const WRITE_BATCH_BYTES = 64 * 1024;

/** `bodyFirst`: this line starts the body of a message without a header section (see `headerless`) */
export type LineListener = (line: Buffer, bodyFirst: boolean) => void;

/** The empty line a message without a header section gets on its way out, after the relay's fields. */
export const HEADER_BODY_SEPARATOR = Buffer.from('\r\n');

export class CapturedMessage {
  /** bytes of the message (un-stuffed), counted on after a failure */
  size = 0;
  /** the client's bytes (un-stuffed), as RFC 1870 counts a message against SIZE */
  private clientSize = 0;
  /**
   * Set once, when the relay stops keeping the message (over the size limit, a
   * spool write failed): what was stored is freed, the rest is read and dropped,
   * and the message is answered at its end (552 5.3.4, 452 4.3.1), never scanned or sent.
   */
  failure?: CaptureFailure;
  /** offset of the empty line that ends the header section; the whole message when there is none */
  private headerEndAt?: number;
  /** what refuses the message outright: a bare CR or LF in a line */
  malformed?: string;
  /** in memory: blocks of about 64 KiB (copies: a line is a view into Haraka's read buffer, which it would keep) */
  private chunks: Buffer[] = [];
  /** lines not yet joined into a block */
  private block: Buffer[] = [];
  private blockBytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private fd?: number;
  private file?: string;
  private listeners: LineListener[] = [];
  private destroyed = false;
  private readonly headerBlocks = new HeaderBlocks();

  /** `sizeLimit`: the most the client may send (0: no limit) */
  constructor(private readonly spoolDir: string, private readonly memoryLimit = MEMORY_LIMIT_BYTES, private readonly sizeLimit = 0) {}

  /** A line the relay itself puts at the top (its Received: line), before any client line. */
  prepend(line: Buffer): void {
    this.sawField = true;
    this.store(line);
  }

  /** A DATA line as the client sent it, with its line ending. */
  addLine(raw: Buffer): void {
    if (this.destroyed) return;
    if (this.sizeLimit && !this.failure && this.clientSize + raw.length - (raw[0] === 0x2e ? 1 : 0) > this.sizeLimit) {
      this.fail({ kind: 'too_big', limit: this.sizeLimit });
    }
    if (this.failure) {
      // read to its end and dropped: only counted
      this.size += raw.length;
      return;
    }
    if (!this.malformed && hasBareCr(raw)) this.malformed = `bare CR in line ${this.lineCount + 1} (lines must end in CRLF)`;
    if (!this.malformed && hasBareLf(raw)) this.malformed = `bare LF in line ${this.lineCount + 1} (lines must end in CRLF)`;
    this.lineCount++;
    const line = unstuffLine(raw);
    this.clientSize += line.length;
    if (!this.malformed && this.headerBlocks.hidesEncoding(line)) {
      this.malformed = `line ${this.lineCount} of a header holds only blanks (read differently by scanners and mail readers)`;
    }
    if (!this.emptyLineSeen) {
      if (isEmptyLine(line)) this.emptyLineSeen = true;
      else this.headerLineCount++;
    }
    const bodyFirst = this.headerEndAt === undefined && this.checkHeaderLine(line);
    if (!this.leadingDotLine && raw[0] === 0x2e && raw[1] !== 0x2e) this.leadingDotLine = this.lineCount;
    this.store(line);
    if (this.failure) return;
    for (const listener of this.listeners) listener(line, bodyFirst);
  }

  private lineCount = 0;
  /** a field was seen in the top-level header section (the relay's own, or the client's) */
  private sawField = false;
  /** the client sent a line of the top-level header section */
  private clientHeaderSeen = false;
  /** the client sent a header field (a continuation line needs one before it) */
  private clientFieldSeen = false;
  /**
   * The first line sent with a single leading dot (not doubled: RFC 5321 4.5.2
   * has the receiver remove it). The relay reads it so; Haraka's own copy of the
   * message keeps it: a reader of that copy (haraka-plugin-clamd) sees other bytes.
   */
  leadingDotLine?: number;
  /** the client's lines before its first empty line (what Haraka takes as the header) */
  headerLineCount = 0;
  private emptyLineSeen = false;
  /** the client's message has no header section: its first line is body (then the relay's fields go on top) */
  headerless = false;

  /**
   * A line of the top-level header section (un-stuffed): its end, or a line that
   * is neither a field nor a continuation after one. True when it starts the
   * body of a message without a header section.
   */
  private checkHeaderLine(line: Buffer): boolean {
    if (isEmptyLine(line)) {
      this.headerEndAt = this.size;
      return false;
    }
    const kind = headerLineKind(line);
    const firstClientLine = !this.clientHeaderSeen;
    if (kind === 'other' && firstClientLine && !isMboxFromLine(line)) {
      // a first line that is no field starts the body, as mail readers and Postfix read it
      this.headerEndAt = this.size;
      this.headerless = true;
      return true;
    }
    this.clientHeaderSeen = true;
    if (kind === 'field') {
      this.sawField = true;
      this.clientFieldSeen = true;
    } else if (kind === 'continuation' && !this.clientFieldSeen && !this.malformed) {
      // Postfix starts the body at a continuation of no field, some readers skip it and read on as header
      this.malformed = `line ${this.lineCount} continues no header field of the message's `
        + '(read differently by scanners and mail servers)';
    } else if (kind === 'other' && firstClientLine && !this.sawField) {
      // an mbox "From " line: an envelope line to readers, the header goes on after it (Postfix: X-Mailbox-Line:)
      this.sawField = true;
    } else if (kind === 'other' && this.sawField && !this.malformed) {
      this.malformed = `line ${this.lineCount} is not a header field, and no empty line ends the header before it `
        + '(read differently by scanners and mail servers)';
    }
    return false;
  }

  /** Called with each line (un-stuffed) as it arrives: the live scan. */
  onLine(listener: LineListener): void {
    this.listeners.push(listener);
  }

  offLine(listener: LineListener): void {
    this.listeners = this.listeners.filter((l) => l !== listener);
  }

  /** What is stored so far, while it is all in memory (at the data hook: the relay's own lines). */
  bytesSoFar(): Buffer {
    this.sealBlock();
    return this.fd === undefined ? Buffer.concat(this.chunks) : Buffer.alloc(0);
  }

  /** The client sent the final dot: everything is stored. */
  end(): void {
    this.listeners = [];
    this.sealBlock();
    this.flushToDisk();
  }

  get headerEnd(): number {
    return this.headerEndAt ?? this.size;
  }

  /** The bytes from `start` to `end`, from memory or the spool file. */
  read(start = 0, end = this.size): Readable {
    if (!this.destroyed) {
      this.sealBlock();
      this.flushToDisk();
    }
    // never a part of a message for a whole one: a reader of a freed or failed message gets an error
    if (this.destroyed || this.failure) {
      const why = this.destroyed ? 'the captured message was freed' : 'the message was not kept';
      return new Readable({ read(): void { this.destroy(new Error(why)); } });
    }
    if (this.fd === undefined) {
      const slices: Buffer[] = [];
      let offset = 0;
      for (const chunk of this.chunks) {
        const from = Math.max(start - offset, 0);
        const to = Math.min(end - offset, chunk.length);
        if (from < to) slices.push(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
        offset += chunk.length;
        if (offset >= end) break;
      }
      return Readable.from(slices, { objectMode: false });
    }
    if (end <= start) return Readable.from([]);
    return fs.createReadStream(this.file!, { start, end: end - 1, highWaterMark: WRITE_BATCH_BYTES });
  }

  async readAll(start = 0, end = this.size): Promise<Buffer> {
    return collect(this.read(start, end));
  }

  /**
   * The message split as the mail server and its readers will get it: a message
   * without a header section with the empty line it gets on its way out (before
   * it, only the relay's own lines). What the scanners read, so that they see
   * the header and body the readers will.
   */
  readAsSent(): Readable {
    if (!this.headerless) return this.read();
    const headerEnd = this.headerEnd;
    const parts = async function* (m: CapturedMessage): AsyncGenerator<Buffer> {
      yield* m.read(0, headerEnd);
      yield HEADER_BODY_SEPARATOR;
      yield* m.read(headerEnd);
    };
    return Readable.from(parts(this), { objectMode: false });
  }

  async readAllAsSent(): Promise<Buffer> {
    return collect(this.readAsSent());
  }

  /** the message as it came, once cleaning replaced it (what the quarantine keeps of a cleaned message) */
  original?: Buffer;

  /** Puts a rebuilt message in place of this one (cleaning); `original`: the bytes it replaces, kept for the quarantine. */
  replace(message: Buffer, original?: Buffer): void {
    this.original = original;
    this.closeFile();
    this.block = [];
    this.blockBytes = 0;
    this.chunks = [message];
    this.size = message.length;
    const blank = message.indexOf('\r\n\r\n');
    this.headerEndAt = message.subarray(0, 2).toString() === '\r\n' ? 0 : blank < 0 ? undefined : blank + 2;
    this.headerless = false;
  }

  destroy(): void {
    this.destroyed = true;
    this.free();
  }

  /** Stops keeping the message (once): what is held is freed, the spool file removed, the live scan fed no more. */
  private fail(failure: CaptureFailure): void {
    if (this.failure) return;
    this.failure = failure;
    this.free();
  }

  private free(): void {
    this.listeners = [];
    this.chunks = [];
    this.block = [];
    this.blockBytes = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.closeFile();
  }

  private store(line: Buffer): void {
    this.size += line.length;
    if (this.fd === undefined && this.size <= this.memoryLimit) {
      this.block.push(line);
      this.blockBytes += line.length;
      if (this.blockBytes >= WRITE_BATCH_BYTES) this.sealBlock();
      return;
    }
    if (this.fd === undefined) this.openFile();
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) this.flushToDisk();
  }

  private sealBlock(): void {
    if (this.blockBytes === 0) return;
    this.chunks.push(Buffer.concat(this.block, this.blockBytes));
    this.block = [];
    this.blockBytes = 0;
  }

  private openFile(): void {
    this.sealBlock();
    this.file = path.join(this.spoolDir, `${crypto.randomUUID()}.eml`);
    this.pending = this.chunks;
    this.pendingBytes = this.chunks.reduce((n, c) => n + c.length, 0);
    this.chunks = [];
    try {
      // O_EXCL: never write through a file or link someone placed there
      this.fd = fs.openSync(this.file, 'wx+', 0o600);
    } catch (err) {
      this.file = undefined;
      this.fail({ kind: 'spool_error', reason: spoolErrorText(err) });
    }
  }

  /**
   * Writes what is pending. A write error (ENOSPC, EIO, EDQUOT) fails this
   * message only: Haraka calls add_data without a guard, an exception would end
   * the worker and every session on it.
   */
  private flushToDisk(): void {
    if (this.fd === undefined || this.pendingBytes === 0) return;
    const bytes = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      // a short write (the disk filling) is followed by the error, or by the rest
      for (let at = 0; at < bytes.length;) at += fs.writeSync(this.fd, bytes, at);
    } catch (err) {
      this.fail({ kind: 'spool_error', reason: spoolErrorText(err) });
    }
  }

  private closeFile(): void {
    if (this.fd === undefined) return;
    try { fs.closeSync(this.fd); } catch { /* closed */ }
    try { fs.unlinkSync(this.file!); } catch { /* removed */ }
    this.fd = undefined;
    this.file = undefined;
  }
}

function spoolErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return `spool write failed: ${e.code ?? e.message}`;
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

function isEmptyLine(line: Buffer): boolean {
  return line.length === 2 && line[0] === 0x0d && line[1] === 0x0a;
}

function isMboxFromLine(line: Buffer): boolean {
  return line.subarray(0, 5).toString('latin1') === 'From ';
}
