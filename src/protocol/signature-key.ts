/**
 * The `Signature-Key` request header (draft-hardt-httpbis-signature-key §3) and the
 * `Signature-Key-Cache` response header (§6).
 *
 * Parsing happens in two steps so that an unknown scheme always takes the defined
 * `unsupported_scheme` path (SK §3 "Unknown schemes", CHECKLIST SK-27):
 *
 * 1. {@link parseSignatureKey} reads the Dictionary into `label → {scheme, parameters}` without
 *    judging any scheme;
 * 2. {@link interpretSignatureKeyMember} turns the one selected member into a typed value for the
 *    eight schemes of the draft, checking each scheme's required parameters.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { encodeBase64 } from '../lib/base64url.js'
import { dictionaryField, isInnerList, isSfKey, sfString, Token, type BareItem, type Parameters } from '../lib/sf.js'
import { HeaderError, SignatureError } from './errors.js'

/** Header field name. */
export const SIGNATURE_KEY_HEADER = 'signature-key'
/** Response header issuing a cache identifier (SK §6). */
export const SIGNATURE_KEY_CACHE_HEADER = 'signature-key-cache'

/** The schemes registered by draft-hardt-httpbis-signature-key -09 §9.2.2. */
export const SIGNATURE_KEY_SCHEMES = ['hwk', 'jkt-jwt', 'jwks_uri', 'jwks', 'jwt', 'self-jwt', 'x509', 'cached'] as const
/** A registered scheme name. */
export type SignatureKeyScheme = (typeof SIGNATURE_KEY_SCHEMES)[number]

/** One Dictionary member before interpretation. */
export interface RawSignatureKeyMember {
  /** The scheme token, or `undefined` when the member value is not a Token. */
  readonly scheme: string | undefined
  readonly parameters: Parameters
}

/** Inline public key of the `hwk` scheme (SK §3.4). */
export interface HwkMember {
  readonly scheme: 'hwk'
  readonly jwk: { readonly kty: string; readonly alg?: string; readonly [member: string]: string | undefined }
}
/** `jwt` (SK §3.8) and `jkt-jwt` (SK §3.5): a compact JWT carrying `cnf.jwk`. */
export interface JwtMember {
  readonly scheme: 'jwt' | 'jkt-jwt'
  readonly jwt: string
  /** The `cache` signal asking the verifier for a cache identifier. */
  readonly cache: boolean
}
/** `self-jwt` (SK §3.9). */
export interface SelfJwtMember {
  readonly scheme: 'self-jwt'
  readonly jwt: string
}
/** `jwks_uri` (SK §3.6): signer identity plus metadata discovery. */
export interface JwksUriMember {
  readonly scheme: 'jwks_uri'
  readonly id: string
  readonly dwk: string
  readonly kid: string
}
/** `jwks` (SK §3.7): the URL is both identity and key location. */
export interface JwksMember {
  readonly scheme: 'jwks'
  readonly url: string
  readonly kid: string
}
/** `x509` (SK §3.10). */
export interface X509Member {
  readonly scheme: 'x509'
  readonly x5u: string
  /** SHA-256 of the DER end-entity certificate. */
  readonly x5t: Uint8Array
}
/** `cached` (SK §3.11). */
export interface CachedMember {
  readonly scheme: 'cached'
  readonly cid: string
}

/** A typed Signature-Key member of one of the registered schemes. */
export type SignatureKeyMember = HwkMember | JwtMember | SelfJwtMember | JwksUriMember | JwksMember | X509Member | CachedMember

// `sig=jwt;jwt="<compact JWT>"` is what every AAuth agent sends. JWT characters need no sf-string
// escaping, so this exact shape is parsed without the general parser; anything else falls back
// to structured-headers. A property test checks both paths agree.
const FAST_JWT = /^ *([a-z*][a-z0-9_\-.*]*)=jwt;jwt="([A-Za-z0-9_\-.]+)"[ \t]*$/

/**
 * Parses a `Signature-Key` header value into `label → raw member`.
 *
 * @throws {HeaderError} when the value is not a structured-field Dictionary.
 * @see SK §3
 */
