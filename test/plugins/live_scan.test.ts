// The live scan (esets_policy/live_scan.ts) against a real clamd: the message
// goes to clamd as it arrives from the relay's capture (un-stuffed once);
// every kind of trouble ends in a verdict or in "scan it the ordinary way",
// never a hang.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { CapturedMessage } from '../../src/io/captured_message';
import { MAIL_MARKER } from '../../src/io/clamd_client';
import { attachLiveScan, LiveResult, LiveScan } from '../../src/io/live_scan';
import { tempDir } from '../support/temp_dirs';

const lines = (text: string): Buffer[] => text.split(/(?<=\r\n)/).map((l) => Buffer.from(l));
/** the message's bytes: what the live scan is given (already un-stuffed) */
const dataBytes = (ls: Buffer[]): number => ls.reduce((n, l) => n + l.length, 0);

describe('live scan (real clamd)', function () {
  this.timeout(30_000);
  let clamd: Clamd;
  before(async () => { clamd = await startClamd(); });
  after(() => clamd?.stop());

  const options = (addresses = [clamd.socket], scanTimeoutMs = 10_000) => ({ addresses, connectTimeoutMs: 2000, scanTimeoutMs });

  /** `sent`: the DATA lines as the client sends them; they go through the relay's capture */
  async function scan(sent: Buffer[], opts = options(), maxBytes = 0): Promise<LiveResult> {
    const message = new CapturedMessage(os.tmpdir());
    const live = new LiveScan(opts, maxBytes);
    attachLiveScan(message, live);
    for (const l of sent) message.addLine(l);
    message.end();
    return live.end(message.size);
  }

  it('gives clamd verdicts: clean, and infected for EICAR on a dot-stuffed line', async () => {
    assert.deepEqual(await scan(lines('Subject: hi\r\n\r\nhello\r\n')), { verdict: { kind: 'clean' } });
    // the client stuffs a leading dot; clamd must see the line as written: ".X5O!..."
    const infected = await scan(lines(`Subject: eicar\r\n\r\n..${EICAR}\r\n`));
    assert.ok('verdict' in infected && infected.verdict.kind === 'infected', JSON.stringify(infected));
  });

  it('sends clamd exactly the message, dot-stuffing removed from every line (a hash signature of the exact bytes matches)', async () => {
    const message = 'Subject: dots\r\n\r\n.one dot\r\nplain\r\nsingle\r\n';
    // as the client sends it: a stuffed line, and a line with one unstuffed dot (RFC 5321 4.5.2 removes it too)
    const sent = lines(message.replace(/^\./m, '..').replace('single', '.single'));
    const dir = tempDir('esets-clamd-');
    const md5 = (s: string): string => crypto.createHash('md5').update(s).digest('hex');
    fs.mkdirSync(path.join(dir, 'db'));
    // clamd gets the relay's mail marker, then exactly the message
    const scanned = MAIL_MARKER.toString() + message;
    const stuffed = MAIL_MARKER.toString() + sent.join('');
    fs.writeFileSync(
      path.join(dir, 'db', 'exact.hdb'),
      `${md5(scanned)}:${scanned.length}:Exact-Message\n${md5(stuffed)}:${stuffed.length}:Still-Stuffed\n`,
    );
    const exact = await startClamd(dir);
    try {
      const result = await scan(sent, options([exact.socket]));
      assert.deepEqual(result, { verdict: { kind: 'infected', names: ['Exact-Message.UNOFFICIAL'] } });
    } finally {
      await exact.stop();
    }
  });

  it('counts the scan timeout from the end of the message, not from its start', async () => {
    const live = new LiveScan(options([clamd.socket], 1000), 0);
    const ls = lines('Subject: slow\r\n\r\n' + 'a slow client line\r\n'.repeat(20));
    for (const l of ls) {
      live.add(l);
      await new Promise((r) => setTimeout(r, 75)); // 1.5 s of DATA in all
    }
    assert.deepEqual(await live.end(dataBytes(ls)), { verdict: { kind: 'clean' } });
  });

  it('steps aside when the byte count differs from the captured message', async () => {
    const ls = lines('Subject: hi\r\n\r\nhello\r\n');
    const live = new LiveScan(options(), 0);
    for (const l of ls) live.add(l);
    const result = await live.end(dataBytes(ls) + 10);
    assert.ok('reason' in result && !result.failed && /live scan saw/.test(result.reason), JSON.stringify(result));
  });

  it('names a daemon it cannot reach, so the ordinary scan skips it', async () => {
    // a path no earlier test used: the process remembers daemons that failed (and would not try it first)
    const missing = `/nonexistent/${crypto.randomUUID()}.sock`;
    const result = await scan(lines('Subject: hi\r\n\r\nhello\r\n'), options([missing, clamd.socket]));
    assert.ok('reason' in result && result.failed === missing, JSON.stringify(result));
    // and the next live scan starts on the daemon that answers
    assert.deepEqual(await scan(lines('Subject: hi\r\n\r\nhello\r\n'), options([missing, clamd.socket])), { verdict: { kind: 'clean' } });
  });

  it("takes clamd's answer before the end (e.g. its read timeout on a slow client) as no verdict, without blaming the daemon", async () => {
    const socketPath = path.join(tempDir('esets-fake-clamd-'), 'clamd.sock');
    // a daemon that answers as clamd does when the client is too slow, then closes
    const fake = net.createServer((c) => {
      c.once('data', () => c.end('COMMAND READ TIMED OUT\0'));
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => fake.listen(socketPath, r));
    try {
      const live = new LiveScan(options([socketPath]), 0);
      const ls = lines('Subject: slow\r\n\r\nbody\r\n');
      live.add(ls[0]);
      await new Promise((r) => setTimeout(r, 300)); // the answer comes while the client is still sending
      for (const l of ls.slice(1)) live.add(l);
      const result = await live.end(dataBytes(ls));
      assert.ok('reason' in result && !result.failed && !result.cancelled && /before the end/.test(result.reason), JSON.stringify(result));
    } finally {
      await new Promise((r) => fake.close(r));
    }
  });

  it('says "cancelled" when the transaction ends, so no scan follows', async () => {
    const live = new LiveScan(options(), 0);
    live.add(Buffer.from('Subject: gone\r\n'));
    live.cancel();
    const result = await live.result;
    assert.ok('reason' in result && result.cancelled === true, JSON.stringify(result));
  });

  it('steps aside for a message over av_scan_obj_max_size', async () => {
    const result = await scan(lines('Subject: big\r\n\r\n' + 'x'.repeat(998) + '\r\n'), options(), 500);
    assert.ok('reason' in result && /max_size/.test(result.reason), JSON.stringify(result));
  });

  it('steps aside, holding at most a few MB, when clamd stops reading (stalled daemon)', async () => {
    const stalled = await startClamd();
    try {
      stalled.stall();
      const live = new LiveScan(options([stalled.socket]), 0);
      const line = Buffer.from(`${'y'.repeat(998)}\r\n`);
      let added = 0;
      const before = process.memoryUsage().rss;
      for (; added < 20_000; added++) live.add(line); // 20 MB offered
      const result = await live.end(20_000 * line.length);
      assert.ok('reason' in result && /slower than the client/.test(result.reason), JSON.stringify(result));
      assert.ok(process.memoryUsage().rss - before < 64 * 2 ** 20, 'held the message in memory');
    } finally {
      await stalled.stop();
    }
  });

  it('settles at once when abandoned (the transaction ended) while clamd is stalled', async () => {
    const stalled = await startClamd();
    try {
      stalled.stall();
      const live = new LiveScan(options([stalled.socket]), 0);
      live.add(Buffer.from('Subject: gone\r\n'));
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      live.abandon('transaction ended');
      const result = await live.result;
      assert.ok('reason' in result && result.reason === 'transaction ended');
      assert.ok(Date.now() - started < 1000);
    } finally {
      await stalled.stop();
    }
  });
});
