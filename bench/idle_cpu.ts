// CPU of the relay's manager and worker while no mail flows (what the
// process metrics' event loop sampling costs, among the rest): the launcher
// with a real clamd, 5 s to settle, then CPU over 20 s from /proc/PID/stat.
// Run: npm run build && node dist/bench/idle_cpu.js
//   BENCH_DIR=/other/checkout   the relay to run (built), default this one

import fs from 'node:fs';
import { startClamd } from '../test/support/clamd';
import { childPids } from '../test/support/processes';
import { esetsCfg, freePort, PROJECT_DIR, startRelay, writeEsetsCfg } from '../test/support/relay';

/** user + system CPU of one process, ms (USER_HZ = 100) */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const clamd = await startClamd();
  const port = await freePort();
  const relay = await startRelay(
    ['--config', writeEsetsCfg(esetsCfg(port, { serverPort: await freePort(), clamdSocket: clamd.socket }))],
    port, {}, [], process.env.BENCH_DIR ?? PROJECT_DIR,
  );
  try {
    await pause(5_000);
    const pids = [relay.process.pid!, ...childPids(relay.process.pid!)];
    const before = pids.map(cpuMs);
    await pause(20_000);
    const perSecond = pids.map((pid, i) => ((cpuMs(pid) - before[i]) / 20).toFixed(2));
    console.log(`idle CPU ms/s: manager ${perSecond[0]}, worker(s) ${perSecond.slice(1).join(' ')}`);
  } finally {
    await relay.stop('SIGTERM');
    await clamd.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
