// Reads a tar stream as it arrives: the members an unpacker (bsdtar) hands
// back as one GNU tar on its output. Only what that writer emits is read:
// regular files, long names ('L'); directories, links and devices carry no
// data; any other entry with data is an error (its bytes would go unscanned).

export interface TarEvents {
  member(name: string, size: number): void;
  data(bytes: Buffer): void;
  memberEnd(): void;
}

const BLOCK = 512;
/** A long name longer than this is not a name any archive needs: the stream is refused. */
const MAX_LONG_NAME = 64 * 1024;

export class TarReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** bytes of the current member's data still to come, then its padding */
  private left = 0;
  private padding = 0;
  private longName?: string;
  /** reading a long-name record: its bytes */
  private nameRecord?: { size: number; chunks: Buffer[]; got: number };
  private inMember = false;
  /** the two zero blocks that end the archive were read */
  ended = false;
  /** why the stream cannot be read as a tar */
  error?: string;

  constructor(private readonly events: TarEvents) {}

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.error && !this.ended) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - at);
        const piece = chunk.subarray(at, at + n);
        if (this.nameRecord) {
          this.nameRecord.chunks.push(piece);
          this.nameRecord.got += n;
        } else {
          this.events.data(piece);
        }
        this.left -= n;
        at += n;
        if (this.left === 0) this.finishData();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - at);
        this.padding -= n;
        at += n;
        continue;
      }
      const need = BLOCK - this.pendingBytes;
      const n = Math.min(need, chunk.length - at);
      this.pending.push(chunk.subarray(at, at + n));
      this.pendingBytes += n;
      at += n;
      if (this.pendingBytes === BLOCK) {
        const header = Buffer.concat(this.pending, BLOCK);
        this.pending = [];
        this.pendingBytes = 0;
        this.header(header);
      }
    }
  }

  /** The stream ended: an error when it ended inside a member. */
  end(): void {
    if (this.error || this.ended) return;
    if (this.left > 0 || this.pendingBytes > 0 || this.nameRecord) this.error = 'the tar stream ends inside a member';
    else this.ended = true;
  }

  private finishData(): void {
    if (this.nameRecord) {
      const record = Buffer.concat(this.nameRecord.chunks);
      this.longName = record.toString('latin1').replace(/\0.*$/s, '');
      this.nameRecord = undefined;
    } else if (this.inMember) {
      this.inMember = false;
      this.events.memberEnd();
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      // the first zero block ends the archive for our writer (the second one may follow)
      this.ended = true;
      return;
    }
    if (!checksumOk(block)) {
      this.error = 'a tar header with a wrong checksum';
      return;
    }
    const size = numeric(block.subarray(124, 136));
    if (size === undefined) {
      this.error = 'a tar header with an unreadable size';
      return;
    }
    const type = String.fromCharCode(block[156] || 0x30);
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'L') {
      if (size > MAX_LONG_NAME) {
        this.error = 'a tar long name over 64 KiB';
        return;
      }
      this.left = size;
      this.nameRecord = { size, chunks: [], got: 0 };
      if (size === 0) this.finishData();
      return;
    }
    const prefix = block.subarray(345, 500).toString('latin1').replace(/\0.*$/s, '');
    const plain = block.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const posix = block.subarray(257, 262).toString('latin1') === 'ustar' && block[263] === 0x30;
    const name = this.longName ?? (prefix && posix ? `${prefix}/${plain}` : plain);
    this.longName = undefined;
    this.left = size;
    if (type === '0' || type === '7') {
      this.inMember = true;
      this.events.member(name, size);
      if (size === 0) this.finishData();
    } else if (size === 0 || type === 'K' || type === 'x' || type === 'g') {
      // no data, or names and attributes (a link's target, pax records): read over them
      this.skipData(size);
    } else {
      // data in an entry that is no file would go unscanned
      this.error = `a tar entry of type "${type}" that carries data`;
    }
  }

  private skipData(size: number): void {
    this.left = 0;
    this.padding += size;
  }
}

function checksumOk(block: Buffer): boolean {
  const stored = numeric(block.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i];
  return stored === sum;
}

/** An octal field, or GNU's base-256 for large values. */
function numeric(field: Buffer): number | undefined {
  if (field[0] & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n + (field[0] & 0x7f) * 256 ** (field.length - 1);
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  return parseInt(text, 8);
}