export function parseSignatureKey(value: string): Map<string, RawSignatureKeyMember> {
  const fast = FAST_JWT.exec(value)
  if (fast !== null) {
    return new Map([[fast[1]!, { scheme: 'jwt', parameters: new Map([['jwt', fast[2]!]]) }]])
  }
  const dict = dictionaryField(SIGNATURE_KEY_HEADER, value)
  const out = new Map<string, RawSignatureKeyMember>()
  for (const [label, member] of dict) {
    if (isInnerList(member)) {
      out.set(label, { scheme: undefined, parameters: member[1] })
      continue
    }
    const [item, parameters] = member
    out.set(label, { scheme: item instanceof Token ? item.toString() : undefined, parameters })
  }
  return out
}

function str(p: Parameters, name: string): string | undefined {
  const v = p.get(name)
  return typeof v === 'string' ? v : undefined
}

function invalidKey(message: string): SignatureError {
  return new SignatureError('invalid_key', message)
}

function requireStr(p: Parameters, name: string, scheme: string): string {
  const v = str(p, name)
  if (v === undefined || v.length === 0) throw invalidKey(`${scheme} scheme requires a string "${name}" parameter`)
  return v
}

/** The `jwt` parameter of the JWT-bearing schemes: a malformed one is `invalid_jwt` (NEG-SIG-14). */
function requireJwt(p: Parameters, scheme: string): string {
  const v = p.get('jwt')
  if (typeof v !== 'string' || v.length === 0) throw new SignatureError('invalid_jwt', `${scheme} scheme requires a compact JWT in a String "jwt" parameter`)
  return v
}

function cacheFlag(p: Parameters): boolean {
  const v = p.get('cache')
  if (v === undefined) return false
  if (typeof v !== 'boolean') throw invalidKey('the "cache" parameter must be a Boolean')
  return v
}

const HWK_MEMBERS: Record<string, readonly string[]> = {
  OKP: ['crv', 'x'],
  EC: ['crv', 'x', 'y'],
  RSA: ['n', 'e'],
}

/**
 * Interprets one member for a registered scheme, checking its required parameters.
 *
 * Call this only after the verifier has decided it implements `raw.scheme`; unknown schemes are
 * answered with `unsupported_scheme` before reaching here.
 *
 * @throws {SignatureError} `invalid_key` when a required parameter is missing or mistyped,
 *   `unsupported_scheme` for a scheme this function does not know.
 * @see SK §3.4–§3.11
 */
export function interpretSignatureKeyMember(raw: RawSignatureKeyMember): SignatureKeyMember {
  const p = raw.parameters
  switch (raw.scheme) {
    case 'jwt':
    case 'jkt-jwt':
      return { scheme: raw.scheme, jwt: requireJwt(p, raw.scheme), cache: cacheFlag(p) }
    case 'self-jwt':
      return { scheme: 'self-jwt', jwt: requireJwt(p, 'self-jwt') }
    case 'jwks_uri':
      return {
        scheme: 'jwks_uri',
        id: requireStr(p, 'id', 'jwks_uri'),
        dwk: requireStr(p, 'dwk', 'jwks_uri'),
        kid: requireStr(p, 'kid', 'jwks_uri'),
      }
    case 'jwks':
      return { scheme: 'jwks', url: requireStr(p, 'url', 'jwks'), kid: requireStr(p, 'kid', 'jwks') }
    case 'x509': {
      const x5t = p.get('x5t')
      if (!(x5t instanceof ArrayBuffer)) throw invalidKey('x509 scheme requires a Byte Sequence "x5t" parameter')
      return { scheme: 'x509', x5u: requireStr(p, 'x5u', 'x509'), x5t: new Uint8Array(x5t) }
    }
    case 'cached':
      return { scheme: 'cached', cid: requireStr(p, 'cid', 'cached') }
    case 'hwk': {
      // SK §3.4: kid is understood and forbidden, not unknown and ignored.
      if (p.has('kid')) throw invalidKey('hwk scheme must not carry a "kid" parameter')
      const kty = requireStr(p, 'kty', 'hwk')
      const jwk: Record<string, string> = { kty }
      for (const [k, v] of p) if (typeof v === 'string') jwk[k] = v
      for (const m of (Object.hasOwn(HWK_MEMBERS, kty) ? HWK_MEMBERS[kty] : undefined) ?? []) requireStr(p, m, 'hwk')
      return { scheme: 'hwk', jwk: jwk as HwkMember['jwk'] }
    }
    default:
      throw new SignatureError('unsupported_scheme', `unsupported Signature-Key scheme ${JSON.stringify(raw.scheme ?? null)}`)
  }
}

