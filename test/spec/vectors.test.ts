/**
 * Runs every file `scripts/gen-vectors.ts` writes to `spec/vectors/` (format: `spec/README.md`).
 * The `extended/` subdirectory is a different set in a different format, run by
 * `test/vectors/independent.test.ts`; this runner never reads it. One `describe.each` over the
 * files; each file's `kind` picks the table of cases built for its vectors:
 *
 * - positive vectors are reproduced from their inputs (same base, same signature / JWT bytes) and
 *   verified with the library, serving the vector's metadata and JWKS through a fake network;
 * - every signature in a positive vector is checked with plain `node:crypto` and, independently,
 *   with `@noble/ed25519` (RFC 8032 rules, `zip215: false`);
 * - every negative vector runs `createRequestVerifier` at the vector's `now` and must fail with
 *   the exact `Signature-Error` code and response headers (or succeed where it says so);
 * - the generator, run in memory, reproduces the committed files byte for byte.
 *
 * The wall clock is pinned far from every vector time, so nothing may read `Date.now`.
 */

import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { verifyAsync as nobleVerify } from '@noble/ed25519'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  components,
  createAgentToken,
  createAuthToken,
  createPersonToken,
  createResourceToken,
  createRequestVerifier,
  createSignatureBase,
  createSigner,
  importPublicJwk,
  messageView,
  parseSignature,
  parseSignatureInput,
  profileSignatureBase,
  referenceSignatureBase,
  serializeSignatureParams,
  SignatureError,
  signatureErrorHeaders,
  signatureParamsMap,
  signRequest,
  verifyAgentToken,
  verifyAuthToken,
  verifyPersonToken,
  verifyResourceToken,
  decodeJwt,
  verifySignatureBytes,
  type IssuerKey,
  type PublicJwk,
  type TokenVerifyOptions,
} from '../../src/protocol/index.js'
import {
  generateVectors,
  serializeVectorFile,
  VECTORS_DIR,
  type HttpRequestData,
  type NegativeVector,
  type Network,
  type RequestVector,
  type Rfc9421Vector,
  type TokenCheck,
  type TokenVector,
  type VectorFile,
  type VerifierConfig,
} from '../../scripts/gen-vectors.js'
import { fakeNetwork, jwksFor } from '../helpers/issuers.js'

/** What the generator produces now; the committed files must be exactly this. */
const GENERATED = await generateVectors()

/**
 * The committed files of the kinds this runner knows, by the generator's own file names: other
 * JSON in the directory is not ours, and nothing below `spec/vectors/extended/` is ever read.
 */
const FILES = Object.keys(GENERATED)
  .sort()
  .map((name) => ({ name, text: readFileSync(resolve(VECTORS_DIR, name), 'utf8') }))
  .map(({ name, text }) => ({ name, text, doc: JSON.parse(text) as VectorFile }))

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))
const fromB64url = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'))
const toB64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')

/** One runnable case: a name and a body. Tables of these are what the runner iterates. */
interface Case {
  name: string
  run: () => Promise<void> | void
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/** A signature some vector carries, with the public key that must verify it. */
interface SignatureUnderTest {
  what: string
  message: Uint8Array
  signature: Uint8Array
  publicJwk: PublicJwk
}

/** The two independent Ed25519 oracles, each also required to refuse a one-bit change. */
function oracleCases(s: SignatureUnderTest): Case[] {
  const tampered = s.message.slice()
  tampered[0] = tampered[0]! ^ 0x01
  const raw = fromB64url(s.publicJwk.x!)
  return [
    {
      name: `${s.what}: verifies with node:crypto`,
      run: () => {
        const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: s.publicJwk.x! }, format: 'jwk' })
        expect(nodeVerify(null, s.message, key, s.signature)).toBe(true)
        expect(nodeVerify(null, tampered, key, s.signature)).toBe(false)
      },
    },
    {
      name: `${s.what}: verifies with @noble/ed25519 (zip215: false)`,
      run: async () => {
        expect(await nobleVerify(s.signature, s.message, raw, { zip215: false })).toBe(true)
        expect(await nobleVerify(s.signature, tampered, raw, { zip215: false })).toBe(false)
      },
    },
  ]
}

