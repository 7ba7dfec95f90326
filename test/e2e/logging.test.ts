// LOGGING (esets_smtp(1)): one summary line per message, NOTICE for every
// outcome the policy or the server chose (WARNING: the relay failed it), to a real syslog daemon when syslog_facility is set; and
// every other class syslog_class lists (error, warning, info, debug) there too.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { childPids, eventually } from '../support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Rsyslog, startRsyslog } from '../support/rsyslog';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const MAX_LINE_BYTES = 900;
const SUMMARY_KEYS = [
  'trace', 'client', 'client_name', 'helo', 'action', 'by', 'from', 'to', 'section', 'rcpts', 'av', 'as', 'message_id', 'size',
  'server', 'server_reply', 'queue_id', 'reply', 'scan', 'time',
];
/** what only an accepted (forwarded) message has */
const FORWARDED_KEYS = ['as', 'server', 'server_reply', 'queue_id'];

/**
 * A Message-ID past 1,100 bytes with `<0>`, ESC and a fake field, as in issue 10
 * item 8: `logger --prio-prefix` split such a summary line near 1,024 bytes and
 * read `<0>` at the start of the tail as user.emerg. `pad` shifts the `<0>`s by
 * one byte, so with any split point one of three messages would have one there.
 */
function hostileId(pad: number): string {
  return `<${'p'.repeat(pad)}\x1b action=accept by=x ${'<0>'.repeat(360)}@forge.test>`;
}

async function sendWithId(relay: Relay, from: string, messageId: string, body: string): Promise<number> {
  const client = await SmtpTestClient.connect(relay.port);
  await client.read();
  await client.command('EHLO client.example');
  const r = await client.send(from, ['user@example.org'], `Subject: forge\r\nMessage-ID: ${messageId}\r\n\r\n${body}\r\n`);
  client.end();
  return r.data!.code;
}

