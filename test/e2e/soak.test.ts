// A bounded soak: 5,000 messages of mixed kinds over 50 concurrent sessions,
// spread over two relay instances sharing two clamd daemons (the scale-out of
// README "Scaling out", on loopback), with real spamd; every answer as the
// policy says, nothing lost or duplicated, memory back near its warm-up level.
// Memory is the workers' live JS heap (from heap snapshots); RSS is reported:
// it swings by tens of MB with V8's heap sizing and says little about leaks.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { Spamd, startSpamd } from '../support/spamd';
import { heapSnapshotOptions, takeLiveHeapMb } from '../support/heap';
import { assertNothingLost, EXPECTED, Kind, Traffic } from '../support/traffic';
import { removeTempDir, tempDir } from '../support/temp_dirs';

/** The lowest of a few samples: RSS swings with garbage collection, a leak does not. */
async function settledRssMb(relay: Relay): Promise<number> {
  let low = Infinity;
  for (let i = 0; i < 6; i++) {
    low = Math.min(low, workerRssMb(relay));
    await new Promise((r) => setTimeout(r, 250));
  }
  return low;
}

function workerPids(relay: Relay): number[] {
  return fs.readFileSync(`/proc/${relay.process.pid}/task/${relay.process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

function workerRssMb(relay: Relay): number {
  return workerPids(relay).reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024, 0);
}

interface Memory { rssMb: number; heapMb: number }

/** RSS first (a snapshot itself grows RSS), then the live heap of every worker. */
async function memory(relay: Relay, dir: string): Promise<Memory> {
  const rssMb = await settledRssMb(relay);
  let heapMb = 0;
  for (const pid of workerPids(relay)) heapMb += await takeLiveHeapMb(pid, dir);
  return { rssMb, heapMb };
}

describe('soak: 5,000 mixed messages, 50 sessions, two relays, two clamd', function () {
  this.timeout(240_000);
  let clamds: Clamd[] = [];
  let spamd: Spamd;
  let sink: Sink;
  const relays: Relay[] = [];
  const snapshots = tempDir('esets-heap-');

  before(async () => {
    let first: Clamd;
    let second: Clamd;
    [first, second, spamd] = await Promise.all([startClamd(), startClamd(), startSpamd()]);
    clamds = [first, second];
    sink = new Sink();
    await sink.start();
    for (const order of [[first, second], [second, first]]) {
      const port = await freePort();
      const cfg = writeEsetsCfg(esetsCfg(port, {
        serverPort: sink.port, clamdSocket: order.map((c) => c.socket).join(', '),
        global: { spamd_addr: `127.0.0.1:${spamd.port}` }, smtp: { user_config: '"users.cfg"' },
      }));
      // only mail to spam.example goes to spamd: spamd is the slow part of this machine
      fs.writeFileSync(path.join(path.dirname(cfg), 'users.cfg'), '[spam.example]\naction_as = scan\n');
      relays.push(await startRelay(['--config', cfg], port, { NODE_OPTIONS: heapSnapshotOptions(snapshots) }));
    }
  });

  after(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all([sink?.stop(), spamd?.stop(), ...clamds.map((c) => c.stop())]);
    removeTempDir(snapshots);
  });

  it('answers every message as the policy says, loses and duplicates nothing, keeps its live heap within 20% of warm-up', async () => {
    const kinds: Kind[] = [
      'clean', 'clean', 'clean', 'eicar', 'multi', 'utf8', 'clean', 'clamzip', 'clean', 'gtube',
      'clean', 'eicar', 'smtputf8', 'clean', 'multi', 'clean', 'utf8', 'clean', 'clean', 'large',
    ];
    const warmups = relays.map((r) => new Traffic({ port: r.port, sessions: 25, messages: 500, kinds }));
    await Promise.all(warmups.map((t) => t.done));
    const afterWarmup: Memory[] = [];
    for (const r of relays) afterWarmup.push(await memory(r, snapshots));
    const started = Date.now();
    const soaks = relays.map((r) => new Traffic({ port: r.port, sessions: 25, messages: 2500, kinds }));
    await Promise.all(soaks.map((t) => t.done));
    const seconds = (Date.now() - started) / 1000;
    const atEnd: Memory[] = [];
    for (const r of relays) atEnd.push(await memory(r, snapshots));
    const show = (ms: Memory[], key: keyof Memory) => ms.map((m) => m[key].toFixed(1)).join(', ');
    process.stderr.write(`soak: ${seconds.toFixed(0)} s; `
      + `workers' live heap after warm-up ${show(afterWarmup, 'heapMb')} MB, at the end ${show(atEnd, 'heapMb')} MB; `
      + `RSS after warm-up ${show(afterWarmup, 'rssMb')} MB, at the end ${show(atEnd, 'rssMb')} MB `
      + '(the first snapshot itself adds to RSS)\n');

    const all = [...warmups, ...soaks].flatMap((t) => t.sent);
    assert.equal(all.length, 6000);
    const wrong = all.filter((s) => s.code !== EXPECTED[s.kind]);
    assert.deepEqual(wrong.slice(0, 5).map((s) => `${s.kind}: ${s.code} ${s.text}`), [], `${wrong.length} unexpected answers`);
    assertNothingLost(all, sink.messages);
    const international = sink.messages.filter((m) => m.from === 'jörg@example.com');
    assert.equal(international.length, all.filter((s) => s.kind === 'smtputf8').length, 'SMTPUTF8 envelopes at the server');
    for (const m of international) assert.deepEqual(m.to, ['müller@example.org', 'user@example.org']);
    relays.forEach((_, i) => {
      assert.ok(afterWarmup[i].heapMb > 1, 'no heap reading');
      assert.ok(atEnd[i].heapMb <= afterWarmup[i].heapMb * 1.2,
        `relay ${i}: live heap grew from ${afterWarmup[i].heapMb.toFixed(1)} to ${atEnd[i].heapMb.toFixed(1)} MB over 2,500 messages`);
    });
    assert.ok(seconds < 180, `took ${seconds} s`);
    assert.equal(soaks.reduce((n, t) => n + t.sent.length, 0), 5000);
  });
});
