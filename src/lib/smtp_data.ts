// The message bytes of SMTP DATA (RFC 5321 4.5.2), one rule for the whole
// relay: each line the client sends is un-stuffed exactly once (the first dot
// of ANY line that starts with a dot is removed, as every receiver does), those
// bytes are what the scanners see, and the relay stuffs them again itself when
// it sends them on. A CR that does not end a line is refused, never passed on:
// servers disagree on what `.CR CRLF` or a bare CR means (SMTP smuggling).

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** One DATA line as the client sent it (with its line ending) -> the message's bytes. */
export function unstuffLine(line: Buffer): Buffer {
  return line[0] === DOT ? line.subarray(1) : line;
}

/** True when the line holds a CR that is not the CR of its final CRLF. */
export function hasBareCr(line: Buffer): boolean {
  // the first CR is the only one allowed, and only as the line's CRLF
  const cr = line.indexOf(CR);
  return cr >= 0 && !(cr === line.length - 2 && line[cr + 1] === LF);
}

/** True when the line holds an LF not preceded by CR (Haraka refuses bare-LF line endings; this catches the rest). */
export function hasBareLf(line: Buffer): boolean {
  for (let i = line.indexOf(LF); i >= 0; i = line.indexOf(LF, i + 1)) {
    if (i === 0 || line[i - 1] !== CR) return true;
  }
  return false;
}

/**
 * Dot-stuffing for the way out: a dot at the start of a line is doubled.
 * Chunks may split lines anywhere; the stuffer remembers whether the next
 * byte starts a line.
 */
export class DotStuffer {
  private atLineStart = true;

  stuff(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let from = 0;
    let pos = 0;
    if (this.atLineStart && chunk[0] === DOT) {
      parts.push(Buffer.from('.'));
    }
    for (;;) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0 || nl === chunk.length - 1) break;
      pos = nl + 1;
      if (chunk[pos] === DOT) {
        parts.push(chunk.subarray(from, pos), Buffer.from('.'));
        from = pos;
      }
    }
    this.atLineStart = chunk[chunk.length - 1] === LF;
    if (parts.length === 0) return chunk;
    parts.push(chunk.subarray(from));
    return Buffer.concat(parts);
  }

  /** The end of the message: a CRLF if the last line lacked one, then the final dot. */
  end(): Buffer {
    return Buffer.from(this.atLineStart ? '.\r\n' : '\r\n.\r\n');
  }
}

export interface HeaderField {
  name: string;
  value: string;
}

/** RFC 5322 2.1.1: 998 characters and CRLF. */
const HEADER_VIEW_LINE_BYTES = 1000;

/**
 * A DATA line as Haraka's own header view gets it when Haraka keeps no copy of
 * the message (only the header fields it parses: Received: count, Message-ID
 * for its log): cut to an RFC 5322 line. Haraka holds up to 1,000 header lines
 * of up to data_line_length (64 KiB) each, several times over once parsed:
 * hundreds of MB per message of long lines.
 */
export function headerViewLine(line: Buffer): Buffer {
  if (line.length <= HEADER_VIEW_LINE_BYTES) return line;
  return Buffer.concat([line.subarray(0, HEADER_VIEW_LINE_BYTES - 2), Buffer.from('\r\n')]);
}

/**
 * The field name of a header line as mail readers read it: the bytes before
 * the first colon with trailing blanks removed (`X-Virus-Scanner : x` is an
 * X-Virus-Scanner field to a reader), lower-cased. undefined for a
 * continuation line or a line without a colon.
 */
/**
 * The kind of a line of the top-level header section (RFC 5322 2.2): a field
 * (a name of printable ASCII but ':', optional blanks, ':'), a continuation
 * (starts with a blank), or neither. A header section where "neither" follows a
 * field is read two ways: Postfix's cleanup takes that line as the start of
 * the body (and a MIME header above it as the message's), a scanner may take
 * it all as header. Such a message is refused, never repaired.
 */
export function headerLineKind(line: Buffer): 'field' | 'continuation' | 'other' {
  if (line[0] === 0x20 || line[0] === 0x09) return 'continuation';
  let i = 0;
  while (i < line.length && line[i] >= 0x21 && line[i] <= 0x7e && line[i] !== 0x3a) i++;
  if (i === 0) return 'other';
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  // a colon past the RFC 5322 line length is no field to Postfix, whose smtpd cuts
  // lines at line_length_limit (2048) and judges the first piece alone
  return line[i] === 0x3a && i < MAX_FIELD_NAME_BYTES ? 'field' : 'other';
}

/** where a field's colon must be: within RFC 5322's 998 characters of a line */
const MAX_FIELD_NAME_BYTES = 998;

/**
 * The fields only the relay may write (X-Virus-Scanner:, every X-Spam-*): any
 * the client sent are removed, from the relay's copy and from Haraka's alike.
 */
export function isScannerField(name: string): boolean {
  return name === 'x-virus-scanner' || name.startsWith('x-spam-');
}

export function fieldName(line: string): string | undefined {
  if (line[0] === ' ' || line[0] === '\t') return undefined;
  const colon = line.indexOf(':');
  if (colon <= 0) return undefined;
  return line.slice(0, colon).replace(/[ \t]+$/, '').toLowerCase();
}

/**
 * Rebuilds a header section: drops every field (with its continuation lines)
 * whose name (lower case) `remove` says, and appends `add` at its end. The
 * other lines stay byte for byte, in order. `headerless`: the message had no
 * header section (its first line was body): a non-empty result then ends with
 * the empty line that separates it from that body.
 */
