import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { callRcpt, makeConnection, makePlugin } from 'haraka-test-fixtures';
import constants from 'haraka-constants';
import { useHarakaDir } from '../support/haraka_dir';
import type { Transaction } from '../../src/plugins/shared/haraka';
import { messageOf } from '../../src/plugins/shared/transaction_message';
import type { RelayMessage } from '../../src/session/relay_message';

/** The per-message object esets_user_config fills (the one transaction note). */
const chosenIn = (txn: unknown): RelayMessage => messageOf(txn as Transaction);

function setup(smtp: string, users: string): void {
  const dir = useHarakaDir(`[smtp]\nagent_enabled = yes\nuser_config = "users.cfg"\n${smtp}`);
  fs.writeFileSync(path.join(dir, 'config', 'users.cfg'), users);
}

describe('esets_user_config plugin', () => {
  it('stores the first recipient\'s section and its effective config for the policy', async () => {
    setup('action_av_infected = reject\n', '[|boss@example.com]\naction_av_infected = accept\n');
    const plugin = makePlugin('esets_user_config');
    const conn = makeConnection({ mailFrom: 'boss@example.com', withTxn: true, silent: true });
    assert.equal((await callRcpt(plugin, conn, 'x@example.org')).rc, undefined);
    const chosen = chosenIn(conn.transaction);
    assert.deepEqual(chosen.section, { name: '|boss@example.com', line: 1 });
    assert.equal(chosen.config?.action_av_infected, 'accept');
  });

  for (const [setting, expected] of [['yes', '|trusted@partner.example'], ['no', undefined]] as const) {
    it(`with null_sender_matches_sender_sections = ${setting}, gives a bounce (MAIL FROM:<>) `
      + `${expected ? `[${expected}]` : 'the agent section'}`, async () => {
      setup(
        `action_av_infected = reject\nnull_sender_matches_sender_sections = ${setting}\n`,
        '[|trusted@partner.example]\naction_av_infected = accept\n',
      );
      const plugin = makePlugin('esets_user_config');
      const conn = makeConnection({ mailFrom: '<>', withTxn: true, silent: true });
      assert.equal(conn.transaction.mail_from.isNull(), true);
      await callRcpt(plugin, conn, 'x@example.org');
      const chosen = chosenIn(conn.transaction);
      assert.equal(chosen.section?.name, expected);
      assert.equal(chosen.config?.action_av_infected, expected ? 'accept' : 'reject');
    });
  }

  describe('routing in a local part never borrows a lax section (percent hack, bang path, quoted @)', () => {
    const USERS = '[lenient.example]\naction_av = accept\n[|example.com]\naction_av = accept\n';
    for (const rcpt of ['victim%example.org@lenient.example', 'example.org!victim@lenient.example', '"victim@example.org"@lenient.example',
      '"victim%example.org"@lenient.example', 'a.example!victim%example.org@lenient.example']) {
      it(`refuses ${rcpt} (550 5.1.3): delivered to victim@example.org, outside [lenient.example]`, async () => {
        setup('', USERS);
        const plugin = makePlugin('esets_user_config');
        const conn = makeConnection({ mailFrom: 's@example.net', withTxn: true, silent: true });
        const r = await callRcpt(plugin, conn, rcpt);
        assert.equal(r.rc, constants.deny, `${rcpt}: ${String(r.rc)}`);
        assert.equal((r.msg as { code: number }).code, 550);
        assert.equal(String(r.msg),
          `5.1.3 Recipient address routing (%, !, quoted @) not accepted here, use a plain address (trace ${conn.transaction.uuid})`);
      });
    }

    it('accepts routing whose readings all fall under one section, and plain addresses as before', async () => {
      setup('', USERS);
      const plugin = makePlugin('esets_user_config');
      const conn = makeConnection({ mailFrom: 's@example.net', withTxn: true, silent: true });
      // every reading under [lenient.example]
      assert.equal((await callRcpt(plugin, conn, 'a%b.lenient.example@lenient.example')).rc, undefined);
      assert.equal(chosenIn(conn.transaction).section?.name, 'lenient.example');
      // no reading under any section
      const other = makeConnection({ mailFrom: 's@example.net', withTxn: true, silent: true });
      assert.equal((await callRcpt(plugin, other, 'x%y.example@z.example')).rc, undefined);
      assert.equal(chosenIn(other.transaction).section, undefined);
    });

    it('the sender side too: a sender whose routing reads outside its sender section is refused (550 5.1.7)', async () => {
      setup('', USERS);
      const plugin = makePlugin('esets_user_config');
      const conn = makeConnection({ mailFrom: 'x%attacker.example@example.com', withTxn: true, silent: true });
      const r = await callRcpt(plugin, conn, 'someone@example.org');
      assert.equal(r.rc, constants.deny);
      assert.match(String(r.msg), /^5\.1\.7 /);
      const plain = makeConnection({ mailFrom: 'x@example.com', withTxn: true, silent: true });
      assert.equal((await callRcpt(plugin, plain, 'someone@example.org')).rc, undefined);
      assert.equal(chosenIn(plain.transaction).section?.name, '|example.com');
    });
  });

  describe('address_routing = delivered: the section of the address the server resolves it to', () => {
    const USERS = '[lenient.example]\naction_av = accept\n[example.org]\naction_av = reject\n[|partner.example]\naction_av = accept\n';

    it('gives victim%example.org@lenient.example the section of victim@example.org, and says so', async () => {
      setup('address_routing = delivered\n', USERS);
      const plugin = makePlugin('esets_user_config');
      const conn = makeConnection({ mailFrom: 's@example.net', withTxn: true, silent: true });
      assert.equal((await callRcpt(plugin, conn, 'victim%example.org@lenient.example')).rc, undefined);
      const chosen = chosenIn(conn.transaction);
      assert.equal(chosen.section?.name, 'example.org');
      assert.equal(chosen.config?.action_av, 'reject');
      assert.ok((conn.transaction.results.get('esets_user_config')?.msg as string[]).some((m) => /under its delivered address's section/.test(m)));
    });

    it('a sender resolved outside [|partner.example] gets the agent section, not the sender section', async () => {
      setup('address_routing = delivered\n', USERS);
      const plugin = makePlugin('esets_user_config');
      const conn = makeConnection({ mailFrom: 'x%attacker.example@partner.example', withTxn: true, silent: true });
      assert.equal((await callRcpt(plugin, conn, 'someone@example.net')).rc, undefined);
      assert.equal(chosenIn(conn.transaction).section, undefined);
      assert.equal(chosenIn(conn.transaction).config?.action_av, 'scan');
    });
  });

  it('uses the agent section when nothing matches', async () => {
    setup('action_av_infected = defer\n', '[|boss@example.com]\naction_av_infected = accept\n');
    const plugin = makePlugin('esets_user_config');
    const conn = makeConnection({ mailFrom: 'clerk@example.com', withTxn: true, silent: true });
    await callRcpt(plugin, conn, 'x@example.org');
    const chosen = chosenIn(conn.transaction);
    assert.equal(chosen.section, undefined);
    assert.equal(chosen.config?.action_av_infected, 'defer');
  });

  it('with split_recipients, defers a later recipient under another section with 451 4.5.3 and accepts one under the same', async () => {
    setup('split_recipients = yes\n', '[a.example]\naction_av = reject\n');
    const plugin = makePlugin('esets_user_config');
    const conn = makeConnection({ mailFrom: 's@example.com', rcptTo: ['x@a.example'], silent: true });
    // the fixture's rcpt_to holds the first (accepted) recipient; decide it first
    Object.assign(chosenIn(conn.transaction), { section: { name: 'a.example', line: 1 }, config: {} });
    const same = await callRcpt(plugin, conn, 'y@mail.a.example');
    assert.equal(same.rc, undefined);
    const other = await callRcpt(plugin, conn, 'z@b.example');
    assert.equal(other.rc, constants.denysoft);
    assert.equal((other.msg as { code: number }).code, 451);
    assert.equal(String(other.msg),
      `4.5.3 Recipient has another policy, send it in a separate transaction (trace ${conn.transaction.uuid})`);
  });

  it('without split_recipients, accepts every recipient (ESETS: the first recipient decides)', async () => {
    setup('', '[a.example]\naction_av = reject\n');
    const plugin = makePlugin('esets_user_config');
    const conn = makeConnection({ mailFrom: 's@example.com', rcptTo: ['x@a.example'], silent: true });
    Object.assign(chosenIn(conn.transaction), { section: { name: 'a.example', line: 1 }, config: {} });
    assert.equal((await callRcpt(plugin, conn, 'z@b.example')).rc, undefined);
  });

  it('refuses to load a user_config with errors, naming file and line', () => {
    setup('', '[a.example]\nparent_id = "missing"\n');
    assert.throws(() => makePlugin('esets_user_config'), /users\.cfg:2: error: \[a\.example\] parent_id "missing" names no section/);
  });
});
