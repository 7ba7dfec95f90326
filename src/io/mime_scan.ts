// The message as its readers take it apart: walks the MIME structure
// (lib/mime_reading) over the bytes the server will get, and scans each
// decoded leaf with clamd on its own. A message some reader could read another
// way is walked again in that reading, up to MAX_READINGS; every leaf of every
// reading is scanned, once per source (the same bytes decoded the same way) and
// small ones once per distinct content. Memory per message is bounded: lines
// are read in pieces, leaves stream to clamd.

import crypto from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { ClamdVerdict } from '../lib/clamd_reply';
import {
  LeafHandle, LeafInfo, LeafSink, LineCutter, MimeWalker, PRIMARY_READING, Reading, STRUCTURE_TRAITS, structureKey, WalkLimits,
} from '../lib/mime_reading';
import { clamdHealth, clamdScan, ClamdOptions, connectTo, daemonFailed, scanOn } from './clamd_client';
import { connectWithin } from './connect';
import { tarOf } from '../lib/tar_archive';
import { answersPing } from './clamd_version';
import { CLAMD_PING_MS } from '../lib/timeout_budget';

/** Structures of one message walked at most; a message readers could take apart in more ways is refused (550 5.6.0). */
export const MAX_READINGS = 32;
/** Leaves up to this size are held, and scanned once per distinct content. */
const SMALL_LEAF_BYTES = 64 * 1024;
/** Walks of one structure at most (the first, then with the decodings and rescans it found needed). */
const MAX_WALKS_PER_STRUCTURE = 4;
/** Small leaves go to clamd as one archive of at most this many members, or this many bytes. */
const BATCH_MEMBERS = 256;
const BATCH_BYTES = 1024 * 1024;
/** Scans of one message waiting for clamd's answer at once. */
const MAX_IN_FLIGHT = 4;
/** A line longer than this is read in pieces (no boundary or header is that long). */
const MAX_PIECE_BYTES = 64 * 1024;

export interface MimeScanSettings {
  clamd: ClamdOptions;
  limits: WalkLimits;
  signal: AbortSignal;
}

export type MimeScanResult =
  | { kind: 'clean'; readings: number; leaves: number }
  /** `names`: each virus with the part it was found in */
  | { kind: 'infected'; names: string[] }
  | { kind: 'not_scanned'; reason: string }
  /** a structure no RFC allows, or more readings than MAX_READINGS */
  | { kind: 'malformed'; reason: string };

/**
 * Walks `read()` (the message as sent, read again for each walk) and scans its
 * leaves: first as the RFCs read it, then in each other structure a walk found
 * readers could give it; a structure is walked again when a walk found a leaf
 * other decodings read otherwise (then that leaf is decoded those ways too).
 */
export async function scanMimeLeaves(read: () => Readable, settings: MimeScanSettings): Promise<MimeScanResult> {
  const scans = new LeafScans(settings);
  const seen = new Set<string>([structureKey(PRIMARY_READING)]);
  const queue: Reading[] = [PRIMARY_READING];
  let result: MimeScanResult | undefined;
  let retries = 0;
  try {
    while (queue.length && !result && !scans.stopped) {
      const structure = queue.shift()!;
      for (let more = true, again = 0; more && !result && !scans.stopped && again < MAX_WALKS_PER_STRUCTURE; again++) {
        scans.walkAgain = false;
        const walker = new MimeWalker(structure, settings.limits, scans);
        await walk(read(), walker, scans);
        // a large part streamed to a daemon that failed (it cannot be streamed again): the walk again, on the next one
        await scans.settled();
        if (scans.retryWalk && !scans.stopped) {
          scans.retryWalk = false;
          if (++retries < settings.clamd.addresses.length) continue;
          scans.notScanned ??= 'clamd unavailable for a MIME part';
        }
        if (scans.stopped) break;
        if (walker.malformed) result = { kind: 'malformed', reason: walker.malformed };
        else if (walker.overLimit) result = { kind: 'not_scanned', reason: walker.overLimit };
        // a part found to need another decoding, or a part taken for one scanned before that ended elsewhere
        more = scans.walkAgain;
        for (const [trait, values] of walker.triggered) {
          if (trait === 'base64' || trait === 'qp') continue;
          for (const value of values) {
            const other = { ...structure, [trait]: value } as Reading;
            const key = structureKey(other);
            if (seen.has(key)) continue;
            seen.add(key);
            queue.push(other);
          }
        }
      }
      if (!result && seen.size > MAX_READINGS) {
        result = {
          kind: 'malformed',
          reason: `the MIME structure reads more than ${MAX_READINGS} ways (${describeReadings([...seen].slice(1))})`,
        };
      }
    }
    await scans.settled();
  } finally {
    scans.stop();
  }
  if (scans.infected.length) return { kind: 'infected', names: scans.infected };
  if (result) return result;
  if (settings.signal.aborted) return { kind: 'not_scanned', reason: String(settings.signal.reason ?? 'transaction ended') };
  if (scans.notScanned) return { kind: 'not_scanned', reason: scans.notScanned };
  return { kind: 'clean', readings: seen.size, leaves: scans.leaves };
}

