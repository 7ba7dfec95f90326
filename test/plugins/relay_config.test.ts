// Loading and reloading esets.cfg and user_config: nothing a file holds, and
// no exception, takes the relay down; the configuration in force stays.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { formatDiagnostic } from '../../src/lib/diagnostics';
import { guardLoad, loadConfigFiles } from '../../src/io/config_files';
import { forgetRelayConfig, relayConfig } from '../../src/plugins/shared/relay_config';
import { fakePlugin } from '../support/fake_plugin';
import { useHarakaDir } from '../support/haraka_dir';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const ESETS = '[smtp]\nagent_enabled = yes\nserver_addr = "127.0.0.1"\nserver_port = 2526\nuser_config = "users.cfg"\n';

/** Sections [g0] .. [g<n-1>], each inheriting the next. */
function chain(n: number): string {
  return Array.from({ length: n }, (_, i) => `[g${i}]\n${i < n - 1 ? `parent_id = "g${i + 1}"` : 'action_av = reject'}\n`).join('');
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('configuration load and reload', function () {
  this.timeout(20_000);
  afterEach(() => forgetRelayConfig());

  it('turns an exception while loading into an error naming the file', () => {
    const r = guardLoad('/etc/esets.cfg', () => { throw new RangeError('Maximum call stack size exceeded'); });
    assert.equal(r.loaded, undefined);
    assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
      '/etc/esets.cfg: error: cannot load the configuration: RangeError: Maximum call stack size exceeded',
    ]);
  });

  it('refuses a user_config with a 7,000-section parent_id chain at first load: '
    + 'a ConfigError naming file, line and the bound, no stack', () => {
    const dir = useHarakaDir(ESETS);
    fs.writeFileSync(path.join(dir, 'config', 'users.cfg'), chain(7000));
    const err = (() => { try { relayConfig(fakePlugin()); } catch (e) { return e; } return undefined; })();
    assert.ok(err instanceof Error, String(err));
    assert.match(err.message, /users\.cfg:13798: error: \[g6898\] parent_id "g6899" is step 101 of a parent_id chain: at most 100 are allowed/);
    assert.doesNotMatch(err.stack ?? '', /\n\s+at /);
  });

  it('keeps the configuration in force when a live edit brings a 7,000-section chain, and takes the next good edit', async () => {
    const dir = useHarakaDir(ESETS);
    const users = path.join(dir, 'config', 'users.cfg');
    fs.writeFileSync(users, '[a.example]\naction_av_infected = defer\n');
    const plugin = fakePlugin();
    const first = relayConfig(plugin);
    fs.writeFileSync(users, `[a.example]\naction_av_infected = discard\n${chain(7000)}`);
    await until('the failed reload', () => plugin.logs.some((l) => /configuration not reloaded/.test(l.text)));
    assert.ok(plugin.logs.some((l) => l.level === 'error' && /users\.cfg:\d+: error: .*at most 100 are allowed/.test(l.text)));
    assert.equal(relayConfig(plugin), first, 'the configuration in force changed');
    fs.writeFileSync(users, '[a.example]\naction_av_infected = reject\n');
    await until('the good reload', () => relayConfig(plugin) !== first);
    assert.equal(relayConfig(plugin).users?.index.sections[0].settings.action_av_infected, 'reject');
  });

  it('logs an error of a live reload in user_config with its file:line and the esets.cfg line that names the file', async () => {
    const dir = useHarakaDir(ESETS);
    const users = path.join(dir, 'config', 'users.cfg');
    fs.writeFileSync(users, '[a.example]\naction_av_infected = defer\n');
    const plugin = fakePlugin();
    const first = relayConfig(plugin);
    const named = `(user_config, named at ${path.join(dir, 'config', 'esets.cfg')}:5)`;
    fs.writeFileSync(users, '[a.example]\naction_av_infected = sometimes\n');
    await until('the refused reload', () => plugin.logs.some((l) => /configuration not reloaded/.test(l.text)));
    assert.ok(
      plugin.logs.some((l) => l.level === 'error' && l.text === `${users}:2: error: option 'action_av_infected' `
        + `has invalid value 'sometimes': expected one of accept, defer, discard, reject ${named}`),
      plugin.logs.map((l) => l.text).join('\n'),
    );
    fs.rmSync(users);
    await until('the second refusal', () => plugin.logs.filter((l) => /configuration not reloaded/.test(l.text)).length >= 2);
    assert.ok(
      plugin.logs.some((l) => l.level === 'error'
        && l.text === `${users}: error: cannot read: ENOENT: no such file or directory, open '${users}' ${named}`),
      plugin.logs.map((l) => l.text).join('\n'),
    );
    assert.equal(relayConfig(plugin), first, 'the configuration in force changed');
  });

  it('keeps the configuration in force when esets.cfg is emptied or loses its [smtp] essentials (a truncated write)', async () => {
    const dir = useHarakaDir(ESETS);
    const esets = path.join(dir, 'config', 'esets.cfg');
    fs.writeFileSync(path.join(dir, 'config', 'users.cfg'), '[a.example]\naction_av_infected = defer\n');
    const plugin = fakePlugin();
    const first = relayConfig(plugin);
    fs.writeFileSync(esets, '');
    await until('the refused reload', () => plugin.logs.some((l) => /configuration not reloaded/.test(l.text)));
    assert.ok(plugin.logs.some((l) => l.level === 'error' && /esets\.cfg: error: .*agent_enabled/.test(l.text)), plugin.logs.map((l) => l.text).join('\n'));
    assert.equal(relayConfig(plugin), first, 'the configuration in force changed');
    fs.writeFileSync(esets, '[smtp]\nagent_enabled = yes\n');
    await until('the second refusal', () => plugin.logs.filter((l) => /configuration not reloaded/.test(l.text)).length >= 2);
    assert.ok(plugin.logs.some((l) => /option 'server_addr' is not set/.test(l.text)));
    assert.equal(relayConfig(plugin), first);
    fs.writeFileSync(esets, `${ESETS}action_av_infected = discard\n`);
    await until('the good reload', () => relayConfig(plugin) !== first);
    assert.equal(relayConfig(plugin).config.action_av_infected, 'discard');
  });

  it('keeps the configuration in force when a reload throws (here: the log itself), and logs why', async () => {
    const dir = useHarakaDir(ESETS);
    const users = path.join(dir, 'config', 'users.cfg');
    fs.writeFileSync(users, '[a.example]\naction_av_infected = defer\n');
    const plugin = fakePlugin();
    const first = relayConfig(plugin);
    plugin.logwarn = () => { throw new RangeError('Maximum call stack size exceeded'); };
    // an unknown key: a warning, so the reload calls logwarn
    fs.writeFileSync(users, '[a.example]\naction_av_infected = discard\ncolour = blue\n');
    await until('the failed reload', () => plugin.logs.some((l) => /configuration not reloaded/.test(l.text)));
    assert.match(plugin.logs.find((l) => /not reloaded/.test(l.text))!.text, /configuration not reloaded \(RangeError: Maximum call stack size exceeded\): the one in force stays/);
    assert.equal(relayConfig(plugin), first);
  });

  it("survives a watcher's error event (it would end the process without a listener)", () => {
    const dir = useHarakaDir(ESETS);
    fs.writeFileSync(path.join(dir, 'config', 'users.cfg'), '[a.example]\n');
    const watchers: fs.FSWatcher[] = [];
    const realWatch = fs.watch;
    (fs as { watch: unknown }).watch = (...args: Parameters<typeof fs.watch>) => {
      const w = realWatch(...args);
      watchers.push(w);
      return w;
    };
    const plugin = fakePlugin();
    try {
      relayConfig(plugin);
    } finally {
      (fs as { watch: unknown }).watch = realWatch;
    }
    assert.ok(watchers.length > 0);
    watchers[0].emit('error', new Error('EMFILE: too many open files, watch'));
    assert.ok(plugin.logs.some((l) => l.level === 'warn' && /stopped watching .* EMFILE/.test(l.text)));
  });
});

