/**
 * Generates the interop test vectors in `spec/vectors/*.json` (format: `spec/README.md`), then
 * rewrites the extended set in `spec/vectors/extended/` from `scripts/vectors/`, which is built
 * without the library (see `scripts/vectors/files.ts`).
 *
 * Everything is fixed: Ed25519 keys are literal JWKs below, timestamps are constants, `jti`
 * values are spelled out, and Ed25519 signatures are deterministic (RFC 8032), so running this
 * twice writes identical bytes. `test/spec/vectors.test.ts` calls {@link generateVectors} and
 * deep-equals the result with the committed files.
 *
 * Run with `npm run vectors` (it regenerates both sets).
 *
 * @module
 */

import { createHmac, createPrivateKey, sign as nodeSign } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  components,
  createAgentToken,
  createAuthToken,
  createContentDigest,
  createPersonToken,
  createResourceToken,
  createSignatureBase,
  createSigner,
  jwkThumbprint,
  messageView,
  profileComponents,
  serializeSignatureParams,
  signatureParamsMap,
  signRequest,
  type PrivateJwk,
  type PublicJwk,
  type SignatureErrorCode,
  type SignatureParameters,
  type Signer,
} from '../src/protocol/index.js'
import { EXTENDED_VECTORS_DIR, writeVectorFiles } from './vectors/files.js'
import { RFC9421_B26, RFC9421_REQUEST, RFC9421_TEST_KEY_ED25519 } from './vectors/rfc9421-material.js'

// ---------------------------------------------------------------------------------------------
// File format (documented in spec/README.md)
// ---------------------------------------------------------------------------------------------

/** A request exactly as it travels: lowercase header names, body as UTF-8 text or `null`. */
export interface HttpRequestData {
  method: string
  url: string
  headers: Record<string, string>
  body: string | null
}

/** A test key. The private half is published on purpose: these keys sign nothing real. */
export interface TestKey {
  kid?: string
  /** RFC 7638 SHA-256 thumbprint of the public key. */
  thumbprint: string
  publicJwk: PublicJwk
  privateJwk: PrivateJwk
}

/** `url → JSON document` a runner serves with status 200 and `application/json`. */
export type Network = Record<string, Record<string, unknown>>

/** How the verifier under test is configured. Absent members take the defaults in README. */
export interface VerifierConfig {
  audience: string
  requireBodyComponents?: boolean
  additionalComponents?: string[]
  signatureWindow?: number
  iatBound?: boolean
  acceptServerSignatures?: boolean
  /** Tokens the verifier holds a revocation for, by issuer and `jti`. */
  revoked?: { iss: string; jti: string }[]
}

/** What verification must produce. */
export type Expected =
  | { valid: true; agent: string }
  | { valid: false; error: SignatureErrorCode; responseHeaders: Record<string, string> }

/** What every vector starts with: a unique id, a one-line title and the references it exercises. */
export interface VectorHead {
  id: string
  title: string
  spec: string[]
}

export interface Rfc9421Vector extends VectorHead {
  input: {
    request: HttpRequestData
    label: string
    coveredComponents: string[]
    params: { created: number; keyid: string }
    key: TestKey & { kid: string }
  }
  output: {
    signatureParams: string
    signatureBase: string
    signature: string
    headers: { 'signature-input': string; signature: string }
  }
}

export interface RequestVector extends VectorHead {
  input: {
    request: HttpRequestData
    label: string
    created: number
    agentKey: TestKey
    signatureKey: { scheme: 'jwt'; jwt: string; tokenType: string; issuer: string; kid: string }
  }
  output: {
    coveredComponents: string[]
    signatureBase: string
    headers: Record<string, string>
  }
  now: number
  verifier: VerifierConfig
  network: Network
  expected: { valid: true; agent: string; tokenType: string; label: string; created: number; thumbprint: string }
}

export interface TokenCheck {
  title: string
  now: number
  audience?: string
  issuer?: string
  agentJkt?: string
  expected: { valid: true } | { valid: false; error: SignatureErrorCode }
}

export interface TokenVector extends VectorHead {
  input: {
    issuer: string
    issuerKey: TestKey & { kid: string }
    /** For auth tokens: whether a person server or an access server issues it. */
    issuerRole?: 'person' | 'access'
  }
  output: {
    header: Record<string, unknown>
    claims: Record<string, unknown>
    jwt: string
  }
  network: Network
  checks: TokenCheck[]
}

export interface NegativeVector extends VectorHead {
  checklist: string
  request: HttpRequestData
  now: number
  verifier: VerifierConfig
  expected: Expected
}

interface FileHead {
  description: string
  generatedBy: string
}
export type VectorFile =
  | (FileHead & { kind: 'rfc9421'; vectors: Rfc9421Vector[] })
  | (FileHead & { kind: 'request'; vectors: RequestVector[] })
  | (FileHead & { kind: 'token'; tokenType: string; vectors: TokenVector[] })
  | (FileHead & { kind: 'negative'; network: Network; vectors: NegativeVector[] })

// ---------------------------------------------------------------------------------------------
// Fixed material
// ---------------------------------------------------------------------------------------------

const GENERATED_BY = 'scripts/gen-vectors.ts (npm run vectors)'
const MAIN = 'draft-hardt-oauth-aauth-protocol'
const SK = 'draft-hardt-httpbis-signature-key'

/** 2026-01-01T00:00:00Z. Every timestamp below is an offset from it. */
export const T0 = 1_767_225_600

/**
 * Ed25519 test keys. Each private scalar is SHA-256("aauth-kit test vectors: <name>"), which is
 * only a way of having picked them; the literal values are what counts.
 */
const RAW_KEYS = {
  agentProvider: { x: 'JA5nHWn6mht8xjQuE-M1zbifKMUj6QfQUHVFci34DjU', d: 'otWJFf4e_eqYsYwDur4QiV5ZlROn_RomoITzPvWdIlg' },
  personServer: { x: '9zqW7MyUGmBGkjyLW6K-rI2B8JH4Umk3jIb0Yl23v6c', d: 'wJLR3jWDDT-oHIV5Lqu7hv0ubDFvd0WUqkE2fUX_3Tw' },
  accessServer: { x: '2iFrBX6TrfCTffnetqikGYMsycAoRdXz8yvaA-NdjPw', d: 'mMvGl0NqjFAUYN0YBz2D6f6LzPsnlAvzKlbpn2RCCAw' },
  resource: { x: '_C4cjX2foG5ZXE4Sr4rlWSPPRc1NBEeuVmiiWvwbfaA', d: 'bfzFCSxP5KjCzOEhbxWdZ8jdO3HOEX6E_j3FlDwC8fE' },
  agent: { x: 'GW--VmHjKUutyc8nC8Krgyb9Uwt2iVU4sKgZDP-wRU4', d: 'GsGCMDT4nvFRIVngIoDnsIFWQH89yqynXHcJ0ka0hQU' },
  agentOther: { x: 'A2ddzXjlnNvaDM02GHJGkfiNpUkBorkHo-jDSrEyc5I', d: 'upffZHmzgZEitYEF7XDiWnn1Q532Q-dFTXo80hQrwpg' },
  rogue: { x: 'Gmg7OwkHdRJr7fCkrQ8re77_2EFQ9_jPfhp1gPWsQ34', d: 'zIaYSNc5JwSXptBcfpOTdbDtikkAd3_Ir9MwqmdT8CQ' },
} as const

