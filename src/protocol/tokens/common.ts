/**
 * The common JWT profile of AAuth tokens: creation with `jose`, and the verification steps every
 * token type shares (main draft §AAuth Tokens, §Common JWT Claims, §Common JWT Verification;
 * SK §3.8 for the order of checks).
 *
 * Verification failures are {@link SignatureError}s with the codes a token in `Signature-Key`
 * produces (`invalid_jwt`, `expired_jwt`, `unknown_key`, `revoked_jwt`, `clock_skew`,
 * `issuer_missing`, `issuer_mismatch`, `invalid_key`, `unsupported_algorithm`). A token carried
 * as a request parameter is reported with {@link toParameterError} instead (CHECKLIST TOK-11).
 *
 * @module
 */

import type { JWTPayload } from 'jose'
import { loadJose } from '../../lib/jose.js'
import { decodeBase64url, encodeBase64url, fromUtf8 } from '../../lib/base64url.js'
import { isObject } from '../../lib/assert.js'
import { EgressError, MetadataError, ProblemError, SignatureError, type EndpointErrorCode } from '../errors.js'
import { assertServerIdentifier, isServerIdentifier, type IdentifierOptions } from '../identifiers.js'
import { checkPublicJwk } from '../jwk.js'
import type { JwksCache } from '../jwks.js'
import type { AAuthDwk } from '../metadata.js'
import { importVerifyKey, nodeCrypto, SUPPORTED_ALGORITHMS, verifySignatureBytes, type PrivateJwk, type PublicJwk, type SupportedAlgorithm, type VerifyKey } from '../crypto.js'

/** The four AAuth JWT types (main draft §JWT Type Registrations). */
export const TOKEN_TYPE = {
  agent: 'aa-agent+jwt',
  person: 'aa-person+jwt',
  resource: 'aa-resource+jwt',
  auth: 'aa-auth+jwt',
} as const
/** An AAuth token `typ`. */
export type TokenType = (typeof TOKEN_TYPE)[keyof typeof TOKEN_TYPE]

/** Lifetime ceilings in seconds: MUST for person/auth (1 h), SHOULD for agent (24 h) and resource (5 min). */
export const MAX_LIFETIME: Readonly<Record<TokenType, number>> = {
  'aa-agent+jwt': 24 * 3600,
  'aa-person+jwt': 3600,
  'aa-resource+jwt': 300,
  'aa-auth+jwt': 3600,
}

/** The signing key of a token issuer (agent provider, PS, AS, resource). */
export interface IssuerKey {
  /** `kid` published in the issuer's JWKS. */
  readonly kid: string
  /** Private JWK with `alg` `Ed25519` or `ES256`. */
  readonly privateJwk: PrivateJwk
}

/** Claims every AAuth token carries. */
export interface CommonClaims {
  iss: string
  dwk: string
  jti: string
  iat: number
  exp: number
  [claim: string]: unknown
}

/** A decoded, not yet verified JWT. */
export interface DecodedJwt {
  readonly header: Record<string, unknown>
  readonly payload: Record<string, unknown>
}

const signingKeys = new WeakMap<PrivateJwk, Promise<CryptoKey | Uint8Array>>()
/** `node:crypto` signing keys, per issuer key object. */
const nodeSigningKeys = new WeakMap<PrivateJwk, import('node:crypto').KeyObject>()
/** Issuer keys imported for verification, per JWK object (a JWKS refetch makes new objects). */
const verifyKeys = new WeakMap<object, Promise<VerifyKey>>()
const ascii = new TextEncoder()

/**
 * The compact JWS over a cached `node:crypto` key: what jose's `SignJWT` produces (same header
 * member order, same payload serialisation; byte-identical for Ed25519, see
 * test/protocol/jws-fast-path.test.ts) without WebCrypto's per-call cost.
 */
