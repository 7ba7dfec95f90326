// The MIME structure of a message as a mail reader takes it apart (RFC 2045,
// 2046, 5322), read as a stream: lines in, decoded leaves out. clamd's own MIME
// parser reads some structures otherwise than readers do, and readers differ
// among themselves, so a walk follows one `Reading` (one consistent set of
// reader choices) and reports where another choice would have read the message
// differently (`triggered`); io/mime_scan walks again with each such reading.
// Structures no RFC allows are reported as `malformed` by the RFC reading.
// Pure: no I/O; memory per walk is bounded by constants, not by the message.

import { fileNames, mediaType, ParamStyle, readParams, stripComments } from './mime_params';
import { Base64Decoder, Base64Mode, QpDecoder, QpMode } from './transfer_decoding';

export type { Base64Mode, QpMode };

/** One reader's choices; the first value of each is the RFC's (PRIMARY_READING). */
export interface Reading {
  /**
   * boundary delimiter lines: `rfc` "--" boundary ["--"] then spaces/tabs (RFC 2046 transport padding);
   * `exact` no padding; `prefix` any line that starts with "--" boundary; `dashes` extra leading dashes too (clamd)
   */
  boundary: 'rfc' | 'exact' | 'prefix' | 'dashes';
  /** delimiter lines after the close delimiter: `ignore` (epilogue) or `parts` (more parts) */
  epilogue: 'ignore' | 'parts';
  /** `join`: a field ending in ";" or with an odd number of '"' takes the next line too (clamd) */
  unfold: 'rfc' | 'join';
  /** a field given twice: the first or the last */
  repeated: 'first' | 'last';
  /** `strict`: "Name :" (blank before the colon, RFC 5322 obsolete syntax) is no field, and starts the body */
  names: 'rfc' | 'strict';
  /**
   * parameters: `rfc` quoted strings, comments, RFC 2231; `plain` name=value up to ";" or a blank;
   * `loose-first`/`loose-last` as ripmime and munpack: the first/last "boundary=" anywhere in the header (a
   * comment, another parameter, another field), the type and encoding from any field named *Content-Type,
   * *Content-Transfer-Encoding holding "multipart/", "base64" or "quoted-printable"
   */
  params: ParamStyle | 'loose-first' | 'loose-last';
  /** a multipart with a Content-Transfer-Encoding (RFC 2045 6.4 forbids one): `ignore` it, or `decode` first */
  multipartEncoding: 'ignore' | 'decode';
  /**
   * The decodings each base64 leaf is read in (lib/transfer_decoding), each scanned. Leaf-local, so not a choice of the structure: a walk
   * decodes a leaf every way listed here at once.
   */
  base64: readonly Base64Mode[];
  /** quoted-printable, likewise */
  qp: readonly QpMode[];
}

export type Trait = keyof Reading;
/** The choices that shape the tree (the others only decode leaves). */
export type StructureTrait = Exclude<Trait, 'base64' | 'qp'>;

type ReadingValues = { readonly [T in StructureTrait]: readonly Reading[T][] } & { base64: readonly Base64Mode[]; qp: readonly QpMode[] };

export const READING_VALUES: ReadingValues = {
  boundary: ['rfc', 'exact', 'prefix', 'dashes'],
  epilogue: ['ignore', 'parts'],
  unfold: ['rfc', 'join'],
  repeated: ['first', 'last'],
  names: ['rfc', 'strict'],
  params: ['rfc', 'plain', 'loose-first', 'loose-last'],
  multipartEncoding: ['ignore', 'decode'],
  base64: ['skip', 'url', 'stop', 'python'],
  qp: ['rfc', 'literal'],
};

export const PRIMARY_READING: Reading = {
  boundary: 'rfc', epilogue: 'ignore', unfold: 'rfc', repeated: 'first', names: 'rfc', params: 'rfc', multipartEncoding: 'ignore',
  base64: ['skip'], qp: ['rfc'],
};

export const STRUCTURE_TRAITS: readonly StructureTrait[] = [
  'boundary', 'epilogue', 'unfold', 'repeated', 'names', 'params', 'multipartEncoding',
];

/** The structure a reading gives the message (decodings aside). */
export function structureKey(r: Reading): string {
  return STRUCTURE_TRAITS.map((t) => r[t]).join('/');
}

/** What the walk found a leaf to be. */
export interface LeafInfo {
  /** "1", "1.2", "1.2.1"; a uuencoded block in a part: "1.2/uu1" */
  path: string;
  contentType: string;
  encoding: string;
  filename?: string;
  /** every name readers could give it (Content-Type name, Content-Disposition filename, each way of reading them) */
  names?: string[];
  /** an attachment: named, Content-Disposition: attachment, or content that is no text (banned types are matched on these only) */
  attachment?: boolean;
  /**
   * Where its bytes come from and how they are decoded, the same in every walk of the message (with `end`
   * given at its end): a part read the same way in another structure has the same source.
   */
  source?: string;
}

