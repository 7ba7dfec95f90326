// The manager and its workers when things go wrong at start or later: a port
// that is taken (exit non-zero at once, no restart loop), a worker killed
// while a broken edit of esets.cfg is on disk (it comes back on the last good
// configuration, once), and the private run folder (removed at stop; one
// left by a killed manager removed at the next start).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { childPids, eventually, processDirOf } from '../support/processes';
import { esetsCfg, freePort, LAUNCHER, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { spawn } from 'node:child_process';
import { tempDir } from '../support/temp_dirs';

async function sendOne(port: number, subject: string, body: string): Promise<number> {
  const client = await SmtpTestClient.connect(port);
  await client.read();
  await client.command('EHLO client.example');
  const { data, rcpts } = await client.send(
    'a@example.com', ['b@example.org'], `Subject: ${subject}\r\nMessage-ID: <${subject}@test>\r\n\r\n${body}\r\n`,
  );
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
      const poll = setInterval(() => { forked = Math.max(forked, childPids(child.pid!).length); }, 50);
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

  it('a worker killed while a broken edit is on disk comes back once, on the last good configuration; '
    + 'the fixed edit is taken', async () => {
    const port = await freePort();
    // the good configuration discards infected mail (the built-in default would reject it)
    const good = esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { action_av_infected: 'discard' } });
    const cfg = writeEsetsCfg(good);
    const relay = await startRelay(['--config', cfg], port);
    try {
      assert.equal(await sendOne(port, 'before', EICAR), 250);
      fs.writeFileSync(cfg, good.replace('action_av_infected = discard', 'action_av_infected = maybe'));
      assert.ok(await eventually(() => /configuration not reloaded/.test(relay.output()), 10_000), relay.output());

      const [worker] = childPids(relay.process.pid!);
      process.kill(worker, 'SIGKILL');
      assert.ok(await eventually(() => childPids(relay.process.pid!).some((p) => p !== worker)
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
      assert.equal(childPids(relay.process.pid!).length, 1, 'one worker, not a restart loop');
      assert.equal((relay.output().match(/a new one starts/g) ?? []).length, 1, relay.output());

      // the fix is taken by the new worker (it watches the files it could not use)
      fs.writeFileSync(cfg, good.replace('action_av_infected = discard', 'action_av_infected = reject'));
      assert.ok(await eventually(() => /configuration reloaded/.test(relay.output().split('runs on the last good one')[1] ?? ''), 10_000), relay.output());
      assert.equal(await sendOne(port, 'infected-after-fix', EICAR), 550);
    } finally {
      await relay.stop();
    }
  });

  /** A session that has sent part of its message; `finish()` sends the rest and reads the answer. */
  async function midData(port: number, id: string): Promise<{ client: SmtpTestClient; finish(): Promise<number> }> {
    const client = await SmtpTestClient.connect(port);
    await client.read();
    await client.command('EHLO client.example');
    assert.equal((await client.command('MAIL FROM:<a@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<b@example.org>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    const socket = (client as unknown as { socket: net.Socket }).socket;
    socket.write(`Subject: drain\r\nMessage-ID: <${id}@test>\r\n\r\nfirst half\r\n`);
    return {
      client,
      finish: async () => {
        socket.write('second half\r\n.\r\n');
        return (await client.read()).code;
      },
    };
  }

  it('TERM twice, to the manager and to every worker (systemd signals the whole group): a session mid-DATA still finishes', async () => {
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 2 } })),
    ], port);
    try {
      assert.ok(await eventually(() => childPids(relay.process.pid!).length === 2, 10_000));
      const session = await midData(port, 'term-twice');
      for (let round = 0; round < 2; round++) {
        for (const pid of [relay.process.pid!, ...childPids(relay.process.pid!)]) process.kill(pid, 'SIGTERM');
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.equal(await session.finish(), 250);
      session.client.end();
      assert.equal(await relay.exited, 0);
      assert.equal(sink.messages.filter((m) => m.data.toString().includes('<term-twice@test>')).length, 1);
    } finally {
      await relay.stop('SIGKILL');
    }
  });

  it('as PID 1 (a container), TERM drains too: a session mid-DATA finishes', async () => {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket }));
    const child = spawn('unshare', ['-pf', '--mount-proc', process.execPath, LAUNCHER, '--config', cfg], {
      cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d.toString(); });
    child.stderr.on('data', (d) => { out += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    try {
      assert.ok(await eventually(() => /listening on/i.test(out), 20_000), out);
      // the relay: unshare's child, PID 1 inside its namespace
      const [launcher] = childPids(child.pid!);
      assert.match(fs.readFileSync(`/proc/${launcher}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'not PID 1 in its namespace');
      const session = await midData(port, 'pid-one');
      process.kill(launcher, 'SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await session.finish(), 250, out);
      session.client.end();
      assert.equal(await exited, 0, out);
      assert.equal(sink.messages.filter((m) => m.data.toString().includes('<pid-one@test>')).length, 1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('TERM: a message at the server when the drain bound passes still gets its answer (no cut, no duplicate)', async () => {
    const slow = new Sink({ dataDelayMs: 6_000 });
    await slow.start();
    const port = await freePort();
    // drain bound: 2 + 10 s
    const relay = await startRelay([
      '--config',
      // a line a second keeps the client inside timeout_client; client_min_rate (which would cut such a drip) is off
      writeEsetsCfg(esetsCfg(port, {
        serverPort: slow.port, clamdSocket: clamd.socket, smtp: { timeout_client: 2, timeout_message: 10, client_min_rate: 0 },
      })),
    ], port);
    try {
      const session = await midData(port, 'at-the-bound');
      const socket = (session.client as unknown as { socket: net.Socket }).socket;
      relay.process.kill('SIGTERM');
      // the client keeps sending (each line within timeout_client), its dot 10 s after TERM: the server answers 6 s later
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 1_000));
        socket.write(`line ${i}\r\n`);
      }
      const started = Date.now();
      assert.equal(await session.finish(), 250, relay.output().slice(-2000));
      assert.ok(Date.now() - started >= 5_000, 'answered before the server did');
      assert.equal(await relay.exited, 0);
      assert.equal(slow.messages.length, 1);
    } finally {
      await relay.stop('SIGKILL');
      await slow.stop();
    }
  });

  it('after TERM, a client that keeps its connection gets 421 4.3.2 at its next MAIL, and the relay exits at once', async () => {
    const port = await freePort();
    const relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket }))], port);
    try {
      const client = await SmtpTestClient.connect(port);
      await client.read();
      await client.command('EHLO client.example');
      assert.equal((await client.send('a@example.com', ['b@example.org'], 'Subject: before\r\n\r\nhello\r\n')).data?.code, 250);
      const termAt = Date.now();
      relay.process.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      const mail = await client.command('MAIL FROM:<a@example.com>');
      assert.equal(mail.code, 421, `${mail.code} ${mail.lines.join(' ')}`);
      assert.match(mail.lines.join(' '), /4\.3\.2 .*shutting down/);
      assert.equal(await relay.exited, 0);
      assert.ok(Date.now() - termAt < 5_000, `exited ${Date.now() - termAt} ms after TERM`);
    } finally {
      await relay.stop('SIGKILL');
    }
  });

  /** Both workers of num_proc = 2 say they listen (startRelay returns at the first). */
  function bothListening(relay: Relay): Promise<boolean> {
    return eventually(() => (relay.output().match(/worker \d+ listening on/g) ?? []).length >= 2, 15_000);
  }

  /** Sends one message; its reply code (0: no connection, or it was cut). */
  async function tryOne(port: number): Promise<number> {
    return SmtpTestClient.connect(port).then(async (c) => {
      await c.read();
      await c.command('EHLO client.example');
      const r = await c.send('a@example.com', ['b@example.org'], 'Subject: still\r\n\r\nhello\r\n');
      c.end();
      return r.data?.code ?? r.rcpts[0]?.code ?? 0;
    }, () => 0).catch(() => 0);
  }

  async function servesWithin(port: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await tryOne(port).catch(() => 0)) === 250) return true;
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  it('workers that serve, all killed again and again: the manager never gives up, and mail flows again within seconds', async () => {
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 2 } })),
    ], port);
    try {
      for (let round = 0; round < 5; round++) {
        assert.ok(await servesWithin(port, 10_000), `round ${round}: no worker serves\n${relay.output().slice(-2000)}`);
        for (const pid of childPids(relay.process.pid!)) process.kill(pid, 'SIGKILL');
      }
      assert.ok(await servesWithin(port, 10_000), 'no worker serves after the last round');
      assert.equal(relay.process.exitCode, null, 'the manager gave up');
      assert.doesNotMatch(relay.output(), /no worker could start/);
    } finally {
      await relay.stop();
    }
  });

  it('a worker stopped alone (TERM) is replaced: num_proc stays what was asked', async () => {
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 2 } })),
    ], port);
    try {
      assert.ok(await bothListening(relay), relay.output());
      const [alone] = childPids(relay.process.pid!);
      process.kill(alone, 'SIGTERM');
      assert.ok(await eventually(
        () => childPids(relay.process.pid!).length === 2 && !childPids(relay.process.pid!).includes(alone), 15_000,
      ), relay.output());
      const said = new RegExp(`worker ${alone} is stopping \\(TERM\\): a new one starts now`);
      assert.ok(await eventually(() => said.test(relay.output()), 5_000), relay.output());
    } finally {
      await relay.stop();
    }
  });

  it('a live edit of server_port takes effect for the sessions after it, in every worker', async () => {
    const other = new Sink();
    await other.start();
    const port = await freePort();
    const text = esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 2 } });
    const cfg = writeEsetsCfg(text);
    const relay = await startRelay(['--config', cfg], port);
    try {
      // every process watching its files (a worker still starting reads the edit at its start)
      assert.ok(await bothListening(relay), relay.output());
      fs.writeFileSync(cfg, text.replace(`server_port = ${sink.port}`, `server_port = ${other.port}`));
      assert.ok(await eventually(() => (relay.output().match(/configuration reloaded/g) ?? []).length >= 3, 10_000), relay.output());
      for (let i = 0; i < 6; i++) {
        const client = await SmtpTestClient.connect(port);
        await client.read();
        await client.command('EHLO client.example');
        assert.equal((await client.send('a@example.com', ['b@example.org'], `Subject: moved ${i}\r\n\r\nhello\r\n`)).data?.code, 250);
        client.end();
      }
      assert.equal(other.messages.length, 6, 'a session went to the old server');
    } finally {
      await relay.stop();
      await other.stop();
    }
  });

  it("the manager's run folder: removed when it stops; one a killed manager left is removed at the next start", async () => {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket }));
    // a temporary folder of these relays' own: another relay starting on the machine would clean up too
    const tmp = tempDir('esets-tmpdir-');
    const env = { TMPDIR: tmp };

    const first = await startRelay(['--config', cfg], port, env);
    const firstPid = first.process.pid!;
    const firstWorkers = childPids(firstPid);
    const firstRun = processDirOf('run', firstPid, tmp);
    assert.ok(firstRun && fs.existsSync(firstRun), 'the run folder is where it should be');
    assert.equal(fs.statSync(firstRun).mode & 0o777, 0o700);
    await first.stop('SIGKILL');
    // the workers see their manager gone and exit
    assert.ok(await eventually(() => firstWorkers.every((p) => !fs.existsSync(`/proc/${p}`)), 10_000), 'workers outlived the manager');
    assert.ok(fs.existsSync(firstRun), 'a kill cannot clean up');

    const second = await startRelay(['--config', cfg], port, env);
    const secondPid = second.process.pid!;
    const secondRun = processDirOf('run', secondPid, tmp);
    assert.ok(secondRun);
    assert.equal(fs.existsSync(firstRun), false, 'the stale run folder is still there');
    assert.equal(await sendOne(port, 'second', 'hello'), 250);
    assert.equal(await second.stop('SIGTERM'), 0);
    assert.equal(fs.existsSync(secondRun), false, 'the run folder outlived its manager');
  });
});
