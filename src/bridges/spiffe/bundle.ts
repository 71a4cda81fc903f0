/**
 * SPIFFE trust bundles (SPIFFE Trust Domain and Bundle standard §4): a JWKS whose keys carry a
 * `use` of `x509-svid` (an X.509 authority: exactly one certificate in `x5c`) or `jwt-svid` (a
 * JWT authority, with a `kid`), plus optional `spiffe_sequence` and `spiffe_refresh_hint`. Keys
 * with another or no `use` are ignored, as the standard asks.
 *
 * Exported from `'aauth-kit/bridges/spiffe'`.
 *
 * @module
 */

import { X509Certificate } from 'node:crypto'
import { splitDerCertificates } from './der.js'
import { parseSpiffeId } from './spiffe-id.js'
import { SvidError, type TrustBundle, type TrustBundleSource } from './types.js'

/** At most this many keys are read from one bundle. */
const MAX_BUNDLE_KEYS = 256

function badBundle(trustDomain: string, why: string, cause?: unknown): never {
  throw new TypeError(`invalid SPIFFE bundle for ${trustDomain}: ${why}`, cause === undefined ? undefined : { cause })
}

function assertTrustDomain(trustDomain: string): void {
  try {
    if (parseSpiffeId(`spiffe://${trustDomain}`).path !== '') throw new Error('has a path')
  } catch (cause) {
    throw new TypeError(`"${trustDomain}" is not a trust domain name`, { cause })
  }
}

function certificate(trustDomain: string, der: Uint8Array): X509Certificate {
  try {
    return new X509Certificate(der)
  } catch (cause) {
    return badBundle(trustDomain, 'an X.509 authority is not a DER certificate', cause)
  }
}

/**
 * Parses a SPIFFE bundle (the JWKS document, as JSON text or parsed).
 *
 * @throws {TypeError} for a document that is not a SPIFFE bundle, or an `x509-svid` key without
 *   exactly one certificate, or a `jwt-svid` key without `kid`.
 */
export function parseTrustBundle(trustDomain: string, json: string | Uint8Array | object): TrustBundle {
  assertTrustDomain(trustDomain)
  let doc: unknown = json
  if (typeof json === 'string' || json instanceof Uint8Array) {
    try {
      doc = JSON.parse(typeof json === 'string' ? json : new TextDecoder().decode(json))
    } catch (cause) {
      badBundle(trustDomain, 'not JSON', cause)
    }
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) badBundle(trustDomain, 'no "keys" array')
  const { keys, spiffe_sequence: sequence, spiffe_refresh_hint: refreshHint } = doc as { keys: unknown[]; spiffe_sequence?: unknown; spiffe_refresh_hint?: unknown }
  if (keys.length > MAX_BUNDLE_KEYS) badBundle(trustDomain, `more than ${MAX_BUNDLE_KEYS} keys`)
  const x509Authorities: X509Certificate[] = []
  const jwtAuthorities: (JsonWebKey & { kid: string })[] = []
  for (const key of keys) {
    if (typeof key !== 'object' || key === null) badBundle(trustDomain, 'a key is not an object')
    const { use, ...jwk } = key as Record<string, unknown>
    if (use === 'x509-svid') {
      const x5c = jwk['x5c']
      if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== 'string') badBundle(trustDomain, 'an x509-svid key must hold exactly one certificate in x5c')
      x509Authorities.push(certificate(trustDomain, Buffer.from(x5c[0] as string, 'base64')))
    } else if (use === 'jwt-svid') {
      if (typeof jwk['kid'] !== 'string' || jwk['kid'] === '') badBundle(trustDomain, 'a jwt-svid key must have a kid')
      if (typeof jwk['kty'] !== 'string') badBundle(trustDomain, 'a jwt-svid key has no kty')
      if ('d' in jwk) badBundle(trustDomain, 'a jwt-svid key holds private key material')
      jwtAuthorities.push(jwk as unknown as JsonWebKey & { kid: string })
    }
    // Any other or missing `use`: ignored (bundle standard §4.2).
  }
  return {
    trustDomain,
    x509Authorities,
    jwtAuthorities,
    ...(typeof sequence === 'number' ? { sequence } : {}),
    ...(typeof refreshHint === 'number' ? { refreshHintSec: refreshHint } : {}),
  }
}

/**
 * A bundle from the Workload API's X.509 bundle bytes (concatenated DER certificates) and,
 * optionally, the JWT authorities of a JWKS from FetchJWTBundles.
 *
 * @throws {TypeError} for bytes that are not DER certificates.
 */
export function trustBundleFromDer(trustDomain: string, der: Uint8Array, jwtBundle?: string | Uint8Array | object): TrustBundle {
  assertTrustDomain(trustDomain)
  let certs: Uint8Array[]
  try {
    certs = splitDerCertificates(der)
  } catch (cause) {
    return badBundle(trustDomain, 'the X.509 bundle is not concatenated DER certificates', cause)
  }
  // A JWKS from FetchJWTBundles may omit `use`; its keys are JWT authorities.
  let jwtAuthorities: TrustBundle['jwtAuthorities'] = []
  if (jwtBundle !== undefined) {
    const doc = typeof jwtBundle === 'string' || jwtBundle instanceof Uint8Array ? JSON.parse(typeof jwtBundle === 'string' ? jwtBundle : new TextDecoder().decode(jwtBundle)) : jwtBundle
    const keys = ((doc as { keys?: Record<string, unknown>[] }).keys ?? []).map((k) => ({ ...k, use: k['use'] ?? 'jwt-svid' })).filter((k) => k.use === 'jwt-svid')
    jwtAuthorities = parseTrustBundle(trustDomain, { keys }).jwtAuthorities
  }
  return { trustDomain, x509Authorities: certs.map((c) => certificate(trustDomain, c)), jwtAuthorities }
}

/**
 * A fixed set of trusted trust domains and their bundles.
 *
 * @throws {TypeError} for an invalid bundle or one filed under another trust domain.
 * @example
 * ```ts
 * const bundles = staticTrustBundles({ 'demo.example.com': await readFile('bundle.json', 'utf8') })
 * ```
 */
export function staticTrustBundles(bundles: Readonly<Record<string, string | object | TrustBundle>>): TrustBundleSource {
  const map = new Map<string, TrustBundle>()
  for (const [trustDomain, b] of Object.entries(bundles)) {
    const bundle = isTrustBundle(b) ? b : parseTrustBundle(trustDomain, b)
    if (bundle.trustDomain !== trustDomain) throw new TypeError(`the bundle of ${bundle.trustDomain} is filed under ${trustDomain}`)
    map.set(trustDomain, bundle)
  }
  return (trustDomain) => map.get(trustDomain)
}

function isTrustBundle(b: unknown): b is TrustBundle {
  return typeof b === 'object' && b !== null && Array.isArray((b as TrustBundle).x509Authorities) && Array.isArray((b as TrustBundle).jwtAuthorities)
}

/**
 * The bundle of `trustDomain` from `source`.
 *
 * @throws {SvidError} `untrusted_trust_domain` when the source has none.
 */
export async function requireBundle(source: TrustBundleSource, trustDomain: string): Promise<TrustBundle> {
  const bundle = await source(trustDomain)
  if (bundle === undefined) throw new SvidError('untrusted_trust_domain', `no trust bundle for trust domain ${trustDomain}`)
  return bundle
}
