#!/usr/bin/env node
// esets-relay-setup [DIR]: the one setup step after `npm install esets-relay`
// in a Haraka folder (made by `haraka -i DIR`). Puts the example configuration
// and the plugins' docs into DIR (config/ files only where DIR has none: an
// operator's file is never replaced), then says what to list in config/plugins.
// It writes nothing else: config/plugins and Haraka's own files stay the operator's.

import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_PLUGIN_PREFIX } from '../lib/haraka_c_rules';

const PACKAGE_DIR = path.resolve(__dirname, '..', '..', '..');
/** config/ files an operator edits: copied once, never over the operator's */
const EXAMPLE_CONFIG = ['esets.cfg', 'esets_relay.ini', 'clamd-esets-relay.conf'];

interface Step {
  file: string;
  done: 'written' | 'kept (yours)' | 'updated';
}

function main(argv: string[]): number {
  if (argv.some((a) => a === '-h' || a === '--help')) {
    process.stdout.write('Usage: esets-relay-setup [DIR]\n\nPuts esets-relay\'s example config/esets.cfg, config/esets_relay.ini, '
      + 'config/clamd-esets-relay.conf\nand docs/plugins/esets-relay/*.md into the Haraka folder DIR (default: the current folder).\n'
      + 'Files of yours in config/ are kept.\n');
    return 0;
  }
  if (argv.length > 1 || argv.some((a) => a.startsWith('-'))) {
    process.stderr.write(`esets-relay-setup: unexpected argument '${argv.find((a) => a.startsWith('-')) ?? argv[1]}' (see --help)\n`);
    return 2;
  }
  const dir = path.resolve(argv[0] ?? '.');
  if (!fs.existsSync(path.join(dir, 'config', 'plugins'))) {
    process.stderr.write(`esets-relay-setup: ${dir} is not a Haraka folder (no config/plugins): make one with 'haraka -i ${dir}'\n`);
    return 1;
  }
  const steps: Step[] = [];
  for (const name of EXAMPLE_CONFIG) {
    const to = path.join(dir, 'config', name);
    // a link counts as the operator's file, even one to a file not made yet
    if (present(to)) {
      steps.push({ file: to, done: 'kept (yours)' });
      continue;
    }
    fs.copyFileSync(path.join(PACKAGE_DIR, 'config', name), to, fs.constants.COPYFILE_EXCL);
    steps.push({ file: to, done: 'written' });
  }
  // where `haraka -c DIR -h esets-relay/NAME` looks: DIR/docs/plugins/<NAME as listed>.md
  const docs = path.join(dir, 'docs', 'plugins', PACKAGE_PLUGIN_PREFIX);
  fs.mkdirSync(docs, { recursive: true });
  const plugins = pluginNames();
  for (const name of plugins) {
    const to = path.join(docs, `${name}.md`);
    const existed = fs.existsSync(to);
    fs.copyFileSync(path.join(PACKAGE_DIR, 'docs', 'plugins', `${name}.md`), to);
    steps.push({ file: to, done: existed ? 'updated' : 'written' });
  }
  for (const step of steps) process.stdout.write(`${step.done.padEnd(13)} ${path.relative(dir, step.file)}\n`);
  process.stdout.write([
    '',
    `Next, in ${path.join(dir, 'config')}:`,
    '- esets.cfg: server_addr and server_port (your mail server), daemon_sock_path (your clamd);',
    '- clamd: add the settings of clamd-esets-relay.conf to your clamd.conf;',
    '- connection.ini: [main] postel=true, [max] bytes=0 and line_length=2050, [headers] add_received=false',
    '  (what the launcher sets; the start warns about each that differs: docs/haraka_c.md);',
    '- plugins: list these, in this order (and no other delivery plugin such as queue/smtp_forward):',
    ...ORDER.map((name) => `    ${PACKAGE_PLUGIN_PREFIX}${name}`),
    `Then check the folder: npx esets_smtp --check --haraka-dir ${dir}`,
    `and read a plugin's page: npx haraka -c ${dir} -h ${PACKAGE_PLUGIN_PREFIX}esets_policy`,
    '',
  ].join('\n'));
  return 0;
}

/** the order of the package's own config/plugins: Haraka runs hooks of equal priority in list order */
const ORDER = fs.readFileSync(path.join(PACKAGE_DIR, 'config', 'plugins'), 'utf8')
  .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

function present(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function pluginNames(): string[] {
  return fs.readdirSync(path.join(PACKAGE_DIR, 'plugins'))
    .filter((n) => fs.existsSync(path.join(PACKAGE_DIR, 'plugins', n, 'package.json'))).sort();
}

// a reader that stops early (`| head`) is not an error of ours
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});
try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`esets-relay-setup: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
