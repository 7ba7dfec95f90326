import assert from 'node:assert/strict';
import { callHook, makeConnection, makePlugin } from 'haraka-test-fixtures';
import constants from 'haraka-constants';

describe('esets_hide_starttls plugin', () => {
  const plugin = makePlugin('esets_hide_starttls');

  it('hooks capabilities last and unrecognized_command first', () => {
    assert.deepEqual(plugin.hooks.capabilities, ['hide_extensions']);
    assert.deepEqual(plugin.hooks.unrecognized_command, ['refuse_verbs']);
  });

  it('removes STARTTLS, CHUNKING and BINARYMIME from the EHLO capabilities and un-advertises TLS', async () => {
    const conn = makeConnection();
    conn.capabilities = ['PIPELINING', 'STARTTLS', '8BITMIME', 'CHUNKING', 'BINARYMIME', 'SIZE 1000'];
    conn.tls.advertised = true;
    const { rc } = await callHook(plugin, 'hide_extensions', conn);
    assert.equal(rc, undefined);
    assert.deepEqual(conn.capabilities, ['PIPELINING', '8BITMIME', 'SIZE 1000']);
    assert.equal(conn.tls.advertised, false);
  });

  it('refuses STARTTLS and BDAT with 502 5.5.1', async () => {
    for (const verb of ['STARTTLS', 'starttls', 'BDAT']) {
      const conn = makeConnection();
      const { rc, msg } = await callHook(plugin, 'refuse_verbs', conn, [verb, '']);
      assert.equal(rc, constants.deny, verb);
      assert.equal((msg as { code: number }).code, 502);
      assert.equal(String(msg), `5.5.1 ${verb.toUpperCase()} not supported (trace ${conn.uuid})`);
    }
  });

  it('leaves other unrecognised commands to Haraka', async () => {
    const { rc } = await callHook(plugin, 'refuse_verbs', makeConnection(), ['XYZZY', '']);
    assert.equal(rc, undefined);
  });
});
