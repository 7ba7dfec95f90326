// The parts of Haraka's plugin API these plugins use, typed. Haraka ships no
// type definitions; these follow Haraka 3.3 (plugins.js, connection.js).

import type { Readable } from 'node:stream';
import { fieldName } from '../../lib/smtp_data';

export type Next = (code?: number, msg?: unknown) => void;

export interface HarakaConfig {
  get(name: string, type?: string | Record<string, unknown>, cb?: () => void): unknown;
  get(name: string, cb: () => void): unknown;
}

export interface Logger {
  logprotocol(...args: unknown[]): void;
  logdebug(...args: unknown[]): void;
  loginfo(...args: unknown[]): void;
  lognotice(...args: unknown[]): void;
  logwarn(...args: unknown[]): void;
  logerror(...args: unknown[]): void;
  logcrit(...args: unknown[]): void;
}

export interface Plugin extends Logger {
  name: string;
  config: HarakaConfig;
  register_hook(hook: string, method: string, priority?: number): void;
  /** Haraka's timeout for each of this plugin's hooks, seconds (read at every hook call) */
  timeout?: number;
}

export interface Address {
  user: string | null;
  host: string | null;
  /** user@host, as the client wrote it (a getter) */
  readonly address: string;
  format(use_punycode?: boolean): string;
  isNull(): boolean;
}

export interface Results {
  add(plugin: Plugin | { name: string }, result: Record<string, unknown>): void;
  get(name: string): Record<string, unknown[] | unknown> | undefined;
}

export interface Notes {
  [key: string]: unknown;
  get(path: string): unknown;
  set(path: string, value: unknown): void;
}

export interface MessageStream extends Readable {
  pipe<T extends NodeJS.WritableStream>(destination: T, options?: Record<string, unknown>): T;
}

export interface Transaction {
  uuid: string;
  mail_from: Address;
  rcpt_to: Address[];
  data_bytes: number;
  /** header lines received so far ("\n"-terminated strings) */
  header_lines?: string[];
  /** Haraka passes each line of the message (dot-stuffed, with its line ending) here */
  add_data(line: Buffer | string): void;
  /** set by plugins that need the parsed body; Haraka then edits each body line's buffer in place */
  parse_body?: boolean;
  /** Haraka keeps no copy of the message (only its header lines) */
  discard_data?: boolean;
  notes: Notes;
  results: Results;
  message_stream: MessageStream;
  header: { get(name: string): string; get_all(name: string): string[]; header_list: string[] };
  add_header(name: string, value: string): void;
  remove_header(name: string): void;
  /** epoch ms when Haraka started the data_post hooks (the final dot) */
  data_post_start: number;
  /** set by Haraka when the end-of-data reply was sent: accepted, rejected or deferred */
  msg_status?: 'accepted' | 'rejected' | 'deferred';
}

/**
 * Removes from Haraka's copy of the header every field whose name (as mail
 * readers read it: lib/smtp_data fieldName) `remove` says, in place: Haraka's
 * message stream holds the same list (what queue/smtp_forward sends). Haraka's
 * own remove_header matches `name:` exactly, which `X-Spam-Report :` escapes.
 */
export function removeHeaderFields(txn: Transaction, remove: (name: string) => boolean): void {
  const list = txn.header.header_list;
  const removed = new Set<string>();
  for (let i = list.length - 1; i >= 0; i--) {
    const name = fieldName(list[i]);
    if (name !== undefined && remove(name)) {
      removed.add(name);
      list.splice(i, 1);
    }
  }
  // Haraka's parsed values, and where its header ends
  for (const name of removed) txn.remove_header(name);
}

/** When the client's final dot came: Haraka's data_post start (now, where a Haraka does not set it). */
export function finalDotAt(txn: Transaction): number {
  return Number.isFinite(txn.data_post_start) ? txn.data_post_start : Date.now();
}

export interface Connection extends Logger {
  uuid: string;
  remote: { ip: string; host?: string | null; port?: number; closed?: boolean };
  local: { ip: string; port: number; host: string };
  hello: { verb?: string; host?: string };
  relaying: boolean;
  /** Haraka's PROXY protocol state: whether a PROXY line is taken now */
  proxy?: { allowed?: boolean };
  capabilities: string[] | null;
  tls: { enabled?: boolean; advertised?: boolean };
  notes: Notes;
  results: Results;
  transaction: Transaction | null;
  /** the bytes of the last reply Haraka wrote to the client */
  last_response?: string | null;
  /** Haraka's pluggable stream around the client's socket */
  client?: {
    targetsocket?: { setNoDelay?(noDelay: boolean): void; destroyed?: boolean };
    /** 'close': the client's connection ended (the stream follows its socket through STARTTLS) */
    once?(event: 'close', listener: () => void): unknown;
  };
}

/** The client's rDNS name as Haraka found it; undefined when it found none (its DNSERROR, NXDOMAIN, Unknown). */
export function remoteName(connection: Connection): string | undefined {
  const host = connection.remote.host;
  return host && !/^(DNSERROR|NXDOMAIN|Unknown)$/i.test(host) ? host : undefined;
}
