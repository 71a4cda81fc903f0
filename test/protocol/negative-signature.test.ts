/**
 * CHECKLIST Part 6 negative tests for the request verifier: one row per bad input, each
 * asserting the exact `SignatureError.code` and the 401 that `signatureErrorResponse` renders
 * (NEG-SIG-*, NEG-ALG-*, NEG-META-*, NEG-TOK-*, NEG-RES-*). Every row differs from a verifying
 * baseline (the "accepted" table) by one thing. The clock is fixed; keys are discovered through
 * the in-memory network behind the real egress admission check.
 */
import type { BareItem } from 'structured-headers'
import { describe, expect, it } from 'vitest'
import {
  admitUrl,
  components,
  createContentDigest,
  createRequestVerifier,
  createSignatureBase,
  createSigner,
  generateKeyPair,
  jwkThumbprint,
  JwksCache,
  MemoryReplayCache,
  messageView,
  problemResponse,
  ProblemError,
  profileComponents,
  serializeSignatureParams,
  SignatureError,
  signatureErrorResponse,
  type EgressFetcher,
  type PublicJwk,
  type RequestVerifierOptions,
  type SignatureErrorCode,
  type Signer,
  type VerifiedSignature,
  type AAuthContext,
} from '../../src/protocol/index.js'
import { fakeNetwork, type FakeIssuer, type FakeNetwork } from '../helpers/issuers.js'
import { AP, applyPatch, AS, b64json, fakeIssuers, mintToken, NOW, NOW_S, PS, RES, type Issuers, type Kind, type Patch } from '../helpers/world.js'

const BASE = ['@method', '@authority', '@path', 'signature-key'] as const
const BODY = ['content-type', 'content-digest'] as const

// ---------------------------------------------------------------------------------------------
// World: issuers, an agent key (A), a second key (B), and an admission-checked JWKS cache.

interface Keyed {
  signer: Signer
  publicJwk: PublicJwk
}

interface World extends Issuers {
  net: FakeNetwork
  clock: { ms: number }
  agent: Keyed
  other: Keyed
  jwks: JwksCache
}

async function keyed(alg: 'Ed25519' | 'ES256' = 'Ed25519'): Promise<Keyed> {
  const { privateJwk, publicJwk } = await generateKeyPair(alg)
  return { signer: await createSigner(privateJwk), publicJwk }
}

async function world(): Promise<World> {
  const net = fakeNetwork()
  const clock = { ms: NOW }
  const issuers = await fakeIssuers(net)
  // Every discovery fetch passes egress admission first, as the production fetcher does.
  const fetcher: EgressFetcher = async (url) => {
    admitUrl(url)
    return net.fetcher(url)
  }
  const jwks = new JwksCache({ fetcher, now: () => clock.ms })
  return { net, clock, ...issuers, agent: await keyed(), other: await keyed(), jwks }
}

// ---------------------------------------------------------------------------------------------
// Tokens: a valid token per type (test/helpers/world.ts), patched per row (a patch value of
// `undefined` deletes).

/**
 * Mints a token of `kind` with `patch` applied to its claims and `header` to its JOSE header,
 * signed with the issuer's key (or, for `alg: HS256`, with the public key as an HMAC secret;
 * for `alg: none`, unsigned with a junk signature segment unless `sig` is given).
 */
async function mint(w: World, kind: Kind, patch: Patch = {}, header: Patch = {}, signWith?: FakeIssuer, sig = 'AAAA'): Promise<string> {
  const binding = { iat: Math.floor(w.clock.ms / 1000), cnfJwk: w.agent.publicJwk, agentJkt: await jwkThumbprint(w.agent.publicJwk) }
  return mintToken(w, kind, binding, { patch, header, signWith, noneSignature: sig })
}

const token =
  (kind: Kind, patch: Patch = {}, header: Patch = {}) =>
  (w: World): Promise<string> =>
    mint(w, kind, patch, header)

/** An agent token whose `cnf.jwk` is built per row. */
const cnf = (jwk: (w: World) => Record<string, unknown>) => (w: World) => mint(w, 'agent', { cnf: { jwk: jwk(w) } })

// ---------------------------------------------------------------------------------------------
// The one request builder: a signed request with every part overridable.

interface ReqSpec {
  method?: string
  url?: string
  headers?: Record<string, string>
  body?: string
  /** The JWT placed in `Signature-Key` (default: a valid agent token). */
  token?: (w: World) => Promise<string>
  /** The key that signs the request (default: the agent key A). */
  signer?: (w: World) => Signer | Promise<Signer>
  /** Components to leave out of / add to the profile's list. */
  omit?: readonly string[]
  add?: readonly string[]
  /** Signature parameters to set (`undefined` removes one); `created` defaults to the clock. */
  params?: Params | ((w: World) => Promise<Params>)
  label?: string
  /** The whole `Signature-Key` value (it is still covered by the signature). */
  signatureKey?: (w: World, jwt: string) => string
  /** Change headers after signing. */
  tamper?: (h: Headers) => void
  /** The body the verifier sees, when it differs from the one signed. */
  sentBody?: string
  /** The method / URL the verifier sees, when they differ from the ones signed. */
  sendAs?: { readonly method?: string; readonly url?: string }
}

type Params = Record<string, BareItem | undefined>