function describeReadings(keys: string[]): string {
  const traits = STRUCTURE_TRAITS;
  const primary = structureKey(PRIMARY_READING).split('/');
  const differ = new Set<string>();
  for (const key of keys) key.split('/').forEach((v, i) => { if (v !== primary[i]) differ.add(`${traits[i]}=${v}`); });
  return [...differ].join(', ');
}

/** Feeds the message to the walker line by line, waiting while clamd is behind. */
async function walk(stream: Readable, walker: MimeWalker, scans: LeafScans): Promise<void> {
  const lines = new LineCutter((line, continued) => walker.line(line, continued), true, MAX_PIECE_BYTES);
  try {
    for await (const chunk of stream) {
      lines.write(chunk as Buffer);
      if (walker.done || scans.stopped) break;
      const wait = scans.wait();
      if (wait) await wait;
      if (scans.stopped) break;
    }
    if (!walker.done) lines.end();
  } finally {
    stream.destroy();
    walker.end();
  }
}

/** Scans each leaf the walks hand it; stops at the first infected one. */
class LeafScans implements LeafSink {
  readonly infected: string[] = [];
  notScanned?: string;
  /** a streamed part's daemon failed: walk again (the daemon is now skipped) */
  retryWalk = false;
  /** this walk found a part that needs another decoding, or one scanned before that ended elsewhere: walk again */
  walkAgain = false;
  /** extra decodings per part (`leafAt:encoding`) */
  private readonly decodings = new Map<string, Set<string>>();
  /** parts scanned (by source) and where they ended; sources to scan even so */
  private readonly sourcesScanned = new Map<string, number | undefined>();
  private readonly mustScan = new Set<string>();
  leaves = 0;
  /** scans running, scans waiting for one to end, and who waits for room or for all to end */
  private running = 0;
  private readonly queued: (() => void)[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private readonly scanned = new Set<string>();
  private readonly controller = new AbortController();
  readonly signal: AbortSignal;
  /** the leaf being streamed to clamd, if one is */
  streaming?: { stream: PassThrough; done: Promise<void> };

  constructor(private readonly settings: MimeScanSettings) {
    this.signal = AbortSignal.any([settings.signal, this.controller.signal]);
  }

  get stopped(): boolean {
    return this.signal.aborted;
  }

  stop(): void {
    if (!this.controller.signal.aborted) this.controller.abort('scan of the message ended');
    this.streaming?.stream.destroy();
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
    const scan = new LeafScan(this, info);
    return {
      data: (bytes) => scan.data(bytes),
      end: (at) => {
        if (source !== undefined) this.sourcesScanned.set(source, at);
        scan.end();
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

  /** Resolves when the walk may go on: few enough scans waiting, the streamed leaf taken by clamd. */
  wait(): Promise<void> | undefined {
    const streaming = this.streaming;
    if (streaming && streaming.stream.writableNeedDrain) {
      return Promise.race([once(streaming.stream, 'drain').then(() => undefined, () => undefined), streaming.done]);
    }
    // scans wait their turn: the walk goes on once none is left waiting (what waits is a chunk's parts at most)
    if (this.queued.length) return new Promise((resolve) => this.roomWaiters.push(resolve));
    return undefined;
  }

  /** Every scan has its answer. */
  settled(): Promise<void> {
    this.flushBatch();
    if (this.running === 0 && this.queued.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wake(): void {
    if (this.queued.length === 0) for (const w of this.roomWaiters.splice(0)) w();
    if (this.running === 0 && this.queued.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * A small leaf, whole: scanned unless the same bytes were; with clamd's
   * ScanArchive on, with other small leaves as one archive (one connection for
   * many parts; clamd scans each member as a file of its own).
   */
  scanBytes(info: LeafInfo, bytes: Buffer): void {
    const digest = crypto.createHash('sha256').update(bytes).digest('hex');
    if (this.scanned.has(digest) || this.stopped) return;
    this.scanned.add(digest);
    if (!this.settings.limits.batchSmallParts) {
      this.track(async () => where([info]), () => clamdScan(this.settings.clamd, (sink) => sink.end(bytes), this.signal));
      return;
    }
    this.batch.push({ info, bytes });
    this.batchBytes += bytes.length;
    if (this.batch.length >= BATCH_MEMBERS || this.batchBytes >= BATCH_BYTES) this.flushBatch();
  }

  private batch: { info: LeafInfo; bytes: Buffer }[] = [];
  private batchBytes = 0;

  private flushBatch(): void {
    const members = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (!members.length || this.stopped) return;
    const scan = (some: typeof members, signal: AbortSignal): Promise<ClamdVerdict> => {
      const archive = tarOf(some.map((m, i) => ({ name: `${i + 1}-part-${m.info.path}`, data: m.bytes })));
      return clamdScan(this.settings.clamd, (sink) => sink.end(archive), signal);
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
      return where(set.map((m) => m.info));
    };
    this.track(locate, () => scan(members, this.signal));
  }

  /** A large leaf: streamed to one daemon as the walk decodes it. */
  startStream(info: LeafInfo): PassThrough {
    const stream = new PassThrough();
    stream.on('error', () => undefined);
    const verdict = (): Promise<ClamdVerdict> => streamOnce(this.settings.clamd, stream, this.signal).then((r) => {
      if (r.daemonFailed && !this.stopped) this.retryWalk = true;
      return r.daemonFailed ? { kind: 'clean' as const } : r.verdict;
    });
    const done = this.track(async () => where([info]), verdict);
    this.streaming = { stream, done };
    void done.then(() => {
      stream.destroy();
      if (this.streaming?.stream === stream) this.streaming = undefined;
    });
    return stream;
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

/** How the summary names where a virus was: the part, or the parts one of which holds it. */
function where(infos: LeafInfo[]): string {
  const named = (i: LeafInfo): string => `part ${i.path}${i.filename ? ` "${i.filename.replace(/[^\x20-\x7e]|"/g, '?').slice(0, 80)}"` : ''}`;
  if (infos.length === 1) return named(infos[0]);
  return `one of ${infos.length} parts: ${infos.slice(0, 3).map(named).join(', ')}${infos.length > 3 ? ', ...' : ''}`;
}

/** One leaf's bytes: held while small, streamed once large. */
class LeafScan implements LeafHandle {
  private held: Buffer[] = [];
  private bytes = 0;
  private stream?: PassThrough;

  constructor(private readonly scans: LeafScans, private readonly info: LeafInfo) {}

  data(bytes: Buffer): void {
    if (this.scans.stopped) return;
    if (this.stream) {
      this.stream.write(bytes);
      return;
    }
    this.held.push(bytes);
    this.bytes += bytes.length;
    if (this.bytes > SMALL_LEAF_BYTES) {
      this.stream = this.scans.startStream(this.info);
      for (const b of this.held) this.stream.write(b);
      this.held = [];
    }
  }

  end(): void {
    if (this.stream) {
      this.stream.end();
      return;
    }
    // an empty part holds nothing to scan
    if (this.bytes > 0) this.scans.scanBytes(this.info, Buffer.concat(this.held, this.bytes));
    this.held = [];
  }
}

/**
 * Streams to the healthiest daemon once (a stream cannot be read again for
 * another): `daemonFailed` when that daemon could not be reached, dropped the
 * scan, hung (PING unanswered, with another daemon to go to) or timed out.
 */
async function streamOnce(
  opts: ClamdOptions, stream: PassThrough, signal: AbortSignal,
): Promise<{ verdict: ClamdVerdict; daemonFailed: boolean }> {
  const address = clamdHealth.order(opts.addresses)[0];
  let socket;
  try {
    socket = await connectWithin(connectTo(address), opts.connectTimeoutMs);
  } catch (err) {
    daemonFailed(address, (err as Error).message);
    return { verdict: { kind: 'not_scanned', reason: `clamd ${address}: ${(err as Error).message}` }, daemonFailed: true };
  }
  // the timeout and the hang probe run from the start: the part is decoded after the final dot, and a daemon
  // that stops reading would otherwise hold the walk (it waits for the stream to drain) for good
  const probe = opts.addresses.length > 1 ? (): Promise<boolean> => answersPing(address, CLAMD_PING_MS) : undefined;
  const outcome = await scanOn(socket, address, opts.scanTimeoutMs, (framer) => stream.pipe(framer), { signal, probe });
  const failed = (outcome.dropped || outcome.timedOut === true) && !signal.aborted;
  if (failed) daemonFailed(address, outcome.verdict.kind === 'not_scanned' ? outcome.verdict.reason : 'dropped');
  else if (!signal.aborted) clamdHealth.markUp(address);
  return { verdict: outcome.verdict, daemonFailed: failed };
}
