#!/usr/bin/env node
// esets_quar: the quarantine of esets_smtp (av_quarantine_enabled), read from
// the folder esets.cfg names (daemon_quarantine): list, show, release,
// delete, expire. It runs beside the relay, as the relay's user (the files are
// that user's only); what it changes the relay sees (the store is shared
// through the file system: io/quarantine_store). Exit: 0 done, 1 not done
// (no such entry, released already, the mail server refused), 2 a command-line
// error, 78 esets.cfg refused.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_CONFIG_PATH } from '../lib/command_line';
import { formatDiagnostic, hasErrors, printable } from '../lib/diagnostics';
import type { EsetsConfig } from '../lib/esets_options';
import { matchesFilter, QuarantineEntry, quarantineDir } from '../lib/quarantine';
import { parseQuarCommandLine, QUAR_USAGE, QuarCommand } from '../lib/quar_command_line';
import { replyText } from '../lib/smtp_reply';
import { loadConfigFiles } from '../io/config_files';
import { FolderQuarantineStore } from '../io/quarantine_store';
import { releaseMessage, ReleaseResult } from '../io/quarantine_release';
import { expireOnce } from '../io/quarantine_expiry';

const PROJECT_DIR = path.resolve(__dirname, '..', '..', '..');
const { version } = require(path.join(PROJECT_DIR, 'package.json')) as { version: string };
const EXIT_CONFIG = 78;
/** most header bytes `show` prints */
const SHOW_HEADER_BYTES = 64 * 1024;

class Refused extends Error {}

const out = (text: string): void => { process.stdout.write(`${text}\n`); };

async function main(argv: string[]): Promise<number> {
  const cli = parseQuarCommandLine(argv);
  if (cli.error || !cli.run) {
    process.stderr.write(`esets_quar: ${printable(cli.error ?? 'nothing to do')}\n${QUAR_USAGE}\n`);
    return 2;
  }
  const cmd = cli.run;
  if (cmd.command === 'help') return (out(QUAR_USAGE), 0);
  if (cmd.command === 'version') return (out(`esets_quar (esets-relay) ${version}`), 0);
  const configFile = cli.configPath === DEFAULT_CONFIG_PATH ? path.join(PROJECT_DIR, DEFAULT_CONFIG_PATH) : path.resolve(cli.configPath);
  const { loaded, diagnostics } = loadConfigFiles(configFile, {});
  if (!loaded || hasErrors(diagnostics)) {
    for (const d of diagnostics.filter((x) => x.severity === 'error')) process.stderr.write(`${formatDiagnostic(d)}\n`);
    return EXIT_CONFIG;
  }
  const store = new FolderQuarantineStore(quarantineDir(loaded.config, configFile));
  // not an error (nothing was kept yet), but a wrong -c or daemon_quarantine looks the same: said
  if (!fs.existsSync(store.dir)) process.stderr.write(`esets_quar: note: ${printable(store.dir)} does not exist (daemon_quarantine)\n`);
  try {
    return await run(cmd, store, loaded.config, cli.json);
  } catch (err) {
    process.stderr.write(`esets_quar: ${printable((err as Error).message)}\n`);
    return 1;
  }
}

async function run(cmd: Exclude<QuarCommand, { command: 'help' | 'version' }>, store: FolderQuarantineStore,
  config: EsetsConfig, json: boolean): Promise<number> {
  switch (cmd.command) {
    case 'list': {
      const entries = store.list().filter((e) => matchesFilter(e, cmd.filter));
      if (json) out(JSON.stringify(entries));
      else out(table(entries));
      return 0;
    }
    case 'show': {
      const entry = found(store, cmd.id);
      const header = await headerOf(store.message(cmd.id));
      if (json) out(JSON.stringify({ ...entry, header }));
      // line by line: a field's own text "\x0d\x0a" must not read as a line break
      else out(`${describe(entry)}\n\n${header.split('\r\n').map(printable).join('\n')}`);
      return 0;
    }
    case 'delete': {
      found(store, cmd.id);
      if (!store.remove(cmd.id, 'deleted')) throw new Refused(`no entry ${cmd.id} (deleted meanwhile)`);
      out(json ? JSON.stringify({ deleted: cmd.id }) : `deleted ${cmd.id}`);
      return 0;
    }
    case 'expire': {
      const limits = { maxAgeS: config.quarantine_max_age, maxBytes: config.quarantine_max_size };
      const gone = expireOnce({ dir: store.dir, limits })?.expired ?? [];
      if (json) out(JSON.stringify({ expired: gone }));
      else out(`${gone.length} expired${gone.map((e) => `\n${e.id} (${e.why})`).join('')}`);
      return 0;
    }
    case 'release':
      return release(cmd, store, config, json);
  }
}