/** The JWS signing input and signature of a compact JWT, checked against the issuer's key. */
function jwtSignature(what: string, jwt: string, publicJwk: PublicJwk): SignatureUnderTest {
  const [h, p, s] = jwt.split('.') as [string, string, string]
  return { what, message: utf8(`${h}.${p}`), signature: fromB64url(s), publicJwk }
}

function signatureBytes(header: string, label: string): Uint8Array {
  const sig = parseSignature(header).get(label)
  if (sig === undefined) throw new Error(`no signature labelled ${label}`)
  return sig
}

function serve(network: Network): ReturnType<typeof fakeNetwork> {
  const net = fakeNetwork()
  for (const [url, body] of Object.entries(network)) net.serveJson(url, body)
  return net
}

/** A verifier configured as `spec/README.md` describes, at the vector's clock. */
function verifierFor(cfg: VerifierConfig, network: Network, nowSec: number): ReturnType<typeof createRequestVerifier> {
  const now = (): number => nowSec * 1000
  return createRequestVerifier({
    audience: cfg.audience,
    jwks: jwksFor(serve(network), now),
    now,
    requireBodyComponents: cfg.requireBodyComponents,
    requiredComponents: cfg.additionalComponents,
    windowSec: cfg.signatureWindow,
    boundIat: cfg.iatBound,
    acceptServerSignatures: cfg.acceptServerSignatures,
    ...(cfg.revoked === undefined ? {} : { isRevoked: (iss: string, jti: string) => cfg.revoked!.some((r) => r.iss === iss && r.jti === jti) }),
  })
}

function bodyOf(r: HttpRequestData): Uint8Array | undefined {
  return r.body === null ? undefined : utf8(r.body)
}

function agentOf(v: Awaited<ReturnType<ReturnType<typeof createRequestVerifier>['verify']>>): string | undefined {
  const ctx = v.key.context
  return ctx.scheme === 'jwt' && ctx.type === 'aa-agent+jwt' ? ctx.claims.sub : undefined
}

function publicKeyFromJwks(network: Network, kid: string): PublicJwk {
  for (const doc of Object.values(network)) {
    const keys = doc['keys']
    if (!Array.isArray(keys)) continue
    const k = (keys as PublicJwk[]).find((j) => j.kid === kid)
    if (k !== undefined) return k
  }
  throw new Error(`no JWKS key ${kid} in the vector's network`)
}

// ---------------------------------------------------------------------------------------------
// Per-kind tables
// ---------------------------------------------------------------------------------------------

function rfc9421Cases(v: Rfc9421Vector): Case[] {
  const { request, label, coveredComponents, params, key } = v.input
  const comps = components(coveredComponents)
  const rawParams = signatureParamsMap(params)
  return [
    {
      name: `${v.id}: Signature-Input serializes from the covered components and parameters`,
      run: () => {
        expect(serializeSignatureParams(comps, rawParams)).toBe(v.output.signatureParams)
        expect(`${label}=${serializeSignatureParams(comps, rawParams)}`).toBe(v.output.headers['signature-input'])
      },
    },
    {
      name: `${v.id}: the parsed Signature-Input gives the exact signature base (lean, general and reference paths)`,
      run: async () => {
        const parsed = parseSignatureInput(v.output.headers['signature-input']).get(label)!
        expect(parsed.components.map((c) => c.name)).toEqual(coveredComponents)
        expect(parsed.params).toEqual(params)
        const m = messageView(request)
        expect(profileSignatureBase(m, parsed.components, parsed.rawParams)).toBe(v.output.signatureBase)
        expect(await createSignatureBase(m, parsed.components, parsed.rawParams)).toBe(v.output.signatureBase)
        expect(await referenceSignatureBase(m, parsed.components, parsed.rawParams)).toBe(v.output.signatureBase)
      },
    },
    {
      name: `${v.id}: signing the base with the RFC key gives the RFC signature`,
      run: async () => {
        const signer = await createSigner(key.privateJwk)
        const sig = await signer.sign(utf8(v.output.signatureBase))
        expect(toB64(sig)).toBe(v.output.signature)
        expect(`${label}=:${toB64(sig)}:`).toBe(v.output.headers.signature)
        expect(signatureBytes(v.output.headers.signature, label)).toEqual(sig)
      },
    },
    {
      name: `${v.id}: the library's verifier accepts the RFC signature`,
      run: async () => {
        const vk = await importPublicJwk(key.publicJwk)
        expect(await verifySignatureBytes(vk, utf8(v.output.signatureBase), fromB64(v.output.signature))).toBe(true)
      },
    },
    ...oracleCases({ what: `${v.id} signature`, message: utf8(v.output.signatureBase), signature: fromB64(v.output.signature), publicJwk: key.publicJwk }),
  ]
}

