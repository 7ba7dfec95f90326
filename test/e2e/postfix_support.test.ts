// The test Postfix instances (test/support/postfix.ts) end with the tests
// that start them: stop() leaves no process of the instance, and neither does
// a test process that ends without stop() (a `before` hook that timed out,
// mocha --exit) or one that was killed (the next start removes its instance).
// A master left running keeps listening and piles up run after run.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startPostfixInstance, baseMainCf } from '../support/postfix';
import { canConnect, eventually, isRunning } from '../support/processes';

const SUPPORT = path.join(__dirname, '..', 'support', 'postfix.js');

const alive = isRunning;

interface Started {
  dir: string;
  port: number;
  master: number;
  pids: number[];
}

/** A node process that starts an instance, says what it started, then `end`s: exits without stop(), or waits. */
function startInChild(end: 'exit' | 'wait'): Promise<{ child: ReturnType<typeof spawn>; started: Started }> {
  const script = `
    const { startPostfixInstance, baseMainCf } = require(${JSON.stringify(SUPPORT)});
    startPostfixInstance((dir) => baseMainCf(dir, 'orphan.test')).then((pf) => {
      process.stdout.write(JSON.stringify({ dir: pf.dir, port: pf.port, master: pf.masterPid(), pids: pf.processes() }) + '\\n');
      if (${JSON.stringify(end)} === 'exit') process.exit(0);
      setInterval(() => undefined, 1000);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ child, started: JSON.parse(out) as Started });
    });
    child.once('exit', (code) => { if (!out.includes('\n')) reject(new Error(`the child exited (${code}) before starting Postfix`)); });
  });
}

describe('test Postfix instances end with their tests', function () {
  this.timeout(60_000);

  it('stop() leaves no process of the instance (wrapper, master, its children) and nothing listening', async () => {
    const pf = await startPostfixInstance((dir) => baseMainCf(dir, 'stop.test'));
    const master = pf.masterPid();
    assert.ok(master !== undefined, 'no master');
    // the wrapper, the master, and at least qmgr and pickup (the master forks them after it listens: on a busy
    // machine a moment later)
    await eventually(() => pf.processes().length >= 4, 10_000);
    const pids = pf.processes();
    assert.ok(pids.length >= 4 && pids.includes(master), `processes: ${pids.join(' ')}`);
    await pf.stop();
    assert.deepEqual(pids.filter(alive), [], 'processes of the instance still run after stop()');
    assert.equal(await canConnect(pf.port), false, 'something still listens on the instance\'s port');
    assert.equal(fs.existsSync(pf.dir), false);
  });

  it('a test process that exits without stop() leaves no process of its instance', async () => {
    const { child, started } = await startInChild('exit');
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
    assert.ok(started.pids.includes(started.master), `processes: ${started.pids.join(' ')}`);
    assert.ok(await eventually(() => started.pids.every((p) => !alive(p))), `still running: ${started.pids.filter(alive).join(' ')}`);
    assert.equal(fs.existsSync(started.dir), false);
  });

  it('an instance whose test process was killed (SIGKILL) is stopped by the next start', async () => {
    const { child, started } = await startInChild('wait');
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once('exit', r) : r(undefined)));
    // what the exit handler cannot help: the master outlives its test process ...
    assert.ok(alive(started.master), 'the master did not outlive a killed test process (this test shows nothing)');
    // ... until the next instance starts
    const pf = await startPostfixInstance((dir) => baseMainCf(dir, 'next.test'));
    try {
      assert.ok(await eventually(() => started.pids.every((p) => !alive(p))), `still running: ${started.pids.filter(alive).join(' ')}`);
      assert.equal(fs.existsSync(started.dir), false);
      assert.ok(pf.masterPid() !== undefined);
    } finally {
      await pf.stop();
    }
  });
});
