/**
 * `aauth keygen [--alg Ed25519|ES256] [--out FILE] [--json]`.
 *
 * @module
 */

import { saveKeyFile } from '../../agent/key-file.js'
import { generateKeyPair, jwkThumbprint } from '../../protocol/index.js'
import { expectPositionals, parseArgs, UsageError } from '../args.js'
import { writeJson, type CommandRun } from '../output.js'

const FLAGS = { alg: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } } as const

/**
 * Generates a key pair. With `--out` the private JWK goes to a new file with mode 0600 and the
 * public JWK is printed; otherwise the private JWK is printed.
 */
export const keygen: CommandRun = async (argv, ctx) => {
  const { flags, positionals } = parseArgs(argv, FLAGS, 'keygen')
  expectPositionals(positionals, [], 'keygen')
  const alg = flags.alg ?? 'Ed25519'
  if (alg !== 'Ed25519' && alg !== 'ES256') throw new UsageError('--alg must be Ed25519 or ES256', 'keygen')
  const { privateJwk, publicJwk } = await generateKeyPair(alg)
  const kid = await jwkThumbprint(publicJwk)
  if (flags.out === undefined) {
    ctx.stdout.write(JSON.stringify({ ...privateJwk, kid }, null, flags.json ? 0 : 2) + '\n')
    return 0
  }
  await saveKeyFile(flags.out, { ...privateJwk, kid })
  const pub = { ...publicJwk, kid }
  if (flags.json) writeJson(ctx.stdout, { file: flags.out, publicJwk: pub })
  else ctx.stdout.write(`private key written to ${flags.out} (mode 0600)\npublic JWK: ${JSON.stringify(pub)}\n`)
  return 0
}
