/**
 * Adapters that put three independent RFC 9421 libraries behind one small interface, so the
 * interop test can run a table of libraries × algorithms × request shapes × directions:
 *
 * - `http-message-sig` 0.3.0 (Cloudflare): `createSignature` / `verifySignature`;
 * - `@hellocoop/httpsig` 2.2.0 (used by the AAuth reference SDK): `fetch({ dryRun })` / `verify`;
 *   it writes `Signature-Key` and `Content-Digest` itself;
 * - `http-message-signatures` 1.0.6 (dhensby): `httpbis.signMessage` / `httpbis.verifyMessage`.
 *
 * Each adapter signs a request the way an AAuth agent must (label `sig`, our
 * `Signature-Key: sig=jwt;jwt="<agent token>"`, the profile's covered components, `created` only)
 * and verifies with the agent's public key. Where a library hands the signature base to the
 * crypto callback, the adapter records it so the test can compare bases byte for byte.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto'
import * as cfsig from 'http-message-sig'
import { createSigner as hmsCreateSigner, createVerifier as hmsCreateVerifier, httpbis } from 'http-message-signatures'
import { fetch as hcFetch, verify as hcVerify } from '@hellocoop/httpsig'
import { createContentDigest, type PrivateJwk, type PublicJwk } from '../../src/protocol/index.js'

/** JOSE algorithm of the agent key. */
export type Alg = 'Ed25519' | 'ES256'

/** RFC 9421 §6.2 algorithm names. */
export const RFC9421_ALG: Readonly<Record<Alg, string>> = { Ed25519: 'ed25519', ES256: 'ecdsa-p256-sha256' }

/** A request shape of the table. */
export interface Shape {
  readonly name: string
  readonly method: 'GET' | 'POST'
  readonly url: string
  readonly contentType?: string
  readonly body?: Uint8Array
  /** The components the AAuth profile covers for this shape, in the order our signer emits them. */
  readonly components: readonly string[]
}

/** The agent as a signing library sees it. */
export interface InteropAgent {
  readonly alg: Alg
  readonly token: string
  readonly privateJwk: PrivateJwk
  readonly publicJwk: PublicJwk
}

/** A request as it arrives at a verifier (its URL possibly tampered with). */
export interface ArrivingRequest {
  readonly method: string
  readonly url: URL
  readonly headers: Headers
  readonly body?: Uint8Array
}

export interface PeerSigned {
  readonly headers: Headers
  /** The signature base the library passed to its signer, when its API exposes it. */
  readonly base?: string
}

export interface PeerVerified {
  readonly ok: boolean
  /** The library's own failure code when `ok` is false. */
  readonly code?: string
  /** The signature base the library passed to its verifier, when its API exposes it. */
  readonly base?: string
  /** RFC 7638 thumbprint of the key the library used, when it reports one. */
  readonly thumbprint?: string
  /** The `jwt` it took from `Signature-Key`, when it reports one. */
  readonly jwt?: string
}

export interface Peer {
  readonly name: string
  readonly algs: readonly Alg[]
  /** The failure code the library reports for a signature that does not verify. */
  readonly badSignatureCode: string
  /** Whether the adapter can observe the signature base the library signs or verifies. */
  readonly exposesBase: boolean
  sign(shape: Shape, agent: InteropAgent, created: number): Promise<PeerSigned>
  verify(request: ArrivingRequest, shape: Shape, agent: InteropAgent): Promise<PeerVerified>
}

const decoder = new TextDecoder()

/** Key members only: node:crypto and WebCrypto import these without `alg`. */
function keyMaterial(jwk: PublicJwk, withPrivate: boolean): Record<string, string> {
  const out: Record<string, string> = { kty: jwk.kty }
  for (const m of ['crv', 'x', 'y', ...(withPrivate ? ['d'] : [])]) {
    const v = jwk[m]
    if (typeof v === 'string') out[m] = v
  }
  return out
}

function privateKeyObject(agent: InteropAgent): KeyObject {
  return createPrivateKey({ key: keyMaterial(agent.privateJwk, true) as NodeJwk, format: 'jwk' })
}

