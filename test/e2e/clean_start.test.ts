// A clean start says nothing at error level: monitoring that alerts on
// ERROR/CRIT lines must not fire because the relay started and passed a
// clean message. Neither under the launcher nor under `haraka -c` with the
// package's own config/ folder. (Lines once seen here: Haraka's "tls key ...
// could not be loaded" for a key the relay never uses, haraka-email-message's
// "Using iconv-lite only", and msg="[object Object]" for the mail server's
// replies to MAIL and RCPT.)

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, startClamd } from '../support/clamd';
import { canConnect, eventually, groupMembers } from '../support/processes';
import { freePort, PROJECT_DIR, startRelay } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { removeTempDir, tempDir } from '../support/temp_dirs';

/** config/esets.cfg as shipped, pointed at the test's clamd, listener and mail server */
function defaultLikeCfg(listenPort: number, serverPort: number, clamd: Clamd): string {
  const shipped = fs.readFileSync(path.join(PROJECT_DIR, 'config', 'esets.cfg'), 'utf8');
  const text = shipped
    .replace(/^daemon_sock_path = .*$/m, `daemon_sock_path = "${clamd.socket}"\nclamd_config = "${path.join(clamd.dir, 'clamd.conf')}"`)
    .replace(/^listen_port = .*$/m, `listen_port = ${listenPort}`)
    .replace(/^server_port = .*$/m, `server_port = ${serverPort}`);
  assert.ok(
    text.includes(`listen_port = ${listenPort}`) && text.includes(`server_port = ${serverPort}`) && text.includes(clamd.socket),
    'config/esets.cfg changed shape',
  );
  return text;
}

/** Lines an error monitor would alert on, or that show an object where text belongs. */
function noise(output: string): string[] {
  return output.split('\n').filter((l) => /\[(ERROR|CRIT|ALERT|EMERG)\]|\[object Object\]|iconv|could not be loaded/i.test(l));
}

async function sendClean(port: number, sink: Sink, subject: string): Promise<void> {
  const client = await SmtpTestClient.connect(port);
  assert.equal((await client.read()).code, 220);
  await client.command('EHLO client.example');
  const r = await client.send('a@example.com', ['user@example.org'], `Subject: ${subject}\r\n\r\nclean\r\n`);
  client.end();
  assert.equal(r.data?.code, 250, r.data?.lines.join(' '));
  assert.ok(sink.messages.some((m) => m.data.toString('latin1').includes(`Subject: ${subject}\r\n`)));
}

describe('a clean start logs nothing at error level', function () {
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

  it('the launcher with the shipped esets.cfg: start, one clean message, stop', async () => {
    const port = await freePort();
    const dir = tempDir('esets-cfg-');
    const cfg = path.join(dir, 'esets.cfg');
    fs.writeFileSync(cfg, defaultLikeCfg(port, sink.port, clamd));
    const relay = await startRelay(['--config', cfg], port);
    try {
      await sendClean(port, sink, 'clean-start-launcher');
      // the summary line is written after the reply
      assert.ok(await eventually(() => /\[esets_policy\] trace=\S+ .*action=accept/.test(relay.output())), relay.output());
    } finally {
      await relay.stop('SIGTERM');
      removeTempDir(dir);
    }
    assert.deepEqual(noise(relay.output()), [], relay.output());
    // the mail server's replies are logged as text (the summary's; Haraka's sender line is INFO under the launcher)
    assert.match(relay.output(), /\[esets_policy\] trace=.* server_reply="250 [^"]*"/);
    assert.doesNotMatch(relay.output(), /\[core\] sender </);
  });

  it('haraka -c with a copy of the package folder (config/ with its plugins list, esets_relay.ini and an esets.cfg)', async () => {
    const port = await freePort();
    const dir = tempDir('esets-haraka-c-');
    fs.cpSync(path.join(PROJECT_DIR, 'config'), path.join(dir, 'config'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'config', 'esets.cfg'), defaultLikeCfg(port, sink.port, clamd));
    fs.writeFileSync(path.join(dir, 'config', 'smtp.ini'), `[main]\nlisten=127.0.0.1:${port}\nnodes=1\n`);
    for (const d of ['plugins', 'dist', 'node_modules']) fs.symlinkSync(path.join(PROJECT_DIR, d), path.join(dir, d));
    // a group of its own: Haraka, its manager and worker are stopped together, by the group's PID
    const haraka: ChildProcess = spawn(process.execPath, [path.join(PROJECT_DIR, 'node_modules', 'Haraka', 'bin', 'haraka'), '-c', dir], {
      detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    haraka.stdout!.on('data', (d) => { out += d.toString(); });
    haraka.stderr!.on('data', (d) => { out += d.toString(); });
    const pgid = haraka.pid!;
    try {
      assert.ok(await eventually(() => /worker \d+ listening on/.test(out), 30_000), out);
      assert.ok(await canConnect(port), out);
      await sendClean(port, sink, 'clean-start-haraka-c');
      assert.ok(await eventually(() => /\[esets_policy\] trace=\S+ .*action=accept/.test(out)), out);
    } finally {
      try { process.kill(-pgid, 'SIGTERM'); } catch { /* gone */ }
      if (!(await eventually(() => groupMembers(pgid).length === 0, 20_000))) {
        try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ }
        await eventually(() => groupMembers(pgid).length === 0, 5_000);
      }
      removeTempDir(dir);
    }
    // Haraka's own loader prints haraka-email-message's iconv notice before any plugin runs: not ours to hold back here
    assert.deepEqual(noise(out).filter((l) => !/^Using iconv-lite only/.test(l)), [], out);
    assert.match(out, /\[core\] sender <a@example\.com> code=OK msg=/);
  });
});