describe('user_config that others can change (files on disk)', () => {
  let dir: string;
  let cfg: string;
  beforeEach(() => {
    dir = tempDir('esets-trust-');
    cfg = path.join(dir, 'esets.cfg');
    fs.writeFileSync(cfg, `[smtp]\nagent_enabled = yes\n\nuser_config = "users.cfg"\n`);
  });
  afterEach(() => removeTempDir(dir));

  const warnings = (): string[] => loadConfigFiles(cfg, {}).diagnostics.map(formatDiagnostic);

  it('says nothing of a private file in a private folder', () => {
    fs.writeFileSync(path.join(dir, 'users.cfg'), '[a.example]\n', { mode: 0o644 });
    assert.deepEqual(warnings(), []);
  });

  it('warns of a world-writable file, naming it and the esets.cfg line that names it; the relay still loads it', () => {
    fs.writeFileSync(path.join(dir, 'users.cfg'), '[a.example]\n');
    fs.chmodSync(path.join(dir, 'users.cfg'), 0o666);
    const r = loadConfigFiles(cfg, {});
    assert.ok(r.loaded);
    assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
      `${cfg}:4: warning: user_config ${path.join(dir, 'users.cfg')} is world-writable (mode 0666): `
        + 'any local user can change the policy; chmod o-w it',
    ]);
  });

  it('warns of a symbolic link', () => {
    fs.writeFileSync(path.join(dir, 'real.cfg'), '[a.example]\n');
    fs.symlinkSync(path.join(dir, 'real.cfg'), path.join(dir, 'users.cfg'));
    assert.deepEqual(warnings(), [
      `${cfg}:4: warning: user_config ${path.join(dir, 'users.cfg')} is a symbolic link (to ${path.join(dir, 'real.cfg')}): `
        + 'whoever can change the link chooses the file; name the file itself',
    ]);
  });

  it('warns of a world-writable folder without the sticky bit, not with it', () => {
    fs.writeFileSync(path.join(dir, 'users.cfg'), '[a.example]\n');
    fs.chmodSync(dir, 0o777);
    assert.match(warnings().join('\n'), /:4: warning: user_config .* is in a world-writable folder without the sticky bit \(mode 0777\)/);
    fs.chmodSync(dir, 0o1777);
    assert.deepEqual(warnings(), []);
  });

  it('names the esets.cfg line when user_config cannot be read', () => {
    const [error] = warnings();
    assert.equal(error, `${path.join(dir, 'users.cfg')}: error: cannot read: ENOENT: no such file or directory, `
      + `open '${path.join(dir, 'users.cfg')}' (user_config, named at ${cfg}:4)`);
  });
});