function serializeParam(name: string, value: string | boolean | Uint8Array): string {
  if (value === true) return `;${name}`
  if (value === false) return `;${name}=?0`
  if (value instanceof Uint8Array) return `;${name}=:${encodeBase64(value)}:`
  return `;${name}=${sfString(value)}`
}

function memberParams(m: SignatureKeyMember): [string, string | boolean | Uint8Array][] {
  switch (m.scheme) {
    case 'jwt':
    case 'jkt-jwt':
      return m.cache ? [['jwt', m.jwt], ['cache', true]] : [['jwt', m.jwt]]
    case 'self-jwt':
      return [['jwt', m.jwt]]
    case 'jwks_uri':
      return [['id', m.id], ['dwk', m.dwk], ['kid', m.kid]]
    case 'jwks':
      return [['url', m.url], ['kid', m.kid]]
    case 'x509':
      return [['x5u', m.x5u], ['x5t', m.x5t]]
    case 'cached':
      return [['cid', m.cid]]
    case 'hwk':
      return Object.entries(m.jwk).filter((e): e is [string, string] => typeof e[1] === 'string')
  }
}

/**
 * Serializes `Signature-Key` members, one per signature label, in the given order.
 *
 * @throws {TypeError} for a label that is not a valid Dictionary key.
 * @example
 * ```ts
 * serializeSignatureKey({ sig: { scheme: 'jwt', jwt: agentToken, cache: false } })
 * // 'sig=jwt;jwt="eyJ..."'
 * ```
 */
export function serializeSignatureKey(members: Readonly<Record<string, SignatureKeyMember>>): string {
  const parts: string[] = []
  for (const [label, m] of Object.entries(members)) {
    if (!isSfKey(label)) throw new TypeError(`invalid signature label ${JSON.stringify(label)}`)
    let s = `${label}=${m.scheme}`
    for (const [name, value] of memberParams(m)) s += serializeParam(name, value)
    parts.push(s)
  }
  return parts.join(', ')
}

/** One entry of `Signature-Key-Cache` (SK §6). */
export interface SignatureKeyCacheEntry {
  /** The opaque cache identifier. */
  readonly cid: string
  readonly jti?: string
  /** Advisory expiry, seconds since the epoch. */
  readonly expires?: number
}

/**
 * Parses `Signature-Key-Cache`. AAuth verifiers in this library never emit it (CHECKLIST
 * Appendix A item 27); the parser lets an agent tolerate a server that does.
 *
 * @throws {HeaderError} when malformed.
 */
export function parseSignatureKeyCache(value: string): Map<string, SignatureKeyCacheEntry> {
  const out = new Map<string, SignatureKeyCacheEntry>()
  for (const [label, member] of dictionaryField(SIGNATURE_KEY_CACHE_HEADER, value)) {
    const [cid, params] = member as [BareItem, Parameters]
    if (isInnerList(member) || typeof cid !== 'string') {
      throw new HeaderError(SIGNATURE_KEY_CACHE_HEADER, `member ${label} must be a String`)
    }
    const jti = params.get('jti')
    const expires = params.get('expires')
    out.set(label, {
      cid,
      ...(typeof jti === 'string' ? { jti } : {}),
      ...(typeof expires === 'number' && Number.isInteger(expires) ? { expires } : {}),
    })
  }
  return out
}

/** Serializes `Signature-Key-Cache`. */
export function serializeSignatureKeyCache(entries: Readonly<Record<string, SignatureKeyCacheEntry>>): string {
  return Object.entries(entries)
    .map(([label, e]) => {
      if (!isSfKey(label)) throw new TypeError(`invalid signature label ${JSON.stringify(label)}`)
      let s = `${label}=${sfString(e.cid)}`
      if (e.jti !== undefined) s += `;jti=${sfString(e.jti)}`
      if (e.expires !== undefined) s += `;expires=${Math.trunc(e.expires)}`
      return s
    })
    .join(', ')
}
