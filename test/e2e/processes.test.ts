// The relay's processes under load: a worker killed (num_proc = 2), TERM
// while traffic flows, and a corpus of malformed configuration files.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, startClamd } from '../support/clamd';
import { esetsCfg, EXIT_CONFIG, freePort, runLauncher, startRelay, writeEsetsCfg } from '../support/relay';
import { childPids } from '../support/processes';
import { Sink } from '../support/sink';
import { assertNothingLost, Traffic } from '../support/traffic';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


describe('relay processes under load', function () {
  this.timeout(120_000);
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
  beforeEach(() => {
    sink.messages.length = 0;
  });

  it('num_proc = 2, one worker killed: the other serves, no client of a lost session got 250 for a lost message', async () => {
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { num_proc: 2 } })),
    ], port);
    try {
      for (let i = 0; i < 50 && childPids(relay.process.pid!).length < 2; i++) await sleep(100);
      assert.equal(childPids(relay.process.pid!).length, 2);
      const traffic = new Traffic({ port, sessions: 10, messages: 600, kinds: ['clean', 'eicar'] });
      while (traffic.sent.length < 100) await sleep(20);
      process.kill(childPids(relay.process.pid!)[0], 'SIGKILL');
      await traffic.done;
      const cut = traffic.sent.filter((s) => s.code === 0);
      const late = traffic.sent.slice(-50).filter((s) => s.code !== (s.kind === 'eicar' ? 550 : 250));
      assert.deepEqual(late.map((s) => `${s.code} ${s.text}`), [], 'the relay did not go on serving');
      assert.ok(cut.length <= 10, `${cut.length} messages cut: more than the sessions open at the kill`);
      assertNothingLost(traffic.sent, sink.messages, undefined, true);
    } finally {
      await relay.stop();
    }
  });

  it('TERM under load: sessions in progress complete, new connections are refused, exit within timeout_client', async () => {
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { timeout_client: 5 } })),
    ], port);
    const traffic = new Traffic({ port, sessions: 10, messages: 100_000, reconnect: true });
    while (traffic.sent.length < 100) await sleep(20);
    const termAt = Date.now();
    relay.process.kill('SIGTERM');
    const code = await relay.exited;
    const exitedAfter = Date.now() - termAt;
    traffic.stop();
    await traffic.done;
    assert.equal(code, 0);
    assert.ok(exitedAfter < 5000 + 1000, `exited ${exitedAfter} ms after TERM`);
    // after TERM: a session got through whole, or its connection was refused; none was cut with 250 lost
    const failed = traffic.sent.filter((s) => s.code !== 250);
    assert.ok(failed.length > 0, 'no connection was refused after TERM');
    assert.ok(failed.every((s) => s.code === 0 && /ECONNREFUSED|closed/.test(s.text)), failed.map((s) => `${s.code} ${s.text}`).join('; '));
    assertNothingLost(traffic.sent, sink.messages, undefined, true);
  });
});

describe('malformed configuration corpus: a clear error naming file and line, no relay started', function () {
  this.timeout(120_000);

  const ESETS: [string, string, RegExp][] = [
    ['bad integer', '[smtp]\nagent_enabled = yes\nlisten_port = 2x5\n', /:3: error: option 'listen_port' has invalid value '2x5'/],
    ['port out of range', '[smtp]\nagent_enabled = yes\nserver_port = 70000\n', /:3: error: option 'server_port' has invalid value '70000': expected an integer from 1 to 65535/],
    ['bad boolean', '[smtp]\nagent_enabled = maybe\n', /:2: error: option 'agent_enabled' has invalid value 'maybe': expected yes or no/],
    ['bad action', '[smtp]\nagent_enabled = yes\naction_av_infected = scan\n', /:3: error: option 'action_av_infected' has invalid value 'scan': expected one of accept, defer, discard, reject/],
    ['bad clean mode', '[global]\nav_clean_mode = thorough\n[smtp]\nagent_enabled = yes\n', /:2: error: option 'av_clean_mode' has invalid value 'thorough'/],
    ['bad facility', '[global]\nsyslog_facility = kernel\n', /:2: error: option 'syslog_facility' has invalid value 'kernel'/],
    ['bad socket address', '[global]\ndaemon_sock_path = "clamd"\n', /:2: error: option 'daemon_sock_path' has invalid value 'clamd'/],
    ['unterminated quote', '[smtp]\nlisten_addr = "127.0.0.1\n', /:2: error: option 'listen_addr': unterminated double quote/],
    ['not key = value', '[smtp]\n\nagent_enabled yes\n', /:3: error: cannot parse 'agent_enabled yes'/],
    ['option before any section', 'agent_enabled = yes\n', /:1: error: option 'agent_enabled' appears before any \[section\]/],
    ['binary garbage', '[smtp]\n\u0000\u0001\u0002\n', /:2: error: cannot parse/],
    ['empty string', '[smtp]\nagent_enabled = yes\nlisten_addr = ""\n', /:3: error: option 'listen_addr' has invalid value ''/],
  ];

  for (const [name, text, expected] of ESETS) {
    it(`esets.cfg: ${name}`, async () => {
      const file = writeEsetsCfg(text);
      const r = await runLauncher(['--config', file]);
      assert.equal(r.code, EXIT_CONFIG, r.stderr);
      assert.match(r.stderr, new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}${expected.source}`, 'm'));
      assert.match(r.stderr, /esets_smtp: not started/);
    });
  }

  const USERS: [string, string, RegExp][] = [
    ['bad value in a section', '[a.example]\naction_av = sometimes\n', /users\.cfg:2: error: option 'action_av' has invalid value 'sometimes'/],
    ['missing parent', '[a.example]\nparent_id = "nobody"\n', /users\.cfg:2: error: \[a\.example\] parent_id "nobody" names no section/],
    ['parent cycle', '[a]\nparent_id = "b"\n[b]\nparent_id = "a"\n', /users\.cfg:\d: error: parent_id cycle/],
    ['not key = value', '[a.example]\naction_av reject\n', /users\.cfg:2: error: cannot parse/],
  ];

  for (const [name, text, expected] of USERS) {
    it(`user_config: ${name}`, async () => {
      const file = writeEsetsCfg(esetsCfg(await freePort(), { serverPort: 1, smtp: { user_config: '"users.cfg"' } }));
      fs.writeFileSync(path.join(path.dirname(file), 'users.cfg'), text);
      const r = await runLauncher(['--config', file]);
      assert.equal(r.code, EXIT_CONFIG, r.stderr);
      assert.match(r.stderr, expected);
    });
  }

  it('user_config: a file that does not exist', async () => {
    const file = writeEsetsCfg(esetsCfg(await freePort(), { serverPort: 1, smtp: { user_config: '"missing.cfg"' } }));
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.match(r.stderr, /missing\.cfg: error: cannot read/);
  });
});