describe('every diagnostic about user_config names the esets.cfg line that names the file', () => {
  let dir: string;
  let cfg: string;
  let users: string;
  let named: string;
  beforeEach(() => {
    dir = tempDir('esets-named-');
    cfg = path.join(dir, 'esets.cfg');
    users = path.join(dir, 'users.cfg');
    fs.writeFileSync(cfg, `[smtp]\nagent_enabled = yes\n\nuser_config = "users.cfg"\n`);
    named = `(user_config, named at ${cfg}:4)`;
  });
  afterEach(() => removeTempDir(dir));

  const load = (overrides = {}, saved?: Record<string, string>): { loaded: boolean; lines: string[] } => {
    const r = loadConfigFiles(cfg, overrides, 'command line', saved);
    return { loaded: r.loaded !== undefined, lines: r.diagnostics.map(formatDiagnostic) };
  };

  it('a directory', () => {
    fs.mkdirSync(users);
    assert.deepEqual(load(), {
      loaded: false, lines: [`${users}: error: cannot read: EISDIR: illegal operation on a directory, read ${named}`],
    });
  });

  it('a file the reader may not read (permissions): EACCES, read as nobody', function () {
    if (process.getuid?.() !== 0) this.skip();
    fs.writeFileSync(users, '[a.example]\n', { mode: 0o600 });
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(cfg, 0o644);
    const module = path.resolve(__dirname, '../../src/io/config_files.js');
    const script = `const { loadConfigFiles } = require(${JSON.stringify(module)}); `
      + `const { formatDiagnostic } = require(${JSON.stringify(path.resolve(__dirname, '../../src/lib/diagnostics.js'))});`
      + `process.stdout.write(JSON.stringify(loadConfigFiles(${JSON.stringify(cfg)}, {}).diagnostics.map(formatDiagnostic)));`;
    const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', process.execPath, '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [`${users}: error: cannot read: EACCES: permission denied, open '${users}' ${named}`]);
  });

  it('syntax errors, an invalid value, an unknown parent_id and a cycle: each at its user_config line, '
    + 'each naming the esets.cfg line', () => {
    fs.writeFileSync(users, [
      '[a.example]', 'parent_id = "nowhere"', // 1
      '[b.example', // 3
      '[c.example]', 'action_av = maybe', // 4
      '[d]', 'parent_id = "e"', '[e]', 'parent_id = "d"', // 6
    ].join('\n'));
    assert.deepEqual(load(), {
      loaded: false,
      lines: [
        `${users}:3: error: malformed section header '[b.example': expected '[name]' alone on its line; `
          + `the lines below it, up to the next section header, are not read ${named}`,
        `${users}:2: error: [a.example] parent_id "nowhere" names no section of this file ${named}`,
        `${users}:9: error: parent_id cycle: [d] -> [e] -> [d] ${named}`,
        `${users}:5: error: option 'action_av' has invalid value 'maybe': expected one of accept, scan, defer, discard, reject ${named}`,
      ],
    });
  });

  it('warnings too; what is said of esets.cfg itself gets no note', () => {
    fs.writeFileSync(cfg, '[smtp]\nagent_enabled = yes\nuser_config = "users.cfg"\ncolour = blue\n');
    fs.writeFileSync(users, '[a.example]\nshade = grey\n');
    assert.deepEqual(load(), {
      loaded: true,
      lines: [
        `${cfg}:4: warning: unknown option 'colour' in [smtp] is ignored`,
        `${users}:2: warning: unknown option 'shade' in [a.example] is ignored (user_config, named at ${cfg}:3)`,
      ],
    });
  });

  it('a user_config named on the command line says so', () => {
    const other = path.join(dir, 'other.cfg');
    assert.deepEqual(load({ user_config: other }), {
      loaded: false,
      lines: [`${other}: error: cannot read: ENOENT: no such file or directory, open '${other}' (user_config, named at command line)`],
    });
  });

  it('a saved configuration (a restarted worker) without the file', () => {
    assert.deepEqual(load({}, { [cfg]: fs.readFileSync(cfg, 'utf8') }), {
      loaded: false,
      lines: [`${users}: error: not in the saved configuration ${named}`],
    });
  });
});
