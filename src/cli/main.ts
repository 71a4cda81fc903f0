#!/usr/bin/env node
/**
 * The `aauth` command. This release carries the protocol library's tools; the agent commands
 * (`agent serve`, `fetch`, `token inspect`) arrive with the agent package.
 *
 * @module
 */

import { chmod, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { decodeJwt, generateKeyPair, jwkThumbprint, type SupportedAlgorithm } from '../protocol/index.js'

const HELP = `aauth — AAuth tools (aauth-kit)

Usage:
  aauth keygen [--alg Ed25519|ES256] [--out FILE] [--json]
      Generate a key pair. With --out, the private JWK is written to FILE with mode 0600
      and the public JWK is printed; otherwise the private JWK is printed.
  aauth token decode TOKEN [--json]
      Decode an AAuth JWT (no verification) and show its type and claims.
  aauth --version | help
`

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  const json = rest.includes('--json')
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP)
      return 0
    case '--version':
    case 'version': {
      const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string }
      process.stdout.write(`${pkg.version}\n`)
      return 0
    }
    case 'keygen': {
      const alg = (flag(rest, '--alg') ?? 'Ed25519') as SupportedAlgorithm
      if (alg !== 'Ed25519' && alg !== 'ES256') throw new UsageError('--alg must be Ed25519 or ES256')
      const { privateJwk, publicJwk } = await generateKeyPair(alg)
      const kid = await jwkThumbprint(publicJwk)
      const out = flag(rest, '--out')
      if (out !== undefined) {
        await writeFile(out, JSON.stringify({ ...privateJwk, kid }, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
        await chmod(out, 0o600)
        process.stdout.write(json ? JSON.stringify({ file: out, publicJwk: { ...publicJwk, kid } }) + '\n' : `private key written to ${out} (mode 0600)\npublic JWK: ${JSON.stringify({ ...publicJwk, kid })}\n`)
      } else {
        process.stdout.write(JSON.stringify({ ...privateJwk, kid }, null, json ? 0 : 2) + '\n')
      }
      return 0
    }
    case 'token': {
      if (rest[0] !== 'decode' || rest[1] === undefined) throw new UsageError('usage: aauth token decode TOKEN')
      const { header, payload } = decodeJwt(rest[1])
      if (json) process.stdout.write(JSON.stringify({ header, payload }) + '\n')
      else {
        const exp = typeof payload['exp'] === 'number' ? new Date(payload['exp'] * 1000).toISOString() : 'none'
        process.stdout.write(`type:    ${String(header['typ'])}\nissuer:  ${String(payload['iss'])}\nexpires: ${exp}\nheader:  ${JSON.stringify(header)}\nclaims:  ${JSON.stringify(payload, null, 2)}\n(not verified)\n`)
      }
      return 0
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}\n\n${HELP}`)
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e)
    process.stderr.write(`aauth: ${msg}\n`)
    process.exitCode = e instanceof UsageError ? 2 : 1
  },
)
