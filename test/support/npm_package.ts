// The package as an operator gets it: `npm pack` of a copy of this checkout
// (its prepack builds it), and a Haraka folder with its own Haraka installed
// from the npm cache (offline: the lock file of this checkout says which
// versions, so no registry is asked), into which the tarball is installed
// with `npm install --offline`, as the docs say. The npm cache must hold the
// packuments npm reads for the tarball's dependencies: scripts/install-test-deps.sh
// puts them there (`npm cache add`).

import { execFileSync, ExecFileSyncOptions, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_DIR } from './relay';

const NPM = 'npm';
/** what `npm pack` needs of the checkout: the sources, the build and package files, what the package ships */
const PACK_INPUTS = [
  'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.package.json', 'README.md', 'LICENSE', 'BENCHMARKS.md',
  'src', 'bin', 'plugins', 'config', 'docs', 'packaging', 'scripts',
];

function run(command: string, args: string[], cwd: string, extra: ExecFileSyncOptions = {}): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000, ...extra }).toString();
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} in ${cwd} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** `npm pack` of a copy of this checkout (so the running tests' dist/ is not rebuilt): the tarball's path */
export function packPackage(workDir: string): string {
  const copy = path.join(workDir, 'checkout');
  fs.mkdirSync(copy);
  for (const name of PACK_INPUTS) {
    fs.cpSync(path.join(PROJECT_DIR, name), path.join(copy, name), {
      recursive: true,
      filter: (src) => !/\/plugins\/[^/]+\/.+\.js(\.map)?$/.test(src),
    });
  }
  // the compiler and type packages the build needs
  fs.symlinkSync(path.join(PROJECT_DIR, 'node_modules'), path.join(copy, 'node_modules'));
  const out = run(NPM, ['pack', '--pack-destination', workDir, '--json'], copy);
  const [{ filename }] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
  return path.join(workDir, filename);
}

/** The files in a tarball, without the leading `package/`. */
export function tarballFiles(tarball: string): string[] {
  return run('tar', ['tzf', tarball], path.dirname(tarball)).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
}

/**
 * A Haraka folder made by `haraka -i` with Haraka `version` installed in it, offline: the package.json
 * names only Haraka, the lock file is this checkout's (npm keeps of it what Haraka needs).
 */
export function harakaFolder(dir: string, version: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const lock = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, 'package-lock.json'), 'utf8')) as {
    name: string; version: string; packages: Record<string, Record<string, unknown>>;
  };
  const pkg = { name: 'mail-host', version: '1.0.0', private: true, dependencies: { Haraka: version } };
  lock.name = pkg.name;
  lock.version = pkg.version;
  lock.packages[''] = { name: pkg.name, version: pkg.version, dependencies: pkg.dependencies };
  for (const entry of Object.values(lock.packages)) {
    delete entry.dev;
    delete entry.devOptional;
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
  npm(dir, ['install']);
  run(process.execPath, [path.join(dir, 'node_modules', 'Haraka', 'bin', 'haraka'), '-i', dir], dir);
}

/** npm in `dir`, offline (the cache only) */
export function npm(dir: string, args: string[]): string {
  return run(NPM, [...args, '--offline', '--no-audit', '--no-fund'], dir);
}

/** A command from the folder's node_modules/.bin, as `npx NAME` runs it there: its exit code, stdout and stderr. */
export function binCommand(
  dir: string, name: string, args: string[], env: NodeJS.ProcessEnv = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(path.join(dir, 'node_modules', '.bin', name), args, {
    cwd: dir, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
