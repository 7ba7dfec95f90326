// CPU per message of the relay's manager and of its worker, apart, under
// smtp-source load (20 sessions), with an optional V8 CPU profile of each
// process: the tool that found the manager's per-event IPC cost.
// Run: npm run build && node dist/bench/relay_profile.js
//   BENCH_DIR=/other/checkout   the relay to run (built), default this one
//   BENCH_MESSAGES (4000), BENCH_KB (2): the load
//   BENCH_PROFILE_DIR=/tmp/prof  write .cpuprofile files there (--cpu-prof)

import { execFileSync, spawn } from 'node:child_process';
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

async function main(): Promise<void> {
  const messages = Number(process.env.BENCH_MESSAGES) || 4000;
  const kb = Number(process.env.BENCH_KB) || 2;
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const clamd = await startClamd();
  const sinkPort = await freePort();
  const sink = spawn('smtp-sink', ['-u', 'root', '-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
  const port = await freePort();
  // node's flags go before the launcher's path: a shell puts them there
  const wrap = profileDir ? ['sh', '-c', 'node=$1; shift; exec "$node" --cpu-prof --cpu-prof-dir="$PROFILE_DIR" "$@"', 'sh'] : [];
  const relay = await startRelay(
    ['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sinkPort, clamdSocket: clamd.socket, smtp: { action_av: 'scan' } }))],
    port, { PROFILE_DIR: profileDir ?? '' }, wrap, process.env.BENCH_DIR ?? PROJECT_DIR,
  );
  try {
    const manager = relay.process.pid!;
    const workers = childPids(manager);
    const before = [manager, ...workers].map(cpuMs);
    const started = Date.now();
    execFileSync('smtp-source', [
      '-s', '20', '-m', String(messages), '-l', String(kb * 1024), '-f', 'a@example.com', '-t', 'b@example.org', `127.0.0.1:${port}`,
    ]);
    const seconds = (Date.now() - started) / 1000;
    const perMessage = [manager, ...workers].map((pid, i) => ((cpuMs(pid) - before[i]) / messages).toFixed(3));
    console.log(`${messages} messages of ${kb} KB in ${seconds.toFixed(1)} s (${(messages / seconds).toFixed(1)} msg/s); `
      + `CPU ms/msg: manager ${perMessage[0]}, worker(s) ${perMessage.slice(1).join(' ')}`);
  } finally {
    await relay.stop('SIGTERM'); // a clean exit writes the profiles
    sink.kill();
    await clamd.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