/** Where a leaf's decoded bytes go (one scan each). */
export interface LeafHandle {
  data(bytes: Buffer): void;
  /** `end`: where the part's bytes ended (with `source`, the same part ends at the same place) */
  end(end?: number): void;
}

export interface LeafSink {
  leafStart(info: LeafInfo): LeafHandle;
  /** the decodings other than the reading's first that earlier walks found this part (`leafAt`) needs */
  decodingsOf?(leafAt: string, encoding: string): readonly string[];
  /** a decoder found this part read otherwise in `mode` */
  noteDecoding?(leafAt: string, encoding: string, mode: string): void;
}

export interface WalkLimits {
  /** nesting deeper than this is not scanned (clamd's MaxRecursion) */
  maxDepth: number;
  /** more leaves than this are not scanned (clamd's MaxFiles) */
  maxLeaves: number;
  /** small leaves may go to clamd together, as one archive (clamd's ScanArchive is on) */
  batchSmallParts?: boolean;
}

/** RFC 5322 2.1.1: a line is at most 998 characters before its CRLF. */
export const MAX_LINE_CHARS = 998;
/** A Content-* field longer than this (unfolded) is refused: readers would cut it at different places. */
const MAX_FIELD_BYTES = 64 * 1024;
/** Content-* fields one header may hold (the walk keeps them): no message needs more. */
const MAX_MIME_FIELDS = 64;
/** Decoded bytes handed on in pieces of about this size. */
const OUT_BYTES = 64 * 1024;
/** A line of decoded text longer than this is cut (uuencode lines are short). */
const MAX_TEXT_LINE = 8 * 1024;

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;

interface Field {
  name: string;
  value: string;
}

interface Frame {
  boundary: string;
  /** the multipart's part path ("1.2"); its parts are path.1, path.2, ... */
  path: string;
  depth: number;
  parts: number;
  state: 'preamble' | 'parts' | 'epilogue';
  digest: boolean;
}

/** The entity whose header is being read. */
interface Entity {
  path: string;
  depth: number;
  defaultType: string;
  fields: Field[];
  /** the field the next continuation line belongs to (only Content-* and MIME-Version are kept) */
  current?: Field;
  /** the name of the last field seen (kept or not) */
  lastName?: string;
  /** the field being read is left open for clamd: an odd number of quotes, or a ";" at its end so far */
  quoteOdd: boolean;
  semicolon: boolean;
  /** what loose readers take from anywhere in the header (ripmime, munpack) */
  loose: Loose;
  lines: number;
}

interface BodyHandler {
  line(content: Buffer, eol: Buffer, continued: boolean): void;
  /** `at`: where the body ended in the walk's input */
  end(at?: number): void;
}

export class MimeWalker {
  /** a structure no RFC allows (judged by the RFC reading only) */
  malformed?: string;
  /** past a limit: the message is not scanned */
  overLimit?: string;
  /** for each choice, the other values that would read this message differently */
  readonly triggered = new Map<Trait, Set<string>>();
  private readonly frames: Frame[] = [];
  private entity?: Entity;
  private body?: BodyHandler;
  /** leaves so far, shared with the walks of encoded attached messages inside this one */
  private readonly count: { leaves: number };
  private lineNo = 0;
  /** where the current line starts in this walk's input, and where the walk's input comes from */
  private lineStart = 0;
  private offset = 0;
  private readonly scope: string;
  private readonly strictRfc: boolean;
  private stopped = false;

  /** `inside`: this walk reads an encoded attached message, decoded: where it is, and the outer walk's count */
  constructor(
    private readonly reading: Reading, private readonly limits: WalkLimits, private readonly sink: LeafSink,
    inside?: { path: string; depth: number; count: { leaves: number }; lenient?: boolean; scope: string },
  ) {
    // a walk of what only some readers take for a message (another message/* type, an encoding ignored) judges nothing
    this.strictRfc = structureKey(reading) === structureKey(PRIMARY_READING) && !inside?.lenient;
    this.entity = inside ? newEntity(`${inside.path}.1`, inside.depth + 1, 'text/plain') : newEntity('1', 0, 'text/plain');
    this.count = inside?.count ?? { leaves: 0 };
    this.scope = inside?.scope ?? 'm';
  }

  /** What a walk of an attached message inside this one found (its end). */
  private absorb(inner: MimeWalker): void {
    for (const [trait, values] of inner.triggered) for (const v of values) this.trigger(trait, v);
    this.malformed ??= inner.malformed;
    this.overLimit ??= inner.overLimit;
  }

