import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { exports: Record<string, string | { types: string; default: string }>; bin: Record<string, string> }
const built = existsSync(`${root}dist/src/protocol/index.js`)

// `npm install` / `npm ci` run `prepare`, which builds dist/.
describe.runIf(built)('the published package', () => {
  it.each(Object.entries(pkg.exports).filter(([, v]) => typeof v !== 'string'))('export %s points at built files', (_name, target) => {
    const t = target as { types: string; default: string }
    expect(existsSync(`${root}${t.default}`)).toBe(true)
    expect(existsSync(`${root}${t.types}`)).toBe(true)
  })

  it('loads with require() from CommonJS (no top-level await) and with import', () => {
    const out = execFileSync(process.execPath, ['-e', `const k = require(${JSON.stringify(`${root}dist/src/protocol/index.js`)}); console.log(typeof k.createRequestVerifier)`], { encoding: 'utf8' })
    expect(out.trim()).toBe('function')
  })

  it('the aauth bin runs', () => {
    const out = execFileSync(process.execPath, [`${root}${pkg.bin['aauth']}`, '--version'], { encoding: 'utf8' })
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })
})
