// User-specific configuration end to end: [rcpt|sender] sections choose the
// policy of each message; edits take effect without a restart.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { canConnect } from '../support/processes';
import { esetsCfg, EXIT_CONFIG, freePort, Relay, runLauncher, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

async function send(
  relay: Relay, from: string, to: string[], subject: string, body: string,
): Promise<{ code: number; text: string; rcpts: number[] }> {
  const client = await SmtpTestClient.connect(relay.port);
  await client.read();
  await client.command('EHLO client.example');
  const r = await client.send(from, to, `Subject: ${subject}\r\n\r\n${body}\r\n`);
  client.end();
  const last = r.data ?? r.rcpts[r.rcpts.length - 1];
  return { code: last.code, text: last.lines.join(' '), rcpts: r.rcpts.map((x) => x.code) };
}

/** Sections [g0] .. [g<n-1>], each inheriting the next: deeper than parent_id chains may go. */
function chain(n: number): string {
  return Array.from({ length: n }, (_, i) => `[g${i}]\n${i < n - 1 ? `parent_id = "g${i + 1}"` : 'action_av = reject'}\n`).join('');
}

const USERS = [
  '# groups first: their names match no address',
  '[group_lenient]',
  'action_av_infected = accept',
  '',
  '[|trusted@partner.example]',
  'parent_id = "group_lenient"',
  '',
  '[defer.example]',
  'action_av_infected = defer',
  '',
].join('\n');

describe('user-specific configuration end to end', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  let relay: Relay;
  let cfgFile: string;
  let usersFile: string;

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
    const port = await freePort();
    cfgFile = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, smtp: { user_config: '"users.cfg"' } }));
    usersFile = path.join(path.dirname(cfgFile), 'users.cfg');
    fs.writeFileSync(usersFile, USERS);
    relay = await startRelay(['--config', cfgFile], port);
  });

  after(async () => {
    await relay?.stop();
    await Promise.all([sink?.stop(), clamd?.stop()]);
  });

  function delivered(subject: string): boolean {
    return sink.messages.some((m) => m.data.toString().includes(`Subject: ${subject}\r\n`));
  }

  it('gives the same EICAR message two verdicts from two senders (sender section with parent_id)', async () => {
    const strict = await send(relay, 'someone@example.com', ['user@example.org'], 'eicar-strict', EICAR);
    assert.equal(strict.code, 550);
    assert.equal(delivered('eicar-strict'), false);
    const lenient = await send(relay, 'trusted@partner.example', ['user@example.org'], 'eicar-lenient', EICAR);
    assert.equal(lenient.code, 250, lenient.text);
    assert.equal(delivered('eicar-lenient'), true);
  });

  it('lets a recipient domain section defer while the agent section rejects', async () => {
    const deferred = await send(relay, 'a@example.com', ['x@mail.defer.example'], 'eicar-defer', EICAR);
    assert.equal(deferred.code, 451);
    assert.match(deferred.text, /^4\.7\.1 /);
    const rejected = await send(relay, 'a@example.com', ['x@other.example'], 'eicar-reject', EICAR);
    assert.equal(rejected.code, 550);
  });

  it("applies the first recipient's section to the whole message (ESETS default)", async () => {
    const r = await send(relay, 'a@example.com', ['x@defer.example', 'y@other.example'], 'eicar-first', EICAR);
    assert.deepEqual(r.rcpts, [250, 250]);
    assert.equal(r.code, 451);
  });

  it('keeps serving with the configuration in force when a live edit brings a parent_id chain of 7,000 sections', async () => {
    const before = relay.output().length;
    // were it loaded, [defer.example] would discard
    fs.writeFileSync(usersFile, `${USERS.replace('action_av_infected = defer', 'action_av_infected = discard')}\n${chain(7000)}`);
    for (let i = 0; i < 100 && !/configuration not reloaded/.test(relay.output().slice(before)); i++) await new Promise((r) => setTimeout(r, 100));
    const log = relay.output().slice(before);
    assert.match(log, /users\.cfg:\d+: error: \[g6898\] parent_id "g6899" is step 101 of a parent_id chain: at most 100 are allowed/);
    assert.match(log, /configuration not reloaded: the one in force stays/);
    assert.doesNotMatch(log, /RangeError|Caught exception/);
    assert.equal(relay.process.exitCode, null, 'the relay exited');
    assert.ok(await canConnect(relay.port), 'the port no longer answers');
    // the old sections still decide: defer for [defer.example], accept for the trusted sender
    assert.equal((await send(relay, 'a@example.com', ['x@defer.example'], 'chain-defer', EICAR)).code, 451);
    assert.equal((await send(relay, 'trusted@partner.example', ['user@example.org'], 'chain-lenient', EICAR)).code, 250);
    assert.equal((await send(relay, 'a@example.com', ['user@example.org'], 'chain-clean', 'clean')).code, 250);
    assert.ok(delivered('chain-clean'));
    fs.writeFileSync(usersFile, USERS);
  });

  it('takes an edit of user_config for new messages, keeps the last good one on a broken edit, loses no message meanwhile', async () => {
    const stopAt = Date.now() + 60_000;
    let sent = 0;
    let answered250 = 0;
    let traffic = true;
    const subjects: string[] = [];
    // clean traffic on 3 concurrent sessions while the files change
    const senders = [0, 1, 2].map(async (n) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      while (traffic && Date.now() < stopAt) {
        const subject = `reload-traffic-${n}-${sent++}`;
        subjects.push(subject);
        const r = await client.send('a@example.com', ['x@defer.example'], `Subject: ${subject}\r\n\r\nclean\r\n`);
        if (r.data?.code === 250) answered250++;
      }
      client.end();
    });

    const waitForVerdict = async (code: number): Promise<number> => {
      let last = 0;
      for (let i = 0; i < 50; i++) {
        last = (await send(relay, 'a@example.com', ['x@defer.example'], `probe-${i}`, EICAR)).code;
        if (last === code) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      return last;
    };

    // 1. defer -> discard, written by renaming a new file over the old one (as editors do)
    fs.writeFileSync(`${usersFile}.new`, USERS.replace('action_av_infected = defer', 'action_av_infected = discard'));
    fs.renameSync(`${usersFile}.new`, usersFile);
    assert.equal(await waitForVerdict(250), 250, 'the edit did not take effect');
    assert.equal(delivered('probe-0'), false);

    // 2. a broken edit: reported, the discard policy stays
    fs.writeFileSync(usersFile, USERS.replace('action_av_infected = defer', 'action_av_infected = sometimes'));
    await new Promise((r) => setTimeout(r, 1000));
    assert.match(relay.output(), /users\.cfg:9: error: option 'action_av_infected' has invalid value 'sometimes'/);
    assert.match(relay.output(), /configuration not reloaded/);
    assert.equal((await send(relay, 'a@example.com', ['x@defer.example'], 'after-broken', EICAR)).code, 250);

    // 3. esets.cfg itself: the agent section now defers everything infected
    fs.writeFileSync(usersFile, USERS);
    fs.appendFileSync(cfgFile, 'action_av_infected = defer\n');
    assert.equal(await waitForVerdict(451), 451);
    assert.equal((await send(relay, 'a@example.com', ['x@other.example'], 'agent-defer', EICAR)).code, 451);

    traffic = false;
    await Promise.all(senders);
    assert.ok(sent > 20, `only ${sent} messages sent`);
    assert.equal(answered250, subjects.length, 'a clean message was not accepted during reloads');
    for (const subject of subjects) assert.ok(delivered(subject), `${subject} was answered 250 but not delivered`);
  });
});