export function editHeaderSection(
  header: Buffer, remove: (name: string) => boolean, add: readonly HeaderField[], headerless = false,
): Buffer {
  const editor = new HeaderSectionEditor(remove, add, headerless);
  return Buffer.concat([...editor.push(header), ...editor.end()]);
}

/**
 * The header edits as a stream (editHeaderSection is it fed whole): the header
 * section goes through in chunks of any size and comes out edited, so that a
 * message of headers only (its whole size) is never held. It
 * holds only the start of a line until its colon or line end decides the field
 * (a DATA line is at most Haraka's data_line_length).
 */
export class HeaderSectionEditor {
  /** where the next byte is: a line's first byte, a field name not yet decided, or the rest of a decided line */
  private state: 'lineStart' | 'name' | 'rest' = 'lineStart';
  private dropping = false;
  /** the undecided start of the current line (before its first colon) */
  private head: Buffer[] = [];
  private lastByte?: number;
  private keptAny = false;
  private ended = false;

  constructor(
    private readonly remove: (name: string) => boolean,
    private readonly add: readonly HeaderField[],
    private readonly headerless = false,
  ) {}

  /** The next bytes of the header section; returns what goes out (views into `chunk` where possible). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (chunk.length) this.lastByte = chunk[chunk.length - 1];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === 'lineStart') {
        // a continuation line belongs to the field before it; any other line ends it
        this.state = chunk[pos] === 0x20 || chunk[pos] === 0x09 ? 'rest' : 'name';
        if (this.state === 'name') this.head = [];
      }
      if (this.state === 'name') {
        const stop = colonOrLineEnd(chunk, pos);
        if (stop < 0) {
          this.head.push(chunk.subarray(pos));
          break;
        }
        this.head.push(chunk.subarray(pos, stop + 1));
        // no colon before the line's end: no field, so nothing is dropped
        const name = chunk[stop] === LF ? undefined : fieldName(Buffer.concat(this.head).toString('latin1'));
        this.dropping = name !== undefined && this.remove(name);
        if (!this.dropping) for (const part of this.head) this.keep(out, part);
        this.head = [];
        pos = stop + 1;
        this.state = chunk[stop] === LF ? 'lineStart' : 'rest';
        continue;
      }
      const nl = chunk.indexOf(LF, pos);
      const end = nl < 0 ? chunk.length : nl + 1;
      if (!this.dropping) this.keep(out, chunk.subarray(pos, end));
      pos = end;
      if (nl >= 0) this.state = 'lineStart';
    }
    return out;
  }

  /** The end of the header section: the last undecided line, then the added fields. */
  end(): Buffer[] {
    if (this.ended) return [];
    this.ended = true;
    const out: Buffer[] = [];
    // a last line without a colon or line end is no field: kept
    if (this.state === 'name') for (const part of this.head) this.keep(out, part);
    this.head = [];
    // a header section whose last line lacks its CRLF (a message of headers only) gets one first
    if (this.add.length && this.lastByte !== undefined && this.lastByte !== LF) out.push(Buffer.from('\r\n'));
    for (const f of this.add) out.push(Buffer.from(`${f.name}: ${f.value}\r\n`));
    if (this.headerless && (this.keptAny || this.add.length)) out.push(Buffer.from('\r\n'));
    return out;
  }

  private keep(out: Buffer[], part: Buffer): void {
    if (!part.length) return;
    this.keptAny = true;
    const last = out[out.length - 1];
    // one view for a run of kept lines of the same chunk, not one per line
    if (last && last.buffer === part.buffer && last.byteOffset + last.length === part.byteOffset) {
      out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + part.length);
    } else {
      out.push(part);
    }
  }
}

/** The first colon or LF from `pos` (the colon looked for within the line only); -1 for neither. */
function colonOrLineEnd(buf: Buffer, pos: number): number {
  const nl = buf.indexOf(LF, pos);
  const colon = buf.subarray(pos, nl < 0 ? buf.length : nl).indexOf(0x3a);
  return colon >= 0 ? pos + colon : nl;
}

/**
 * Watches the header blocks of a message as its lines go by: the top-level
 * header, and the header of each MIME part (a line after a "--" line that is a
 * header field starts one; an empty line ends it). A line of only blanks in a
 * header block is read as a continuation by mail readers but ends the header
 * for clamd, which then misses a Content-Transfer-Encoding after it: such a
 * message is refused rather than scanned one way and read another.
 */
export class HeaderBlocks {
  private inBlock = true;
  private afterDashes = false;

  /** `line`: one line of the message (un-stuffed, with its CRLF). True when it is a blank-only line in a header block. */
  hidesEncoding(line: Buffer): boolean {
    const empty = line.length === 2 && line[0] === CR;
    if (this.afterDashes) {
      this.afterDashes = false;
      if (!empty && fieldName(line.toString('latin1')) !== undefined) this.inBlock = true;
    }
    if (this.inBlock) {
      if (empty) {
        this.inBlock = false;
        return false;
      }
      return isBlankOnly(line);
    }
    if (line[0] === 0x2d && line[1] === 0x2d) this.afterDashes = true;
    return false;
  }
}

/** A line of spaces and tabs only (before its CRLF). */
function isBlankOnly(line: Buffer): boolean {
  let end = line.length;
  if (line[end - 1] === LF) end--;
  if (line[end - 1] === CR) end--;
  if (end === 0) return false;
  for (let i = 0; i < end; i++) if (line[i] !== 0x20 && line[i] !== 0x09) return false;
  return true;
}
