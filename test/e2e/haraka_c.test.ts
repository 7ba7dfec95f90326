// The relay as a Haraka operator deploys it: Haraka's own `haraka -c DIR`, no
// launcher (DESIGN "Two ways to deploy, one behaviour"), with real clamd and a
// recording mail server: the manual's signals, esets.cfg checked (agent_enabled,
// the options Haraka's files govern), timeout_client applied, and composition
// with Haraka's stock plugins: rcpt_to.in_host_list listed first,
// queue/smtp_forward as the delivery, haraka-plugin-clamd as the AV source.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { HarakaCOptions, runHarakaC, startHarakaC } from '../support/haraka_c';
import { canConnect, childPids, eventually, isRunning } from '../support/processes';
import { freePort, Relay } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { relayReplyTrace, withSummary } from '../support/relay_reply';
import { tempDir } from '../support/temp_dirs';

const STOCK_ORDER = ['esets_hide_starttls', 'esets_connection_limits', 'esets_user_config', 'esets_forward', 'esets_policy'];

function cfg(smtp: Record<string, string | number>, global: Record<string, string | number> = {}): string {
  const lines = (o: Record<string, string | number>): string[] => Object.entries(o).map(([k, v]) => `${k} = ${v}`);
  return ['[global]', ...lines(global), '', '[smtp]', 'agent_enabled = yes', ...lines(smtp), ''].join('\n');
}

let serial = 0;
function subject(label: string): string {
  return `${label} #${++serial}-${process.pid}`;
}

async function sendOne(
  port: number, to: string, text: string, from = 'sender@example.com',
): Promise<{ code: number; text: string; rcpt: number }> {
  const client = await SmtpTestClient.connect(port);
  await client.read();
  await client.command('EHLO client.example');
  const r = await client.send(from, [to], text);
  await client.command('QUIT').catch(() => undefined);
  client.end();
  const reply = r.data ?? r.rcpts[0];
  return { code: reply.code, text: reply.lines.join(' '), rcpt: r.rcpts[0].code };
}

