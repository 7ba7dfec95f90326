// Issue 26, logging: one traceable summary line per message (trace id, client,
// sender, recipients, verdicts, action, the server's answer and queue id, time)
// at NOTICE for every outcome and WARNING only for the relay's own failures,
// whoever delivers (esets_forward, queue/smtp_forward); one line per clean
// message at the default level under the launcher (Haraka's session notices at
// INFO) while `haraka -c` keeps Haraka's levels; JSON records that parse line
// by line; the drain lines' counts at TERM; the clamd failover warning's trace
// id; the manager's line for a message cut by a worker's kill -9; no logger
// process left after a live edit back to syslog_facility = none.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { startHarakaC } from '../support/haraka_c';
import { childPids, eventually, isRunning } from '../support/processes';
import { esetsCfg, freePort, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Rsyslog, startRsyslog } from '../support/rsyslog';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { removeTempDir, tempDir } from '../support/temp_dirs';

/** A summary line's fields, read as a log parser would (bare tokens and quoted strings in order). */
function fields(text: string): Record<string, string> {
  const re = /([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "\\]*)(?: |$)/y;
  const out: Record<string, string> = {};
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    out[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1).replace(/\\(.)/g, '$1') : m[2];
  }
  assert.equal(re.lastIndex, text.length, `not a line of fields: ${text}`);
  return out;
}

/** Haraka's log line of the summary with `marker` in it: its level, its id in brackets, its fields. */
function summaryOf(out: string, marker: string): { level: string; bracket: string; f: Record<string, string> } | undefined {
  const line = out.split('\n').find((l) => l.includes('[esets_policy] trace=') && l.includes(marker));
  const m = line && /\[(NOTICE|WARN|INFO|ERROR)\] \[([^\]]+)\] \[esets_policy\] (trace=.*)$/.exec(line);
  return m ? { level: m[1], bracket: m[2], f: fields(m[3]) } : undefined;
}

async function sendMessage(port: number, subject: string, body: string, from = 'a@example.com'): Promise<number> {
  const client = await SmtpTestClient.connect(port);
  await client.read();
  await client.command('EHLO client.example');
  const text = `Subject: ${subject}\r\nMessage-ID: <${subject}@test>\r\n\r\n${body}\r\n`;
  const r = await client.send(from, ['user@example.org', 'other@example.org'], text);
  client.end();
  return r.data?.code ?? r.rcpts[0].code;
}

/** A Haraka config folder for --haraka-config: the package's with log.ini replaced. */
function harakaConfigWithLog(logIni: string): string {
  const dir = tempDir('esets-haraka-config-');
  fs.cpSync(path.join(PROJECT_DIR, 'config'), dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'log.ini'), logIni);
  return dir;
}

