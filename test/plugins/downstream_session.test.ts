// The session with the mail server when the server misbehaves around DATA:
// a server that says 250 to DATA itself, and a held message (early send)
// whose server goes away; scripted servers, since no real one does this.

import assert from 'node:assert/strict';
import net from 'node:net';
import {
  ClientIdentity, DownstreamError, DownstreamSession, HandoverRefused, OutcomeUnknown, xclientAddress,
} from '../../src/io/downstream_session';
import { confirmedName, reverseName } from '../../src/io/confirmed_name';

/** A server answering each command line with `answer(line)`; DATA content is collected. */
async function scriptedServer(
  answer: (line: string) => string | undefined, dotReply: string = '250 2.0.0 queued',
): Promise<{ port: number; data: string[]; close(): Promise<void> }> {
  const data: string[] = [];
  const server = net.createServer((socket) => {
    socket.write('220 scripted\r\n');
    let inData = false;
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let i;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            if (dotReply === 'close') socket.destroy();
            else if (dotReply !== 'silent') socket.write(`${dotReply}\r\n`);
          } else {
            data.push(line);
            if (line === 'drop-now') socket.destroy();
          }
          continue;
        }
        const reply = answer(line);
        if (reply === undefined) continue;
        if (reply.startsWith('354')) inData = true;
        if (reply === 'close') socket.destroy();
        else socket.write(`${reply}\r\n`);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, data, close: () => new Promise((r) => server.close(() => r())) };
}

const open = (port: number): Promise<DownstreamSession> => DownstreamSession.open({
  host: '127.0.0.1', port, connectTimeoutMs: 2000, commandTimeoutMs: 2000, heloName: 'relay.test', requireXclient: false,
});

async function* parts(chunks: string[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield Buffer.from(c);
}

describe('downstream session: DATA (scripted server)', () => {
  it('refuses to take a 250 to DATA itself as the message being accepted', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '250 2.0.0 fine' : '250 ok'));
    try {
      const session = await open(server.port);
      await assert.rejects(session.sendMessage(parts(['Subject: x\r\n', '\r\n', 'body\r\n']), Date.now() + 2000), DownstreamError);
      session.close();
    } finally {
      await server.close();
    }
  });

  it('stuffs every line that starts with a dot itself, across chunk boundaries, and ends with one final dot', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'));
    try {
      const session = await open(server.port);
      // the captured (un-stuffed) bytes: a line "." and a line ".x" split over chunks
      const reply = await session.sendMessage(parts(['Subject: x\r\n\r\n.one dot\r', '\n', '.', '\r\n..two\r\nlast']), Date.now() + 2000);
      assert.equal(reply.code, 250);
      assert.deepEqual(server.data, ['Subject: x', '', '..one dot', '..', '...two', 'last'], 'stuffed once, a CRLF added to the last line');
      session.close();
    } finally {
      await server.close();
    }
  });

  it('fails the send, without a final dot, when the message cannot be read', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'));
    try {
      const session = await open(server.port);
      async function* broken(): AsyncGenerator<Buffer> {
        yield Buffer.from('Subject: x\r\n\r\npart\r\n');
        throw new Error('spool file gone');
      }
      await assert.rejects(session.sendMessage(broken(), Date.now() + 2000), /spool file gone/);
      assert.equal(session.alive, false, 'the session is dropped: the server discards a message without its dot');
    } finally {
      await server.close();
    }
  });

  it("an answer to the final dot that never comes (by the deadline) or is cut off: outcome unknown, the session dropped", async () => {
    for (const dotReply of ['silent', 'close']) {
      const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'), dotReply);
      let session: DownstreamSession | undefined;
      try {
        session = await open(server.port);
        const started = Date.now();
        await assert.rejects(session.sendMessage(parts(['Subject: x\r\n\r\nbody\r\n']), Date.now() + 1500), (err: Error) => {
          assert.ok(err instanceof OutcomeUnknown, `${dotReply}: ${err.constructor.name}: ${err.message}`);
          assert.match(err.message, /may have been delivered/);
          return true;
        });
        if (dotReply === 'silent') assert.ok(Date.now() - started >= 1000, 'the deadline decides, not the command timeout');
        assert.equal(session.alive, false);
      } finally {
        session?.close();
        await server.close();
      }
    }
  });

  it('a link that fails before the final dot is a plain failure: the server cannot have taken the message', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'));
    try {
      const session = await open(server.port);
      async function* slow(): AsyncGenerator<Buffer> {
        // more than one write's worth, so it goes out before the rest is read
        yield Buffer.from(`Subject: x\r\n\r\ndrop-now\r\n${'filler line\r\n'.repeat(6000)}`);
        await new Promise((r) => setTimeout(r, 300));
        yield Buffer.from('rest\r\n');
      }
      await assert.rejects(session.sendMessage(slow(), Date.now() + 2000), (err: Error) => {
        assert.ok(err instanceof DownstreamError && !(err instanceof OutcomeUnknown), `${err.constructor.name}: ${err.message}`);
        return true;
      });
    } finally {
      await server.close();
    }
  });

  it('fails closed when the server does not offer XCLIENT and trusts the relay', async () => {
    const server = await scriptedServer(() => '250 ok');
    try {
      await assert.rejects(DownstreamSession.open({
        host: '127.0.0.1', port: server.port, connectTimeoutMs: 2000, commandTimeoutMs: 2000,
        heloName: 'relay.test', requireXclient: true, client: { addr: '192.0.2.1' },
      }), HandoverRefused);
    } finally {
      await server.close();
    }
  });
});