function requestCases(v: RequestVector): Case[] {
  const { request, label, created, agentKey, signatureKey } = v.input
  const sent = { method: request.method, url: request.url, headers: { ...request.headers, ...v.output.headers } }
  return [
    {
      name: `${v.id}: signing the inputs reproduces the headers and the signature base`,
      run: async () => {
        const body = bodyOf(request)
        const signed = await signRequest(
          { method: request.method, url: request.url, headers: new Headers(request.headers) },
          {
            signer: await createSigner(agentKey.privateJwk),
            signatureKey: { scheme: 'jwt', jwt: signatureKey.jwt, cache: false },
            label,
            now: () => created * 1000,
            exposeBase: true,
            ...(body === undefined ? {} : { body }),
          },
        )
        expect(signed.signatureBase).toBe(v.output.signatureBase)
        expect(signed.components).toEqual(v.output.coveredComponents)
        for (const [name, value] of Object.entries(v.output.headers)) expect(signed.headers.get(name), name).toBe(value)
      },
    },
    {
      name: `${v.id}: the signature base rebuilds from the request as sent (lean path and http-message-signatures)`,
      run: async () => {
        const parsed = parseSignatureInput(v.output.headers['signature-input']!).get(label)!
        const m = messageView(sent)
        expect(profileSignatureBase(m, parsed.components, parsed.rawParams)).toBe(v.output.signatureBase)
        expect(await referenceSignatureBase(m, parsed.components, parsed.rawParams)).toBe(v.output.signatureBase)
      },
    },
    {
      name: `${v.id}: createRequestVerifier accepts it at now = ${v.now} and yields ${v.expected.agent}`,
      run: async () => {
        const verified = await verifierFor(v.verifier, v.network, v.now).verify(sent, bodyOf(request))
        expect(agentOf(verified)).toBe(v.expected.agent)
        expect(verified.key.context.scheme === 'jwt' ? verified.key.context.type : undefined).toBe(v.expected.tokenType)
        expect(verified.label).toBe(v.expected.label)
        expect(verified.created).toBe(v.expected.created)
        expect(verified.key.thumbprint).toBe(v.expected.thumbprint)
        expect(verified.components).toEqual(v.output.coveredComponents)
      },
    },
    {
      name: `${v.id}: its agent token is the one in token-agent.json`,
      run: () => {
        const agentFile = FILES.find((f) => f.name === 'token-agent.json')?.doc
        expect(agentFile?.kind === 'token' ? agentFile.vectors[0]!.output.jwt : undefined).toBe(signatureKey.jwt)
      },
    },
    ...oracleCases({
      what: `${v.id} request signature`,
      message: utf8(v.output.signatureBase),
      signature: signatureBytes(v.output.headers['signature']!, label),
      publicJwk: agentKey.publicJwk,
    }),
    ...oracleCases(jwtSignature(`${v.id} agent token`, signatureKey.jwt, publicKeyFromJwks(v.network, signatureKey.kid))),
  ]
}

type TokenCreator = (key: IssuerKey, v: TokenVector, common: { issuer: string; now: () => number; lifetimeSec: number; jti: string }) => Promise<string>
type Claims = Record<string, unknown>
const str = (c: Claims, k: string): string | undefined => c[k] as string | undefined
const cnfJwk = (c: Claims): PublicJwk => (c['cnf'] as { jwk: PublicJwk }).jwk

