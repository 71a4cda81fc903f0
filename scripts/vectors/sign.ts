/**
 * Signing vectors: an unsigned request, the agent's key and token, a clock → the exact components,
 * signature base and headers an AAuth signer must produce (main draft §Signing (Agent),
 * §Covered Components, §Signature Parameters).
 */
import type { SignVector, VectorFile } from './types.js'
import type { SignatureMemo } from './crypto.js'
import { agentToken, KEYS, personToken, signedRequest, T, type KeyName, type RequestOptions } from './world.js'

const ADDED = ['content-digest', 'signature-key', 'signature-input', 'signature'] as const

/** An ES256 agent: its own key in the token's `cnf.jwk`. */
export const ES256_AGENT: RequestOptions = {
  key: 'agent-es256',
  jwt: agentToken({ payload: { cnf: { jwk: KEYS['agent-es256'].publicJwk }, jti: 'agent-token-es256' } }),
}

interface Row {
  readonly id: string
  readonly title: string
  readonly refs: readonly string[]
  readonly opts?: RequestOptions
  readonly expires?: number
}

const ROWS: readonly Row[] = [
  { id: 'sign-get', title: 'GET without a query: the four base components', refs: ['SIG-01', 'SIG-02', 'SIG-06', 'SIG-07', 'SIG-08'] },
  { id: 'sign-get-query', title: 'GET with a query: @query is covered and keeps its leading "?"', refs: ['SIG-02'], opts: { url: 'https://api.example/flights?from=SFO&to=SYD' } },
  { id: 'sign-get-root', title: 'an origin URL with no path signs @path as "/"', refs: ['SIG-02'], opts: { url: 'https://api.example' } },
  {
    id: 'sign-post-json',
    title: 'POST with a JSON body: content-type and a sha-256 Content-Digest are covered',
    refs: ['SIG-03', 'https://www.rfc-editor.org/rfc/rfc9530'],
    opts: { url: 'https://ps.example/token', body: '{"resource_token":"eyJhbGciOiJFZDI1NTE5In0.e30.c2ln","justification":"Book SFO→SYD"}' },
  },
  {
    id: 'sign-authorization',
    title: 'a request carrying Authorization: AAuth covers authorization',
    refs: ['SIG-04', 'HDR-10'],
    opts: { headers: { authorization: 'AAuth c2Vzc2lvbi10b2tlbi0xMjM0NQ' } },
  },
  {
    id: 'sign-additional',
    title: 'components the resource asks for are appended after the profile set',
    refs: ['SIG-05', 'HDR-08'],
    opts: { headers: { 'aauth-capabilities': 'interaction, clarification' }, additionalComponents: ['aauth-capabilities'] },
  },
  { id: 'sign-label', title: 'a label other than "sig" names the Signature-Key member too', refs: ['SK-02'], opts: { label: 'aauth' } },
  { id: 'sign-expires', title: 'an optional expires parameter follows created', refs: ['SIG-15'], expires: T + 30 },
  { id: 'sign-es256', title: 'an ES256 agent key (signature is randomized: verify, do not compare)', refs: ['ALG-01'], opts: ES256_AGENT },
  { id: 'sign-person-token', title: 'a person token in Signature-Key signs the same way', refs: ['SIG-09'], opts: { jwt: personToken() } },
  {
    id: 'sign-percent-encoded',
    title: 'percent-encoded path and query are signed exactly as sent',
    refs: ['SIG-02', 'https://www.rfc-editor.org/rfc/rfc9421#section-2.2.6'],
    opts: { url: 'https://api.example/files/r%C3%A9sum%C3%A9.pdf?q=a%20b&path=%2Fdocs' },
  },
  { id: 'sign-port', title: 'a non-default port is part of @authority', refs: ['SIG-02'], opts: { url: 'https://api.example:8443/flights' } },
  { id: 'sign-default-port', title: 'the default https port is left out of @authority', refs: ['SIG-02', 'https://www.rfc-editor.org/rfc/rfc9421#section-2.2.3'], opts: { url: 'https://api.example:443/flights' } },
]

function signVector(row: Row, memo: SignatureMemo): SignVector {
  const opts: RequestOptions = { ...row.opts, ...(row.expires === undefined ? {} : { params: { created: T, expires: row.expires } }) }
  const { request, base, components } = signedRequest(opts, memo)
  const jwt = opts.jwt ?? agentToken()
  const inputHeaders = { ...(request.body === null ? {} : { 'content-type': 'application/json' }), ...opts.headers }
  const output: Record<string, string> = {}
  for (const h of ADDED) if (request.headers[h] !== undefined) output[h] = request.headers[h]
  const signer: KeyName = opts.key ?? 'agent'
  return {
    id: row.id,
    title: row.title,
    refs: row.refs,
    input: {
      now: T,
      signer,
      label: opts.label ?? 'sig',
      signatureKey: { scheme: 'jwt', jwt },
      request: { method: request.method, url: request.url, headers: inputHeaders, body: request.body },
      ...(opts.additionalComponents === undefined ? {} : { additionalComponents: opts.additionalComponents }),
      ...(row.expires === undefined ? {} : { expires: row.expires }),
    },
    output: { components, signatureBase: base, headers: output },
    deterministic: KEYS[signer].alg === 'Ed25519',
  }
}

export function signVectors(memo: SignatureMemo): VectorFile<SignVector> {
  return {
    title: 'Signing AAuth requests',
    description:
      'Each vector gives an unsigned request, the signing key (by name, see keys.json), the token for Signature-Key and the clock. A conforming signer produces exactly the listed components, signature base and headers. Ed25519 signatures are deterministic and must match byte for byte; ES256 signatures must verify.',
    vectors: ROWS.map((r) => signVector(r, memo)),
  }
}
