// File types an operator bans (av_banned_types), as amavisd-new does: each
// name of one table maps to content (magic bytes) and file-name extensions.
// A part or archive member matches by what it is or by what it is called, but
// only an attachment (a name, or Content-Disposition: attachment) or an archive
// member: never the text of a message or its HTML alternative.

export interface BannedType {
  name: string;
  /** lower-case, without the dot */
  extensions: readonly string[];
  /** content that is this type whatever its name */
  content?: (head: Buffer) => boolean;
  /** media types that declare it (an attachment's Content-Type: what the reader's system opens it as) */
  mediaTypes?: readonly string[];
  /** what docs/containers.md says it catches */
  note: string;
}

const starts = (head: Buffer, bytes: number[] | string, offset = 0): boolean => {
  const magic = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
  return head.length >= offset + magic.length && head.subarray(offset, offset + magic.length).equals(magic);
};

/** A PE image (MZ header pointing at "PE\0\0"): `dll` when its characteristics say DLL. */
function peKind(head: Buffer): 'exe' | 'dll' | 'dos' | undefined {
  if (!starts(head, 'MZ')) return undefined;
  if (head.length < 0x40) return 'dos';
  const pe = head.readUInt32LE(0x3c);
  if (pe + 24 > head.length || !starts(head, 'PE\0\0', pe)) return 'dos';
  // IMAGE_FILE_HEADER.Characteristics: IMAGE_FILE_DLL
  return head.readUInt16LE(pe + 22) & 0x2000 ? 'dll' : 'exe';
}

/** Elements a browser renders as a page when a document starts with one. */
const PAGE_START = /^<(?:html|head|body|script|svg|meta|iframe|frameset|form|title|style|link|base|object|embed)[\s>/]/i;
/** What may precede the first element: blanks, an XML prolog, comments, a doctype. */
const PROLOG = /^(?:\s+|<\?[^>]*\?>|<!--[\s\S]*?-->|<!doctype[^>]*>)/i;

/** Markup a browser shows as a page: after any prolog, comments or doctype, a page element comes first. */
function isMarkup(head: Buffer): boolean {
  let text = head.subarray(0, 4096).toString('latin1').replace(/^(?:\xef\xbb\xbf|\xff\xfe|\xfe\xff)/, '');
  if (/^\s*<!doctype\s+html/i.test(text)) return true;
  for (let i = 0; i < 64; i++) {
    const m = PROLOG.exec(text);
    if (!m) break;
    text = text.slice(m[0].length);
  }
  return PAGE_START.test(text);
}

export const BANNED_TYPES: readonly BannedType[] = [
  {
    name: 'exe', extensions: ['exe', 'com', 'scr', 'pif', 'cpl', 'msi', 'msp', 'appx', 'msix', 'jar'],
    content: (h) => { const k = peKind(h); return k === 'exe' || k === 'dos'; },
    mediaTypes: ['application/x-msdownload', 'application/x-dosexec', 'application/x-msdos-program', 'application/x-ms-installer',
      'application/vnd.microsoft.portable-executable', 'application/java-archive'],
    note: 'Windows and DOS programs (MZ/PE content), installers, Java archives by name',
  },
  {
    name: 'dll', extensions: ['dll', 'ocx', 'sys', 'drv'],
    content: (h) => peKind(h) === 'dll',
    note: 'Windows libraries and drivers (PE content with the DLL flag)',
  },
  {
    name: 'script',
    extensions: [
      'js', 'jse', 'vbs', 'vbe', 'wsf', 'wsh', 'wsc', 'ps1', 'psm1', 'psd1', 'bat', 'cmd', 'hta', 'sct', 'reg', 'vb', 'application', 'url',
      'scf', 'inf',
    ],
    content: (h) => starts(h, '#!') || starts(h, '#@~^'),
    mediaTypes: ['application/javascript', 'application/x-javascript', 'text/javascript', 'text/vbscript', 'application/hta',
      'application/x-powershell', 'application/x-bat', 'application/x-sh'],
    note: 'scripts Windows runs by name (JScript, VBScript, PowerShell, batch, HTA, WSF); '
      + '"#!" scripts and encoded JScript/VBScript by content',
  },
  {
    name: 'lnk', extensions: ['lnk'],
    content: (h) => starts(h, [0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46]),
    note: 'Windows shortcuts',
  },
  {
    name: 'iso', extensions: ['iso'],
    content: (h) => starts(h, 'CD001', 0x8001) || starts(h, 'CD001', 0x8801) || starts(h, 'BEA01', 0x8001),
    note: 'ISO 9660 and UDF disc images (Windows mounts them on a double click)',
  },
  {
    name: 'img', extensions: ['img', 'vhd', 'vhdx', 'dmg'],
    content: (h) => starts(h, 'vhdxfile') || starts(h, 'conectix') || starts(h, 'koly'),
    note: 'disk images (VHD, VHDX, raw .img, Apple .dmg)',
  },
  {
    name: 'one', extensions: ['one', 'onepkg'],
    content: (h) => starts(h, [0xe4, 0x52, 0x5c, 0x7b, 0x8c, 0xd8, 0xa7, 0x4d, 0xae, 0xb1, 0x53, 0x78, 0xd0, 0x29, 0x96, 0xd3]),
    note: 'OneNote notebooks',
  },
  {
    name: 'html', extensions: ['htm', 'html', 'xhtml', 'shtml', 'mht', 'mhtml', 'svg'],
    content: isMarkup,
    mediaTypes: ['text/html', 'application/xhtml+xml', 'image/svg+xml', 'message/rfc822+html', 'application/x-mimearchive'],
    note: 'HTML (and SVG) attachments, which open in a browser with scripts and forms',
  },
];

export const BANNED_TYPE_NAMES: readonly string[] = BANNED_TYPES.map((t) => t.name);

/**
 * The extension a name ends with, as Windows reads it: the last path segment,
 * trailing dots and blanks dropped, lower case (`a.EXE. ` is an exe).
 */
export function extensionOf(name: string): string | undefined {
  const base = name.replace(/\0.*$/s, '').split(/[\\/]/).pop() ?? '';
  const trimmed = base.replace(/[. ]+$/, '');
  const dot = trimmed.lastIndexOf('.');
  return dot >= 0 ? trimmed.slice(dot + 1).toLowerCase() : undefined;
}

/**
 * The first of `banned` (names from BANNED_TYPES) that `head` (the start of an
 * attachment or member), one of its `names` or its declared `mediaType` is.
 */
export function bannedTypeOf(banned: readonly string[], head: Buffer, names: readonly string[], mediaType?: string): string | undefined {
  if (!banned.length) return undefined;
  const extensions = names.map(extensionOf).filter((e): e is string => e !== undefined);
  for (const type of BANNED_TYPES) {
    if (!banned.includes(type.name)) continue;
    if (type.content?.(head) || extensions.some((e) => type.extensions.includes(e))) return type.name;
    if (mediaType && type.mediaTypes?.includes(mediaType)) return type.name;
  }
  return undefined;
}