  /** Stop reading (a verdict is in, or a limit was passed). */
  get done(): boolean {
    return this.stopped || this.malformed !== undefined || this.overLimit !== undefined;
  }

  /**
   * One line of the message with its line ending (CRLF, LF, or none at the end).
   * `continued`: this is a later piece of a line too long to hold whole (never a boundary or a header).
   */
  line(raw: Buffer, continued = false): void {
    if (this.done) return;
    this.lineStart = this.offset;
    this.offset += raw.length;
    let end = raw.length;
    if (end > 0 && raw[end - 1] === LF) end--;
    if (end > 0 && raw[end - 1] === CR) end--;
    const content = raw.subarray(0, end);
    const eol = raw.subarray(end);
    if (!continued) {
      this.lineNo++;
      if (content.length > 1 && content[0] === DASH && content[1] === DASH && this.frames.length && this.boundaryLine(content)) return;
    }
    if (this.entity) return this.headerLine(content, raw, continued);
    this.body?.line(content, eol, continued);
  }

  /** The end of the message: whatever is open ends. */
  end(): void {
    this.lineStart = this.offset;
    if (this.entity && !this.done) this.headerEnd();
    this.closeBody();
    this.frames.length = 0;
    this.stopped = true;
  }

  private trigger(trait: Trait, value: string): void {
    const mine = this.reading[trait];
    if (Array.isArray(mine) ? mine.includes(value) : mine === value) return;
    let values = this.triggered.get(trait);
    if (!values) this.triggered.set(trait, values = new Set());
    values.add(value);
  }

  private fail(reason: string): void {
    if (this.strictRfc && !this.malformed) this.malformed = reason;
  }

  // --- boundaries

