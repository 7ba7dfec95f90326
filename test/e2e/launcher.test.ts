// The esets_smtp launcher: command line, configuration errors, signals.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { esetsCfg, EXIT_CONFIG, freePort, runLauncher, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { childPids, processDirOf } from '../support/processes';
import { SmtpTestClient } from '../support/smtp_client';

describe('esets_smtp launcher', function () {
  this.timeout(60_000);

  it('prints help (every option) and exits 0', async () => {
    const r = await runLauncher(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: esets_smtp \[--config FILE\]/);
    assert.match(r.stdout, /--listen-port VALUE/);
  });

  it('prints its version and exits 0', async () => {
    const r = await runLauncher(['-v']);
    assert.equal(r.code, 0);
    const { version } = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout.trim(), `esets_smtp (esets-relay) ${version}, Haraka 3.3.4`);
  });

  it('does not start on a malformed esets.cfg and names file, line, key, value and what was expected', async () => {
    const file = writeEsetsCfg(
      '[smtp]\nagent_enabled = yes\nlisten_addr = "127.0.0.1"\nlisten_port = 25x\nserver_addr = "127.0.0.1"\nserver_port = 25\n',
    );
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.\\/]/g, '\\$&')}:4: error: option 'listen_port' has invalid value '25x': expected an integer`));
    assert.match(r.stderr, /esets_smtp: not started/);
  });

  it('reports a syntax error with its line', async () => {
    const file = writeEsetsCfg('[smtp]\nagent_enabled yes\n');
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, /:2: error: cannot parse 'agent_enabled yes'/);
  });

  it('does not start on a broken user_config and names its file and line', async () => {
    const file = writeEsetsCfg(esetsCfg(await freePort(), { serverPort: 1, smtp: { user_config: '"users.cfg"' } }));
    fs.writeFileSync(
      path.join(path.dirname(file), 'users.cfg'),
      '[a.example]\naction_av = reject\n[b.example]\nparent_id = "a.example"\naction_as = sometimes\n',
    );
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, /users\.cfg:5: error: option 'action_as' has invalid value 'sometimes': expected .* \(user_config, named at \S+esets\.cfg:\d+\)\n/);
  });

  it('does not start on a missing user_config and names the missing path and the esets.cfg line that names it', async () => {
    const file = writeEsetsCfg(esetsCfg(await freePort(), { serverPort: 1, smtp: { user_config: '"missing-users.cfg"' } }));
    const line = fs.readFileSync(file, 'utf8').split('\n').indexOf('user_config = "missing-users.cfg"') + 1;
    assert.ok(line > 0);
    const missing = path.join(path.dirname(file), 'missing-users.cfg');
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG, r.stderr);
    assert.equal(
      r.stderr,
      `${missing}: error: cannot read: ENOENT: no such file or directory, open '${missing}' (user_config, named at ${file}:${line})\n`
        + 'esets_smtp: not started\n',
    );
  });

  it('does not start when daemon_user cannot read user_config, naming the file and the esets.cfg line that names it', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const file = writeEsetsCfg(esetsCfg(await freePort(), {
      serverPort: 1, global: { daemon_user: '"nobody"' }, smtp: { user_config: '"users.cfg"' },
    }));
    const users = path.join(path.dirname(file), 'users.cfg');
    fs.writeFileSync(users, '[a.example]\n', { mode: 0o600 });
    fs.chmodSync(path.dirname(file), 0o755);
    fs.chmodSync(file, 0o644);
    const line = fs.readFileSync(file, 'utf8').split('\n').indexOf('user_config = "users.cfg"') + 1;
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG, r.stderr);
    assert.ok(r.stderr.startsWith(`${users}: error: daemon_user = 'nobody' cannot read ${users}: `), r.stderr);
    assert.ok(r.stderr.endsWith(` (user_config, named at ${file}:${line})\nesets_smtp: not started\n`), r.stderr);
  });

  it('refuses to start with agent_enabled = no and says which option to set', async () => {
    const port = await freePort();
    const file = writeEsetsCfg(esetsCfg(port, { serverPort: 1, smtp: { agent_enabled: 'no' } }));
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, /set 'agent_enabled = yes' in \[smtp\]/);
  });

  it('refuses an unknown command-line option with exit code 2', async () => {
    const r = await runLauncher(['--listen-prot', '25']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--listen-prot'/);
  });

  it('says so when the config file cannot be read', async () => {
    const r = await runLauncher(['--config', '/nonexistent/esets.cfg']);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, /\/nonexistent\/esets\.cfg: error: cannot read/);
  });

  it('warns about unknown keys and still starts; command-line options override the file', async () => {
    const sink = new Sink();
    await sink.start();
    const port = await freePort();
    // the file names a wrong listen_port; the command line corrects it
    const file = writeEsetsCfg(`${esetsCfg(1, { serverPort: sink.port, smtp: { action_av: 'accept' } })}colour = blue\n`);
    const relay = await startRelay(['--config', file, '--listen-port', String(port)], port);
    try {
      assert.match(relay.output(), /warning: unknown option 'colour' in \[smtp\] is ignored/);
      const client = await SmtpTestClient.connect(port);
      assert.equal((await client.read()).code, 220);
      client.end();
    } finally {
      await relay.stop();
      await sink.stop();
    }
  });

  it('warns at start about a sender-only section that lowers the AV policy (sender addresses are not authenticated)', async () => {
    const sink = new Sink();
    await sink.start();
    const port = await freePort();
    const file = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, smtp: { action_av: 'accept', user_config: '"users.cfg"' } }));
    fs.writeFileSync(
      path.join(path.dirname(file), 'users.cfg'),
      '[|partner.example]\naction_av_infected = accept\n\n[example.org]\naction_av_infected = defer\n',
    );
    const relay = await startRelay(['--config', file], port);
    try {
      assert.match(relay.output(), /users\.cfg:1: warning: \[\|partner\.example\] sets action_av_infected = accept: sender addresses are not authenticated/);
      assert.doesNotMatch(relay.output(), /\[example\.org\] sets/, 'a recipient section is not warned about');
    } finally {
      await relay.stop();
      await sink.stop();
    }
  });

  it('on TERM finishes the transfer in progress, refuses new connections, then exits 0', async () => {
    const sink = new Sink();
    await sink.start();
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, smtp: { action_av: 'accept' } })),
    ], port);
    try {
      const client = await SmtpTestClient.connect(port);
      await client.read();
      await client.command('EHLO client.example');
      assert.equal((await client.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<b@example.org>')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      const write = (text: string): void => {
        (client as unknown as { socket: import('node:net').Socket }).socket.write(text);
      };
      write('Subject: during TERM\r\n\r\nfirst half\r\n');

      relay.process.kill('SIGTERM');
      // new connections are refused once the listener is closed
      let refused = false;
      for (let i = 0; i < 50 && !refused; i++) {
        await new Promise((r) => setTimeout(r, 100));
        refused = await SmtpTestClient.connect(port).then((c) => { c.end(); return false; }, () => true);
      }
      assert.ok(refused, 'the relay still accepts new connections after TERM');

      write('second half\r\n.\r\n');
      const reply = await client.read();
      assert.equal(reply.code, 250);
      client.end();
      assert.equal(await relay.exited, 0);
      assert.equal(sink.messages.length, 1);
      assert.match(sink.messages[0].data.toString(), /first half\r\nsecond half\r\n$/);
    } finally {
      await relay.stop('SIGKILL');
      await sink.stop();
    }
  });

  it("a local client's INTERNALCMD (Haraka's master commands) and a HUP without log_file change nothing", async () => {
    const sink = new Sink();
    await sink.start();
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, smtp: { action_av: 'accept' } })),
    ], port);
    try {
      const client = await SmtpTestClient.connect(port);
      await client.read();
      const refused = await client.command('INTERNALCMD performShutdown');
      assert.equal(refused.code, 500, `${refused.code} ${refused.lines.join(' ')}`);
      client.end();
      relay.process.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(relay.process.exitCode, null, 'the relay stopped');
      const again = await SmtpTestClient.connect(port);
      assert.equal((await again.read()).code, 220);
      again.end();
    } finally {
      await relay.stop();
      await sink.stop();
    }
  });

  it('on USR1 exits at once, even with a session open', async () => {
    const sink = new Sink();
    await sink.start();
    const port = await freePort();
    const relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port }))], port);
    const client = await SmtpTestClient.connect(port);
    await client.read();
    const workers = childPids(relay.process.pid!);
    assert.ok(workers.length > 0 && workers.every((w) => processDirOf('spool', w)), 'each worker has its spool folder');
    const started = Date.now();
    relay.process.kill('SIGUSR1');
    await relay.exited;
    assert.ok(Date.now() - started < 3000);
    // killed workers cannot clean up: the manager removed their spool folders (they may hold messages)
    assert.deepEqual(workers.filter((w) => processDirOf('spool', w)), []);
    await sink.stop();
  });
});
