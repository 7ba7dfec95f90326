// Minimal reader/writer for Haraka's ini files: enough to set keys in a copy of
// an operator's file while keeping the rest of it. Comments are not kept.
// Section '' holds keys before any header. A key ending in `[]` is a list, as
// in haraka-config (`hosts[] = a` then `hosts[] = b`): each line is kept.

export type IniValue = string | string[];
export type IniFile = Record<string, Record<string, IniValue>>;

export function parseIni(text: string): IniFile {
  const ini: IniFile = { '': {} };
  let section = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1].trim();
      ini[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    const value = eq < 0 ? '' : line.slice(eq + 1).trim();
    if (key.endsWith('[]')) {
      const list = ini[section][key];
      ini[section][key] = [...(Array.isArray(list) ? list : []), value];
    } else {
      ini[section][key] = value;
    }
  }
  return ini;
}

/** `changes` over `base`, key by key; a list in `changes` replaces the base's list whole. */
export function mergeIni(base: IniFile, changes: IniFile): IniFile {
  const merged: IniFile = {};
  for (const [name, keys] of Object.entries(base)) merged[name] = { ...keys };
  for (const [name, keys] of Object.entries(changes)) merged[name] = { ...(merged[name] ?? {}), ...keys };
  return merged;
}

export function formatIni(ini: IniFile): string {
  const out: string[] = [];
  const lines = (keys: Record<string, IniValue>): void => {
    for (const [key, value] of Object.entries(keys)) {
      for (const v of Array.isArray(value) ? value : [value]) out.push(`${key}=${v}`);
    }
  };
  lines(ini[''] ?? {});
  for (const [name, keys] of Object.entries(ini)) {
    if (name === '') continue;
    out.push(`[${name}]`);
    lines(keys);
  }
  return `${out.join('\n')}\n`;
}
