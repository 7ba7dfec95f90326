// clamd's INSTREAM command over a unix or TCP socket, with the addresses of
// daemon_sock_path tried in order when one cannot be reached.

import net from 'node:net';
import { Transform, TransformCallback, Writable } from 'node:stream';
import { ClamdVerdict, parseClamdReply } from '../../lib/clamd_reply';
import { parseHostPort } from '../../lib/esets_options';

export interface ClamdOptions {
  addresses: string[];
  connectTimeoutMs: number;
  scanTimeoutMs: number;
}

/** Writes the message into the given stream and ends it. */
export type Feed = (sink: Writable) => void;

export function connectTo(address: string): net.Socket {
  const hostPort = address.startsWith('/') ? undefined : parseHostPort(address);
  const socket = hostPort ? net.connect(hostPort.port, hostPort.host) : net.connect(address);
  socket.setNoDelay(true);
  return socket;
}

/** Scans what `feed` writes; tries each address until one accepts the connection. */
export async function clamdScan(opts: ClamdOptions, feed: Feed): Promise<ClamdVerdict> {
  const failures: string[] = [];
  for (const address of opts.addresses) {
    const socket = await connected(address, opts.connectTimeoutMs).catch((err: Error) => {
      failures.push(`${address}: ${err.message}`);
      return undefined;
    });
    if (socket) return scanOn(socket, address, opts.scanTimeoutMs, feed);
  }
  return { kind: 'not_scanned', reason: `clamd unavailable (${failures.join('; ')})` };
}

function connected(address: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTo(address);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function scanOn(socket: net.Socket, address: string, timeoutMs: number, feed: Feed): Promise<ClamdVerdict> {
  return new Promise((resolve) => {
    let reply = '';
    let settled = false;
    const settle = (verdict: ClamdVerdict): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(verdict);
    };
    const timer = setTimeout(() => {
      settle({ kind: 'not_scanned', reason: `clamd ${address} did not answer within ${Math.round(timeoutMs / 1000)} s` });
    }, timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\0')) settle(parseClamdReply(reply));
    });
    // clamd may answer (size limit) and close while we still write: the reply decides
    socket.on('error', (err) => {
      if (!reply) settle({ kind: 'not_scanned', reason: `clamd ${address}: ${err.message}` });
    });
    socket.on('close', () => settle(parseClamdReply(reply)));
    socket.write('zINSTREAM\0');
    const framer = new InstreamFramer();
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
