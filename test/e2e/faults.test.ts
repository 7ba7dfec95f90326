// Faults while traffic flows, each with the nothing-lost accounting: the
// mail server going down and coming back, answering 4xx/5xx, closing
// after the final dot (outcome unknown: 421); clamd killed and restarted, one of two clamd daemons killed,
// clamd accepting but never answering.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Clamd, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { startSpamd } from '../support/spamd';
import { assertNothingLost, Traffic } from '../support/traffic';
import { withSummary } from '../support/relay_reply';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function untilSent(traffic: Traffic, n: number): Promise<void> {
  for (let i = 0; i < 300 && traffic.sent.length < n; i++) await sleep(50);
}

describe('faults while traffic flows (nothing lost)', function () {
  this.timeout(120_000);
  let clamd: Clamd;

  before(async () => {
    clamd = await startClamd();
  });
  after(() => clamd?.stop());

  async function relayFor(serverPort: number, clamdSockets: string[], smtp: Record<string, string | number> = {}): Promise<Relay> {
    const port = await freePort();
    return startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort, clamdSocket: clamdSockets.join(', '), smtp }))], port);
  }

  it('mail server down and restarted: 4xx in the gap, nothing lost, no hang', async () => {
    const serverPort = await freePort();
    const first = new Sink();
    await first.start(serverPort);
    const relay = await relayFor(serverPort, [clamd.socket]);
    const second = new Sink();
    try {
      const traffic = new Traffic({ port: relay.port, sessions: 8, messages: 400, kinds: ['clean', 'clean', 'eicar'] });
      await untilSent(traffic, 60);
      await first.stop();
      await untilSent(traffic, 160);
      await second.start(serverPort);
      await traffic.done;
      assert.ok(traffic.sent.some((s) => s.code >= 400 && s.code < 500), 'no message met the outage');
      assert.ok(traffic.sent.filter((s) => s.kind === 'clean' && s.code === 250).length > 100);
      assert.ok(Math.max(...traffic.sent.map((s) => s.ms)) < 10_000, 'a message hung');
      assertNothingLost(traffic.sent, [...first.messages, ...second.messages]);
    } finally {
      await relay.stop();
      await second.stop().catch(() => undefined);
    }
  });

  it('mail server answering 4xx, then 5xx, then closing before its answer to the message: the client is told so, never 250', async () => {
    const sink = new Sink();
    const serverPort = await sink.start();
    const relay = await relayFor(serverPort, [clamd.socket]);
    try {
      const traffic = new Traffic({ port: relay.port, sessions: 6, messages: 500 });
      await untilSent(traffic, 50);
      sink.options = { dataReply: { code: 452, text: '4.3.1 Insufficient system storage' } };
      await untilSent(traffic, 120);
      sink.options = { dataReply: { code: 554, text: '5.7.0 Content rejected' } };
      await untilSent(traffic, 190);
      sink.options = { dropAfterData: true };
      await untilSent(traffic, 260);
      sink.options = {};
      await traffic.done;
      const texts = traffic.sent.map((s) => `${s.code} ${s.text}`);
      assert.ok(texts.some((t) => /^45\d .*Insufficient system storage/.test(t)), 'no 4xx passed on');
      assert.ok(texts.some((t) => /^55\d .*Content rejected/.test(t)), 'no 5xx passed on');
      // the server closed after the whole message, before its answer: the relay cannot know, and says so
      assert.ok(sink.dropped > 0 && texts.some((t) => /^421 4\.4\.2 .*may have been delivered/.test(t)), 'no close after the final dot met');
      assertNothingLost(traffic.sent, sink.messages);
    } finally {
      await relay.stop();
      await sink.stop();
    }
  });

  it('clamd killed and restarted: messages in the gap get action_av_notscanned (defer), none hangs', async () => {
    const sink = new Sink();
    const serverPort = await sink.start();
    const dir = tempDir('esets-clamd-restart-');
    let own = await startClamd(dir, true);
    const relay = await relayFor(serverPort, [own.socket]);
    try {
      const traffic = new Traffic({ port: relay.port, sessions: 6, messages: 300, kinds: ['clean', 'eicar'] });
      await untilSent(traffic, 40);
      await own.kill();
      await untilSent(traffic, 100);
      own = await startClamd(dir, true);
      await traffic.done;
      // each deferral says "not scanned" and its trace id, never clamd's socket or error: the summary of that id has them
      const gap = await Promise.all(traffic.sent.filter((s) => s.code === 451).map((s) => withSummary(relay.output, s.text)));
      assert.ok(gap.length > 0, 'no message met the outage');
      assert.ok(gap.every((t) => /^4\.7\.1 Message deferred: it could not be scanned for viruses, try again later \(trace /.test(t)), gap[0]);
      // in the gap clamd is unavailable; a scan under way when it died was reset
      assert.ok(gap.every((t) => / \|\| log: .* av="not scanned: clamd/.test(t)), gap[0]);
      assert.ok(gap.some((t) => / \|\| log: .*clamd unavailable/.test(t)), 'no message found clamd gone');
      assert.ok(traffic.sent.slice(-20).every((s) => s.code === (s.kind === 'eicar' ? 550 : 250)), 'scanning did not resume');
      assert.ok(Math.max(...traffic.sent.map((s) => s.ms)) < 10_000, 'a message hung');
      assertNothingLost(traffic.sent, sink.messages);
    } finally {
      await relay.stop();
      await own.stop();
      removeTempDir(dir);
      await sink.stop();
    }
  });

  it('two clamd daemons, one killed: traffic fails over with no error', async () => {
    const sink = new Sink();
    const serverPort = await sink.start();
    const doomed = await startClamd();
    const relay = await relayFor(serverPort, [doomed.socket, clamd.socket]);
    try {
      const traffic = new Traffic({ port: relay.port, sessions: 6, messages: 300, kinds: ['clean', 'eicar'] });
      await untilSent(traffic, 60);
      await doomed.kill();
      await traffic.done;
      for (const s of traffic.sent) assert.equal(s.code, s.kind === 'eicar' ? 550 : 250, `${s.id}: ${s.code} ${s.text}`);
      assertNothingLost(traffic.sent, sink.messages);
    } finally {
      await relay.stop();
      await doomed.stop();
      await sink.stop();
    }
  });

  it('spamd slow (stopped mid-work): action_as_notscanned after spamd_timeout, none hangs', async () => {
    const sink = new Sink();
    const serverPort = await sink.start();
    const spamd = await startSpamd();
    const port = await freePort();
    const relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
      serverPort, clamdSocket: clamd.socket, global: { spamd_addr: `127.0.0.1:${spamd.port}` },
      smtp: { action_as: 'scan', spamd_timeout: 2, action_as_notscanned: 'defer' },
    }))], port);
    try {
      const traffic = new Traffic({ port, sessions: 3, messages: 20 });
      await untilSent(traffic, 6);
      spamd.process.kill('SIGSTOP');
      for (const pid of fs.readFileSync(`/proc/${spamd.process.pid}/task/${spamd.process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
        process.kill(Number(pid), 'SIGSTOP');
      }
      await traffic.done;
      const deferred = await Promise.all(traffic.sent.filter((s) => s.code === 451).map((s) => withSummary(relay.output, s.text)));
      assert.ok(deferred.some((t) => /^4\.7\.1 .* \|\| log: .*not scanned: spamd.* did not answer within 2 s/.test(t)), deferred[0] ?? 'none deferred');
      assert.ok(Math.max(...traffic.sent.map((s) => s.ms)) < 8_000, 'a message waited past spamd_timeout');
      assertNothingLost(traffic.sent, sink.messages);
    } finally {
      await relay.stop();
      spamd.process.kill('SIGCONT');
      for (const pid of fs.readFileSync(`/proc/${spamd.process.pid}/task/${spamd.process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
        process.kill(Number(pid), 'SIGCONT');
      }
      await spamd.stop();
      await sink.stop();
    }
  });

  it('clamd accepting but never answering: deferred after av_scan_obj_timeout, none hangs', async () => {
    const sink = new Sink();
    const serverPort = await sink.start();
    const stalled = await startClamd();
    const relay = await relayFor(serverPort, [stalled.socket], { av_scan_obj_timeout: 2 });
    try {
      const traffic = new Traffic({ port: relay.port, sessions: 4, messages: 60 });
      await untilSent(traffic, 10);
      stalled.stall();
      await untilSent(traffic, 30);
      await stalled.stop(); // SIGCONT + TERM: clamd gone, the rest defers at once
      await traffic.done;
      const deferred = await Promise.all(traffic.sent.filter((s) => s.code === 451).map((s) => withSummary(relay.output, s.text)));
      assert.ok(deferred.some((t) => / \|\| log: .*did not answer within 2 s/.test(t)), 'no scan timed out');
      assert.ok(Math.max(...traffic.sent.map((s) => s.ms)) < 8_000, 'a message waited past the timeout');
      assertNothingLost(traffic.sent, sink.messages);
    } finally {
      await relay.stop();
      await sink.stop();
    }
  });
});
