// Running the esets_quar command of this checkout in tests.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_DIR } from './relay';

export const ESETS_QUAR = path.join(PROJECT_DIR, 'bin', 'esets_quar.js');

/** `esets_quar -c cfg ARGS...` to its end: exit code and output. */
export function runEsetsQuar(cfg: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ESETS_QUAR, '-c', cfg, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d.toString(); });
    child.stderr.on('data', (d) => { stderr += d.toString(); });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
