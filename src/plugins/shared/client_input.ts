// One client, one share (docs/security.md#one-client-one-share): the one module
// that wraps Haraka's connection internals for the client's input.
//
// Haraka appends every socket read to `current_data` while a hook waits, without
// bound (and each command of ours waits a server round trip). Here:
// - over INPUT_BOUND buffered, the socket is paused (TCP backpressure), and
//   resumed as commands are taken and the buffer is back under the bound;
// - while the client does not read our replies (writableLength over
//   OUTPUT_BOUND), its commands wait until 'drain';
// - the ClientTimer (client_timeout) is fed the bytes, each request taken and
//   the stalls; it cuts the client with 421 4.4.2 past a deadline.
// Haraka pauses and resumes the socket itself (pause()/resume(), PAUSE_DATA):
// the socket reads only when neither Haraka nor we hold it, so we never resume
// a socket Haraka paused, nor Haraka one we hold over the bound.

import constants from 'haraka-constants';
import type { ClientDeadlines, Overdue } from '../../lib/client_deadline';
import { overdueReply, sessionCutAllowed } from '../../lib/client_deadline';
import { replyEntry } from '../../lib/relay_replies';
import type { Connection } from './haraka';
import { clientTimerOf } from './client_timeout';
import { toWrap } from './haraka_internals';
import { relayAnswer } from './relay_answer';

export const INPUT_BOUND = 64 * 1024;
export const OUTPUT_BOUND = 64 * 1024;
/** after a cut, a client that reads nothing is dropped this much later */
const DESTROY_AFTER_MS = 5000;
const INSTALLED = 'esets_relay.client_input';

const STATE = constants.connection.state;

/** The client's socket as Haraka's connection holds it. */
interface ClientSocket {
  pause(): unknown;
  resume(): unknown;
  once(event: 'drain', listener: () => void): unknown;
  /** Haraka's pluggable stream around the net.Socket (or TLS socket): the one that writes */
  targetsocket?: { writableLength?: number; destroy?(): unknown };
  writableLength?: number;
  destroy?(): unknown;
}

/** The socket under Haraka's stream: the one whose write buffer fills. */
function rawSocket(socket: ClientSocket): { writableLength?: number; destroy?(): unknown } {
  return socket.targetsocket ?? socket;
}

/** What the client may take: timeout_client (s), client_min_rate (bytes/s) and timeout_session (s), 0 for none. */
export type ClientLimits = ClientDeadlines;

/** The parts of Haraka 3's Connection (connection.js) this module relies on. */
interface HarakaInternals {
  state: number;
  current_data: Buffer | null;
  awaiting_data_reply?: boolean;
  /** Haraka's mark for a client that sent a command before its turn (before the greeting, or an invalid pipeline) */
  early_talker?: boolean;
  client: ClientSocket;
  process_data(data: Buffer): void;
  _process_data(): void;
  process_line(line: Buffer): void;
  respond(code: number, msg: unknown, cb?: () => void): void;
  disconnect(): void;
}

function internalsOf(connection: Connection): HarakaInternals | undefined {
  const c = connection as unknown as Partial<HarakaInternals>;
  const client = c.client as Partial<ClientSocket> | undefined;
  const ok = typeof c.process_data === 'function' && typeof c._process_data === 'function'
    && typeof c.process_line === 'function' && typeof c.respond === 'function' && typeof c.disconnect === 'function'
    && 'current_data' in c && typeof c.state === 'number'
    && typeof client?.pause === 'function' && typeof client.resume === 'function' && typeof client.once === 'function';
  return ok ? c as HarakaInternals : undefined;
}

/** PROXY protocol version 2's fixed signature */
const PROXY_V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');

/**
 * Whether the client has sent a PROXY header of its own before its greeting (version 1, in any case, or
 * version 2's signature), when it is no balancer (a balancer's PROXY line Haraka takes before the connect
 * hooks run): what the relay refuses before it lets a server session serve the client. Read from Haraka's
 * early input buffer.
 */
export function unlistedProxyLine(connection: Connection): boolean {
  const c = connection as unknown as Partial<HarakaInternals>;
  if (connection.proxy?.allowed || !Buffer.isBuffer(c.current_data)) return false;
  const head = c.current_data;
  return head.subarray(0, 6).toString('latin1').toUpperCase() === 'PROXY '
    || head.subarray(0, PROXY_V2_SIGNATURE.length).equals(PROXY_V2_SIGNATURE);
}

/**
 * Bounds this connection's input (connect_init). Where Haraka is not the one this
 * module knows (version 3, the internals above), it warns once and does nothing.
 */
