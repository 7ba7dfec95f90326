// esets_quar's command line: which command, its entry id and filters. Pure:
// the command itself is bin/esets_quar.

import { DEFAULT_CONFIG_PATH } from './command_line';
import { isQuarantineId, QuarantineFilter, QuarantineVerdict } from './quarantine';

export type QuarCommand =
  | { command: 'help' }
  | { command: 'version' }
  | { command: 'list'; filter: QuarantineFilter }
  | { command: 'show' | 'delete'; id: string }
  | { command: 'release'; id: string; to: string[]; force: boolean }
  | { command: 'expire' };

export interface QuarCommandLine {
  configPath: string;
  json: boolean;
  run?: QuarCommand;
  /** what is wrong with the command line (exit 2) */
  error?: string;
}

export const QUAR_USAGE = [
  'usage: esets_quar [-c FILE] [--json] COMMAND',
  '  list [--since TIME] [--until TIME] [--sender TEXT] [--recipient TEXT] [--verdict infected|banned|cleaned]',
  '  show ID                      an entry: what was stored, and the message\'s header',
  '  release ID [--to ADDRESS]... [--force]',
  '                               send it to its recipients (or ADDRESS) through the mail server; a second time needs --force',
  '  delete ID',
  '  expire                       remove what quarantine_max_age and quarantine_max_size no longer keep',
  `  -c, --config FILE            esets.cfg (default ${DEFAULT_CONFIG_PATH}): daemon_quarantine, the mail server`,
  '  --json                       one JSON document on stdout',
  'TIME: 2026-12-06, 2026-12-06T10:00Z, or an age: 30m, 12h, 7d',
].join('\n');

const VERDICTS: readonly QuarantineVerdict[] = ['infected', 'banned', 'cleaned'];

/** `2026-12-06`, an ISO time, or an age before `now` (`30m`, `12h`, `7d`). */
export function parseTime(text: string, now: Date): Date | undefined {
  const age = /^(\d+)([smhd])$/.exec(text);
  if (age) return new Date(now.getTime() - Number(age[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[age[2] as 's' | 'm' | 'h' | 'd'] * 1000);
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

export function parseQuarCommandLine(argv: readonly string[], now = new Date()): QuarCommandLine {
  const result: QuarCommandLine = { configPath: DEFAULT_CONFIG_PATH, json: false };
  const fail = (error: string): QuarCommandLine => ({ ...result, run: undefined, error });
  const rest: string[] = [];
  const filter: QuarantineFilter = {};
  const to: string[] = [];
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const [flag, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg];
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '-h': case '--help': return { ...result, run: { command: 'help' } };
      case '-v': case '--version': return { ...result, run: { command: 'version' } };
      case '--json': result.json = true; break;
      case '--force': force = true; break;
      case '-c': case '--config': {
        const v = value();
        if (!v) return fail(`${flag} needs a file`);
        result.configPath = v;
        break;
      }
      case '--since': case '--until': {
        const v = value();
        const at = v === undefined ? undefined : parseTime(v, now);
        if (!at) return fail(`${flag} needs a time (2026-12-06, 2026-12-06T10:00Z, or an age: 30m, 12h, 7d)${v ? `, not '${v}'` : ''}`);
        filter[flag === '--since' ? 'since' : 'until'] = at;
        break;
      }
      case '--sender': case '--recipient': {
        const v = value();
        if (v === undefined) return fail(`${flag} needs a text to look for`);
        filter[flag === '--sender' ? 'sender' : 'recipient'] = v;
        break;
      }
      case '--verdict': {
        const v = value();
        if (!v || !VERDICTS.includes(v as QuarantineVerdict)) {
          return fail(`--verdict is one of ${VERDICTS.join(', ')}${v ? `, not '${v}'` : ''}`);
        }
        filter.verdict = v as QuarantineVerdict;
        break;
      }
      case '--to': {
        const v = value();
        if (!v || !/^[^\s<>@]+@[^\s<>@]+$/.test(v)) return fail(`--to needs an address (user@domain)${v ? `, not '${v}'` : ''}`);
        to.push(v);
        break;
      }
      default:
        if (arg.startsWith('-')) return fail(`unknown option '${arg}'`);
        rest.push(arg);
    }
  }
  const [command, id, ...extra] = rest;
  if (!command) return fail('a command is needed: list, show, release, delete or expire');
  const takesId = ['show', 'delete', 'release'].includes(command);
  if (!['list', 'expire', ...(takesId ? [command] : [])].includes(command)) {
    return fail(`unknown command '${command}': list, show, release, delete or expire`);
  }
  if (takesId && !id) return fail(`${command} needs an entry id (esets_quar list shows them)`);
  if (takesId && !isQuarantineId(id)) return fail(`'${id}' is not an entry id (such as 20261206T234900Z-0123456789ab)`);
  if ((takesId ? extra : [id, ...extra].filter((x) => x !== undefined)).length) return fail(`unexpected '${(takesId ? extra : [id])[0]}'`);
  const filterUsed = Object.keys(filter).length > 0;
  if (filterUsed && command !== 'list') return fail('--since, --until, --sender, --recipient and --verdict go with list');
  if ((to.length || force) && command !== 'release') return fail('--to and --force go with release');
  switch (command) {
    case 'list': return { ...result, run: { command, filter } };
    case 'expire': return { ...result, run: { command } };
    case 'release': return { ...result, run: { command, id, to, force } };
    default: return { ...result, run: { command: command as 'show' | 'delete', id } };
  }
}