describe('client addresses in XCLIENT and XFORWARD', () => {
  it('writes IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 with IPV6: (Postfix XCLIENT_README)', () => {
    assert.equal(xclientAddress('192.0.2.7'), '192.0.2.7');
    assert.equal(xclientAddress('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(xclientAddress('::FFFF:192.0.2.7'), '192.0.2.7');
    assert.equal(xclientAddress('2001:db8::25'), 'IPV6:2001:db8::25');
    assert.equal(xclientAddress('::1'), 'IPV6:::1');
  });
});

describe('XCLIENT attributes (Postfix XCLIENT_README)', () => {
  const XCLIENT_ALL = 'XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT';
  const ehlo = (xclient: string): string => `250-mx.test\r\n250-PIPELINING\r\n250 ${xclient}`;

  /** The XCLIENT lines a server offering `offered` receives, one session opened for each client. */
  async function xclientLines(offered: string, clients: ClientIdentity[]): Promise<string[]> {
    const seen: string[] = [];
    const server = await scriptedServer((line) => {
      seen.push(line);
      if (line.startsWith('EHLO')) return ehlo(offered);
      return line.startsWith('XCLIENT') ? '220 mx.test after XCLIENT' : '250 ok';
    });
    try {
      for (const client of clients) {
        const session = await DownstreamSession.open({
          host: '127.0.0.1', port: server.port, connectTimeoutMs: 2000, commandTimeoutMs: 2000, heloName: 'relay.test',
          requireXclient: true, client,
        });
        session.close();
      }
      return seen.filter((l) => l.startsWith('XCLIENT'));
    } finally {
      await server.close();
    }
  }

  it("sends the client's PORT, DESTADDR and DESTPORT where the server offers them, and never a LOGIN", async () => {
    const client = { addr: '192.0.2.1', port: 40123, destAddr: '::ffff:198.51.100.25', destPort: 25 };
    assert.deepEqual(await xclientLines(XCLIENT_ALL, [client]), [
      'XCLIENT ADDR=192.0.2.1 NAME=[UNAVAILABLE] PORT=40123 DESTADDR=198.51.100.25 DESTPORT=25',
    ]);
  });

  it('leaves out an IPv6 destination of an IPv4 client (a dual-stack balancer): a server on IPv4 only would refuse it', async () => {
    const clients = [['::ffff:192.0.2.1', '::1'], ['2001:db8::1', '::1']]
      .map(([addr, destAddr]) => ({ addr, port: 40123, destAddr, destPort: 25 }));
    assert.deepEqual(await xclientLines(XCLIENT_ALL, clients), [
      'XCLIENT ADDR=192.0.2.1 NAME=[UNAVAILABLE] PORT=40123',
      'XCLIENT ADDR=IPV6:2001:db8::1 NAME=[UNAVAILABLE] PORT=40123 DESTADDR=IPV6:::1 DESTPORT=25',
    ]);
  });

  it('leaves out what the server does not offer (no DESTADDR)', async () => {
    const client = { addr: '192.0.2.1', port: 40123, destAddr: '198.51.100.25', destPort: 25 };
    assert.deepEqual(await xclientLines('XCLIENT NAME ADDR PORT', [client]), ['XCLIENT ADDR=192.0.2.1 NAME=[UNAVAILABLE] PORT=40123']);
  });

  it("an IPv6 address the server cannot read (Postfix inet_protocols = ipv4) is the server's IPv6 setting, not authorization", async () => {
    const server = await scriptedServer((line) => {
      if (line.startsWith('EHLO')) return ehlo(XCLIENT_ALL);
      return line.startsWith('XCLIENT') ? '501 5.5.4 Bad ADDR syntax: IPV6:::1' : '250 ok';
    });
    try {
      await assert.rejects(DownstreamSession.open({
        host: '127.0.0.1', port: server.port, connectTimeoutMs: 2000, commandTimeoutMs: 2000,
        heloName: 'relay.test', requireXclient: true, client: { addr: '::1' },
      }), (err: unknown) => {
        assert.ok(err instanceof HandoverRefused);
        assert.equal(err.fix, 'ipv6');
        assert.match(err.message, /cannot read the client's IPv6 address \(XCLIENT ADDR=IPV6:::1: 501 5\.5\.4 Bad ADDR syntax/);
        return true;
      });
      // an IPv4 client refused so is an authorization fault, as before
      await assert.rejects(DownstreamSession.open({
        host: '127.0.0.1', port: server.port, connectTimeoutMs: 2000, commandTimeoutMs: 2000,
        heloName: 'relay.test', requireXclient: true, client: { addr: '192.0.2.1' },
      }), (err: unknown) => err instanceof HandoverRefused && err.fix === 'xclient');
    } finally {
      await server.close();
    }
  });
});

describe("the client's confirmed name (Postfix's host name rule)", () => {
  it('takes a dotless name that resolves back to the address (localhost), never a Haraka placeholder or an address', async () => {
    assert.equal(await confirmedName('127.0.0.1', 'localhost'), 'localhost');
    assert.equal(await confirmedName('::ffff:127.0.0.1', 'localhost.'), 'localhost');
    for (const placeholder of ['DNSERROR', 'NXDOMAIN', 'Unknown', '127.0.0.1']) {
      assert.equal(await confirmedName('127.0.0.1', placeholder), undefined, placeholder);
      assert.equal(reverseName(placeholder), undefined, placeholder);
    }
    assert.equal(reverseName('host-7'), 'host-7');
  });
});
