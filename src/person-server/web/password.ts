/**
 * Password hashing for the Person Server's own login (`PersonRecord.passwordHash`): scrypt from
 * `node:crypto`, stored as
 *
 * ```
 * scrypt$N$r$p$salt$hash        (salt and hash base64url, unpadded)
 * ```
 *
 * with N = 2^15, r = 8, p = 1, a 16-byte random salt and a 32-byte key by default. Verification
 * reads the parameters from the stored value (within sane bounds, so a corrupted or hostile row
 * cannot make a login burn gigabytes of memory), compares in constant time, and answers `false`
 * for anything malformed instead of throwing.
 *
 * Passwords are Unicode-normalised (NFC) before hashing, so the same password typed on two
 * keyboards that compose accents differently still matches.
 *
 * @module
 */

import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/** Cost parameters of {@link hashPassword}. */
export interface PasswordHashOptions {
  /** CPU/memory cost, a power of two between 2^14 and 2^20. Default 2^15. */
  readonly N?: number
}

const DEFAULT_N = 2 ** 15
const R = 8
const P = 1
const SALT_BYTES = 16
const KEY_BYTES = 32
const MIN_N = 2 ** 14
const MAX_N = 2 ** 20
/** Longest password accepted (characters); longer input is refused, not truncated. */
export const MAX_PASSWORD_LENGTH = 1024

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

function memoryFor(N: number, r: number, p: number): number {
  // scrypt needs about 128·N·r bytes for V plus 128·r·p for B; leave headroom.
  return 128 * N * r + 128 * r * p + 16 * 1024 * 1024
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 1 && (n & (n - 1)) === 0
}

/**
 * Hashes a password for storage.
 *
 * @throws {RangeError} for an empty or over-long password, or an out-of-range `N`.
 */
export async function hashPassword(password: string, options: PasswordHashOptions = {}): Promise<string> {
  const N = options.N ?? DEFAULT_N
  if (!isPowerOfTwo(N) || N < MIN_N || N > MAX_N) throw new RangeError('scrypt N must be a power of two between 2^14 and 2^20')
  if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
    throw new RangeError(`a password has 1 to ${MAX_PASSWORD_LENGTH} characters`)
  }
  const salt = randomBytes(SALT_BYTES)
  const key = await scrypt(password.normalize('NFC'), salt, KEY_BYTES, { N, r: R, p: P, maxmem: memoryFor(N, R, P) })
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

const B64URL = /^[A-Za-z0-9_-]+$/
const DIGITS = /^[1-9][0-9]{0,8}$/

function decode(part: string | undefined, min: number, max: number): Buffer | undefined {
  if (part === undefined || !B64URL.test(part) || part.length % 4 === 1) return undefined
  const bytes = Buffer.from(part, 'base64url')
  if (bytes.length < min || bytes.length > max || bytes.toString('base64url') !== part) return undefined
  return bytes
}

/**
 * Checks a password against a stored {@link hashPassword} value, in constant time. Returns
 * `false` (never throws) for a wrong password and for a missing or malformed stored value.
 */
export async function verifyPassword(password: string, stored: string | undefined | null): Promise<boolean> {
  if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD_LENGTH) return false
  if (typeof stored !== 'string' || stored.length > 512) return false
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, nText, rText, pText] = parts as [string, string, string, string, string, string]
  if (!DIGITS.test(nText) || !DIGITS.test(rText) || !DIGITS.test(pText)) return false
  const N = Number(nText)
  const r = Number(rText)
  const p = Number(pText)
  if (!isPowerOfTwo(N) || N < 2 ** 10 || N > MAX_N || r < 1 || r > 32 || p < 1 || p > 16 || 128 * N * r > 256 * 1024 * 1024) return false
  const salt = decode(parts[4], 8, 64)
  const expected = decode(parts[5], 16, 64)
  if (salt === undefined || expected === undefined) return false
  try {
    const key = await scrypt(password.normalize('NFC'), salt, expected.length, { N, r, p, maxmem: memoryFor(N, r, p) })
    return timingSafeEqual(key, expected)
  } catch {
    return false
  }
}

let dummyHash: Promise<string> | undefined

/**
 * Burns about the same time as a real verification, for logins naming an unknown user (so the
 * response time does not reveal which usernames exist). Always resolves `false`.
 */
export async function verifyDummyPassword(password: string): Promise<false> {
  dummyHash ??= hashPassword('aauth-kit dummy password, never matches anything real')
  await verifyPassword(password, await dummyHash)
  return false
}