async function release(
  cmd: Extract<QuarCommand, { command: 'release' }>, store: FolderQuarantineStore, config: EsetsConfig, json: boolean,
): Promise<number> {
  const entry = found(store, cmd.id);
  const to = cmd.to.length ? cmd.to : entry.recipients;
  let result: ReleaseResult | undefined;
  let before: QuarantineEntry['released'][number] | undefined;
  // under the entry's lock: two releases at once send it once (the second sees the first's mark)
  const after = await store.update(cmd.id, async (now) => {
    before = now.released[now.released.length - 1];
    if (before && !cmd.force) return undefined;
    result = await releaseMessage(config, now, store.message(cmd.id), to, os.hostname());
    if (result.reply.code >= 300) return undefined;
    return { ...now, released: [...now.released, { at: new Date().toISOString(), to: result.accepted, reply: replyLine(result) }] };
  });
  if (!after) throw new Refused(`no entry ${cmd.id} (deleted meanwhile)`);
  if (!result) throw new Refused(`${cmd.id} was released at ${before!.at} to ${before!.to.join(', ')}: --force sends it again`);
  const reply = replyLine(result);
  if (result.reply.code >= 300) throw new Refused(`the mail server refused the released message: ${reply}`);
  if (json) out(JSON.stringify({ released: cmd.id, to: result.accepted, refused: result.refused, reply }));
  else {
    out(`released ${cmd.id} to ${result.accepted.join(', ')}: ${printable(reply)}`);
    for (const r of result.refused) out(`not to ${r.rcpt}: ${printable(`${r.reply.code} ${replyText(r.reply)}`)}`);
  }
  return result.refused.length ? 1 : 0;
}

function replyLine(result: ReleaseResult): string {
  return `${result.reply.code} ${replyText(result.reply)}`;
}

function found(store: FolderQuarantineStore, id: string): QuarantineEntry {
  const entry = store.get(id);
  if (!entry) throw new Refused(`no entry ${id} in ${store.dir}`);
  return entry;
}

/** The message's header section (up to the empty line), at most SHOW_HEADER_BYTES. */
async function headerOf(message: Readable): Promise<string> {
  let text = '';
  for await (const chunk of message) {
    text += (chunk as Buffer).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end >= 0) return text.slice(0, end + 2);
    if (text.length > SHOW_HEADER_BYTES) break;
  }
  message.destroy();
  return text.slice(0, SHOW_HEADER_BYTES);
}

function describe(e: QuarantineEntry): string {
  const rows: [string, string][] = [
    ['id', e.id], ['stored', e.storedAt], ['trace id', e.traceId],
    ['client', `${e.client.address} (HELO ${e.client.helo}${e.client.name ? `, ${e.client.name}` : ''})`],
    ['sender', e.sender], ['recipients', e.recipients.join(', ')], ['verdict', `${e.verdict}: ${e.threats.join(', ')}`],
    ['action', e.action], ['decided by', `${e.decidedBy.option}${e.decidedBy.section ? ` (${e.decidedBy.section})` : ''}`],
    ['size', String(e.size)], ['message-id', e.messageId],
    ...e.released.map((r): [string, string] => ['released', `${r.at} to ${r.to.join(', ')}: ${r.reply}`]),
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(12)}${printable(v)}`).join('\n');
}

function table(entries: readonly QuarantineEntry[]): string {
  const rows = [['ID', 'TIME', 'SENDER', 'RECIPIENTS', 'VERDICT', 'SIZE', 'RELEASED']];
  for (const e of entries) {
    rows.push([e.id, e.storedAt.replace(/\.\d+Z$/, 'Z'), e.sender, e.recipients.join(','), `${e.verdict}:${e.threats.join(',')}`,
      String(e.size), e.released.length ? 'yes' : 'no'].map(printable));
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')}\n`
    + `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: Error) => {
  process.stderr.write(`esets_quar: ${printable(err.message)}\n`);
  process.exitCode = 1;
});
