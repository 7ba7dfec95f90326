// A real clamd (Debian clamav-daemon) with a signature database written here:
// EICAR by MD5 (.hdb, for the file as an attachment) and by content (.ndb,
// for EICAR anywhere in a message body), configured with the shipped snippet
// config/clamd-esets-relay.conf as operators are told to. Started in the
// foreground, stopped by PID.

import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { stopChild } from './processes';
import { tempDir } from './temp_dirs';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
/** Debian's clamav-testfiles: ClamAV's harmless test executable, packed in many formats */
export const CLAMAV_TESTFILES = '/usr/share/clamav-testfiles';
/** The clamd settings the relay needs, shipped for operators */
export const CLAMD_SNIPPET = path.resolve(__dirname, '..', '..', '..', 'config', 'clamd-esets-relay.conf');

export interface Clamd {
  socket: string;
  dir: string;
  process: ChildProcess;
  /** SIGSTOP: clamd still accepts connections (kernel backlog) but never answers */
  stall(): void;
  /** SIGKILL, as a crash: the socket file stays behind until removed */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export function writeSignatureDb(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const md5 = crypto.createHash('md5').update(EICAR).digest('hex');
  fs.writeFileSync(path.join(dir, 'esets-relay-test.hdb'), `${md5}:${EICAR.length}:Eicar-Test-Signature\n`);
  const hex = Buffer.from(EICAR).toString('hex');
  fs.writeFileSync(path.join(dir, 'esets-relay-test.ndb'), `Eicar-Test-Signature-Content:0:*:${hex}\n`);
  // clam.exe by MD5: clamd finds it inside the zip, tar.gz, mail, ... variants
  const clamExe = fs.readFileSync(path.join(CLAMAV_TESTFILES, 'clam.exe'));
  const clamMd5 = crypto.createHash('md5').update(clamExe).digest('hex');
  fs.appendFileSync(path.join(dir, 'esets-relay-test.hdb'), `${clamMd5}:${clamExe.length}:ClamAV-Test-File\n`);
}

export interface ClamdOptions {
  /**
   * TemporaryDirectory left unset, so clamd uses /tmp (a host whose clamd.conf does not set it). By default
   * it is `dir`/tmp: what clamd makes there (its YYYYMMDD_HHMMSS-scantemp.* folders) goes with `dir`.
   */
  systemTemp?: boolean;
}

/**
 * Starts clamd; with `dir`, in that folder (same socket path: a restart as the relay sees it).
 * `settings` replaces the shipped snippet (to show what happens without it).
 */
export async function startClamd(
  dir = tempDir('esets-clamd-'), keepDir = false, settings = fs.readFileSync(CLAMD_SNIPPET, 'utf8'),
  options: ClamdOptions = {},
): Promise<Clamd> {
  fs.mkdirSync(dir, { recursive: true });
  const db = path.join(dir, 'db');
  writeSignatureDb(db);
  const temp = path.join(dir, 'tmp');
  if (!options.systemTemp) fs.mkdirSync(temp, { recursive: true });
  const socket = path.join(dir, 'clamd.sock');
  const conf = path.join(dir, 'clamd.conf');
  fs.writeFileSync(conf, [
    'Foreground yes',
    'User root',
    `LocalSocket ${socket}`,
    `DatabaseDirectory ${db}`,
    `LogFile ${path.join(dir, 'clamd.log')}`,
    ...(options.systemTemp ? [] : [`TemporaryDirectory ${temp}`]),
    // limits, and the alerts that make what is beyond them "not scanned"
    settings,
  ].join('\n'));
  const child = spawn('clamd', ['-c', conf], { stdio: 'ignore' });
  const stall = (): void => { child.kill('SIGSTOP'); };
  const stop = async (): Promise<void> => {
    // a stalled (SIGSTOPped) clamd must run again to take TERM
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
    await stopChild(child);
    if (!keepDir) fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (await ping(socket)) {
      const kill = async (): Promise<void> => {
        await stopChild(child, 'SIGKILL');
        fs.rmSync(socket, { force: true });
      };
      return { socket, dir, process: child, stall, kill, stop };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error('clamd did not start within 60 s');
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    let reply = '';
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (d) => { reply += d.toString(); });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(reply.startsWith('PONG')));
  });
}
