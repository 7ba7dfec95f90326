#!/usr/bin/env node
// Run by `npm pack` (prepack: add, postpack: remove). Installed into a Haraka
// folder, the package is node_modules/esets-relay/, and Haraka finds a plugin
// listed as `esets-relay/NAME` at node_modules/esets-relay/NAME/package.json:
// one such folder per plugin, pointing into dist/ like plugins/NAME/package.json
// does for a clone. Made at pack time so that the repository keeps one set.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const names = fs.readdirSync(path.join(root, 'plugins')).filter((n) => fs.existsSync(path.join(root, 'plugins', n, 'package.json')))
const action = process.argv[2]
for (const name of names) {
  const dir = path.join(root, name)
  if (action === 'remove') {
    fs.rmSync(dir, { recursive: true, force: true })
    continue
  }
  if (action !== 'add') throw new Error('usage: package_plugins.js add|remove')
  const main = path.join('..', 'dist', 'src', 'plugins', name, 'index.js')
  if (!fs.existsSync(path.join(dir, main))) throw new Error(`${main} is not built`)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({
    name: `esets-relay-${name}`,
    private: true,
    description: `esets-relay Haraka plugin ${name}: list it as esets-relay/${name} in config/plugins (docs/plugins/${name}.md)`,
    main,
  }, null, 2)}\n`)
}
