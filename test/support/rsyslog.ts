// A real syslog daemon (Debian rsyslog) listening on its own unix socket and
// writing "facility.severity tag message" lines to a file. Stopped by PID.

import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stopChild } from './processes';
import { removeTempDir, tempDir } from './temp_dirs';

export interface Rsyslog {
  socket: string;
  read(): string;
  stop(): Promise<void>;
}

export async function startRsyslog(): Promise<Rsyslog> {
  const dir = tempDir('esets-rsyslog-');
  const socket = path.join(dir, 'log.sock');
  const out = path.join(dir, 'messages');
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(conf, [
    `global(workDirectory="${dir}")`,
    'module(load="imuxsock" SysSock.Use="off")',
    `input(type="imuxsock" Socket="${socket}")`,
    'template(name="line" type="string" string="%syslogfacility-text%.%syslogseverity-text% %syslogtag%%msg%\\n")',
    `*.* action(type="omfile" file="${out}" template="line")`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslogd.pid')], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    await stopChild(child);
    removeTempDir(dir);
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (fs.existsSync(socket)) {
      return { socket, read: () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : ''), stop };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error('rsyslogd did not start');
}
