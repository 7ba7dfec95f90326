// The esets_smtp command line, following the manual's COMMAND LINE OPTIONS:
// integer and string options take a value, booleans are --opt / --no-opt.

import { Diagnostic } from './diagnostics';
import { didYouMean } from './suggestions';
import {
  EsetsConfig, OPTION_SPECS, OptionName, describeType, isOptionName, parseOptionValue,
} from './esets_options';

export const DEFAULT_CONFIG_PATH = 'config/esets.cfg';
const SOURCE = 'command line';

export interface CommandLine {
  /** check: read and check everything a run would, start nothing (--check, -t) */
  command: 'run' | 'check' | 'help' | 'version';
  configPath: string;
  /** Haraka config folder to run with (default: the package's config/) */
  harakaConfigDir?: string;
  /** --check --haraka-dir DIR: an operator's Haraka folder (haraka -c DIR) to check instead of a launcher run */
  harakaDir?: string;
  overrides: Partial<EsetsConfig>;
  diagnostics: Diagnostic[];
}

/** The launcher's own options, besides the esets.cfg ones (underscore spelling, as names are compared). */
const OWN_OPTIONS = ['config', 'haraka_config', 'haraka_dir', 'check', 'help', 'version'];

/** Every name `--NAME` may take, for the suggestion after an unknown one. */
function knownNames(): string[] {
  const options = commandLineOptions();
  return [...OWN_OPTIONS, ...options, ...options.filter((n) => OPTION_SPECS[n].type.kind === 'bool').map((n) => `no_${n}`)];
}

/** Options that may be given on the command line: those of the [smtp] section. */
export function commandLineOptions(): OptionName[] {
  return (Object.keys(OPTION_SPECS) as OptionName[]).filter((n) => OPTION_SPECS[n].scope !== 'global');
}

export function parseCommandLine(argv: readonly string[]): CommandLine {
  const result: CommandLine = { command: 'run', configPath: DEFAULT_CONFIG_PATH, overrides: {}, diagnostics: [] };
  const error = (message: string): void => {
    result.diagnostics.push({ severity: 'error', file: SOURCE, message });
  };
  const overrides = result.overrides as Record<string, unknown>;
  /** --config or -c given, in any spelling (--haraka-dir refuses it) */
  let configGiven = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') return { ...result, command: 'help' };
    if (arg === '-v') return { ...result, command: 'version' };
    if (arg === '-t') {
      result.command = 'check';
      continue;
    }

    const m = /^--([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(arg);
    if (!m && arg !== '-c') {
      error(`unexpected argument '${arg}' (options start with --; see --help)`);
      continue;
    }
    // the launcher's own options are spelt as freely as the esets.cfg ones: --Check as --Config
    const name = m ? m[1].toLowerCase().replace(/-/g, '_') : 'config';
    let inline = m ? m[2] : undefined;
    if (name === 'help' || name === 'version' || name === 'check') {
      if (inline !== undefined) {
        error(`option '--${m![1]}' takes no value (given '${inline}')`);
        continue;
      }
      if (name === 'check') {
        result.command = 'check';
        continue;
      }
      return { ...result, command: name };
    }
    const takeValue = (): string | undefined => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) return undefined;
      return argv[++i];
    };

    if (name === 'config' || name === 'haraka_config' || name === 'haraka_dir') {
      if (name === 'config') configGiven = true;
      const value = takeValue();
      if (value === undefined || value === '') error(`${arg} needs a ${name === 'config' ? 'file' : 'folder'} name`);
      else if (name === 'config') result.configPath = value;
      else if (name === 'haraka_config') result.harakaConfigDir = value;
      else result.harakaDir = value;
      continue;
    }

    const negated = name.startsWith('no_') && isCliOption(name.slice(3)) && OPTION_SPECS[name.slice(3) as OptionName].type.kind === 'bool';
    const key = negated ? name.slice(3) : name;
    if (!isCliOption(key)) {
      const hint = didYouMean(name, knownNames(), (n) => `--${n.replace(/_/g, '-')}`);
      error(`unknown option '--${m ? m[1] : name}'${hint || ' (see --help)'}`);
      // its value, if it has one, is not a second error
      if (inline === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('-')) i++;
      continue;
    }
    if (OPTION_SPECS[key].type.kind === 'bool') {
      if (inline !== undefined) {
        const parsed = parseOptionValue(key, inline);
        if (!parsed.ok) error(`option '--${m![1]}' has invalid value '${inline}': expected ${parsed.expected}`);
        else overrides[key] = negated ? !parsed.value : parsed.value;
      } else {
        overrides[key] = !negated;
      }
      continue;
    }
    const raw = takeValue();
    if (raw === undefined) {
      error(`option '--${m![1]}' needs a value: ${describeType(OPTION_SPECS[key].type)}`);
      continue;
    }
    const parsed = parseOptionValue(key, stripQuotes(raw));
    if (!parsed.ok) error(`option '--${m![1]}' has invalid value '${raw}': expected ${parsed.expected}`);
    else overrides[key] = parsed.value;
    inline = undefined;
  }
  return withHarakaDirRules(result, configGiven);
}