async function buildRequest(w: World, s: ReqSpec): Promise<{ req: Request; body: Uint8Array | undefined }> {
  const method = s.method ?? 'GET'
  const url = new URL(s.url ?? `${RES}/flights?to=SYD`)
  const headers = new Headers(s.headers)
  const body = s.body === undefined ? undefined : new TextEncoder().encode(s.body)
  if (body !== undefined) headers.set('content-digest', await createContentDigest(body))
  const label = s.label ?? 'sig'
  const jwt = await (s.token ?? token('agent'))(w)
  headers.set('signature-key', s.signatureKey?.(w, jwt) ?? `${label}=jwt;jwt="${jwt}"`)
  const names = [...profileComponents(url, headers, body !== undefined), ...(s.add ?? [])].filter((n) => !(s.omit ?? []).includes(n))
  const params = new Map<string, BareItem>([['created', Math.floor(w.clock.ms / 1000)]])
  for (const [k, v] of Object.entries(typeof s.params === 'function' ? await s.params(w) : (s.params ?? {}))) {
    if (v === undefined) params.delete(k)
    else params.set(k, v)
  }
  const comps = components(names)
  const base = await createSignatureBase(messageView({ method, url, headers }), comps, params)
  const signer = s.signer === undefined ? w.agent.signer : await s.signer(w)
  const sig = await signer.sign(new TextEncoder().encode(base))
  headers.set('signature-input', `${label}=${serializeSignatureParams(comps, params)}`)
  headers.set('signature', `${label}=:${Buffer.from(sig).toString('base64')}:`)
  s.tamper?.(headers)
  const sent = s.sentBody === undefined ? body : new TextEncoder().encode(s.sentBody)
  const init = { method: s.sendAs?.method ?? method, headers, ...(sent === undefined ? {} : { body: sent as BufferSource }) }
  return { req: new Request(s.sendAs?.url ?? url, init), body: sent }
}

// ---------------------------------------------------------------------------------------------
// Rows

interface Row {
  /** CHECKLIST id and what is wrong. */
  id: string
  code: SignatureErrorCode
  requiredInput?: readonly string[]
  acceptScheme?: readonly string[]
  acceptAlg?: readonly string[]
  req?: ReqSpec
  setup?: (w: World) => void | Promise<void>
  verifier?: (w: World) => Partial<RequestVerifierOptions>
  /** Verify the same request once (successfully) before the checked attempt. */
  replay?: boolean
  /** No outbound request may happen at all. */
  noFetch?: boolean
  /** URLs that must not be fetched. */
  unfetched?: readonly string[]
}

interface Accepted {
  id: string
  req?: ReqSpec
  setup?: (w: World) => void | Promise<void>
  verifier?: (w: World) => Partial<RequestVerifierOptions>
  check?: (v: VerifiedSignature<AAuthContext>, w: World) => void
}

const psEndpoint: ReqSpec = { method: 'POST', url: `${PS}/token`, headers: { 'content-type': 'application/json' }, body: '{"resource_token":"x"}' }
const atPs = (): Partial<RequestVerifierOptions> => ({ audience: PS, requireBodyComponents: true })
const serverKey = (issuer: keyof Pick<World, 'ps' | 'ap'>, dwk: string, kid = 'key-1', id?: string) => (w: World) =>
  `sig=jwks_uri;id="${id ?? w[issuer].issuer}";dwk="${dwk}";kid="${kid}"`
const psSigner = (w: World): Promise<Signer> => createSigner(w.ps.key.privateJwk)
const psToAs: ReqSpec = {
  method: 'POST',
  url: `${AS}/token`,
  headers: { 'content-type': 'application/json' },
  body: '{"resource_token":"x"}',
  signer: psSigner,
  signatureKey: serverKey('ps', 'aauth-person.json'),
}
const atAs = (): Partial<RequestVerifierOptions> => ({ audience: AS, requireBodyComponents: true, acceptServerSignatures: true })
const x32 = Buffer.alloc(32, 7).toString('base64url')
const ALGS = ['Ed25519', 'ES256'] as const
const withCreated = (delta: number): ReqSpec => ({ params: { created: NOW_S + delta } })

const unsupportedSchemes: [id: string, signatureKey: (w: World) => string, label?: string][] = [
  ['NEG-SIG-11 Signature-Key sig=hwk', () => `sig=hwk;kty="OKP";crv="Ed25519";x="${x32}";alg="Ed25519"`],
  ['NEG-SIG-12 Signature-Key sig=jwks_uri from an agent', serverKey('ap', 'aauth-agent.json')],
  ['NEG-SIG-12 unregistered scheme sig=foo', () => 'sig=foo;x=1'],
  ['NEG-SIG-12 member value is a String, not a scheme Token', () => 'sig="jwt"'],
  ['NEG-SIG-12 member value is an Inner List', () => 'sig=(jwt)'],
  ['NEG-SIG-12 sig=jkt-jwt (AP key refresh only)', () => 'sig=jkt-jwt;jwt="a.b.c"'],
  ['NEG-SIG-12 sig=jwks', () => 'sig=jwks;url="https://agents.example/jwks.json";kid="k"'],
  ['NEG-SIG-12 sig=self-jwt', () => 'sig=self-jwt;jwt="a.b.c"'],
  ['NEG-SIG-12 sig=x509', () => 'sig=x509;x5u="https://agents.example/c.pem";x5t=:AAAA:'],
  ['NEG-SIG-12 scheme token differs only in case (sig=JWT)', () => 'sig=JWT;jwt="a.b.c"'],
  ['NEG-SIG-22 sig1=cached;cid="…" to a verifier without caching', () => 'sig1=cached;cid="c-123"', 'sig1'],
]

