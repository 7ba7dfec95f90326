// What becomes of each decoded part and archive member: collected as it
// arrives (io/part_bytes), then identified by its bytes (lib/content_formats) and
//   - refused as banned (lib/banned_types: an attachment or member only),
//   - ending the scan when clamd must not see it (XAR): "not scanned",
//   - opened when the relay reads the format (io/zip_members for stored and
//     deflated ZIPs, io/gzip_members, io/unpack, io/pdf_files), each member handled the same
//     way, recursively, within clamd's limits,
//   - scanned by clamd: small parts by distinct content and together as one
//     archive, large ones from their file; containers themselves only once
//     every part and member is known (a container clamd opens must not hold
//     what clamd must not see).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { bannedTypeOf } from '../lib/banned_types';
import type { ClamdVerdict } from '../lib/clamd_reply';
import { ContentFormat, endsAsZip, identify } from '../lib/content_formats';
import type { LeafHandle, LeafInfo, LeafSink, WalkLimits } from '../lib/mime_reading';
import { tarOf } from '../lib/tar_archive';
import { checkZipStructure, ZipMember } from '../lib/zip_structure';
import { clamdScan, ClamdOptions } from './clamd_client';
import { pdfEmbeddedFiles } from './pdf_files';
import { spoolDir } from './process_dirs';
import { MemberSink, unpack, UnpackBounds } from './unpack';
import { Collector, Item, PartBudget, readerOf, removeFile, SMALL_PART_BYTES } from './part_bytes';
import { gzipMembers } from './gzip_members';
import { readableInProcess, zipMembers } from './zip_members';

/**
 * Larger parts are held in memory up to this size while the message's parts
 * held (and not yet scanned) stay under MEMORY_BUDGET_BYTES; beyond, they go
 * to a file in the spool folder (writing and reading back costs CPU).
 */
const MEMORY_PART_BYTES = 4 * 1024 * 1024;
const MEMORY_BUDGET_BYTES = 8 * 1024 * 1024;
/** Small parts go to clamd as one archive of at most this many members, or this many bytes. */
const BATCH_MEMBERS = 256;
const BATCH_BYTES = 1024 * 1024;
/** Pieces a part held in memory is written to clamd in (one INSTREAM frame each). */
const FEED_BYTES = 64 * 1024;
/** Scans of one message waiting for clamd's answer at once. */
const MAX_IN_FLIGHT = 4;
/** Address space of an unpacking tool: enough for the dictionaries of ordinary archives (7-Zip's -mx9: 64 MiB). */
const UNPACK_MEMORY_BYTES = 768 * 1024 * 1024;

/** The MIME walk's bounds, and clamd's for what is unpacked. */
export interface ScanLimits extends WalkLimits {
  /** a part or member larger than this is not scanned (clamd's MaxFileSize) */
  maxFileSize: number;
  /** parts and members of one message, together (clamd's MaxScanSize) */
  maxScanSize: number;
}

export interface PartScanSettings {
  clamd: ClamdOptions;
  limits: ScanLimits;
  /** av_banned_types of the message's section */
  banned: readonly string[];
  signal: AbortSignal;
  /**
   * Called once every part and member is known and none is of a format clamd
   * must not see (lib/content_formats `unsafe`): the whole message may go to clamd now.
   */
  onSafe?: () => void;
}


/** The file a compressed file's name decompresses to: `a.vbs.gz` is `a.vbs`, `a.tgz` is `a.tar`. */
function decompressedName(name: string): string | undefined {
  const m = /^(.*?)\.(gz|z|bz2|bz|xz|zst|lz4|lz|lzma|tgz|tbz2?|txz|tzst|taz)[. ]*$/i.exec(name);
  if (!m || !m[1]) return undefined;
  return /^t/i.test(m[2]) ? `${m[1]}.tar` : m[1];
}

function quoted(name: string): string {
  return `"${name.replace(/[^\x20-\x7e]|"/g, '?').slice(0, 80)}"`;
}