function publicKeyObject(agent: InteropAgent): KeyObject {
  return createPublicKey({ key: keyMaterial(agent.publicJwk, false) as NodeJwk, format: 'jwk' })
}

/**
 * The header fields an AAuth agent sends before the signature fields: `Content-Type`, the
 * `Content-Digest` of the body (computed with our `createContentDigest`, for libraries that do not
 * add it) and `Signature-Key` written by hand in the form the profile prescribes.
 */
export async function aauthHeaders(shape: Shape, agent: InteropAgent): Promise<Headers> {
  const headers = new Headers()
  if (shape.contentType !== undefined) headers.set('content-type', shape.contentType)
  if (shape.body !== undefined) headers.set('content-digest', await createContentDigest(shape.body))
  headers.set('signature-key', `sig=jwt;jwt="${agent.token}"`)
  return headers
}

function toRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {}
  headers.forEach((value, name) => {
    out[name] = value
  })
  return out
}

function fromRecord(record: Readonly<Record<string, string | string[]>>): Headers {
  const headers = new Headers()
  for (const [name, value] of Object.entries(record)) {
    for (const v of typeof value === 'string' ? [value] : value) headers.append(name, v)
  }
  return headers
}

function fetchRequest(method: string, url: string | URL, headers: Headers, body: Uint8Array | undefined): Request {
  return new Request(url, body === undefined ? { method, headers } : { method, headers, body: body as BufferSource })
}

// --- http-message-sig (Cloudflare) -------------------------------------------------------------