/** Public coordinates of keys that are only ever conveyed, never used to sign. */
const FOREIGN = {
  // RFC 9421 Appendix B.1.3 test-key-ecc-p256.
  p256: { x: 'qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA', y: 'Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0' },
  p521: {
    x: 'AYzAahcQepGbAFk_m6ZFdbkR6irV6MIUGGFzepTGY2pp9JGMar-HChTZmtBslVDIUVh5epGLZ54H48bAZ535dLJC',
    y: 'AWiuAQoAz7qNv8YaUo2pdWIkvFKREIkLAYtkeMEjih9jMbYh1N1qcHPY53SkFkhzDb430hd39QwTIVU8g5PeCpgO',
  },
  ed448: { x: 'qNgDGMOq8zuxZMgdYesK5A2YixRnZbTuDS3j_DDmf3JMrAJra1ZUh01Pe3aMA2hzlnrWt5qCRomA' },
}

const AP = 'https://agents.example'
const PS = 'https://ps.example'
const AS = 'https://as.example'
const RS = 'https://api.example'
const AGENT_ID = 'aauth:travel-bot@agents.example'
const PERSON_SUB = 'p-4f1d2c9a'
const KID = { ap: 'ap-key-1', ps: 'ps-key-1', as: 'as-key-1', rs: 'rs-key-1' } as const

function privateJwk(raw: { x: string; d: string }): PrivateJwk {
  return { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519', x: raw.x, d: raw.d }
}

function publicJwk(raw: { x: string }): PublicJwk {
  return { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519', x: raw.x }
}

async function testKey(raw: { x: string; d: string }, kid?: string): Promise<TestKey> {
  const pub = publicJwk(raw)
  return { ...(kid === undefined ? {} : { kid }), thumbprint: await jwkThumbprint(pub), publicJwk: pub, privateJwk: privateJwk(raw) }
}

function b64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url')
}

/** A compact JWS built by hand, so negative vectors can carry headers and claims no creator allows. */
type JwsKey = { ed25519: { x: string; d: string } } | { hmac: Uint8Array } | 'none'
function compactJws(header: Record<string, unknown>, claims: Record<string, unknown>, key: JwsKey): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  if (key === 'none') return `${input}.`
  if ('hmac' in key) return `${input}.${b64url(createHmac('sha256', key.hmac).update(input).digest())}`
  const pk = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.ed25519.x, d: key.ed25519.d }, format: 'jwk' })
  return `${input}.${b64url(nodeSign(null, Buffer.from(input), pk))}`
}

function wellKnown(issuer: string, dwk: string): string {
  return `${issuer}/.well-known/${dwk}`
}

function jwksUri(issuer: string): string {
  return `${issuer}/.well-known/jwks.json`
}

/** Metadata + JWKS of one issuer, as served. */
function issuerDocs(issuer: string, dwk: string, keys: Record<string, unknown>[], extra: Record<string, unknown> = {}): Network {
  return {
    [wellKnown(issuer, dwk)]: { issuer, jwks_uri: jwksUri(issuer), ...extra },
    [jwksUri(issuer)]: { keys },
  }
}

function jwksEntry(raw: { x: string }, kid: string): Record<string, unknown> {
  return { ...publicJwk(raw), kid, use: 'sig' }
}

const PS_EXTRA = { auth_token_endpoint: `${PS}/token`, person_token_endpoint: `${PS}/person-token` }
const AS_EXTRA = { auth_token_endpoint: `${AS}/token` }

function apNetwork(): Network {
  return issuerDocs(AP, 'aauth-agent.json', [jwksEntry(RAW_KEYS.agentProvider, KID.ap)], { name: 'Example Agent Provider' })
}

// ---------------------------------------------------------------------------------------------
// RFC 9421 Appendix B.2.6
// ---------------------------------------------------------------------------------------------

