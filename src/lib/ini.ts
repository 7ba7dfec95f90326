// Minimal reader/writer for Haraka's ini files: enough to set keys in a copy of
// an operator's file while keeping the rest of it. Comments are not kept.
// Section '' holds keys before any header.

export type IniFile = Record<string, Record<string, string>>;

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
    if (eq < 0) ini[section][line] = '';
    else ini[section][line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return ini;
}

export function mergeIni(base: IniFile, changes: IniFile): IniFile {
  const merged: IniFile = {};
  for (const [name, keys] of Object.entries(base)) merged[name] = { ...keys };
  for (const [name, keys] of Object.entries(changes)) merged[name] = { ...(merged[name] ?? {}), ...keys };
  return merged;
}

export function formatIni(ini: IniFile): string {
  const out: string[] = [];
  const plain = ini[''] ?? {};
  for (const [key, value] of Object.entries(plain)) out.push(`${key}=${value}`);
  for (const [name, keys] of Object.entries(ini)) {
    if (name === '') continue;
    out.push(`[${name}]`);
    for (const [key, value] of Object.entries(keys)) out.push(`${key}=${value}`);
  }
  return `${out.join('\n')}\n`;
}
