// The quick start's mail server (scripts/quickstart.sh), in place of Postfix's `smtp-sink -d`: accepts every
// message on 127.0.0.1:PORT, stores each one to a file of its own in DIR (the message as received, no envelope),
// and answers `250 2.0.0 Ok: queued as ID` once the file is written (451 if it cannot be). It offers XCLIENT,
// as a mail server that trusts the relay does. Not part of the relay: it runs on `smtp-server`, a dev
// dependency, from a clone after `npm ci`.
//   node dist/src/tools/quickstart_sink.js --port PORT --dir DIR

import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { SMTPServer } from 'smtp-server';

type SmtpError = Error & { responseCode: number };

function smtpError(code: number, text: string): SmtpError {
  return Object.assign(new Error(text), { responseCode: code });
}

function main(): void {
  const { values } = parseArgs({ options: { port: { type: 'string' }, dir: { type: 'string' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || !values.dir) {
    process.stderr.write('usage: quickstart_sink --port PORT --dir DIR\n');
    process.exit(2);
  }
  const dir = path.resolve(values.dir);
  fs.mkdirSync(dir, { recursive: true });
  let count = 0;

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    useXClient: true,
    logger: false,
    size: 100 * 1024 * 1024,
    onData(stream, session, callback) {
      // a time-ordered name, unique for this process
      const id = `${new Date().toISOString().replace(/[-:.]/g, '')}.${++count}`;
      const file = path.join(dir, `${id}.eml`);
      pipeline(stream, fs.createWriteStream(`${file}.tmp`))
        .then(() => {
          if (stream.sizeExceeded) {
            fs.rmSync(`${file}.tmp`, { force: true });
            return callback(smtpError(552, '5.3.4 Message too big'));
          }
          fs.renameSync(`${file}.tmp`, file);
          process.stdout.write(`${id}: from=<${session.envelope.mailFrom ? session.envelope.mailFrom.address : ''}> ` +
            `to=${session.envelope.rcptTo.map((r) => `<${r.address}>`).join(',')} ${file}\n`);
          callback(null, `2.0.0 Ok: queued as ${id}`);
        })
        .catch((err: Error) => {
          fs.rmSync(`${file}.tmp`, { force: true });
          process.stderr.write(`${id}: not stored: ${err.message}\n`);
          callback(smtpError(451, '4.3.0 Message not stored'));
        });
    },
  });
  let listening = false;
  server.on('error', (err: Error) => {
    if (listening) return; // a client that went away mid-session: not the sink's failure
    process.stderr.write(`cannot listen on 127.0.0.1:${port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, '127.0.0.1', () => {
    listening = true;
    process.stdout.write(`listening on 127.0.0.1:${port}, storing to ${dir}\n`);
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close(() => process.exit(0)));
}

main();
