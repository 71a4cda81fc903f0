import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

it('npm run demo: the signed request is served, the replay and the unsigned call get 401', async () => {
  const tsx = `${root}node_modules/.bin/tsx`
  const { stdout } = await run(tsx, [`${root}examples/demo.ts`], { env: { ...process.env, AAUTH_DEV_LOOPBACK: '1' }, timeout: 60_000 })
  expect(stdout).toMatch(/response\s+200 /)
  expect(stdout).toMatch(/replayed\s+401 Signature-Error: error=invalid_signature/)
  expect(stdout).toMatch(/unsigned\s+401 Signature-Error: error=invalid_signature/)
  expect(stdout).toContain('Done: signed request accepted, forgeries refused.')
})
