// The systemd units in packaging/systemd, checked with systemd's own tools:
// systemd-analyze verify (no warning), the sandbox scored with
// systemd-analyze security --offline=yes (the recommended unprivileged unit at
// 2.5 or less), a configuration the launcher refuses not restarted (78), the
// start limit sized so that other failing starts stop, and ExecReload run as
// systemd would run it.
// Where systemd is not the running init (no /run/systemd/system, as in a
// container), nothing is started under systemd: the titles say so.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { eventually } from '../support/processes';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { esetsCfg, EXIT_CONFIG, freePort, LAUNCHER, PROJECT_DIR, runLauncher, writeEsetsCfg } from '../support/relay';
import { tempDir } from '../support/temp_dirs';

const DIR = path.join(PROJECT_DIR, 'packaging', 'systemd');
const USER_UNIT = 'esets-relay-user.service';
const ROOT_UNIT = 'esets-relay.service';
/** where the units say the package is installed, and its configuration */
const INSTALLED = '/opt/esets-relay';
const CONFIG = '/etc/esets/esets.cfg';
const SYSTEMD_RUNS = fs.existsSync('/run/systemd/system');
const OFFLINE = SYSTEMD_RUNS ? '' : ' (systemd is not running here: checked offline, nothing started under systemd)';