describe('summary line and log levels (issue 26)', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  const dirs: string[] = [];

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await Promise.all([clamd?.stop(), sink?.stop()]);
    for (const d of dirs) removeTempDir(d);
  });

  async function launcher(
    smtp: Record<string, string | number> = {}, global: Record<string, string | number> = {}, args: string[] = [],
    clamdSocket = clamd.socket,
  ): Promise<Relay & { cfg: string }> {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket, smtp, global }));
    dirs.push(path.dirname(cfg));
    return Object.assign(await startRelay([...args, '--config', cfg], port), { cfg });
  }

  it('esets_forward: accept and reject at NOTICE with trace, client, HELO, sender, recipients, verdicts, server answer and queue id; '
    + 'the default level writes one line per clean message', async () => {
    const relay = await launcher({ num_proc: 1 });
    try {
      // the start's lines are done once the worker listens
      const mark = relay.output().length;
      const n = 3;
      for (let i = 0; i < n; i++) assert.equal(await sendMessage(relay.port, `count-${i}`, 'hello'), 250);
      assert.ok(await eventually(() => summaryOf(relay.output(), `count-${n - 1}@test`) !== undefined, 10_000), relay.output());
      await new Promise((r) => setTimeout(r, 500));
      const lines = relay.output().slice(mark).split('\n').filter((l) => l !== '');
      assert.equal(lines.length, n, `one line per clean message at the default level:\n${lines.join('\n')}`);
      assert.doesNotMatch(relay.output(), /\[core\] (connect|disconnect|sender|recipient|message|queue) /, "Haraka's session notices are INFO");

      const s = summaryOf(relay.output(), 'count-0@test')!;
      assert.equal(s.level, 'NOTICE');
      assert.equal(s.f.trace, s.bracket, "the trace id is Haraka's id of the transaction");
      assert.match(s.f.trace, /^[0-9A-F-]{36}\.1$/);
      assert.equal(s.f.client, '127.0.0.1');
      assert.equal(s.f.helo, 'client.example');
      assert.equal(s.f.action, 'accept');
      assert.equal(s.f.from, '<a@example.com>');
      assert.equal(s.f.to, '<user@example.org>');
      assert.equal(s.f.rcpts, '2');
      assert.equal(s.f.av, 'clean');
      assert.equal(s.f.server, 'accepted');
      assert.match(s.f.server_reply, /^250 .*queued as \S+/);
      assert.equal(s.f.queue_id, /queued as (\S+)/.exec(s.f.server_reply)![1]);
      assert.match(s.f.size, /^\d+$/);
      assert.match(s.f.time, /^\d+ms$/);

      assert.equal(await sendMessage(relay.port, 'virus', EICAR), 550);
      assert.ok(await eventually(() => summaryOf(relay.output(), 'virus@test') !== undefined, 10_000), relay.output());
      const v = summaryOf(relay.output(), 'virus@test')!;
      assert.equal(v.level, 'NOTICE', 'a policy decision is not a failure of the relay');
      assert.equal(v.f.action, 'reject');
      assert.match(v.f.av, /^infected: Eicar/);
      assert.equal(v.f.server, undefined);
      assert.match(v.f.reply, /^550 /);
    } finally {
      await relay.stop();
    }
  });

  it('a scanner down: the defer (not scanned) is WARN, the relay failed it', async () => {
    const relay = await launcher({}, {}, [], '/nonexistent/clamd.sock');
    try {
      assert.equal(await sendMessage(relay.port, 'noscan', 'hello'), 451);
      assert.ok(await eventually(() => summaryOf(relay.output(), 'noscan@test') !== undefined, 10_000), relay.output());
      const s = summaryOf(relay.output(), 'noscan@test')!;
      assert.equal(s.level, 'WARN');
      assert.equal(s.f.action, 'defer');
      assert.match(s.f.av, /^not scanned: clamd unavailable/);
    } finally {
      await relay.stop();
    }
  });

  it('haraka -c with queue/smtp_forward: a delivered message is NOTICE with the server\'s answer and queue id; '
    + 'a server refusal is NOTICE; a server down is WARN; Haraka keeps its own levels', async () => {
    const port = await freePort();
    const relay = await startHarakaC({
      port,
      esetsCfg: esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket }),
      plugins: ['esets_connection_limits', 'rcpt_to.in_host_list', 'esets_policy', 'queue/smtp_forward'],
      files: { host_list: 'example.org\n', 'smtp_forward.ini': `host=127.0.0.1\nport=${sink.port}\nenable_tls=false\n` },
    });
    dirs.push(relay.dir);
    try {
      assert.equal(await sendMessage(port, 'fwd-clean', 'hello'), 250);
      assert.ok(await eventually(() => summaryOf(relay.output(), 'fwd-clean@test') !== undefined, 10_000), relay.output());
      const s = summaryOf(relay.output(), 'fwd-clean@test')!;
      assert.equal(s.level, 'NOTICE', relay.output());
      assert.equal(s.f.action, 'accept');
      assert.equal(s.f.server, 'accepted');
      assert.match(s.f.server_reply, /queued as \S+/);
      assert.equal(s.f.queue_id, /queued as (\S+)/.exec(s.f.server_reply)![1]);
      assert.match(s.f.reply, /^250 /);
      assert.equal(s.f.trace, s.bracket);
      // haraka -c: Haraka's own session notices stay NOTICE
      assert.match(relay.output(), /\[NOTICE\] \[[0-9A-F-]{36}\] \[core\] connect ip=127\.0\.0\.1/);

      sink.options = { dataReply: { code: 554, text: '5.7.1 refused by the test' } };
      assert.equal(await sendMessage(port, 'fwd-refused', 'hello'), 550);
      assert.ok(await eventually(() => summaryOf(relay.output(), 'fwd-refused@test') !== undefined, 10_000), relay.output());
      const r = summaryOf(relay.output(), 'fwd-refused@test')!;
      assert.equal(r.level, 'NOTICE', 'the server refused: its decision');
      assert.equal(r.f.server, 'refused');
      sink.options = {};

    } finally {
      sink.options = {};
      await relay.stop('SIGKILL');
    }

    // the server down: smtp_forward cannot deliver (a failure of the delivery, not a decision)
    const downPort = await freePort();
    const closed = await freePort();
    const down = await startHarakaC({
      port: downPort,
      esetsCfg: esetsCfg(downPort, { serverPort: closed, clamdSocket: clamd.socket }),
      plugins: ['esets_connection_limits', 'rcpt_to.in_host_list', 'esets_policy', 'queue/smtp_forward'],
      // smtp_forward does not answer when its server refuses the connection: Haraka's plugin timeout does
      files: {
        host_list: 'example.org\n', plugin_timeout: '3\n', 'smtp_forward.ini': `host=127.0.0.1\nport=${closed}\nenable_tls=false\n`,
      },
    });
    dirs.push(down.dir);
    try {
      const code = await sendMessage(downPort, 'fwd-down', 'hello').catch((e: Error) => assert.fail(`${e.message}\n${down.output()}`));
      assert.ok(code >= 400 && code < 500, String(code));
      assert.ok(await eventually(() => summaryOf(down.output(), 'fwd-down@test') !== undefined, 10_000), down.output());
      const d = summaryOf(down.output(), 'fwd-down@test')!;
      assert.equal(d.level, 'WARN');
      assert.equal(d.f.action, 'accept');
      assert.equal(d.f.server, 'failed');
    } finally {
      await down.stop('SIGKILL');
    }
  });

  it("Haraka's format=json: every line of the launcher's output parses as JSON, the summary among them", async () => {
    const hc = harakaConfigWithLog('[main]\nlevel=notice\ntimestamps=true\nformat=json\n');
    dirs.push(hc);
    const relay = await launcher({}, {}, ['--haraka-config', hc]);
    try {
      assert.equal(await sendMessage(relay.port, 'json-clean', 'hello'), 250);
      assert.ok(await eventually(() => relay.output().includes('json-clean@test'), 10_000), relay.output());
    } finally {
      await relay.stop('SIGTERM');
    }
    const records = relay.output().split('\n').filter((l) => l !== '').map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return assert.fail(`not JSON: ${l}`);
      }
    });
    const summary = records.find((r) => String(r.message).includes('json-clean@test'))!;
    assert.equal(summary.level, 'NOTICE');
    assert.equal(summary.origin, 'esets_policy');
    assert.match(String(summary.timestamp), /^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    assert.equal(fields(String(summary.message)).trace, summary.uuid);
  });

  it('TERM during an open message: the worker says how many sessions and messages it drains, the manager how many messages', async () => {
    const relay = await launcher({ num_proc: 1, timeout_client: 30 });
    const client = await SmtpTestClient.connect(relay.port);
    try {
      await client.read();
      await client.command('EHLO client.example');
      await client.command('MAIL FROM:<a@example.com>');
      await client.command('RCPT TO:<user@example.org>');
      assert.equal((await client.command('DATA')).code, 354);
      client.write('Subject: drain\r\n\r\nhalf a message\r\n');
      await new Promise((r) => setTimeout(r, 500));
      relay.process.kill('SIGTERM');
      assert.ok(await eventually(() => /TERM: draining 1 session and 1 message in progress/.test(relay.output()), 15_000), relay.output());
      assert.match(relay.output(), /TERM: stopping 1 worker with 1 message in progress/);
      client.write('.\r\n');
      assert.equal((await client.read()).code, 250);
    } finally {
      client.destroy();
      await relay.stop('SIGKILL');
    }
  });

  it('clamd failover: the warning carries the trace id of the message it failed', async () => {
    const relay = await launcher({}, { clamd_config: `"${path.join(path.dirname(clamd.socket), 'clamd.conf')}"` }, [],
      `/nonexistent/dead.sock, ${clamd.socket}`);
    try {
      assert.equal(await sendMessage(relay.port, 'failover', 'hello'), 250);
      assert.ok(await eventually(() => summaryOf(relay.output(), 'failover@test') !== undefined, 10_000), relay.output());
      const { f } = summaryOf(relay.output(), 'failover@test')!;
      const warning = relay.output().split('\n').find((l) => /clamd \/nonexistent\/dead\.sock failed/.test(l));
      assert.ok(warning, relay.output());
      assert.ok(warning.includes(`[WARN] [${f.trace}] [esets_policy]`), warning);
      assert.ok(warning.includes(`trace=${f.trace}`), warning);
    } finally {
      await relay.stop();
    }
  });

  it("kill -9 of a worker mid-DATA: the manager logs the message as cut, with its trace id", async () => {
    // level=info: Haraka's connect line (now INFO) names the session, whose first transaction is <uuid>.1
    const hc = harakaConfigWithLog('[main]\nlevel=info\ntimestamps=true\nformat=default\n');
    dirs.push(hc);
    const relay = await launcher({ num_proc: 1 }, {}, ['--haraka-config', hc]);
    const client = await SmtpTestClient.connect(relay.port);
    try {
      await client.read();
      await client.command('EHLO client.example');
      await client.command('MAIL FROM:<cut@example.com>');
      await client.command('RCPT TO:<user@example.org>');
      assert.equal((await client.command('DATA')).code, 354);
      client.write('Subject: cut\r\n\r\nthe first half\r\n');
      const port = client.localPort;
      const connect = new RegExp(`\\[INFO\\] \\[([0-9A-F-]{36})\\] \\[core\\] connect ip=127\\.0\\.0\\.1 port=${port} `);
      assert.ok(await eventually(() => connect.test(relay.output()), 10_000), relay.output());
      const trace = `${connect.exec(relay.output())![1]}.1`;
      // the note of DATA's start reaches the manager (cheap: one IPC message); give it a moment
      await new Promise((r) => setTimeout(r, 500));
      const workers = childPids(relay.process.pid!).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node'));
      assert.equal(workers.length, 1);
      process.kill(workers[0], 'SIGKILL');
      const cut = new RegExp(`\\[WARN\\] \\[${trace.replace(/\./g, '\\.')}\\] \\[esets_policy\\] trace=${trace.replace(/\./g, '\\.')} `
        + 'client="127\\.0\\.0\\.1" action=cut by=worker_died from="<cut@example\\.com>" '
        + `reason="worker ${workers[0]} was killed by SIGKILL while the message was in progress" reply=none`);
      assert.ok(await eventually(() => cut.test(relay.output()), 15_000), relay.output());
    } finally {
      client.destroy();
      await relay.stop();
    }
  });
});

