// The README's quick start is safe on a mail host: what it installs (scripts/install-deps.sh) neither removes
// nor replaces the machine's mail transport agent, and it can run beside the services it would otherwise
// meet on its ports (QUICKSTART_*_PORT).

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { canConnect } from '../support/processes';
import { freePort, PROJECT_DIR } from '../support/relay';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const MTA = 'mail-transport-agent';

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** the quick start's Debian packages, as its install script lists them */
function quickstartPackages(): string[] {
  const out = execFileSync('bash', [path.join(PROJECT_DIR, 'scripts', 'install-deps.sh'), '--list'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l !== '');
}

interface Stanza { name: string; text: string; installed: boolean; provides: string[]; depends: string[] }

/** package names of a Depends/Provides field: alternatives, versions and architecture qualifiers dropped */
function names(field: string | undefined): string[] {
  if (!field) return [];
  return field.split(/[,|]/).map((p) => p.trim().split(/[\s:(]/)[0]).filter((n) => n !== '');
}

function field(text: string, name: string): string | undefined {
  return new RegExp(`^${name}: (.*)$`, 'm').exec(text)?.[1];
}

function readStatus(file = '/var/lib/dpkg/status'): Stanza[] {
  return fs.readFileSync(file, 'utf8').split(/\n\n+/).filter((t) => t.trim() !== '').map((text) => ({
    name: field(text, 'Package') ?? '',
    text,
    installed: /^Status: install ok installed$/m.test(text),
    provides: names(field(text, 'Provides')),
    depends: [...names(field(text, 'Depends')), ...names(field(text, 'Pre-Depends'))],
  }));
}

/** the machine's installed mail transport agents */
function installedMtas(status: Stanza[]): string[] {
  return status.filter((s) => s.installed && s.provides.includes(MTA)).map((s) => s.name);
}

/** every package the archive has that provides mail-transport-agent */
function archiveMtas(): string[] {
  const out = execFileSync('apt-cache', ['showpkg', MTA], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  const reverse = out.split(/^Reverse Provides:\s*$/m)[1] ?? '';
  return [...new Set(reverse.split('\n').map((l) => l.trim().split(' ')[0]).filter((n) => n !== ''))];
}

interface Plan { status: number | null; output: string; inst: string[]; remv: string[]; kept: string[] }

/**
 * apt-get's plan (-s: a simulation, no root needed) for installing `packages` as the quick start does, on a
 * copy of dpkg's status without them (and without the installed packages that depend on them), so that
 * apt must plan each of them and what it needs, even on a machine that has them already.
 */
function plan(packages: string[], dir: string): Plan {
  const status = readStatus();
  const dropped = new Set(packages);
  for (let grew = true; grew;) {
    grew = false;
    for (const s of status) {
      if (s.installed && !dropped.has(s.name) && s.depends.some((d) => dropped.has(d))) {
        dropped.add(s.name);
        grew = true;
      }
    }
  }
  const kept = status.filter((s) => !dropped.has(s.name));
  const copy = path.join(dir, `status-${packages.length}-${Date.now()}`);
  fs.writeFileSync(copy, kept.map((s) => s.text).join('\n\n') + '\n');
  const r = spawnSync('apt-get', ['-s', '-o', `Dir::State::status=${copy}`, 'install', '--no-install-recommends', ...packages], {
    encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' },
  });
  const output = `${r.stdout}${r.stderr}`;
  const planned = (verb: string): string[] => [...output.matchAll(new RegExp(`^${verb} (\\S+)`, 'gm'))].map((m) => m[1]);
  const keptInstalled = kept.filter((s) => s.installed).map((s) => s.name);
  return { status: r.status, output, inst: planned('Inst'), remv: planned('Remv'), kept: keptInstalled };
}

/** what is wrong with a plan for a mail host: an MTA removed, replaced or added */
function mtaTrouble(p: Plan, installed: string[], mtas: string[]): string[] {
  const trouble: string[] = [];
  if (p.status !== 0) trouble.push(`apt-get -s failed (${p.status})`);
  for (const m of installed) if (p.remv.includes(m)) trouble.push(`removes the installed MTA ${m}`);
  for (const m of p.inst) if (mtas.includes(m)) trouble.push(`installs the MTA ${m}`);
  return trouble;
}

describe('quick start: safe on a mail host', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => { dir = tempDir('esets-quickstart-'); });
  after(() => removeTempDir(dir));

  describe("scripts/install-deps.sh's packages", () => {
    let packages: string[];
    let installed: string[];
    let mtas: string[];
    before(function () {
      if (!hasCommand('apt-get') || !hasCommand('dpkg-query')) this.skip();
      packages = quickstartPackages();
      const candidate = execFileSync('apt-cache', ['policy', 'clamav-daemon'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
      assert.match(candidate, /Candidate: \d/, 'apt has no package lists here: apt-get update');
      installed = installedMtas(readStatus());
      mtas = [...new Set([...archiveMtas(), ...installed])];
    });

    it('are planned by apt without removing, replacing or adding a mail transport agent', () => {
      assert.ok(packages.length >= 4 && packages.includes('clamav-daemon'), `the list read from the script: ${packages.join(' ')}`);
      // the test machines run Postfix (scripts/install-test-deps.sh): an MTA that must stay
      assert.ok(installed.length > 0, 'no installed package provides mail-transport-agent on this machine');
      assert.ok(mtas.includes('exim4-daemon-light'), `apt knows no Exim: ${mtas.join(' ')}`);
      const p = plan(packages, dir);
      for (const m of installed) assert.ok(p.kept.includes(m), `${m} left out of the status copy`);
      for (const name of packages) assert.ok(p.inst.includes(name), `no Inst line for ${name}:\n${p.output}`);
      assert.deepEqual(mtaTrouble(p, installed, mtas), [], p.output);
      assert.deepEqual(p.remv, [], `removes packages:\n${p.output}`);
    });

    it('the same check refuses a list with Exim or Postfix in it', () => {
      const exim = mtaTrouble(plan([...packages, 'exim4'], dir), installed, mtas);
      assert.ok(exim.some((t) => /removes the installed MTA/.test(t)) && exim.some((t) => /installs the MTA exim4/.test(t)), exim.join('; '));
      const postfix = mtaTrouble(plan([...packages, 'postfix'], dir), installed, mtas);
      assert.ok(postfix.includes('installs the MTA postfix'), postfix.join('; '));
    });
  });

  describe('scripts/quickstart.sh --once on ports of its environment', () => {
    const DEFAULT_PORTS = [2525, 2526, 3310];

    it('runs end to end on them, and nothing listens on the default ports meanwhile', async function () {
      for (const port of DEFAULT_PORTS) if (await canConnect(port)) this.skip(); // something of the machine's own
      const ports: number[] = [];
      while (ports.length < 3) {
        const port = await freePort();
        if (!ports.includes(port) && !DEFAULT_PORTS.includes(port)) ports.push(port);
      }
      const [relayPort, serverPort, clamdPort] = ports;
      const runDir = path.join(dir, 'run');
      const child = spawn('bash', [path.join(PROJECT_DIR, 'scripts', 'quickstart.sh'), '--once'], {
        cwd: dir,
        detached: true,
        env: {
          ...process.env,
          QUICKSTART_SKIP_INSTALL: '1',
          QUICKSTART_RUN_DIR: runDir,
          QUICKSTART_RELAY_PORT: String(relayPort),
          QUICKSTART_SERVER_PORT: String(serverPort),
          QUICKSTART_CLAMD_PORT: String(clamdPort),
        },
      });
      let output = '';
      child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      let done = false;
      void exited.then(() => { done = true; });

      // while it runs: which ports accept connections
      const seen = new Set<number>();
      try {
        const deadline = Date.now() + 90_000;
        while (!done && Date.now() < deadline) {
          for (const port of [...DEFAULT_PORTS, ...ports]) if (await canConnect(port)) seen.add(port);
          await new Promise((r) => setTimeout(r, 25));
        }
      } finally {
        if (!done) process.kill(-(child.pid as number), 'SIGTERM');
      }
      const code = await exited;

      assert.equal(code, 0, output);
      assert.match(output, /^quick start: OK$/m);
      // none of its services was on a default port, and the run was watched while they were up
      assert.deepEqual(DEFAULT_PORTS.filter((p) => seen.has(p)), [], 'a default port accepted connections');
      for (const port of ports) assert.ok(seen.has(port), `port ${port} never seen accepting: ${[...seen].join(' ')}`);
      assert.match(output, new RegExp(`relay listening on 127\\.0\\.0\\.1:${relayPort} -> mail server 127\\.0\\.0\\.1:${serverPort}, ` +
        `clamd 127\\.0\\.0\\.1:${clamdPort}`));
      // the mail server of the quick start stored the clean message, scanned
      const mail = fs.readdirSync(path.join(runDir, 'mail'));
      assert.equal(mail.length, 1, mail.join(' '));
      assert.match(fs.readFileSync(path.join(runDir, 'mail', mail[0]), 'utf8'), /^X-Virus-Scanner: esets-relay .*; clean$/m);
    });
  });
});
