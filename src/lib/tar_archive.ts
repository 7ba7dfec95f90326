// A POSIX ustar archive of small files, built in memory: many small MIME parts
// go to clamd as one archive (clamd opens it and scans each member as a file of
// its own, ScanArchive) instead of one connection per part.

const BLOCK = 512;

export interface TarMember {
  /** ASCII, cut to 99 bytes */
  name: string;
  data: Buffer;
}

export function tarOf(members: readonly TarMember[]): Buffer {
  const pieces: Buffer[] = [];
  for (const m of members) {
    pieces.push(header(m.name, m.data.length), m.data);
    const pad = (BLOCK - (m.data.length % BLOCK)) % BLOCK;
    if (pad) pieces.push(Buffer.alloc(pad));
  }
  pieces.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(pieces);
}

function header(name: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.replace(/[^\x21-\x7e]/g, '_').slice(0, 99), 0, 'latin1');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write('0', 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}
