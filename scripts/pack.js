#!/usr/bin/env node
// npm pack's own steps (package.json: prepack, postpack).
// prepack: dist/src compiled afresh (nothing left from an older build ships), then one folder per plugin at the
// top: installed into a Haraka folder the package is node_modules/esets-relay/, and Haraka finds a plugin
// listed as `esets-relay/NAME` at node_modules/esets-relay/NAME/package.json, pointing into dist/ as
// plugins/NAME/package.json does for a clone (made here, so that the repository keeps one set).
// postpack: those folders removed (prepack removes any a failed pack left, too).
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const plugins = fs.readdirSync(path.join(root, 'plugins')).filter((n) => fs.existsSync(path.join(root, 'plugins', n, 'package.json')))
const removeFolders = () => {
  for (const name of plugins) fs.rmSync(path.join(root, name), { recursive: true, force: true })
}

const step = process.argv[2]
if (step === 'postpack') {
  removeFolders()
} else if (step === 'prepack') {
  removeFolders()
  fs.rmSync(path.join(root, 'dist', 'src'), { recursive: true, force: true })
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.package.json'], {
    cwd: root, stdio: 'inherit',
  })
  for (const name of plugins) {
    const main = path.join('..', 'dist', 'src', 'plugins', name, 'index.js')
    if (!fs.existsSync(path.join(root, name, main))) throw new Error(`${main} was not built`)
    fs.mkdirSync(path.join(root, name))
    fs.writeFileSync(path.join(root, name, 'package.json'), `${JSON.stringify({
      name: `esets-relay-${name}`,
      private: true,
      description: `esets-relay Haraka plugin ${name}: list it as esets-relay/${name} in config/plugins (docs/plugins/${name}.md)`,
      main,
    }, null, 2)}\n`)
  }
} else {
  throw new Error('usage: pack.js prepack|postpack')
}