const rows: Row[] = [
  // 6.1 HTTP signature and Signature-Key
  ...(['signature', 'signature-input', 'signature-key'] as const).map(
    (h): Row => ({ id: `NEG-SIG-01 ${h} header missing`, code: 'invalid_signature', req: { tamper: (hs) => hs.delete(h) } }),
  ),
  ...BASE.map((c): Row => ({ id: `NEG-SIG-02 covered components leave out ${c}`, code: 'invalid_input', requiredInput: BASE, req: { omit: [c] } })),
  ...BODY.map(
    (c): Row => ({
      id: `NEG-SIG-03 POST with a JSON body to a PS endpoint, ${c} not covered`,
      code: 'invalid_input',
      requiredInput: [...BASE, ...BODY],
      req: { ...psEndpoint, omit: [c] },
      verifier: atPs,
    }),
  ),
  {
    id: 'NEG-SIG-04 Authorization: AAuth present, authorization not covered',
    code: 'invalid_input',
    requiredInput: [...BASE, 'authorization'],
    req: { headers: { authorization: 'AAuth x' }, omit: ['authorization'] },
  },
  {
    id: 'NEG-SIG-05 additional_signature_components entry not covered',
    code: 'invalid_input',
    requiredInput: [...BASE, 'x-trace'],
    req: { headers: { 'x-trace': 't-1' } },
    verifier: () => ({ requiredComponents: ['x-trace'] }),
  },
  {
    id: 'NEG-SIG-05 covered only with a parameter (x-trace;sf) does not count',
    code: 'invalid_input',
    requiredInput: [...BASE, 'x-trace'],
    req: { headers: { 'x-trace': 'a' }, tamper: (h) => h.set('signature-input', (h.get('signature-input') ?? '').replace('"signature-key"', '"signature-key" "x-trace";sf')) },
    verifier: () => ({ requiredComponents: ['x-trace'] }),
  },
  { id: 'NEG-SIG-06 created 61 s old', code: 'invalid_signature', req: withCreated(-61) },
  { id: 'NEG-SIG-06 created 31 s old with signature_window 30', code: 'invalid_signature', req: withCreated(-31), verifier: () => ({ windowSec: 30 }) },
  { id: 'NEG-SIG-07 created 61 s in the future', code: 'clock_skew', req: withCreated(61) },
  { id: 'NEG-SIG-08 created missing', code: 'invalid_signature', req: { params: { created: undefined } } },
  { id: 'NEG-SIG-08 created is a String', code: 'invalid_signature', req: { params: { created: String(NOW_S) } } },
  { id: 'NEG-SIG-08 created is a Decimal', code: 'invalid_signature', req: { params: { created: NOW_S + 0.5 } } },
  { id: 'NEG-SIG-09 expires in the past', code: 'invalid_signature', req: { params: { expires: NOW_S - 1 } } },
  { id: 'NEG-SIG-09 expires equal to now', code: 'invalid_signature', req: { params: { expires: NOW_S } } },
  { id: 'NEG-SIG-10 replayed inside the window with a replay cache', code: 'invalid_signature', replay: true, verifier: (w) => ({ replayCache: new MemoryReplayCache(100, () => w.clock.ms) }) },
  ...unsupportedSchemes.map(([id, sk, label]): Row => ({ id, code: 'unsupported_scheme', acceptScheme: ['jwt'], req: { signatureKey: sk, ...(label === undefined ? {} : { label }) } })),
  {
    id: 'NEG-SIG-12 unregistered scheme at a verifier that also takes jwks_uri',
    code: 'unsupported_scheme',
    acceptScheme: ['jwt', 'jwks_uri'],
    req: { signatureKey: () => 'sig=foo' },
    verifier: () => ({ acceptServerSignatures: true }),
  },
  { id: 'NEG-SIG-13 Signature-Key label sig2, Signature-Input label sig', code: 'invalid_signature', req: { signatureKey: (_w, jwt) => `sig2=jwt;jwt="${jwt}"` } },
  { id: 'NEG-SIG-14 jwt parameter is not a compact JWT', code: 'invalid_jwt', req: { token: async () => 'not-a-jwt' } },
  { id: 'NEG-SIG-14 jwt parameter has three parts that are not JSON', code: 'invalid_jwt', req: { token: async () => 'a.b.c' } },
  { id: 'NEG-SIG-14 jwt parameter has four parts', code: 'invalid_jwt', req: { token: async (w) => `${await mint(w, 'agent')}.x` } },
  { id: 'NEG-SIG-14 jwt parameter has an empty signature part', code: 'invalid_jwt', req: { token: async (w) => (await mint(w, 'agent')).replace(/\.[^.]+$/, '.') } },
  { id: 'NEG-SIG-15 request signed by key B, cnf.jwk is key A', code: 'invalid_signature', req: { signer: (w) => w.other.signer } },
  { id: 'NEG-SIG-16 signature bytes altered', code: 'invalid_signature', req: { tamper: (h) => h.set('signature', (h.get('signature') ?? '').replace(/:(.)/, (_m, c: string) => `:${c === 'A' ? 'B' : 'A'}`)) } },
  { id: 'NEG-SIG-16 body changed after signing (Content-Digest mismatch)', code: 'invalid_signature', req: { ...psEndpoint, sentBody: '{"resource_token":"y"}' }, verifier: atPs },
  ...(
    [
      ['@method', { method: 'DELETE' }],
      ['@authority', { url: 'https://api2.example/flights?to=SYD' }],
      ['@path', { url: `${RES}/hotels?to=SYD` }],
      ['@query', { url: `${RES}/flights?to=MEL` }],
    ] as const
  ).map((r): Row => ({ id: `NEG-SIG-16 covered ${r[0]} changed after signing`, code: 'invalid_signature', req: { sendAs: r[1] } })),
  { id: 'NEG-SIG-18 keyid names a different key than Signature-Key', code: 'invalid_signature', req: { params: { keyid: 'some-other-key' } } },
  { id: 'NEG-SIG-20 agent token iat 120 s ahead, verifier bounds iat', code: 'clock_skew', req: { token: token('agent', { iat: NOW_S + 120 }) }, verifier: () => ({ boundIat: true }) },
  {
    id: 'NEG-SIG-21 agent token revoked by its issuer',
    code: 'revoked_jwt',
    verifier: () => ({ isRevoked: (iss, jti) => iss === AP && jti === 'agent-jti-1' }),
  },
  { id: 'NEG-SIG-24 jwks_uri caller whose metadata issuer differs from id', code: 'issuer_mismatch', req: psToAs, verifier: atAs, setup: (w) => void (w.ps.metadata['issuer'] = 'https://other.example') },
  { id: 'NEG-SIG-24 jwks_uri caller whose metadata has no issuer', code: 'issuer_missing', req: psToAs, verifier: atAs, setup: (w) => void delete w.ps.metadata['issuer'] },
  { id: 'NEG-SIG-24 jwks_uri caller with a kid not in its JWKS', code: 'unknown_key', req: { ...psToAs, signatureKey: serverKey('ps', 'aauth-person.json', 'key-9') }, verifier: atAs },
  { id: 'NEG-SIG-24 jwks_uri id that is not a server identifier', code: 'invalid_key', req: { ...psToAs, signatureKey: serverKey('ps', 'aauth-person.json', 'key-1', 'https://ps.example/') }, verifier: atAs },
  { id: 'NEG-SIG-24 jwks_uri dwk that is not an AAuth document', code: 'invalid_key', req: { ...psToAs, signatureKey: serverKey('ps', 'openid-configuration') }, verifier: atAs },
  { id: 'NEG-SIG-24 jwks_uri member without kid', code: 'invalid_key', req: { ...psToAs, signatureKey: () => `sig=jwks_uri;id="${PS}";dwk="aauth-person.json"` }, verifier: atAs },
  { id: 'NEG-SIG-24 jwks_uri request signed by another key than the selected kid', code: 'invalid_signature', req: { ...psToAs, signer: (w) => w.other.signer }, verifier: atAs },

  // 6.2 Algorithms and keys
  { id: 'NEG-ALG-01 JWT header alg none (junk signature part)', code: 'invalid_jwt', req: { token: token('agent', {}, { alg: 'none' }) } },
  { id: 'NEG-ALG-01 JWT header alg none (unsecured, empty signature part)', code: 'invalid_jwt', req: { token: (w) => mint(w, 'agent', {}, { alg: 'none' }, undefined, '') } },
  { id: 'NEG-ALG-02 JWT header alg EdDSA (polymorphic)', code: 'invalid_jwt', req: { token: token('agent', {}, { alg: 'EdDSA' }) } },
  { id: 'NEG-ALG-03 JWT header alg HS256 keyed with the issuer public key', code: 'invalid_jwt', req: { token: token('agent', {}, { alg: 'HS256' }) } },
  { id: 'NEG-ALG-03 JWT header alg missing', code: 'invalid_jwt', req: { token: (w) => mint(w, 'agent', {}, {}).then((t) => `${b64json({ typ: 'aa-agent+jwt', kid: 'key-1' })}.${t.split('.')[1]}.${t.split('.')[2]}`) } },
  { id: 'NEG-ALG-04 cnf.jwk has no alg', code: 'unsupported_algorithm', acceptAlg: ALGS, req: { token: cnf((w) => applyPatch(w.agent.publicJwk, { alg: undefined })) } },
  { id: 'NEG-ALG-05 cnf.jwk alg EdDSA', code: 'unsupported_algorithm', acceptAlg: ALGS, req: { token: cnf((w) => ({ ...w.agent.publicJwk, alg: 'EdDSA' })) } },
  { id: 'NEG-ALG-06 cnf.jwk EC/P-256 with alg Ed25519', code: 'invalid_key', req: { token: cnf(() => ({ kty: 'EC', crv: 'P-256', x: x32, y: x32, alg: 'Ed25519' })) } },
  { id: 'NEG-ALG-06 cnf.jwk OKP/Ed25519 with alg ES256', code: 'invalid_key', req: { token: cnf((w) => ({ ...w.agent.publicJwk, alg: 'ES256' })) } },
  { id: 'NEG-ALG-07 cnf.jwk OKP/Ed448 with alg Ed25519', code: 'invalid_key', req: { token: cnf(() => ({ kty: 'OKP', crv: 'Ed448', x: x32, alg: 'Ed25519' })) } },
  { id: 'NEG-ALG-07 cnf.jwk EC/P-384 with alg ES256', code: 'invalid_key', req: { token: cnf(() => ({ kty: 'EC', crv: 'P-384', x: x32, y: x32, alg: 'ES256' })) } },
  { id: 'NEG-ALG-08 cnf.jwk kty oct alg HS256', code: 'unsupported_algorithm', acceptAlg: ALGS, req: { token: cnf(() => ({ kty: 'oct', k: x32, alg: 'HS256' })) } },
  { id: 'NEG-ALG-08 cnf.jwk OKP key with alg HS256', code: 'unsupported_algorithm', acceptAlg: ALGS, req: { token: cnf((w) => ({ ...w.agent.publicJwk, alg: 'HS256' })) } },
  { id: 'NEG-ALG-09 cnf.jwk OKP missing x', code: 'invalid_key', req: { token: cnf((w) => applyPatch(w.agent.publicJwk, { x: undefined })) } },
  { id: 'NEG-ALG-09 cnf.jwk EC missing y', code: 'invalid_key', req: { token: cnf(() => ({ kty: 'EC', crv: 'P-256', x: x32, alg: 'ES256' })) } },
  { id: 'NEG-ALG-09 cnf.jwk missing kty', code: 'invalid_key', req: { token: cnf((w) => applyPatch(w.agent.publicJwk, { kty: undefined })) } },
  { id: 'NEG-ALG-09 cnf.jwk is not an object', code: 'invalid_key', req: { token: (w) => mint(w, 'agent', { cnf: { jwk: 'key' } }) } },
  { id: 'NEG-ALG-09 cnf missing', code: 'invalid_key', req: { token: token('agent', { cnf: undefined }) } },
  { id: 'NEG-ALG-10 cnf.jwk x not base64url', code: 'invalid_key', req: { token: cnf((w) => ({ ...w.agent.publicJwk, x: `${x32.slice(0, 42)}+` })) } },
  { id: 'NEG-ALG-10 cnf.jwk x of 31 bytes', code: 'invalid_key', req: { token: cnf((w) => ({ ...w.agent.publicJwk, x: Buffer.alloc(31, 1).toString('base64url') })) } },
  { id: 'NEG-ALG-10 cnf.jwk x of 33 bytes', code: 'invalid_key', req: { token: cnf((w) => ({ ...w.agent.publicJwk, x: Buffer.alloc(33, 1).toString('base64url') })) } },
  { id: 'NEG-ALG-10 cnf.jwk carries a private d', code: 'invalid_key', req: { token: cnf((w) => ({ ...w.agent.publicJwk, d: x32 })) } },
  { id: 'NEG-ALG-11 cnf.jwk alg ES512 at an Ed25519/ES256 verifier', code: 'unsupported_algorithm', acceptAlg: ALGS, req: { token: cnf(() => ({ kty: 'EC', crv: 'P-521', x: x32, y: x32, alg: 'ES512' })) } },
  {
    id: 'NEG-ALG-11 cnf.jwk alg ES256 at an Ed25519-only verifier',
    code: 'unsupported_algorithm',
    acceptAlg: ['Ed25519'],
    req: { token: cnf(() => ({ kty: 'EC', crv: 'P-256', x: x32, y: x32, alg: 'ES256' })) },
    verifier: () => ({ acceptedAlgorithms: ['Ed25519'] }),
  },
  { id: 'NEG-ALG-11 cnf.jwk alg RS256', code: 'unsupported_algorithm', acceptAlg: ALGS, req: { token: cnf(() => ({ kty: 'RSA', n: x32, e: 'AQAB', alg: 'RS256' })) } },
  { id: 'NEG-ALG-12 issuer JWKS key for kid has no alg', code: 'invalid_jwt', setup: (w) => void delete w.ap.jwks.keys[0]!['alg'] },
  { id: 'NEG-ALG-12 issuer JWKS key for kid has alg EdDSA', code: 'invalid_jwt', setup: (w) => void (w.ap.jwks.keys[0]!['alg'] = 'EdDSA') },
  { id: 'NEG-ALG-14 cnf.jwk kty AKP (ML-DSA) at a verifier without ML-DSA', code: 'unsupported_algorithm', acceptAlg: ALGS, req: { token: cnf(() => ({ kty: 'AKP', alg: 'ML-DSA-44', pub: x32 })) } },

  // 6.3 Issuer, metadata and JWKS
  { id: 'NEG-META-01 agent metadata has no issuer', code: 'issuer_missing', setup: (w) => void delete w.ap.metadata['issuer'] },
  { id: 'NEG-META-02 agent metadata issuer is https://evil.example', code: 'issuer_mismatch', setup: (w) => void (w.ap.metadata['issuer'] = 'https://evil.example') },
  { id: 'NEG-META-03 metadata issuer differs by a trailing slash', code: 'issuer_mismatch', setup: (w) => void (w.ap.metadata['issuer'] = `${AP}/`) },
  { id: 'NEG-META-03 metadata issuer differs by case', code: 'issuer_mismatch', setup: (w) => void (w.ap.metadata['issuer'] = 'https://Agents.example') },
  { id: 'NEG-META-03 person-server metadata issuer differs by case', code: 'issuer_mismatch', req: { token: token('person') }, setup: (w) => void (w.ps.metadata['issuer'] = 'https://PS.example') },
  { id: 'NEG-META-04 JWT kid not in the JWKS', code: 'unknown_key', req: { token: token('agent', {}, { kid: 'key-9' }) } },
  { id: 'NEG-META-04 JWT kid selects a key published for encryption only', code: 'unknown_key', setup: (w) => void (w.ap.jwks.keys[0]!['use'] = 'enc') },
  { id: 'NEG-META-05 key found for kid but the JWT signature fails', code: 'invalid_jwt', setup: (w) => void (w.ap.jwks.keys[0] = { ...w.other.publicJwk, kid: 'key-1' }) },
  { id: 'NEG-META-05 JWT signed by another issuer key under the same kid', code: 'invalid_jwt', req: { token: (w) => mint(w, 'agent', {}, {}, w.ps) } },
  { id: 'NEG-META-07 dwk aauth-resource.json on an aa-agent+jwt', code: 'invalid_jwt', req: { token: token('agent', { dwk: 'aauth-resource.json' }) } },
  { id: 'NEG-META-07 dwk missing on an aa-agent+jwt', code: 'invalid_jwt', req: { token: token('agent', { dwk: undefined }) } },
  ...['http://agents.example', 'https://agents.example:8443', 'https://agents.example/', 'https://agents.example/v1', 'https://Agents.example'].map(
    (iss): Row => ({ id: `NEG-META-08 iss ${iss}`, code: 'invalid_jwt', req: { token: token('agent', { iss }) }, noFetch: true }),
  ),
  ...['https://127.0.0.1', 'https://10.1.2.3', 'https://169.254.169.254', 'https://192.168.0.1', 'https://localhost'].map(
    (iss): Row => ({ id: `NEG-META-09 iss ${iss} is refused by egress admission before any fetch`, code: 'invalid_jwt', req: { token: token('agent', { iss, sub: `aauth:bot@${new URL(iss).host}` }) }, noFetch: true }),
  ),
  {
    id: 'NEG-META-10 metadata jwks_uri uses http://',
    code: 'invalid_jwt',
    setup: (w) => void (w.ap.metadata['jwks_uri'] = 'http://agents.example/.well-known/jwks.json'),
    unfetched: ['http://agents.example/.well-known/jwks.json'],
  },
  {
    id: 'NEG-META-10 metadata jwks_uri on another origin',
    code: 'invalid_jwt',
    setup: (w) => void (w.ap.metadata['jwks_uri'] = 'https://cdn.example/jwks.json'),
    unfetched: ['https://cdn.example/jwks.json'],
  },

  // 6.4 JWT lifetime and type
  { id: 'NEG-TOK-01 agent token exp in the past, at a resource', code: 'expired_jwt', req: { token: token('agent', { iat: NOW_S - 3600, exp: NOW_S - 1 }) } },
  { id: 'NEG-TOK-01 agent token exp equal to now (no tolerance)', code: 'expired_jwt', req: { token: token('agent', { iat: NOW_S - 3600, exp: NOW_S }) } },
  { id: 'NEG-TOK-02 agent token exp in the past, at a PS token endpoint', code: 'expired_jwt', req: { ...psEndpoint, token: token('agent', { iat: NOW_S - 3600, exp: NOW_S - 1 }) }, verifier: atPs },
  { id: 'NEG-TOK-03 iat in the future with the optional iat bound', code: 'clock_skew', req: { token: token('agent', { iat: NOW_S + 61 }) }, verifier: () => ({ boundIat: true }) },
  { id: 'NEG-TOK-04 typ JWT on a Signature-Key token', code: 'invalid_jwt', req: { token: token('agent', {}, { typ: 'JWT' }) } },
  { id: 'NEG-TOK-04 typ missing on a Signature-Key token', code: 'invalid_jwt', req: { token: token('agent', {}, { typ: undefined }) } },
  { id: 'NEG-TOK-04 typ aa-agent+jwt in different case', code: 'invalid_jwt', req: { token: token('agent', {}, { typ: 'AA-AGENT+JWT' }) } },
  { id: 'NEG-TOK-07 resource token presented as Signature-Key', code: 'invalid_jwt', req: { token: token('resource') } },
  { id: 'NEG-TOK-07 person token at a verifier that accepts only agent tokens', code: 'invalid_jwt', req: { token: token('person') }, verifier: () => ({ acceptedTokenTypes: ['aa-agent+jwt'] }) },
  { id: 'NEG-TOK-08 agent token parent_agent "not an id"', code: 'invalid_jwt', req: { token: token('agent', { parent_agent: 'not an id' }) } },
  { id: 'NEG-TOK-08 agent token parent_agent under another provider', code: 'invalid_jwt', req: { token: token('agent', { parent_agent: 'aauth:bot@other.example' }) } },
  { id: 'NEG-TOK-09 agent token ps http://ps.example', code: 'invalid_jwt', req: { token: token('agent', { ps: 'http://ps.example' }) } },
  ...['aauth:My Agent@agents.example', 'aauth:@agents.example', `aauth:${'a'.repeat(256)}@agents.example`, 'bot@agents.example', 'aauth:bot@other.example'].map(
    (sub): Row => ({ id: `NEG-TOK-10 agent sub ${sub.length > 40 ? `${sub.slice(0, 20)}… (${sub.length} chars)` : sub}`, code: 'invalid_jwt', req: { token: token('agent', { sub }) } }),
  ),
  { id: 'NEG-TOK-10 agent sub missing', code: 'invalid_jwt', req: { token: token('agent', { sub: undefined }) } },

  // 6.5 Resource-side token checks
  { id: 'NEG-RES-01 person token aud is another resource', code: 'invalid_jwt', req: { token: token('person', { aud: 'https://other-api.example' }) } },
  { id: 'NEG-RES-01 person token aud is an array holding this resource', code: 'invalid_jwt', req: { token: token('person', { aud: [RES] }) } },
  { id: 'NEG-RES-02 person token cnf.jwk is not the request key', code: 'invalid_signature', req: { token: token('person'), signer: (w) => w.other.signer } },
  { id: 'NEG-RES-04 auth token with no cnf', code: 'invalid_key', req: { token: token('auth', { cnf: undefined }) } },
  { id: 'NEG-RES-05 auth token with no sub', code: 'invalid_jwt', req: { token: token('auth', { sub: undefined }) } },
  { id: 'NEG-RES-06 auth token dwk aauth-agent.json', code: 'invalid_jwt', req: { token: token('auth', { dwk: 'aauth-agent.json' }) } },
  { id: 'NEG-RES-07 auth token exp - iat = 3601 s', code: 'invalid_jwt', req: { token: token('auth', { exp: NOW_S + 3601 }) } },
  { id: 'NEG-RES-07 person token exp - iat = 3601 s', code: 'invalid_jwt', req: { token: token('person', { exp: NOW_S + 3601 }) } },
]

