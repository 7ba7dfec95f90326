import assert from 'node:assert/strict';
import { clientEhloLines, hiddenParameter, loggableCommand } from '../../src/lib/ehlo_mirror';

describe("the client's EHLO reply (the server's, mirrored)", () => {
  it("keeps the server's first line and extensions in order, without the ones the relay never offers", () => {
    const server = {
      code: 250,
      lines: [
        'mx.example.org', 'PIPELINING', 'SIZE 52428800', 'STARTTLS', 'AUTH PLAIN LOGIN', 'XCLIENT NAME ADDR HELO', 'CHUNKING', 'BINARYMIME',
        'XFORWARD NAME ADDR', 'DSN', 'ENHANCEDSTATUSCODES', 'starttls',
      ],
    };
    assert.deepEqual(clientEhloLines(server), [
      'mx.example.org', 'PIPELINING', 'SIZE 52428800', 'AUTH PLAIN LOGIN', 'DSN', 'ENHANCEDSTATUSCODES',
    ]);
  });

  it('refuses BODY=BINARYMIME in any case, and nothing else', () => {
    assert.equal(hiddenParameter({ BODY: 'binarymime' }), 'BODY=BINARYMIME');
    assert.equal(hiddenParameter({ BODY: '8BITMIME', SIZE: '10' }), undefined);
  });

  it('never shows an AUTH credential in the protocol log', () => {
    assert.equal(loggableCommand('AUTH PLAIN AHVzZXIAcGFzcw==', false), 'AUTH PLAIN ****');
    assert.equal(loggableCommand('auth login dXNlcg==', false), 'auth login ****');
    assert.equal(loggableCommand('AUTH LOGIN', false), 'AUTH LOGIN');
    assert.equal(loggableCommand('dXNlcg==', true), '****', 'a line of the exchange');
    assert.equal(loggableCommand('MAIL FROM:<a@b>', false), 'MAIL FROM:<a@b>');
  });
});

describe("Haraka's debug lines of pipelined commands", () => {
  it('shows plain commands, masks AUTH credentials and any other line', async () => {
    const { loggablePipelined } = await import('../../src/lib/ehlo_mirror');
    assert.equal(loggablePipelined('MAIL FROM:<a@b>'), 'MAIL FROM:<a@b>');
    assert.equal(loggablePipelined('AUTH PLAIN AGFsaWNl'), 'AUTH PLAIN ****');
    assert.equal(loggablePipelined('TE9HSU5TRUNSRVQy'), '****');
  });
});