/** A unit file's settings: section → key → values in order (a key may be given more than once). */
function readUnit(unit: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of fs.readFileSync(path.join(DIR, unit), 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      sections.set(header[1], section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `${unit}: a line outside a section or without '=': ${line}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

function setting(unit: string, section: string, key: string): string | undefined {
  return readUnit(unit).get(section)?.get(key)?.at(-1);
}

/** A time span as systemd reads it, in seconds (plain seconds, or with s/min/h units). */
function seconds(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  let total = 0;
  for (const [, n, unit] of value.matchAll(/(\d+(?:\.\d+)?)\s*(h|min|m|s|)/g)) {
    total += Number(n) * ({ h: 3600, min: 60, m: 60, s: 1, '': 1 } as Record<string, number>)[unit];
  }
  return total;
}

/** The unit's exposure level by `systemd-analyze security --offline=yes`, and the whole report. */
function exposure(unit: string): { score: number; report: string } {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', path.join(DIR, unit)], { encoding: 'utf8' });
  const report = `${r.stdout}${r.stderr}`;
  const m = new RegExp(`Overall exposure level for ${unit.replace(/\./g, '\\.')}: (\\d+\\.\\d) `).exec(report);
  assert.ok(m, `no exposure level for ${unit}:\n${report}`);
  return { score: Number(m[1]), report };
}

/** The unit file's header line that records its score. */
function headerSays(score: number): RegExp {
  return new RegExp(`^# systemd-analyze security --offline=yes: ${score.toFixed(1)} `, 'm');
}

interface StartLimit {
  intervalSec: number;
  burst: number;
  restartSec: number;
}

/** The unit's start limit and restart delay, systemd's defaults where it sets none. */
function startLimitOf(unit: string): StartLimit {
  return {
    intervalSec: seconds(setting(unit, 'Unit', 'StartLimitIntervalSec'), 10), // DefaultStartLimitIntervalSec
    burst: Number(setting(unit, 'Unit', 'StartLimitBurst') ?? 5), // DefaultStartLimitBurst
    restartSec: seconds(setting(unit, 'Service', 'RestartSec'), 0.1),
  };
}

/**
 * Whether the start limit stops a unit whose every start fails after `failSeconds`:
 * with Restart=, start n+1 comes (RestartSec + failSeconds) after start n, and the
 * (StartLimitBurst + 1)-th start within StartLimitIntervalSec is refused.
 */
function startLimitTrips(limit: StartLimit, failSeconds: number): boolean {
  return limit.burst * (limit.restartSec + failSeconds) < limit.intervalSec;
}

/** A command line of the unit as this checkout runs it: the package, node, the configuration and $MAINPID substituted. */
function commandHere(line: string, cfg: string, mainPid: number): string[] {
  return line.split(/\s+/).map((word) => word
    .replace(/^\/usr\/bin\/node$/, process.execPath)
    .replace(INSTALLED, PROJECT_DIR)
    .replace(CONFIG, cfg)
    .replace('$MAINPID', String(mainPid)));
}

function run(command: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d.toString(); });
    child.stderr.on('data', (d) => { output += d.toString(); });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe(`systemd units${OFFLINE}`, function () {
  this.timeout(60_000);

  for (const unit of [USER_UNIT, ROOT_UNIT]) {
    it(`${unit}: systemd-analyze verify passes without a warning; its commands name this package's launcher and exist`, () => {
      const r = spawnSync('systemd-analyze', ['verify', path.join(DIR, unit)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${unit}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.trim(), '', `${unit}: ${r.stderr}`);
      const service = readUnit(unit).get('Service')!;
      const launcher = `${INSTALLED}/${(JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, 'package.json'), 'utf8')) as {
        bin: Record<string, string>;
      }).bin.esets_smtp}`;
      assert.deepEqual(service.get('ExecStart'), [`/usr/bin/node ${launcher} --config ${CONFIG}`]);
      for (const line of [...service.get('ExecStart')!, ...(service.get('ExecReload') ?? [])]) {
        const [program, ...args] = line.split(/\s+/);
        assert.ok(fs.existsSync(program), `${unit}: ${program} does not exist`);
        for (const arg of args.filter((a) => a.startsWith(INSTALLED))) {
          assert.ok(fs.existsSync(arg.replace(INSTALLED, PROJECT_DIR)), `${unit}: ${arg} is not in the package`);
        }
      }
    });
  }

  it(`${USER_UNIT} (the recommended one): systemd-analyze security --offline=yes rates it 2.5 or less, as its header says`, () => {
    const { score, report } = exposure(USER_UNIT);
    assert.ok(score <= 2.5, `exposure ${score}:\n${report}`);
    assert.match(fs.readFileSync(path.join(DIR, USER_UNIT), 'utf8'), headerSays(score));
    // without root: no user namespace of its own (CAP_NET_BIND_SERVICE would not reach the host's network)
    assert.equal(setting(USER_UNIT, 'Service', 'User'), 'esets');
    assert.equal(setting(USER_UNIT, 'Service', 'CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
    assert.equal(setting(USER_UNIT, 'Service', 'PrivateUsers'), undefined);
  });

  it(`${ROOT_UNIT}: systemd-analyze security --offline=yes rates it 2.7 or less (it keeps root's user), as its header says`, () => {
    const { score, report } = exposure(ROOT_UNIT);
    assert.ok(score <= 2.7, `exposure ${score}:\n${report}`);
    assert.match(fs.readFileSync(path.join(DIR, ROOT_UNIT), 'utf8'), headerSays(score));
  });

  it('neither unit sets MemoryDenyWriteExecute=yes (V8 compiles to machine code) nor ProcSubset=pid (it hides /proc/stat)', () => {
    for (const unit of [USER_UNIT, ROOT_UNIT]) {
      assert.notEqual(setting(unit, 'Service', 'MemoryDenyWriteExecute'), 'yes', unit);
      assert.notEqual(setting(unit, 'Service', 'ProcSubset'), 'pid', unit);
      assert.equal(setting(unit, 'Service', 'PrivateTmp'), 'yes', unit);
      assert.equal(setting(unit, 'Service', 'LogsDirectory'), 'esets-relay', unit);
      // the quarantine's default folder (/var/lib/esets-relay/quarantine) is writable under ProtectSystem=strict
      assert.equal(setting(unit, 'Service', 'StateDirectory'), 'esets-relay', unit);
    }
  });

  it(`a configuration the launcher refuses is not restarted (78); a start failing otherwise stops at the start limit${OFFLINE}`,
    async () => {
    // a configuration error: exit 78, which the units do not restart
    const cfg = writeEsetsCfg('[smtp]\nagent_enabled = yes\nlisten_port = 25x\n');
    const refused = await runLauncher(['--config', cfg]);
    assert.equal(refused.code, EXIT_CONFIG, refused.stderr);
    assert.match(refused.stderr, /esets_smtp: not started/);
    // another failure: the port taken (by the test), exit 1, restarted until the start limit
    const port = await freePort();
    const taken = net.createServer().listen(port, '127.0.0.1');
    await once(taken, 'listening');
    let failSeconds: number;
    try {
      const started = process.hrtime.bigint();
      const busy = await runLauncher(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: 1 }))]);
      failSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      assert.equal(busy.code, 1, busy.stderr);
      assert.match(busy.stderr, /the address is in use/);
    } finally {
      taken.close();
    }
    // systemd's defaults (5 starts in 10 s) never trip against RestartSec=10 (the units before): the arithmetic can fail
    assert.equal(startLimitTrips({ intervalSec: 10, burst: 5, restartSec: 10 }, failSeconds), false);
    for (const unit of [USER_UNIT, ROOT_UNIT]) {
      assert.equal(setting(unit, 'Service', 'Restart'), 'on-failure', unit);
      const prevent = (setting(unit, 'Service', 'RestartPreventExitStatus') ?? '').split(/\s+/);
      assert.ok(prevent.includes(String(EXIT_CONFIG)), `${unit}: a configuration error is restarted`);
      // exit 1 is restarted (a listener not bound yet may be a transient failure)...
      assert.ok(!prevent.includes('1'), unit);
      // ...until the limit: with a start that takes 10 times as long as here
      const limit = startLimitOf(unit);
      assert.ok(startLimitTrips(limit, 10 * failSeconds), `${unit}: ${JSON.stringify(limit)}: no trip (a start fails in ${failSeconds} s)`);
      // in [Unit]: systemd reads StartLimit* there
      assert.equal(readUnit(unit).get('Service')?.has('StartLimitIntervalSec'), false, unit);
    }
  });

  it(`${USER_UNIT}: ExecReload as systemd runs it (--check, then HUP): a broken edit fails the reload and the relay keeps serving; `
    + `a good one is read again and log_file reopened${OFFLINE}`, async function () {
    const port = await freePort();
    const dir = tempDir('esets-reload-');
    const log = path.join(dir, 'relay.log');
    const sink = new Sink();
    await sink.start();
    const good = esetsCfg(port, { serverPort: sink.port, smtp: { log_file: `"${log}"` } });
    const cfg = writeEsetsCfg(good);
    const child = spawn(process.execPath, [LAUNCHER, '--config', cfg], { cwd: PROJECT_DIR, stdio: 'ignore' });
    const read = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
    const reload = async (): Promise<{ code: number | null; output: string }> => {
      for (const line of readUnit(USER_UNIT).get('Service')!.get('ExecReload')!) {
        const r = await run(commandHere(line, cfg, child.pid!));
        if (r.code !== 0) return r; // systemd stops at the first command that fails
      }
      return { code: 0, output: '' };
    };
    try {
      assert.ok(await eventually(() => /listening on/i.test(read(log)), 20_000), read(log));
      fs.writeFileSync(cfg, good.replace(/^listen_port = .*$/m, 'listen_port = 25x'));
      const broken = await reload();
      assert.equal(broken.code, 1, broken.output);
      assert.match(broken.output, /listen_port' has invalid value '25x'/);
      assert.equal(child.exitCode, null, 'the relay stopped');
      const client = await SmtpTestClient.connect(port);
      assert.equal((await client.read()).code, 220, 'the relay does not greet');
      client.end();
      fs.writeFileSync(cfg, good);
      fs.renameSync(log, `${log}.1`);
      const ok = await reload();
      assert.equal(ok.code, 0, ok.output);
      assert.ok(await eventually(() => fs.existsSync(log), 5_000), 'HUP did not reopen log_file');
      // and read the configuration again, as a live edit does
      assert.ok(await eventually(() => /configuration reloaded at HUP/.test(read(log)), 5_000), read(log));
    } finally {
      child.kill('SIGUSR1');
      await sink.stop();
    }
  });
});
