#!/usr/bin/env node
// Entry point of esets_quar (the quarantine command), compiled from src/bin/esets_quar.ts by `npm run build`.
require('../dist/src/bin/esets_quar.js')