/** How our creators are called from a vector's claims, per token type. */
const CREATE: Record<string, TokenCreator> = {
  'aa-agent+jwt': (key, v, common) => {
    const c = v.output.claims
    return createAgentToken({ key, ...common, sub: str(c, 'sub')!, cnfJwk: cnfJwk(c), ps: str(c, 'ps'), parentAgent: str(c, 'parent_agent') })
  },
  'aa-person+jwt': (key, v, common) => {
    const c = v.output.claims
    return createPersonToken({ key, ...common, aud: str(c, 'aud')!, sub: str(c, 'sub')!, cnfJwk: cnfJwk(c), missionS256: str(c, 'mission_s256'), tenant: str(c, 'tenant') })
  },
  'aa-resource+jwt': (key, v, common) => {
    const c = v.output.claims
    return createResourceToken({
      key, ...common, aud: str(c, 'aud')!, ps: str(c, 'ps')!, sub: str(c, 'sub')!, presentedJti: str(c, 'presented_jti')!, agentJkt: str(c, 'agent_jkt')!,
      scope: str(c, 'scope'), account: str(c, 'account'), loginHint: str(c, 'login_hint'), missionS256: str(c, 'mission_s256'), tenant: str(c, 'tenant'),
    })
  },
  'aa-auth+jwt': (key, v, common) => {
    const c = v.output.claims
    return createAuthToken({
      key, ...common, issuerRole: v.input.issuerRole!, aud: str(c, 'aud')!, ps: str(c, 'ps')!, sub: str(c, 'sub')!, cnfJwk: cnfJwk(c),
      scope: str(c, 'scope'), account: str(c, 'account'), missionS256: str(c, 'mission_s256'), tenant: str(c, 'tenant'),
    })
  },
}

/** How our verifiers are called for a check, per token type. */
const VERIFY: Record<string, (jwt: string, o: TokenVerifyOptions, check: TokenCheck) => Promise<unknown>> = {
  'aa-agent+jwt': (jwt, o) => verifyAgentToken(jwt, o),
  'aa-person+jwt': (jwt, o, c) => verifyPersonToken(jwt, { ...o, audience: c.audience! }),
  // A check without agentJkt binds to the token's own agent_jkt (it tests something else).
  'aa-resource+jwt': (jwt, o, c) => verifyResourceToken(jwt, { ...o, audience: c.audience, issuer: c.issuer, agentJkt: c.agentJkt ?? String(decodeJwt(jwt).payload['agent_jkt']) }),
  'aa-auth+jwt': (jwt, o, c) => verifyAuthToken(jwt, { ...o, audience: c.audience! }),
}

function tokenCases(tokenType: string, v: TokenVector): Case[] {
  const { header, claims, jwt } = v.output
  const key = v.input.issuerKey
  return [
    {
      name: `${v.id}: the creator reproduces the JWT from issuer, key, claims and time`,
      run: async () => {
        const iat = claims['iat'] as number
        const common = { issuer: v.input.issuer, now: () => iat * 1000, lifetimeSec: (claims['exp'] as number) - iat, jti: claims['jti'] as string }
        expect(await CREATE[tokenType]!({ kid: key.kid, privateJwk: key.privateJwk }, v, common)).toBe(jwt)
      },
    },
    {
      name: `${v.id}: header and claims, serialized as given, are the JWT's first two segments`,
      run: () => {
        const [h, p] = jwt.split('.')
        expect(Buffer.from(JSON.stringify(header)).toString('base64url')).toBe(h)
        expect(Buffer.from(JSON.stringify(claims)).toString('base64url')).toBe(p)
        expect(header).toEqual({ typ: tokenType, alg: 'Ed25519', kid: key.kid })
        expect(claims['iss']).toBe(v.input.issuer)
      },
    },
    ...v.checks.map(
      (check): Case => ({
        name: `${v.id}: ${check.title} (now = ${check.now}) → ${check.expected.valid ? 'valid' : check.expected.error}`,
        run: async () => {
          const now = (): number => check.now * 1000
          const result = VERIFY[tokenType]!(jwt, { jwks: jwksFor(serve(v.network), now), now }, check)
          if (check.expected.valid) {
            await expect(result).resolves.toEqual(claims)
          } else {
            const err = await result.then(() => undefined, (e: unknown) => e)
            expect(err).toBeInstanceOf(SignatureError)
            expect((err as SignatureError).code).toBe(check.expected.error)
          }
        },
      }),
    ),
    ...oracleCases(jwtSignature(`${v.id} JWS`, jwt, key.publicJwk)),
    ...oracleCases(jwtSignature(`${v.id} JWS (key from the served JWKS)`, jwt, publicKeyFromJwks(v.network, key.kid))),
  ]
}

