/**
 * Self-proven keys for the agent provider's own endpoints: the `hwk` scheme (an inline public
 * key, SK §3.4) and the `jkt-jwt` scheme (a durable key naming an ephemeral key, SK §3.5), as the
 * bootstrap draft uses them for enrollment and refresh (§8.1 Two-Key Refresh, §8.2 Single-Key
 * Refresh). AAuth resources, PSes and ASes never accept these schemes (main draft §Keying
 * Material); only an agent provider does.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { loadJose } from '../lib/jose.js'
import { isObject } from '../lib/assert.js'
import { SignatureError } from './errors.js'
import { checkPublicJwk, importPublicJwk, jwkThumbprint, type JwkPolicy } from './jwk.js'
import { decodeJwt, randomJti } from './tokens/common.js'
import type { PrivateJwk, PublicJwk } from './crypto.js'
import type { HwkMember } from './signature-key.js'
import type { ResolvedKey } from './verification.js'

/** The `typ` of a SHA-256 JKT JWT, and the `iss` prefix it implies. */
export const JKT_S256_TYP = 'jkt-s256+jwt'
export const JKT_S256_ISS_PREFIX = 'urn:jkt:sha-256:'

/** What an `hwk` or `jkt-jwt` signature proves. */
export type SelfProvenContext =
  | { readonly scheme: 'hwk'; readonly jkt: string }
  | {
      readonly scheme: 'jkt-jwt'
      /** Thumbprint of the durable (enrolled) key that named the signing key. */
      readonly durableJkt: string
      readonly durableJwk: PublicJwk
      readonly claims: Record<string, unknown>
    }

/** Options of {@link createJktJwt}. */
export interface CreateJktJwtOptions {
  /** The durable key (e.g. enclave-held), as a private JWK with `alg`. */
  readonly durableKey: PrivateJwk
  /** The ephemeral public key to delegate to (goes in `cnf.jwk`). */
  readonly ephemeralJwk: PublicJwk
  /** Lifetime in seconds. Default 300. */
  readonly lifetimeSec?: number
  readonly now?: () => number
  readonly jti?: string
}

function publicPart(jwk: PublicJwk): PublicJwk {
  const out: PublicJwk = { kty: jwk.kty, alg: jwk.alg }
  for (const m of ['crv', 'x', 'y'] as const) if (jwk[m] !== undefined) out[m] = jwk[m]
  return out
}

/**
 * Creates the naming JWT of the two-key refresh: signed by the durable key, carrying it in the
 * header `jwk`, `iss` its thumbprint URN, and the ephemeral key in `cnf.jwk`.
 *
 * @throws {TypeError} when a key is not a supported key with `alg`.
 */
export async function createJktJwt(opts: CreateJktJwtOptions): Promise<string> {
  const alg = opts.durableKey.alg
  if (alg !== 'Ed25519' && alg !== 'ES256') throw new TypeError('durableKey must carry alg Ed25519 or ES256')
  const durablePublic = publicPart(opts.durableKey)
  try {
    checkPublicJwk(durablePublic)
    checkPublicJwk(opts.ephemeralJwk)
  } catch (cause) {
    throw new TypeError(`jkt-jwt keys must be supported public keys with alg (${(cause as Error).message})`)
  }
  const iat = Math.floor((opts.now ?? Date.now)() / 1000)
  const iss = JKT_S256_ISS_PREFIX + (await jwkThumbprint(durablePublic))
  const { importJWK, SignJWT } = await loadJose()
  const key = await importJWK(opts.durableKey, alg)
  return new SignJWT({ iss, iat, exp: iat + (opts.lifetimeSec ?? 300), jti: opts.jti ?? randomJti(), cnf: { jwk: publicPart(opts.ephemeralJwk) } })
    .setProtectedHeader({ typ: JKT_S256_TYP, alg, jwk: durablePublic as unknown as import('jose').JWK })
    .sign(key)
}

/** Options of the self-proven key resolvers. */
export interface SelfProvenOptions extends JwkPolicy {
  readonly now?: () => number
}

/**
 * Verifies a naming JWT (SK §3.5 verification procedure): `typ`, header `jwk` and its `alg`, `iss`
 * recomputed from the header key (never trusted as sent), the JWS signature with that key, `exp`,
 * `iat`, and `cnf.jwk`. Returns the signing key for the HTTP signature.
 *
 * @throws {SignatureError} `invalid_jwt`, `expired_jwt`, or the key errors of Algorithm
 *   Determination.
 */
export async function resolveJktJwt(jwt: string, options: SelfProvenOptions = {}): Promise<ResolvedKey<SelfProvenContext>> {
  const { header, payload } = decodeJwt(jwt)
  if (header['typ'] !== JKT_S256_TYP) throw new SignatureError('invalid_jwt', `jkt-jwt typ must be ${JKT_S256_TYP}`)
  const durableJwk = header['jwk']
  if (!isObject(durableJwk)) throw new SignatureError('invalid_jwt', 'jkt-jwt header has no jwk')
  const durableAlg = checkPublicJwk(durableJwk, options)
  if (header['alg'] !== durableAlg) throw new SignatureError('invalid_jwt', 'jkt-jwt alg disagrees with the header key')
  const durableJkt = await jwkThumbprint(durableJwk as PublicJwk)
  if (payload['iss'] !== JKT_S256_ISS_PREFIX + durableJkt) throw new SignatureError('invalid_jwt', 'jkt-jwt iss is not the thumbprint of the header key')
  try {
    await (await loadJose()).compactVerify(jwt, publicPart(durableJwk as PublicJwk) as import('jose').JWK, { algorithms: [durableAlg] })
  } catch (cause) {
    throw new SignatureError('invalid_jwt', 'jkt-jwt signature does not verify with the header key', { cause })
  }
  const nowSec = Math.floor((options.now ?? Date.now)() / 1000)
  if (typeof payload['exp'] !== 'number' || typeof payload['iat'] !== 'number') throw new SignatureError('invalid_jwt', 'jkt-jwt needs numeric iat and exp')
  if (payload['exp'] <= nowSec) throw new SignatureError('expired_jwt', 'jkt-jwt has expired')
  const cnf = payload['cnf']
  if (!isObject(cnf) || !isObject(cnf['jwk'])) throw new SignatureError('invalid_key', 'jkt-jwt has no cnf.jwk')
  const alg = checkPublicJwk(cnf['jwk'], options)
  const jwk = cnf['jwk'] as PublicJwk
  return {
    jwk,
    alg,
    key: await importPublicJwk(jwk, { acceptedAlgorithms: [alg] }),
    thumbprint: await jwkThumbprint(jwk),
    context: { scheme: 'jkt-jwt', durableJkt, durableJwk: publicPart(durableJwk as PublicJwk), claims: payload },
  }
}

/**
 * Resolves an `hwk` member: the inline key, after Algorithm Determination (`alg` required, no
 * `kid`). The signer is identified only by the key's thumbprint.
 *
 * @throws {SignatureError} `invalid_key` / `unsupported_algorithm`.
 */
export async function resolveHwk(member: HwkMember, options: SelfProvenOptions = {}): Promise<ResolvedKey<SelfProvenContext>> {
  const jwk = { ...member.jwk } as PublicJwk
  const alg = checkPublicJwk(jwk, options)
  const thumbprint = await jwkThumbprint(jwk)
  return { jwk, alg, key: await importPublicJwk(jwk, { acceptedAlgorithms: [alg] }), thumbprint, context: { scheme: 'hwk', jkt: thumbprint } }
}