/** The keys of a summary line read as a log parser would: bare tokens and "quoted strings", in order. */
function summaryKeys(text: string): string[] {
  const re = /([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "\\]*)(?: (?=.)|$)/y;
  const keys: string[] = [];
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) keys.push(m[1]);
  assert.equal(re.lastIndex, text.length, `not a line of fields: ${text}`);
  return keys;
}

/** Checks one summary record's text: escaped, bounded, our fields in our order, the client's text inside its quotes. */
function assertSafeSummary(text: string, action: 'accept' | 'reject'): void {
  assert.ok(Buffer.byteLength(text) <= MAX_LINE_BYTES, `${Buffer.byteLength(text)} bytes`);
  assert.doesNotMatch(text, /[\x00-\x1f\x7f-\x9f]|#033/, 'no control character, none escaped by rsyslog instead of us');
  // as= and server= only for an accepted message (the spam stage ran, the server was asked); client_name where rDNS found one
  const keys = summaryKeys(text);
  assert.deepEqual(keys, SUMMARY_KEYS.filter((k) => (!FORWARDED_KEYS.includes(k) || action === 'accept')
    && (k !== 'client_name' || keys.includes(k))));
  const start = '^trace=[0-9A-F-]+\\.1 client="127\\.0\\.0\\.1" (client_name="[^"]*" )?helo="client\\.example" ';
  assert.match(text, new RegExp(`${start}action=${action} by=action_`));
  assert.match(text, / message_id="<p{0,2}\\x1b action=accept by=x (<0>)+(<0?)?\\\[truncated\]" size=\d+ (server=accepted server_reply="250 [^"]*" queue_id="[^"]*" reply="250 [^"]*"|reply="550 [^"]*") scan=\d+ms time=\d+ms$/);
}

async function send(relay: Relay, from: string, subject: string, body: string): Promise<number> {
  const client = await SmtpTestClient.connect(relay.port);
  await client.read();
  await client.command('EHLO client.example');
  const r = await client.send(from, ['user@example.org'], `Subject: ${subject}\r\nMessage-ID: <${subject}@test>\r\n\r\n${body}\r\n`);
  client.end();
  return r.data!.code;
}

async function waitFor(read: () => string, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const text = read();
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  return read();
}

describe('summary logging', function () {
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

  async function relayWith(global: Record<string, string>, smtp: Record<string, string> = {}): Promise<Relay> {
    const port = await freePort();
    return startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, global, smtp })),
    ], port);
  }

  it('syslog_facility = mail: accept and reject at mail.notice, '
    + 'with sender, recipient, verdict, option, id, size, time', async () => {
    const relay = await relayWith({ syslog_facility: 'mail', syslog_socket: `"${rsyslog.socket}"` });
    try {
      assert.equal(await send(relay, 'good@example.com', 'log-clean', 'hello'), 250);
      assert.equal(await send(relay, 'bad@example.com', 'log-virus', EICAR), 550);
      const log = await waitFor(rsyslog.read, /log-virus/);
      // the pid is the Haraka worker's (num_proc workers under the launcher)
      assert.match(log, new RegExp(
        `^mail\\.notice esets_smtp\\[\\d+\\]: trace=[0-9A-F-]+\\.1 client="127\\.0\\.0\\.1" (client_name="[^"]*" )?helo="client\\.example" `
          + 'action=accept by=action_as from="<good@example\\.com>" to="<user@example\\.org>" '
          + `section="\\[smtp\\]" rcpts=1 av="clean" as="not scanned: action_as = accept" message_id="<log-clean@test>" `
          + `size=\\d+ server=accepted server_reply="250 [^"]*" queue_id="[^"]*" reply="250 [^"]*" scan=\\d+ms time=\\d+ms$`,
        'm',
      ));
      assert.match(log, /^mail\.notice esets_smtp\[\d+\]: trace=\S+ .*action=reject by=action_av_infected from="<bad@example\.com>" .*av="infected: Eicar-Test-Signature.*" message_id="<log-virus@test>"/m);
      assert.doesNotMatch(relay.output(), /action=accept by=/, "with syslog on, summaries do not go to Haraka's log");
    } finally {
      await relay.stop();
    }
  });

  it('syslog_class without summary: no summary lines reach syslog', async () => {
    const relay = await relayWith({ syslog_facility: 'local3', syslog_socket: `"${rsyslog.socket}"`, syslog_class: '"error:warning"' });
    try {
      assert.equal(await send(relay, 'quiet@example.com', 'log-quiet', 'hello'), 250);
      await new Promise((r) => setTimeout(r, 500));
      assert.doesNotMatch(rsyslog.read(), /quiet@example\.com/);
    } finally {
      await relay.stop();
    }
  });

  it('a Message-ID with <0>, ESC and a fake field past 1,100 bytes: exactly our records, at our priorities, bounded', async () => {
    // a syslog of its own: every record in it must be one this test caused
    const own = await startRsyslog();
    const relay = await relayWith({ syslog_facility: 'mail', syslog_socket: `"${own.socket}"` });
    try {
      assert.ok(hostileId(0).length > 1100);
      const sent: ('accept' | 'reject')[] = [];
      for (const pad of [0, 1, 2]) {
        assert.equal(await sendWithId(relay, 'bad@example.com', hostileId(pad), EICAR), 550);
        sent.push('reject');
      }
      assert.equal(await sendWithId(relay, 'good@example.com', hostileId(0), 'hello'), 250);
      sent.push('accept');

      const log = await waitFor(own.read, /action=accept by=action_as/);
      await new Promise((r) => setTimeout(r, 300)); // anything late (a split tail) would land by now
      // the start-up warnings (the spool and clamd's TemporaryDirectory on one filesystem) are not the messages'
      const lines = own.read().split('\n').filter((l) => l !== '' && !/^syslog\.\w+ rsyslogd/.test(l) && !/share one filesystem/.test(l));
      assert.equal(log.length > 0, true);
      assert.equal(lines.length, sent.length, `one record per message:\n${lines.join('\n')}`);
      lines.forEach((line, i) => {
        const m = /^(\w+\.\w+) esets_smtp\[\d+\]: (.*)$/.exec(line);
        assert.ok(m, `a record that is not ours: ${line.slice(0, 80)}`);
        assert.equal(m[1], 'mail.notice', 'a policy decision, not a failure of the relay');
        assertSafeSummary(m[2], sent[i]);
      });
      assert.doesNotMatch(own.read(), /^\S*\.emerg /m);
    } finally {
      await relay.stop();
      await own.stop();
    }
  });

  it("syslog_facility = none: the same Message-ID gives one escaped, bounded line in Haraka's log", async () => {
    const relay = await relayWith({});
    try {
      assert.equal(await sendWithId(relay, 'bad@example.com', hostileId(1), EICAR), 550);
      const out = await waitFor(relay.output, /\[esets_policy\] trace=.* action=reject/);
      const ours = out.split('\n').filter((l) => l.includes('[esets_policy]'));
      assert.equal(ours.length, 1, ours.join('\n'));
      assertSafeSummary(ours[0].replace(/^.*? \[NOTICE\] \[[^\]]+\] \[esets_policy\] /, ''), 'reject');
    } finally {
      await relay.stop();
    }
  });

  it("syslog_facility = none: summaries go to Haraka's log at NOTICE, a reject too", async () => {
    const relay = await relayWith({});
    try {
      assert.equal(await send(relay, 'a@example.com', 'haraka-clean', 'hello'), 250);
      assert.equal(await send(relay, 'a@example.com', 'haraka-virus', EICAR), 550);
      // the summary follows the client's answer: wait for it, not for Haraka's own line
      const out = await waitFor(relay.output, /action=reject .*haraka-virus/);
      assert.match(out, /\[NOTICE\] .*\[esets_policy\] trace=.* action=accept by=action_as .*message_id="<haraka-clean@test>"/);
      assert.match(out, /\[NOTICE\] .*\[esets_policy\] trace=.* action=reject by=action_av_infected .*message_id="<haraka-virus@test>"/);
    } finally {
      await relay.stop();
    }
  });
});

