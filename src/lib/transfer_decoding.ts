// base64 and quoted-printable decoded a piece at a time, in the ways readers
// differ on: each decoder follows one way (its mode) and says when another
// way would read the same input otherwise (`differs`), so the walk can read
// the part that way too (lib/mime_reading).

/**
 * `skip` characters outside the alphabet, go on after "="; `url` "-" "_" as "+" "/"; `stop` at either;
 * `python` as CPython's binascii (Python's email): an "=" before the third character of a group, or a lone
 * one after it, is skipped, and decoding ends at a complete padding.
 */
export type Base64Mode = 'skip' | 'url' | 'stop' | 'python';
/** `rfc`: "=" then blanks ends a soft line break, lower-case hex decoded; `literal` neither */
export type QpMode = 'rfc' | 'literal';

/** Decoded bytes are handed on in pieces of about this size. */
const OUT_BYTES = 64 * 1024;
const CR = 0x0d;
const LF = 0x0a;

const B64 = new Int8Array(256).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) B64[c.charCodeAt(0)] = i;

/** base64 as a reader of the given kind decodes it, in pieces; reports junk and data after padding. */
export class Base64Decoder {
  private quad = 0;
  private have = 0;
  private out = Buffer.alloc(OUT_BYTES + 3);
  private n = 0;
  private padded = false;
  /** "=" read after two characters of a group (python) */
  private pads = 0;
  private stopped = false;

  constructor(
    private readonly mode: Base64Mode, private readonly differs: (other: Base64Mode) => void, private readonly emit: (b: Buffer) => void,
  ) {}

  write(content: Buffer): void {
    if (this.stopped) return;
    for (let i = 0; i < content.length; i++) {
      const c = content[i];
      let v = B64[c];
      if (v < 0) {
        if (c === 0x20 || c === 0x09 || c === CR || c === LF) continue;
        if (c === 0x3d /* = */) {
          // (the second "=" of "==" is the padding going on: read alike)
          if (this.have < 2 && !this.padded) this.differs('python');
          if (this.mode === 'python') {
            // CPython's a2b_base64: "==" after two characters, "=" after three, end the data; other "=" are skipped
            if (this.have === 3 || (this.have === 2 && ++this.pads >= 2)) {
              this.pad();
              return this.stop();
            }
            continue;
          }
          this.pad();
          if (this.mode === 'stop') return this.stop();
          continue;
        }
        if (c === 0x2d || c === 0x5f) {
          this.differs('url');
          if (this.mode === 'url') v = c === 0x2d ? 62 : 63;
        }
        if (v < 0) {
          this.differs('stop');
          if (this.mode === 'stop') return this.stop();
          continue;
        }
      }
      if (this.padded || this.pads) {
        // data after "=": some readers stop there, others go on with it, or read the "=" as nothing
        this.differs('stop');
        this.differs('python');
        this.padded = false;
      }
      this.pads = 0;
      this.quad = (this.quad << 6) | v;
      if (++this.have === 4) {
        this.out[this.n++] = (this.quad >> 16) & 255;
        this.out[this.n++] = (this.quad >> 8) & 255;
        this.out[this.n++] = this.quad & 255;
        this.quad = 0;
        this.have = 0;
        if (this.n >= OUT_BYTES) this.flush();
      }
    }
  }

  /** "=": the quantum ends with what it has. */
  private pad(): void {
    if (this.have === 2) this.out[this.n++] = (this.quad >> 4) & 255;
    else if (this.have === 3) {
      this.out[this.n++] = (this.quad >> 10) & 255;
      this.out[this.n++] = (this.quad >> 2) & 255;
    }
    this.quad = 0;
    this.have = 0;
    this.padded = true;
  }

  private stop(): void {
    this.stopped = true;
  }

  private flush(): void {
    if (!this.n) return;
    this.emit(Buffer.from(this.out.subarray(0, this.n)));
    this.n = 0;
  }

  end(): void {
    if (!this.stopped && this.have > 1) this.pad();
    this.flush();
  }
}

const HEX = new Int8Array(256).fill(-1);
for (const [i, c] of [...'0123456789ABCDEF'].entries()) HEX[c.charCodeAt(0)] = i;
const HEX_LOWER = new Int8Array(256).fill(-1);
for (const [i, c] of [...'0123456789abcdef'].entries()) HEX_LOWER[c.charCodeAt(0)] = i;

/** quoted-printable as a reader of the given kind decodes it, a line at a time. */
export class QpDecoder {
  private parts: Buffer[] = [];
  private bytes = 0;
  /** the line break of the line before, when it was a hard one */
  private pendingEol?: Buffer;

  constructor(
    private readonly mode: QpMode, private readonly differs: (other: QpMode) => void, private readonly emit: (b: Buffer) => void,
  ) {}

  line(content: Buffer, eol: Buffer): void {
    if (this.pendingEol) this.push(this.pendingEol);
    this.pendingEol = undefined;
    // trailing blanks were added in transport (RFC 2045 6.7 (3)): gone
    let end = content.length;
    while (end > 0 && (content[end - 1] === 0x20 || content[end - 1] === 0x09)) end--;
    let soft = false;
    if (end > 0 && content[end - 1] === 0x3d) {
      if (end < content.length) {
        this.differs('literal');
        soft = this.mode === 'rfc';
      } else {
        soft = true;
      }
      if (soft) end--;
    }
    if (this.mode === 'literal' && !soft) end = content.length;
    const out = Buffer.alloc(end);
    let n = 0;
    for (let i = 0; i < end; i++) {
      const c = content[i];
      if (c === 0x3d && i + 2 < end) {
        const hi = HEX[content[i + 1]];
        const lo = HEX[content[i + 2]];
        if (hi >= 0 && lo >= 0) {
          out[n++] = (hi << 4) | lo;
          i += 2;
          continue;
        }
        const hl = hi >= 0 ? hi : HEX_LOWER[content[i + 1]];
        const ll = lo >= 0 ? lo : HEX_LOWER[content[i + 2]];
        if (hl >= 0 && ll >= 0) {
          this.differs('literal');
          if (this.mode === 'rfc') {
            out[n++] = (hl << 4) | ll;
            i += 2;
            continue;
          }
        }
      }
      out[n++] = c;
    }
    this.push(out.subarray(0, n));
    if (!soft && eol.length) this.pendingEol = eol;
  }

  private push(b: Buffer): void {
    if (!b.length) return;
    this.parts.push(b);
    this.bytes += b.length;
    if (this.bytes >= OUT_BYTES) this.flush();
  }

  private flush(): void {
    if (!this.bytes) return;
    this.emit(Buffer.concat(this.parts, this.bytes));
    this.parts = [];
    this.bytes = 0;
  }

  end(): void {
    this.flush();
  }
}
