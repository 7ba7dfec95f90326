// clamd.conf as clamd reads it (ClamAV shared/optparser.c): one `Name value`
// per line, names case-sensitive, lines starting with `#` are comments, and a
// line starting with `Example` makes clamd refuse the whole file. A setting
// given twice keeps its FIRST value: clamd ignores the later lines (checked
// with clamd 1.4.6), so appending "AlertExceedsMax yes" after a "no" changes
// nothing. Pure: which settings the relay needs are missing.

import { Diagnostic } from './diagnostics';

export interface ClamdSetting {
  value: string;
  line: number;
}

export interface ClamdConf {
  /** the value clamd uses: the first one */
  settings: Map<string, ClamdSetting>;
  /** later lines of a setting, which clamd ignores */
  ignored: Map<string, ClamdSetting[]>;
  /** an `Example` line: clamd does not start with this file (the rest is read as if it were gone) */
  exampleLine?: number;
}

export function parseClamdConf(text: string): ClamdConf {
  const settings = new Map<string, ClamdSetting>();
  const ignored = new Map<string, ClamdSetting[]>();
  let exampleLine: number | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const body = lines[i].replace(/\r$/, '').replace(/^[ \t]+/, '');
    if (body.length <= 1 || body.startsWith('#')) continue;
    // clamd refuses to start; removing the line is the operator's next step, so read on
    if (body.startsWith('Example')) {
      exampleLine ??= line;
      continue;
    }
    const m = /^(\S+)[ \t]+(.*?)[ \t]*$/.exec(body);
    if (!m || !m[2]) continue; // clamd: "Missing argument"; not ours to judge
    const value = /^"(.*)"$/.exec(m[2])?.[1] ?? m[2];
    const first = settings.get(m[1]);
    if (first) ignored.set(m[1], [...(ignored.get(m[1]) ?? []), { value, line }]);
    else settings.set(m[1], { value, line });
  }
  return { settings, ignored, exampleLine };
}

/** clamd's BOOL: yes, true, 1 (any case) are true; anything else is false. */
const isYes = (value: string): boolean => /^(yes|true|1)$/i.test(value);

interface Requirement {
  /** the line that fixes it, as config/clamd-esets-relay.conf writes it */
  fix: string;
  /** any of these set to yes meets it (clamd ORs them) */
  anyOf: readonly string[];
  /** clamd's default when none of them is set */
  defaultYes: boolean;
  /** what goes wrong without it */
  why: string;
}

const ENCRYPTED_ARCHIVES: Requirement = {
  fix: 'AlertEncryptedArchive yes', anyOf: ['AlertEncrypted', 'AlertEncryptedArchive', 'ArchiveBlockEncrypted'], defaultYes: false,
  why: 'encrypted archives (.zip, .7z, .rar) are reported clean',
};
const ENCRYPTED_DOCS: Requirement = {
  fix: 'AlertEncryptedDoc yes', anyOf: ['AlertEncrypted', 'AlertEncryptedDoc', 'ArchiveBlockEncrypted'], defaultYes: false,
  why: 'encrypted documents (.pdf) are reported clean',
};

const REQUIREMENTS: readonly Requirement[] = [
  {
    fix: 'AlertExceedsMax yes', anyOf: ['AlertExceedsMax'], defaultYes: false,
    why: "content beyond clamd's limits (MaxScanSize, MaxFileSize, MaxRecursion, MaxFiles) is reported clean",
  },
  ENCRYPTED_ARCHIVES,
  ENCRYPTED_DOCS,
  { fix: 'ScanMail yes', anyOf: ['ScanMail'], defaultYes: true, why: 'attachments are not decoded, only the raw message is searched' },
  { fix: 'ScanArchive yes', anyOf: ['ScanArchive'], defaultYes: true, why: 'archives are not opened, their members are not scanned' },
];

export interface MissingSetting {
  /** the line to have, e.g. "AlertExceedsMax yes" */
  fix: string;
  /** the line whose value clamd uses instead, when the setting is there with another value */
  line?: number;
  /** that line as written, e.g. "AlertExceedsMax no" */
  current?: string;
  /** later lines that set it as wanted but are ignored (clamd keeps the first value) */
  ignoredLines: number[];
  why: string;
}

