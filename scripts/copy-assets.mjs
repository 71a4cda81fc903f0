// Copies the non-TypeScript files the library reads at run time (the SPIFFE Workload API .proto)
// from src/ into dist/src/, beside the compiled modules that load them.
import { cpSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const ASSET = /\.proto$/
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (ASSET.test(name)) {
      const out = join('dist', relative('.', path))
      mkdirSync(dirname(out), { recursive: true })
      cpSync(path, out)
    }
  }
}
walk('src')
