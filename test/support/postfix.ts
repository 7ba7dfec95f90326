// A private Postfix instance as a real SMTP client that queues and retries:
// it accepts mail on a loopback port and relays everything to relayPort,
// retrying deferred recipients every second or two. Runs in the foreground
// (postfix start-fg) and is stopped by PID.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canConnect, stopChild } from './processes';
import { freePort } from './relay';

export interface Postfix {
  port: number;
  log(): string;
  stop(): Promise<void>;
}

const SERVICES = [
  'pickup unix n - n 60 1 pickup',
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'flush unix n - n 1000? 0 flush',
  'proxymap unix - - n - - proxymap',
  'smtp unix - - n - - smtp',
  'relay unix - - n - - smtp',
  'showq unix n - n - - showq',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'local unix - n n - - local',
  'anvil unix - - n - 1 anvil',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
];

export async function startPostfix(relayPort: number): Promise<Postfix> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esets-postfix-'));
  fs.chmodSync(dir, 0o755);
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(etc);
  const port = await freePort();
  const maillog = path.join(dir, 'maillog');
  fs.writeFileSync(path.join(etc, 'main.cf'), [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    'myhostname = client.test',
    'mydomain = client.test',
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'mydestination =',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    `relayhost = [127.0.0.1]:${relayPort}`,
    'smtp_dns_support_level = disabled',
    'smtp_tls_security_level = none',
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    `maillog_file = ${maillog}`,
    `maillog_file_prefixes = ${dir}`,
    '',
  ].join('\n'));
  fs.writeFileSync(path.join(etc, 'master.cf'), [`127.0.0.1:${port} inet n - n - - smtpd`, ...SERVICES, ''].join('\n'));
  fs.mkdirSync(path.join(dir, 'queue'));
  fs.mkdirSync(path.join(dir, 'data'));
  execFileSync('chown', ['postfix', path.join(dir, 'data')]);
  // creates the queue's subdirectories with Postfix's owners and modes
  execFileSync('postfix', ['-c', etc, 'check'], { stdio: 'ignore' });
  const child: ChildProcess = spawn('postfix', ['-c', etc, 'start-fg'], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    await stopChild(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const log = (): string => (fs.existsSync(maillog) ? fs.readFileSync(maillog, 'utf8') : '');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await canConnect(port)) return { port, log, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`postfix did not start:\n${log()}`);
}
