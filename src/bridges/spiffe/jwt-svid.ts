/**
 * JWT-SVID validation (JWT-SVID standard §3 and §4): `alg` one of RS/ES/PS 256/384/512 (SPIFFE
 * allows no EdDSA, HMAC or `none`), `typ` absent or `JWT`/`JOSE`, `kid` naming a JWT authority of
 * the bundle of the trust domain of `sub`, `sub` a workload SPIFFE ID, `aud` naming this server,
 * `exp` present and in the future.
 *
 * Exported from `'aauth-kit/bridges/spiffe'`.
 *
 * @module
 */

import { loadJose } from '../../lib/jose.js'
import { requireBundle } from './bundle.js'
import { parseWorkloadSpiffeId } from './spiffe-id.js'
import { SvidError, type TrustBundleSource } from './types.js'

/** The JWT-SVID `alg` values SPIFFE allows (JWT-SVID §3.1). */
export const JWT_SVID_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512']

/** Options of {@link verifyJwtSvid}. */
export interface VerifyJwtSvidOptions {
  /** This server's name: `aud` must contain it. */
  readonly audience: string
  readonly bundles: TrustBundleSource
  /** Clock, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
}

/** A validated JWT-SVID. */
export interface VerifiedJwtSvid {
  readonly spiffeId: string
  readonly trustDomain: string
  /** `exp`, epoch milliseconds. */
  readonly expiresAt: number
  readonly claims: Readonly<Record<string, unknown>>
}

/** Longest JWT-SVID accepted, in characters. */
const MAX_TOKEN_CHARS = 16 * 1024

/**
 * Validates a JWT-SVID.
 *
 * @throws {SvidError} `unsupported_algorithm`, `invalid_svid` (malformed, bad `typ`, unknown
 *   `kid`, bad signature, `sub` not a SPIFFE ID), `untrusted_trust_domain`, `expired_svid`
 *   (`exp` missing or past, `nbf` ahead), `invalid_audience`.
 */
export async function verifyJwtSvid(token: string, options: VerifyJwtSvidOptions): Promise<VerifiedJwtSvid> {
  const jose = await loadJose()
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) throw new SvidError('invalid_svid', 'a JWT-SVID must be a compact JWS string')
  let header: ReturnType<typeof jose.decodeProtectedHeader>
  let claims: ReturnType<typeof jose.decodeJwt>
  try {
    header = jose.decodeProtectedHeader(token)
    claims = jose.decodeJwt(token)
  } catch (cause) {
    throw new SvidError('invalid_svid', 'the JWT-SVID is not a well-formed JWT', { cause })
  }
  const alg = header.alg
  if (typeof alg !== 'string' || !JWT_SVID_ALGORITHMS.includes(alg)) throw new SvidError('unsupported_algorithm', `JWT-SVID alg "${String(alg)}" is not one SPIFFE allows (${JWT_SVID_ALGORITHMS.join(', ')})`)
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') throw new SvidError('invalid_svid', `JWT-SVID typ must be JWT or JOSE, not "${String(header.typ)}"`)
  const id = parseWorkloadSpiffeId(claims.sub)
  const bundle = await requireBundle(options.bundles, id.trustDomain)
  const kid = header.kid
  const jwk = typeof kid === 'string' ? bundle.jwtAuthorities.find((k) => k.kid === kid) : undefined
  if (jwk === undefined) throw new SvidError('invalid_svid', `the JWT-SVID's kid ${typeof kid === 'string' ? `"${kid.slice(0, 64)}"` : '(none)'} is not a JWT authority of ${id.trustDomain}`)
  try {
    const key = await jose.importJWK(jwk, alg)
    await jose.compactVerify(token, key, { algorithms: [alg] })
  } catch (cause) {
    throw new SvidError('invalid_svid', `the JWT-SVID signature does not verify with key "${kid}" of ${id.trustDomain}`, { cause })
  }
  const now = (options.now ?? Date.now)()
  if (typeof claims.exp !== 'number') throw new SvidError('expired_svid', 'the JWT-SVID has no exp: SPIFFE requires one')
  if (claims.exp * 1000 <= now) throw new SvidError('expired_svid', `the JWT-SVID expired at ${new Date(claims.exp * 1000).toISOString()}`)
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now) throw new SvidError('expired_svid', 'the JWT-SVID is not valid yet (nbf)')
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : []
  if (!aud.includes(options.audience)) throw new SvidError('invalid_audience', `the JWT-SVID audience does not include ${options.audience}`)
  return { spiffeId: id.id, trustDomain: id.trustDomain, expiresAt: claims.exp * 1000, claims }
}
