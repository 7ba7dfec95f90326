// Under systemd, with stdout and stderr connected to the journal (journald
// sets JOURNAL_STREAM), each record written gets its syslog priority as a
// `<N>` prefix (lib/journal), so the journal's priorities are Haraka's levels.

import { journalRecord } from '../lib/journal';

type Write = (chunk: unknown, ...rest: unknown[]) => boolean;

export function journalOutput(): void {
  if (!process.env.JOURNAL_STREAM) return;
  for (const [stream, fallback] of [[process.stdout, 6], [process.stderr, 3]] as const) {
    const write = stream.write.bind(stream) as Write;
    const prefixed: Write = (chunk, ...rest) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString() : undefined;
      return write(text === undefined ? chunk : journalRecord(text, fallback), ...rest);
    };
    stream.write = prefixed as typeof stream.write;
  }
}
