// Traffic for reliability tests: concurrent SMTP sessions sending messages
// with unique Message-IDs, and the "nothing lost" accounting of what the
// clients were told against what the mail server received.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CLAMAV_TESTFILES, EICAR, GTUBE } from './clamd';
import type { ReceivedMessage } from './sink';
import { SmtpTestClient } from './smtp_client';

export type Kind = 'clean' | 'eicar' | 'clamzip' | 'gtube' | 'multi' | 'utf8' | 'smtputf8' | 'large';

/** What a healthy relay (default policy; a [spam.example] section scanning spam) answers for each kind. */
export const EXPECTED: Record<Kind, number> = {
  clean: 250, eicar: 550, clamzip: 550, gtube: 550, multi: 250, utf8: 250, smtputf8: 250, large: 250,
};

const CLAM_ZIP = (() => {
  try {
    return fs.readFileSync(path.join(CLAMAV_TESTFILES, 'clam.zip')).toString('base64').replace(/.{76}/g, '$&\r\n');
  } catch {
    return '';
  }
})();

function envelopeAndBody(kind: Kind, id: string): { from?: string; mailParams: string; to: string[]; body: string } {
  const head = `Message-ID: ${id}\r\nFrom: a@example.com\r\nDate: ${new Date().toUTCString()}\r\n`;
  switch (kind) {
    case 'eicar': return { mailParams: '', to: ['user@example.org'], body: `${head}Subject: eicar\r\n\r\n${EICAR}\r\n` };
    case 'clamzip': return {
      mailParams: '', to: ['user@example.org'],
      body: `${head}Subject: zip\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="z"\r\n\r\n`
        + '--z\r\nContent-Type: text/plain\r\n\r\nsee zip\r\n'
        + `--z\r\nContent-Type: application/zip; name="clam.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n${CLAM_ZIP}\r\n--z--\r\n`,
    };
    case 'gtube': return { mailParams: '', to: ['user@spam.example'], body: `${head}Subject: offer\r\n\r\n${GTUBE}\r\n` };
    case 'multi': return {
      mailParams: '', to: ['one@example.org', 'two@example.org', 'three@example.net'], body: `${head}Subject: three\r\n\r\nto three\r\n`,
    };
    case 'utf8': return {
      mailParams: ' BODY=8BITMIME', to: ['user@example.org'],
      body: `${head}Subject: =?UTF-8?B?${Buffer.from('Grüße').toString('base64')}?=\r\n`
        + 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, 日本語のテキスト\r\n',
    };
    case 'smtputf8': return {
      from: 'jörg@example.com', mailParams: ' SMTPUTF8', to: ['müller@example.org', 'user@example.org'],
      body: `${head}Subject: =?UTF-8?B?${Buffer.from('Grüße').toString('base64')}?=\r\n`
        + 'Content-Type: text/plain; charset=utf-8\r\n\r\nan internationalised envelope\r\n',
    };
    case 'large': return {
      mailParams: '', to: ['user@example.org'],
      body: `${head}Subject: large\r\n\r\n${'The quarterly figures, once more, in full detail for the archive.\r\n'.repeat(16000)}`,
    };
    default: return { mailParams: '', to: ['user@example.org'], body: `${head}Subject: traffic\r\n\r\nclean message ${id}\r\n` };
  }
}

export interface Sent {
  id: string;
  kind: Kind;
  /** final reply code (DATA, or the first refusal), 0 when the connection failed */
  code: number;
  text: string;
  ms: number;
}

export interface TrafficOptions {
  port: number;
  sessions: number;
  /** stop after this many messages in all, or when stop() is called */
  messages: number;
  kinds?: Kind[];
  /** new connection for every message */
  reconnect?: boolean;
  timeoutMs?: number;
}

let instances = 0;

export class Traffic {
  /** distinguishes the Message-IDs of Traffic objects started in the same millisecond */
  private readonly instance = ++instances;
  readonly sent: Sent[] = [];
  private stopped = false;
  private counter = 0;
  readonly done: Promise<void>;

  constructor(private readonly opts: TrafficOptions) {
    this.done = Promise.all(Array.from({ length: opts.sessions }, (_, n) => this.session(n))).then(() => undefined);
  }

  stop(): void {
    this.stopped = true;
  }

  private next(): { id: string; kind: Kind } | undefined {
    if (this.stopped || this.counter >= this.opts.messages) return undefined;
    const n = this.counter++;
    const kinds = this.opts.kinds ?? ['clean'];
    return { id: `<traffic-${process.pid}-${this.instance}-${n}@test>`, kind: kinds[n % kinds.length] };
  }

  private async session(n: number): Promise<void> {
    let client: SmtpTestClient | undefined;
    for (let job = this.next(); job; job = this.next()) {
      const started = Date.now();
      try {
        if (!client || client.closed) {
          client = await SmtpTestClient.connect(this.opts.port);
          await client.read(this.opts.timeoutMs);
          await client.command(`EHLO session${n}.test`, this.opts.timeoutMs);
        }
        const { from, mailParams, to, body } = envelopeAndBody(job.kind, job.id);
        const r = await client.send(from ?? 'a@example.com', to, body, mailParams);
        const last = r.data ?? (r.mail.code !== 250 ? r.mail : r.rcpts[0]);
        this.sent.push({ id: job.id, kind: job.kind, code: last.code, text: last.lines.join(' '), ms: Date.now() - started });
        if (last.code >= 400 && !r.data) await client.command('RSET', this.opts.timeoutMs).catch(() => undefined);
        if (this.opts.reconnect) {
          client.end();
          client = undefined;
        }
      } catch (err) {
        this.sent.push({ id: job.id, kind: job.kind, code: 0, text: (err as Error).message, ms: Date.now() - started });
        client = undefined;
      }
    }
    client?.end();
  }
}

/**
 * Every 250 is at the server exactly once (unless `discarded` allows it to be
 * missing); every 4xx/5xx and every failed connection is absent; nothing
 * infected arrives; nothing arrives twice or unsent.
 */
export function assertNothingLost(
  sent: Sent[], received: ReceivedMessage[], discarded: (s: Sent) => boolean = () => false,
  /** a session cut before the final reply: the message may or may not have reached the server (SMTP's known window) */
  cutMayArrive = false,
): void {
  const counts = new Map<string, number>();
  for (const m of received) {
    const id = /^Message-ID: (<[^>]+>)/im.exec(m.data.toString('latin1'))?.[1];
    assert.ok(id, 'a message without Message-ID reached the server');
    counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.doesNotMatch(m.data.toString('latin1'), /EICAR-STANDARD-ANTIVIRUS-TEST-FILE/, `infected message ${id} reached the server`);
  }
  const sentIds = new Set(sent.map((s) => s.id));
  for (const id of counts.keys()) assert.ok(sentIds.has(id), `${id} reached the server but was never sent`);
  for (const s of sent) {
    const n = counts.get(s.id) ?? 0;
    assert.ok(n <= 1, `${s.id} reached the server ${n} times`);
    if (s.code === 250 && !discarded(s)) assert.equal(n, 1, `${s.id} was answered 250 but did not reach the server`);
    if (s.code === 0 && cutMayArrive) continue;
    if (s.code !== 250) assert.equal(n, 0, `${s.id} was answered ${s.code || 'nothing'} (${s.text}) but reached the server`);
  }
}
