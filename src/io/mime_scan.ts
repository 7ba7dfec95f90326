// The message as its readers take it apart: walks the MIME structure
// (lib/mime_reading) over the bytes the server will get, and scans each
// decoded leaf with clamd on its own. A message some reader could read another
// way is walked again in that reading, up to MAX_READINGS; every leaf of every
// reading is scanned, once per source (the same bytes decoded the same way) and
// small ones once per distinct content; containers are opened (io/part_scans).
// Memory per message is bounded: lines are read in pieces, large parts go to
// files.

import type { Readable } from 'node:stream';
import {
  LineCutter, MimeWalker, PRIMARY_READING, Reading, STRUCTURE_TRAITS, structureKey,
} from '../lib/mime_reading';
import { PartScans, PartScanSettings } from './part_scans';

/** Structures of one message walked at most; a message readers could take apart in more ways is refused (550 5.6.0). */
export const MAX_READINGS = 32;
/** Walks of one structure at most (the first, then with the decodings and rescans it found needed). */
const MAX_WALKS_PER_STRUCTURE = 4;
/** A line longer than this is read in pieces (no boundary or header is that long). */
const MAX_PIECE_BYTES = 64 * 1024;

/** What the walk's scans need: clamd, the limits, the banned types, when to stop, when the whole message may go. */
export type MimeScanSettings = PartScanSettings;

export type MimeScanResult =
  | { kind: 'clean'; readings: number; leaves: number }
  /** `names`: each virus with the part it was found in */
  | { kind: 'infected'; names: string[] }
  /** `unsafe`: the message holds what clamd must not be given in any form (the whole message included) */
  | { kind: 'not_scanned'; reason: string; unsafe?: boolean }
  /** a part could not be written to the spool to be scanned */
  | { kind: 'spool_error'; reason: string }
  /** a structure no RFC allows, or more readings than MAX_READINGS */
  | { kind: 'malformed'; reason: string };

/**
 * Walks `read()` (the message as sent, read again for each walk) and scans its
 * leaves: first as the RFCs read it, then in each other structure a walk found
 * readers could give it; a structure is walked again when a walk found a leaf
 * other decodings read otherwise (then that leaf is decoded those ways too).
 */
export async function scanMimeLeaves(read: () => Readable, settings: MimeScanSettings): Promise<MimeScanResult> {
  const scans = new PartScans(settings);
  const seen = new Set<string>([structureKey(PRIMARY_READING)]);
  const queue: Reading[] = [PRIMARY_READING];
  let result: MimeScanResult | undefined;
  try {
    while (queue.length && !result && !scans.stopped) {
      const structure = queue.shift()!;
      for (let more = true, again = 0; more && !result && !scans.stopped && again < MAX_WALKS_PER_STRUCTURE; again++) {
        scans.walkAgain = false;
        const walker = new MimeWalker(structure, settings.limits, scans);
        await walk(read(), walker, scans);
        if (scans.stopped) break;
        if (walker.malformed) result = { kind: 'malformed', reason: walker.malformed };
        else if (walker.overLimit) result = { kind: 'not_scanned', reason: walker.overLimit };
        // a part found to need another decoding, or a part taken for one scanned before that ended elsewhere
        more = scans.walkAgain;
        for (const [trait, values] of walker.triggered) {
          if (trait === 'base64' || trait === 'qp') continue;
          for (const value of values) {
            const other = { ...structure, [trait]: value } as Reading;
            const key = structureKey(other);
            if (seen.has(key)) continue;
            seen.add(key);
            queue.push(other);
          }
        }
      }
      if (!result && seen.size > MAX_READINGS) {
        result = {
          kind: 'malformed',
          reason: `the MIME structure reads more than ${MAX_READINGS} ways (${describeReadings([...seen].slice(1))})`,
        };
      }
    }
    // every part is known: once the containers are opened, the whole message and the containers themselves may go to clamd
    if (!result && !scans.stopped) await scans.finish();
    await scans.settled();
  } finally {
    scans.stop();
  }
  if (scans.infected.length) return { kind: 'infected', names: scans.infected };
  if (scans.unsafe) return { kind: 'not_scanned', reason: scans.unsafe, unsafe: true };
  if (scans.spoolFailure) return { kind: 'spool_error', reason: scans.spoolFailure };
  if (result) return result;
  if (settings.signal.aborted) return { kind: 'not_scanned', reason: String(settings.signal.reason ?? 'transaction ended') };
  if (scans.notScanned) return { kind: 'not_scanned', reason: scans.notScanned };
  return { kind: 'clean', readings: seen.size, leaves: scans.leaves };
}

function describeReadings(keys: string[]): string {
  const traits = STRUCTURE_TRAITS;
  const primary = structureKey(PRIMARY_READING).split('/');
  const differ = new Set<string>();
  for (const key of keys) key.split('/').forEach((v, i) => { if (v !== primary[i]) differ.add(`${traits[i]}=${v}`); });
  return [...differ].join(', ');
}

/** Feeds the message to the walker line by line, waiting while clamd is behind. */
async function walk(stream: Readable, walker: MimeWalker, scans: PartScans): Promise<void> {
  const lines = new LineCutter((line, continued) => walker.line(line, continued), true, MAX_PIECE_BYTES);
  try {
    for await (const chunk of stream) {
      lines.write(chunk as Buffer);
      if (walker.done || scans.stopped) break;
      const wait = scans.wait();
      if (wait) await wait;
      if (scans.stopped) break;
    }
    if (!walker.done) lines.end();
  } finally {
    stream.destroy();
    walker.end();
  }
}