export function boundClientInput(
  connection: Connection, limits: ClientLimits, warn: (msg: string) => void, onCut?: (reason: string) => void,
): void {
  const conn = toWrap(connection, {
    note: INSTALLED, internals: internalsOf, notDone: 'client input not bounded',
    needs: 'process_data, _process_data, current_data or client pause/resume',
  }, warn);
  if (!conn) return;
  const timer = clientTimerOf(connection);
  const socket = conn.client;
  const pauseSocket = socket.pause.bind(socket);
  const resumeSocket = socket.resume.bind(socket);
  let harakaHolds = false;
  let weHold = false;
  let reading = true;
  let drainWaited = false;

  /** The socket reads only when neither Haraka nor this module holds it. */
  const apply = (): void => {
    const read = !harakaHolds && !weHold;
    if (read === reading) return;
    reading = read;
    if (read) resumeSocket();
    else pauseSocket();
  };
  socket.pause = (): unknown => { harakaHolds = true; apply(); return socket; };
  socket.resume = (): unknown => { harakaHolds = false; apply(); return socket; };

  const buffered = (): number => conn.current_data?.length ?? 0;
  const outputBlocked = (): boolean => (rawSocket(socket).writableLength ?? 0) > OUTPUT_BOUND;

  /** After Haraka has taken what it can: hold the socket while over the bound; the timer's stall clock. */
  const review = (): void => {
    if (conn.state >= STATE.DISCONNECTING) return;
    weHold = buffered() > INPUT_BOUND || outputBlocked();
    apply();
    timer?.stall(weHold);
  };

  // Haraka ignores what a closed session's client still sends, but reads it (at line rate, for as long as it
  // comes): a client that writes after its session ended is read no more, and dropped if it does not close
  let dropping = false;
  const dropSoon = (): void => {
    if (dropping) return;
    dropping = true;
    setTimeout(() => rawSocket(socket).destroy?.(), DESTROY_AFTER_MS).unref();
  };
  const close = (): void => {
    weHold = true;
    apply();
    dropSoon();
  };
  const disconnect = conn.disconnect.bind(conn);
  conn.disconnect = (): void => {
    disconnect();
    // held over the bound: the client's close (FIN) would never be read
    if (!reading) dropSoon();
  };

  const processData = conn.process_data.bind(conn);
  conn.process_data = (data: Buffer): void => {
    if (conn.state >= STATE.DISCONNECTING) return close();
    timer?.received(data.length);
    processData(data);
    review();
  };

  const takeBuffered = conn._process_data.bind(conn);
  conn._process_data = (): void => {
    // A client that spoke before its turn makes Haraka poll with setImmediate until the state changes: a busy
    // loop for as long as the mail server takes to greet (seconds behind postscreen or a tarpit). Nothing can be
    // taken then; respond() and resume(), which end the pause, run this again.
    if (conn.early_talker && (conn.state === STATE.PAUSE || conn.state === STATE.PAUSE_SMTP)) return review();
    if (conn.state < STATE.DISCONNECTING && outputBlocked()) {
      // the client does not read our replies: its next command waits for 'drain'
      if (!drainWaited) {
        drainWaited = true;
        socket.once('drain', () => {
          drainWaited = false;
          conn._process_data();
        });
      }
      review();
      return;
    }
    takeBuffered();
    review();
  };

  const processLine = conn.process_line.bind(conn);
  conn.process_line = (line: Buffer): void => {
    // a command line, or the final dot of a message: the client's request is complete
    if (conn.state === STATE.CMD || (conn.state === STATE.DATA && isFinalDot(line))) timer?.progress();
    processLine(line);
  };

  // never while the client waits for a reply of ours: only in its turn (a command, or the message)
  const clientsTurn = (): boolean => (conn.state === STATE.CMD || conn.state === STATE.DATA) && !conn.awaiting_data_reply;
  const canCut = (o: Overdue, pastMs: number): boolean => clientsTurn() && (o !== 'session'
    || sessionCutAllowed(limits, pastMs, {
      inTransaction: Boolean(connection.transaction), sendingMessage: conn.state === STATE.DATA, sendingCommand: buffered() > 0,
    }));
  timer?.enforce(limits.minRate, limits.sessionS, canCut, (o: Overdue) => {
    if (conn.state >= STATE.DISCONNECTING) return;
    onCut?.(replyEntry({ kind: overdueReply(o) }).text);
    cut(connection, conn, o);
    // a client that reads nothing never takes the 421: dropped all the same
    dropSoon();
  });
}

/** `.CRLF` (or `.LF`): checked on bytes, as it runs for every line of every message */
function isFinalDot(line: Buffer): boolean {
  if (line[0] !== 0x2e) return false;
  return (line.length === 2 && line[1] === 0x0a) || (line.length === 3 && line[1] === 0x0d && line[2] === 0x0a);
}

/** 421 4.4.2 (attempted: a client that reads nothing never sees it), then the connection is closed. */
function cut(connection: Connection, conn: HarakaInternals, o: Overdue): void {
  conn.current_data = null;
  conn.respond(421, relayAnswer(connection, { kind: overdueReply(o) }), () => conn.disconnect());
}
