// Opens a container the relay reads itself (lib/content_formats row "relay")
// with a Debian tool run as a subprocess under limits: libarchive's bsdtar (an
// archive, its members handed back as one GNU tar on stdout) or bsdcat (one
// compressed stream), qpdf (a PDF's embedded files). The tool writes no file
// (RLIMIT_FSIZE 0): members stream back and the caller counts what arrives
// (clamd's MaxFileSize, MaxScanSize, MaxFiles) and stops the tool past a limit.

import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Opener } from '../lib/content_formats';
import { TarReader } from '../lib/tar_reader';

/** What a member's bytes go to; `false` from `member` stops the unpacking (a limit was reached). */
export interface MemberSink {
  /** `aliases`: other names the container gives the member (a PDF file specification's /UF and /F) */
  member(name: string, aliases?: string[]): boolean;
  data(bytes: Buffer): boolean;
  memberEnd(): void;
  /** resolves when the consumer has room for more (scans waiting) */
  room(): Promise<void> | undefined;
}

export interface UnpackBounds {
  /** wall time for the whole unpacking */
  timeoutMs: number;
  /** address space of the tool (decompressors allocate their dictionary) */
  memoryBytes: number;
  signal: AbortSignal;
}

export type UnpackResult = { ok: true } | { ok: false; reason: string } | { ok: 'stopped' };

const TOOL: Record<Exclude<Opener, 'pdf'>, string> = { archive: 'bsdtar', stream: 'bsdcat' };
/** stderr kept for the reason a tool gives */
const STDERR_BYTES = 2048;

/** Runs a tool under CPU, memory, file-size and time limits; its stdout is read by `read`. */
/** `okExit`: the exit statuses that mean success (qpdf says 3 for "done, with warnings": a damaged PDF it recovered). */
export async function runLimited(
  command: string, args: string[], bounds: UnpackBounds, read: (stdout: Readable) => Promise<boolean>, okExit: readonly number[] = [0],
): Promise<UnpackResult> {
  const cpu = Math.max(1, Math.ceil(bounds.timeoutMs / 1000));
  const child = spawn('prlimit', [
    `--as=${bounds.memoryBytes}`, `--cpu=${cpu}`, '--fsize=0', '--core=0', '--nofile=64', '--', command, ...args,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < STDERR_BYTES) stderr += d.toString('utf8'); });
  let killedFor: string | undefined;
  const kill = (why: string): void => {
    killedFor ??= why;
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => kill(`${command} ran over ${bounds.timeoutMs} ms`), bounds.timeoutMs);
  const onAbort = (): void => kill('stopped');
  bounds.signal.addEventListener('abort', onAbort, { once: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let complete = false;
  try {
    complete = await read(child.stdout);
    if (!complete) kill('stopped');
  } catch (err) {
    kill(`reading ${command}'s output: ${(err as Error).message}`);
  } finally {
    child.stdout.destroy();
  }
  const end = await exited;
  clearTimeout(timer);
  bounds.signal.removeEventListener('abort', onAbort);
  if (killedFor === 'stopped' || bounds.signal.aborted) return { ok: 'stopped' };
  if (killedFor) return { ok: false, reason: killedFor };
  if (end.error) return { ok: false, reason: `${command}: ${end.error.message}` };
  if (end.signal) return { ok: false, reason: `${command} ended by ${end.signal}${end.signal === 'SIGXCPU' ? ' (CPU limit)' : ''}` };
  if (end.code === null || !okExit.includes(end.code)) {
    return { ok: false, reason: `${command}: ${firstLine(stderr) || `exit status ${end.code}`}` };
  }
  if (!complete) return { ok: false, reason: `${command}'s output ended early` };
  return { ok: true };
}

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find(Boolean)?.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) ?? '';
}

/** A tool's whole output as one member named `name`; false when the sink stopped it. */
export async function oneMember(stdout: Readable, sink: MemberSink, name: string, aliases?: string[]): Promise<boolean> {
  if (!sink.member(name, aliases)) return false;
  for await (const chunk of stdout) {
    if (!sink.data(chunk as Buffer)) return false;
    const room = sink.room();
    if (room) await room;
  }
  sink.memberEnd();
  return true;
}

/** Hands each member of the archive or compressed stream in `file` to `sink`, as libarchive reads it (io/pdf_files reads PDFs). */
export async function unpack(file: string, opener: Exclude<Opener, 'pdf'>, sink: MemberSink, bounds: UnpackBounds): Promise<UnpackResult> {
  if (opener === 'stream') {
    return runLimited(TOOL.stream, [file], bounds, (stdout) => oneMember(stdout, sink, ''));
  }
  return runLimited(TOOL.archive, ['-c', '-f', '-', '--format', 'gnutar', `@${file}`], bounds, async (stdout) => {
    let stop = false;
    const tar = new TarReader({
      member: (name) => { if (!stop && !sink.member(name)) stop = true; },
      data: (bytes) => { if (!stop && !sink.data(bytes)) stop = true; },
      memberEnd: () => { if (!stop) sink.memberEnd(); },
    });
    for await (const chunk of stdout) {
      tar.write(chunk as Buffer);
      if (stop) return false;
      if (tar.error) throw new Error(tar.error);
      const room = sink.room();
      if (room) await room;
    }
    tar.end();
    if (tar.error) throw new Error(tar.error);
    return true;
  });
}
