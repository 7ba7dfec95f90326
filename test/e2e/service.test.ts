// Running as a service: the workers as daemon_user (the manager, root, binds
// the listener and keeps running as root), mail flowing, a large message
// spooled, a live reload read by the workers as that user; a configuration the
// user cannot read refused at start; the systemd units pass systemd-analyze.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { childPids, eventually, processDirOf } from '../support/processes';
import { esetsCfg, EXIT_CONFIG, freePort, LAUNCHER, PROJECT_DIR, runLauncher, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { tempDir } from '../support/temp_dirs';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const USER = 'nobody';
const UID = Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout.trim());

/** Real uid and supplementary groups of a process. */
function identity(pid: number): { uid: number; groups: string } {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { uid: -1, groups: '' }; // gone meanwhile
  }
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]), groups: /^Groups:\s*(.*)$/m.exec(status)![1].trim() };
}

/** A config file the workers' user can read (folder 0755, file 0644). */
function readableCfg(text: string): string {
  const file = writeEsetsCfg(text);
  fs.chmodSync(path.dirname(file), 0o755);
  fs.chmodSync(file, 0o644);
  return file;
}

async function send(port: number, subject: string, body: string): Promise<number> {
  const client = await SmtpTestClient.connect(port);
  await client.read();
  await client.command('EHLO client.example');
  const { data } = await client.send(
    'a@example.com', ['b@example.org'], `Subject: ${subject}\r\nMessage-ID: <${subject}@service.test>\r\n\r\n${body}\r\n`,
  );
  await client.command('QUIT');
  client.end();
  return data!.code;
}

