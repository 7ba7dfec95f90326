// What opening containers costs: messages of 2 KB, 100 KB and 2 MB, each as a
// plain text message, with a zip attachment and with a .docx (OOXML is zip),
// sent by 4 clients at once through one relay (launcher, num_proc 1, real clamd
// with the shipped snippet, Postfix's smtp-sink), then through a second one
// (BENCH_OLD_DIR, another checkout, built), row by row, alternating: per row
// the throughput, the worker's CPU per message (its unpacking tools included)
// and clamd's.
// Run: npm run build && BENCH_OLD_DIR=/path/to/old/checkout node dist/bench/container_cost.js
//   BENCH_MESSAGES (default 120; 2 MB rows: a quarter of it, at least 20)

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Clamd, startClamd } from '../test/support/clamd';
import { childPids } from '../test/support/processes';
import { esetsCfg, freePort, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../test/support/relay';
import { SmtpTestClient } from '../test/support/smtp_client';
import { infoZip } from '../test/support/archives';

const CLIENTS = 4;

/** CPU of a process, its reaped children (the unpacking tools) included, ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
}

function b64Lines(bytes: Buffer): string[] {
  const all = bytes.toString('base64');
  const lines: string[] = [];
  for (let at = 0; at < all.length; at += 76) lines.push(all.slice(at, at + 76));
  return lines;
}

const HEAD = ['From: a@example.com', 'To: b@example.org', 'Subject: bench', 'MIME-Version: 1.0'];

/** Text of about `bytes` bytes, in lines. */
function text(bytes: number): string[] {
  const line = 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.';
  return Array.from({ length: Math.max(1, Math.round(bytes / (line.length + 2))) }, (_, i) => `${i} ${line}`);
}

function withAttachment(name: string, type: string, data: Buffer): string {
  return [...HEAD, 'Content-Type: multipart/mixed; boundary="=_b"', '', '--=_b', 'Content-Type: text/plain', '', 'Attached.',
    '--=_b', `Content-Type: ${type}; name="${name}"`, `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64', '', ...b64Lines(data), '--=_b--', ''].join('\r\n');
}

function paragraphs(bytes: number): string {
  return text(bytes).map((l) => `<w:p>${l}</w:p>`).join('');
}

/** A .docx: the OOXML parts Word writes, and a picture of random bytes making up the size. */
function docx(bytes: number): Buffer {
  const xml = (body: string): Buffer => Buffer.from(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n${body}`);
  return infoZip([
    { name: '[Content_Types].xml', data: xml('<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>') },
    { name: '_rels/.rels', data: xml('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>') },
    { name: 'word/document.xml', data: xml(`<w:document><w:body>${paragraphs(Math.min(bytes / 4, 20_000))}</w:body></w:document>`) },
    { name: 'word/media/image1.png', data: crypto.randomBytes(Math.max(64, Math.floor(bytes * 0.7))) },
  ]);
}

const DOCX_TYPE = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

const SHAPES: [string, (bytes: number) => string][] = [
  ['plain', (bytes) => [...HEAD, 'Content-Type: text/plain', '', ...text(bytes), ''].join('\r\n')],
  ['zip', (bytes) => withAttachment('files.zip', 'application/zip', infoZip([
    { name: 'notes.txt', data: Buffer.from(text(bytes / 4).join('\n')) },
    { name: 'data.bin', data: crypto.randomBytes(Math.floor(bytes * 0.6)) },
  ]))],
  ['docx', (bytes) => withAttachment('report.docx', DOCX_TYPE, docx(bytes))],
];
const SIZES: [string, number][] = [['2 KB', 2048], ['100 KB', 100 * 1024], ['2 MB', 2 * 1024 * 1024]];

interface Row {
  perSecond: number;
  relayCpu: number;
  clamdCpu: number;
}

async function run(relay: Relay, clamd: Clamd, message: string, n: number): Promise<Row> {
  const worker = childPids(relay.process.pid!)[0];
  const cpu0 = cpuMs(worker);
  const clamd0 = cpuMs(clamd.process.pid!);
  const started = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < n) {
      next++;
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO bench.example');
      const r = await client.send('a@example.com', ['b@example.org'], message, '', 600_000);
      client.end();
      if (r.data?.code !== 250) throw new Error(r.data?.lines.join(' '));
    }
  }));
  const seconds = (Date.now() - started) / 1000;
  return { perSecond: n / seconds, relayCpu: (cpuMs(worker) - cpu0) / n, clamdCpu: (cpuMs(clamd.process.pid!) - clamd0) / n };
}

async function main(): Promise<void> {
  const oldDir = process.env.BENCH_OLD_DIR;
  if (!oldDir) throw new Error('BENCH_OLD_DIR: the checkout to compare with');
  const messages = Number(process.env.BENCH_MESSAGES) || 120;
  const clamd = await startClamd();
  const sinkPort = await freePort();
  const sink = spawn('smtp-sink', ['-u', 'root', '-c', `127.0.0.1:${sinkPort}`, '100'], { stdio: 'ignore' });
  const relays: Relay[] = [];
  try {
    for (const dir of [oldDir, PROJECT_DIR]) {
      const port = await freePort();
      const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sinkPort, clamdSocket: clamd.socket, smtp: { timeout_message: 590 } }));
      relays.push(await startRelay(['--config', cfg], port, {}, [], dir));
    }
    console.log('| shape | size | msg/s: old / new | relay CPU ms/msg: old / new | clamd CPU ms/msg: old / new |');
    console.log('|---|---|---|---|---|');
    for (const [size, bytes] of SIZES) {
      for (const [shape, build] of SHAPES) {
        const message = build(bytes);
        const n = bytes >= 2 * 1024 * 1024 ? Math.max(20, Math.round(messages / 4)) : messages;
        await run(relays[0], clamd, message, CLIENTS);
        await run(relays[1], clamd, message, CLIENTS);
        const old = await run(relays[0], clamd, message, n);
        const now = await run(relays[1], clamd, message, n);
        const pair = (key: keyof Row): string => `${old[key].toFixed(1)} / ${now[key].toFixed(1)}`;
        console.log(`| ${shape} | ${size} (${Math.round(message.length / 1024)} KiB sent) | ${pair('perSecond')} | ${pair('relayCpu')} `
          + `| ${pair('clamdCpu')} |`);
      }
    }
  } finally {
    await Promise.all(relays.map((r) => r.stop()));
    sink.kill();
    await clamd.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