/** The RFC's values as published (`scripts/vectors/rfc9421-material.ts`); the library must reproduce them. */
async function rfc9421(): Promise<VectorFile> {
  const { label, components: covered, params, signatureInput, signatureBase, signature } = RFC9421_B26
  const request: HttpRequestData = RFC9421_REQUEST
  // The RFC's key as a JWK, plus `alg`, which AAuth requires.
  const key = { ...(await testKey(RFC9421_TEST_KEY_ED25519)), kid: RFC9421_TEST_KEY_ED25519.kid }
  const comps = components(covered)
  const rawParams = signatureParamsMap(params)
  const signatureParams = serializeSignatureParams(comps, rawParams)
  // The published values are written as published; the library must agree or generation stops.
  if (signatureParams !== signatureInput) throw new Error('signature parameters differ from RFC 9421 B.2.6')
  const base = await createSignatureBase(messageView(request), comps, rawParams)
  if (base !== signatureBase) throw new Error('signature base differs from RFC 9421 B.2.6')
  const signer = await createSigner(key.privateJwk)
  if (Buffer.from(await signer.sign(Buffer.from(base))).toString('base64') !== signature) {
    throw new Error('signature differs from RFC 9421 B.2.6')
  }
  return {
    kind: 'rfc9421',
    description: 'RFC 9421 Appendix B.2.6 (Ed25519 over a POST request), the values as published in the RFC.',
    generatedBy: GENERATED_BY,
    vectors: [
      {
        id: 'rfc9421-b26',
        title: 'RFC 9421 B.2.6: Ed25519 signature over date, method, path, authority, content-type, content-length',
        spec: ['https://www.rfc-editor.org/rfc/rfc9421#appendix-B.2.6', 'https://www.rfc-editor.org/rfc/rfc9421#appendix-B.1.4'],
        input: { request, label, coveredComponents: covered, params, key },
        output: {
          signatureParams,
          signatureBase,
          signature,
          headers: { 'signature-input': `${label}=${signatureParams}`, signature: `${label}=:${signature}:` },
        },
      },
    ],
  }
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

function decodeSegment(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>
}

function tokenOutput(jwt: string): TokenVector['output'] {
  const [h, p] = jwt.split('.') as [string, string, string]
  return { header: decodeSegment(h), claims: decodeSegment(p), jwt }
}

const AGENT_TOKEN = { iat: T0, lifetime: 3600, jti: 'agent-token-0001' }
const PERSON_TOKEN = { iat: T0 + 60, lifetime: 3540, jti: 'person-token-0001' }
const RESOURCE_TOKEN = { iat: T0 + 120, lifetime: 300, jti: 'resource-token-0001' }
const AUTH_TOKEN_PS = { iat: T0 + 180, lifetime: 3000, jti: 'auth-token-ps-0001' }
const AUTH_TOKEN_AS = { iat: T0 + 200, lifetime: 1800, jti: 'auth-token-as-0001' }

interface Material {
  ap: TestKey & { kid: string }
  ps: TestKey & { kid: string }
  as: TestKey & { kid: string }
  rs: TestKey & { kid: string }
  agent: TestKey
  agentOther: TestKey
  agentToken: string
  personToken: string
  resourceToken: string
  authTokenPs: string
  authTokenAs: string
}

/** What every token creator is given: the issuer's key and identifier, and one token's timing. */
function issuance(key: TestKey & { kid: string }, issuer: string, t: { iat: number; lifetime: number; jti: string }) {
  return { key: { kid: key.kid, privateJwk: key.privateJwk }, issuer, now: () => t.iat * 1000, lifetimeSec: t.lifetime, jti: t.jti }
}

async function material(): Promise<Material> {
  const ap = { ...(await testKey(RAW_KEYS.agentProvider, KID.ap)), kid: KID.ap }
  const ps = { ...(await testKey(RAW_KEYS.personServer, KID.ps)), kid: KID.ps }
  const as = { ...(await testKey(RAW_KEYS.accessServer, KID.as)), kid: KID.as }
  const rs = { ...(await testKey(RAW_KEYS.resource, KID.rs)), kid: KID.rs }
  const agent = await testKey(RAW_KEYS.agent)
  const agentOther = await testKey(RAW_KEYS.agentOther)
  // Person and auth tokens: for the resource, about the person, bound to the agent key.
  const forResource = { aud: RS, sub: PERSON_SUB, cnfJwk: agent.publicJwk }
  const agentToken = await createAgentToken({ ...issuance(ap, AP, AGENT_TOKEN), sub: AGENT_ID, cnfJwk: agent.publicJwk, ps: PS })
  const personToken = await createPersonToken({ ...issuance(ps, PS, PERSON_TOKEN), ...forResource })
  const resourceToken = await createResourceToken({
    ...issuance(rs, RS, RESOURCE_TOKEN),
    aud: PS,
    ps: PS,
    sub: PERSON_SUB,
    presentedJti: PERSON_TOKEN.jti,
    agentJkt: agent.thumbprint,
    scope: 'flights:read bookings:write',
  })
  const authTokenPs = await createAuthToken({ ...issuance(ps, PS, AUTH_TOKEN_PS), issuerRole: 'person', ...forResource, ps: PS, scope: 'flights:read bookings:write' })
  const authTokenAs = await createAuthToken({ ...issuance(as, AS, AUTH_TOKEN_AS), issuerRole: 'access', ...forResource, ps: PS, scope: 'flights:read' })
  return { ap, ps, as, rs, agent, agentOther, agentToken, personToken, resourceToken, authTokenPs, authTokenAs }
}

/** The members of a token vector about the token itself: its issuer and key, the token taken apart, the issuer's documents. */
function issuedToken(
  issuer: string,
  issuerKey: TestKey & { kid: string },
  jwt: string,
  network: Network,
  issuerRole?: 'person' | 'access',
): Pick<TokenVector, 'input' | 'output' | 'network'> {
  return { input: { issuer, issuerKey, ...(issuerRole === undefined ? {} : { issuerRole }) }, output: tokenOutput(jwt), network }
}

function tokenFile(tokenType: string, description: string, vectors: TokenVector[]): VectorFile {
  return { kind: 'token', tokenType, description, generatedBy: GENERATED_BY, vectors }
}

function tokenFiles(m: Material): Record<string, VectorFile> {
  const expired = (now: number): TokenCheck => ({ title: 'at exp the token has expired (no leeway on exp)', now, expected: { valid: false, error: 'expired_jwt' } })
  /** A person or auth token checked by the resource it names: valid there, [not valid elsewhere,] expired at `exp`. */
  const atResource = (exp: number, otherAudience: boolean): TokenCheck[] => [
    { title: 'valid at the resource it names', now: T0 + 300, audience: RS, expected: { valid: true } },
    ...(otherAudience ? [{ title: 'another resource is not the audience', now: T0 + 300, audience: 'https://other.example', expected: { valid: false, error: 'invalid_jwt' } } as const] : []),
    { ...expired(exp), audience: RS },
  ]
  const psNetwork = issuerDocs(PS, 'aauth-person.json', [jwksEntry(RAW_KEYS.personServer, KID.ps)], PS_EXTRA)
  const agentExp = AGENT_TOKEN.iat + AGENT_TOKEN.lifetime
  const personExp = PERSON_TOKEN.iat + PERSON_TOKEN.lifetime
  const authPsExp = AUTH_TOKEN_PS.iat + AUTH_TOKEN_PS.lifetime
  const authAsExp = AUTH_TOKEN_AS.iat + AUTH_TOKEN_AS.lifetime
  return {
    'token-agent.json': tokenFile('aa-agent+jwt', 'An agent token issued by an agent provider, binding the agent key in cnf.jwk.', [
      {
        id: 'token-agent',
        title: 'agent token with sub, ps and cnf.jwk',
        spec: [`${MAIN}#agent-token-structure`, `${MAIN}#common-claims`, 'CHECKLIST TOK-AG-01..05'],
        ...issuedToken(AP, m.ap, m.agentToken, apNetwork()),
        checks: [
          { title: 'valid inside its lifetime', now: T0 + 300, expected: { valid: true } },
          { title: 'valid one second before exp', now: agentExp - 1, expected: { valid: true } },
          expired(agentExp),
        ],
      },
    ]),
    'token-person.json': tokenFile('aa-person+jwt', 'A person token issued by a person server for one resource (aud).', [
      {
        id: 'token-person',
        title: 'person token for https://api.example, bound to the agent key',
        spec: [`${MAIN}#person-token-structure`, `${MAIN}#person-token-verification`, 'CHECKLIST TOK-PT-01..05'],
        ...issuedToken(PS, m.ps, m.personToken, psNetwork),
        checks: atResource(personExp, true),
      },
    ]),
    'token-resource.json': tokenFile('aa-resource+jwt', 'A resource token: no cnf, bound to the agent key by agent_jkt.', [
      {
        id: 'token-resource',
        title: 'resource token for the person server, agent_jkt = thumbprint of the agent key',
        spec: [`${MAIN}#resource-token-structure`, `${MAIN}#resource-token-verification`, 'CHECKLIST TOK-RT-01..04'],
        ...issuedToken(RS, m.rs, m.resourceToken, issuerDocs(RS, 'aauth-resource.json', [jwksEntry(RAW_KEYS.resource, KID.rs)], { authorization_endpoint: `${RS}/authorize` })),
        checks: [
          { title: 'valid at the PS (aud) for the signing key', now: T0 + 150, audience: PS, agentJkt: m.agent.thumbprint, expected: { valid: true } },
          { title: 'valid at the agent (iss is the resource it called)', now: T0 + 150, issuer: RS, agentJkt: m.agent.thumbprint, expected: { valid: true } },
          { title: 'agent_jkt does not match another signing key', now: T0 + 150, audience: PS, agentJkt: m.agentOther.thumbprint, expected: { valid: false, error: 'invalid_jwt' } },
          { ...expired(RESOURCE_TOKEN.iat + RESOURCE_TOKEN.lifetime), audience: PS },
        ],
      },
    ]),
    'token-auth.json': tokenFile('aa-auth+jwt', 'Auth tokens issued by a person server (three-party) and by an access server (four-party).', [
      {
        id: 'token-auth-ps',
        title: 'auth token issued by the person server (ps = iss, dwk aauth-person.json)',
        spec: [`${MAIN}#auth-token-structure`, `${MAIN}#auth-token-verification`, 'CHECKLIST TOK-AT-01..05'],
        ...issuedToken(PS, m.ps, m.authTokenPs, psNetwork, 'person'),
        checks: atResource(authPsExp, true),
      },
      {
        id: 'token-auth-as',
        title: 'auth token issued by an access server (dwk aauth-access.json)',
        spec: [`${MAIN}#auth-token-structure`, `${MAIN}#auth-token-verification`, 'CHECKLIST TOK-AT-01..05'],
        ...issuedToken(AS, m.as, m.authTokenAs, issuerDocs(AS, 'aauth-access.json', [jwksEntry(RAW_KEYS.accessServer, KID.as)], AS_EXTRA), 'access'),
        checks: atResource(authAsExp, false),
      },
    ]),
  }
}

// ---------------------------------------------------------------------------------------------
// Signed requests
// ---------------------------------------------------------------------------------------------

async function requestVector(
  m: Material,
  v: { id: string; title: string; spec: string[]; request: HttpRequestData; created: number; now: number; verifier: VerifierConfig },
): Promise<RequestVector> {
  const signer = await createSigner(m.agent.privateJwk)
  const body = v.request.body === null ? undefined : new TextEncoder().encode(v.request.body)
  const signed = await signRequest(
    { method: v.request.method, url: v.request.url, headers: new Headers(v.request.headers) },
    {
      signer,
      signatureKey: { scheme: 'jwt', jwt: m.agentToken, cache: false },
      label: 'sig',
      now: () => v.created * 1000,
      exposeBase: true,
      ...(body === undefined ? {} : { body }),
    },
  )
  const headers: Record<string, string> = {}
  for (const name of ['content-digest', 'signature-key', 'signature-input', 'signature']) {
    const value = signed.headers.get(name)
    if (value !== null) headers[name] = value
  }
  return {
    id: v.id,
    title: v.title,
    spec: v.spec,
    input: {
      request: v.request,
      label: 'sig',
      created: v.created,
      agentKey: m.agent,
      signatureKey: { scheme: 'jwt', jwt: m.agentToken, tokenType: 'aa-agent+jwt', issuer: AP, kid: m.ap.kid },
    },
    output: { coveredComponents: [...signed.components], signatureBase: signed.signatureBase!, headers },
    now: v.now,
    verifier: v.verifier,
    network: apNetwork(),
    expected: { valid: true, agent: AGENT_ID, tokenType: 'aa-agent+jwt', label: 'sig', created: v.created, thumbprint: m.agent.thumbprint },
  }
}

async function requestFiles(m: Material): Promise<Record<string, VectorFile>> {
  const get = await requestVector(m, {
    id: 'aauth-signed-get',
    title: 'GET with a query, signed by the agent key, agent token in Signature-Key',
    spec: [`${MAIN}#covered-components`, `${MAIN}#verification`, `${SK}#3.8`, 'CHECKLIST SIG-01 SIG-02 SIG-06 SIG-09'],
    request: { method: 'GET', url: `${RS}/flights?from=SFO&to=SYD&date=2026-01-05`, headers: { accept: 'application/json' }, body: null },
    created: T0 + 300,
    now: T0 + 302,
    verifier: { audience: RS },
  })
  const post = await requestVector(m, {
    id: 'aauth-signed-post',
    title: 'POST with a JSON body to a PS endpoint: content-type and content-digest covered',
    spec: [`${MAIN}#covered-components`, `${MAIN}#verification`, 'RFC 9530', 'CHECKLIST SIG-03'],
    request: {
      method: 'POST',
      url: `${PS}/token`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resource_token: m.resourceToken }),
    },
    created: T0 + 310,
    now: T0 + 311,
    verifier: { audience: PS, requireBodyComponents: true },
  })
  const file = (description: string, v: RequestVector): VectorFile => ({ kind: 'request', description, generatedBy: GENERATED_BY, vectors: [v] })
  return {
    'aauth-signed-get.json': file('A signed AAuth GET request (agent token, query string).', get),
    'aauth-signed-post.json': file('A signed AAuth POST request with a JSON body and Content-Digest.', post),
  }
}

