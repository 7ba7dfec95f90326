// The manager and its workers when things go wrong at start or later: a port
// that is taken (exit non-zero at once, no restart loop), a worker killed
// while a broken edit of esets.cfg is on disk (it comes back on the last good
// configuration, once), and the private run folder (removed at stop; one
// left by a killed manager removed at the next start).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { eventually } from '../support/processes';
import { esetsCfg, freePort, LAUNCHER, PROJECT_DIR, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { spawn } from 'node:child_process';

function children(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function sendOne(port: number, subject: string, body: string): Promise<number> {
  const client = await SmtpTestClient.connect(port);
  await client.read();
  await client.command('EHLO client.example');
  const { data, rcpts } = await client.send('a@example.com', ['b@example.org'], `Subject: ${subject}\r\nMessage-ID: <${subject}@test>\r\n\r\n${body}\r\n`);
  client.end();
  return data?.code ?? rcpts[0].code;
}

describe('manager and workers: start-up failures, restarts, run folders', function () {
  this.timeout(90_000);
  let clamd: Clamd;
  let sink: Sink;
  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await sink?.stop();
    await clamd?.stop();
  });
  beforeEach(() => { sink.messages.length = 0; });

  it('a port in use at start: exit 1 at once, naming the address and the options, no worker started, no loop', async () => {
    const port = await freePort();
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(port, '127.0.0.1', r));
    try {
      const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket }));
      const child = spawn(process.execPath, [LAUNCHER, '--config', cfg], { cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let forked = 0;
      child.stdout.on('data', (d) => { out += d.toString(); });
      child.stderr.on('data', (d) => { out += d.toString(); });
      const poll = setInterval(() => { forked = Math.max(forked, children(child.pid!).length); }, 50);
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
      });
      clearInterval(poll);
      assert.equal(code, 1, out);
      assert.match(out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use .*listen_addr, listen_port`));
      assert.match(out, /esets_smtp: not started/);
      assert.equal(forked, 0, 'no worker was forked');
      assert.doesNotMatch(out, /worker .* starts/);
    } finally {
      taken.close();
    }
  });

  it('a worker killed while a broken edit is on disk comes back once, on the last good configuration; the fixed edit is taken', async () => {
    const port = await freePort();
    // the good configuration discards infected mail (the built-in default would reject it)
    const good = esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { action_av_infected: 'discard' } });
    const cfg = writeEsetsCfg(good);
    const relay = await startRelay(['--config', cfg], port);
    try {
      assert.equal(await sendOne(port, 'before', EICAR), 250);
      fs.writeFileSync(cfg, good.replace('action_av_infected = discard', 'action_av_infected = maybe'));
      assert.ok(await eventually(() => /configuration not reloaded/.test(relay.output()), 10_000), relay.output());

      const [worker] = children(relay.process.pid!);
      process.kill(worker, 'SIGKILL');
      assert.ok(await eventually(() => children(relay.process.pid!).some((p) => p !== worker)
        && /runs on the last good one/.test(relay.output()), 15_000), relay.output());
      // the new worker serves (the old one's listener is gone with it)
      let served = 0;
      for (let i = 0; i < 50 && served !== 250; i++) {
        served = await sendOne(port, 'after-kill', 'hello').catch(() => 0);
        if (served !== 250) await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(served, 250);
      // the last good configuration: infected mail is discarded, not refused by a default
      assert.equal(await sendOne(port, 'infected-after-kill', EICAR), 250);
      assert.ok(!sink.messages.some((m) => m.data.toString().includes('EICAR')), 'an infected message was delivered');
      assert.ok(sink.messages.some((m) => m.data.toString().includes('<after-kill@test>')));
      assert.equal(children(relay.process.pid!).length, 1, 'one worker, not a restart loop');
      assert.equal((relay.output().match(/a new one starts/g) ?? []).length, 1, relay.output());

      // the fix is taken by the new worker (it watches the files it could not use)
      fs.writeFileSync(cfg, good.replace('action_av_infected = discard', 'action_av_infected = reject'));
      assert.ok(await eventually(() => /configuration reloaded/.test(relay.output().split('runs on the last good one')[1] ?? ''), 10_000), relay.output());
      assert.equal(await sendOne(port, 'infected-after-fix', EICAR), 550);
    } finally {
      await relay.stop();
    }
  });

  it("the manager's run folder: removed when it stops; one a killed manager left is removed at the next start", async () => {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket }));
    const runDir = (pid: number): string => path.join(os.tmpdir(), `esets-relay-run-${pid}`);

    const first = await startRelay(['--config', cfg], port);
    const firstPid = first.process.pid!;
    const firstWorkers = children(firstPid);
    assert.ok(fs.existsSync(runDir(firstPid)), 'the run folder is where it should be');
    assert.equal(fs.statSync(runDir(firstPid)).mode & 0o777, 0o700);
    await first.stop('SIGKILL');
    // the workers see their manager gone and exit
    assert.ok(await eventually(() => firstWorkers.every((p) => !fs.existsSync(`/proc/${p}`)), 10_000), 'workers outlived the manager');
    assert.ok(fs.existsSync(runDir(firstPid)), 'a kill cannot clean up');

    const second = await startRelay(['--config', cfg], port);
    const secondPid = second.process.pid!;
    assert.equal(fs.existsSync(runDir(firstPid)), false, 'the stale run folder is still there');
    assert.equal(await sendOne(port, 'second', 'hello'), 250);
    assert.equal(await second.stop('SIGTERM'), 0);
    assert.equal(fs.existsSync(runDir(secondPid)), false, 'the run folder outlived its manager');
  });
});
