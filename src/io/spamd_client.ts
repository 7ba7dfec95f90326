// spamd's SYMBOLS command (SPAMC/1.5): the message follows the request
// headers and our half-close marks its end, so no Content-length is needed.

import { parseSpamdReply, SpamdResult } from '../lib/spamd_reply';
import { connectTo, Feed } from './clamd_client';
import { relayMetrics } from './relay_metrics';

export interface SpamdOptions {
  address: string;
  timeoutMs: number;
}

export function spamdCheck(opts: SpamdOptions, feed: Feed): Promise<SpamdResult> {
  return new Promise((resolve) => {
    const socket = connectTo(opts.address);
    let reply = '';
    let settled = false;
    const settle = (result: SpamdResult): void => {
      if (settled) return;
      settled = true;
      if (!result.ok) relayMetrics.scannerFailure('spamd');
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => {
      settle({ ok: false, reason: `spamd ${opts.address} did not answer within ${Math.round(opts.timeoutMs / 1000)} s` });
    }, opts.timeoutMs);
    socket.setEncoding('latin1');
    socket.on('connect', () => {
      socket.write('SYMBOLS SPAMC/1.5\r\nUser: esets-relay\r\n\r\n');
      feed(socket);
    });
    socket.on('data', (chunk: string) => { reply += chunk; });
    socket.on('error', (err) => settle({ ok: false, reason: `spamd ${opts.address}: ${err.message}` }));
    socket.on('close', () => settle(parseSpamdReply(reply)));
  });
}