/** --haraka-dir checks an operator's folder: its own files name esets.cfg and the overrides, and nothing is run. */
function withHarakaDirRules(result: CommandLine, configGiven: boolean): CommandLine {
  if (result.harakaDir === undefined) return result;
  const error = (message: string): void => {
    result.diagnostics.push({ severity: 'error', file: SOURCE, message });
  };
  if (result.command !== 'check') error('--haraka-dir DIR is for --check (esets_smtp --check --haraka-dir DIR); haraka -c DIR runs it');
  if (configGiven) {
    error('--config is not used with --haraka-dir: DIR/config/esets_relay.ini [main] esets_cfg names the esets.cfg checked');
  }
  if (result.harakaConfigDir !== undefined) error('--haraka-config is not used with --haraka-dir: DIR/config is the Haraka config folder');
  if (Object.keys(result.overrides).length) {
    error('option overrides are not used with --haraka-dir: DIR/config/esets_relay.ini [overrides] holds that folder\'s');
  }
  return result;
}

function isCliOption(name: string): name is OptionName {
  return isOptionName(name) && OPTION_SPECS[name].scope !== 'global';
}

function stripQuotes(raw: string): string {
  return raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
}

export function helpText(program: string): string {
  const lines = [
    `Usage: ${program} [--config FILE] [OPTION ...]`,
    `       ${program} --check [--config FILE] [OPTION ...]`,
    `       ${program} --check --haraka-dir DIR`,
    '',
    'ESETS-compatible SMTP antivirus filter on Haraka.',
    '',
    `  -c, --config FILE    esets.cfg to read (default ${DEFAULT_CONFIG_PATH})`,
    '  --haraka-config DIR  Haraka config folder to run with (default: the package\'s config/)',
    '  -t, --check          check the configuration as a run would, start nothing; exit 0 if it would start, 1 if not',
    '  --haraka-dir DIR     with --check: check the Haraka folder DIR that haraka -c DIR runs',
    '  -h, --help           print this help and exit',
    '  -v, --version        print version information and exit',
    '',
    'Every [smtp] option may be given as --option-name VALUE (dashes or underscores);',
    'booleans as --option or --no-option; integers accept K, M, G (1024-based).',
    '',
  ];
  for (const name of commandLineOptions()) {
    const spec = OPTION_SPECS[name];
    const flag = spec.type.kind === 'bool' ? `--[no-]${name.replace(/_/g, '-')}` : `--${name.replace(/_/g, '-')} VALUE`;
    lines.push(`  ${flag.padEnd(36)} ${spec.help}`);
  }
  return `${lines.join('\n')}\n`;
}
