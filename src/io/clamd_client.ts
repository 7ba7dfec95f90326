// clamd's INSTREAM command over a unix or TCP socket, with the addresses of
// daemon_sock_path tried in order when one cannot be reached.

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Transform, TransformCallback, Writable } from 'node:stream';
import { ClamdVerdict, parseClamdReply } from '../lib/clamd_reply';
import { parseHostPort } from '../lib/esets_options';
import { ClamdHealth } from '../lib/clamd_health';
import { CLAMD_PING_MS, CLAMD_PROBE_AFTER_MS } from '../lib/timeout_budget';
import { answersPing } from './clamd_version';
import { connectWithin } from './connect';
import { relayMetrics } from './relay_metrics';

export interface ClamdOptions {
  addresses: string[];
  connectTimeoutMs: number;
  scanTimeoutMs: number;
  /** told of each answer a daemon gave (the debug log); unset, nothing is measured */
  onVerdict?: (report: ScanReport) => void;
  /** the message's trace id (plugins/shared/trace_id), named by the warning of a daemon found failing */
  trace?: string;
}

/** One daemon's answer to one scan. */
export interface ScanReport {
  address: string;
  verdict: ClamdVerdict;
  /** from the end of the message to the answer */
  ms: number;
  /** streamed while the client sent it (live_scan) */
  live: boolean;
}

/**
 * Put before every message clamd scans: clamd reads its input as a mail (and
 * so decodes uuencode and BinHex in a plain body) only when it recognises a
 * mail header near the start, and a message may open with anything (a long
 * DKIM-Signature, X- fields). Every MTA adds a Received: at the top; this one
 * is seen by clamd only, never sent on.
 */
export const MAIL_MARKER = Buffer.from('Received: from client by esets-relay for scanning\r\n');

/** Writes the message into the given stream and ends it. */
export type Feed = (sink: Writable) => void;

export function connectTo(address: string): net.Socket {
  const hostPort = address.startsWith('/') ? undefined : parseHostPort(address);
  const socket = hostPort ? net.connect(hostPort.port, hostPort.host) : net.connect(address);
  socket.setNoDelay(true);
  return socket;
}

/** The daemons' health, per process (lib/clamd_health): a failed one is skipped for a while. */
export const clamdHealth = new ClamdHealth();

/** 'down' (address, reason): a daemon failed and is skipped for a while (once per back-off period) */
export const clamdEvents = new EventEmitter<{ down: [address: string, reason: string, trace?: string] }>();

/** A daemon failed a scan: skipped for a while, counted, and said once per back-off period. */
export function daemonFailed(address: string, reason: string, trace?: string): void {
  relayMetrics.scannerFailure('clamd');
  if (clamdHealth.markDown(address)) clamdEvents.emit('down', address, reason, trace);
}

/**
 * Scans what `feed` writes; tries the addresses (healthy ones first) until
 * one gives a verdict: a daemon that refuses the connection, drops it before
 * answering (it died), stops answering PING while it scans (it hangs) or
 * gives no verdict within the scan timeout hands the message to the next one,
 * and is skipped for a while.
 */
export async function clamdScan(opts: ClamdOptions, feed: Feed, signal?: AbortSignal): Promise<ClamdVerdict> {
  const failures: string[] = [];
  const order = clamdHealth.order(opts.addresses);
  for (const [i, address] of order.entries()) {
    const last = i === order.length - 1;
    const socket = await connectWithin(connectTo(address), opts.connectTimeoutMs).catch((err: Error) => {
      failures.push(`${address}: ${err.message}`);
      daemonFailed(address, err.message, opts.trace);
      return undefined;
    });
    if (!socket) continue;
    if (signal?.aborted) {
      socket.destroy();
      return { kind: 'not_scanned', reason: abortReason(signal, address) };
    }
    // with nowhere else to go, a slow daemon is waited for (the scan timeout decides)
    const probe = last ? undefined : (): Promise<boolean> => answersPing(address, CLAMD_PING_MS);
    const started = opts.onVerdict ? Date.now() : 0;
    const outcome = await scanOn(socket, address, opts.scanTimeoutMs, feed, { probe, signal });
    opts.onVerdict?.({ address, verdict: outcome.verdict, ms: Date.now() - started, live: false });
    // no verdict in time counts as a failure too: a daemon that hangs before a probe could tell (a short
    // av_scan_obj_timeout) hands the message on like one found hung
    const failed = outcome.dropped || outcome.timedOut === true;
    if (failed) {
      daemonFailed(address, outcome.verdict.kind === 'not_scanned' ? outcome.verdict.reason : 'dropped', opts.trace);
    } else {
      clamdHealth.markUp(address);
    }
    if (!failed || last) return outcome.verdict;
    failures.push(`${address}: ${outcome.verdict.kind === 'not_scanned' ? outcome.verdict.reason : 'dropped'}`);
  }
  return { kind: 'not_scanned', reason: `clamd unavailable (${failures.join('; ')})` };
}

