/**
 * What several `aauth` commands share: the development loopback switch, server-URL flags, the
 * environment fallbacks of the agent flags, and reading the agent's key file.
 *
 * @module
 */

import { existsSync } from 'node:fs'
import { loadKeyFile, loadOrCreateKeyFile, type StoredKey } from '../agent/key-file.js'
import { devLoopbackFromEnv } from '../protocol/egress.js'
import { isServerIdentifier, type IdentifierOptions } from '../protocol/identifiers.js'
import { jwkThumbprint } from '../protocol/jwk.js'
import type { PublicJwk } from '../protocol/crypto.js'
import { UsageError } from './args.js'
import { CliError, errorInfo, type Context } from './output.js'

/** `{ allowInsecureLoopback }` from `AAUTH_DEV_LOOPBACK=1`. */
export function loopbackOptions(ctx: Context): Required<IdentifierOptions> {
  return { allowInsecureLoopback: devLoopbackFromEnv(ctx.env) }
}

/** The hint shown when an `http://` loopback URL is given without the development switch. */
export const DEV_LOOPBACK_HINT = 'http://127.0.0.1:PORT and http://localhost:PORT are admitted only with AAUTH_DEV_LOOPBACK=1 (development)'

/**
 * Reads a server URL flag (`--provider`, `--ps`): a server identifier — `https://host`, no port,
 * path, query or trailing slash (one trailing slash is forgiven) — or, with the development switch,
 * `http://127.0.0.1:PORT`.
 *
 * @throws {UsageError} naming the flag and the rule.
 */
export function serverUrlFlag(value: string, flag: string, command: string, idOpts: IdentifierOptions): string {
  const url = value.endsWith('/') && !value.endsWith('//') ? value.slice(0, -1) : value
  if (isServerIdentifier(url, idOpts)) return url
  const loopbackHttp = /^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(url)
  throw new UsageError(`${flag} ${JSON.stringify(value)} is not a server identifier (https://host, lowercase, no port or path)${loopbackHttp && idOpts.allowInsecureLoopback !== true ? `; ${DEV_LOOPBACK_HINT}` : ''}`, command)
}

/** A flag's value, else the environment variable `name`, else `undefined`. */
export function flagOrEnv(value: string | undefined, ctx: Context, name: string): string | undefined {
  if (value !== undefined) return value
  const v = ctx.env[name]
  return v === undefined || v === '' ? undefined : v
}

/**
 * Reads the agent's private key file. With `create`, a missing file is created (Ed25519, mode
 * 0600) and `created` says so.
 *
 * @throws {CliError} `key_file_missing`; {@link KeyFileError} for permissions or content.
 */
export async function readAgentKey(path: string, options: { create: boolean }): Promise<{ key: StoredKey; created: boolean }> {
  if (options.create) {
    const created = !existsSync(path)
    return { key: await loadOrCreateKeyFile(path), created }
  }
  try {
    return { key: await loadKeyFile(path), created: false }
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ENOENT') throw e
    throw new CliError('key_file_missing', `${path} does not exist`, { hint: 'create and enroll a key with: aauth agent enroll --provider URL --code CODE --key FILE' })
  }
}

/** Reads all of stdin. */
export async function readStdin(ctx: Context): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of ctx.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
  return new Uint8Array(Buffer.concat(chunks))
}

/** The agent's provider and key file, from the flags or the environment. */
export function providerAndKey(flags: { provider?: string | undefined; key?: string | undefined }, ctx: Context, command: string): { provider: string; keyPath: string } {
  const provider = flagOrEnv(flags.provider, ctx, 'AAUTH_PROVIDER')
  if (provider === undefined) throw new UsageError('--provider URL is required (or set AAUTH_PROVIDER)', command)
  const keyPath = flagOrEnv(flags.key, ctx, 'AAUTH_AGENT_KEY')
  if (keyPath === undefined) throw new UsageError('--key FILE is required (or set AAUTH_AGENT_KEY)', command)
  return { provider: serverUrlFlag(provider, '--provider', command, loopbackOptions(ctx)), keyPath }
}

/** Adds what to do to a provider's refusal of an unknown key; other errors pass unchanged. */
export function explainProviderError(e: unknown, provider: string): unknown {
  if (errorInfo(e).code !== 'denied') return e
  return new CliError('denied', `agent provider ${provider}: ${(e as Error).message}`, { hint: 'enroll the key first: aauth agent enroll --provider URL --code CODE --key FILE', cause: e })
}

/** RFC 7638 thumbprint of a token's `cnf.jwk`; `undefined` when absent or unusable. */
export async function cnfThumbprint(claims: Record<string, unknown>): Promise<string | undefined> {
  const jwk = (claims['cnf'] as { jwk?: unknown } | undefined)?.jwk
  if (typeof jwk !== 'object' || jwk === null) return undefined
  try {
    return await jwkThumbprint(jwk as PublicJwk)
  } catch {
    return undefined
  }
}
