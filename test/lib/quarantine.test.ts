import assert from 'node:assert/strict';
import {
  expiredEntries, isQuarantineId, matchesFilter, parseEntry, QuarantineEntry, quarantineId, quarantineVerdict,
} from '../../src/lib/quarantine';
import type { AvOutcome } from '../../src/lib/policy';

const entry = (over: Partial<QuarantineEntry> = {}): QuarantineEntry => ({
  id: '20261206T120000Z-0123456789ab',
  storedAt: '2026-12-06T12:00:00.000Z',
  traceId: 'A-B.1',
  client: { address: '192.0.2.1', helo: 'client.example' },
  sender: 'alice@example.com',
  recipients: ['bob@example.org', 'Carol@Example.org'],
  verdict: 'infected',
  threats: ['Eicar-Signature'],
  action: 'reject',
  decidedBy: { option: 'action_av_infected', section: '' },
  size: 100,
  messageId: '<m@example.com>',
  released: [],
  ...over,
});

describe('quarantine entries (lib/quarantine)', () => {
  it('ids sort by time and are never paths', () => {
    const id = quarantineId(new Date('2026-12-06T23:49:01.123Z'), Buffer.from('0123456789abcdef', 'hex'));
    assert.equal(id, '20261206T234901Z-0123456789ab');
    assert.ok(isQuarantineId(id));
    const bads = ['../20261206T234901Z-0123456789ab', '20261206T234901Z-0123456789ab.json', '', 'x', '20261206T234901Z-0123456789AB'];
    for (const bad of bads) {
      assert.equal(isQuarantineId(bad), false, bad);
    }
  });

  it('an entry file is read back; a torn, foreign or mistyped one is not', () => {
    const e = entry();
    assert.deepEqual(parseEntry(JSON.stringify(e)), e);
    const text = JSON.stringify(e);
    assert.equal(parseEntry(text.slice(0, text.length - 5)), undefined, 'torn');
    assert.equal(parseEntry('{}'), undefined);
    assert.equal(parseEntry(JSON.stringify({ ...e, id: '../etc/passwd' })), undefined);
    assert.equal(parseEntry(JSON.stringify({ ...e, verdict: 'clean' })), undefined);
    assert.equal(parseEntry(JSON.stringify({ ...e, size: '100' })), undefined);
    assert.equal(parseEntry(JSON.stringify({ ...e, released: [{ at: 'x' }] })), undefined);
  });

  it('filters: time range, sender and recipient parts (any case), verdict', () => {
    const e = entry();
    assert.ok(matchesFilter(e, {}));
    assert.ok(matchesFilter(e, { since: new Date('2026-12-06T12:00:00Z'), until: new Date('2026-12-06T12:00:01Z') }));
    assert.equal(matchesFilter(e, { since: new Date('2026-12-06T12:00:01Z') }), false);
    assert.equal(matchesFilter(e, { until: new Date('2026-12-06T12:00:00Z') }), false);
    assert.ok(matchesFilter(e, { sender: 'ALICE@' }));
    assert.equal(matchesFilter(e, { sender: 'bob' }), false);
    assert.ok(matchesFilter(e, { recipient: 'carol@example' }));
    assert.equal(matchesFilter(e, { recipient: 'dave' }), false);
    assert.ok(matchesFilter(e, { verdict: 'infected' }));
    assert.equal(matchesFilter(e, { verdict: 'banned' }), false);
  });

  it('expiry: every entry past the age, then the oldest until the total fits', () => {
    const at = (h: number): string => new Date(Date.UTC(2026, 11, 6, h)).toISOString();
    const entries = [
      { id: 'c', storedAt: at(3), size: 10 },
      { id: 'a', storedAt: at(1), size: 10 },
      { id: 'b', storedAt: at(2), size: 10 },
      { id: 'd', storedAt: at(4), size: 10 },
    ];
    const now = new Date(Date.UTC(2026, 11, 6, 5));
    assert.deepEqual(expiredEntries(entries, now, { maxAgeS: 0, maxBytes: 0 }), []);
    assert.deepEqual(expiredEntries(entries, now, { maxAgeS: 3.5 * 3600, maxBytes: 0 }), [{ id: 'a', why: 'age' }]);
    assert.deepEqual(expiredEntries(entries, now, { maxAgeS: 0, maxBytes: 25 }), [{ id: 'a', why: 'size' }, { id: 'b', why: 'size' }]);
    assert.deepEqual(expiredEntries(entries, now, { maxAgeS: 3.5 * 3600, maxBytes: 15 }),
      [{ id: 'a', why: 'age' }, { id: 'b', why: 'size' }, { id: 'c', why: 'size' }]);
  });
});

describe('what the quarantine keeps (quarantineVerdict)', () => {
  const on = { av_quarantine_enabled: true };
  const rejected = { action: 'reject', option: 'action_av_infected' } as const;
  const infected: AvOutcome = { kind: 'infected', names: ['Eicar-Signature'] };
  it('infected or banned, rejected or discarded; never deferred or accepted; nothing when disabled', () => {
    for (const action of ['reject', 'discard'] as const) {
      assert.deepEqual(quarantineVerdict(on, { action, option: 'action_av_infected' }, infected),
        { verdict: 'infected', threats: ['Eicar-Signature'] });
    }
    assert.deepEqual(quarantineVerdict(on, rejected, { kind: 'infected', names: ['Banned.exe'] }),
      { verdict: 'banned', threats: ['Banned.exe'] });
    assert.deepEqual(
      quarantineVerdict(on, rejected, { kind: 'infected', names: ['Banned.exe', 'Eicar'] })?.verdict,
      'infected');
    assert.equal(quarantineVerdict(on, { action: 'defer', option: 'action_av_infected' }, infected), undefined);
    assert.equal(quarantineVerdict(on, { action: 'accept', option: 'action_av_infected' }, infected), undefined);
    assert.equal(quarantineVerdict({ av_quarantine_enabled: false }, rejected, infected), undefined);
    assert.equal(quarantineVerdict(on, { action: 'defer', option: 'action_av_notscanned' }, { kind: 'not_scanned', reason: 'x' }),
      undefined);
    assert.equal(quarantineVerdict(on, { action: 'reject', option: 'action_as_spam' }, { kind: 'clean' }), undefined);
  });
  it('the original of a cleaned message, whatever action_av_deleted says but defer', () => {
    const cleaned: AvOutcome = { kind: 'cleaned', removed: 1, names: ['Eicar-Signature'] };
    for (const action of ['accept', 'reject', 'discard'] as const) {
      assert.deepEqual(quarantineVerdict(on, { action, option: 'action_av_deleted' }, cleaned),
        { verdict: 'cleaned', threats: ['Eicar-Signature'] });
    }
    assert.equal(quarantineVerdict(on, { action: 'defer', option: 'action_av_deleted' }, cleaned), undefined);
    // accepted by action_av_deleted, the AS stage decides last
    assert.equal(quarantineVerdict(on, { action: 'accept', option: 'action_as' }, cleaned)?.verdict, 'cleaned');
    assert.equal(quarantineVerdict(on, { action: 'reject', option: 'action_as_spam' }, cleaned)?.verdict, 'cleaned');
    assert.equal(quarantineVerdict(on, { action: 'defer', option: 'action_as_spam' }, cleaned), undefined);
  });
});