async function signWithNodeCrypto(nc: NonNullable<typeof nodeCrypto>, typ: TokenType, claims: CommonClaims, key: IssuerKey, alg: SupportedAlgorithm): Promise<string> {
  let k = nodeSigningKeys.get(key.privateJwk)
  if (k === undefined) {
    const { kid: _kid, alg: _alg, use: _use, ...material } = key.privateJwk as PrivateJwk & { use?: string }
    k = nc.createPrivateKey({ key: material as import('node:crypto').JsonWebKey, format: 'jwk' })
    nodeSigningKeys.set(key.privateJwk, k)
  }
  const input = `${encodeBase64url(ascii.encode(JSON.stringify({ typ, alg, kid: key.kid })))}.${encodeBase64url(ascii.encode(JSON.stringify(claims)))}`
  const keyArg = alg === 'Ed25519' ? k : { key: k, dsaEncoding: 'ieee-p1363' as const }
  const signature = await new Promise<Uint8Array>((resolve, reject) =>
    nc.sign(alg === 'Ed25519' ? null : 'sha256', ascii.encode(input), keyArg, (err, sig) => (err === null ? resolve(new Uint8Array(sig)) : reject(err))),
  )
  return `${input}.${encodeBase64url(signature)}`
}

/**
 * Verifies a compact JWS's signature with `node:crypto` on a cached key. The header was already
 * checked (`alg` accepted, no `crit`), so the signing input is the first two segments.
 */
async function verifyWithNodeCrypto(token: string, jwk: PublicJwk, alg: SupportedAlgorithm): Promise<boolean> {
  const dot = token.lastIndexOf('.')
  const signature = decodeBase64url(token.slice(dot + 1))
  if (signature === undefined) return false
  let key = verifyKeys.get(jwk)
  if (key === undefined) {
    key = importVerifyKey(jwk, alg)
    verifyKeys.set(jwk, key)
  }
  return verifySignatureBytes(await key, ascii.encode(token.slice(0, dot)), signature)
}

/** Random `jti` (128 bits, base64url). */
export function randomJti(): string {
  return encodeBase64url(crypto.getRandomValues(new Uint8Array(16)))
}

/**
 * Signs an AAuth token. The caller has already validated the claims.
 *
 * @throws {TypeError} for an issuer key without a supported `alg`.
 */
export async function signToken(typ: TokenType, claims: CommonClaims, key: IssuerKey): Promise<string> {
  const alg = key.privateJwk.alg
  if (alg !== 'Ed25519' && alg !== 'ES256') throw new TypeError('issuer key must carry alg "Ed25519" or "ES256"')
  if (nodeCrypto !== undefined) return signWithNodeCrypto(nodeCrypto, typ, claims, key, alg)
  const { importJWK, SignJWT } = await loadJose()
  let k = signingKeys.get(key.privateJwk)
  if (k === undefined) {
    k = importJWK(key.privateJwk, alg) as Promise<CryptoKey | Uint8Array>
    signingKeys.set(key.privateJwk, k)
  }
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ typ, alg, kid: key.kid }).sign(await k)
}

/**
 * Decodes a compact JWT without verifying it.
 *
 * @throws {SignatureError} `invalid_jwt` when it is not three base64url parts of JSON objects.
 */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split('.')
  if (parts.length !== 3 || parts[2] === '') throw new SignatureError('invalid_jwt', 'not a compact JWS')
  const parse = (s: string): Record<string, unknown> | undefined => {
    const bytes = decodeBase64url(s)
    const text = bytes === undefined ? undefined : fromUtf8(bytes)
    if (text === undefined) return undefined
    try {
      const v: unknown = JSON.parse(text)
      return isObject(v) ? v : undefined
    } catch {
      return undefined
    }
  }
  const header = parse(parts[0]!)
  const payload = parse(parts[1]!)
  if (header === undefined || payload === undefined) throw new SignatureError('invalid_jwt', 'JWT header or payload is not a base64url JSON object')
  return { header, payload }
}

/** Options shared by every token verifier. */
export interface TokenVerifyOptions extends IdentifierOptions {
  /** Where issuer keys come from. */
  readonly jwks: JwksCache
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
  /**
   * The optional bound on `iat` (main draft §Common JWT Verification): a token whose `iat` is
   * more than this many seconds ahead is refused with `clock_skew`. Default: no bound.
   */
  readonly iatSkewSec?: number
  /** JWS algorithms accepted for the token and for `cnf.jwk`. Default `['Ed25519', 'ES256']`. */
  readonly acceptedAlgorithms?: readonly SupportedAlgorithm[]
  /** Revocation lookup by `(iss, jti)` (TOK-09). A hit gives `revoked_jwt`. */
  readonly isRevoked?: (iss: string, jti: string) => boolean | Promise<boolean>
  /** Override the lifetime ceiling (seconds) for this token type. */
  readonly maxLifetimeSec?: number
}