  /** A line that may be a delimiter of an open multipart: true when this reading takes it as one. */
  private boundaryLine(content: Buffer): boolean {
    const text = content.toString('latin1');
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const frame = this.frames[i];
      const kind = delimiterKind(text, frame.boundary, this.reading.boundary);
      for (const alt of READING_VALUES.boundary) {
        if (alt !== this.reading.boundary && delimiterKind(text, frame.boundary, alt) !== kind) this.trigger('boundary', alt);
      }
      if (!kind) continue;
      if (frame.state === 'epilogue') {
        this.trigger('epilogue', 'parts');
        if (this.reading.epilogue === 'ignore') continue;
      }
      // an outer delimiter ends every multipart inside it
      this.closeBody();
      this.entity = undefined;
      this.frames.length = i + 1;
      if (kind === 'close') {
        frame.state = 'epilogue';
        this.body = new TextScan(this.sink, `${frame.path}/epilogue`);
      } else {
        frame.state = 'parts';
        frame.parts++;
        this.entity = newEntity(`${frame.path}.${frame.parts}`, frame.depth + 1, frame.digest ? 'message/rfc822' : 'text/plain');
      }
      return true;
    }
    if (this.strictRfc) {
      // RFC 2046 5.1.1: no line of a part may begin with a boundary of its multipart
      const frame = this.frames.find((f) => text.startsWith(`--${f.boundary}`));
      if (frame) this.fail(`line ${this.lineNo} begins with the boundary of part ${frame.path} but is no boundary line`);
    }
    return false;
  }

  // --- headers

  private headerLine(content: Buffer, raw: Buffer, continued: boolean): void {
    const entity = this.entity!;
    if (continued) return this.fail(`line ${this.lineNo} of the header of part ${entity.path} is longer than ${MAX_LINE_CHARS} characters`);
    if (content.length === 0) return this.headerEnd();
    entity.lines++;
    const text = content.toString('latin1');
    const kind = lineKind(text);
    noteLoose(entity, text, kind === 'other' || kind === 'continuation' ? entity.lastName : kind.field);
    // clamd cuts such a line into pieces where readers do not (RFC 5322 2.1.1: at most 998); in the message's
    // own header only a MIME field is held to it (long X- and address lines are found in ordinary mail)
    if (content.length > MAX_LINE_CHARS && (entity.depth > 0 || (kind !== 'other' && (kind === 'continuation'
      ? isMimeField(entity.lastName ?? '') : isMimeField(kind.field))))) {
      this.fail(`line ${this.lineNo} of the header of part ${entity.path} is longer than ${MAX_LINE_CHARS} characters`);
    }
    if (kind === 'continuation') {
      if (!entity.lastName) {
        if (entity.depth > 0 || entity.lines > 1) this.fail(`line ${this.lineNo} continues no field in the header of part ${entity.path}`);
        return;
      }
      if (entity.current) appendTo(entity.current, text, this);
      readOn(entity, text, false);
      return;
    }
    if (kind !== 'other') {
      const spaced = kind.spaced;
      const mime = isMimeField(kind.field);
      if (spaced && mime) this.trigger('names', 'strict');
      if (spaced && this.reading.names === 'strict') return this.startBodyAt(raw);
      // clamd joins the next line to a field left open by ";" or an odd number of quotes
      if ((entity.quoteOdd || entity.semicolon) && (mime || isMimeField(entity.lastName ?? ''))) {
        this.trigger('unfold', 'join');
        if (this.reading.unfold === 'join') {
          // the line is part of the field before (a field the walk does not keep swallows it)
          if (entity.current) appendTo(entity.current, text, this);
          readOn(entity, text, false);
          return;
        }
      }
      entity.lastName = kind.field;
      if (mime && entity.fields.length >= MAX_MIME_FIELDS) {
        this.malformed ??= `more than ${MAX_MIME_FIELDS} Content-* fields in the header of part ${entity.path}`;
        return;
      }
      entity.current = mime ? keep(entity, kind.field, kind.value) : undefined;
      readOn(entity, kind.value, true);
      return;
    }
    // the first line of a header (the message's, or an .eml saved from an mbox and attached) may be an envelope line
    if (entity.lines === 1 && text.startsWith('From ')) return;
    this.fail(`line ${this.lineNo} in the header of part ${entity.path} is not a header field`);
    // readers that go on (Python's email) start the body at such a line
    this.startBodyAt(raw);
  }

  /** The header ends before `raw`, which is the first line of the body. */
  private startBodyAt(raw: Buffer): void {
    this.headerEnd();
    if (this.done) return;
    let end = raw.length;
    if (end > 0 && raw[end - 1] === LF) end--;
    if (end > 0 && raw[end - 1] === CR) end--;
    this.body?.line(raw.subarray(0, end), raw.subarray(end), false);
  }

  private headerEnd(): void {
    const entity = this.entity!;
    this.entity = undefined;
    if (entity.depth > this.limits.maxDepth) {
      this.overLimit = `MIME parts nested deeper than ${this.limits.maxDepth} (clamd MaxRecursion)`;
      return;
    }
    const typeField = this.pick(entity, 'content-type');
    const cteField = this.pick(entity, 'content-transfer-encoding');
    const type = this.contentType(typeField, entity.defaultType, entity.loose);
    const encoding = this.encoding(cteField, entity.loose);
    if (type.media.startsWith('multipart/')) {
      if (!type.boundary) {
        this.fail(`part ${entity.path} is multipart without a boundary`);
        this.leaf(entity, type, encoding);
        return;
      }
      if (!isIdentity(encoding)) {
        // RFC 2045 6.4 forbids it; Python's email ignores the encoding, a reader may decode first
        this.trigger('multipartEncoding', 'decode');
        if (this.reading.multipartEncoding === 'decode') {
          this.leaf(entity, type, encoding, [`Content-Type: ${typeField ?? ''}`]);
          return;
        }
      }
      if (/[ \t]$/.test(type.boundary)) this.fail(`the boundary of part ${entity.path} ends in a blank (RFC 2046 5.1.1)`);
      if (typeField && /boundary\s*=\s*"(?:[^"\\]|\\.)*"[ \t]*[^;\s(]/i.test(typeField)) {
        this.fail(`the boundary parameter of part ${entity.path} has text after its quoted value`);
      }
      if (type.boundary.length > 70) this.fail(`the boundary of part ${entity.path} is longer than 70 characters (RFC 2046 5.1.1)`);
      this.frames.push({
        boundary: type.boundary, path: entity.path, depth: entity.depth, parts: 0, state: 'preamble',
        digest: type.media === 'multipart/digest',
      });
      this.body = new TextScan(this.sink, `${entity.path}/preamble`);
      return;
    }
    if ((type.media === 'message/rfc822' || type.media === 'message/global' || type.media === 'message/news') && isIdentity(encoding)) {
      // an attached message: its own header and body follow
      this.entity = newEntity(`${entity.path}.1`, entity.depth + 1, 'text/plain');
      return;
    }
    this.leaf(entity, type, encoding);
  }

  /** `header`: the body, decoded, is itself walked with this header (an encoded multipart, in the reading that decodes it) */
  private leaf(entity: Entity, type: ContentType, encoding: string, header?: string[]): void {
    if (++this.count.leaves > this.limits.maxLeaves) {
      this.overLimit = `more than ${this.limits.maxLeaves} MIME parts (clamd MaxFiles)`;
      return;
    }
    const disposition = this.pick(entity, 'content-disposition');
    const names = [...new Set([...fileNames(this.pick(entity, 'content-type'), 'name'), ...fileNames(disposition, 'filename')])];
    const info: LeafInfo = {
      path: entity.path, contentType: type.media, encoding, filename: type.name ?? this.dispositionName(entity),
      // an attachment to readers: a name, Content-Disposition: attachment, or content that is no text
      names, attachment: names.length > 0 || /^\s*attachment\b/i.test(disposition ?? '') || !/^(text|multipart|message)\//.test(type.media),
    };
    const leafAt = `${this.scope}@${this.lineStart}`;
    const inners: InnerWalk[] = [];
    const walkInside = (from: InnerWalk['from'], lenient: boolean): MimeWalker => {
      const walker = new MimeWalker(this.reading, this.limits, this.sink, {
        path: entity.path, depth: entity.depth, count: this.count, lenient, scope: `${leafAt}:${encoding}:${from}`,
      });
      inners.push({ walker, from, done: () => this.absorb(walker) });
      return walker;
    };
    if (header) {
      // an encoded multipart, in the reading that decodes it first: its decoded body taken apart under its header
      const walker = walkInside('decoded', false);
      for (const line of header) walker.line(Buffer.from(`${line}\r\n`, 'latin1'));
      walker.line(Buffer.from('\r\n'));
    } else if (type.media.startsWith('message/')) {
      // Python's email parses every message/* body as a message and ignores its encoding; other readers
      // decode it first: the part is scanned as it is (decoded), and walked into both ways
      // (RFC 2046 5.2.1 allows no encoding there: neither walk judges the structure)
      if (!isIdentity(encoding)) walkInside('decoded', true);
      walkInside('raw', true);
    }
    this.body = new LeafBody(this.sink, info, leafAt, this.reading, (t, v) => this.trigger(t, v), isTextual(type.media, encoding), inners);
  }

  private dispositionName(entity: Entity): string | undefined {
    const field = this.pick(entity, 'content-disposition');
    return field ? readParams(field, 'rfc').get('filename') : undefined;
  }

  private closeBody(): void {
    this.body?.end(this.lineStart);
    this.body = undefined;
  }

  /** The value of a field given once, or the occurrence this reading takes. */
  private pick(entity: Entity, name: string): string | undefined {
    const all = entity.fields.filter((f) => f.name === name);
    if (all.length > 1 && all.some((f) => f.value.trim() !== all[0].value.trim())) {
      this.trigger('repeated', 'last');
      this.fail(`part ${entity.path} has ${all.length} different ${name} fields`);
    }
    if (!all.length) return undefined;
    return (this.reading.repeated === 'first' ? all[0] : all[all.length - 1]).value;
  }

  private contentType(value: string | undefined, fallback: string, loose: Loose): ContentType {
    const read = (style: Reading['params']): ContentType => {
      if (style === 'loose-first' || style === 'loose-last') {
        const strict = read('plain');
        const at = style === 'loose-first' ? 0 : 1;
        const media = loose.multipart?.[at] ?? strict.media;
        return { media, boundary: loose.boundary?.[at] ?? strict.boundary, name: strict.name };
      }
      if (value === undefined) return { media: fallback };
      const params = readParams(value, style);
      const media = mediaType(value, style);
      return { media: media ?? 'text/plain', boundary: params.get('boundary'), name: params.get('name') };
    };
    const mine = read(this.reading.params);
    this.triggerDistinct('params', (style) => { const t = read(style); return `${t.media} ${t.boundary}`; });
    return mine;
  }

  /** Notes one value of each other outcome a parameter style would give (styles that agree are one reading). */
  private triggerDistinct(trait: 'params', outcome: (style: Reading['params']) => string): void {
    const seen = new Set([outcome(this.reading.params)]);
    for (const alt of READING_VALUES.params) {
      const o = outcome(alt);
      if (seen.has(o)) continue;
      seen.add(o);
      this.trigger(trait, alt);
    }
  }

  private encoding(value: string | undefined, loose: Loose): string {
    const read = (style: Reading['params']): string => {
      if (style === 'loose-first' || style === 'loose-last') return loose.encoding?.[style === 'loose-first' ? 0 : 1] ?? read('plain');
      if (value === undefined) return '7bit';
      return (style === 'rfc' ? stripComments(value) : value).trim().toLowerCase();
    };
    this.triggerDistinct('params', read);
    return read(this.reading.params);
  }
}