const ZIP_FORMAT = identify(Buffer.from('PK\x03\x04', 'latin1'))!;
const PDF_FORMAT = identify(Buffer.from('%PDF-1.7', 'latin1'))!;

/** Scans each part the walks hand it and each member of what it opens; stops at the first infected one. */
export class PartScans implements LeafSink, PartBudget {
  readonly infected: string[] = [];
  notScanned?: string;
  /** a part could not be written to the spool (ENOSPC, EIO): the message fails with 452 4.3.1 */
  spoolFailure?: string;
  /** why clamd must see nothing of this message */
  unsafe?: string;
  /** this walk found a part that needs another decoding, or one scanned before that ended elsewhere: walk again */
  walkAgain = false;
  leaves = 0;
  readonly limits: ScanLimits;
  private members = 0;
  private scannedBytes = 0;
  /** extra decodings per part (`leafAt:encoding`) */
  private readonly decodings = new Map<string, Set<string>>();
  /** parts scanned (by source) and where they ended; sources to scan even so */
  private readonly sourcesScanned = new Map<string, number | undefined>();
  private readonly mustScan = new Set<string>();
  /** scans running, scans waiting for one to end, and who waits for room or for all to end */
  private running = 0;
  private readonly queued: (() => void)[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private readonly scanned = new Set<string>();
  /** containers to open, one at a time; containers to scan once every part is known */
  /** `candidate`: the format was found after other bytes; not opening it is no failure */
  private readonly toOpen: { item: Item; format: ContentFormat; candidate: boolean }[] = [];
  private opening?: Promise<void>;
  private readonly deferred: Item[] = [];
  private readonly controller = new AbortController();
  readonly signal: AbortSignal;

  constructor(private readonly settings: PartScanSettings) {
    this.signal = AbortSignal.any([settings.signal, this.controller.signal]);
    this.limits = settings.limits;
  }

  get stopped(): boolean {
    return this.signal.aborted;
  }

  stop(): void {
    if (!this.controller.signal.aborted) this.controller.abort('scan of the message ended');
    for (const item of this.deferred.splice(0)) removeFile(item.file);
    for (const { item } of this.toOpen.splice(0)) removeFile(item.file);
  }

  /** Bytes of parts over SMALL_PART_BYTES held in memory until scanned. */
  private memoryHeld = 0;

  /** A part of `size` bytes may be held in memory rather than written to a file. */
  mayHold(size: number): boolean {
    return size <= MEMORY_PART_BYTES && this.memoryHeld + size <= MEMORY_BUDGET_BYTES;
  }

  hold(size: number): void {
    this.memoryHeld += size;
  }

  /** Counts bytes taken for scanning; false past clamd's MaxScanSize. */
  count(bytes: number): boolean {
    this.scannedBytes += bytes;
    return this.scannedBytes <= this.limits.maxScanSize;
  }

  leafStart(info: LeafInfo): LeafHandle {
    this.leaves++;
    const { source } = info;
    if (source !== undefined && this.sourcesScanned.has(source) && !this.mustScan.has(source)) {
      // the same bytes decoded the same way were scanned in an earlier walk: only check that the part ends there
      const ended = this.sourcesScanned.get(source);
      return {
        data: () => undefined,
        end: (at) => {
          if (at === ended) return;
          this.mustScan.add(source);
          this.walkAgain = true;
        },
      };
    }
    const names = info.names ?? (info.filename ? [info.filename] : []);
    const label = `part ${info.path}${info.filename ? ` ${quoted(info.filename)}` : ''}`;
    const collector = new Collector(this, label, 0, names, info.attachment ?? names.length > 0);
    collector.contentType = info.contentType;
    return {
      data: (bytes) => { collector.data(bytes); },
      end: (at) => {
        if (source !== undefined) this.sourcesScanned.set(source, at);
        const item = collector.end();
        if (item) this.dispatch(item);
      },
    };
  }

  decodingsOf(leafAt: string, encoding: string): readonly string[] {
    return [...(this.decodings.get(`${leafAt}:${encoding}`) ?? [])];
  }

  noteDecoding(leafAt: string, encoding: string, mode: string): void {
    const key = `${leafAt}:${encoding}`;
    let set = this.decodings.get(key);
    if (!set) this.decodings.set(key, set = new Set());
    if (set.has(mode)) return;
    set.add(mode);
    this.walkAgain = true;
  }

  /** Resolves when the walk may go on: few enough scans waiting. */
  wait(): Promise<void> | undefined {
    // scans wait their turn: the walk goes on once none is left waiting (what waits is a chunk's parts at most)
    if (this.queued.length) return new Promise((resolve) => this.roomWaiters.push(resolve));
    return undefined;
  }

  /** Every container is opened and every scan has its answer. */
  async settled(): Promise<void> {
    for (;;) {
      this.flushBatch();
      if (this.opening) {
        await this.opening;
        continue;
      }
      if (this.toOpen.length && !this.stopped) {
        this.openNext();
        continue;
      }
      if (this.running > 0 || this.queued.length > 0) {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
        continue;
      }
      return;
    }
  }

  /** Every container is opened (its members handed on; their scans may still run). */
  private async openedAll(): Promise<void> {
    for (;;) {
      if (this.opening) await this.opening;
      else if (this.toOpen.length && !this.stopped) this.openNext();
      else return;
    }
  }

  /**
   * After the walks: once every container is opened and nothing unsafe was
   * found, the whole message may go to clamd (onSafe) and the containers
   * themselves do; resolves when every scan has its answer.
   */
  async finish(): Promise<void> {
    await this.openedAll();
    if (this.stopped) return;
    this.settings.onSafe?.();
    for (const item of this.deferred.splice(0)) this.scanItem(item);
    await this.settled();
  }

  private wake(): void {
    if (this.queued.length === 0) for (const w of this.roomWaiters.splice(0)) w();
    if (this.running === 0 && this.queued.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private forbid(reason: string): void {
    this.unsafe ??= reason;
    this.controller.abort('unsafe');
    this.stop();
  }

  /** A whole part or member: judged, opened or scanned. */
  private dispatch(item: Item): void {
    if (this.stopped) {
      removeFile(item.file);
      return;
    }
    const banned = item.attachment ? bannedTypeOf(this.settings.banned, item.head, item.names, item.contentType) : undefined;
    if (banned) {
      removeFile(item.file);
      this.infected.push(`Banned.${banned} (${item.label})`);
      this.controller.abort('infected');
      this.stop();
      return;
    }
    const formats: ContentFormat[] = [];
    const byHead = identify(item.head);
    if (byHead) formats.push(byHead);
    // a ZIP after other bytes (a self-extracting program, a picture): ZIP readers open it too
    if (byHead?.id !== 'zip' && endsAsZip(item.tail)) formats.push(ZIP_FORMAT);
    const unsafe = formats.find((f) => f.unsafe);
    if (unsafe || item.holdsXar) {
      removeFile(item.file);
      this.forbid(`${unsafe?.id ?? 'xar'} content in ${item.label}: ${unsafe?.unsafe ?? 'clamd writes unbounded temporary files for XAR'}`);
      return;
    }
    const opened = formats.filter((f) => f.row === 'relay');
    for (const f of formats) if (f.row === 'none') this.notScanned ??= `${f.id} in ${item.label}: no reader here opens it`;
    // a PDF header after other bytes: qpdf (and PDF readers) may still open it; if qpdf cannot, neither is it a PDF to scan
    const maybePdf = item.holdsPdf && !formats.some((f) => f.id === 'pdf');
    if (opened.length === 0 && !maybePdf) {
      this.scanItem(item);
      return;
    }
    if (item.depth >= this.limits.maxDepth) {
      removeFile(item.file);
      this.notScanned ??= `${item.label} nests archives deeper than ${this.limits.maxDepth} (clamd MaxRecursion)`;
      return;
    }
    this.deferred.push(item);
    for (const format of opened) this.toOpen.push({ item, format, candidate: false });
    if (maybePdf) this.toOpen.push({ item, format: PDF_FORMAT, candidate: true });
    if (!this.opening) this.openNext();
  }

  private openNext(): void {
    const next = this.toOpen.shift();
    if (!next || this.stopped) return;
    this.opening = this.open(next.item, next.format, next.candidate)
      .catch((err: Error) => { this.notScanned ??= `${next.format.id} ${next.item.label}: ${err.message}`; })
      .finally(() => {
        this.opening = undefined;
        if (this.toOpen.length && !this.stopped) this.openNext();
      });
  }

  /** Opens one container; its members are dispatched as they come. */
  private async open(item: Item, format: ContentFormat, candidate: boolean): Promise<void> {
    const source = readerOf(item);
    // the tools read a file: a container held in memory is written out for them (ZIPs are read in-process)
    let file = item.file;
    try {
      let zipped: ZipMember[] | undefined;
      if (format.id === 'zip') {
        const check = checkZipStructure(item.size, source.read, this.limits.maxLeaves);
        if (!check.ok) {
          this.notScanned ??= `zip ${item.label}: ${check.reason}`;
          return;
        }
        if (readableInProcess(check.members)) zipped = check.members;
      }
      if (!zipped && format.id !== 'gzip' && !file) {
        file = path.join(spoolDir(), `part-${crypto.randomUUID()}`);
        try {
          fs.writeFileSync(file, item.bytes!, { mode: 0o600, flag: 'wx' });
        } catch (err) {
          this.spoolFailure ??= `spool write failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
          throw err;
        }
      }
      let current: Collector | undefined;
      let index = 0;
      const sink: MemberSink = {
        member: (name, aliases = []) => {
          if (++this.members > this.limits.maxLeaves) {
            this.notScanned ??= `the message's archives hold more than ${this.limits.maxLeaves} files (clamd MaxFiles)`;
            return false;
          }
          index++;
          const label = `${item.label} > ${name ? quoted(name) : `${format.id} content`}`;
          // a compressed file decompresses to the name it came by, less its extension (what gunzip, xz, 7-Zip write)
          const unpacked = format.opener === 'stream' ? item.names.map(decompressedName).filter((n): n is string => !!n) : [];
          current = new Collector(this, label, item.depth + 1, [name, ...aliases, ...unpacked].filter(Boolean), true);
          return true;
        },
        data: (bytes) => current?.data(bytes) ?? false,
        memberEnd: () => {
          const done = current?.end();
          current = undefined;
          if (done) this.dispatch(done);
        },
        room: () => this.wait(),
      };
      const bounds: UnpackBounds = { timeoutMs: this.settings.clamd.scanTimeoutMs, memoryBytes: UNPACK_MEMORY_BYTES, signal: this.signal };
      const result = zipped ? await zipMembers(source.read, zipped, sink, this.signal)
        : format.id === 'gzip' ? await gzipMembers(source.read, item.size, sink, this.signal)
          : format.opener === 'pdf' ? await pdfEmbeddedFiles(file!, sink, bounds) : await unpack(file!, format.opener!, sink, bounds);
      current?.discard();
      if (result.ok === false && !candidate) this.notScanned ??= `${format.id} ${item.label}: ${result.reason}`;
      else if (result.ok === true && index === 0 && format.opener === 'stream') {
        this.notScanned ??= `${format.id} ${item.label}: nothing decompressed`;
      }
    } finally {
      source.close();
      if (file !== item.file) removeFile(file);
    }
  }

  /** A part clamd may see: small ones by distinct content (batched when clamd opens archives), large ones from their file. */
  private scanItem(item: Item): void {
    if (this.stopped) {
      removeFile(item.file);
      return;
    }
    const bytes = item.bytes;
    if (bytes && item.size <= SMALL_PART_BYTES) {
      if (item.size > 0) this.scanBytes(item, bytes);
      return;
    }
    if (bytes) {
      const scan = (): Promise<ClamdVerdict> => clamdScan(this.settings.clamd, (sink) => feedInFrames(sink, bytes), this.signal);
      const done = this.track(async () => item.label, scan);
      void done.finally(() => { this.memoryHeld -= item.size; });
      return;
    }
    const file = item.file!;
    const done = this.track(async () => item.label, () => clamdScan(this.settings.clamd, (sink) => {
      fs.createReadStream(file).on('error', (err) => sink.destroy(err)).pipe(sink);
    }, this.signal));
    void done.finally(() => removeFile(file));
  }

  private scanBytes(item: Item, bytes: Buffer): void {
    const digest = crypto.createHash('sha256').update(bytes).digest('hex');
    if (this.scanned.has(digest) || this.stopped) return;
    this.scanned.add(digest);
    if (!this.limits.batchSmallParts) {
      this.track(async () => item.label, () => clamdScan(this.settings.clamd, (sink) => feedInFrames(sink, bytes), this.signal));
      return;
    }
    this.batch.push({ item, bytes });
    this.batchBytes += bytes.length;
    if (this.batch.length >= BATCH_MEMBERS || this.batchBytes >= BATCH_BYTES) this.flushBatch();
  }

  private batch: { item: Item; bytes: Buffer }[] = [];
  private batchBytes = 0;

  private flushBatch(): void {
    const members = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (!members.length || this.stopped) return;
    const scan = (some: typeof members, signal: AbortSignal): Promise<ClamdVerdict> => {
      const archive = tarOf(some.map((m, i) => ({ name: `${i + 1}-part`, data: m.bytes })));
      return clamdScan(this.settings.clamd, (sink) => feedInFrames(sink, archive), signal);
    };
    // an infected archive is halved until the part is found (a few scans, only then)
    const locate = async (): Promise<string> => {
      let set = members;
      while (set.length > 1 && !this.settings.signal.aborted) {
        const half = set.slice(0, Math.ceil(set.length / 2));
        const v = await scan(half, this.settings.signal);
        if (v.kind === 'infected') set = half;
        else if (v.kind === 'clean') set = set.slice(half.length);
        else break;
      }
      return where(set.map((m) => m.item.label));
    };
    this.track(locate, () => scan(members, this.signal));
  }

  /**
   * Runs a scan when fewer than MAX_IN_FLIGHT run (else it waits its turn); resolves when it has its answer.
   * `location`: the part(s) a virus was found in, asked only then.
   */
  private track(location: () => Promise<string>, start: () => Promise<ClamdVerdict>): Promise<void> {
    return new Promise<void>((resolve) => {
      const run = (): void => {
        this.running++;
        start().then(async (v) => {
          if (v.kind === 'infected') {
            // stop the walks now; the scans that locate the part run under the caller's signal only
            this.controller.abort('infected');
            const at = await location().catch(() => 'a part');
            this.infected.push(...v.names.map((name) => `${name} (${at})`));
            this.stop();
          } else if (v.kind === 'not_scanned' && !this.controller.signal.aborted) {
            this.notScanned ??= v.reason;
          }
        }).catch((err: Error) => {
          this.notScanned ??= `MIME part scan failed: ${err.message}`;
        }).finally(() => {
          this.running--;
          resolve();
          this.queued.shift()?.();
          this.wake();
        });
      };
      if (this.running < MAX_IN_FLIGHT) run();
      else this.queued.push(run);
    });
  }
}

/** Bytes written in INSTREAM-frame-sized pieces: clamd takes many 64 KiB frames better than one large one. */
function feedInFrames(sink: Writable, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; at += FEED_BYTES) sink.write(bytes.subarray(at, at + FEED_BYTES));
  sink.end();
}

/** How the summary names where a virus was: the part, or the parts one of which holds it. */
function where(labels: string[]): string {
  if (labels.length === 1) return labels[0];
  return `one of ${labels.length} parts: ${labels.slice(0, 3).join(', ')}${labels.length > 3 ? ', ...' : ''}`;
}