describe('syslog loggers and a live edit (issue 26)', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  let sink: Sink;
  let rsyslog: Rsyslog;

  before(async () => {
    [clamd, rsyslog] = await Promise.all([startClamd(), startRsyslog()]);
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await Promise.all([clamd?.stop(), rsyslog?.stop(), sink?.stop()]);
  });

  /** PIDs of the `logger` processes under `root` */
  function loggers(root: number): number[] {
    const found: number[] = [];
    const walk = (pid: number): void => {
      for (const child of childPids(pid)) {
        try {
          if (path.basename(fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0')[0]) === 'logger') found.push(child);
        } catch {
          // gone meanwhile
        }
        walk(child);
      }
    };
    walk(root);
    return found;
  }

  it('syslog_facility set back to none by a live edit: every logger process ends', async () => {
    const port = await freePort();
    const opts = { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 1 } };
    const withSyslog = esetsCfg(port, { ...opts, global: { syslog_facility: 'mail', syslog_socket: `"${rsyslog.socket}"` } });
    const cfg = writeEsetsCfg(withSyslog);
    const relay = await startRelay(['--config', cfg], port);
    try {
      assert.equal(await sendMessage(port, 'syslog-before', 'hello'), 250);
      assert.ok(await eventually(() => rsyslog.read().includes('syslog-before@test'), 10_000));
      const before = loggers(relay.process.pid!);
      assert.ok(before.length >= 1, 'the summary went through a logger process');
      fs.writeFileSync(cfg, esetsCfg(port, { ...opts, global: { syslog_facility: 'none' } }));
      assert.ok(await eventually(() => (relay.output().match(/configuration reloaded from/g) ?? []).length >= 2, 20_000), relay.output());
      const ended = await eventually(() => before.every((pid) => !isRunning(pid)), 10_000);
      assert.ok(ended, `still running: ${before.filter(isRunning).join(' ')}`);
      assert.deepEqual(loggers(relay.process.pid!), []);
      // and the summaries are in Haraka's log now
      assert.equal(await sendMessage(port, 'syslog-after', 'hello'), 250);
      assert.ok(await eventually(() => summaryOf(relay.output(), 'syslog-after@test') !== undefined, 10_000), relay.output());
    } finally {
      await relay.stop();
      removeTempDir(path.dirname(cfg));
    }
  });
});
