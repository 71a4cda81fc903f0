/**
 * `Content-Digest` (RFC 9530) for request bodies: `sha-256` is produced; `sha-256` and `sha-512`
 * are checked.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { encodeBase64 } from '../lib/base64url.js'
import { dictionaryField, isInnerList } from '../lib/sf.js'
import { SignatureError } from './errors.js'
import { nodeCrypto } from './crypto.js'

/** Header field name. */
export const CONTENT_DIGEST_HEADER = 'content-digest'

async function digest(alg: 'sha-256' | 'sha-512', body: Uint8Array): Promise<Uint8Array> {
  if (nodeCrypto !== undefined) return new Uint8Array(nodeCrypto.createHash(alg === 'sha-256' ? 'sha256' : 'sha512').update(body).digest())
  return new Uint8Array(await crypto.subtle.digest(alg === 'sha-256' ? 'SHA-256' : 'SHA-512', body as BufferSource))
}

/**
 * Computes the `Content-Digest` value for a body.
 *
 * @example
 * ```ts
 * await createContentDigest(new TextEncoder().encode('{"hello": "world"}\n'))
 * // 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:' (RFC 9530 B.2)
 * ```
 */
export async function createContentDigest(body: Uint8Array): Promise<string> {
  return `sha-256=:${encodeBase64(await digest('sha-256', body))}:`
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

/**
 * Checks a `Content-Digest` value against the body. At least one of `sha-256`/`sha-512` must be
 * present and every one present must match.
 *
 * @throws {SignatureError} `invalid_signature` when the header is malformed, names no supported
 *   algorithm, or does not match (the body changed after signing: CHECKLIST NEG-SIG-16).
 */
export async function verifyContentDigest(value: string, body: Uint8Array): Promise<void> {
  let dict
  try {
    dict = dictionaryField(CONTENT_DIGEST_HEADER, value)
  } catch (cause) {
    throw new SignatureError('invalid_signature', 'Content-Digest is malformed', { cause })
  }
  let checked = 0
  for (const alg of ['sha-256', 'sha-512'] as const) {
    const member = dict.get(alg)
    if (member === undefined) continue
    if (isInnerList(member) || !(member[0] instanceof ArrayBuffer)) {
      throw new SignatureError('invalid_signature', `Content-Digest ${alg} must be a Byte Sequence`)
    }
    if (!equal(new Uint8Array(member[0]), await digest(alg, body))) {
      throw new SignatureError('invalid_signature', 'Content-Digest does not match the body')
    }
    checked++
  }
  if (checked === 0) throw new SignatureError('invalid_signature', 'Content-Digest carries no sha-256 or sha-512 value')
}
