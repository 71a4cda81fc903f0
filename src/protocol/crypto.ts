/**
 * The crypto provider behind every signature the library makes or checks.
 *
 * On Node (and runtimes exposing `node:crypto`) the provider uses `KeyObject`s: synchronous
 * `sign`/`verify` for single requests and the callback form, which runs on the libuv pool and
 * so uses every core, for servers under concurrency. Elsewhere it uses WebCrypto. Selection is
 * automatic; `@noble/ed25519` is used by the tests as an independent oracle.
 *
 * Exported from `'aauth-kit'` (types and {@link generateKeyPair}, {@link createSigner}).
 *
 * @module
 */

import { decodeBase64url, encodeBase64url } from '../lib/base64url.js'

/** Signature algorithms this library implements, as JOSE fully-specified identifiers. */
export const SUPPORTED_ALGORITHMS = ['Ed25519', 'ES256'] as const
/** One of {@link SUPPORTED_ALGORITHMS}. */
export type SupportedAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number]

/** A public JWK as AAuth conveys it (`alg` required by the drafts). */
export interface PublicJwk {
  kty: string
  alg?: string
  crv?: string
  x?: string
  y?: string
  n?: string
  e?: string
  kid?: string
  use?: string
  [member: string]: unknown
}

/** A private JWK (adds `d`). */
export interface PrivateJwk extends PublicJwk {
  d: string
}

type NodeCrypto = typeof import('node:crypto')

/**
 * `node:crypto` through `process.getBuiltinModule` (Node ≥ 20.16, Deno, Bun): synchronous, so the
 * module has no top-level await and can be `require()`d from CommonJS on Node 20.19+.
 */
function loadNodeCrypto(): NodeCrypto | undefined {
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    return proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined
  } catch {
    return undefined
  }
}

/** `node:crypto` when available; `undefined` on WebCrypto-only runtimes. */
export const nodeCrypto: NodeCrypto | undefined = loadNodeCrypto()

/** An imported verification key. Opaque outside this module. */
export interface VerifyKey {
  readonly alg: SupportedAlgorithm
  /** `node:crypto` KeyObject, WebCrypto CryptoKey, or (when `inline`) a JWK key input. */
  readonly handle: unknown
  /** True when the key is used straight from its JWK, without a retained KeyObject. */
  readonly inline?: boolean
}

/**
 * A verification key that holds no native key object: Node parses the JWK on each use (a few
 * microseconds). Used for a token's first request so that a flood of single-use tokens does not
 * pin one native key per cache entry; the key is imported if the token is seen again. Ed25519 on
 * Node only (`undefined` otherwise, and callers import).
 */
export function inlineVerifyKey(jwk: PublicJwk, alg: SupportedAlgorithm): VerifyKey | undefined {
  if (nodeCrypto === undefined || alg !== 'Ed25519') return undefined
  return { alg, handle: { key: publicOnly(jwk), format: 'jwk' }, inline: true }
}

/** Converts a JWK to a key handle; throws when the key material is not a valid public key. */
export async function importVerifyKey(jwk: PublicJwk, alg: SupportedAlgorithm): Promise<VerifyKey> {
  const pub = publicOnly(jwk)
  if (nodeCrypto !== undefined) {
    return { alg, handle: nodeCrypto.createPublicKey({ key: pub as import('node:crypto').JsonWebKey, format: 'jwk' }) }
  }
  const params = alg === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' }
  return { alg, handle: await crypto.subtle.importKey('jwk', pub as JsonWebKey, params, true, ['verify']) }
}

function publicOnly(jwk: PublicJwk): Record<string, string> {
  const out: Record<string, string> = { kty: jwk.kty }
  for (const k of ['crv', 'x', 'y', 'n', 'e'] as const) {
    const v = jwk[k]
    if (typeof v === 'string') out[k] = v
  }
  return out
}

/**
 * Verifies a signature. `sync` uses the synchronous Node API (lowest latency for one request);
 * otherwise the work runs off the event loop.
 */
export function verifySignatureBytes(key: VerifyKey, data: Uint8Array, signature: Uint8Array, sync = false): Promise<boolean> | boolean {
  if (nodeCrypto !== undefined) {
    const nc = nodeCrypto
    const k = key.handle as import('node:crypto').KeyObject | import('node:crypto').JsonWebKeyInput
    const keyArg = key.alg === 'Ed25519' ? k : { key: k as import('node:crypto').KeyObject, dsaEncoding: 'ieee-p1363' as const }
    const digest = key.alg === 'Ed25519' ? null : 'sha256'
    if (sync) {
      try {
        return nc.verify(digest, data, keyArg, signature)
      } catch {
        return false
      }
    }
    return new Promise((resolve) => {
      try {
        nc.verify(digest, data, keyArg, signature, (err, ok) => resolve(err === null && ok))
      } catch {
        resolve(false)
      }
    })
  }
  const algo = key.alg === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', hash: 'SHA-256' }
  return crypto.subtle.verify(algo, key.handle as CryptoKey, signature as BufferSource, data as BufferSource).catch(() => false)
}

