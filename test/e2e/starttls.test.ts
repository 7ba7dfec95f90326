// STARTTLS is never offered nor accepted, even with Haraka's tls plugin
// loaded and a certificate in place (esets_smtp(1): the relay hides it).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { esetsCfg, freePort, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { tempDir } from '../support/temp_dirs';

/** A copy of config/ with the tls plugin first and a self-signed certificate. */
function harakaConfigWithTls(withHiding: boolean): string {
  const dir = tempDir('esets-tls-config-');
  fs.cpSync(path.join(PROJECT_DIR, 'config'), dir, { recursive: true });
  let plugins = fs.readFileSync(path.join(dir, 'plugins'), 'utf8');
  if (!withHiding) plugins = plugins.replace(/^esets_hide_starttls$/m, '');
  fs.writeFileSync(path.join(dir, 'plugins'), `tls\n${plugins}`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=relay.test',
    '-keyout', path.join(dir, 'tls_key.pem'), '-out', path.join(dir, 'tls_cert.pem'),
  ], { stdio: 'ignore' });
  // config/tls.ini names no key or certificate (the relay needs none): name them, as its comment says
  fs.writeFileSync(path.join(dir, 'tls.ini'), fs.readFileSync(path.join(dir, 'tls.ini'), 'utf8').replace(/^key=$/m, 'key=tls_key.pem').replace(/^cert=$/m, 'cert=tls_cert.pem'));
  return dir;
}

describe('STARTTLS suppression (with the tls plugin loaded)', function () {
  this.timeout(60_000);
  let sink: Sink;

  before(async () => {
    sink = new Sink();
    await sink.start();
  });
  after(() => sink.stop());

  async function relayWith(configDir: string): Promise<Relay> {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, smtp: { action_av: 'accept' } }));
    return startRelay(['--config', cfg, '--haraka-config', configDir], port);
  }

  it('control: without esets_hide_starttls the same setup has a working tls plugin (it takes STARTTLS)', async () => {
    const relay = await relayWith(harakaConfigWithTls(false));
    try {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      const ehlo = await client.command('EHLO client.example');
      // the EHLO reply is the mail server's (esets_forward mirrors it), which has no STARTTLS here ...
      assert.ok(!ehlo.lines.includes('STARTTLS'), ehlo.lines.join('|'));
      // ... but Haraka's tls plugin is loaded and would start TLS
      const starttls = await client.command('STARTTLS');
      client.destroy();
      assert.equal(starttls.code, 220, starttls.lines.join('|'));
    } finally {
      await relay.stop();
    }
  });

  it('never advertises STARTTLS, answers STARTTLS with 5xx and the session goes on in plain text', async () => {
    const relay = await relayWith(harakaConfigWithTls(true));
    try {
      const client = await SmtpTestClient.connect(relay.port);
      assert.equal((await client.read()).code, 220);
      const ehlo = await client.command('EHLO client.example');
      assert.equal(ehlo.code, 250);
      assert.ok(!ehlo.lines.some((l) => /^(STARTTLS|CHUNKING|BINARYMIME)\b/i.test(l)), ehlo.lines.join('|'));
      const starttls = await client.command('STARTTLS');
      assert.equal(starttls.code, 502);
      assert.match(starttls.lines[0], /^5\.5\.1 STARTTLS not supported/);
      // still plain text: a whole transaction works on the same connection
      const r = await client.send('a@example.com', ['b@example.org'], 'Subject: plain\r\n\r\nstill plain\r\n');
      client.end();
      assert.equal(r.data?.code, 250);
      assert.ok(sink.messages.some((m) => m.data.toString().includes('still plain')));
    } finally {
      await relay.stop();
    }
  });

  it('refuses BDAT (CHUNKING is not offered)', async () => {
    const relay = await relayWith(harakaConfigWithTls(true));
    try {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const bdat = await client.command('BDAT 10 LAST');
      client.end();
      assert.equal(bdat.code, 502);
    } finally {
      await relay.stop();
    }
  });
});
