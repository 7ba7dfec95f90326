// What a decoded part or archive member is, by its bytes (never by its name or
// Content-Type: both are the sender's word), and who opens it: the one table
// of container and compression formats (docs/containers.md shows it).
//   clamd: clamd opens it itself; the relay sends it whole, nothing more.
//   relay: the relay opens it (lib: how) and scans every member, recursively.
//   none:  nobody here opens it: "not scanned", never clean.
// A format marked `unsafe` is sent to clamd in no form (clamd's reader of it
// writes unbounded temporary files): a message holding it is not scanned.

/** How the relay opens a format of row `relay`. */
export type Opener =
  /** an archive of members, read from a file by libarchive (bsdtar), members streamed back as a tar */
  | 'archive'
  /** one compressed stream, decompressed by libarchive (bsdcat): one member */
  | 'stream'
  /** the files embedded in a PDF, extracted by qpdf with every filter decoded */
  | 'pdf';

export type FormatRow = 'clamd' | 'relay' | 'none';

export interface ContentFormat {
  /** short name, as the summary and docs say it */
  id: string;
  row: FormatRow;
  opener?: Opener;
  /** why clamd must not see it at all */
  unsafe?: string;
  /** what the docs table says of it */
  note: string;
}

interface FormatRule extends ContentFormat {
  test(head: Buffer): boolean;
}

/** Bytes of a part's start that identification looks at (ISO 9660's volume descriptor sits at 32 KiB). */
export const HEAD_BYTES = 0x8806;
/** Bytes of a part's end kept to find a ZIP's end record (a comment is at most 65,535 bytes). */
export const TAIL_BYTES = 65_557;

const at = (head: Buffer, offset: number, magic: string | number[]): boolean => {
  const bytes = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : Buffer.from(magic);
  return head.length >= offset + bytes.length && head.subarray(offset, offset + bytes.length).equals(bytes);
};

/** A tar header: "ustar" magic, or (old v7 tar) a header whose checksum is right. */
function isTar(head: Buffer): boolean {
  if (at(head, 257, 'ustar')) return true;
  if (head.length < 512 || head[0] === 0) return false;
  const field = head.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]{1,7}$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : head[i];
  return sum === parseInt(field, 8) && /^[0-7 \0]+$/.test(head.subarray(124, 136).toString('latin1'));
}

/**
 * LZMA-alone has no magic: the properties byte, a dictionary size of 2^n or
 * 3 * 2^(n-1), a size unknown or plausible (as xz and libarchive check).
 */
function isLzmaAlone(head: Buffer): boolean {
  if (head.length < 13 || head[0] !== 0x5d) return false;
  const dict = head.readUInt32LE(1);
  const lowest = dict & -dict;
  if (dict < 4096 || (dict / lowest !== 1 && dict / lowest !== 3)) return false;
  return head.subarray(5, 13).every((b) => b === 0xff) || (head[11] === 0 && head[12] === 0);
}