const RESPONSE_HEADERS = ['signature-error', 'accept-signature-scheme', 'accept-signature-alg'] as const

function negativeCases(network: Network, v: NegativeVector): Case[] {
  const outcome = v.expected.valid ? `accepted as ${v.expected.agent}` : `401 error=${v.expected.error}`
  return [
    {
      name: `${v.id}: ${v.title} → ${outcome}`,
      run: async () => {
        const verifier = verifierFor(v.verifier, network, v.now)
        const { method, url, headers } = v.request
        const result = verifier.verify({ method, url, headers }, bodyOf(v.request))
        if (v.expected.valid) {
          expect(agentOf(await result)).toBe(v.expected.agent)
          return
        }
        const err = await result.then(() => undefined, (e: unknown) => e)
        expect(err).toBeInstanceOf(SignatureError)
        const se = err as SignatureError
        expect(se.code, se.message).toBe(v.expected.error)
        expect(se.status).toBe(401)
        const sent = signatureErrorHeaders(se)
        for (const name of RESPONSE_HEADERS) expect(sent.get(name) ?? undefined, name).toBe(v.expected.responseHeaders[name])
      },
    },
  ]
}

function casesFor(doc: VectorFile): Case[] {
  switch (doc.kind) {
    case 'rfc9421':
      return doc.vectors.flatMap(rfc9421Cases)
    case 'request':
      return doc.vectors.flatMap(requestCases)
    case 'token':
      return doc.vectors.flatMap((v) => tokenCases(doc.tokenType, v))
    case 'negative':
      return doc.vectors.flatMap((v) => negativeCases(doc.network, v))
  }
}

// ---------------------------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------------------------

beforeAll(() => {
  // Far from every vector time: a stray Date.now would turn valid tokens into expired ones.
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(new Date('2040-06-01T00:00:00Z'))
})
afterAll(() => {
  vi.useRealTimers()
})

describe('spec/vectors', () => {
  it('holds the required files', () => {
    expect(FILES.map((f) => f.name)).toEqual(
      expect.arrayContaining([
        'rfc9421-b26.json',
        'aauth-signed-get.json',
        'aauth-signed-post.json',
        'token-agent.json',
        'token-person.json',
        'token-resource.json',
        'token-auth.json',
        'negative.json',
      ]),
    )
  })

  it('leaves the extended/ subdirectory to test/vectors/independent.test.ts', () => {
    expect(readdirSync(VECTORS_DIR, { withFileTypes: true }).find((e) => e.name === 'extended')?.isDirectory()).toBe(true)
    expect(FILES.filter((f) => f.name.includes('/') || f.name.startsWith('extended'))).toEqual([])
  })

  it('negative vector ids are unique CHECKLIST Part 6 ids', () => {
    const neg = FILES.find((f) => f.doc.kind === 'negative')!.doc as Extract<VectorFile, { kind: 'negative' }>
    const ids = neg.vectors.map((v) => v.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const v of neg.vectors) {
      expect(v.checklist).toMatch(/^NEG-(SIG|ALG|META|TOK|RES)-\d\d$/)
      expect(v.id.startsWith(v.checklist)).toBe(true)
    }
  })
})

describe.each(FILES.map((f) => [f.name, f.doc] as const))('spec/vectors/%s', (_name, doc) => {
  it.each(casesFor(doc).map((c) => [c.name, c.run] as const))('%s', async (_title, run) => {
    await run()
  })
})

describe('scripts/gen-vectors.ts', () => {
  it('regenerating in memory gives the committed files (deep-equal and byte for byte)', async () => {
    const again = await generateVectors()
    expect(again).toEqual(GENERATED)
    for (const f of FILES) {
      expect(again[f.name], f.name).toEqual(f.doc)
      expect(serializeVectorFile(again[f.name]!), f.name).toBe(f.text)
    }
  })

  it('every committed file is listed in spec/README.md', () => {
    const readme = readFileSync(resolve(VECTORS_DIR, '..', 'README.md'), 'utf8')
    for (const f of FILES) expect(readme, f.name).toContain(`\`${f.name}\``)
  })
})
