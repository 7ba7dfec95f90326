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

  it('opens the server session at connect with XCLIENT, passes MAIL to the server and lets Haraka accept it', async () => {
    useHarakaDir(CFG(sink.port));
    const plugin = makePlugin('esets_forward');
    const conn = connection();
    const greeting = await callHook(plugin, 'open_session', conn);
    assert.equal(greeting.rc, constants.ok, "the server's greeting is the client's");
    assert.equal(
      (await callHook(plugin, 'forward_ehlo', conn, 'client.example')).rc, undefined, "the client's EHLO, accepted by the server",
    );
    const { rc, msg } = await callMail(plugin, conn, 'a@example.com');
    assert.equal(rc, constants.ok);
    assert.equal((msg as { code: number }).code, 250, "the server's own reply to MAIL");
    const result = conn.results.get('esets_forward');
    assert.match(String(result?.msg), /client handover XCLIENT/);
    await callHook(plugin, 'close_session', conn);
  });

  it("sets its own Haraka hook timeout above any timeout_message and its longest server step (no .timeout file)", () => {
    useHarakaDir(`${CFG(sink.port)}timeout_message = 60\n`);
    assert.equal(makePlugin('esets_forward').timeout, 590 + 30);
  });

  it("vouches for a recipient the server accepts and refuses one it refuses, with the server's code and text", async () => {
    useHarakaDir(CFG(sink.port));
    const plugin = makePlugin('esets_forward');
    const conn = connection();
    await callHook(plugin, 'open_session', conn);
    await callHook(plugin, 'forward_ehlo', conn, 'client.example');
    await callMail(plugin, conn, 'a@example.com');
    assert.equal((await callRcpt(plugin, conn, 'good@example.org')).rc, constants.ok);
    const refused = await callRcpt(plugin, conn, 'nobody@example.org');
    assert.equal(refused.rc, constants.deny);
    const dsn = refused.msg as { code: number; reply: string[] };
    assert.equal(dsn.code, 550);
    assert.deepEqual(dsn.reply, ['5.1.1 No such user here'], "the server's lines, exactly");
    await callHook(plugin, 'close_session', conn);
  });

  it('answers 421 at connect, at once, when the server refuses connections', async () => {
    useHarakaDir(CFG(await freePort()));
    const plugin = makePlugin('esets_forward');
    const started = Date.now();
    const { rc, msg } = await callHook(plugin, 'open_session', connection());
    assert.ok(Date.now() - started < 2000);
    assert.equal(rc, constants.denysoftdisconnect);
    assert.equal((msg as { code: number }).code, 421);
  });

  it('refuses to load without server_addr/server_port', () => {
    useHarakaDir('[smtp]\nagent_enabled = yes\n');
    assert.throws(() => makePlugin('esets_forward'), /server_addr and server_port/);
  });
});
