// The package installed as a Haraka operator installs it (issue 25, DESIGN
// "Packaging"): `npm pack` gives a tarball with the compiled plugins, the
// launcher, docs and example configs and nothing else; installed with npm into
// a fresh `haraka -i` folder that has its own Haraka 3.3.4 (a peer dependency:
// no second Haraka), followed by the docs' one setup command, the plugins load
// by the names the docs give (esets-relay/NAME) under that folder's `haraka -c`
// and relay clean and EICAR mail through a real clamd to a mail server;
// `haraka -c DIR -h esets-relay/NAME` shows each plugin's page; `npx esets_smtp`
// runs from the installed package.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { binCommand, harakaFolder, npm, packPackage, tarballFiles } from '../support/npm_package';
import { freePort, Relay, startListening } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const HARAKA_VERSION = '3.3.4';
const PLUGINS = ['esets_connection_limits', 'esets_forward', 'esets_hide_starttls', 'esets_policy', 'esets_status', 'esets_user_config'];

async function send(port: number, subject: string, body: string): Promise<{ code: number; text: string }> {
  const client = await SmtpTestClient.connect(port);
  await client.read();
  await client.command('EHLO client.example');
  const text = `From: <sender@example.com>\r\nTo: <user@example.org>\r\nSubject: ${subject}\r\n\r\n${body}\r\n`;
  const r = await client.send('sender@example.com', ['user@example.org'], text);
  await client.command('QUIT').catch(() => undefined);
  client.end();
  const reply = r.data ?? r.rcpts[0];
  return { code: reply.code, text: reply.lines.join(' ') };
}