/**
 * Rows that caught bugs when first written (kept as regressions).
 */
const bugRows: Row[] = [
  // Regression: an empty `jwt` parameter is "not a valid compact JWT" (NEG-SIG-14 → invalid_jwt), but
  // interpretSignatureKeyMember reports it as invalid_key ("jwt scheme requires a string jwt").
  { id: 'NEG-SIG-14 jwt parameter is the empty String', code: 'invalid_jwt', req: { signatureKey: () => 'sig=jwt;jwt=""' } },
  // Regression: same for a jwt parameter of the wrong structured type (Token / Byte Sequence).
  { id: 'NEG-SIG-14 jwt parameter is a Token, not a String', code: 'invalid_jwt', req: { signatureKey: () => 'sig=jwt;jwt=abc' } },
]

// ---------------------------------------------------------------------------------------------
// Runner

function verifierFor(w: World, row: { verifier?: (w: World) => Partial<RequestVerifierOptions> }) {
  return createRequestVerifier({ audience: RES, jwks: w.jwks, now: () => w.clock.ms, ...row.verifier?.(w) })
}

async function runRow(row: Row | Accepted): Promise<{ w: World; result: Promise<VerifiedSignature<AAuthContext>> }> {
  const w = await world()
  await row.setup?.(w)
  const { req, body } = await buildRequest(w, row.req ?? {})
  const verifier = verifierFor(w, row)
  if ('replay' in row && row.replay === true) await verifier.verify(req, body)
  return { w, result: verifier.verify(req, body) }
}

