// The files a PDF embeds, as a PDF reader saves them: qpdf lists the objects
// (JSON), every stream marked /EmbeddedFile or named by a file specification's
// /EF is one member, decoded by qpdf with every filter and predictor. A stream
// qpdf cannot decode fails the unpacking (the PDF is then not scanned).

import { MemberSink, oneMember, runLimited, UnpackBounds, UnpackResult } from './unpack';

/** The object listing of any PDF a mail carries fits in this; a larger one is not read. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** Embedded files of one PDF read at most (one qpdf run each): more is "not scanned". */
const MAX_EMBEDDED = 100;

/** qpdf's exit statuses for success: 0, and 3 (warnings: a damaged PDF it recovered, as readers do). */
const QPDF_OK = [0, 3];

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
  }, QPDF_OK);
  if (listed.ok !== true) return listed;
  let streams: { ref: string; names: string[] }[];
  try {
    streams = embeddedStreams(JSON.parse(listing) as Json);
  } catch (err) {
    return { ok: false, reason: `qpdf's object listing: ${(err as Error).message}` };
  }
  if (streams.length > MAX_EMBEDDED) return { ok: false, reason: `more than ${MAX_EMBEDDED} embedded files` };
  for (const { ref, names } of streams) {
    const [num, gen] = ref.split(' ');
    const args = [`--show-object=${num},${gen}`, '--filtered-stream-data', '--decode-level=all', file];
    const name = names[0] ?? `embedded-${num}`;
    const result = await runLimited('qpdf', args, bounds, (stdout) => oneMember(stdout, sink, name, names.slice(1)), QPDF_OK);
    if (result.ok !== true) return result;
  }
  return { ok: true };
}

/** A PDF text string as qpdf's JSON v2 writes it ("u:" text, "b:" hex bytes). */
function pdfString(v: Json | undefined): string | undefined {
  if (typeof v !== 'string') return undefined;
  if (v.startsWith('u:')) return v.slice(2);
  if (v.startsWith('b:')) return Buffer.from(v.slice(2), 'hex').toString('latin1');
  return undefined;
}

type JsonObject = { [key: string]: Json };
const isObject = (v: Json | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Each stream object that is an embedded file (by /Type, or named by a file
 * specification's /EF, given directly or by reference), with the names its
 * file specifications give it.
 */
export function embeddedStreams(listing: Json): { ref: string; names: string[] }[] {
  const top = isObject(listing) ? listing.qpdf : undefined;
  const objects = Array.isArray(top) && isObject(top[1]) ? top[1] : undefined;
  if (!objects) throw new Error('no objects');
  const valueOf = (ref: string): Json | undefined => {
    const entry = objects[`obj:${ref} R`];
    return isObject(entry) ? (entry.value ?? (isObject(entry.stream) ? entry.stream.dict : undefined)) : undefined;
  };
  const refOf = (v: Json | undefined): string | undefined => (typeof v === 'string' && /^\d+ \d+ R$/.test(v) ? v.slice(0, -2) : undefined);
  const found = new Map<string, Set<string>>();
  const add = (ref: string, names: (string | undefined)[]): void => {
    const set = found.get(ref) ?? new Set<string>();
    for (const n of names) if (n) set.add(n);
    found.set(ref, set);
  };
  const visit = (v: Json, depth: number): void => {
    if (depth > 64 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const item of v) visit(item, depth + 1);
      return;
    }
    if ('/EF' in v) {
      const ef = refOf(v['/EF']) ? valueOf(refOf(v['/EF'])!) : v['/EF'];
      const names = ['/UF', '/F', '/DOS', '/Mac', '/Unix'].map((k) => pdfString(v[k]));
      if (isObject(ef)) {
        for (const target of Object.values(ef)) {
          const ref = refOf(target);
          if (ref) add(ref, names);
        }
      }
    }
    for (const item of Object.values(v)) visit(item, depth + 1);
  };
  for (const [key, entry] of Object.entries(objects)) {
    const m = /^obj:(\d+ \d+) R$/.exec(key);
    if (!m || !isObject(entry)) continue;
    const stream = isObject(entry.stream) ? entry.stream : undefined;
    if (isObject(stream?.dict) && stream.dict['/Type'] === '/EmbeddedFile') add(m[1], []);
    visit(entry, 0);
  }
  // only objects that are streams can be read as files (a reference elsewhere is a broken PDF: qpdf says so)
  return [...found].filter(([ref]) => {
    const entry = objects[`obj:${ref} R`];
    return isObject(entry) && 'stream' in entry;
  }).map(([ref, names]) => ({ ref, names: [...names] }));
}
