// A MIME message as a tree of byte ranges, enough to scan each part on its
// own and to rebuild the message with some parts replaced. Works on the
// message as bytes (latin1 for the header text), never re-encodes a part it
// does not replace.

export interface MimePart {
  /** where the part's header starts (the whole message: 0) */
  start: number;
  /** where its body starts (after the blank line) */
  bodyStart: number;
  /** end of the body (exclusive), before the CRLF that precedes the next boundary */
  end: number;
  contentType: string;
  transferEncoding: string;
  disposition: string;
  filename?: string;
  boundary?: string;
  children: MimePart[];
  /** depth-first position among the leaves, for naming ("part 2") */
  path: string;
}

const MAX_DEPTH = 20;

export function parseMime(message: Buffer): MimePart {
  return parsePart(message, 0, message.length, '1', 0);
}

/** All parts without children, in message order. */
export function leafParts(root: MimePart): MimePart[] {
  if (!root.children.length) return [root];
  return root.children.flatMap(leafParts);
}

function parsePart(buf: Buffer, start: number, end: number, path: string, depth: number): MimePart {
  const { headers, bodyStart } = readHeaders(buf, start, end);
  const type = headerValue(headers, 'content-type') || 'text/plain';
  const contentType = type.split(';')[0].trim().toLowerCase();
  const disposition = (headerValue(headers, 'content-disposition') ?? '').split(';')[0].trim().toLowerCase();
  const filename = param(headerValue(headers, 'content-disposition') ?? '', 'filename') ?? param(type, 'name');
  const part: MimePart = {
    start, bodyStart, end, contentType,
    transferEncoding: (headerValue(headers, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase(),
    disposition, filename, children: [], path,
  };
  if (contentType.startsWith('multipart/') && depth < MAX_DEPTH) {
    const boundary = param(type, 'boundary');
    if (boundary) {
      part.boundary = boundary;
      part.children = splitMultipart(buf, bodyStart, end, boundary)
        .map(([s, e], i) => parsePart(buf, s, e, `${path}.${i + 1}`, depth + 1));
    }
  }
  return part;
}

function readHeaders(buf: Buffer, start: number, end: number): { headers: Map<string, string>; bodyStart: number } {
  const headers = new Map<string, string>();
  let pos = start;
  let last: string | undefined;
  while (pos < end) {
    const lineBegin = pos;
    let nl = buf.indexOf(0x0a, pos);
    if (nl < 0 || nl >= end) nl = end;
    const line = buf.toString('latin1', pos, nl).replace(/\r$/, '');
    pos = Math.min(nl + 1, end);
    if (line === '') return { headers, bodyStart: pos };
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    // a line that is not a header starts the body (a part without the blank line)
    if (colon <= 0 || /\s/.test(line.slice(0, colon))) return { headers, bodyStart: lineBegin };
    last = line.slice(0, colon).toLowerCase();
    if (!headers.has(last)) headers.set(last, line.slice(colon + 1).trim());
  }
  return { headers, bodyStart: end };
}

function splitMultipart(buf: Buffer, start: number, end: number, boundary: string): [number, number][] {
  const delimiter = `--${boundary}`;
  const ranges: [number, number][] = [];
  let partStart = -1;
  let pos = start;
  while (pos < end) {
    let nl = buf.indexOf(0x0a, pos);
    if (nl < 0 || nl >= end) nl = end;
    const line = buf.toString('latin1', pos, nl).replace(/\r$/, '').trimEnd();
    if (line === delimiter || line === `${delimiter}--`) {
      if (partStart >= 0) ranges.push([partStart, trimLineEnd(buf, partStart, pos)]);
      if (line.endsWith('--') && line !== delimiter) return ranges;
      partStart = Math.min(nl + 1, end);
    }
    pos = nl + 1;
  }
  // no closing delimiter: the last part runs to the end
  if (partStart >= 0 && partStart < end) ranges.push([partStart, end]);
  return ranges;
}

/** The CRLF before a boundary line belongs to the boundary (RFC 2046 5.1.1). */
function trimLineEnd(buf: Buffer, start: number, boundaryLine: number): number {
  let end = boundaryLine;
  if (end > start && buf[end - 1] === 0x0a) end--;
  if (end > start && buf[end - 1] === 0x0d) end--;
  return end;
}

function headerValue(headers: Map<string, string>, name: string): string | undefined {
  return headers.get(name);
}

function param(value: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|;)\\s*${name}\\*?\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, 'i').exec(value);
  if (!m) return undefined;
  return (m[1] ?? m[2]).replace(/\\(.)/g, '$1');
}

/** The part's body with its transfer encoding undone: what a scanner should see. */
export function decodedBody(message: Buffer, part: MimePart): Buffer {
  const raw = message.subarray(part.bodyStart, part.end);
  if (part.transferEncoding === 'base64') return Buffer.from(raw.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (part.transferEncoding === 'quoted-printable') return decodeQuotedPrintable(raw);
  return raw;
}

export function decodeQuotedPrintable(raw: Buffer): Buffer {
  const text = raw.toString('latin1').replace(/=\r?\n/g, '');
  const out = Buffer.alloc(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out[n++] = parseInt(text.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = text.charCodeAt(i) & 0xff;
    }
  }
  return out.subarray(0, n);
}

/** The message with each given part (header and body) replaced by the given bytes. */
export function replaceParts(message: Buffer, replacements: Map<MimePart, Buffer>): Buffer {
  const sorted = [...replacements.entries()].sort(([a], [b]) => a.start - b.start);
  const pieces: Buffer[] = [];
  let pos = 0;
  for (const [part, bytes] of sorted) {
    pieces.push(message.subarray(pos, part.start), bytes);
    pos = part.end;
  }
  pieces.push(message.subarray(pos));
  return Buffer.concat(pieces);
}