describe('user-specific configuration: bounces (MAIL FROM:<>) and sender sections', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  /** esets.cfg without the option: the manual's letter */
  let letter: Relay;
  /** null_sender_matches_sender_sections = no */
  let strict: Relay;

  async function relayWith(smtp: Record<string, string>): Promise<Relay> {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket, smtp: { user_config: '"users.cfg"', ...smtp },
    }));
    fs.writeFileSync(path.join(path.dirname(cfg), 'users.cfg'), USERS);
    return startRelay(['--config', cfg], port);
  }

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
    [letter, strict] = await Promise.all([relayWith({}), relayWith({ null_sender_matches_sender_sections: 'no' })]);
  });

  after(async () => {
    await Promise.all([letter?.stop(), strict?.stop()]);
    await Promise.all([sink?.stop(), clamd?.stop()]);
  });

  const delivered = (subject: string): boolean => sink.messages.some((m) => m.data.toString().includes(`Subject: ${subject}\r\n`));

  it('with null_sender_matches_sender_sections = no, rejects an EICAR bounce (550): '
    + '[|trusted@partner.example] does not govern <>', async () => {
    const r = await send(strict, '', ['user@example.org'], 'bounce-strict', EICAR);
    assert.deepEqual(r.rcpts, [250]);
    assert.equal(r.code, 550, r.text);
    assert.match(r.text, /^5\.7\.1 .*Eicar/);
    assert.equal(delivered('bounce-strict'), false);
    // the recipient sections still govern bounces; the trusted sender itself is still exempt
    assert.equal((await send(strict, '', ['x@defer.example'], 'bounce-strict-defer', EICAR)).code, 451);
    assert.equal((await send(strict, 'trusted@partner.example', ['user@example.org'], 'trusted-strict', EICAR)).code, 250);
    assert.ok(delivered('trusted-strict'));
  });

  it("by default (the manual's letter), accepts the same EICAR bounce under [|trusted@partner.example] "
    + '(action_av_infected = accept)', async () => {
    const r = await send(letter, '', ['user@example.org'], 'bounce-letter', EICAR);
    assert.equal(r.code, 250, r.text);
    assert.ok(delivered('bounce-letter'));
  });
});

describe('user-specific configuration at start', function () {
  this.timeout(60_000);

  it('does not start on a parent_id chain of 7,000 sections: exit 1, file, line and the bound, no stack trace', async () => {
    const file = writeEsetsCfg(esetsCfg(await freePort(), { serverPort: 1, smtp: { user_config: '"users.cfg"' } }));
    fs.writeFileSync(path.join(path.dirname(file), 'users.cfg'), chain(7000));
    const r = await runLauncher(['--config', file]);
    assert.equal(r.code, EXIT_CONFIG, r.stderr);
    assert.match(r.stderr, /users\.cfg:13798: error: \[g6898\] parent_id "g6899" is step 101 of a parent_id chain: at most 100 are allowed \(user_config, named at \S+esets\.cfg:\d+\)\nesets_smtp: not started\n$/);
    assert.doesNotMatch(r.stderr, /RangeError|\n\s+at /);
  });
});