function invalid(message: string, cause?: unknown): SignatureError {
  return new SignatureError('invalid_jwt', message, cause === undefined ? undefined : { cause })
}

function num(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

/** Maps a discovery failure onto the Signature-Key error it represents. */
function discoveryError(err: unknown): SignatureError {
  if (err instanceof SignatureError) return err
  if (err instanceof MetadataError && (err.code === 'issuer_missing' || err.code === 'issuer_mismatch')) {
    return new SignatureError(err.code, err.message, { cause: err })
  }
  if (err instanceof MetadataError || err instanceof EgressError) return invalid(`issuer keys unavailable: ${err.message}`, err)
  return invalid('issuer keys unavailable', err)
}

/**
 * Runs the checks every AAuth token shares, in the order of SK §3.8 (cheap checks before any
 * fetch): decode → `typ` → header `alg`/`kid` → `exp` → required claims (`iss`, `dwk`, `jti`,
 * `iat`) → optional `iat` bound → lifetime → issuer key → signature → revocation.
 *
 * @returns the verified header and payload.
 * @throws {SignatureError}
 */
export async function verifyTokenCommon(token: string, typ: TokenType, dwks: readonly AAuthDwk[], options: TokenVerifyOptions): Promise<DecodedJwt> {
  const { header, payload } = decodeJwt(token)
  if (header['typ'] !== typ) throw invalid(`expected typ ${typ}, got ${JSON.stringify(header['typ'] ?? null)}`)
  const accepted = options.acceptedAlgorithms ?? SUPPORTED_ALGORITHMS
  const alg = header['alg']
  if (typeof alg !== 'string' || !(accepted as readonly string[]).includes(alg)) {
    // none, EdDSA (polymorphic), HS* (symmetric) and anything else end here (ALG-03).
    throw invalid(`JWT alg ${JSON.stringify(alg ?? null)} is not accepted`)
  }
  if (typeof header['kid'] !== 'string' || header['kid'] === '') throw invalid('JWT header has no kid')
  if (header['crit'] !== undefined) throw invalid('JWT crit header is not supported')
  const nowSec = Math.floor((options.now ?? Date.now)() / 1000)
  const exp = payload['exp']
  if (!num(exp)) throw invalid('JWT has no numeric exp')
  if (exp <= nowSec) throw new SignatureError('expired_jwt', 'JWT has expired')
  const iss = payload['iss']
  if (!isServerIdentifier(iss, options)) throw invalid('JWT iss is not a valid server identifier')
  const dwk = payload['dwk']
  if (typeof dwk !== 'string' || !(dwks as readonly string[]).includes(dwk)) {
    throw invalid(`JWT dwk ${JSON.stringify(dwk ?? null)} is not ${dwks.join(' or ')}`)
  }
  if (typeof payload['jti'] !== 'string' || payload['jti'] === '') throw invalid('JWT has no jti')
  const iat = payload['iat']
  if (!num(iat)) throw invalid('JWT has no numeric iat')
  if (options.iatSkewSec !== undefined && iat - nowSec > options.iatSkewSec) {
    throw new SignatureError('clock_skew', `JWT iat is ${iat - nowSec}s ahead of the verifier clock`)
  }
  const maxLifetime = options.maxLifetimeSec ?? MAX_LIFETIME[typ]
  if (exp - iat > maxLifetime) throw invalid(`JWT lifetime ${exp - iat}s exceeds ${maxLifetime}s`)
  // A far-future iat must not stretch validity past the ceiling (the iat bound is optional).
  if (exp - nowSec > maxLifetime + (options.iatSkewSec ?? 60)) throw invalid(`JWT remains valid ${exp - nowSec}s from now, over the ${maxLifetime}s ceiling`)

  await verifyJwsSignature(token, iss, dwk as AAuthDwk, header['kid'], alg, options)
  if (options.isRevoked !== undefined && (await options.isRevoked(iss, payload['jti']))) {
    throw new SignatureError('revoked_jwt', 'JWT has been revoked by its issuer')
  }
  return { header, payload }
}

async function verifyJwsSignature(token: string, iss: string, dwk: AAuthDwk, kid: string, alg: string, options: TokenVerifyOptions): Promise<void> {
  const attempt = async (): Promise<'ok' | 'unknown' | 'bad' | 'fetched-bad'> => {
    let found
    try {
      found = await options.jwks.getKey(iss, dwk, kid)
    } catch (err) {
      throw discoveryError(err)
    }
    if (found === undefined) return 'unknown'
    try {
      // NEG-ALG-12: an issuer key without a usable alg makes the JWT unverifiable.
      checkPublicJwk(found.jwk, { acceptedAlgorithms: [alg as SupportedAlgorithm] })
    } catch (cause) {
      throw invalid('issuer key for kid is not usable with the JWT alg', cause)
    }
    try {
      if (nodeCrypto !== undefined) {
        if (await verifyWithNodeCrypto(token, found.jwk, alg as SupportedAlgorithm)) return 'ok'
      } else {
        await (await loadJose()).compactVerify(token, found.jwk as PublicJwk & { kty: string }, { algorithms: [alg] })
        return 'ok'
      }
    } catch {
      // a key that does not import, a malformed signature: not verified
    }
    return found.fetched ? 'fetched-bad' : 'bad'
  }
  let r = await attempt()
  // JWKS-09: a cached key that fails may have been rotated; refresh once (within the floor).
  if (r === 'bad' && (await options.jwks.refreshAfterFailure(iss, dwk))) r = await attempt()
  if (r === 'unknown') throw new SignatureError('unknown_key', `no key ${JSON.stringify(kid)} in ${iss}'s JWKS`)
  if (r !== 'ok') throw invalid('JWT signature does not verify')
}

/**
 * Checks `cnf.jwk`: present, structurally complete, fully-specified `alg` (TOK-06).
 *
 * @throws {SignatureError} `invalid_key` / `unsupported_algorithm`
 */
export function confirmationKey(payload: Record<string, unknown>, options: TokenVerifyOptions): PublicJwk {
  const cnf = payload['cnf']
  if (!isObject(cnf) || !isObject(cnf['jwk'])) throw new SignatureError('invalid_key', 'token has no cnf.jwk')
  checkPublicJwk(cnf['jwk'], { acceptedAlgorithms: options.acceptedAlgorithms ?? SUPPORTED_ALGORITHMS })
  return cnf['jwk'] as PublicJwk
}

/** Checks an optional claim is a server identifier. */
export function optionalServerId(payload: Record<string, unknown>, claim: string, options: IdentifierOptions): string | undefined {
  const v = payload[claim]
  if (v === undefined) return undefined
  if (!isServerIdentifier(v, options)) throw invalid(`${claim} is not a valid server identifier`)
  return v
}

/** Requires a non-empty string claim. */
export function requiredString(payload: Record<string, unknown>, claim: string): string {
  const v = payload[claim]
  if (typeof v !== 'string' || v === '') throw invalid(`token has no ${claim}`)
  return v
}

/** Checks an optional claim is a string. */
export function optionalString(payload: Record<string, unknown>, claim: string): string | undefined {
  const v = payload[claim]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw invalid(`${claim} must be a string`)
  return v
}

/** Requires `aud` to equal the verifier's identifier (exact string). */
export function requireAudience(payload: Record<string, unknown>, audience: string): void {
  if (payload['aud'] !== audience) throw invalid(`token aud ${JSON.stringify(payload['aud'] ?? null)} is not ${audience}`)
}

/** `mission_s256` when present: unpadded base64url of 32 bytes. */
export function optionalMission(payload: Record<string, unknown>): string | undefined {
  const v = optionalString(payload, 'mission_s256')
  if (v !== undefined && decodeBase64url(v)?.length !== 32) throw invalid('mission_s256 is not base64url SHA-256')
  return v
}

/**
 * Reports a token carried as a request parameter (`resource_token`, `presented_token`,
 * `upstream_token`, `subagent_token`) with its own body code (main draft §Token Endpoint Error
 * Codes; CHECKLIST TOK-11): `invalid_*`, `expired_*`, `revoked_*`, or `clock_skew`.
 */
export function toParameterError(err: unknown, parameter: 'resource' | 'presented' | 'upstream' | 'subagent'): ProblemError {
  const code = err instanceof SignatureError ? err.code : undefined
  const mapped: EndpointErrorCode =
    code === 'expired_jwt' ? `expired_${parameter}_token`
    : code === 'revoked_jwt' ? `revoked_${parameter}_token`
    : code === 'clock_skew' ? 'clock_skew'
    : `invalid_${parameter}_token`
  const message = err instanceof Error ? err.message : 'token verification failed'
  return new ProblemError(mapped, `${parameter}_token: ${message}`, { cause: err })
}

/** Person and mission context a person, resource or auth token can carry. */
export interface PersonContextOptions {
  /** `mission_s256`: the mission the agent operates under. */
  readonly missionS256?: string
  /** `tenant`: the organization the person belongs to. */
  readonly tenant?: string
}

/** The authorization a resource or auth token can carry, on top of {@link PersonContextOptions}. */
export interface GrantOptions extends PersonContextOptions {
  /** Space-separated scope values. */
  readonly scope?: string
  /** The account at the resource the authorization is for. */
  readonly account?: string
}

/** Options every token creator takes. */
export interface CreateTokenOptions {
  /** The issuer's signing key. */
  readonly key: IssuerKey
  /** The issuer's server identifier (`iss`). */
  readonly issuer: string
  /** Lifetime in seconds; defaults per type and capped by the type's ceiling. */
  readonly lifetimeSec?: number
  /** Clock in epoch milliseconds. */
  readonly now?: () => number
  /** `jti`; random by default. */
  readonly jti?: string
  /** Additional claims (never overriding the ones the creator sets). */
  readonly extraClaims?: Record<string, unknown>
  /** Development only: admit a loopback `issuer`. */
  readonly allowInsecureLoopback?: boolean
}

/**
 * Builds the common claims for a new token: validates `issuer`, picks `iat`/`exp` honouring the
 * type's ceiling and any `notAfter` bounds (e.g. the agent token's `exp`, a mission's
 * `expires_at`), and assigns a `jti`.
 *
 * @throws {TypeError} / {@link IdentifierError} for bad arguments; {@link RangeError} when the
 *   lifetime exceeds the ceiling or the bounds leave no validity.
 */
export function commonClaims(typ: TokenType, dwk: AAuthDwk, opts: CreateTokenOptions, defaultLifetime: number, notAfter: readonly (number | undefined)[] = []): CommonClaims {
  assertServerIdentifier(opts.issuer, opts)
  const lifetime = opts.lifetimeSec ?? Math.min(defaultLifetime, MAX_LIFETIME[typ])
  if (!Number.isInteger(lifetime) || lifetime <= 0) throw new RangeError('lifetimeSec must be a positive integer')
  if (lifetime > MAX_LIFETIME[typ]) throw new RangeError(`${typ} lifetime must not exceed ${MAX_LIFETIME[typ]}s`)
  const iat = Math.floor((opts.now ?? Date.now)() / 1000)
  let exp = iat + lifetime
  for (const bound of notAfter) if (bound !== undefined) exp = Math.min(exp, Math.floor(bound))
  if (exp <= iat) throw new RangeError(`${typ} would already be expired: a bound (agent token, mission, presented token) has passed`)
  return { ...opts.extraClaims, iss: opts.issuer, dwk, jti: opts.jti ?? randomJti(), iat, exp }
}

/** Copies the defined members of `values` into `claims` (optional claims are left out, not null). */
export function assignClaims(claims: CommonClaims, values: Record<string, unknown>): CommonClaims {
  for (const [k, v] of Object.entries(values)) if (v !== undefined) claims[k] = v
  return claims
}

/**
 * Asserts a JWK given to a creator is a public key AAuth can carry in `cnf.jwk`.
 *
 * @throws {TypeError}
 */
export function assertConfirmationJwk(jwk: PublicJwk, it: string): PublicJwk {
  try {
    checkPublicJwk(jwk)
  } catch (cause) {
    throw new TypeError(`${it} must be a public JWK with a supported alg (${(cause as Error).message})`)
  }
  const out: PublicJwk = { kty: jwk.kty, alg: jwk.alg }
  for (const m of ['crv', 'x', 'y'] as const) if (jwk[m] !== undefined) out[m] = jwk[m]
  return out
}