describe('the npm package in an operator\'s Haraka folder', function () {
  this.timeout(300_000);
  let work: string;
  let tarball: string;
  let files: string[];
  let dir: string;
  let setupOutput: string;
  let clamd: Clamd;
  let sink: Sink;
  const started: Relay[] = [];

  before(async () => {
    work = tempDir('esets-package-');
    [clamd] = await Promise.all([startClamd(), (async () => {
      tarball = packPackage(work);
      files = tarballFiles(tarball);
      dir = path.join(work, 'mail-host');
      harakaFolder(dir, HARAKA_VERSION);
      // the docs' steps: install the package, then its one setup command
      npm(dir, ['install', tarball]);
      const setup = binCommand(dir, 'esets-relay-setup', ['.']);
      assert.equal(setup.code, 0, setup.stderr);
      setupOutput = setup.stdout;
    })()]);
    sink = new Sink();
    await sink.start();
  });

  after(async () => {
    await Promise.all(started.map((r) => r.stop('SIGKILL')));
    await Promise.all([clamd?.stop(), sink?.stop()]);
    if (work) removeTempDir(work);
  });

  it('the tarball holds the compiled plugins, the launcher, docs and example configs, and nothing else', () => {
    for (const f of [
      'package.json', 'README.md', 'LICENSE', 'bin/esets_smtp.js', 'bin/esets_relay_setup.js', 'dist/src/bin/esets_smtp.js',
      'config/esets.cfg', 'config/esets_relay.ini', 'config/plugins', 'docs/haraka_c.md', 'packaging/systemd/esets-relay.service',
      ...PLUGINS.flatMap((p) => [
        `dist/src/plugins/${p}/index.js`, `${p}/package.json`, `plugins/${p}/package.json`, `docs/plugins/${p}.md`,
      ]),
    ]) assert.ok(files.includes(f), `${f} in the tarball`);
    const stray = files.filter((f) => /^(test|bench|src|node_modules|scripts|dist\/test|dist\/bench|dist\/src\/tools)\//.test(f)
      || /\.(ts|map)$/.test(f));
    assert.deepEqual(stray, []);
    const pkgFile = path.join(dir, 'node_modules', 'esets-relay', 'package.json');
    const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as Record<string, unknown>;
    assert.equal(pkg.private, undefined, 'publishable');
    assert.equal(pkg.license, 'MIT');
    assert.deepEqual(pkg.peerDependencies, { Haraka: '^3.3.4' });
    assert.equal((pkg.dependencies as Record<string, string>).Haraka, undefined, 'Haraka is the operator\'s, not a second one');
  });

  it('installs beside the folder\'s own Haraka: one Haraka, and the setup step writes the example config and the plugin docs', () => {
    assert.equal(fs.existsSync(path.join(dir, 'node_modules', 'esets-relay', 'node_modules', 'Haraka')), false);
    const haraka = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'Haraka', 'package.json'), 'utf8')) as { version: string };
    assert.equal(haraka.version, HARAKA_VERSION);
    const written = ['config/esets.cfg', 'config/esets_relay.ini', 'config/clamd-esets-relay.conf'];
    for (const f of [...written, ...PLUGINS.map((p) => `docs/plugins/esets-relay/${p}.md`)]) {
      assert.ok(fs.existsSync(path.join(dir, f)), `${f} written by esets-relay-setup`);
    }
    // run again: the operator's edits stay
    fs.appendFileSync(path.join(dir, 'config', 'esets.cfg'), '\n# edited by the operator\n');
    const again = binCommand(dir, 'esets-relay-setup', [dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /kept \(yours\) +config\/esets\.cfg/);
    assert.match(fs.readFileSync(path.join(dir, 'config', 'esets.cfg'), 'utf8'), /# edited by the operator/);
  });

  it('haraka -c DIR -h esets-relay/NAME shows each plugin\'s page', () => {
    for (const name of PLUGINS) {
      const { stdout: out } = binCommand(dir, 'haraka', ['-c', dir, '-h', `esets-relay/${name}`], { PAGER: 'cat' });
      assert.equal(out.split('\n')[0], `# ${name}`, `the page of ${name}`);
      assert.equal(out, fs.readFileSync(path.join(dir, 'node_modules', 'esets-relay', 'docs', 'plugins', `${name}.md`), 'utf8'));
    }
  });

  it('haraka -c DIR with the plugins listed as the setup step says: clean delivered with X-Virus-Scanner, EICAR rejected', async () => {
    // config/plugins: the list esets-relay-setup printed, in its order
    const listed = setupOutput.split('\n').filter((l) => /^ {4}esets-relay\//.test(l)).map((l) => l.trim());
    assert.deepEqual(listed.map((l) => l.replace('esets-relay/', '')).sort(), PLUGINS);
    // listed by the short names (a clone's): the folder check says how the installed package's are listed
    fs.writeFileSync(path.join(dir, 'config', 'plugins'), `${PLUGINS.join('\n')}\n`);
    const short = binCommand(dir, 'esets_smtp', ['--check', '--haraka-dir', dir]);
    assert.equal(short.code, 1, short.stdout + short.stderr);
    assert.match(short.stderr, /plugin 'esets_policy' is not found: .*listed as 'esets-relay\/esets_policy'/);
    fs.writeFileSync(path.join(dir, 'config', 'plugins'), `${listed.join('\n')}\n`);
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'config', 'smtp.ini'), `[main]\nlisten=127.0.0.1:${port}\nnodes=1\n`);
    const cfgFile = path.join(dir, 'config', 'esets.cfg');
    fs.writeFileSync(cfgFile, fs.readFileSync(cfgFile, 'utf8')
      .replace(/^daemon_sock_path = .*$/m, `daemon_sock_path = "${clamd.socket}"`)
      .replace(/^server_port = .*$/m, `server_port = ${sink.port}`));

    // the folder check the docs give, from the installed package: each plugin found where Haraka will load it
    const checked = binCommand(dir, 'esets_smtp', ['--check', '--haraka-dir', dir]);
    assert.equal(checked.code, 0, checked.stderr);
    const check = checked.stdout + checked.stderr;
    for (const name of PLUGINS) assert.match(check, new RegExp(`esets-relay/${name}.*node_modules/esets-relay/${name}/package\\.json`));
    assert.match(check, /Haraka 3\.3\.4/);
    assert.match(check, /configuration OK/);
    const relay = await startListening([path.join(dir, 'node_modules', '.bin', 'haraka'), '-c', dir], dir, {}, port);
    started.push(relay);
    const clean = await send(port, `packaged clean ${process.pid}`, 'Hello through the installed package.');
    assert.equal(clean.code, 250, clean.text);
    const infected = await send(port, `packaged eicar ${process.pid}`, EICAR);
    assert.equal(infected.code, 550, infected.text);
    assert.match(infected.text, /^5\.7\.1 .*Eicar/);
    const got = sink.messages.map((m) => m.data.toString('latin1'));
    assert.equal(got.filter((m) => m.includes(`packaged clean ${process.pid}`)).length, 1);
    assert.match(got.find((m) => m.includes(`packaged clean ${process.pid}`))!, /^X-Virus-Scanner: .*clean/m);
    assert.equal(got.filter((m) => m.includes(`packaged eicar ${process.pid}`)).length, 0);
    // the Haraka in use is the folder's, said once at start
    assert.match(relay.output(), new RegExp(`Haraka 3\\.3\\.4 \\(${dir.replace(/[/.]/g, '\\$&')}/node_modules/Haraka\\) in use`));
    // the plugins log under their own names, as in every deployment
    assert.match(relay.output(), /\[esets_policy\]/);
    assert.doesNotMatch(relay.output(), /\[esets-relay\/esets_policy\]/);
    await relay.stop('SIGTERM');
  });

  it('npx esets_smtp runs from the installed package: --version, and the launcher relays', async () => {
    const { stdout: version } = binCommand(dir, 'esets_smtp', ['--version']);
    assert.match(version, new RegExp(`^esets_smtp \\(esets-relay\\) 0\\.1\\.0, Haraka ${HARAKA_VERSION.replace(/\./g, '\\.')}\\n$`));
    const port = await freePort();
    const relay = await startListening(
      [path.join(dir, 'node_modules', '.bin', 'esets_smtp'), '--config', path.join(dir, 'config', 'esets.cfg'),
        '--listen-port', String(port)],
      dir, {}, port,
    );
    started.push(relay);
    const clean = await send(port, `launcher clean ${process.pid}`, 'Hello through the installed launcher.');
    assert.equal(clean.code, 250, clean.text);
    assert.equal(sink.messages.filter((m) => m.data.toString('latin1').includes(`launcher clean ${process.pid}`)).length, 1);
    await relay.stop('SIGTERM');
  });

  it('without a Haraka beside the package (a peer dependency left out): the launcher and --check say so in one line, exit 1', () => {
    fs.renameSync(path.join(dir, 'node_modules', 'Haraka'), path.join(work, 'Haraka.away'));
    try {
      for (const args of [['--config', path.join(dir, 'config', 'esets.cfg')], ['--check']]) {
        const r = binCommand(dir, 'esets_smtp', args);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /^esets_smtp: error: no Haraka found beside .*node_modules\/esets-relay: install it there/m);
        assert.doesNotMatch(r.stderr, /\n +at /, 'no stack trace');
      }
      assert.match(binCommand(dir, 'esets_smtp', ['--version']).stdout, /, no Haraka found\n$/);
    } finally {
      fs.renameSync(path.join(work, 'Haraka.away'), path.join(dir, 'node_modules', 'Haraka'));
    }
  });
});
