/**
 * Private keys on disk, readable only by their owner. A key file is a private JWK (with `alg` and
 * `kid`) written with mode 0600; loading refuses a file that group or others can read, as SSH does
 * (issue "Agent": keys are generated where the agent runs and never leave its process).
 *
 * Node only. Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import { chmod, open, readFile, stat } from 'node:fs/promises'
import { generateKeyPair, jwkThumbprint, type PrivateJwk, type SupportedAlgorithm } from '../protocol/index.js'

/** A key file problem: permissions, content or existence. */
export class KeyFileError extends Error {
  readonly code: 'key_file_permissions' | 'key_file_invalid' | 'key_file_exists'
  readonly path: string
  constructor(code: KeyFileError['code'], path: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KeyFileError'
    this.code = code
    this.path = path
  }
}

/** A private JWK as stored: `alg` and `kid` (its RFC 7638 thumbprint unless given) included. */
export type StoredKey = PrivateJwk & { alg: SupportedAlgorithm; kid: string }

/**
 * Writes a private key to `path` with mode 0600. Refuses to overwrite an existing file unless
 * `overwrite` is set.
 *
 * @throws {KeyFileError} `key_file_exists`
 */
export async function saveKeyFile(path: string, key: PrivateJwk, options: { overwrite?: boolean } = {}): Promise<StoredKey> {
  const stored = { ...key, kid: key.kid ?? (await jwkThumbprint(key)) } as StoredKey
  let handle
  try {
    handle = await open(path, options.overwrite === true ? 'w' : 'wx', 0o600)
  } catch (cause) {
    if ((cause as { code?: string }).code === 'EEXIST') throw new KeyFileError('key_file_exists', path, `${path} already exists; refusing to overwrite a key`, { cause })
    throw cause
  }
  try {
    await handle.writeFile(JSON.stringify(stored, null, 2) + '\n')
  } finally {
    await handle.close()
  }
  // An existing file keeps its old mode on 'w': set it explicitly.
  await chmod(path, 0o600)
  return stored
}

/**
 * Reads a private key file.
 *
 * @throws {KeyFileError} `key_file_permissions` when group or others have any access,
 *   `key_file_invalid` when the content is not a private JWK with a supported `alg`.
 */
export async function loadKeyFile(path: string): Promise<StoredKey> {
  const st = await stat(path)
  if ((st.mode & 0o077) !== 0) {
    throw new KeyFileError('key_file_permissions', path, `${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`)
  }
  let jwk: unknown
  try {
    jwk = JSON.parse(await readFile(path, 'utf8'))
  } catch (cause) {
    throw new KeyFileError('key_file_invalid', path, `${path} is not JSON`, { cause })
  }
  const k = jwk as Partial<StoredKey>
  if (typeof k !== 'object' || k === null || typeof k.d !== 'string' || (k.alg !== 'Ed25519' && k.alg !== 'ES256')) {
    throw new KeyFileError('key_file_invalid', path, `${path} is not a private JWK with alg Ed25519 or ES256`)
  }
  return { ...(k as StoredKey), kid: k.kid ?? (await jwkThumbprint(k as PrivateJwk)) }
}

/**
 * Loads the key at `path`, or generates one there (mode 0600) when the file does not exist.
 */
export async function loadOrCreateKeyFile(path: string, alg: SupportedAlgorithm = 'Ed25519'): Promise<StoredKey> {
  try {
    return await loadKeyFile(path)
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e
  }
  return saveKeyFile(path, (await generateKeyPair(alg)).privateJwk)
}