/** The `-p` of every `logger` the relay's processes (manager, workers) run: the priorities they wrote at. */
function loggerPriorities(root: number): string[] {
  const found: string[] = [];
  const seen = new Set<number>();
  const walk = (pid: number): void => {
    if (seen.has(pid)) return;
    seen.add(pid);
    for (const child of childPids(pid)) {
      try {
        const argv = fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
        // logger splits its -p argument in place: "local5.notice" reads as "local5", "notice" in /proc
        const p = argv.indexOf('-p');
        if (path.basename(argv[0]) === 'logger') found.push(argv[p + 2]?.startsWith('-') ? argv[p + 1] : `${argv[p + 1]}.${argv[p + 2]}`);
      } catch {
        // gone meanwhile
      }
      walk(child);
    }
  };
  walk(root);
  return found.sort();
}

describe('syslog_class: every class listed reaches syslog', function () {
  this.timeout(90_000);
  let clamd: Clamd;
  let sink: Sink;
  /** a clamd socket nobody listens on: the first daemon of daemon_sock_path, down (a warning, then failover) */
  let deadClamd: string;

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
    deadClamd = path.join(tempDir('esets-dead-clamd-'), 'clamd.sock');
  });
  after(async () => {
    await Promise.all([clamd?.stop(), sink?.stop()]);
    removeTempDir(path.dirname(deadClamd));
  });

  /** A new client's greeting code (0: no connection). */
  async function greetingCode(port: number): Promise<number> {
    const client = await SmtpTestClient.connect(port).catch(() => undefined);
    if (!client) return 0;
    try {
      return (await client.read()).code;
    } finally {
      client.end();
    }
  }

  /**
   * The same events whatever syslog_class says: a message scanned after a failover from a dead clamd
   * (warning, debug, summary), a reload pointing server_port at a closed port (info), then a client
   * the relay cannot serve (error: the mail server unreachable at connect).
   */
  async function everyClass(syslog: Rsyslog, syslogClass: string): Promise<Relay> {
    const port = await freePort();
    const deadServer = await freePort();
    const global = { syslog_facility: 'local5', syslog_socket: `"${syslog.socket}"`, syslog_class: `"${syslogClass}"` };
    const cfg = (serverPort: number): string => esetsCfg(port, { serverPort, clamdSocket: `${deadClamd}, ${clamd.socket}`, global });
    const file = writeEsetsCfg(cfg(sink.port));
    const relay = await startRelay(['--config', file], port);
    try {
      assert.equal(await send(relay, 'classes@example.com', 'every-class', 'hello'), 250);
      fs.writeFileSync(file, cfg(deadServer));
      // the reload is in force in the worker once a new client gets the closed port's 421 (bounded)
      let code = 0;
      for (let i = 0; i < 75 && code !== 421; i++) {
        code = await greetingCode(port);
        if (code !== 421) await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(code, 421, relay.output());
      return relay;
    } catch (err) {
      await relay.stop();
      throw err;
    }
  }

  /** Our records (not rsyslogd's own), each as [priority, text]. */
  function records(syslog: Rsyslog): [string, string][] {
    return syslog.read().split('\n').flatMap((line): [string, string][] => {
      const m = /^(\w+\.\w+) esets_smtp\[\d+\]: (.*)$/.exec(line);
      return m ? [[m[1], m[2]]] : [];
    });
  }

  // what each class's line of everyClass() looks like
  const LINES: Record<string, RegExp> = {
    error: new RegExp('^mail server 127\\.0\\.0\\.1:\\d+: connect ECONNREFUSED'),
    warning: /^clamd \/\S+\/clamd\.sock failed \(connect ENOENT/,
    info: /^configuration reloaded from \/\S+esets\.cfg$/,
    debug: /^event=clamd_scan session=\S+ daemon="\/\S+\/clamd\.sock" live=(yes|no) verdict="clean" time=\d+ms$/,
    summary: /^trace=\S+ .*action=accept by=action_as .*message_id="<every-class@test>"/,
  };
  const PRIORITY: Record<string, string> = {
    error: 'local5.err', warning: 'local5.warning', info: 'local5.info', debug: 'local5.debug', summary: 'local5.notice',
  };

  it('error:warning:summary:info:debug: a line of each class at local5.<its priority>, and each only there', async () => {
    const syslog = await startRsyslog();
    const relay = await everyClass(syslog, 'error:warning:summary:info:debug');
    try {
      const all = (): boolean => Object.values(LINES).every((re) => records(syslog).some(([, text]) => re.test(text)));
      assert.ok(await eventually(all, 10_000), `not every class arrived:\n${syslog.read()}`);
      for (const [cls, re] of Object.entries(LINES)) {
        const lines = records(syslog).filter(([, text]) => re.test(text));
        assert.ok(lines.length > 0, cls);
        assert.deepEqual([...new Set(lines.map(([priority]) => priority))], [PRIORITY[cls]], `${cls}: ${lines.join('\n')}`);
      }
      // the debug lines of the mail server session, and the scan on the dead daemon is not one of a verdict
      assert.ok(records(syslog).some(([p, t]) => p === 'local5.debug' && /^event=server_session_opened session=\S+ server=127\.0\.0\.1:\d+ handover=\S+ greeting=220$/.test(t)));
      assert.ok(await eventually(() => records(syslog).some(([p, t]) => p === 'local5.debug' && /^event=server_session_closed /.test(t)), 5_000));
      assert.ok(!records(syslog).some(([, t]) => t.includes(`daemon="${deadClamd}"`)), 'no verdict from the dead clamd');
      assert.doesNotMatch(relay.output(), /configuration reloaded|ECONNREFUSED|event=clamd_scan/, "syslog lines do not go to Haraka's log as well");
    } finally {
      await relay.stop();
      await syslog.stop();
    }
  });

  it('summary only: the same events give summary records and nothing else; no logger runs at another priority', async () => {
    const syslog = await startRsyslog();
    const relay = await everyClass(syslog, 'summary');
    try {
      assert.ok(await eventually(() => records(syslog).some(([, text]) => LINES.summary.test(text)), 10_000), syslog.read());
      // a logger child is started when the first line of its priority is written, before the client's answer
      // (the error before the 421, the warning during the scan): no other child means no other line
      assert.deepEqual([...new Set(loggerPriorities(relay.process.pid!))], ['local5.notice']);
      for (const [cls, re] of Object.entries(LINES)) {
        if (cls !== 'summary') assert.ok(!records(syslog).some(([, text]) => re.test(text)), `a ${cls} line reached syslog`);
      }
      assert.deepEqual([...new Set(records(syslog).map(([priority]) => priority))], ['local5.notice'], syslog.read());
    } finally {
      await relay.stop();
      await syslog.stop();
    }
  });
});
