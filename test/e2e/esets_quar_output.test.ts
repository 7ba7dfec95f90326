// esets_quar on entries whose text the client chose (header, sender, HELO,
// Message-ID): what it prints cannot forge lines or reach the terminal raw,
// and --json stays one valid document.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FolderQuarantineStore } from '../../src/io/quarantine_store';
import { esetsCfg, writeEsetsCfg } from '../support/relay';
import { ESETS_QUAR } from '../support/esets_quar';
import { removeTempDir, tempDir } from '../support/temp_dirs';


describe('esets_quar on client-chosen text', function () {
  this.timeout(60_000);
  let folder: string;
  let cfg: string;
  let store: FolderQuarantineStore;

  before(() => {
    folder = tempDir('esets-quar-text-');
    store = new FolderQuarantineStore(path.join(folder, 'q'));
    cfg = writeEsetsCfg(esetsCfg(2525, { serverPort: 1, global: { daemon_quarantine: `"${path.join(folder, 'q')}"` } }));
  });
  after(() => removeTempDir(folder));

  const quar = (args: string[]): { code: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [ESETS_QUAR, '-c', cfg, ...args], { encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('show: a header field holding the text \\x0d\\x0a (backslash, x, 0, d...) is not shown as a line break', async () => {
    const e = await store.put({
      traceId: 'T.1', client: { address: '192.0.2.1', helo: 'evil\u001b[2J' }, sender: '<a\u001b]0;x\u0007@example.com>',
      recipients: ['<b@example.org>'], verdict: 'infected', threats: ['Eicar-Signature'], action: 'reject',
      decidedBy: { option: 'action_av_infected', section: '' }, messageId: '<m\u009b1m@x>',
    }, Readable.from([Buffer.from('Subject: hello\\x0d\\x0aFrom: ceo@example.org\r\nTo: b@example.org\r\n\r\nbody\r\n')]));
    const show = quar(['show', e.id]);
    assert.equal(show.code, 0, show.stderr);
    assert.doesNotMatch(show.stdout, /^From: ceo@example\.org$/m, 'a forged header line');
    assert.match(show.stdout, /^To: b@example\.org$/m);
    assert.doesNotMatch(show.stdout, /[\u001b\u0007\u009b]/, 'a control character reached the terminal');
    const list = quar(['list']);
    assert.doesNotMatch(list.stdout, /[\u001b\u0007\u009b]/);
    const json = JSON.parse(quar(['--json', 'show', e.id]).stdout) as { sender: string; header: string };
    assert.equal(json.sender, '<a\u001b]0;x\u0007@example.com>');
    assert.ok(json.header.startsWith('Subject: hello\\x0d\\x0a'));
  });
});
