import assert from 'node:assert/strict';
import { callDataPost, callQueue, makeConnection, makePlugin } from 'haraka-test-fixtures';
import constants from 'haraka-constants';
import { useHarakaDir } from '../support/haraka_dir';

const CFG = (smtp: string): string =>
  `[global]\ndaemon_sock_path = "/nonexistent/clamd.sock"\n[smtp]\nagent_enabled = yes\nserver_addr = "127.0.0.1"\nserver_port = 1\n${smtp}`;

function scannedConnection(clamd: Record<string, string> | undefined): ReturnType<typeof makeConnection> {
  const conn = makeConnection({ mailFrom: 'a@example.com', rcptTo: ['b@example.org'], silent: true });
  for (const line of ['Subject: t\r\n', 'X-Virus-Scanner: forged, clean\r\n', '\r\n', 'body\r\n']) conn.transaction.add_data(line);
  conn.transaction.end_data();
  if (clamd) conn.transaction.results.add({ name: 'clamd' }, clamd);
  return conn;
}

describe('esets_policy plugin', () => {
  it('accepts a clean message and replaces any X-Virus-Scanner header with its own', async () => {
    useHarakaDir(CFG(''));
    const plugin = makePlugin('esets_policy');
    const conn = scannedConnection({ pass: 'clean' });
    const { rc } = await callDataPost(plugin, conn, 'apply_policy');
    assert.equal(rc, undefined);
    const headers = conn.transaction.header.get_all('X-Virus-Scanner');
    assert.equal(headers.length, 1);
    assert.match(headers[0], /^esets-relay \S+ \(ClamAV.*\); clean/);
  });

  it('adds no X-Virus-Scanner when add_header_xvirus = no', async () => {
    useHarakaDir(CFG('add_header_xvirus = no\n'));
    const plugin = makePlugin('esets_policy');
    const conn = scannedConnection({ pass: 'clean' });
    await callDataPost(plugin, conn, 'apply_policy');
    assert.deepEqual(conn.transaction.header.get_all('X-Virus-Scanner'), []);
  });

  it('rejects an infected message with 550 5.7.1 naming the virus (default action_av_infected)', async () => {
    useHarakaDir(CFG(''));
    const plugin = makePlugin('esets_policy');
    const { rc, msg } = await callDataPost(plugin, scannedConnection({ fail: 'Eicar-Test-Signature' }), 'apply_policy');
    assert.equal(rc, constants.deny);
    const dsn = msg as { code: number; reply: string };
    assert.equal(dsn.code, 550);
    assert.match(dsn.reply, /^5\.7\.1 .*infected: Eicar-Test-Signature/);
  });

  it('defers with 451 4.7.1 when clamd could not scan (default action_av_notscanned)', async () => {
    useHarakaDir(CFG(''));
    const plugin = makePlugin('esets_policy');
    const { rc, msg } = await callDataPost(plugin, scannedConnection({ err: 'connecting' }), 'apply_policy');
    assert.equal(rc, constants.denysoft);
    assert.equal((msg as { code: number }).code, 451);
    assert.match((msg as { reply: string }).reply, /^4\.7\.1 .*not scanned: connecting/);
  });

  it('defers when no scan result exists at all', async () => {
    useHarakaDir(CFG(''));
    const plugin = makePlugin('esets_policy');
    const { rc } = await callDataPost(plugin, scannedConnection(undefined), 'apply_policy');
    assert.equal(rc, constants.denysoft);
  });

  it('discards: 250 at queue time instead of forwarding', async () => {
    useHarakaDir(CFG('action_av_infected = discard\n'));
    const plugin = makePlugin('esets_policy');
    const conn = scannedConnection({ fail: 'Eicar-Test-Signature' });
    assert.equal((await callDataPost(plugin, conn, 'apply_policy')).rc, undefined);
    const queued = await callQueue(plugin, conn, 'discard_message');
    assert.equal(queued.rc, constants.ok);
  });

  it('lets an accepted message through the queue hook untouched', async () => {
    useHarakaDir(CFG(''));
    const plugin = makePlugin('esets_policy');
    const conn = scannedConnection({ pass: 'clean' });
    await callDataPost(plugin, conn, 'apply_policy');
    assert.equal((await callQueue(plugin, conn, 'discard_message')).rc, undefined);
  });

  it('applies action_av without scanning when it is not scan', async () => {
    useHarakaDir(CFG('action_av = reject\n'));
    const plugin = makePlugin('esets_policy');
    const { rc, msg } = await callDataPost(plugin, scannedConnection({ pass: 'clean' }), 'apply_policy');
    assert.equal(rc, constants.deny);
    assert.match((msg as { reply: string }).reply, /action_av = reject/);
  });
});
