/**
 * The generator's own crypto and RFC 9421 building blocks. Deliberately independent of `src/`:
 * vectors made with the code under test would only prove the code agrees with itself. Everything
 * here uses `node:crypto` directly.
 */
import { createECDH, createHash, createHmac, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import type { VectorRequest } from './types.js'

export type { VectorRequest }

/** A test key as published in `keys.json`. */
export interface TestKey {
  readonly alg: 'Ed25519' | 'ES256'
  readonly publicJwk: Record<string, string>
  readonly privateJwk: Record<string, string>
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
export const b64url = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url')
export const sha256 = (data: string | Uint8Array): Buffer => createHash('sha256').update(data).digest()

/** RFC 4648 base32 with padding: how structured-field-tests writes Byte Sequences. */
export function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out + '='.repeat((8 - (out.length % 8)) % 8)
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Derives a named key from a fixed seed, so every run yields the same key. */
export function deriveKey(name: string, alg: 'Ed25519' | 'ES256'): TestKey {
  const seed = sha256(`aauth-kit interop vector key: ${name}`)
  if (alg === 'Ed25519') {
    const jwk = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' }).export({ format: 'jwk' })
    const publicJwk = { kty: 'OKP', crv: 'Ed25519', alg, x: jwk.x! }
    return { alg, publicJwk, privateJwk: { ...publicJwk, d: jwk.d! } }
  }
  const ecdh = createECDH('prime256v1')
  ecdh.setPrivateKey(seed)
  const point = ecdh.getPublicKey()
  const publicJwk = { kty: 'EC', crv: 'P-256', alg, x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) }
  return { alg, publicJwk, privateJwk: { ...publicJwk, d: b64url(seed) } }
}

/** RFC 7638 thumbprint, written out here rather than taken from the library. */
export function thumbprint(jwk: Record<string, string>): string {
  const input =
    jwk['kty'] === 'OKP' ? `{"crv":"${jwk['crv']}","kty":"OKP","x":"${jwk['x']}"}`
    : jwk['kty'] === 'EC' ? `{"crv":"${jwk['crv']}","kty":"EC","x":"${jwk['x']}","y":"${jwk['y']}"}`
    : `{"e":"${jwk['e']}","kty":"RSA","n":"${jwk['n']}"}`
  return b64url(sha256(input))
}

function privateKeyObject(key: TestKey): KeyObject {
  return createPrivateKey({ key: key.privateJwk, format: 'jwk' })
}

/** ECDSA signatures are randomized: reuse a committed one when it still verifies (see index.ts). */
export type SignatureMemo = Map<string, string>

/** Signs `data` raw (64-byte Ed25519 or IEEE P1363 ES256). */
export function signBytes(key: TestKey, data: string, memo?: SignatureMemo): Buffer {
  if (key.alg === 'ES256') {
    const kept = memo?.get(data)
    const pub = createPublicKey({ key: key.publicJwk, format: 'jwk' })
    if (kept !== undefined && verify('sha256', Buffer.from(data), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(kept, 'base64'))) {
      return Buffer.from(kept, 'base64')
    }
    const fresh = sign('sha256', Buffer.from(data), { key: privateKeyObject(key), dsaEncoding: 'ieee-p1363' })
    memo?.set(data, b64(fresh))
    return fresh
  }
  return sign(null, Buffer.from(data), privateKeyObject(key))
}

/**
 * Mints a compact JWS over exactly these header and payload objects. `alg` in the header decides
 * how it is signed: `Ed25519`/`ES256` with `key`, `HS256` with `hmacSecret`, `none` unsigned.
 */
export function mintJwt(header: Record<string, unknown>, payload: Record<string, unknown>, key: TestKey, hmacSecret?: string): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
  if (header['alg'] === 'none') return `${input}.`
  if (header['alg'] === 'HS256') return `${input}.${b64url(createHmac('sha256', hmacSecret ?? '').update(input).digest())}`
  return `${input}.${b64url(signBytes(key, input))}`
}

/** `sha-256=:…:` (RFC 9530). */
export function contentDigest(body: string): string {
  return `sha-256=:${b64(sha256(body))}:`
}

/** Serializes a signature parameter value: Integer or sf-string. */
function paramValue(v: number | string): string {
  return typeof v === 'number' ? String(v) : `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** The `@signature-params` / `Signature-Input` member value. */
export function signatureParams(components: readonly string[], params: Readonly<Record<string, number | string>>): string {
  return `(${components.map((c) => `"${c}"`).join(' ')})` + Object.entries(params).map(([k, v]) => `;${k}=${paramValue(v)}`).join('')
}

/** RFC 9421 §2.2 derived components, for the ones the AAuth profile uses. */
function derived(name: string, req: VectorRequest): string {
  const url = new URL(req.url)
  switch (name) {
    case '@method':
      return req.method
    case '@authority':
      return url.host
    case '@path':
      return url.pathname
    case '@query':
      return url.search === '' ? '?' : url.search
    default:
      throw new Error(`generator does not derive ${name}`)
  }
}

/** The RFC 9421 §2.5 signature base for plain components. */
export function signatureBase(req: VectorRequest, components: readonly string[], params: Readonly<Record<string, number | string>>): string {
  const lines = components.map((c) => {
    const value = c.startsWith('@') ? derived(c, req) : req.headers[c]
    if (value === undefined) throw new Error(`component ${c} is missing from the request`)
    return `"${c}": ${value}`
  })
  return [...lines, `"@signature-params": ${signatureParams(components, params)}`].join('\n')
}

/** What the generator signs: the request before the three signature headers are added. */
export interface SignSpec {
  readonly request: VectorRequest
  readonly key: TestKey
  readonly signatureKey: string
  readonly label: string
  readonly components: readonly string[]
  readonly params: Readonly<Record<string, number | string>>
}

/** Adds `Signature-Key`, `Signature-Input` and `Signature`; returns the signed request and its base. */
export function signRequestRaw(spec: SignSpec, memo?: SignatureMemo): { request: VectorRequest; base: string } {
  const request: VectorRequest = { ...spec.request, headers: { ...spec.request.headers, 'signature-key': spec.signatureKey } }
  const base = signatureBase(request, spec.components, spec.params)
  request.headers['signature-input'] = `${spec.label}=${signatureParams(spec.components, spec.params)}`
  request.headers['signature'] = `${spec.label}=:${b64(signBytes(spec.key, base, memo))}:`
  return { request, base }
}
