/**
 * Algorithm Determination for conveyed keys (draft-hardt-httpbis-signature-key §3.3; main draft
 * §Signature Algorithms) and RFC 7638 JWK thumbprints.
 *
 * Every key a verifier uses — a `cnf.jwk`, a JWKS entry selected by `kid` — passes
 * {@link checkPublicJwk}: the algorithm comes only from the key's `alg`, never from `kty`/`crv`;
 * `kty`/`crv` must agree with it; polymorphic, symmetric and unknown algorithms are declined on the
 * defined `unsupported_algorithm` path.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { decodeBase64url, encodeBase64url } from '../lib/base64url.js'
import { isObject } from '../lib/assert.js'
import { SignatureError } from './errors.js'
import { importVerifyKey, nodeCrypto, sha256, SUPPORTED_ALGORITHMS, type PublicJwk, type SupportedAlgorithm, type VerifyKey } from './crypto.js'

/** The key type and curve each fully-specified JOSE signature algorithm requires. */
const ALG_KEY_SHAPE: Readonly<Record<string, { kty: string; crv?: string }>> = {
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
  Ed448: { kty: 'OKP', crv: 'Ed448' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  'ML-DSA-44': { kty: 'AKP' },
  'ML-DSA-65': { kty: 'AKP' },
  'ML-DSA-87': { kty: 'AKP' },
}

/** Members a JWK must have, per key type, before any decoding (main draft §Request-Context Binding). */
const REQUIRED_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  OKP: ['crv', 'x'],
  EC: ['crv', 'x', 'y'],
  RSA: ['n', 'e'],
}

/** Raw public key sizes in bytes. */
const COORD_BYTES: Readonly<Record<string, number>> = { Ed25519: 32, ES256: 32 }

/** Options for {@link checkPublicJwk}. */
export interface JwkPolicy {
  /** Algorithms accepted; a subset of {@link SUPPORTED_ALGORITHMS}. Default: all of them. */
  readonly acceptedAlgorithms?: readonly SupportedAlgorithm[]
}

function unsupported(message: string, accepted: readonly string[]): SignatureError {
  return new SignatureError('unsupported_algorithm', message, { acceptSignatureAlg: accepted })
}

/**
 * Checks a public JWK against Algorithm Determination and returns its algorithm.
 *
 * Order of checks (each with the code the drafts assign):
 * 1. not an object, no `kty`, or missing a member its `kty` requires → `invalid_key`;
 * 2. symmetric (`oct`) or a key type the library does not implement → `unsupported_algorithm`;
 * 3. `alg` absent, polymorphic (`EdDSA`), unknown → `unsupported_algorithm`;
 * 4. `kty`/`crv` disagreeing with `alg` → `invalid_key`;
 * 5. `alg` not accepted by this verifier → `unsupported_algorithm` with `acceptSignatureAlg`;
 * 6. coordinates not base64url of the right length, or a private member present → `invalid_key`.
 *
 * @throws {SignatureError}
 * @see SK §3.3 Algorithm Determination; CHECKLIST ALG-02..ALG-09, NEG-ALG-04..14
 */
export function checkPublicJwk(jwk: unknown, policy?: JwkPolicy): SupportedAlgorithm {
  const accepted = policy?.acceptedAlgorithms ?? SUPPORTED_ALGORITHMS
  if (!isObject(jwk) || typeof jwk['kty'] !== 'string' || jwk['kty'] === '') {
    throw new SignatureError('invalid_key', 'key is not a JWK with a "kty" member')
  }
  const kty = jwk['kty']
  if (kty === 'oct') throw unsupported('symmetric keys are never accepted', accepted)
  // Own properties only: a kty such as "constructor" must not reach Object.prototype.
  const required = Object.hasOwn(REQUIRED_MEMBERS, kty) ? REQUIRED_MEMBERS[kty] : undefined
  if (required === undefined) throw unsupported(`key type ${JSON.stringify(kty)} is not implemented`, accepted)
  for (const m of required) {
    if (typeof jwk[m] !== 'string' || jwk[m] === '') {
      throw new SignatureError('invalid_key', `${kty} key is missing "${m}"`)
    }
  }
  const alg = jwk['alg']
  if (typeof alg !== 'string') throw unsupported('key has no "alg" member; a fully-specified alg is required', accepted)
  const shape = Object.hasOwn(ALG_KEY_SHAPE, alg) ? ALG_KEY_SHAPE[alg] : undefined
  if (shape === undefined) throw unsupported(`algorithm ${JSON.stringify(alg)} is not a fully-specified signature algorithm this verifier knows`, accepted)
  if (shape.kty !== kty || (shape.crv !== undefined && shape.crv !== jwk['crv'])) {
    throw new SignatureError('invalid_key', `key type/curve ${kty}/${String(jwk['crv'])} disagrees with alg ${alg}`)
  }
  if (!(accepted as readonly string[]).includes(alg)) throw unsupported(`algorithm ${alg} is not accepted`, accepted)
  if ('d' in jwk) throw new SignatureError('invalid_key', 'a private key was conveyed where a public key belongs')
  const size = COORD_BYTES[alg]!
  for (const m of required) {
    if (m === 'crv') continue
    const bytes = decodeBase64url(jwk[m] as string)
    if (bytes === undefined || bytes.length !== size) {
      throw new SignatureError('invalid_key', `"${m}" is not base64url of ${size} bytes`)
    }
  }
  return alg as SupportedAlgorithm
}

/**
 * Checks a JWK (see {@link checkPublicJwk}) and imports it for verification.
 *
 * @throws {SignatureError} `invalid_key` when the material is not a valid point/key.
 */
export async function importPublicJwk(jwk: unknown, policy?: JwkPolicy): Promise<VerifyKey> {
  const alg = checkPublicJwk(jwk, policy)
  try {
    return await importVerifyKey(jwk as PublicJwk, alg)
  } catch (cause) {
    throw new SignatureError('invalid_key', 'key material is not a valid public key', { cause })
  }
}

/** The RFC 7638 canonical JSON of a public key's required members. */
export function thumbprintInput(jwk: PublicJwk): string {
  switch (jwk.kty) {
    case 'OKP':
      return `{"crv":${JSON.stringify(jwk.crv)},"kty":"OKP","x":${JSON.stringify(jwk.x)}}`
    case 'EC':
      return `{"crv":${JSON.stringify(jwk.crv)},"kty":"EC","x":${JSON.stringify(jwk.x)},"y":${JSON.stringify(jwk.y)}}`
    case 'RSA':
      return `{"e":${JSON.stringify(jwk.e)},"kty":"RSA","n":${JSON.stringify(jwk.n)}}`
    default:
      throw new TypeError(`no RFC 7638 thumbprint defined here for kty ${JSON.stringify(jwk.kty)}`)
  }
}

/**
 * RFC 7638 JWK SHA-256 thumbprint (base64url). Used for `agent_jkt`, `cnf.jkt` and replay keys.
 * Synchronous on Node.
 *
 * @example
 * ```ts
 * await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' })
 * // 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k' (RFC 8037 A.3)
 * ```
 */
export function jwkThumbprint(jwk: PublicJwk): string | Promise<string> {
  const digest = sha256(new TextEncoder().encode(thumbprintInput(jwk)))
  return digest instanceof Uint8Array ? encodeBase64url(digest) : digest.then(encodeBase64url)
}

/** True when the runtime computes thumbprints synchronously. */
export const syncThumbprints = nodeCrypto !== undefined
