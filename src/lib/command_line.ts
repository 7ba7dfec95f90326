// The esets_smtp command line, following the manual's COMMAND LINE OPTIONS:
// integer and string options take a value, booleans are --opt / --no-opt.

import { Diagnostic } from './diagnostics';
import {
  EsetsConfig, OPTION_SPECS, OptionName, describeType, isOptionName, parseOptionValue,
} from './esets_options';

export const DEFAULT_CONFIG_PATH = 'config/esets.cfg';
const SOURCE = 'command line';

export interface CommandLine {
  command: 'run' | 'help' | 'version';
  configPath: string;
  /** Haraka config folder to run with (default: the package's config/) */
  harakaConfigDir?: string;
  overrides: Partial<EsetsConfig>;
  diagnostics: Diagnostic[];
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

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') return { ...result, command: 'help' };
    if (arg === '-v' || arg === '--version') return { ...result, command: 'version' };

    const m = /^--([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(arg);
    if (!m && arg !== '-c') {
      error(`unexpected argument '${arg}' (options start with --; see --help)`);
      continue;
    }
    const name = m ? m[1].toLowerCase().replace(/-/g, '_') : 'config';
    let inline = m ? m[2] : undefined;
    const takeValue = (): string | undefined => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) return undefined;
      return argv[++i];
    };

    if (name === 'config' || name === 'haraka_config') {
      const value = takeValue();
      if (value === undefined || value === '') error(`${arg} needs a ${name === 'config' ? 'file' : 'folder'} name`);
      else if (name === 'config') result.configPath = value;
      else result.harakaConfigDir = value;
      continue;
    }

    const negated = name.startsWith('no_') && isCliOption(name.slice(3)) && OPTION_SPECS[name.slice(3) as OptionName].type.kind === 'bool';
    const key = negated ? name.slice(3) : name;
    if (!isCliOption(key)) {
      error(`unknown option '--${m ? m[1] : name}' (see --help)`);
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
    '',
    'ESETS-compatible SMTP antivirus filter on Haraka.',
    '',
    `  -c, --config FILE    esets.cfg to read (default ${DEFAULT_CONFIG_PATH})`,
    '  --haraka-config DIR  Haraka config folder to run with (default: the package\'s config/)',
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