function expectedSignatureErrorHeader(code: SignatureErrorCode, requiredInput?: readonly string[]): string {
  return code === 'invalid_input' && requiredInput !== undefined ? `error=${code}, required_input=(${requiredInput.map((c) => `"${c}"`).join(' ')})` : `error=${code}`
}

async function expectRejection(err: unknown, row: Row): Promise<void> {
  expect(err).toBeInstanceOf(SignatureError)
  const e = err as SignatureError
  expect({ code: e.code, message: e.message }).toMatchObject({ code: row.code })
  if (row.requiredInput !== undefined) expect(e.requiredInput).toEqual(row.requiredInput)
  if (row.acceptScheme !== undefined) expect(e.acceptSignatureScheme).toEqual(row.acceptScheme)
  if (row.acceptAlg !== undefined) expect(e.acceptSignatureAlg).toEqual(row.acceptAlg)

  const res = signatureErrorResponse(e)
  expect(res.status).toBe(401)
  expect(res.headers.get('signature-error')).toBe(expectedSignatureErrorHeader(row.code, row.requiredInput))
  expect(res.headers.get('accept-signature-scheme')).toBe(row.acceptScheme === undefined ? null : row.acceptScheme.join(', '))
  expect(res.headers.get('accept-signature-alg')).toBe(row.acceptAlg === undefined ? null : row.acceptAlg.join(', '))
  expect(res.headers.get('content-type')).toBe('application/problem+json')
  const body = (await res.json()) as Record<string, unknown>
  expect(body).toMatchObject({ type: `urn:ietf:params:sig-error:${row.code}`, error: row.code, status: 401 })
}

