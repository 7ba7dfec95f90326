// A quarantined message given back: sent to the mail server through the
// relay's own server-session code (io/downstream_session), as its original
// client: XCLIENT with that client's address and HELO, so the server judges
// the release as it would have judged the message (it cannot be used to relay
// where the client could not), and with server_trusts_relay the same
// fail-closed rule (no XCLIENT: not sent). The envelope sender is the
// original one; the recipients the original ones, or those given. One header
// field is added at the top, saying it was released and by which entry.

import { Readable } from 'node:stream';
import type { QuarantineEntry } from '../lib/quarantine';
import { replyText, SmtpReply } from '../lib/smtp_reply';
import { RFC_END_OF_DATA_S, SERVER_COMMAND_MS, SERVER_CONNECT_MS, SERVER_QUIT_MS } from '../lib/timeout_budget';
import type { EsetsConfig } from '../lib/esets_options';
import { DownstreamError, DownstreamSession } from './downstream_session';

export interface ReleaseResult {
  /** the server's answer to the message (2xx: taken) */
  reply: SmtpReply;
  /** the recipients the server took */
  accepted: string[];
  /** the recipients it refused, with its reply */
  refused: { rcpt: string; reply: SmtpReply }[];
}

export const RELEASED_FIELD = 'X-Quarantine-Released';

/** The field added at the top of a released message. */
export function releasedField(entry: QuarantineEntry, at: Date): string {
  return `${RELEASED_FIELD}: ${entry.id} (${entry.verdict}: ${entry.threats.join(', ') || 'none named'}); ${at.toUTCString()}\r\n`;
}

const angle = (address: string): string => (address.startsWith('<') ? address : `<${address}>`);

/**
 * Sends `message` (the stored bytes) to `recipients`. Throws a DownstreamError
 * when the server cannot be reached, refuses the relay or the sender, or takes
 * no recipient: nothing was delivered then.
 */
export async function releaseMessage(
  config: EsetsConfig, entry: QuarantineEntry, message: Readable, recipients: readonly string[], heloName: string, at = new Date(),
): Promise<ReleaseResult> {
  if (!config.server_addr || !config.server_port) throw new DownstreamError('esets.cfg names no mail server (server_addr, server_port)');
  const session = await DownstreamSession.open({
    host: config.server_addr,
    port: config.server_port,
    connectTimeoutMs: SERVER_CONNECT_MS,
    commandTimeoutMs: SERVER_COMMAND_MS,
    heloName: config.helo_name ?? heloName,
    requireXclient: config.server_trusts_relay,
    client: { addr: entry.client.address, name: entry.client.name, helo: entry.client.helo, proto: 'ESMTP' },
  });
  try {
    // after XCLIENT the server waits for the client's own EHLO, as in the original session
    const ehlo = await session.hello('EHLO', entry.client.helo || heloName);
    if (ehlo.code !== 250) throw new DownstreamError(`mail server refused EHLO: ${ehlo.code} ${replyText(ehlo)}`, ehlo);
    await session.forwardClient();
    const mail = await session.command(`MAIL FROM:${angle(entry.sender)}`);
    if (mail.code !== 250) throw new DownstreamError(`mail server refused the sender: ${mail.code} ${replyText(mail)}`, mail);
    const accepted: string[] = [];
    const refused: { rcpt: string; reply: SmtpReply }[] = [];
    for (const rcpt of recipients) {
      const reply = await session.command(`RCPT TO:${angle(rcpt)}`);
      if (reply.code === 250 || reply.code === 251) accepted.push(rcpt);
      else refused.push({ rcpt, reply });
    }
    if (!accepted.length) {
      const first = refused[0]?.reply;
      throw new DownstreamError(`mail server took no recipient${first ? `: ${first.code} ${replyText(first)}` : ''}`, first);
    }
    async function* parts(): AsyncIterable<Buffer> {
      let first = true;
      for await (const chunk of message) {
        if (first) {
          first = false;
          // a message without a header section (its first line no field): the field gets the empty line after it,
          // so that what follows stays the body, as it was
          const start = (chunk as Buffer).subarray(0, 1000).toString('latin1');
          const headerless = !start.startsWith('\r\n') && !/^[!-9;-~]+:/.test(start);
          yield Buffer.from(`${releasedField(entry, at)}${headerless ? '\r\n' : ''}`);
        }
        yield chunk as Buffer;
      }
      if (first) yield Buffer.from(`${releasedField(entry, at)}\r\n`);
    }
    // no client waits here: the server gets what RFC 5321 gives it for the end of data
    const reply = await session.sendMessage(parts(), Date.now() + RFC_END_OF_DATA_S * 1000);
    await session.command('QUIT', SERVER_QUIT_MS).catch(() => undefined);
    return { reply, accepted, refused };
  } finally {
    session.close();
  }
}
