// A bounded soak: 5,000 messages of mixed kinds over 50 concurrent sessions
// through the relay with real clamd and spamd; every answer as the policy
// says, nothing lost or duplicated, memory back near its warm-up level.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { Spamd, startSpamd } from '../support/spamd';
import { assertNothingLost, EXPECTED, Kind, Traffic } from '../support/traffic';

function workerRssMb(relay: Relay): number {
  const children = fs.readFileSync(`/proc/${relay.process.pid}/task/${relay.process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return children.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024, 0);
}

describe('soak: 5,000 mixed messages, 50 sessions', function () {
  this.timeout(240_000);
  let clamd: Clamd;
  let spamd: Spamd;
  let sink: Sink;
  let relay: Relay;

  before(async () => {
    [clamd, spamd] = await Promise.all([startClamd(), startSpamd()]);
    sink = new Sink();
    await sink.start();
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket,
      global: { spamd_addr: `127.0.0.1:${spamd.port}` }, smtp: { user_config: '"users.cfg"' },
    }));
    // only mail to spam.example goes to spamd: spamd is the slow part of this machine
    fs.writeFileSync(path.join(path.dirname(cfg), 'users.cfg'), '[spam.example]\naction_as = scan\n');
    relay = await startRelay(['--config', cfg], port);
  });

  after(async () => {
    await relay?.stop();
    await Promise.all([sink?.stop(), clamd?.stop(), spamd?.stop()]);
  });

  it('answers every message as the policy says, loses and duplicates nothing, keeps its memory', async () => {
    const kinds: Kind[] = ['clean', 'clean', 'clean', 'eicar', 'multi', 'utf8', 'clean', 'clamzip', 'clean', 'gtube', 'clean', 'eicar', 'utf8', 'clean', 'multi', 'clean', 'clean', 'clean', 'clean', 'large'];
    const warmup = new Traffic({ port: relay.port, sessions: 50, messages: 500, kinds });
    await warmup.done;
    const afterWarmup = workerRssMb(relay);
    const started = Date.now();
    const soak = new Traffic({ port: relay.port, sessions: 50, messages: 5000, kinds, reconnect: false });
    await soak.done;
    const seconds = (Date.now() - started) / 1000;
    const atEnd = workerRssMb(relay);

    const all = [...warmup.sent, ...soak.sent];
    const wrong = all.filter((s) => s.code !== EXPECTED[s.kind]);
    assert.deepEqual(wrong.slice(0, 5).map((s) => `${s.kind}: ${s.code} ${s.text}`), [], `${wrong.length} unexpected answers`);
    assertNothingLost(all, sink.messages);
    assert.ok(atEnd <= afterWarmup * 1.2, `worker RSS ${atEnd.toFixed(0)} MB at the end, ${afterWarmup.toFixed(0)} MB after warm-up`);
    assert.ok(seconds < 180, `took ${seconds} s`);
  });
});
