#!/usr/bin/env node
// Entry point of esets-relay-setup, compiled from src/bin/esets_relay_setup.ts by `npm run build`.
require('../dist/src/bin/esets_relay_setup.js')