/** The settings the relay needs that clamd, reading this file, would not have. */
export function missingClamdSettings(conf: ClamdConf): MissingSetting[] {
  const unmet = REQUIREMENTS.filter((req) => {
    const set = req.anyOf.map((name) => conf.settings.get(name)).filter((s): s is ClamdSetting => s !== undefined);
    return set.length ? !set.some((s) => isYes(s.value)) : !req.defaultYes;
  });
  // both encrypted kinds missing: the one switch AlertEncrypted fixes both
  const merged = unmet.includes(ENCRYPTED_ARCHIVES) && unmet.includes(ENCRYPTED_DOCS)
    ? unmet.filter((r) => r !== ENCRYPTED_DOCS).map((r) => (r === ENCRYPTED_ARCHIVES
      ? {
        ...r, fix: 'AlertEncrypted yes', anyOf: ['AlertEncrypted'],
        why: 'encrypted archives (.zip, .7z, .rar) and documents (.pdf) are reported clean',
      }
      : r))
    : unmet;
  return merged.map((req) => {
    const name = req.fix.split(' ')[0];
    const setting = conf.settings.get(name);
    const ignoredLines = (conf.ignored.get(name) ?? []).filter((s) => isYes(s.value)).map((s) => s.line);
    return { fix: req.fix, line: setting?.line, current: setting && `${name} ${setting.value}`, ignoredLines, why: req.why };
  });
}

/** clamd's SIZE values: digits with an optional K, M or G (1024-based); undefined when unreadable. */
export function clamdSize(value: string): number | undefined {
  const m = /^(\d+)([kmg]?)$/i.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
}

/** ClamAV 1.4's defaults, and the largest MaxFileSize it takes (a larger value is cut to this) */
const DEFAULT_MAX_SCAN_SIZE = 400 * 1024 * 1024;
const DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024;
const MAX_FILE_SIZE_CAP = 2_147_483_645;
/** clamd's unzip writes in BUFSIZ steps: a cut member is at most this much under MaxFileSize */
const UNZIP_STEP = 8 * 1024;

/**
 * clamd (libclamav unzip.c, unz()) cuts a compressed zip member at MaxFileSize and scans only the part it
 * kept, without an alert: EICAR after 101 MiB of padding, a 100 KB .zip, is reported clean. The cut part
 * trips the MaxScanSize alert only when MaxFileSize is above MaxScanSize (by more than one write step).
 * A MaxFileSize of 0 (no limit) cuts nothing.
 */
export function zipCutWarning(conf: ClamdConf, file: string): Diagnostic | undefined {
  const fileSetting = conf.settings.get('MaxFileSize');
  const scanSetting = conf.settings.get('MaxScanSize');
  const fileSize = fileSetting ? clamdSize(fileSetting.value) : DEFAULT_MAX_FILE_SIZE;
  const scanSize = scanSetting ? clamdSize(scanSetting.value) : DEFAULT_MAX_SCAN_SIZE;
  if (fileSize === undefined || scanSize === undefined || fileSize === 0) return undefined;
  if (scanSize !== 0 && Math.min(fileSize, MAX_FILE_SIZE_CAP) > scanSize + UNZIP_STEP) return undefined;
  const shown = (setting: ClamdSetting | undefined, name: string, fallback: number): string =>
    (setting ? `${name} ${setting.value}` : `${name} ${fallback / 1024 / 1024}M (clamd's default)`);
  const mib = Math.ceil(scanSize / 1024 / 1024) + 1;
  const fix = scanSize === 0
    ? 'set MaxScanSize (e.g. "MaxScanSize 400M") and MaxFileSize above it (e.g. "MaxFileSize 401M")'
    : mib <= 2047
      ? `set "MaxFileSize ${mib}M" (above MaxScanSize; at most 2047M)`
      : 'set "MaxScanSize 2046M" (or less) and "MaxFileSize 2047M" (clamd\'s largest)';
  return {
    severity: 'warning', file, line: fileSetting?.line, key: 'MaxFileSize',
    message: `${shown(fileSetting, 'MaxFileSize', DEFAULT_MAX_FILE_SIZE)} `
      + `is not above ${shown(scanSetting, 'MaxScanSize', DEFAULT_MAX_SCAN_SIZE)}: `
      + 'clamd cuts a compressed zip member at MaxFileSize and scans only the part it kept, with no alert, so content '
      + `after the cut is reported clean; ${fix} and restart clamd`,
  };
}