// ---------------------------------------------------------------------------------------------
// Negative vectors
// ---------------------------------------------------------------------------------------------

/** Now for every negative vector; tokens are valid from T0 to T0 + 3600. */
const N = T0 + 600
const REJECT_SCHEME = { 'accept-signature-scheme': 'jwt' }
const REJECT_ALG = { 'accept-signature-alg': 'Ed25519, ES256' }
const BASE_REQUIRED = ['@method', '@authority', '@path', 'signature-key']

function reject(error: SignatureErrorCode, extra: Record<string, string> = {}, requiredInput?: string[]): Expected {
  const se = requiredInput === undefined ? `error=${error}` : `error=${error}, required_input=(${requiredInput.map((c) => `"${c}"`).join(' ')})`
  return { valid: false, error, responseHeaders: { 'signature-error': se, ...extra } }
}

const ACCEPT: Expected = { valid: true, agent: AGENT_ID }

type Key = { x: string; d: string }

interface TokenSpec {
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  drop?: string[]
  key?: JwsKey
}

function agentClaims(id: string, agentPub: PublicJwk): Record<string, unknown> {
  return { iss: AP, dwk: 'aauth-agent.json', jti: `neg-${id}`, iat: T0, exp: T0 + 3600, sub: AGENT_ID, ps: PS, cnf: { jwk: agentPub } }
}

