import assert from 'node:assert/strict';
import { callHook, callMail, callRcpt, makeConnection, makePlugin } from 'haraka-test-fixtures';
import constants from 'haraka-constants';
import { useHarakaDir } from '../support/haraka_dir';
import { freePort } from '../support/relay';
import { Sink } from '../support/sink';

const CFG = (port: number): string =>
  `[smtp]\nagent_enabled = yes\nserver_addr = "127.0.0.1"\nserver_port = ${port}\n`;

describe('esets_forward plugin (against a real SMTP server)', () => {
  let sink: Sink;

  before(async () => {
    sink = new Sink({ refuseRcpt: (a) => (a.startsWith('nobody@') ? '5.1.1 No such user here' : undefined) });
    await sink.start();
  });
  after(() => sink.stop());

  function connection(): ReturnType<typeof makeConnection> {
    const conn = makeConnection({ ip: '192.0.2.7', helo: 'client.example', withTxn: true, silent: true });
    conn.local.host = 'relay.test';
    return conn;
  }

  it('passes MAIL to the server and lets Haraka accept it', async () => {
    useHarakaDir(CFG(sink.port));
    const plugin = makePlugin('esets_forward');
    const conn = connection();
    const { rc } = await callMail(plugin, conn, 'a@example.com');
    assert.equal(rc, undefined);
    const result = conn.results.get('esets_forward');
    assert.match(String(result?.msg), /client handover XCLIENT/);
    await callHook(plugin, 'close_downstream', conn);
  });

  it("vouches for a recipient the server accepts and refuses one it refuses, with the server's code and text", async () => {
    useHarakaDir(CFG(sink.port));
    const plugin = makePlugin('esets_forward');
    const conn = connection();
    await callMail(plugin, conn, 'a@example.com');
    assert.equal((await callRcpt(plugin, conn, 'good@example.org')).rc, constants.ok);
    const refused = await callRcpt(plugin, conn, 'nobody@example.org');
    assert.equal(refused.rc, constants.deny);
    const dsn = refused.msg as { code: number; reply: string };
    assert.equal(dsn.code, 550);
    assert.equal(dsn.reply, '5.1.1 No such user here');
    await callHook(plugin, 'close_downstream', conn);
  });

  it('answers 451 at once when the server refuses connections', async () => {
    useHarakaDir(CFG(await freePort()));
    const plugin = makePlugin('esets_forward');
    const started = Date.now();
    const { rc, msg } = await callMail(plugin, connection(), 'a@example.com');
    assert.ok(Date.now() - started < 2000);
    assert.equal(rc, constants.denysoft);
    assert.equal((msg as { code: number }).code, 451);
  });

  it('refuses to load without server_addr/server_port', () => {
    useHarakaDir('[smtp]\nagent_enabled = yes\n');
    assert.throws(() => makePlugin('esets_forward'), /server_addr and server_port/);
  });
});