/** [first, last] of what loose readers find in a header. */
interface Loose {
  boundary?: [string, string];
  multipart?: [string, string];
  encoding?: [string, string];
}

/** Notes what loose readers (ripmime, munpack) would take from this header line (`field`: the field it belongs to). */
function noteLoose(entity: Entity, text: string, field: string | undefined): void {
  const note = (key: keyof Loose, value: string): void => {
    const seen = entity.loose[key];
    entity.loose[key] = seen ? [seen[0], value] : [value, value];
  };
  for (const m of text.matchAll(/boundary\s*=\s*(?:"([^"]*)"|([^;\s"()]+))/gi)) note('boundary', m[1] ?? m[2]);
  // a field named *Content-Type, or "Content-Type:" anywhere in a line (munpack, ripmime)
  if (field?.endsWith('content-type') || /content-type\s*:/i.test(text)) {
    const m = /multipart\s*\/\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)/i.exec(text);
    if (m) note('multipart', `multipart/${m[1].toLowerCase()}`);
  }
  if (field?.endsWith('content-transfer-encoding') || /content-transfer-encoding\s*:/i.test(text)) {
    if (/base64/i.test(text)) note('encoding', 'base64');
    else if (/quoted-printable/i.test(text)) note('encoding', 'quoted-printable');
  }
}

