import assert from 'node:assert/strict';
import { advertisedSize, declaredTooBig, SIZE_ROOM_BYTES, sizeLimit, withSizeLine } from '../../src/lib/message_size';

describe('the SIZE the relay advertises and holds clients to (RFC 1870)', () => {
  const EHLO = ['mx.example Hello', 'PIPELINING', 'SIZE 10240000', '8BITMIME'];

  it("reads the next hop's SIZE line: a number, SIZE alone (no limit), or none", () => {
    assert.equal(advertisedSize(EHLO), 10_240_000);
    assert.equal(advertisedSize(['mx', 'SIZE']), 0);
    assert.equal(advertisedSize(['mx', 'size 5000']), 5000);
    assert.equal(advertisedSize(['mx', 'SIZE abc']), 0);
    assert.equal(advertisedSize(['mx', '8BITMIME']), undefined);
    // the greeting line is no extension, whatever it says
    assert.equal(advertisedSize(['SIZE 12']), undefined);
  });

  it("is the server's limit less the room for the relay's fields, or the relay's own when lower", () => {
    assert.equal(sizeLimit(10_240_000, 0), 10_240_000 - SIZE_ROOM_BYTES);
    assert.equal(sizeLimit(10_240_000, 100 * 1024 * 1024), 10_240_000 - SIZE_ROOM_BYTES);
    assert.equal(sizeLimit(10_240_000, 5_000_000), 5_000_000);
    assert.equal(sizeLimit(0, 5_000_000), 5_000_000);
    assert.equal(sizeLimit(undefined, 5_000_000), 5_000_000);
    assert.equal(sizeLimit(undefined, 0), 0);
    // a server with a limit not far above the room: half of it is kept, never all of it
    assert.equal(sizeLimit(6000, 0), 3000);
    assert.equal(sizeLimit(16_384, 0), 8192);
    assert.equal(sizeLimit(1, 0), 1);
  });

  it('rewrites the SIZE line only, SIZE alone for no limit, and adds none where the next hop has none', () => {
    assert.deepEqual(withSizeLine(EHLO, 1234), ['mx.example Hello', 'PIPELINING', 'SIZE 1234', '8BITMIME']);
    assert.deepEqual(withSizeLine(['mx', 'SIZE 99'], 0), ['mx', 'SIZE']);
    assert.deepEqual(withSizeLine(['mx', 'PIPELINING'], 1234), ['mx', 'PIPELINING']);
  });

  it('refuses a declared SIZE= over the limit, and only a well-formed number', () => {
    assert.equal(declaredTooBig('1001', 1000), true);
    assert.equal(declaredTooBig('1000', 1000), false);
    assert.equal(declaredTooBig('99999999999', 0), false);
    assert.equal(declaredTooBig(null, 1000), false);
    assert.equal(declaredTooBig('1e9', 1000), false);
  });
});