async function cfSigner(agent: InteropAgent): Promise<cfsig.Signer> {
  if (agent.alg === 'Ed25519') {
    // The library's own WebCrypto provider covers Ed25519.
    const key = await crypto.subtle.importKey('jwk', keyMaterial(agent.privateJwk, true) as JsonWebKey, { name: 'Ed25519' }, false, ['sign'])
    return cfsig.webcrypto.signer(key)
  }
  // Its provider has no ECDSA; the Signer interface takes any caller-supplied algorithm.
  const key = privateKeyObject(agent)
  return { algorithm: RFC9421_ALG.ES256, sign: (data) => new Uint8Array(nodeSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' })) }
}

async function cfVerifier(agent: InteropAgent): Promise<cfsig.Verifier> {
  if (agent.alg === 'Ed25519') {
    const key = await crypto.subtle.importKey('jwk', keyMaterial(agent.publicJwk, false) as JsonWebKey, { name: 'Ed25519' }, false, ['verify'])
    return cfsig.webcrypto.verifier(key)
  }
  const key = publicKeyObject(agent)
  return { algorithm: RFC9421_ALG.ES256, verify: (data, sig) => nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig) }
}

export const cloudflarePeer: Peer = {
  name: 'http-message-sig',
  algs: ['Ed25519', 'ES256'],
  badSignatureCode: cfsig.SignatureErrorCode.VerificationFailed,
  exposesBase: true,
  async sign(shape, agent, created) {
    const headers = await aauthHeaders(shape, agent)
    const inner = await cfSigner(agent)
    let base: string | undefined
    const signer: cfsig.Signer = {
      algorithm: inner.algorithm,
      sign: (data) => {
        base = decoder.decode(data)
        return inner.sign(data)
      },
    }
    const fields = await cfsig.createSignature(fetchRequest(shape.method, shape.url, headers, shape.body), {
      label: 'sig',
      components: shape.components,
      parameters: { created },
      signer,
    })
    return { headers: cfsig.appendSignature(headers, fields), ...(base === undefined ? {} : { base }) }
  },
  async verify(request, shape, agent) {
    const inner = await cfVerifier(agent)
    let base: string | undefined
    try {
      await cfsig.verifySignature(fetchRequest(request.method, request.url, request.headers, request.body), {
        label: 'sig',
        policy: { algorithms: [RFC9421_ALG[agent.alg]], requiredComponents: shape.components, requiredParameters: ['created'], maxAge: 60 },
        resolveVerifier: () => ({
          algorithm: inner.algorithm,
          verify: (data, sig) => {
            base = decoder.decode(data)
            return inner.verify(data, sig)
          },
        }),
      })
      return { ok: true, ...(base === undefined ? {} : { base }) }
    } catch (err) {
      if (!cfsig.isSignatureError(err)) throw err
      return { ok: false, code: err.code, ...(base === undefined ? {} : { base }) }
    }
  },
}

// --- @hellocoop/httpsig ------------------------------------------------------------------------

export const hellocoopPeer: Peer = {
  name: '@hellocoop/httpsig',
  algs: ['Ed25519', 'ES256'],
  // A signature that simply does not verify comes back as `verified: false` with no error.
  badSignatureCode: 'verified=false',
  exposesBase: false,
  async sign(shape, agent) {
    // The library writes Signature-Key (jwt scheme) and Content-Digest itself; its clock sets
    // `created`. It exposes no signature base.
    const { headers } = await hcFetch(shape.url, {
      method: shape.method,
      headers: shape.contentType === undefined ? {} : { 'content-type': shape.contentType },
      ...(shape.body === undefined ? {} : { body: shape.body as BufferSource }),
      signingKey: agent.privateJwk as JsonWebKey,
      signatureKey: { type: 'jwt', jwt: agent.token },
      label: 'sig',
      components: [...shape.components],
      contentDigest: shape.body === undefined ? 'omit' : 'require',
      dryRun: true,
    })
    return { headers }
  },
  async verify(request, shape) {
    // Documented call shape: authority, path, and the query "without leading '?'".
    const r = await hcVerify(
      {
        method: request.method,
        authority: request.url.host,
        path: request.url.pathname,
        ...(request.url.search === '' ? {} : { query: request.url.search.slice(1) }),
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
      },
      { requireContentDigest: shape.body !== undefined },
    )
    if (r.verified) return { ok: true, thumbprint: r.thumbprint, ...(r.jwt === undefined ? {} : { jwt: r.jwt.raw }) }
    return { ok: false, code: r.signatureError?.error ?? 'verified=false' }
  },
}

// --- http-message-signatures (dhensby) ---------------------------------------------------------

export const dhensbyPeer: Peer = {
  name: 'http-message-signatures',
  algs: ['Ed25519', 'ES256'],
  badSignatureCode: 'false',
  exposesBase: true,
  async sign(shape, agent, created) {
    const headers = await aauthHeaders(shape, agent)
    const inner = hmsCreateSigner(privateKeyObject(agent), RFC9421_ALG[agent.alg])
    let base: string | undefined
    const signed = await httpbis.signMessage(
      {
        key: {
          alg: RFC9421_ALG[agent.alg],
          sign: (data) => {
            base = data.toString('utf8')
            return inner.sign(data)
          },
        },
        name: 'sig',
        params: ['created'],
        fields: [...shape.components],
        paramValues: { created: new Date(created * 1000) },
      },
      { method: shape.method, url: shape.url, headers: toRecord(headers) },
    )
    return { headers: fromRecord(signed.headers), ...(base === undefined ? {} : { base }) }
  },
  async verify(request, shape, agent) {
    const alg = RFC9421_ALG[agent.alg]
    const inner = hmsCreateVerifier(publicKeyObject(agent), alg)
    let base: string | undefined
    try {
      const ok = await httpbis.verifyMessage(
        {
          keyLookup: async () => ({
            algs: [alg],
            verify: (data, sig, params) => {
              base = data.toString('utf8')
              return inner(data, sig, params)
            },
          }),
          requiredFields: [...shape.components],
          requiredParams: ['created'],
          maxAge: 60,
        },
        { method: request.method, url: request.url, headers: toRecord(request.headers) },
      )
      return ok === true ? { ok: true, ...(base === undefined ? {} : { base }) } : { ok: false, code: String(ok), ...(base === undefined ? {} : { base }) }
    } catch (err) {
      return { ok: false, code: (err as Error).name, ...(base === undefined ? {} : { base }) }
    }
  },
}

export const PEERS: readonly Peer[] = [cloudflarePeer, hellocoopPeer, dhensbyPeer]
