// Streams the message to clamd while the client is still sending it, so that
// after the final dot only clamd's own scanning time is left (and the message
// is not read back from Haraka's store a second time). Lines come from a tap
// on the transaction (see tapTransaction). On any trouble the live scan steps
// aside and the message is scanned the ordinary way at data_post.

import { PassThrough } from 'node:stream';
import type { ClamdVerdict } from '../../lib/clamd_reply';
import type { Transaction } from '../shared/haraka';
import { connectWithin } from '../shared/connect';
import { ClamdOptions, connectTo, scanOn } from './clamd_client';

/** Written to clamd in pieces of about this size (one INSTREAM frame each). */
const BATCH_BYTES = 64 * 1024;
/** clamd this far behind the client: stop (it would all sit in memory) and scan at data_post. */
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;

export type LiveResult =
  | { verdict: ClamdVerdict }
  /**
   * no verdict; `failed` names a daemon that is down (skip it), `cancelled` says the
   * transaction ended (nothing to scan any more), else scan again as usual
   */
  | { reason: string; failed?: string; cancelled?: boolean };

export class LiveScan {
  private readonly input = new PassThrough();
  private readonly controller = new AbortController();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** bytes of the message's lines as the client sent them (dot-stuffed) */
  private received = 0;
  private state: 'streaming' | 'ended' | 'abandoned' = 'streaming';
  private abandonReason = '';
  private cancelled = false;
  private markFed!: () => void;
  private readonly fed = new Promise<void>((resolve) => { this.markFed = resolve; });
  readonly result: Promise<LiveResult>;
  /** the result is in (a verdict, or a failure such as an unreachable daemon) */
  settled = false;

  constructor(private readonly opts: ClamdOptions, private readonly maxBytes: number) {
    this.input.on('error', () => undefined);
    this.result = this.run();
    void this.result.then(() => { this.settled = true; });
  }

  /** A line of the message as Haraka received it (dot-stuffed, with its line ending). */
  add(line: Buffer): void {
    if (this.state !== 'streaming') return;
    this.received += line.length;
    if (this.maxBytes > 0 && this.received > this.maxBytes) return this.abandon('message larger than av_scan_obj_max_size');
    // SMTP dot-stuffing off, as clamd must see the message
    this.pending.push(line[0] === 0x2e && line[1] === 0x2e ? line.subarray(1) : line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= BATCH_BYTES) this.flush();
  }

  /** A line that was in the message before the tap started (Haraka's own Received:). */
  prepend(line: Buffer): void {
    if (this.state !== 'streaming') return;
    this.pending.push(line);
    this.pendingBytes += line.length;
  }

  /**
   * The client sent the final dot: `dataBytes` (Haraka's count, the dot included) must
   * match what the tap saw, or the message is scanned the ordinary way.
   */
  end(dataBytes: number): Promise<LiveResult> {
    if (this.state === 'streaming') {
      if (this.received + 3 !== dataBytes) {
        this.abandon(`tap saw ${this.received} of ${dataBytes} bytes`);
      } else {
        this.state = 'ended';
        this.flush();
        this.input.end();
        this.markFed();
      }
    }
    return this.result;
  }

  /** The transaction ended (the client left, or it was reset): no verdict is wanted. */
  cancel(): void {
    this.cancelled = true;
    this.abandon('transaction ended');
  }

  abandon(reason: string): void {
    if (this.state === 'abandoned') return;
    this.state = 'abandoned';
    this.abandonReason = reason;
    this.pending = [];
    this.controller.abort();
    this.input.destroy();
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    this.input.write(this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
    if (this.input.readableLength + this.input.writableLength > MAX_BACKLOG_BYTES) this.abandon('clamd is slower than the client');
  }

  private async run(): Promise<LiveResult> {
    const address = this.opts.addresses[0];
    let socket;
    try {
      socket = await connectWithin(connectTo(address), this.opts.connectTimeoutMs);
    } catch (err) {
      this.abandon(`clamd ${address}: ${(err as Error).message}`);
      return { reason: this.abandonReason, failed: address };
    }
    const outcome = await scanOn(socket, address, this.opts.scanTimeoutMs, (framer) => this.input.pipe(framer), {
      fed: this.fed, signal: this.controller.signal,
    });
    if (this.state === 'abandoned') return { reason: this.abandonReason, cancelled: this.cancelled };
    const beforeTheEnd = this.state === 'streaming';
    // clamd is done with this message: stop the tap
    this.abandon('clamd answered');
    if (beforeTheEnd) {
      // only its size limit is a verdict then; anything else (its ReadTimeout on a slow client, an idle
      // connection closed) says nothing about the message or the daemon: scan again as usual
      const sizeLimit = !outcome.dropped && outcome.verdict.kind === 'not_scanned' && /size limit/i.test(outcome.verdict.reason);
      return sizeLimit ? { verdict: outcome.verdict } : { reason: `clamd ${address} answered before the end of the message` };
    }
    if (outcome.dropped) return { reason: outcome.verdict.kind === 'not_scanned' ? outcome.verdict.reason : 'dropped', failed: address };
    return { verdict: outcome.verdict };
  }
}

/**
 * Feeds every line Haraka adds to the transaction to the live scan as well.
 * Haraka has no hook per line of DATA; wrapping this one transaction's
 * add_data (where Haraka hands each line to its message store) is the seam.
 */
export function tapTransaction(txn: Transaction, scan: LiveScan): void {
  // Haraka's own Received: line is added before the data hook runs
  for (const line of txn.header_lines ?? []) scan.prepend(Buffer.from(line.replace(/\n$/, '\r\n')));
  const addData = txn.add_data;
  txn.add_data = function tapped(this: Transaction, line: Buffer | string): void {
    scan.add(typeof line === 'string' ? Buffer.from(line) : line);
    addData.call(this, line);
  };
}
