import assert from 'node:assert/strict';
import { parseQuarCommandLine, parseTime } from '../../src/lib/quar_command_line';

const ID = '20261206T234900Z-0123456789ab';
const NOW = new Date('2026-12-06T12:00:00Z');

describe("esets_quar's command line (lib/quar_command_line)", () => {
  it('commands, with the config file and --json anywhere', () => {
    assert.deepEqual(parseQuarCommandLine(['list'], NOW).run, { command: 'list', filter: {} });
    const c = parseQuarCommandLine(['--json', 'show', ID, '-c', '/etc/esets/esets.cfg'], NOW);
    assert.deepEqual(c.run, { command: 'show', id: ID });
    assert.equal(c.json, true);
    assert.equal(c.configPath, '/etc/esets/esets.cfg');
    assert.deepEqual(parseQuarCommandLine(['release', ID, '--to', 'admin@example.org', '--to=b@example.org', '--force'], NOW).run,
      { command: 'release', id: ID, to: ['admin@example.org', 'b@example.org'], force: true });
    assert.deepEqual(parseQuarCommandLine(['delete', ID], NOW).run, { command: 'delete', id: ID });
    assert.deepEqual(parseQuarCommandLine(['expire'], NOW).run, { command: 'expire' });
    assert.deepEqual(parseQuarCommandLine(['--help'], NOW).run, { command: 'help' });
  });

  it('list filters: times (dates, ISO times, ages), sender, recipient, verdict', () => {
    const c = parseQuarCommandLine(['list', '--since', '7d', '--until=2026-12-06T10:00Z', '--sender', 'alice', '--recipient', 'bob',
      '--verdict', 'banned'], NOW);
    assert.deepEqual(c.run, {
      command: 'list',
      filter: {
        since: new Date('2026-11-29T12:00:00Z'), until: new Date('2026-12-06T10:00:00Z'),
        sender: 'alice', recipient: 'bob', verdict: 'banned',
      },
    });
    assert.deepEqual(parseTime('30m', NOW), new Date('2026-12-06T11:30:00Z'));
    assert.deepEqual(parseTime('2026-12-01', NOW), new Date('2026-12-01T00:00:00Z'));
    for (const bad of ['yesterday', '7w', '2026-13-01', '']) assert.equal(parseTime(bad, NOW), undefined, bad);
  });

  it('errors say what is wrong, and an id is never a path', () => {
    const error = (argv: string[]): string | undefined => parseQuarCommandLine(argv, NOW).error;
    assert.match(error([])!, /a command is needed/);
    assert.match(error(['purge'])!, /unknown command 'purge'/);
    assert.match(error(['show'])!, /show needs an entry id/);
    assert.match(error(['show', `../../etc/${ID}`])!, /is not an entry id/);
    assert.match(error(['delete', ID, 'extra'])!, /unexpected 'extra'/);
    assert.match(error(['list', 'extra'])!, /unexpected 'extra'/);
    assert.match(error(['list', '--verdict', 'clean'])!, /--verdict is one of infected, banned, cleaned, not 'clean'/);
    assert.match(error(['list', '--since', 'soon'])!, /--since needs a time/);
    assert.match(error(['release', ID, '--to', 'not an address'])!, /--to needs an address/);
    assert.match(error(['show', ID, '--force'])!, /--to and --force go with release/);
    assert.match(error(['delete', ID, '--sender', 'x'])!, /go with list/);
    assert.match(error(['list', '--colour'])!, /unknown option '--colour'/);
    assert.match(error(['list', '-c'])!, /-c needs a file/);
  });
});