/** Something that can sign a signature base: the agent's key. */
export interface Signer {
  /** JOSE algorithm of the key; determines the RFC 9421 algorithm (no `alg` parameter is sent). */
  readonly alg: SupportedAlgorithm
  /** The public key, with `alg`, as it goes into `cnf.jwk`. */
  readonly publicJwk: PublicJwk
  /** Signs `data`; resolves to the raw signature (64 bytes for both algorithms). */
  sign(data: Uint8Array): Promise<Uint8Array>
  /** Synchronous form where the runtime offers one (Node). */
  readonly signSync?: (data: Uint8Array) => Uint8Array
}

/** A freshly generated key pair as JWKs, both carrying `alg`. */
export interface GeneratedKeyPair {
  readonly publicJwk: PublicJwk
  readonly privateJwk: PrivateJwk
}

/**
 * Generates an Ed25519 (default) or ES256 key pair where the caller runs.
 *
 * @example
 * ```ts
 * const { privateJwk, publicJwk } = await generateKeyPair()
 * ```
 */
export async function generateKeyPair(alg: SupportedAlgorithm = 'Ed25519'): Promise<GeneratedKeyPair> {
  let priv: Record<string, unknown>
  if (nodeCrypto !== undefined) {
    const pair =
      alg === 'Ed25519' ? nodeCrypto.generateKeyPairSync('ed25519') : nodeCrypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    priv = pair.privateKey.export({ format: 'jwk' }) as Record<string, unknown>
  } else {
    const params = alg === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' }
    const pair = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair
    priv = (await crypto.subtle.exportKey('jwk', pair.privateKey)) as Record<string, unknown>
  }
  const publicJwk: PublicJwk = { ...publicOnly(priv as PublicJwk), kty: priv['kty'] as string, alg }
  const privateJwk: PrivateJwk = { ...publicJwk, d: priv['d'] as string }
  return { publicJwk, privateJwk }
}

/**
 * Creates a {@link Signer} from a private JWK (`alg` must be `Ed25519` or `ES256`).
 *
 * @throws {TypeError} when the JWK is not a usable private key of a supported algorithm.
 */
export async function createSigner(privateJwk: PrivateJwk): Promise<Signer> {
  const alg = privateJwk.alg
  if (alg !== 'Ed25519' && alg !== 'ES256') throw new TypeError('private JWK must carry alg "Ed25519" or "ES256"')
  if (typeof privateJwk.d !== 'string' || decodeBase64url(privateJwk.d) === undefined) {
    throw new TypeError('private JWK must carry a base64url "d"')
  }
  const publicJwk: PublicJwk = { ...publicOnly(privateJwk), kty: privateJwk.kty, alg }
  const keyMaterial = { ...publicOnly(privateJwk), d: privateJwk.d }
  if (nodeCrypto !== undefined) {
    const nc = nodeCrypto
    const key = nc.createPrivateKey({ key: keyMaterial as import('node:crypto').JsonWebKey, format: 'jwk' })
    const signSync =
      alg === 'Ed25519'
        ? (data: Uint8Array) => new Uint8Array(nc.sign(null, data, key))
        : (data: Uint8Array) => new Uint8Array(nc.sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }))
    return { alg, publicJwk, signSync, sign: async (data) => signSync(data) }
  }
  const params = alg === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' }
  const key = await crypto.subtle.importKey('jwk', keyMaterial as JsonWebKey, params, false, ['sign'])
  const algo = alg === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', hash: 'SHA-256' }
  return { alg, publicJwk, sign: async (data) => new Uint8Array(await crypto.subtle.sign(algo, key, data as BufferSource)) }
}

/** SHA-256 of `data`. Synchronous on Node. */
export function sha256(data: Uint8Array): Uint8Array | Promise<Uint8Array> {
  if (nodeCrypto !== undefined) return new Uint8Array(nodeCrypto.createHash('sha256').update(data).digest())
  return crypto.subtle.digest('SHA-256', data as BufferSource).then((b) => new Uint8Array(b))
}

/**
 * Unpadded base64url SHA-256 of a UTF-8 string, synchronously where the runtime allows (Node's
 * one-shot `crypto.hash`, about 1 µs); otherwise a promise. Used for replay-cache keys.
 */
export function sha256Base64urlFast(input: string): string | Promise<string> {
  const hash = (nodeCrypto as { hash?: (alg: string, data: string, enc: 'base64url') => string } | undefined)?.hash
  if (hash !== undefined) return hash('sha256', input, 'base64url')
  const digest = sha256(new TextEncoder().encode(input))
  return digest instanceof Uint8Array ? encodeBase64url(digest) : digest.then(encodeBase64url)
}

/** Unpadded base64url SHA-256 of a UTF-8 string (used for thumbprints and `mission_s256`). */
export async function sha256Base64url(input: string | Uint8Array): Promise<string> {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input
  return encodeBase64url(await sha256(bytes))
}
