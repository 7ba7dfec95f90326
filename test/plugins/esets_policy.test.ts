import assert from 'node:assert/strict';
import { callDataPost, callHook, callQueue, makeConnection, makePlugin } from 'haraka-test-fixtures';
import constants from 'haraka-constants';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { useHarakaDir } from '../support/haraka_dir';

describe('esets_policy plugin (with a real clamd)', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  before(async () => {
    clamd = await startClamd();
  });
  after(() => clamd?.stop());

  const cfg = (smtp: string, sock = clamd.socket): string =>
    `[global]\ndaemon_sock_path = "${sock}"\n[smtp]\nagent_enabled = yes\nserver_addr = "127.0.0.1"\nserver_port = 1\n${smtp}`;

  /** A transaction through the plugin's data hook (the relay's capture of the message), then the lines. */
  async function received(plugin: ReturnType<typeof makePlugin>, body: string): Promise<ReturnType<typeof makeConnection>> {
    const conn = makeConnection({ mailFrom: 'a@example.com', rcptTo: ['b@example.org'], silent: true });
    await callHook(plugin, 'start_live_scan', conn);
    for (const line of ['Subject: t\r\n', 'X-Virus-Scanner: forged, clean\r\n', '\r\n', `${body}\r\n`]) conn.transaction.add_data(line);
    conn.transaction.end_data();
    return conn;
  }

  /** the policy's answer; `trace`: the transaction's uuid, which the reply must end with */
  async function policyOn(body: string): Promise<{ rc?: number; msg?: unknown; text: string; trace: string }> {
    const plugin = makePlugin('esets_policy');
    const conn = await received(plugin, body);
    const trace = String(conn.transaction.uuid);
    const r = await callDataPost(plugin, conn, 'apply_policy');
    return { ...r, text: String(r.msg), trace };
  }

  it('hooks data_post (the client timeout held first, the policy after other verdict sources), and queue before esets_forward', () => {
    useHarakaDir(cfg(''));
    const plugin = makePlugin('esets_policy');
    assert.deepEqual(plugin.hooks.data_post, ['hold_client_timeout', 'apply_policy']);
    assert.deepEqual(plugin.hooks.queue, ['discard_message']);
  });

  it("sets its own Haraka hook timeout above timeout_message (no .timeout file)", () => {
    useHarakaDir(cfg('timeout_message = 590\n'));
    assert.equal(makePlugin('esets_policy').timeout, 620);
  });

  it('accepts a clean message and replaces any X-Virus-Scanner header with its own', async () => {
    useHarakaDir(cfg(''));
    const plugin = makePlugin('esets_policy');
    const conn = await received(plugin, 'hello');
    const { rc } = await callDataPost(plugin, conn, 'apply_policy');
    assert.equal(rc, undefined);
    const headers = conn.transaction.header.get_all('X-Virus-Scanner');
    assert.equal(headers.length, 1);
    assert.match(headers[0], /^esets-relay \S+ \(ClamAV [\d.]+.*\); clean/);
    assert.deepEqual(conn.transaction.results.get('esets_policy')?.msg, ['accept by action_as']);
  });

  it('adds no X-Virus-Scanner when add_header_xvirus = no', async () => {
    useHarakaDir(cfg('add_header_xvirus = no\n'));
    const plugin = makePlugin('esets_policy');
    const conn = await received(plugin, 'hello');
    await callDataPost(plugin, conn, 'apply_policy');
    assert.deepEqual(conn.transaction.header.get_all('X-Virus-Scanner'), []);
  });

  it('rejects an infected message with 550 5.7.1 naming the virus (default action_av_infected)', async () => {
    useHarakaDir(cfg(''));
    const { rc, msg, text, trace } = await policyOn(EICAR);
    assert.equal(rc, constants.deny);
    assert.equal((msg as { code: number }).code, 550);
    assert.match(text, /^5\.7\.1 Message rejected: virus found \(Eicar-Test-Signature/);
    assert.ok(text.endsWith(` (trace ${trace})`), text);
  });

  it('defers with 451 4.7.1 when clamd cannot be reached (default action_av_notscanned)', async () => {
    useHarakaDir(cfg('', '/nonexistent/clamd.sock'));
    const { rc, msg, text, trace } = await policyOn('hello');
    assert.equal(rc, constants.denysoft);
    assert.equal((msg as { code: number }).code, 451);
    assert.equal(text, `4.7.1 Message deferred: it could not be scanned for viruses, try again later (trace ${trace})`);
    // the socket path and the error are the log's
    assert.doesNotMatch(text, /nonexistent|clamd|ENOENT/);
  });

  it('fails over to the next daemon_sock_path address', async () => {
    useHarakaDir(cfg('', `/nonexistent/clamd.sock, ${clamd.socket}`));
    const { rc, text } = await policyOn(EICAR);
    assert.equal(rc, constants.deny);
    assert.match(text, /Eicar/);
  });

  it('discards: 250 at queue time instead of forwarding', async () => {
    useHarakaDir(cfg('action_av_infected = discard\n'));
    const plugin = makePlugin('esets_policy');
    const conn = await received(plugin, EICAR);
    assert.equal((await callDataPost(plugin, conn, 'apply_policy')).rc, undefined);
    assert.equal((await callQueue(plugin, conn, 'discard_message')).rc, constants.ok);
  });

  it('lets an accepted message through the queue hook untouched', async () => {
    useHarakaDir(cfg(''));
    const plugin = makePlugin('esets_policy');
    const conn = await received(plugin, 'hello');
    await callDataPost(plugin, conn, 'apply_policy');
    assert.equal((await callQueue(plugin, conn, 'discard_message')).rc, undefined);
  });

  it('applies action_av without scanning when it is not scan', async () => {
    useHarakaDir(cfg('action_av = reject\n', '/nonexistent/clamd.sock'));
    const { rc, text, trace } = await policyOn('hello');
    assert.equal(rc, constants.deny);
    assert.equal(text, `5.7.1 Message rejected by the mail policy, contact the postmaster (trace ${trace})`);
  });
});