function token(typ: string, kid: string, base: Record<string, unknown>, key: Key, spec: TokenSpec = {}): string {
  const claims: Record<string, unknown> = { ...base, ...spec.claims }
  for (const k of spec.drop ?? []) delete claims[k]
  return compactJws({ typ, alg: 'Ed25519', kid, ...spec.header }, claims, spec.key ?? { ed25519: key })
}

interface Draft {
  method: string
  url: string
  headers: Record<string, string>
  body?: string
}

interface SignSpec {
  /** Literal Signature-Key value. */
  signatureKey: string
  signer: Signer
  label?: string
  /** Covered components; default: what the library signs for this request. */
  components?: string[]
  params?: SignatureParameters
}

/** Signs `draft` with arbitrary components and parameters; returns the literal request. */
async function signLiteral(draft: Draft, s: SignSpec): Promise<HttpRequestData> {
  const headers: Record<string, string> = { ...draft.headers }
  const body = draft.body === undefined ? undefined : new TextEncoder().encode(draft.body)
  if (body !== undefined) headers['content-digest'] = await createContentDigest(body)
  headers['signature-key'] = s.signatureKey
  const names = s.components ?? profileComponents(new URL(draft.url), new Headers(headers), body !== undefined)
  const comps = components(names)
  const params = signatureParamsMap(s.params ?? { created: N - 5 })
  const base = await createSignatureBase(messageView({ method: draft.method, url: draft.url, headers }), comps, params)
  const label = s.label ?? 'sig'
  const sig = s.signer.signSync!(new TextEncoder().encode(base))
  headers['signature-input'] = `${label}=${serializeSignatureParams(comps, params)}`
  headers['signature'] = `${label}=:${Buffer.from(sig).toString('base64')}:`
  return { method: draft.method, url: draft.url, headers, body: draft.body ?? null }
}

function jwtKey(jwt: string): string {
  return `sig=jwt;jwt="${jwt}"`
}

const GET: Draft = { method: 'GET', url: `${RS}/flights?to=SYD`, headers: { accept: 'application/json' } }
const POST: Draft = { method: 'POST', url: `${PS}/token`, headers: { 'content-type': 'application/json' }, body: '{"resource_token":"placeholder"}' }

function negativeNetwork(): Network {
  const pq = { kty: 'AKP', alg: 'ML-DSA-44', kid: 'ap-pq-1', pub: b64url(Buffer.alloc(1312, 7)) }
  return {
    ...issuerDocs(AP, 'aauth-agent.json', [
      jwksEntry(RAW_KEYS.agentProvider, KID.ap),
      // NEG-ALG-12: same key published without alg under another kid.
      { kty: 'OKP', crv: 'Ed25519', x: RAW_KEYS.agentProvider.x, kid: 'ap-key-noalg', use: 'sig' },
      // NEG-ALG-13: a key type the verifier does not implement, never selected.
      pq,
    ]),
    ...issuerDocs(PS, 'aauth-person.json', [jwksEntry(RAW_KEYS.personServer, KID.ps)], PS_EXTRA),
    ...issuerDocs(RS, 'aauth-resource.json', [jwksEntry(RAW_KEYS.resource, KID.rs)]),
    // NEG-META-01: no issuer member.
    [wellKnown('https://noissuer.example', 'aauth-agent.json')]: { jwks_uri: jwksUri('https://noissuer.example') },
    // NEG-META-02: issuer names another host.
    [wellKnown('https://rogue.example', 'aauth-agent.json')]: { issuer: 'https://evil.example', jwks_uri: jwksUri('https://rogue.example') },
    // NEG-META-03: issuer differs by a trailing slash only.
    [wellKnown('https://slash.example', 'aauth-agent.json')]: { issuer: 'https://slash.example/', jwks_uri: jwksUri('https://slash.example') },
    // NEG-SIG-24: a person server whose metadata names another issuer than the jwks_uri id.
    [wellKnown('https://ps2.example', 'aauth-person.json')]: {
      issuer: 'https://ps.example',
      jwks_uri: jwksUri('https://ps2.example'),
      auth_token_endpoint: 'https://ps2.example/token',
      person_token_endpoint: 'https://ps2.example/person-token',
    },
    [jwksUri('https://ps2.example')]: { keys: [jwksEntry(RAW_KEYS.rogue, 'ps2-key-1')] },
  }
}

interface NegSpec {
  id: string
  title: string
  spec: string[]
  build: () => Promise<HttpRequestData>
  verifier?: Partial<VerifierConfig>
  expected: Expected
}