const RULES: FormatRule[] = [
  {
    id: 'zip', row: 'relay', opener: 'archive',
    note: 'ZIP incl. zip64; stored and deflated members read in-process, other methods by libarchive (BZip2, LZMA, XZ, PPMd, '
      + 'Zstandard; not Deflate64); local headers must agree with the central directory',
    test: (h) => at(h, 0, 'PK\x03\x04') || at(h, 0, 'PK\x05\x06') || at(h, 0, 'PK\x07\x08PK'),
  },
  {
    id: '7z', row: 'relay', opener: 'archive',
    note: '7-Zip archives (LZMA, LZMA2, PPMd, BZip2, Deflate; not Deflate64)',
    test: (h) => at(h, 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]),
  },
  { id: 'rar', row: 'relay', opener: 'archive', note: 'RAR 4 and 5 (what libarchive decodes)', test: (h) => at(h, 0, 'Rar!\x1a\x07') },
  { id: 'cab', row: 'relay', opener: 'archive', note: 'Microsoft Cabinet', test: (h) => at(h, 0, 'MSCF\0\0\0\0') },
  {
    id: 'iso9660', row: 'relay', opener: 'archive',
    note: 'ISO 9660 disc images',
    test: (h) => at(h, 0x8001, 'CD001') || at(h, 0x8801, 'CD001'),
  },
  {
    id: 'cpio', row: 'relay', opener: 'archive',
    note: 'cpio (odc, newc, crc, binary)',
    test: (h) => at(h, 0, '070707') || at(h, 0, '070701') || at(h, 0, '070702') || at(h, 0, [0xc7, 0x71]) || at(h, 0, [0x71, 0xc7]),
  },
  { id: 'ar', row: 'relay', opener: 'archive', note: 'ar archives (.a, .deb)', test: (h) => at(h, 0, '!<arch>\n') },
  { id: 'lha', row: 'relay', opener: 'archive', note: 'LHA/LZH', test: (h) => h.length > 6 && at(h, 2, '-lh') && h[6] === 0x2d },
  { id: 'tar', row: 'relay', opener: 'archive', note: 'tar (ustar, pax, GNU, v7)', test: isTar },
  {
    id: 'gzip', row: 'relay', opener: 'stream',
    note: 'gzip: every member, zero bytes between them skipped (as Python reads it), read in-process',
    test: (h) => at(h, 0, [0x1f, 0x8b]),
  },
  {
    id: 'bzip2', row: 'relay', opener: 'stream',
    note: 'bzip2 (every stream)',
    test: (h) => at(h, 0, 'BZh') && h[3] >= 0x31 && h[3] <= 0x39,
  },
  { id: 'xz', row: 'relay', opener: 'stream', note: 'xz', test: (h) => at(h, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) },
  {
    id: 'lzma', row: 'none',
    note: 'LZMA-alone (.lzma): no end a reader agrees on (Python reads on into a second stream, xz and libarchive stop)',
    test: isLzmaAlone,
  },
  { id: 'lzip', row: 'relay', opener: 'stream', note: 'lzip (.lz)', test: (h) => at(h, 0, 'LZIP') },
  {
    id: 'zstd', row: 'relay', opener: 'stream',
    note: 'Zstandard (.zst)',
    test: (h) => at(h, 0, [0x28, 0xb5, 0x2f, 0xfd]) || (h.length >= 4 && (h.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50),
  },
  { id: 'compress', row: 'relay', opener: 'stream', note: 'Unix compress (.Z)', test: (h) => at(h, 0, [0x1f, 0x9d]) },
  {
    id: 'lz4', row: 'relay', opener: 'stream', note: 'LZ4 (frames and the legacy format)',
    test: (h) => at(h, 0, [0x04, 0x22, 0x4d, 0x18]) || at(h, 0, [0x02, 0x21, 0x4c, 0x18]),
  },
  {
    id: 'pdf', row: 'relay', opener: 'pdf',
    note: 'the files a PDF embeds (every stream filter and predictor qpdf decodes); the PDF itself also goes to clamd; '
      + 'a PDF header after other bytes: opened if qpdf reads it as a PDF',
    test: (h) => at(h, 0, '%PDF-'),
  },
  {
    id: 'xar', row: 'none', unsafe: 'clamd writes unbounded temporary files for XAR',
    note: 'XAR (.xar, .pkg): never sent to clamd',
    test: (h) => at(h, 0, 'xar!'),
  },
  { id: 'lzop', row: 'none', note: 'lzop', test: (h) => at(h, 0, [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { id: 'ace', row: 'none', note: 'ACE', test: (h) => at(h, 7, '**ACE**') },
  { id: 'zpaq', row: 'none', note: 'ZPAQ', test: (h) => at(h, 0, '7kSt') || at(h, 0, 'zPQ') },
  { id: 'zoo', row: 'none', note: 'Zoo', test: (h) => at(h, 20, [0xdc, 0xa7, 0xc4, 0xfd]) },
  { id: 'stuffit', row: 'none', note: 'StuffIt', test: (h) => at(h, 0, 'SIT!') || at(h, 0, 'StuffIt ') },
  { id: 'squashfs', row: 'none', note: 'SquashFS images', test: (h) => at(h, 0, 'hsqs') || at(h, 0, 'sqsh') },
  { id: 'wim', row: 'none', note: 'Windows Imaging (WIM)', test: (h) => at(h, 0, 'MSWIM\0\0\0') },
  { id: 'vhdx', row: 'none', note: 'VHDX disk images', test: (h) => at(h, 0, 'vhdxfile') },
  { id: 'udf', row: 'none', note: 'UDF disc images', test: (h) => at(h, 0x8001, 'BEA01') || at(h, 0x8001, 'NSR0') },
  {
    id: 'ole2', row: 'clamd',
    note: 'OLE2 (legacy Office documents, MSI): clamd opens it',
    test: (h) => at(h, 0, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]),
  },
  { id: 'arj', row: 'clamd', note: 'ARJ: clamd opens it', test: (h) => at(h, 0, [0x60, 0xea]) },
  { id: 'tnef', row: 'clamd', note: 'TNEF (winmail.dat): clamd opens it', test: (h) => at(h, 0, [0x78, 0x9f, 0x3e, 0x22]) },
  { id: 'chm', row: 'clamd', note: 'Compiled HTML Help: clamd opens it', test: (h) => at(h, 0, 'ITSF') },
  { id: 'rtf', row: 'clamd', note: 'RTF: clamd reads its embedded objects', test: (h) => at(h, 0, '{\\rt') },
];

function formatOf(rule: FormatRule): ContentFormat {
  return { id: rule.id, row: rule.row, opener: rule.opener, unsafe: rule.unsafe, note: rule.note };
}

/** The format of a part that starts with `head` (HEAD_BYTES of it, or all of a shorter part); undefined for none of the table's. */
export function identify(head: Buffer): ContentFormat | undefined {
  const rule = RULES.find((r) => r.test(head));
  return rule ? formatOf(rule) : undefined;
}

/** Every row of the table, in order (for the docs and their test). */
export function formatTable(): readonly ContentFormat[] {
  return RULES.map(formatOf);
}

/**
 * A ZIP end record in a part's last TAIL_BYTES: ZIP readers open such a file
 * whatever precedes the archive (self-extracting programs, a picture before it).
 */
export function endsAsZip(tail: Buffer): boolean {
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail[i] === 0x50 && tail[i + 1] === 0x4b && tail[i + 2] === 0x05 && tail[i + 3] === 0x06) {
      // the comment length must reach the end exactly
      if (i + 22 + tail.readUInt16LE(i + 20) === tail.length) return true;
    }
  }
  return false;
}

/** The XAR header anywhere in `bytes` (inside a format clamd opens itself, clamd would find it too). */
export const XAR_MAGIC = Buffer.from([0x78, 0x61, 0x72, 0x21, 0x00, 0x1c]);