/** Why a scan was given up: the signal's own reason when it gave one (e.g. the scanning budget). */
function abortReason(signal: AbortSignal | undefined, address: string): string {
  return typeof signal?.reason === 'string' ? signal.reason : `scan on clamd ${address} abandoned`;
}

export interface ScanOutcome {
  verdict: ClamdVerdict;
  /** the connection failed before clamd said anything (another daemon may be tried) */
  dropped: boolean;
  /** clamd gave no verdict within the scan timeout */
  timedOut?: boolean;
}

export interface ScanControl {
  /** the scan timeout runs from when this resolves (the whole message is written), not from the start */
  fed?: Promise<void>;
  /** gives up: the socket is closed and the scan settles as not scanned */
  signal?: AbortSignal;
  /** asked every CLAMD_PROBE_AFTER_MS while no verdict is in: false means the daemon hangs (dropped, try another) */
  probe?: () => Promise<boolean>;
}

export function scanOn(
  socket: net.Socket, address: string, timeoutMs: number, feed: Feed, control: ScanControl = {},
): Promise<ScanOutcome> {
  return new Promise((resolve) => {
    let reply = '';
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    // cleared when the scan settles: a pending probe would keep the scan (and what it fed) alive until it fires
    let probeTimer: NodeJS.Timeout | undefined;
    const framer = new InstreamFramer();
    const settle = (verdict: ClamdVerdict, dropped = false, timedOut = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(probeTimer);
      control.signal?.removeEventListener('abort', abort);
      socket.destroy();
      // ends the message stream's pipe into the framer, so it can be piped again
      framer.destroy();
      resolve({ verdict, dropped, timedOut });
    };
    const abort = (): void => settle({ kind: 'not_scanned', reason: abortReason(control.signal, address) });
    const arm = (): void => {
      if (settled) return;
      timer = setTimeout(() => {
        settle({ kind: 'not_scanned', reason: `clamd ${address} did not answer within ${Math.round(timeoutMs / 1000)} s` }, false, true);
      }, timeoutMs);
      if (control.probe) probeLater(control.probe);
    };
    const probeLater = (probe: () => Promise<boolean>): void => {
      probeTimer = setTimeout(() => {
        if (settled) return;
        void probe().then((alive) => {
          if (settled) return;
          if (!alive) settle({ kind: 'not_scanned', reason: `clamd ${address} does not answer PING while scanning (hung)` }, true);
          else probeLater(probe);
        });
      }, CLAMD_PROBE_AFTER_MS);
      probeTimer.unref?.();
    };
    if (control.signal?.aborted) return abort();
    control.signal?.addEventListener('abort', abort);
    if (control.fed) void control.fed.then(arm);
    else arm();
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\0')) settle(parseClamdReply(reply));
    });
    // clamd may answer (size limit) and close while we still write: the reply decides
    socket.on('error', (err) => {
      if (!reply) settle({ kind: 'not_scanned', reason: `clamd ${address}: ${err.message}` }, true);
    });
    socket.on('close', () => settle(parseClamdReply(reply), !reply));
    socket.write('zINSTREAM\0');
    framer.on('error', () => undefined);
    framer.pipe(socket, { end: false });
    feed(framer);
  });
}

const FRAME = 64 * 1024;

/** INSTREAM framing: <4-byte length><data> chunks, then a zero-length chunk. */
export class InstreamFramer extends Transform {
  private pending: Buffer[] = [];
  private size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.size += chunk.length;
    if (this.size >= FRAME) this.flushFrame();
    done();
  }

  override _flush(done: TransformCallback): void {
    this.flushFrame();
    this.push(Buffer.alloc(4));
    done();
  }

  private flushFrame(): void {
    if (this.size === 0) return;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(this.size);
    this.push(Buffer.concat([length, ...this.pending]));
    this.pending = [];
    this.size = 0;
  }
}