/** One warning per missing setting, compiler-style, naming the fix and where the full set is (snippet). */
export function clamdConfWarnings(text: string, file: string, snippet: string): Diagnostic[] {
  const conf = parseClamdConf(text);
  const warnings: Diagnostic[] = [];
  if (conf.exampleLine !== undefined) {
    warnings.push({
      severity: 'warning', file, line: conf.exampleLine,
      message: 'an "Example" line: clamd does not start with this file; remove the line',
    });
  }
  for (const m of missingClamdSettings(conf)) {
    const name = m.fix.split(' ')[0];
    const what = m.current ? `"${m.current}"` : `${name} is not set`;
    const ignored = m.ignoredLines.length
      ? ` (line ${m.ignoredLines.join(', ')} has no effect: clamd uses the first value of a setting)`
      : '';
    const fix = m.current ? `change this line to "${m.fix}"` : `add "${m.fix}"`;
    warnings.push({
      severity: 'warning', file, line: m.line, key: name,
      message: `${what}: ${m.why}${ignored}; ${fix} (${snippet} has every setting the relay needs) and restart clamd`,
    });
  }
  const cut = zipCutWarning(conf, file);
  if (cut) warnings.push(cut);
  return warnings;
}

/** Where Debian's clamav-daemon listens (its clamd.conf LocalSocket; /var/run is a link to /run). */
export const DEBIAN_CLAMD_SOCKETS: readonly string[] = ['/run/clamav/clamd.ctl', '/var/run/clamav/clamd.ctl'];
export const DEBIAN_CLAMD_CONF = '/etc/clamav/clamd.conf';

/**
 * Which clamd.conf describes the clamd the relay uses: clamd_config when it is
 * set; Debian's own file only when daemon_sock_path names Debian's socket (that
 * file then belongs to that clamd); otherwise none (a private or remote clamd:
 * another file on this host would describe some other daemon).
 */
export function clamdConfFor(clamdConfig: string, daemonSockPath: readonly string[]): string | undefined {
  if (clamdConfig) return clamdConfig;
  return daemonSockPath.some((a) => DEBIAN_CLAMD_SOCKETS.includes(a)) ? DEBIAN_CLAMD_CONF : undefined;
}

/** Said where clamdConfFor names no file: at start (the esets_policy plugin, info) and by --check (a note). */
export function noClamdConfNote(daemonSockPath: readonly string[]): string {
  return `no clamd.conf checked: clamd_config is not set and daemon_sock_path (${daemonSockPath.join(', ')}) is not Debian's clamd; `
    + 'set clamd_config in [global] to its clamd.conf for the relay to check the alerts and limits it needs';
}

/** The limits clamd scans within that the relay's own MIME walk keeps too. */
export interface ClamdScanLimits {
  maxRecursion: number;
  maxFiles: number;
  /** larger files (parts, archive members) are not scanned */
  maxFileSize: number;
  /** bytes clamd scans of one object at most (parts and members of a message, together) */
  maxScanSize: number;
  /** clamd opens archives (ScanArchive): small parts may go to it as one archive */
  scanArchive: boolean;
}

/** clamd 1.4's own defaults (clamd.conf(5)). */
export const CLAMD_DEFAULT_LIMITS: ClamdScanLimits = {
  maxRecursion: 17, maxFiles: 10000, maxFileSize: 100 * 1024 ** 2, maxScanSize: 400 * 1024 ** 2, scanArchive: true,
};

/** The scan limits of a clamd.conf (its first values), clamd's defaults where unset or unreadable; 0 is clamd's "no limit". */
export function clamdScanLimits(conf: ClamdConf | undefined): ClamdScanLimits {
  const read = (name: string, fallback: number, parse: (v: string) => number | undefined): number => {
    const v = conf?.settings.get(name)?.value;
    const n = v === undefined ? undefined : parse(v);
    if (n === undefined) return fallback;
    return n === 0 ? Number.MAX_SAFE_INTEGER : n;
  };
  const count = (v: string): number | undefined => (/^\d+$/.test(v) ? Number(v) : undefined);
  const archive = conf?.settings.get('ScanArchive')?.value;
  return {
    maxRecursion: read('MaxRecursion', CLAMD_DEFAULT_LIMITS.maxRecursion, count),
    maxFiles: read('MaxFiles', CLAMD_DEFAULT_LIMITS.maxFiles, count),
    maxFileSize: read('MaxFileSize', CLAMD_DEFAULT_LIMITS.maxFileSize, clamdSize),
    maxScanSize: read('MaxScanSize', CLAMD_DEFAULT_LIMITS.maxScanSize, clamdSize),
    scanArchive: archive === undefined ? CLAMD_DEFAULT_LIMITS.scanArchive : isYes(archive),
  };
}