function newEntity(path: string, depth: number, defaultType: string): Entity {
  return { path, depth, defaultType, fields: [], quoteOdd: false, semicolon: false, lines: 0, loose: {} };
}

function keep(entity: Entity, name: string, value: string): Field {
  const field = { name, value };
  entity.fields.push(field);
  return field;
}

function appendTo(field: Field, text: string, walker: MimeWalker): void {
  if (field.value.length + text.length > MAX_FIELD_BYTES) {
    walker.malformed ??= `a ${field.name} field longer than ${MAX_FIELD_BYTES} bytes`;
    return;
  }
  field.value += text;
}

function isMimeField(name: string): boolean {
  return name.startsWith('content-') || name === 'mime-version';
}

/** Follows whether the field being read is left open for clamd (odd quotes, a ";" at its end), a line at a time. */
function readOn(entity: Entity, text: string, fresh: boolean): void {
  if (fresh) {
    entity.quoteOdd = false;
    entity.semicolon = false;
  }
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 0x22) entity.quoteOdd = !entity.quoteOdd;
  const trimmed = text.trimEnd();
  if (trimmed.length) entity.semicolon = trimmed.endsWith(';');
}

type LineKind = 'continuation' | 'other' | { field: string; value: string; spaced: boolean };

function lineKind(text: string): LineKind {
  const c = text.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return 'continuation';
  let i = 0;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch < 0x21 || ch > 0x7e || ch === 0x3a) break;
    i++;
  }
  if (i === 0) return 'other';
  let j = i;
  while (j < text.length && (text[j] === ' ' || text[j] === '\t')) j++;
  if (text[j] !== ':') return 'other';
  return { field: text.slice(0, i).toLowerCase(), value: text.slice(j + 1), spaced: j > i };
}

/** 'delimiter', 'close' or undefined: how a reader of this kind takes the line. */
export function delimiterKind(text: string, boundary: string, style: Reading['boundary']): 'delimiter' | 'close' | undefined {
  let rest: string;
  if (style === 'dashes') {
    const stripped = text.replace(/^-+/, '');
    const b = boundary.replace(/^-+/, '');
    if (!b || text.length - stripped.length < 2 || !stripped.startsWith(b)) return undefined;
    rest = stripped.slice(b.length);
    if (rest.startsWith('--')) return 'close';
    return /^ *$/.test(rest) ? 'delimiter' : undefined;
  }
  const delimiter = `--${boundary}`;
  if (!text.startsWith(delimiter)) return undefined;
  rest = text.slice(delimiter.length);
  const close = rest.startsWith('--');
  if (close) rest = rest.slice(2);
  if (style === 'prefix') return close ? 'close' : 'delimiter';
  const ok = style === 'exact' ? rest === '' : /^[ \t]*$/.test(rest);
  if (!ok) return undefined;
  return close ? 'close' : 'delimiter';
}

interface ContentType {
  media: string;
  boundary?: string;
  name?: string;
}

/** A walk inside a part: of its decoded bytes, or of its lines as they are. */
interface InnerWalk {
  walker: MimeWalker;
  from: 'decoded' | 'raw';
  /** what the inner walk found becomes the outer walk's */
  done: () => void;
}

/** Bytes a leaf hands on as they are (no decoder: identity, and encodings no reader knows). */
function isIdentityOrUnknown(encoding: string): boolean {
  return encoding !== 'base64' && encoding !== 'quoted-printable';
}

function isIdentity(encoding: string): boolean {
  return encoding === '7bit' || encoding === '8bit' || encoding === 'binary';
}

const UU_ENCODINGS = ['x-uuencode', 'uuencode', 'x-uue', 'uue'];