describe('running as a service', function () {
  this.timeout(90_000);
  let clamd: Clamd;
  let sink: Sink;
  before(async function () {
    // the workers load the package as that user: it must be able to read it
    assert.equal(
      spawnSync(
        'setpriv', [`--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', 'test', '-r', path.join(PROJECT_DIR, 'package.json')],
      ).status,
      0,
      `${USER} cannot read ${PROJECT_DIR}: the test needs a world-readable checkout`,
    );
    clamd = await startClamd();
    // the workers connect to clamd as that user
    fs.chmodSync(path.dirname(clamd.socket), 0o755);
    fs.chmodSync(clamd.socket, 0o666);
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await sink?.stop();
    await clamd?.stop();
  });

  it(`daemon_user = ${USER}: the workers run as ${USER} (no root group), the manager binds; `
    + 'mail, spool and a live reload work', async () => {
    const port = await freePort();
    const good = esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket, global: { daemon_user: `"${USER}"` }, smtp: { num_proc: 2 },
    });
    const cfg = readableCfg(good);
    const relay = await startRelay(['--config', cfg], port);
    try {
      assert.ok(await eventually(() => childPids(relay.process.pid!).length === 2, 10_000));
      assert.equal(identity(relay.process.pid!).uid, 0, 'the manager stays root (it binds and restarts)');
      // each worker switches as it starts, before it loads anything
      assert.ok(
        await eventually(() => childPids(relay.process.pid!).every((w) => identity(w).uid === UID), 10_000),
        'a worker is not the user',
      );
      for (const worker of childPids(relay.process.pid!)) {
        const id = identity(worker);
        assert.equal(id.uid, UID, `worker ${worker} runs as uid ${id.uid}`);
        assert.ok(!id.groups.split(/\s+/).includes('0'), `worker ${worker} kept root's group: ${id.groups}`);
      }
      assert.equal(await send(port, 'clean', 'hello'), 250);
      assert.equal(await send(port, 'virus', EICAR), 550);
      // past the in-memory limit: the worker's private spool, written as the user
      assert.equal(await send(port, 'large', `${'x'.repeat(998)}\r\n`.repeat(5 * 1024)), 250);
      assert.ok(sink.messages.some((m) => m.data.toString().includes('<large@service.test>')));

      fs.writeFileSync(cfg, good.replace('[smtp]', '[smtp]\naction_av_infected = discard'));
      assert.ok(await eventually(() => (relay.output().match(/configuration reloaded/g) ?? []).length >= 3, 10_000), relay.output());
      assert.doesNotMatch(relay.output(), /configuration not reloaded|EACCES/);
      assert.equal(await send(port, 'virus-after-reload', EICAR), 250, 'the reload did not reach the workers');
      assert.ok(!sink.messages.some((m) => m.data.toString().includes('<virus-after-reload@service.test>')));

      // the manager's run folder: the workers read it (Haraka's config, the last good configuration), never write it
      const runDir = processDirOf('run', relay.process.pid!)!;
      const asUser = (test: string, target: string): number | null =>
        spawnSync('setpriv', [`--reuid=${UID}`, `--regid=${UID}`, `--init-groups`, 'test', test, target]).status;
      assert.equal(asUser('-r', path.join(runDir, 'last-good.json')), 0);
      assert.notEqual(asUser('-w', runDir), 0, 'a worker could change what the manager reads');
      // a worker killed: its replacement is the user too, and serves
      const [first] = childPids(relay.process.pid!);
      process.kill(first, 'SIGKILL');
      assert.ok(await eventually(
        () => childPids(relay.process.pid!).length === 2 && !childPids(relay.process.pid!).includes(first), 10_000,
      ));
      // (a new worker starts as its manager's user and switches before it loads anything)
      assert.ok(
        await eventually(() => childPids(relay.process.pid!).every((w) => identity(w).uid === UID), 10_000),
        'the replacement worker is not the user',
      );
      let code = 0;
      for (let i = 0; i < 20 && code !== 250; i++) code = await send(port, `after-kill-${i}`, 'hello').catch(() => 0);
      assert.equal(code, 250);
    } finally {
      await relay.stop('SIGTERM');
    }
  });

  it('the quarantine folder, in a folder of root\'s (systemd\'s StateDirectory), is made for daemon_user: the workers keep EICAR there',
    async () => {
      const port = await freePort();
      const state = tempDir('esets-state-');
      fs.chmodSync(state, 0o755);
      const folder = path.join(state, 'quarantine');
      const cfg = readableCfg(esetsCfg(port, {
        serverPort: sink.port, clamdSocket: clamd.socket,
        global: { daemon_user: `"${USER}"`, daemon_quarantine: `"${folder}"`, av_quarantine_enabled: 'yes' },
      }));
      const relay = await startRelay(['--config', cfg], port);
      try {
        assert.equal(fs.statSync(folder).uid, UID, 'not made for daemon_user');
        assert.equal(fs.statSync(folder).mode & 0o777, 0o700);
        assert.equal(await send(port, 'quarantine-as-user', EICAR), 550);
        const kept = fs.readdirSync(folder).filter((n) => n.endsWith('.eml'));
        assert.equal(kept.length, 1, relay.output());
        assert.equal(fs.statSync(path.join(folder, kept[0])).uid, UID);
      } finally {
        await relay.stop('SIGTERM');
      }
    });

  it('a quarantine folder whose parents do not exist yet: they are made passable, the workers keep EICAR there', async () => {
    const port = await freePort();
    const state = tempDir('esets-state-');
    fs.chmodSync(state, 0o755);
    // no systemd to make /var/lib/esets-relay: the launcher makes the whole path
    const folder = path.join(state, 'var', 'lib', 'esets-relay', 'quarantine');
    const cfg = readableCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket,
      global: { daemon_user: `"${USER}"`, daemon_quarantine: `"${folder}"`, av_quarantine_enabled: 'yes' },
    }));
    const relay = await startRelay(['--config', cfg], port);
    try {
      assert.equal(fs.statSync(folder).uid, UID, 'not made for daemon_user');
      assert.equal(await send(port, 'quarantine-parents', EICAR), 550, relay.output());
      assert.equal(fs.statSync(path.dirname(folder)).mode & 0o777, 0o755, 'a parent the workers cannot pass');
      assert.equal(fs.readdirSync(folder).filter((n) => n.endsWith('.eml')).length, 1, relay.output());
    } finally {
      await relay.stop('SIGTERM');
    }
  });

  it('daemon_user that cannot read esets.cfg: refused at start, naming the file and the fix', async () => {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, global: { daemon_user: `"${USER}"` } }));
    fs.chmodSync(cfg, 0o600);
    const r = await runLauncher(['--config', cfg]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, new RegExp(`daemon_user = '${USER}' cannot read ${cfg.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the workers read it at start and at every reload`));
    assert.match(r.stderr, /esets_smtp: not started/);
  });

  it('daemon_user naming no user is refused at start', async () => {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket, global: { daemon_user: '"no-such-user-here"' },
    }));
    const r = await runLauncher(['--config', cfg]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, /daemon_user = 'no-such-user-here': no such user/);
  });

  it('with its output on the journal (JOURNAL_STREAM), every line carries its priority: summaries at notice, a reject too', async () => {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 2 } }));
    const relay = await startRelay(['--config', cfg], port, { JOURNAL_STREAM: '8:12345' });
    try {
      assert.equal(await send(port, 'journal-clean', 'hello'), 250);
      assert.equal(await send(port, 'journal-virus', EICAR), 550);
      assert.ok(await eventually(() => /journal-virus@service\.test/.test(relay.output().split('\n').filter((l) => /action=reject/.test(l)).join('')), 10_000));
      const lines = relay.output().split('\n').filter((l) => l !== '');
      assert.deepEqual(lines.filter((l) => !/^<[0-7]>/.test(l)), [], 'a line without a priority');
      assert.ok(lines.some((l) => /^<5>.*\[NOTICE\].*action=accept .*journal-clean@service\.test/.test(l)));
      assert.ok(lines.some((l) => /^<5>.*\[NOTICE\].*action=reject .*journal-virus@service\.test/.test(l)));
    } finally {
      await relay.stop();
    }
  });

  it('log_file: the manager and the workers (as daemon_user) log there; HUP after logrotate moved it reopens it', async () => {
    const port = await freePort();
    const dir = tempDir('esets-log-');
    fs.chmodSync(dir, 0o755);
    const log = path.join(dir, 'relay.log');
    const cfg = readableCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket, global: { daemon_user: `"${USER}"` }, smtp: { num_proc: 2, log_file: `"${log}"` },
    }));
    const child = spawn(process.execPath, [LAUNCHER, '--config', cfg], { cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d.toString(); });
    child.stderr.on('data', (d) => { out += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    const read = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
    try {
      assert.ok(await eventually(() => (read(log).match(/listening on/gi) ?? []).length >= 2, 20_000), `${out}\n${read(log)}`);
      assert.equal(fs.statSync(log).uid, UID, 'the workers could not append to a file the manager created for itself');
      assert.equal(await send(port, 'before-rotate', EICAR), 550);
      assert.ok(await eventually(() => /action=reject .*before-rotate@service\.test/.test(read(log)), 10_000), read(log));
      // logrotate: move it, then HUP the manager
      fs.renameSync(log, `${log}.1`);
      process.kill(child.pid!, 'SIGHUP');
      await sleep(500);
      for (let i = 0; i < 4; i++) assert.equal(await send(port, `after-rotate-${i}`, EICAR), 550);
      assert.ok(await eventually(() => (read(log).match(/action=reject .*after-rotate-\d@service\.test/g) ?? []).length === 4, 10_000), read(log));
      assert.doesNotMatch(read(`${log}.1`), /after-rotate/, 'a process kept writing to the moved file');
      // a link planted where the log goes is never followed by the root manager
      const target = path.join(dir, 'planted-target');
      fs.renameSync(log, `${log}.2`);
      fs.symlinkSync(target, log);
      process.kill(child.pid!, 'SIGHUP');
      await sleep(500);
      assert.equal(fs.existsSync(target), false, 'the manager created a file through a link');
      assert.equal(await send(port, 'after-link', 'hello'), 250, 'the relay stopped serving');
      assert.equal(out, '', 'written to stdout/stderr instead of the file');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('HUP (systemctl reload) reads the configuration again in every process, an edit no watch saw included; '
    + 'a broken file keeps the one in force', async () => {
    const port = await freePort();
    // esets.cfg a link to a file in another folder (configuration management): the relay watches the link's folder only
    const real = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 2 } }));
    const cfg = path.join(tempDir('esets-link-'), 'esets.cfg');
    fs.symlinkSync(real, cfg);
    const good = fs.readFileSync(real, 'utf8');
    const relay = await startRelay(['--config', cfg], port);
    const reloads = (): number => (relay.output().match(/configuration reloaded at HUP/g) ?? []).length;
    try {
      assert.ok(await eventually(() => childPids(relay.process.pid!).length === 2, 10_000));
      assert.equal(await send(port, 'hup-before', EICAR), 550);
      fs.writeFileSync(real, good.replace('[smtp]', '[smtp]\naction_av_infected = discard'));
      // no watch sees it: the configuration in force stays until HUP
      await sleep(1_500);
      assert.doesNotMatch(relay.output(), /configuration reloaded/);
      assert.equal(await send(port, 'hup-unseen', EICAR), 550);
      process.kill(relay.process.pid!, 'SIGHUP');
      // the manager and both workers
      assert.ok(await eventually(() => reloads() >= 3, 10_000), relay.output());
      for (let i = 0; i < 4; i++) assert.equal(await send(port, `hup-after-${i}`, EICAR), 250, 'a process kept the old configuration');
      assert.ok(!sink.messages.some((m) => m.data.toString().includes('hup-after-')), 'a discarded message reached the server');
      // a broken file at HUP: said with its line, the one in force stays, the relay serves
      fs.writeFileSync(real, good.replace(/^listen_port = .*$/m, 'listen_port = 25x'));
      process.kill(relay.process.pid!, 'SIGHUP');
      assert.ok(await eventually(() => (relay.output().match(/configuration not reloaded at HUP: the one in force stays/g) ?? []).length >= 3,
        10_000), relay.output());
      assert.match(relay.output(), /listen_port' has invalid value '25x'/);
      assert.equal(relay.process.exitCode, null, 'the relay stopped');
      assert.equal(await send(port, 'hup-broken', EICAR), 250, 'the configuration in force did not stay');
      assert.equal(childPids(relay.process.pid!).length, 2, 'a worker died of the HUP');
    } finally {
      await relay.stop('SIGTERM');
    }
  });

  it('the systemd units pass systemd-analyze verify, and wait longer than the TERM drain bound', () => {
    const dir = path.join(PROJECT_DIR, 'packaging', 'systemd');
    for (const unit of ['esets-relay.service', 'esets-relay-user.service']) {
      const r = spawnSync('systemd-analyze', ['verify', path.join(dir, unit)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${unit}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.trim(), '', `${unit}: ${r.stderr}`);
      const text = fs.readFileSync(path.join(dir, unit), 'utf8');
      // timeout_client + timeout_message at their defaults (30 + 540 s), an answer awaited after (590 s at most), the manager's 5 s
      assert.ok(Number(/^TimeoutStopSec=(\d+)/m.exec(text)![1]) > 30 + 540 + 590 + 5, unit);
      assert.match(text, /^Type=simple$/m);
    }
    assert.match(fs.readFileSync(path.join(dir, 'esets-relay-user.service'), 'utf8'), /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
  });
});
