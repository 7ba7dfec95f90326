import assert from 'node:assert/strict';
import { makeConnection } from 'haraka-test-fixtures';
import { captureMessage, finishedMessage } from '../../src/plugins/shared/transaction_message';
import type { Transaction } from '../../src/plugins/shared/haraka';

describe('the DATA tap (transaction_message)', () => {
  function transaction(): Transaction {
    const conn = makeConnection({ ip: '192.0.2.7', helo: 'client.example', withTxn: true, silent: true });
    const txn = conn.transaction as unknown as Transaction & { cfg: { headers: { max_lines: number } } };
    // Haraka's connection.ini default, which the fixture leaves unset
    txn.cfg.headers.max_lines = 1000;
    return txn;
  }

  const long = Buffer.from(`X-Long: ${'a'.repeat(60_000)}\r\n`);

  it('when Haraka keeps no copy: its header view gets the line cut to 998 characters, the relay\'s copy all of it', async () => {
    const txn = transaction();
    const message = captureMessage(txn);
    txn.discard_data = true;
    txn.add_data(long);
    txn.add_data(Buffer.from('\r\n'));
    assert.equal(txn.header_lines?.length, 1);
    assert.ok(txn.header_lines[0] === `X-Long: ${'a'.repeat(990)}\n`, 'cut to 998 characters and its line end');
    assert.ok((await finishedMessage(txn)!.readAll()).equals(Buffer.concat([long, Buffer.from('\r\n')])), 'the relay\'s copy: all of it');
    message.destroy();
  });

  it('when Haraka keeps its copy (another plugin reads it): the line as it came', () => {
    const txn = transaction();
    const message = captureMessage(txn);
    txn.add_data(long);
    assert.equal(txn.header_lines?.length, 1);
    assert.ok(txn.header_lines[0] === long.toString().replace(/\r\n$/, '\n'), 'the whole line');
    message.destroy();
  });
});