/** Text readers look into for uuencoded blocks (ripmime, munpack do; Python's email for the uuencode encodings). */
function isTextual(media: string, encoding: string): boolean {
  return isIdentity(encoding) || UU_ENCODINGS.includes(encoding) || media.startsWith('text/') || media === 'application/octet-stream';
}

// --- bodies

/** Looks for uuencoded blocks in text (a preamble, an epilogue, a text part) and hands each on as a leaf. */
class TextScan implements BodyHandler {
  private uu?: UuBlock;
  private blocks = 0;
  constructor(private readonly sink: LeafSink, private readonly path: string) {}

  line(content: Buffer, _eol: Buffer, continued: boolean): void {
    if (continued) return;
    if (this.uu) {
      if (!this.uu.line(content)) this.uu = undefined;
      return;
    }
    // readers are lenient here (Python takes any mode int() reads, ripmime any case): any "begin" and a word
    if (content.length >= 7 && (content[0] | 0x20) === 0x62 /* b */) {
      const m = /^begin(-base64)?[ \t]+\S/i.exec(content.toString('latin1', 0, 40));
      if (m) {
        // the file's name: what follows the mode (or, to a reader that takes no mode, the whole rest)
        const words = /^begin(?:-base64)?[ \t]+(\S+)(?:[ \t]+([^\r\n]*))?/i.exec(content.toString('latin1', 0, 1024));
        const names = [words?.[2]?.trim(), words && `${words[1]}${words[2] ? ` ${words[2]}` : ''}`.trim()].filter((n): n is string => !!n);
        const handle = this.sink.leafStart({
          path: `${this.path}/uu${++this.blocks}`, contentType: 'application/octet-stream', encoding: m[1] ? 'base64' : 'uuencode',
          filename: names[0], names, attachment: true,
        });
        this.uu = new UuBlock(handle, m[1] !== undefined);
      }
    }
  }

  end(): void {
    this.uu?.end();
    this.uu = undefined;
  }
}

class UuBlock {
  private readonly out: Output;
  private readonly b64?: Base64Decoder;
  constructor(handle: LeafHandle, base64: boolean) {
    this.out = new Output(handle);
    if (base64) this.b64 = new Base64Decoder('skip', () => undefined, (b) => this.out.push(b));
  }

  /** False at the block's end line. */
  line(content: Buffer): boolean {
    const text = content.toString('latin1');
    if (this.b64) {
      if (text === '====') return this.finish();
      this.b64.write(content);
      return true;
    }
    if (text.trimEnd() === 'end') return this.finish();
    if (!content.length) return true;
    const n = (content[0] - 32) & 63;
    const bytes = Buffer.alloc(n);
    let o = 0;
    for (let i = 1; o < n; i += 4) {
      const c = [0, 1, 2, 3].map((k) => (i + k < content.length ? (content[i + k] - 32) & 63 : 0));
      if (o < n) bytes[o++] = (c[0] << 2) | (c[1] >> 4);
      if (o < n) bytes[o++] = ((c[1] & 15) << 4) | (c[2] >> 2);
      if (o < n) bytes[o++] = ((c[2] & 3) << 6) | c[3];
    }
    this.out.push(bytes);
    return true;
  }

  private finish(): boolean {
    this.end();
    return false;
  }

  end(): void {
    this.b64?.end();
    this.out.end();
  }
}

/** Decoded bytes collected into pieces of about OUT_BYTES for the leaf. */
class Output {
  private parts: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  constructor(private readonly handle: LeafHandle) {}

  push(b: Buffer): void {
    if (!b.length) return;
    this.parts.push(b);
    this.bytes += b.length;
    if (this.bytes >= OUT_BYTES) this.flush();
  }

  flush(): void {
    if (!this.bytes) return;
    this.handle.data(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.bytes));
    this.parts = [];
    this.bytes = 0;
  }

  end(at?: number): void {
    if (this.ended) return;
    this.ended = true;
    this.flush();
    this.handle.end(at);
  }
}

/**
 * A leaf: its body decoded as its Content-Transfer-Encoding says (in each
 * decoding the reading lists: one scan each), text also looked into for
 * uuencode (in the first decoding).
 */
class LeafBody implements BodyHandler {
  private readonly outs: Output[] = [];
  private readonly b64: Base64Decoder[] = [];
  private readonly qp: QpDecoder[] = [];
  private readonly text?: TextScan;
  /** decoded text cut into lines for the uuencode search */
  private readonly lines?: LineCutter;
  private pendingEol?: Buffer;

  /** walks of the part as a message: of its decoded bytes (cut into lines), of its lines as they are */
  private readonly decodedInners: { walker: MimeWalker; lines: LineCutter }[] = [];
  private readonly rawInners: MimeWalker[] = [];
  private readonly innerDone: (() => void)[] = [];

