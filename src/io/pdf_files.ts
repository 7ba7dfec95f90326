// The files a PDF embeds, as a PDF reader saves them: qpdf lists the objects
// (JSON), every stream marked /EmbeddedFile or named by a file specification's
// /EF is one member, decoded by qpdf with every filter and predictor. A stream
// qpdf cannot decode fails the unpacking (the PDF is then not scanned).

import { MemberSink, runLimited, UnpackBounds, UnpackResult } from './unpack';

/** The object listing of any PDF a mail carries fits in this; a larger one is not read. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** Embedded files of one PDF read at most (clamd's MaxFiles bounds the message as a whole as well). */
const MAX_EMBEDDED = 1000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export async function pdfEmbeddedFiles(file: string, sink: MemberSink, bounds: UnpackBounds): Promise<UnpackResult> {
  let listing = '';
  const listed = await runLimited('qpdf', ['--json=2', '--json-key=qpdf', file], bounds, async (stdout) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stdout) {
      size += (chunk as Buffer).length;
      if (size > MAX_JSON_BYTES) throw new Error('the PDF has more objects than the relay reads');
      chunks.push(chunk as Buffer);
    }
    listing = Buffer.concat(chunks).toString('utf8');
    return true;
  });
  if (listed.ok !== true) return listed;
  let streams: string[];
  try {
    streams = embeddedStreams(JSON.parse(listing) as Json);
  } catch (err) {
    return { ok: false, reason: `qpdf's object listing: ${(err as Error).message}` };
  }
  if (streams.length > MAX_EMBEDDED) return { ok: false, reason: `more than ${MAX_EMBEDDED} embedded files` };
  for (const ref of streams) {
    const [num, gen] = ref.split(' ');
    const args = [`--show-object=${num},${gen}`, '--filtered-stream-data', '--decode-level=all', file];
    const result = await runLimited('qpdf', args, bounds, async (stdout) => {
      if (!sink.member(`embedded-${num}`)) return false;
      for await (const chunk of stdout) {
        if (!sink.data(chunk as Buffer)) return false;
        const room = sink.room();
        if (room) await room;
      }
      sink.memberEnd();
      return true;
    });
    if (result.ok !== true) return result;
  }
  return { ok: true };
}

/** "N G" of each stream object that is an embedded file (by /Type, or named by an /EF dictionary). */
export function embeddedStreams(listing: Json): string[] {
  const top = (listing as { qpdf?: Json }).qpdf;
  const objects = Array.isArray(top) ? (top[1] as Record<string, Json>) : undefined;
  if (!objects || typeof objects !== 'object') throw new Error('no objects');
  const found = new Set<string>();
  const refOf = (v: Json): string | undefined => (typeof v === 'string' && /^\d+ \d+ R$/.test(v) ? v.slice(0, -2) : undefined);
  const visit = (v: Json, depth: number): void => {
    if (depth > 64 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const item of v) visit(item, depth + 1);
      return;
    }
    const ef = v['/EF'];
    if (ef && typeof ef === 'object' && !Array.isArray(ef)) {
      for (const target of Object.values(ef)) {
        const ref = refOf(target);
        if (ref) found.add(ref);
      }
    }
    for (const item of Object.values(v)) visit(item, depth + 1);
  };
  for (const [key, entry] of Object.entries(objects)) {
    const m = /^obj:(\d+ \d+) R$/.exec(key);
    if (!m || !entry || typeof entry !== 'object' || Array.isArray(entry)) continue;
    const stream = entry.stream as { dict?: Record<string, Json> } | undefined;
    if (stream?.dict?.['/Type'] === '/EmbeddedFile') found.add(m[1]);
    visit(entry, 0);
  }
  // only objects that are streams can be read as files (a reference elsewhere is a broken PDF: qpdf says so)
  return [...found].filter((ref) => {
    const entry = objects[`obj:${ref} R`];
    return entry && typeof entry === 'object' && !Array.isArray(entry) && 'stream' in entry;
  });
}
