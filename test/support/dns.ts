// A tiny authoritative DNS responder (UDP) for the tests, and a way to make a
// child process use it as its only name server: the child runs in a private
// mount namespace (unshare --mount) where a resolv.conf naming this server is
// bind-mounted over /etc/resolv.conf (what `ip netns exec` does with
// /etc/netns/NAME/resolv.conf, without a network namespace: the child still
// shares the loopback network with the test). Both resolvers of a Node
// process then ask it: c-ares (dns.reverse, dns.resolve*) and the system's
// getaddrinfo (dns.lookup; /etc/hosts first, as nsswitch says "files dns").

import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { removeTempDir, tempDir } from './temp_dirs';

export interface DnsRecords {
  /** IPv4 address → PTR name */
  ptr?: Record<string, string>;
  /** name → IPv4 addresses */
  a?: Record<string, string[]>;
}

export interface DnsServer {
  address: string;
  /** queries received, as `TYPE name` */
  queries: string[];
  /** a resolv.conf that names this server only */
  resolvConf: string;
  /** prefix for a command line: runs the command with this server as its resolver */
  wrap: string[];
  stop(): Promise<void>;
}

const TYPE = { A: 1, PTR: 12, AAAA: 28 } as const;

function readName(msg: Buffer, at: number): [string, number] {
  const labels: string[] = [];
  for (;;) {
    const len = msg[at];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return [labels.join('.'), at + 1];
    if (len >= 0xc0) throw new Error('compressed name in a question');
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('latin1'));
    at += 1 + len;
  }
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

function rr(type: number, rdata: Buffer): Buffer {
  // name: a pointer to the question's name at offset 12
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(5, 6); // TTL
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

/** Answers `msg` from `records`: the records asked for, an empty answer for a known name, NXDOMAIN otherwise. */
export function answer(msg: Buffer, records: DnsRecords, seen?: string[]): Buffer | undefined {
  if (msg.length < 12) return undefined;
  const qdcount = msg.readUInt16BE(4);
  if (qdcount !== 1) return undefined;
  const [qname, end] = readName(msg, 12);
  const qtype = msg.readUInt16BE(end);
  const name = qname.toLowerCase();
  const question = msg.subarray(12, end + 4);
  const answers: Buffer[] = [];
  let known = false;
  const ptrFor = Object.entries(records.ptr ?? {}).find(([ip]) => `${ip.split('.').reverse().join('.')}.in-addr.arpa` === name);
  if (ptrFor) {
    known = true;
    if (qtype === TYPE.PTR) answers.push(rr(TYPE.PTR, encodeName(ptrFor[1])));
  }
  const a = Object.entries(records.a ?? {}).find(([n]) => n.toLowerCase() === name);
  if (a) {
    known = true;
    if (qtype === TYPE.A) for (const ip of a[1]) answers.push(rr(TYPE.A, Buffer.from(ip.split('.').map(Number))));
  }
  seen?.push(`${Object.entries(TYPE).find(([, v]) => v === qtype)?.[0] ?? qtype} ${name}`);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
  // QR, opcode 0, AA, RD copied, RA; rcode 0 or 3 (NXDOMAIN)
  header.writeUInt16BE(0x8000 | 0x0400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | (known ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}

/** Starts the responder on `address`:53 (a loopback address of its own). */
/** A socket on port 53 of a loopback address in 127.53.0.0/16 that no other run holds (resolv.conf takes no port). */
async function bindFree(wanted?: string): Promise<{ socket: dgram.Socket; address: string }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const address = wanted ?? `127.53.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
    const socket = dgram.createSocket('udp4');
    const bound = await new Promise<boolean>((resolve, reject) => {
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close();
        if (err.code === 'EADDRINUSE' && !wanted) resolve(false);
        else reject(err);
      });
      socket.bind(53, address, () => resolve(true));
    });
    if (bound) return { socket, address };
  }
  throw new Error('no free loopback address for the test DNS server');
}

export async function startDnsServer(records: DnsRecords, wanted?: string): Promise<DnsServer> {
  const { socket, address } = await bindFree(wanted);
  socket.removeAllListeners('error');
  socket.on('error', () => undefined);
  const queries: string[] = [];
  socket.on('message', (msg, from) => {
    let reply: Buffer | undefined;
    try {
      reply = answer(msg, records, queries);
    } catch {
      reply = undefined;
    }
    if (reply) socket.send(reply, from.port, from.address);
  });
  const dir = tempDir('esets-dns-');
  const resolvConf = path.join(dir, 'resolv.conf');
  fs.writeFileSync(resolvConf, `nameserver ${address}\noptions timeout:1 attempts:1\n`);
  const wrap = [
    'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf,
  ];
  return {
    address,
    queries,
    resolvConf,
    wrap,
    stop: () => new Promise((resolve) => {
      removeTempDir(dir);
      socket.close(() => resolve());
    }),
  };
}