describe('request verifier rejections (CHECKLIST Part 6)', () => {
  it.each(rows.map((r) => [`${r.id} → ${r.code}`, r] as const))('%s', async (_name, row) => {
    const { w, result } = await runRow(row)
    const err = await result.then(
      () => undefined,
      (e: unknown) => e,
    )
    await expectRejection(err, row)
    if (row.noFetch === true) expect([...w.net.hits.keys()]).toEqual([])
    for (const url of row.unfetched ?? []) expect(w.net.hits.has(url)).toBe(false)
  })

  it.each(bugRows.map((r) => [`${r.id} → ${r.code}`, r] as const))('%s', async (_name, row) => {
    const { result } = await runRow(row)
    await expectRejection(
      await result.then(
        () => undefined,
        (e: unknown) => e,
      ),
      row,
    )
  })
})

const accepted: Accepted[] = [
  { id: 'SIG-01 SIG-02 baseline: agent token, GET with a query', check: (v) => expect(v.key.context).toMatchObject({ scheme: 'jwt', type: 'aa-agent+jwt' }) },
  { id: 'SIG-03 baseline: agent token, POST with a body at a PS endpoint', req: psEndpoint, verifier: atPs },
  { id: 'TOK-PT-04 baseline: person token at its audience', req: { token: token('person') }, check: (v) => expect(v.key.context).toMatchObject({ type: 'aa-person+jwt' }) },
  { id: 'TOK-AT-05 baseline: AS-issued auth token at its audience', req: { token: token('auth') }, check: (v) => expect(v.key.context).toMatchObject({ type: 'aa-auth+jwt' }) },
  { id: 'TOK-AT-05 baseline: PS-issued auth token (ps = iss)', req: { token: (w) => mint(w, 'auth', { iss: PS, dwk: 'aauth-person.json' }, {}, w.ps) } },
  { id: 'SIG-19 baseline: PS signs in its own right with jwks_uri', req: psToAs, verifier: atAs, check: (v) => expect(v.key.context).toEqual({ scheme: 'jwks_uri', issuer: PS, dwk: 'aauth-person.json', kid: 'key-1' }) },
  { id: 'SIG-04 baseline: Authorization: AAuth covered', req: { headers: { authorization: 'AAuth x' } } },
  { id: 'SIG-05 baseline: additional component covered', req: { headers: { 'x-trace': 't-1' }, add: ['x-trace'] }, verifier: () => ({ requiredComponents: ['x-trace'] }) },
  { id: 'SIG-06 created exactly 60 s old is inside the window', req: withCreated(-60) },
  { id: 'SIG-06 created exactly 60 s ahead is inside the window', req: withCreated(60) },
  { id: 'SIG-15 expires in the future', req: { params: { expires: NOW_S + 30 } } },
  { id: 'NEG-SIG-17 Signature-Input alg="ed25519" is ignored', req: { params: { alg: 'ed25519' } } },
  { id: 'NEG-SIG-17 Signature-Input alg="hmac-sha256" is ignored', req: { params: { alg: 'hmac-sha256' } } },
  { id: 'SIG-08 keyid equal to the key thumbprint', req: { params: async (w) => ({ keyid: await jwkThumbprint(w.agent.publicJwk) }) } },
  { id: 'NEG-SIG-20 agent token iat 120 s ahead without the iat bound', req: { token: token('agent', { iat: NOW_S + 120 }) } },
  { id: 'NEG-TOK-03 iat 60 s ahead with the iat bound (inside the window)', req: { token: token('agent', { iat: NOW_S + 60 }) }, verifier: () => ({ boundIat: true }) },
  { id: 'NEG-SIG-23 extra member sig9=frob;x=1 for another label', req: { signatureKey: (_w, jwt) => `sig=jwt;jwt="${jwt}", sig9=frob;x=1` } },
  { id: 'NEG-SIG-23 extra member before the verified one', req: { signatureKey: (_w, jwt) => `sig9=frob;x=1, sig=jwt;jwt="${jwt}"` } },
  { id: 'NEG-ALG-13 JWKS carries an ML-DSA key under another kid', setup: (w) => void w.ap.jwks.keys.push({ kty: 'AKP', alg: 'ML-DSA-44', pub: x32, kid: 'pq-1' }) },
  { id: 'NEG-ALG-13 JWKS carries a key with no alg under another kid', setup: (w) => void w.ap.jwks.keys.unshift({ kty: 'OKP', crv: 'Ed25519', x: x32, kid: 'old' }) },
  { id: 'NEG-TOK-10 aauth:Planner@… is valid and keeps its case', req: { token: token('agent', { sub: 'aauth:Planner@agents.example' }) }, check: (v) => expect(v.key.context).toMatchObject({ claims: { sub: 'aauth:Planner@agents.example' } }) },
  { id: 'TOK-08 unknown claims and header members are ignored', req: { token: token('agent', { frob: 1 }, { x5frob: 'y' }) } },
  { id: 'ALG-01 agent with an ES256 key', setup: async (w) => void (w.agent = await keyed('ES256')) },
]