describe('haraka -c: the plugins in an operator\'s Haraka', function () {
  this.timeout(180_000);
  let clamd: Clamd;
  let sink: Sink;
  const started: Relay[] = [];

  before(async () => {
    clamd = await startClamd();
    sink = new Sink({ refuseRcpt: (a) => (a === 'refused@example.org' ? 'No such user here' : undefined) });
    await sink.start();
  });

  after(async () => {
    await Promise.all(started.map((r) => r.stop('SIGKILL')));
    await Promise.all([clamd?.stop(), sink?.stop()]);
  });

  function received(s: string): Buffer | undefined {
    return sink.messages.find((m) => m.data.toString('latin1').includes(`Subject: ${s}`))?.data;
  }

  async function haraka(
    esetsCfg: string, extra: Omit<HarakaCOptions, 'port' | 'esetsCfg'> = {},
  ): Promise<Relay & { dir: string }> {
    const port = await freePort();
    const relay = await startHarakaC({ port, esetsCfg, ...extra });
    started.push(relay);
    return relay;
  }

  const base = (): Record<string, string | number> => ({ server_addr: '"127.0.0.1"', server_port: sink.port });
  const globalClamd = (): Record<string, string | number> => ({ daemon_sock_path: `"${clamd.socket}"` });

  it('relays and scans: a clean message is delivered with X-Virus-Scanner, EICAR is rejected 550 5.7.1', async () => {
    const relay = await haraka(cfg(base(), globalClamd()));
    const clean = subject('clean');
    assert.equal((await sendOne(relay.port, 'user@example.org', `Subject: ${clean}\r\n\r\nhello\r\n`)).code, 250);
    assert.match(received(clean)!.toString('latin1'), /^X-Virus-Scanner: .*clean/m);
    const infected = subject('eicar');
    const r = await sendOne(relay.port, 'user@example.org', `Subject: ${infected}\r\n\r\n${EICAR}\r\n`);
    assert.equal(r.code, 550, r.text);
    assert.match(r.text, /^5\.7\.1 Message rejected: virus found \(Eicar/);
    assert.equal(received(infected), undefined);
  });

  it('USR1 stops at once (a session open), and never opens the inspector port', async () => {
    const relay = await haraka(cfg(base(), globalClamd()));
    const client = await SmtpTestClient.connect(relay.port);
    await client.read();
    assert.equal(await canConnect(9229), false, 'something listens on 9229 before the test');
    relay.process.kill('SIGUSR1');
    const code = await Promise.race([relay.exited, eventually(() => false, 10_000).then(() => 'still running')]);
    assert.equal(code, 0, relay.output());
    assert.equal(await canConnect(9229), false, 'the inspector port opened');
    assert.doesNotMatch(relay.output(), /Debugger listening/);
    client.end();
  });

  it('TERM lets the message in progress finish (delivered, 250), refuses new connections, then exits 0', async () => {
    const relay = await haraka(cfg(base(), globalClamd()));
    const client = await SmtpTestClient.connect(relay.port);
    await client.read();
    await client.command('EHLO client.example');
    assert.equal((await client.command('MAIL FROM:<sender@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<user@example.org>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    relay.process.kill('SIGTERM');
    // the listener closes; the session goes on
    for (let i = 0; i < 100 && (await canConnect(relay.port)); i++) await eventually(() => false, 100);
    assert.equal(await canConnect(relay.port), false, 'still accepting after TERM');
    const s = subject('term');
    client.write(`Subject: ${s}\r\n\r\nsent across TERM\r\n.\r\n`);
    const reply = await client.read();
    assert.equal(reply.code, 250, reply.lines.join(' '));
    assert.ok(received(s), 'the message was not delivered');
    await client.command('QUIT').catch(() => undefined);
    client.end();
    assert.equal(await relay.exited, 0, relay.output());
  });

  it('in a Haraka cluster (nodes = 2) TERM to the master lets a session finish in a worker, then all exit; '
    + 'USR1 leaves no worker', async () => {
    for (const signal of ['SIGTERM', 'SIGUSR1'] as const) {
      const relay = await haraka(cfg(base(), globalClamd()), { nodes: 2 });
      let workers: number[] = [];
      assert.ok(await eventually(() => (workers = childPids(relay.process.pid!)).length === 2, 10_000), 'two workers');
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      assert.equal((await client.command('MAIL FROM:<sender@example.com>')).code, 250);
      relay.process.kill(signal);
      if (signal === 'SIGTERM') {
        assert.equal((await client.command('RCPT TO:<user@example.org>')).code, 250);
        const s = subject('cluster term');
        assert.equal((await client.data(`Subject: ${s}\r\n\r\nx\r\n`)).code, 250);
        assert.ok(received(s));
        await client.command('QUIT').catch(() => undefined);
      }
      client.end();
      assert.equal(await relay.exited, 0, relay.output());
      assert.ok(await eventually(() => workers.every((pid) => !isRunning(pid)), 10_000), `${signal}: a worker is still running`);
    }
  });

  it('in a Haraka cluster (nodes = 2) HUP to the master reads esets.cfg again in every process, an edit no watch saw included',
    async () => {
    // esets.cfg (named by esets_relay.ini) a link to a file in another folder: the relay watches the link's folder only
    const target = path.join(tempDir('esets-hup-target-'), 'esets.cfg');
    const text = cfg(base(), globalClamd());
    fs.writeFileSync(target, text);
    const link = path.join(tempDir('esets-hup-link-'), 'esets.cfg');
    fs.symlinkSync(target, link);
    const relay = await haraka(text, { nodes: 2, files: { 'esets_relay.ini': `[main]\nesets_cfg = ${link}\n` } });
    assert.ok(await eventually(() => childPids(relay.process.pid!).length === 2, 10_000), 'two workers');
    const infected = (label: string): Promise<{ code: number }> => (
      sendOne(relay.port, 'user@example.org', `Subject: ${subject(label)}\r\n\r\n${EICAR}\r\n`));
    assert.equal((await infected('hup before')).code, 550);
    fs.writeFileSync(target, text.replace('[smtp]', '[smtp]\naction_av_infected = discard'));
    await eventually(() => false, 1_500);
    assert.equal((await infected('hup unseen')).code, 550, 'a watch saw the edit: the test proves nothing');
    relay.process.kill('SIGHUP');
    assert.ok(await eventually(() => (relay.output().match(/configuration reloaded at HUP/g) ?? []).length >= 3, 10_000), relay.output());
    for (let i = 0; i < 4; i++) assert.equal((await infected(`hup after ${i}`)).code, 250, 'a process kept the old configuration');
    assert.equal(childPids(relay.process.pid!).length, 2, 'a worker died of the HUP');
  });

  it('a worker stopped alone (TERM to its PID) drains and is replaced by Haraka\'s master: the relay keeps serving', async () => {
    const relay = await haraka(cfg(base(), globalClamd()), { nodes: 2 });
    let workers: number[] = [];
    assert.ok(await eventually(() => (workers = childPids(relay.process.pid!)).length === 2, 10_000), 'two workers');
    process.kill(workers[0], 'SIGTERM');
    assert.ok(await eventually(() => !isRunning(workers[0]), 10_000), 'the worker did not stop');
    let now: number[] = [];
    assert.ok(
      await eventually(() => (now = childPids(relay.process.pid!)).length === 2 && !now.includes(workers[0]), 10_000),
      `not replaced: ${now.join(' ')}`,
    );
    // (the replacement listening: Haraka's master hands connections round robin to the workers that listen)
    for (let i = 0; i < 100 && !(await canConnect(relay.port)); i++) await eventually(() => false, 100);
    for (let i = 0; i < 4; i++) {
      const s = subject('after a worker stopped');
      assert.equal((await sendOne(relay.port, 'user@example.org', `Subject: ${s}\r\n\r\nx\r\n`)).code, 250);
    }
  });

  it('refuses to start without esets_policy in config/plugins (nothing would be scanned)', async () => {
    const port = await freePort();
    const { code, output } = await runHarakaC({
      port, esetsCfg: cfg(base(), globalClamd()), plugins: ['esets_hide_starttls', 'esets_forward'],
    });
    assert.notEqual(code, 0, output);
    assert.match(output, /esets\.cfg: error: esets_policy is not in config\/plugins: no message would be scanned/);
  });

  it('refuses to start with agent_enabled = no, naming the esets.cfg line (no other plugin may deliver unscanned mail)', async () => {
    const port = await freePort();
    const text = cfg(base(), globalClamd()).replace('agent_enabled = yes', 'agent_enabled = no');
    const line = text.split('\n').findIndex((l) => l.startsWith('agent_enabled')) + 1;
    const { code, output } = await runHarakaC({ port, esetsCfg: text });
    assert.notEqual(code, 0, output);
    assert.match(output, new RegExp(`esets\\.cfg:${line}: error: the SMTP agent is disabled \\(agent_enabled = no\\)`));
    assert.equal(await canConnect(port), false);
  });

  it('warns about each esets.cfg option Haraka\'s files govern, naming its value and the setting in force', async () => {
    const relay = await haraka(cfg({ ...base(), num_proc: 3, add_header_received: 'yes', listen_port: 2999 }, globalClamd()));
    const out = relay.output();
    assert.match(out, /esets\.cfg:\d+: warning: num_proc = 3 not used under haraka -c: Haraka runs 1 worker process\(es\) \(config\/smtp\.ini \[main\] nodes\)/);
    assert.match(out, /esets\.cfg:\d+: warning: add_header_received = yes not used under haraka -c: Haraka does not add its Received: line \(config\/connection\.ini \[headers\] add_received = false\)/);
    assert.match(out, new RegExp(`esets\\.cfg:\\d+: warning: listen_addr/listen_port \\(127\\.0\\.0\\.1:2999\\) not used under haraka -c: `
      + `Haraka listens on 127\\.0\\.0\\.1:${relay.port}`));
    // and only once (the configuration is loaded by every plugin)
    assert.equal(out.match(/num_proc = 3 not used/g)?.length, 1);
  });

  it('applies timeout_client (3 s) over smtp.ini inactivity_timeout (60 s)', async () => {
    const relay = await haraka(cfg({ ...base(), timeout_client: 3 }, globalClamd()), { inactivityTimeout: 60 });
    const socket = net.connect(relay.port, '127.0.0.1');
    const started = Date.now();
    const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
    socket.on('error', () => undefined);
    socket.resume();
    const ms = await Promise.race([closed, eventually(() => false, 30_000).then(() => Infinity)]);
    socket.destroy();
    assert.ok(ms >= 2_500 && ms < 20_000, `the idle client was closed after ${ms} ms`);
  });

  it('with rcpt_to.in_host_list listed first, the user section still applies and the mail server still decides each RCPT', async () => {
    const dir = tempDir('esets-users-');
    const users = path.join(dir, 'users.cfg');
    fs.writeFileSync(users, '[partner@example.org]\naction_av_infected = accept\n');
    const relay = await haraka(cfg({ ...base(), user_config: `"${users}"` }, globalClamd()), {
      plugins: ['rcpt_to.in_host_list', ...STOCK_ORDER],
      files: { host_list: 'example.org\n' },
    });
    // the section of partner@: infected mail accepted (the section was chosen although in_host_list accepts first)
    const s = subject('eicar for partner');
    const r = await sendOne(relay.port, 'partner@example.org', `Subject: ${s}\r\n\r\n${EICAR}\r\n`);
    assert.equal(r.code, 250, r.text);
    assert.ok(received(s), 'not delivered under the user section');
    // other users: the agent section rejects
    const r2 = await sendOne(relay.port, 'user@example.org', `Subject: ${subject('eicar')}\r\n\r\n${EICAR}\r\n`);
    assert.equal(r2.code, 550, r2.text);
    // the mirrored RCPT: the server's refusal reaches the client, although the domain is in host_list
    const refused = await sendOne(relay.port, 'refused@example.org', `Subject: ${subject('refused')}\r\n\r\nx\r\n`);
    assert.equal(refused.rcpt, 550);
    assert.match(refused.text, /No such user here/);
  });

  it('delivers through queue/smtp_forward (smtp_forward.ini decides the server): the policy and headers apply, '
    + 'server_addr is said to be unused', async () => {
    const relay = await haraka(cfg({ server_addr: '"192.0.2.1"', server_port: 25, timeout_client: 3 }, globalClamd()), {
      plugins: [
        'esets_hide_starttls', 'esets_connection_limits', 'esets_user_config', 'rcpt_to.in_host_list', 'esets_policy', 'queue/smtp_forward',
      ],
      files: { host_list: 'example.org\n', 'smtp_forward.ini': `host=127.0.0.1\nport=${sink.port}\nenable_tls=false\n` },
    });
    assert.match(relay.output(), /warning: server_addr = 192\.0\.2\.1 not used: esets_forward is not in config\/plugins/);
    const clean = subject('forwarded');
    const r = await sendOne(relay.port, 'user@example.org', `Subject: ${clean}\r\n\r\nhello\r\n`);
    assert.equal(r.code, 250, r.text);
    assert.ok(await eventually(() => Boolean(received(clean)), 20_000), 'smtp_forward did not deliver');
    assert.match(received(clean)!.toString('latin1'), /^X-Virus-Scanner: .*clean/m);
    // the scanner's fields are the relay's alone: every X-Spam-* the client forged goes, whatever its name
    // or spacing (one rule for the relay's copy and Haraka's, which queue/smtp_forward sends)
    const forged = subject('forged spam fields');
    const forgedFields = 'X-Spam-Report: * 0.0 nothing to see\r\nX-Spam-Flag : NO\r\nX-Spam-Checker-Version: none\r\n'
      + 'X-Virus-Scanner: forged, clean\r\n';
    const r2 = await sendOne(relay.port, 'user@example.org', `Subject: ${forged}\r\n${forgedFields}X-Other: kept\r\n\r\nhello\r\n`);
    assert.equal(r2.code, 250, r2.text);
    assert.ok(await eventually(() => Boolean(received(forged)), 20_000), 'smtp_forward did not deliver');
    const delivered = received(forged)!.toString('latin1');
    assert.doesNotMatch(delivered, /^X-Spam-/im, 'a client\'s X-Spam-* field reached the server');
    assert.doesNotMatch(delivered, /forged, clean/);
    assert.match(delivered, /^X-Other: kept\r$/m);
    assert.equal(delivered.match(/^X-Virus-Scanner:/gm)?.length, 1);
    // a message without a header section: Haraka's copy (what smtp_forward sends) would take its first lines as
    // header, so it is refused rather than delivered split otherwise than the relay scanned it
    const headerless = await sendOne(relay.port, 'user@example.org', 'no header here\r\nX-Keep: body line\r\n\r\nbody\r\n');
    assert.equal(headerless.code, 550, headerless.text);
    assert.match(headerless.text, /5\.6\.0 Message refused: malformed message \(no header section/);
    const infected = subject('eicar forwarded');
    const bad = await sendOne(relay.port, 'user@example.org', `Subject: ${infected}\r\n\r\n${EICAR}\r\n`);
    assert.equal(bad.code, 550, bad.text);
    assert.match(bad.text, /5\.7\.1 Message rejected: virus found \(Eicar/);
    // a server slower than timeout_client: the client waits (its silence is not counted), gets the 250, one copy
    sink.options.dataDelayMs = 5_000;
    try {
      const slow = subject('slow server');
      const r3 = await sendOne(relay.port, 'user@example.org', `Subject: ${slow}\r\n\r\nhello\r\n`);
      assert.equal(r3.code, 250, r3.text);
      assert.equal(sink.messages.filter((m) => m.data.toString('latin1').includes(`Subject: ${slow}`)).length, 1);
    } finally {
      sink.options.dataDelayMs = undefined;
    }
    // a recipient outside host_list: refused by Haraka (no open relay through smtp_forward)
    const foreign = await sendOne(relay.port, 'someone@elsewhere.example', `Subject: ${subject('foreign')}\r\n\r\nx\r\n`);
    assert.equal(Math.floor(foreign.rcpt / 100), 5);
  });

  it('queue/smtp_forward left in config/plugins beside esets_forward: warned at start, each message delivered once', async () => {
    // haraka -i lists queue/smtp_forward; an operator who appends ours and keeps it must not get two copies
    const relay = await haraka(cfg(base(), globalClamd()), {
      plugins: ['queue/smtp_forward', ...STOCK_ORDER],
      files: { 'smtp_forward.ini': `host=127.0.0.1\nport=${sink.port}\nenable_tls=false\n` },
    });
    assert.match(relay.output(), /warning: queue\/smtp_forward in config\/plugins beside esets_forward.*never run/);
    const once = subject('two delivery paths');
    const r = await sendOne(relay.port, 'user@example.org', `Subject: ${once}\r\n\r\nhello\r\n`);
    assert.equal(r.code, 250, r.text);
    assert.ok(await eventually(() => Boolean(received(once)), 5_000));
    // smtp_forward would deliver within the same second; give it three
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(sink.messages.filter((m) => m.data.toString('latin1').includes(`Subject: ${once}`)).length, 1);
  });

  it('esets_policy skipped by another plugin (transaction.notes.skip_plugins): esets_forward defers, nothing unscanned delivered',
    async () => {
      const skipScan = [
        'exports.register = function () { this.register_hook(\'data\', \'skip\') }',
        'exports.skip = function (next, connection) {',
        '  connection.transaction.notes.skip_plugins.push(\'esets_policy\')',
        '  next()',
        '}',
      ].join('\n');
      const relay = await haraka(cfg(base(), globalClamd()), {
        plugins: ['skip_scan', ...STOCK_ORDER], ownPlugins: { skip_scan: skipScan },
      });
      const infected = subject('skipped eicar');
      const r = await sendOne(relay.port, 'user@example.org', `Subject: ${infected}\r\n\r\n${EICAR}\r\n`);
      assert.equal(r.code, 451, r.text);
      relayReplyTrace(r.text, /^4\.3\.0 Temporary failure while scanning, try again later$/);
      assert.match(relay.output(), /message not delivered: esets_policy did not decide it/);
      assert.equal(received(infected), undefined);
    });

  describe('haraka-plugin-clamd as the AV source (listed before esets_policy, its rejections off)', () => {
    const plugins = ['esets_hide_starttls', 'esets_connection_limits', 'esets_user_config', 'clamd', 'esets_forward', 'esets_policy'];
    const clamdIni = (socket: string, extra = ''): string => `[main]\nclamd_socket=${socket}\ntimeout=20\n${extra}\n`
      + '[reject]\nvirus=false\nerror=false\n';

    it('EICAR: action_av_infected decides (reject 550 5.7.1); clean: delivered as sent plus X-Virus-Scanner', async () => {
      const relay = await haraka(cfg({ ...base(), action_av_infected: 'reject' }), {
        plugins, files: { 'clamd.ini': clamdIni(clamd.socket) },
      });
      assert.doesNotMatch(relay.output(), /rejects infected messages itself/);
      const infected = subject('plugin eicar');
      const r = await sendOne(relay.port, 'user@example.org', `Subject: ${infected}\r\n\r\n${EICAR}\r\n`);
      assert.equal(r.code, 550, r.text);
      assert.match(r.text, /^5\.7\.1 Message rejected: virus found \(Eicar/);
      assert.equal(received(infected), undefined);
      const clean = subject('plugin clean');
      assert.equal((await sendOne(relay.port, 'user@example.org', `Subject: ${clean}\r\n\r\nhello\r\n`)).code, 250);
      const got = received(clean)!.toString('latin1');
      assert.match(got, /^X-Virus-Scanner: .*clean/m);
      assert.doesNotMatch(got, /X-Haraka-Virus/);
    });

    it('the relay walks the MIME structure beside the plugin: EICAR behind a tab-padded boundary (clamd misses it) '
      + 'is found in its part by the plugin\'s clamd', async () => {
      const relay = await haraka(cfg({ ...base(), action_av_infected: 'reject' }), {
        plugins, files: { 'clamd.ini': clamdIni(clamd.socket) },
      });
      const s = subject('plugin padded boundary');
      const body = `Subject: ${s}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="BB"\r\n\r\n`
        + '--BB\r\nContent-Type: text/plain\r\n\r\nhi\r\n--BB\t\r\nContent-Type: application/octet-stream\r\n'
        + `Content-Transfer-Encoding: base64\r\n\r\n${Buffer.from(EICAR).toString('base64')}\r\n--BB--\r\n`;
      const r = await sendOne(relay.port, 'user@example.org', body);
      assert.equal(r.code, 550, r.text);
      assert.match(r.text, /^5\.7\.1 Message rejected: virus found \(Eicar.*\(part 1\.2\)/);
      assert.equal(received(s), undefined);
    });

    it('clamd down: action_av_notscanned decides (defer 451 4.7.1)', async () => {
      const relay = await haraka(cfg({ ...base(), action_av_notscanned: 'defer' }), {
        plugins, files: { 'clamd.ini': clamdIni(path.join(clamd.dir, 'absent.sock')) },
      });
      const s = subject('plugin down');
      const r = await sendOne(relay.port, 'user@example.org', `Subject: ${s}\r\n\r\nhello\r\n`);
      assert.equal(r.code, 451, r.text);
      // haraka -c too: the reply says "not scanned" and its trace id, the summary of that id why
      assert.match(await withSummary(relay.output, r.text),
        /^4\.7\.1 Message deferred: it could not be scanned for viruses, .* \|\| log: .*av="not scanned: /);
      assert.equal(received(s), undefined);
    });

    it('a message the plugin skips (only_with_attachments) is not AV-checked: accepted by the spam stage, '
      + 'no X-Virus-Scanner, logged', async () => {
      const relay = await haraka(cfg({ ...base(), action_av_notscanned: 'defer' }), {
        plugins, files: { 'clamd.ini': clamdIni(clamd.socket, 'only_with_attachments=true') },
      });
      const s = subject('plugin skip');
      const r = await sendOne(relay.port, 'user@example.org', `Subject: ${s}\r\n\r\nno attachment here\r\n`);
      assert.equal(r.code, 250, r.text);
      const got = received(s)!.toString('latin1');
      assert.doesNotMatch(got, /X-Virus-Scanner/);
      assert.ok(await eventually(() => /action=accept by=action_as .*av="not scanned: haraka-plugin-clamd skipped it \(no attachments\)"/.test(relay.output()), 5_000), relay.output());
    });

    it('a message it parses (only_with_attachments: Haraka\'s body parser edits lines in place) '
      + 'reaches the server byte for byte', async () => {
      const relay = await haraka(cfg(base()), { plugins, files: { 'clamd.ini': clamdIni(clamd.socket, 'only_with_attachments=true') } });
      const s = subject('plugin parsed');
      const body = [
        'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '',
        'line one\twith a tab', '..a line that starts with a dot', '', '--b',
        'Content-Type: application/octet-stream; name="a.bin"', 'Content-Disposition: attachment; filename="a.bin"',
        'Content-Transfer-Encoding: base64', '', Buffer.from('attachment bytes').toString('base64'), '--b--', '',
      ].join('\r\n');
      const sent = `Subject: ${s}\r\n${body}`;
      const r = await sendOne(relay.port, 'user@example.org', sent);
      assert.equal(r.code, 250, r.text);
      const got = received(s)!.toString('latin1');
      assert.match(got, /^X-Virus-Scanner: .*clean/m, 'not scanned (the attachment should have been)');
      // the client's message (the test client stuffs it, the sink un-stuffs it) plus our header, nothing else changed
      assert.equal(got.replace(/X-Virus-Scanner: [^\r]*\r\n/, ''), sent);
    });

    /** DATA as written (no dot-stuffing by the client): the reply to the final dot */
    async function sendRaw(port: number, raw: string): Promise<{ code: number; text: string }> {
      const client = await SmtpTestClient.connect(port);
      await client.read();
      await client.command('EHLO client.example');
      await client.command('MAIL FROM:<sender@example.com>');
      await client.command('RCPT TO:<user@example.org>');
      assert.equal((await client.command('DATA')).code, 354);
      client.write(`${raw}.\r\n`);
      const reply = await client.read(60_000);
      client.end();
      return { code: reply.code, text: reply.lines.join(' ') };
    }

    it('refuses what it would scan otherwise than the server gets: a single leading dot, '
      + 'a header over Haraka\'s max_lines (550 5.6.0)', async () => {
      const relay = await haraka(cfg(base()), { plugins, files: { 'clamd.ini': clamdIni(clamd.socket) } });
      const b64 = Buffer.from(EICAR).toString('base64');
      const dotted = subject('single dot');
      const r1 = await sendRaw(relay.port, [
        `Subject: ${dotted}`, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b',
        'Content-Type: application/octet-stream; name="a.bin"', '.Content-Transfer-Encoding: base64', '', b64, '--b--', '',
      ].join('\r\n'));
      assert.equal(r1.code, 550, r1.text);
      assert.match(r1.text, /^5\.6\.0 Message refused: malformed message \(line 7 starts with a single dot/);
      assert.equal(received(dotted), undefined);
      const long = subject('long header');
      const r2 = await sendRaw(relay.port, [
        `Subject: ${long}`, ...Array.from({ length: 1000 }, (_, i) => `X-F${i}: y`), 'MIME-Version: 1.0',
        'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', b64, '',
      ].join('\r\n'));
      assert.equal(r2.code, 550, r2.text);
      assert.match(r2.text, /^5\.6\.0 Message refused: malformed message \(a header of 1004 lines, over Haraka's 1000/);
      assert.equal(received(long), undefined);
    });

    it('a message over its max_size is not scanned: action_av_notscanned decides (defer 451)', async () => {
      const relay = await haraka(cfg({ ...base(), action_av_notscanned: 'defer' }), {
        plugins, files: { 'clamd.ini': clamdIni(clamd.socket, 'max_size=100') },
      });
      const s = subject('plugin max_size');
      const r = await sendOne(relay.port, 'user@example.org', `Subject: ${s}\r\n\r\n${EICAR}\r\n${'x'.repeat(200)}\r\n`);
      assert.equal(r.code, 451, r.text);
      assert.match(await withSummary(relay.output, r.text), /^4\.7\.1 .* \|\| log: .*not scanned: haraka-plugin-clamd: exceeds max size/);
      assert.equal(received(s), undefined);
    });

    it('its result is ignored where action_av is not scan (a user section saying accept)', async () => {
      const relay = await haraka(cfg({ ...base(), action_av: 'accept' }), { plugins, files: { 'clamd.ini': clamdIni(clamd.socket) } });
      const s = subject('plugin action_av accept');
      const r = await sendOne(relay.port, 'user@example.org', `Subject: ${s}\r\n\r\n${EICAR}\r\n`);
      assert.equal(r.code, 250, r.text);
      assert.doesNotMatch(received(s)!.toString('latin1'), /X-Virus-Scanner/);
    });
  });
});
