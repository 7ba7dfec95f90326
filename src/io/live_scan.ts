// Streams the message to clamd while the client is still sending it, so that
// after the final dot only clamd's own scanning time is left. Lines come from
// the relay's captured message as they arrive (un-stuffed once: the bytes the
// server will get). On any trouble the live scan steps aside and the captured
// message is scanned the ordinary way at data_post.

import { PassThrough } from 'node:stream';
import type { ClamdVerdict } from '../lib/clamd_reply';
import { CapturedMessage, HEADER_BODY_SEPARATOR } from './captured_message';
import { connectWithin } from './connect';
import { clamdHealth, ClamdOptions, connectTo, daemonFailed, MAIL_MARKER, scanOn } from './clamd_client';
import { CLAMD_PING_MS } from '../lib/timeout_budget';
import { answersPing } from './clamd_version';

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
  /** bytes of the message given to clamd so far */
  private received = 0;
  private state: 'streaming' | 'ended' | 'abandoned' = 'streaming';
  private abandonReason = '';
  private cancelled = false;
  private markFed!: () => void;
  /** when the final dot came (the answer's time is counted from there) */
  private fedAt = 0;
  private readonly fed = new Promise<void>((resolve) => { this.markFed = resolve; });
  readonly result: Promise<LiveResult>;
  /** the result is in (a verdict, or a failure such as an unreachable daemon) */
  settled = false;

  constructor(private readonly opts: ClamdOptions, private readonly maxBytes: number) {
    this.input.on('error', () => undefined);
    this.result = this.run();
    void this.result.then(() => { this.settled = true; });
  }

  /** A line of the message (un-stuffed, with its line ending). */
  add(line: Buffer): void {
    if (this.state !== 'streaming') return;
    this.received += line.length;
    if (this.maxBytes > 0 && this.received > this.maxBytes) return this.abandon('message larger than av_scan_obj_max_size');
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= BATCH_BYTES) this.flush();
  }

  /**
   * Bytes for clamd that are not part of the message: MAIL_MARKER before any of
   * it, the empty line a message without a header section gets on its way out.
   */
  mark(bytes: Buffer): void {
    if (this.state !== 'streaming') return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
  }

  /**
   * The client sent the final dot: the byte count must match the captured
   * message's, or the message is scanned the ordinary way.
   */
  end(size: number): Promise<LiveResult> {
    if (this.state === 'streaming') {
      if (this.received !== size) {
        this.abandon(`live scan saw ${this.received} of ${size} bytes`);
      } else {
        this.state = 'ended';
        this.flush();
        this.input.end();
        if (this.opts.onVerdict) this.fedAt = Date.now();
        this.markFed();
      }
    }
    return this.result;
  }

  /** No verdict is wanted any more: the transaction ended (the client left, or it was reset), or time is up. */
  cancel(reason = 'transaction ended'): void {
    if (this.state === 'abandoned') return;
    this.cancelled = true;
    this.abandon(reason);
  }

  abandon(reason: string): void {
    if (this.state === 'abandoned') return;
    this.state = 'abandoned';
    this.abandonReason = reason;
    this.pending = [];
    this.controller.abort(reason); // a string: no DOMException (and its stack) per message
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
    const address = clamdHealth.order(this.opts.addresses)[0];
    let socket;
    try {
      socket = await connectWithin(connectTo(address), this.opts.connectTimeoutMs);
    } catch (err) {
      daemonFailed(address, (err as Error).message, this.opts.trace);
      this.abandon(`clamd ${address}: ${(err as Error).message}`);
      return { reason: this.abandonReason, failed: address };
    }
    // with another daemon to go to, one that hangs is found by PING and the scan moves on
    const probe = this.opts.addresses.length > 1 ? (): Promise<boolean> => answersPing(address, CLAMD_PING_MS) : undefined;
    const outcome = await scanOn(socket, address, this.opts.scanTimeoutMs, (framer) => this.input.pipe(framer), {
      fed: this.fed, signal: this.controller.signal, probe,
    });
    const failed = outcome.dropped || outcome.timedOut === true;
    // an answer to the whole message (not one to a scan given up)
    if (this.state === 'ended') this.opts.onVerdict?.({ address, verdict: outcome.verdict, ms: Date.now() - this.fedAt, live: true });
    if (failed && this.state !== 'abandoned') {
      daemonFailed(address, outcome.verdict.kind === 'not_scanned' ? outcome.verdict.reason : 'dropped', this.opts.trace);
    }
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
    if (failed) return { reason: outcome.verdict.kind === 'not_scanned' ? outcome.verdict.reason : 'dropped', failed: address };
    return { verdict: outcome.verdict };
  }
}

/** Feeds the captured message to the live scan: what it holds already (the relay's Received:), then each line. */
export function attachLiveScan(message: CapturedMessage, scan: LiveScan): void {
  scan.mark(MAIL_MARKER);
  const sofar = message.bytesSoFar();
  if (sofar.length) scan.add(sofar);
  // the split the server and its readers will get (CapturedMessage readAsSent)
  message.onLine((line, bodyFirst) => {
    if (bodyFirst) scan.mark(HEADER_BODY_SEPARATOR);
    scan.add(line);
  });
}
