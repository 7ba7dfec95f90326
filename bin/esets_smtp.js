#!/usr/bin/env node
// Entry point of the esets_smtp launcher, compiled from src/bin/esets_smtp.ts by `npm run build`.
require('../dist/src/bin/esets_smtp.js')