  constructor(
    sink: LeafSink, info: LeafInfo, leafAt: string, reading: Reading, trigger: (t: Trait, v: string) => void, textual: boolean,
    inners: InnerWalk[] = [],
  ) {
    const enc = info.encoding;
    for (const inner of inners) {
      // with no decoding, the decoded bytes are the lines as they are
      if (inner.from === 'raw' || isIdentityOrUnknown(enc)) this.rawInners.push(inner.walker);
      else this.decodedInners.push({ walker: inner.walker, lines: new LineCutter((l, c) => inner.walker.line(l, c), true) });
      this.innerDone.push(() => { inner.walker.end(); inner.done(); });
    }
    // the reading's decodings, and those earlier walks found this very part read otherwise in
    const first: readonly string[] = enc === 'base64' ? reading.base64 : enc === 'quoted-printable' ? reading.qp : ['identity'];
    const modes = [...new Set([...first, ...(sink.decodingsOf?.(leafAt, enc) ?? [])])];
    const differs = (trait: 'base64' | 'qp') => (mode: string): void => {
      sink.noteDecoding?.(leafAt, enc, mode);
      trigger(trait, mode);
    };
    modes.forEach((mode, i) => {
      const source = `${leafAt}:${enc}-${mode}`;
      const out = new Output(sink.leafStart(i === 0 ? { ...info, source } : { ...info, path: `${info.path}/${enc}-${mode}`, source }));
      this.outs.push(out);
      const decodedTo = (b: Buffer): void => {
        out.push(b);
        if (i === 0) {
          this.lines?.write(b);
          for (const inner of this.decodedInners) inner.lines.write(b);
        }
      };
      if (enc === 'base64') this.b64.push(new Base64Decoder(mode as Base64Mode, differs('base64'), decodedTo));
      else if (enc === 'quoted-printable') this.qp.push(new QpDecoder(mode as QpMode, differs('qp'), decodedTo));
    });
    if (textual) {
      this.text = new TextScan(sink, info.path);
      if (enc === 'base64' || enc === 'quoted-printable') this.lines = new LineCutter((l) => this.text!.line(l, Buffer.alloc(0), false));
    }
  }

  line(content: Buffer, eol: Buffer, continued: boolean): void {
    if (this.rawInners.length) {
      const raw = eol.length ? Buffer.concat([content, eol]) : content;
      for (const walker of this.rawInners) walker.line(raw, continued);
    }
    if (this.b64.length) {
      for (const d of this.b64) d.write(content);
      return;
    }
    if (this.qp.length) {
      for (const d of this.qp) d.line(content, eol);
      return;
    }
    // identity: the line ending before a boundary belongs to the boundary (RFC 2046 5.1.1), so it waits
    const out = this.outs[0];
    if (this.pendingEol) out.push(this.pendingEol);
    out.push(content);
    this.pendingEol = eol.length ? eol : undefined;
    this.text?.line(content, eol, continued);
  }

  end(at?: number): void {
    for (const d of this.b64) d.end();
    for (const d of this.qp) d.end();
    this.lines?.end();
    this.text?.end();
    for (const out of this.outs) out.end(at);
    for (const inner of this.decodedInners) inner.lines.end();
    for (const done of this.innerDone) done();
  }
}

/**
 * Cuts bytes into lines (CRLF or LF): for TextScan without their endings
 * (overlong lines dropped), for a walk with them (lines over `maxLine` in
 * pieces, the later ones `continued`).
 */
export class LineCutter {
  private rest: Buffer = Buffer.alloc(0);
  constructor(
    private readonly onLine: (line: Buffer, continued: boolean) => void, private readonly withEndings = false,
    private readonly maxLine = MAX_TEXT_LINE,
  ) {}
  private midLine = false;

  write(b: Buffer): void {
    let data = this.rest.length ? Buffer.concat([this.rest, b]) : b;
    let at = 0;
    for (;;) {
      const nl = data.indexOf(LF, at);
      if (nl < 0) break;
      const end = this.withEndings ? nl + 1 : nl > at && data[nl - 1] === CR ? nl - 1 : nl;
      this.onLine(data.subarray(at, end), this.midLine);
      this.midLine = false;
      at = nl + 1;
    }
    data = data.subarray(at);
    if (data.length <= this.maxLine) {
      this.rest = Buffer.from(data);
    } else {
      this.rest = Buffer.alloc(0);
      if (this.withEndings) {
        this.onLine(data, this.midLine);
        this.midLine = true;
      }
    }
  }

  end(): void {
    if (this.rest.length) this.onLine(this.rest, this.midLine);
    this.rest = Buffer.alloc(0);
  }
}