describe('request verifier acceptances (the baselines the rejections differ from)', () => {
  it.each(accepted.map((r) => [r.id, r] as const))('%s', async (_name, row) => {
    const { w, result } = await runRow(row)
    const v = await result
    expect(v.label).toBe('sig')
    row.check?.(v, w)
  })
})

describe('JWKS refresh floor', () => {
  it('NEG-META-06 two unknown kids within 60 s cause at most one JWKS fetch per minute', async () => {
    const w = await world()
    const verifier = verifierFor(w, {})
    const jwksUri = `${AP}/.well-known/jwks.json`
    const attempt = async (kid: string): Promise<unknown> => {
      const { req } = await buildRequest(w, { token: token('agent', {}, { kid }) })
      return verifier.verify(req).then(
        () => undefined,
        (e: unknown) => e,
      )
    }
    const fetchesAt: number[] = []
    for (const [offset, kid] of [[0, 'gone-1'], [10_000, 'gone-2'], [59_000, 'gone-3'], [61_000, 'gone-4'], [90_000, 'gone-5']] as const) {
      w.clock.ms = NOW + offset
      const err = await attempt(kid)
      expect(err).toBeInstanceOf(SignatureError)
      expect((err as SignatureError).code).toBe('unknown_key')
      fetchesAt.push(w.net.hits.get(jwksUri) ?? 0)
    }
    // One fetch in the first minute, at most one more once the minute has passed.
    expect(fetchesAt).toEqual([1, 1, 1, 2, 2])
  })
})

describe('access denied', () => {
  it.each(['denied', 'abandoned', 'revoked', 'user_unreachable', 'mission_terminated', 'unsupported_iss'] as const)(
    'NEG-SIG-19 a 403 %s carries no Signature-Error or Accept-Signature-*',
    (code) => {
      const res = problemResponse(new ProblemError(code, 'policy'))
      expect(res.status).toBe(403)
      for (const h of ['signature-error', 'accept-signature-scheme', 'accept-signature-alg']) expect(res.headers.get(h)).toBeNull()
    },
  )
})
