#!/usr/bin/env node
// Entry point of the esets_smtp launcher, compiled from src/bin/esets_smtp.ts by `npm run build`.
// Until the launcher installs its own handling, USR1 and TERM end the process: Node's default USR1 would
// open its debugger (a code-execution port) and keep running. A HUP (systemctl reload) that early is
// ignored: the configuration has not been read yet.
const early = () => process.exit(0)
process.once('SIGUSR1', early)
process.once('SIGTERM', early)
process.on('SIGHUP', () => undefined)
process.earlySignalHandler = early
require('../dist/src/bin/esets_smtp.js')