async function negativeFile(m: Material): Promise<VectorFile> {
  const A = RAW_KEYS.agent
  const signerA = await createSigner(m.agent.privateJwk)
  const signerB = await createSigner(m.agentOther.privateJwk)
  const apKey: Key = RAW_KEYS.agentProvider
  const agentTok = (id: string, spec: TokenSpec = {}): string => token('aa-agent+jwt', KID.ap, agentClaims(id, m.agent.publicJwk), apKey, spec)
  const cnf = (id: string, jwk: Record<string, unknown>): string => agentTok(id, { claims: { cnf: { jwk } } })
  /** A GET signed by the agent key, its agent token changed by `spec`. */
  const getWith = (jwt: string, s: Partial<SignSpec> = {}): Promise<HttpRequestData> => signLiteral(GET, { signatureKey: jwtKey(jwt), signer: signerA, ...s })
  const personClaims = (id: string): Record<string, unknown> => ({
    iss: PS, dwk: 'aauth-person.json', jti: `neg-${id}`, iat: T0, exp: T0 + 3600, aud: RS, sub: PERSON_SUB, cnf: { jwk: m.agent.publicJwk },
  })
  const drop = async (r: Promise<HttpRequestData>, name: string): Promise<HttpRequestData> => {
    const req = await r
    const headers = { ...req.headers }
    delete headers[name]
    return { ...req, headers }
  }

  const specs: NegSpec[] = [
    // 6.1 HTTP signature and Signature-Key
    {
      id: 'NEG-SIG-01', title: 'the Signature header is missing', spec: [`${MAIN}#verification`],
      build: () => drop(getWith(agentTok('sig-01')), 'signature'), expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-02', title: 'signature-key is not a covered component', spec: [`${MAIN}#covered-components`, `${MAIN}#verification`],
      build: () => getWith(agentTok('sig-02'), { components: ['@method', '@authority', '@path', '@query'] }),
      expected: reject('invalid_input', {}, BASE_REQUIRED),
    },
    {
      id: 'NEG-SIG-03', title: 'POST with a body to a PS endpoint leaves content-digest uncovered', spec: [`${MAIN}#covered-components`],
      build: () => signLiteral(POST, { signatureKey: jwtKey(agentTok('sig-03')), signer: signerA, components: ['@method', '@authority', '@path', 'signature-key', 'content-type'] }),
      verifier: { audience: PS, requireBodyComponents: true },
      expected: reject('invalid_input', {}, [...BASE_REQUIRED, 'content-type', 'content-digest']),
    },
    {
      id: 'NEG-SIG-04', title: 'Authorization: AAuth is present but authorization is not covered', spec: [`${MAIN}#covered-components`],
      build: () => signLiteral(
        { ...GET, headers: { ...GET.headers, authorization: 'AAuth session-0001' } },
        { signatureKey: jwtKey(agentTok('sig-04')), signer: signerA, components: ['@method', '@authority', '@path', '@query', 'signature-key'] },
      ),
      expected: reject('invalid_input', {}, [...BASE_REQUIRED, 'authorization']),
    },
    {
      id: 'NEG-SIG-05', title: 'the resource requires date (additional_signature_components) and it is not covered', spec: [`${MAIN}#covered-components`, `${MAIN}#resource-metadata`],
      build: () => signLiteral({ ...GET, headers: { ...GET.headers, date: 'Thu, 01 Jan 2026 00:09:55 GMT' } }, { signatureKey: jwtKey(agentTok('sig-05')), signer: signerA }),
      verifier: { additionalComponents: ['date'] },
      expected: reject('invalid_input', {}, [...BASE_REQUIRED, 'date']),
    },
    {
      id: 'NEG-SIG-06', title: 'created is 61 s before the verifier clock (window 60 s)', spec: [`${MAIN}#verification`, `${MAIN}#freshness-and-replay`],
      build: () => getWith(agentTok('sig-06'), { params: { created: N - 61 } }), expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-07', title: 'created is 61 s ahead of the verifier clock', spec: [`${MAIN}#verification`],
      build: () => getWith(agentTok('sig-07'), { params: { created: N + 61 } }), expected: reject('clock_skew'),
    },
    {
      id: 'NEG-SIG-08', title: 'Signature-Input has no created parameter', spec: [`${MAIN}#signature-parameters`, `${MAIN}#verification`],
      build: () => getWith(agentTok('sig-08'), { params: {} }), expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-09', title: 'expires is in the past', spec: [`${MAIN}#freshness-and-replay`],
      build: () => getWith(agentTok('sig-09'), { params: { created: N - 10, expires: N - 1 } }), expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-11', title: 'an agent uses the hwk scheme', spec: [`${MAIN}#keying-material`, `${MAIN}#scheme-rejection`, `${SK}#3.4`],
      build: () => getWith('', { signatureKey: `sig=hwk;kty="OKP";crv="Ed25519";x="${A.x}"` }),
      expected: reject('unsupported_scheme', REJECT_SCHEME),
    },
    {
      id: 'NEG-SIG-12/jwks_uri', title: 'an agent uses the jwks_uri scheme', spec: [`${MAIN}#keying-material`, `${MAIN}#scheme-rejection`],
      build: () => getWith('', { signatureKey: `sig=jwks_uri;id="${AP}";dwk="aauth-agent.json";kid="${KID.ap}"` }),
      expected: reject('unsupported_scheme', REJECT_SCHEME),
    },
    {
      id: 'NEG-SIG-12/foo', title: 'an unregistered scheme foo', spec: [`${MAIN}#verification`, `${SK}#3`],
      build: () => getWith('', { signatureKey: 'sig=foo;bar="baz"' }),
      expected: reject('unsupported_scheme', REJECT_SCHEME),
    },
    {
      id: 'NEG-SIG-13', title: 'Signature-Key labels its member sig2 while the signature is labelled sig', spec: [`${SK}#3.1`],
      build: () => getWith('', { signatureKey: `sig2=jwt;jwt="${agentTok('sig-13')}"` }), expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-14', title: 'the jwt parameter is not a compact JWT', spec: [`${SK}#3.8`],
      build: () => getWith('not-a-jwt'), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-SIG-15', title: 'signed by key B while the agent token confirms key A', spec: [`${MAIN}#verification`, 'RFC 7800'],
      build: () => getWith(agentTok('sig-15'), { signer: signerB }), expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-16/signature', title: 'one bit of the signature is flipped', spec: [`${MAIN}#verification`],
      build: async () => {
        const req = await getWith(agentTok('sig-16a'))
        const sig = Buffer.from(/^sig=:(.*):$/.exec(req.headers['signature']!)![1]!, 'base64')
        sig[10] = sig[10]! ^ 0x01
        return { ...req, headers: { ...req.headers, signature: `sig=:${sig.toString('base64')}:` } }
      },
      expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-16/body', title: 'the body changed after signing (Content-Digest no longer matches)', spec: [`${MAIN}#covered-components`, 'RFC 9530'],
      build: async () => ({ ...(await signLiteral(POST, { signatureKey: jwtKey(agentTok('sig-16b')), signer: signerA })), body: '{"resource_token":"placeholdeR"}' }),
      verifier: { audience: PS, requireBodyComponents: true },
      expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-17', title: 'an alg="ed25519" signature parameter is ignored, the request verifies', spec: [`${MAIN}#signature-parameters`],
      build: () => getWith(agentTok('sig-17'), { params: { created: N - 5, alg: 'ed25519' } }), expected: ACCEPT,
    },
    {
      id: 'NEG-SIG-18', title: 'keyid names another key than Signature-Key', spec: [`${MAIN}#signature-parameters`],
      build: () => getWith(agentTok('sig-18'), { params: { created: N - 5, keyid: 'some-other-key' } }), expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-SIG-20', title: 'agent token iat 120 s ahead and the verifier applies the iat bound', spec: [`${MAIN}#common-verification`],
      build: () => getWith(agentTok('sig-20', { claims: { iat: N + 120, exp: N + 3600 } })),
      verifier: { iatBound: true },
      expected: reject('clock_skew'),
    },
    {
      id: 'NEG-SIG-21', title: 'the agent token is revoked at the verifier', spec: [`${MAIN}#verification`, `${MAIN}#token-revocation`],
      build: () => getWith(agentTok('sig-21')),
      verifier: { revoked: [{ iss: AP, jti: 'neg-sig-21' }] },
      expected: reject('revoked_jwt'),
    },
    {
      id: 'NEG-SIG-22', title: 'the cached scheme is not accepted by an AAuth verifier', spec: [`${SK}#3.11`, `${MAIN}#scheme-rejection`],
      build: () => getWith('', { signatureKey: 'sig=cached;cid="c-0001"' }), expected: reject('unsupported_scheme', REJECT_SCHEME),
    },
    {
      id: 'NEG-SIG-23', title: 'an extra Signature-Key member for another label is ignored, the request verifies', spec: [`${SK}#3.2`],
      build: () => getWith('', { signatureKey: `sig=jwt;jwt="${agentTok('sig-23')}", sig9=frob;x=1` }), expected: ACCEPT,
    },
    {
      id: 'NEG-SIG-24', title: 'server signature (jwks_uri) whose metadata issuer is not the id', spec: [`${MAIN}#keying-material`, `${SK}#3.6`],
      build: async () => signLiteral(
        { ...POST, url: `${AS}/token` },
        { signatureKey: 'sig=jwks_uri;id="https://ps2.example";dwk="aauth-person.json";kid="ps2-key-1"', signer: await createSigner(privateJwk(RAW_KEYS.rogue)) },
      ),
      verifier: { audience: AS, requireBodyComponents: true, acceptServerSignatures: true },
      expected: reject('issuer_mismatch'),
    },
    // 6.2 Algorithms and keys
    {
      id: 'NEG-ALG-01', title: 'agent token with alg none (empty signature)', spec: [`${MAIN}#common-claims`],
      build: () => getWith(agentTok('alg-01', { header: { alg: 'none' }, key: 'none' })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-ALG-01/signed', title: 'agent token with alg none but a real Ed25519 signature', spec: [`${MAIN}#common-claims`],
      build: () => getWith(agentTok('alg-01b', { header: { alg: 'none' } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-ALG-02', title: 'agent token with the polymorphic alg EdDSA', spec: [`${MAIN}#signature-algorithms`],
      build: () => getWith(agentTok('alg-02', { header: { alg: 'EdDSA' } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-ALG-03', title: 'agent token with alg HS256 keyed with the issuer public key', spec: [`${MAIN}#signature-algorithms`],
      build: () => getWith(agentTok('alg-03', { header: { alg: 'HS256' }, key: { hmac: Buffer.from(apKey.x, 'base64url') } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-ALG-04', title: 'cnf.jwk has no alg', spec: [`${MAIN}#signature-algorithms`, `${SK}#3.3`],
      build: () => getWith(cnf('alg-04', { kty: 'OKP', crv: 'Ed25519', x: A.x })), expected: reject('unsupported_algorithm', REJECT_ALG),
    },
    {
      id: 'NEG-ALG-05', title: 'cnf.jwk alg is EdDSA', spec: [`${MAIN}#signature-algorithms`],
      build: () => getWith(cnf('alg-05', { kty: 'OKP', crv: 'Ed25519', x: A.x, alg: 'EdDSA' })), expected: reject('unsupported_algorithm', REJECT_ALG),
    },
    {
      id: 'NEG-ALG-06', title: 'cnf.jwk is a P-256 key labelled alg Ed25519', spec: [`${MAIN}#signature-algorithms`, `${SK}#3.3`],
      build: () => getWith(cnf('alg-06', { kty: 'EC', crv: 'P-256', x: FOREIGN.p256.x, y: FOREIGN.p256.y, alg: 'Ed25519' })), expected: reject('invalid_key'),
    },
    {
      id: 'NEG-ALG-07', title: 'cnf.jwk is an Ed448 key labelled alg Ed25519', spec: [`${MAIN}#signature-algorithms`],
      build: () => getWith(cnf('alg-07', { kty: 'OKP', crv: 'Ed448', x: FOREIGN.ed448.x, alg: 'Ed25519' })), expected: reject('invalid_key'),
    },
    {
      id: 'NEG-ALG-08', title: 'cnf.jwk is a symmetric key', spec: [`${MAIN}#signature-algorithms`],
      build: () => getWith(cnf('alg-08', { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0', alg: 'HS256' })), expected: reject('unsupported_algorithm', REJECT_ALG),
    },
    {
      id: 'NEG-ALG-09', title: 'cnf.jwk OKP key without x', spec: [`${SK}#7.1`],
      build: () => getWith(cnf('alg-09', { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519' })), expected: reject('invalid_key'),
    },
    {
      id: 'NEG-ALG-10', title: 'cnf.jwk x decodes to 31 bytes', spec: [`${SK}#7.1`],
      build: () => getWith(cnf('alg-10', { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519', x: A.x.slice(0, 41) })), expected: reject('invalid_key'),
    },
    {
      id: 'NEG-ALG-11', title: 'cnf.jwk alg ES512 at a verifier accepting Ed25519 and ES256', spec: [`${MAIN}#verification`],
      build: () => getWith(cnf('alg-11', { kty: 'EC', crv: 'P-521', x: FOREIGN.p521.x, y: FOREIGN.p521.y, alg: 'ES512' })), expected: reject('unsupported_algorithm', REJECT_ALG),
    },
    {
      id: 'NEG-ALG-12', title: 'the issuer JWKS key selected by kid has no alg', spec: [`${MAIN}#jwks-discovery`],
      build: () => getWith(agentTok('alg-12', { header: { kid: 'ap-key-noalg' } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-ALG-13', title: 'the issuer JWKS also holds an ML-DSA key that kid does not select, the request verifies', spec: [`${MAIN}#jwks-discovery`],
      build: () => getWith(agentTok('alg-13')), expected: ACCEPT,
    },
    {
      id: 'NEG-ALG-14', title: 'cnf.jwk is an ML-DSA (AKP) key at a verifier without ML-DSA', spec: [`${MAIN}#verification`],
      build: () => getWith(cnf('alg-14', { kty: 'AKP', alg: 'ML-DSA-44', pub: b64url(Buffer.alloc(1312, 9)) })), expected: reject('unsupported_algorithm', REJECT_ALG),
    },
    // 6.3 Issuer, metadata and JWKS
    {
      id: 'NEG-META-01', title: 'the agent provider metadata has no issuer', spec: [`${MAIN}#metadata-documents`, `${SK}#3.6`],
      build: () => getWith(agentTok('meta-01', { claims: { iss: 'https://noissuer.example', sub: 'aauth:bot@noissuer.example' } })), expected: reject('issuer_missing'),
    },
    {
      id: 'NEG-META-02', title: 'the agent provider metadata names https://evil.example as issuer', spec: [`${MAIN}#metadata-documents`],
      build: () => getWith(agentTok('meta-02', { claims: { iss: 'https://rogue.example', sub: 'aauth:bot@rogue.example' }, key: { ed25519: RAW_KEYS.rogue } })), expected: reject('issuer_mismatch'),
    },
    {
      id: 'NEG-META-03', title: 'the metadata issuer differs by a trailing slash', spec: [`${MAIN}#metadata-documents`],
      build: () => getWith(agentTok('meta-03', { claims: { iss: 'https://slash.example', sub: 'aauth:bot@slash.example' }, key: { ed25519: RAW_KEYS.rogue } })), expected: reject('issuer_mismatch'),
    },
    {
      id: 'NEG-META-04', title: 'the token kid is not in the issuer JWKS', spec: [`${MAIN}#jwks-discovery`],
      build: () => getWith(agentTok('meta-04', { header: { kid: 'ap-key-9' } })), expected: reject('unknown_key'),
    },
    {
      id: 'NEG-META-05', title: 'the key selected by kid does not verify the token', spec: [`${MAIN}#jwks-discovery`],
      build: () => getWith(agentTok('meta-05', { key: { ed25519: RAW_KEYS.agentOther } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-META-07', title: 'agent token with dwk aauth-resource.json', spec: [`${MAIN}#common-verification`],
      build: () => getWith(agentTok('meta-07', { claims: { dwk: 'aauth-resource.json' } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-META-08', title: 'agent token iss uses http://', spec: [`${MAIN}#server-identifiers`, `${MAIN}#common-verification`],
      build: () => getWith(agentTok('meta-08', { claims: { iss: 'http://agents.example' } })), expected: reject('invalid_jwt'),
    },
    // 6.4 JWT lifetime and type
    {
      id: 'NEG-TOK-01', title: 'agent token expired an hour ago', spec: [`${MAIN}#common-verification`],
      build: () => getWith(agentTok('tok-01', { claims: { iat: N - 7200, exp: N - 3600 } })), expected: reject('expired_jwt'),
    },
    {
      id: 'NEG-TOK-03', title: 'agent token iat 120 s ahead is accepted when no iat bound applies', spec: [`${MAIN}#common-verification`],
      build: () => getWith(agentTok('tok-03', { claims: { iat: N + 120, exp: N + 3600 } })), expected: ACCEPT,
    },
    {
      id: 'NEG-TOK-04', title: 'agent token with typ JWT', spec: [`${MAIN}#common-claims`],
      build: () => getWith(agentTok('tok-04', { header: { typ: 'JWT' } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-TOK-07', title: 'a resource token presented in Signature-Key', spec: [`${MAIN}#keying-material`],
      build: () => getWith(m.resourceToken), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-TOK-08', title: 'agent token parent_agent is not an agent identifier', spec: [`${MAIN}#sub-agent-identity`],
      build: () => getWith(agentTok('tok-08', { claims: { parent_agent: 'not an id' } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-TOK-09', title: 'agent token ps uses http://', spec: [`${MAIN}#agent-token-structure`],
      build: () => getWith(agentTok('tok-09', { claims: { ps: 'http://ps.example' } })), expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-TOK-10', title: 'agent token sub has a space in the local part', spec: [`${MAIN}#agent-identifiers`],
      build: () => getWith(agentTok('tok-10', { claims: { sub: 'aauth:My Agent@agents.example' } })), expected: reject('invalid_jwt'),
    },
    // 6.5 Resource-side token checks
    {
      id: 'NEG-RES-01', title: 'person token for another resource', spec: [`${MAIN}#person-token-verification`],
      build: () => getWith(token('aa-person+jwt', KID.ps, personClaims('res-01'), RAW_KEYS.personServer, { claims: { aud: 'https://other.example' } })),
      expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-RES-02', title: 'person token confirms key A, request signed by key B', spec: [`${MAIN}#person-token-verification`],
      build: () => getWith(token('aa-person+jwt', KID.ps, personClaims('res-02'), RAW_KEYS.personServer), { signer: signerB }),
      expected: reject('invalid_signature'),
    },
    {
      id: 'NEG-RES-06', title: 'auth token with dwk aauth-agent.json', spec: [`${MAIN}#auth-token-verification`],
      build: () => getWith(token('aa-auth+jwt', KID.ps, { ...personClaims('res-06'), dwk: 'aauth-agent.json', ps: PS, scope: 'flights:read' }, RAW_KEYS.personServer)),
      expected: reject('invalid_jwt'),
    },
    {
      id: 'NEG-RES-09', title: 'a revoked auth token', spec: [`${MAIN}#auth-token-verification`, `${MAIN}#token-revocation`],
      build: () => getWith(token('aa-auth+jwt', KID.ps, { ...personClaims('res-09'), ps: PS, scope: 'flights:read' }, RAW_KEYS.personServer)),
      verifier: { revoked: [{ iss: PS, jti: 'neg-res-09' }] },
      expected: reject('revoked_jwt'),
    },
    {
      id: 'NEG-RES-11', title: 'a bare bearer credential without any signature headers', spec: [`${MAIN}#verification`],
      build: async () => ({ method: GET.method, url: GET.url, headers: { ...GET.headers, authorization: 'Bearer session-0001' }, body: null }),
      expected: reject('invalid_signature'),
    },
  ]

  const vectors: NegativeVector[] = []
  for (const s of specs) {
    vectors.push({
      id: s.id,
      checklist: s.id.split('/')[0]!,
      title: s.title,
      spec: s.spec,
      request: await s.build(),
      now: N,
      verifier: { audience: RS, ...s.verifier },
      expected: s.expected,
    })
  }
  return {
    kind: 'negative',
    description:
      'Requests a verifier must reject with the given Signature-Error code, plus a few edge cases it must accept (expected.valid = true). ids are CHECKLIST Part 6 ids.',
    generatedBy: GENERATED_BY,
    network: negativeNetwork(),
    vectors,
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/** Builds every vector file in memory: `file name → document`. Deterministic. */
export async function generateVectors(): Promise<Record<string, VectorFile>> {
  const m = await material()
  return {
    'rfc9421-b26.json': await rfc9421(),
    ...(await requestFiles(m)),
    ...tokenFiles(m),
    'negative.json': await negativeFile(m),
  }
}

/** The directory the CLI writes to. */
export const VECTORS_DIR = fileURLToPath(new URL('../spec/vectors/', import.meta.url))

/** Serialization used for the committed files. */
export function serializeVectorFile(doc: VectorFile): string {
  return `${JSON.stringify(doc, null, 2)}\n`
}

async function main(): Promise<void> {
  const files = await generateVectors()
  await mkdir(VECTORS_DIR, { recursive: true })
  for (const [name, doc] of Object.entries(files)) {
    await writeFile(resolve(VECTORS_DIR, name), serializeVectorFile(doc))
    process.stdout.write(`wrote spec/vectors/${name} (${doc.vectors.length} vector${doc.vectors.length === 1 ? '' : 's'})\n`)
  }
  // The extended set (scripts/vectors/, built without the library) goes next to it.
  const extended = writeVectorFiles(EXTENDED_VECTORS_DIR).files
  for (const [name, doc] of Object.entries(extended)) {
    const { vectors, keys } = doc as { vectors?: unknown[]; keys?: Record<string, unknown> }
    const count = vectors === undefined ? `${Object.keys(keys ?? {}).length} keys` : `${vectors.length} vectors`
    process.stdout.write(`wrote spec/vectors/extended/${name} (${count})\n`)
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main()
}
