// Measures what a Node process really holds: a V8 heap snapshot (taken on a
// signal, after a full garbage collection) summed over its live objects.
// RSS alone cannot tell a leak from heap pages V8 has not handed back yet.

import fs from 'node:fs';
import path from 'node:path';

/** Node options that make a process write a heap snapshot into `dir` on SIGUSR2. */
export function heapSnapshotOptions(dir: string): string {
  return `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`;
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[] } };
  nodes: number[];
}

/** Sum of the self sizes of every live object in a snapshot, in MB. */
export function liveHeapMb(snapshot: HeapSnapshot): number {
  const fields = snapshot.snapshot.meta.node_fields;
  const stride = fields.length;
  const selfSize = fields.indexOf('self_size');
  let total = 0;
  for (let i = selfSize; i < snapshot.nodes.length; i += stride) total += snapshot.nodes[i];
  return total / 1048576;
}

/** Asks `pid` for a heap snapshot (written in `dir`), reads it, deletes it; MB of live objects. */
export async function takeLiveHeapMb(pid: number, dir: string, timeoutMs = 60_000): Promise<number> {
  const before = new Set(fs.readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && f.includes(`.${pid}.`) && !before.has(f));
    if (!file) continue;
    const full = path.join(dir, file);
    let parsed: HeapSnapshot;
    try {
      parsed = JSON.parse(fs.readFileSync(full, 'utf8')) as HeapSnapshot;
    } catch {
      continue; // still being written
    }
    fs.rmSync(full);
    return liveHeapMb(parsed);
  }
  throw new Error(`no heap snapshot from ${pid} within ${timeoutMs} ms`);
}
