/**
 * The fixed world every AAuth vector lives in: one clock, named keys, four issuers with their
 * metadata and JWKS, and baseline tokens that individual vectors patch.
 */
import type { Network } from './types.js'
import { contentDigest, deriveKey, mintJwt, signRequestRaw, thumbprint, type SignatureMemo, type TestKey, type VectorRequest } from './crypto.js'

/** The vectors' clock, Unix seconds (2026-09-21T14:13:20Z). */
export const T = 1_790_000_000

/** Every key the vectors use, by the name `keys.json` publishes it under. */
export const KEYS = {
  agent: deriveKey('agent', 'Ed25519'),
  'agent-es256': deriveKey('agent-es256', 'ES256'),
  'other-agent': deriveKey('other-agent', 'Ed25519'),
  'agent-provider': deriveKey('agent-provider', 'Ed25519'),
  'person-server': deriveKey('person-server', 'Ed25519'),
  'access-server': deriveKey('access-server', 'Ed25519'),
  resource: deriveKey('resource', 'Ed25519'),
} as const satisfies Record<string, TestKey>
export type KeyName = keyof typeof KEYS

/** A token issuer or server in the vectors' world. */
export interface Party {
  readonly issuer: string
  readonly dwk: string
  readonly kid: string
  readonly keyName: KeyName
  readonly metadata: Record<string, unknown>
}

function party(issuer: string, dwk: string, kid: string, keyName: KeyName, extra: Record<string, unknown> = {}): Party {
  return { issuer, dwk, kid, keyName, metadata: { issuer, jwks_uri: `${issuer}/.well-known/jwks.json`, ...extra } }
}

export const AP = party('https://agents.example', 'aauth-agent.json', 'ap-2026-09', 'agent-provider')
export const PS = party('https://ps.example', 'aauth-person.json', 'ps-2026-09', 'person-server', {
  auth_token_endpoint: 'https://ps.example/token',
  person_token_endpoint: 'https://ps.example/person-token',
})
export const AS = party('https://as.example', 'aauth-access.json', 'as-2026-09', 'access-server', { auth_token_endpoint: 'https://as.example/token' })
export const RESOURCE = party('https://api.example', 'aauth-resource.json', 'res-2026-09', 'resource')
export const PARTIES = [AP, PS, AS, RESOURCE] as const

export const AGENT_ID = 'aauth:travel-bot@agents.example'
export const PERSON_SUB = 'person-7f3c2a'

export function jwksOf(p: Party, extraKeys: readonly Record<string, unknown>[] = []): { keys: Record<string, unknown>[] } {
  return { keys: [{ ...KEYS[p.keyName].publicJwk, kid: p.kid, use: 'sig' }, ...extraKeys] }
}

/** The documents every vector can fetch. */
export function baseNetwork(): Network {
  const net: Network = {}
  for (const p of PARTIES) {
    net[`${p.issuer}/.well-known/${p.dwk}`] = { status: 200, body: p.metadata }
    net[`${p.issuer}/.well-known/jwks.json`] = { status: 200, body: jwksOf(p) }
  }
  return net
}

/** Changes to a baseline token: a member set to `undefined` is removed. */
export interface TokenPatch {
  readonly header?: Record<string, unknown>
  readonly payload?: Record<string, unknown>
  /** Sign with this key instead of the issuer's (the header `kid` stays). */
  readonly signWith?: KeyName
  readonly hmacSecret?: string
}

function patched(base: Record<string, unknown>, patch: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...base }
  for (const [k, v] of Object.entries(patch ?? {})) {
    if (v === undefined) delete out[k]
    else out[k] = v
  }
  return out
}

function tokenFactory(issuer: Party, typ: string, basePayload: () => Record<string, unknown>) {
  return (patch: TokenPatch = {}): string => {
    const header = patched({ alg: 'Ed25519', typ, kid: issuer.kid }, patch.header)
    return mintJwt(header, patched(basePayload(), patch.payload), KEYS[patch.signWith ?? issuer.keyName], patch.hmacSecret)
  }
}

const cnf = (key: KeyName = 'agent') => ({ jwk: KEYS[key].publicJwk })
const IAT = T - 60

/** Agent token (`aa-agent+jwt`) issued by the agent provider to the Ed25519 agent key. */
export const agentToken = tokenFactory(AP, 'aa-agent+jwt', () => ({
  iss: AP.issuer, dwk: AP.dwk, sub: AGENT_ID, ps: PS.issuer, cnf: cnf(), jti: 'agent-token-1', iat: IAT, exp: IAT + 3600,
}))

/** Person token (`aa-person+jwt`) for the resource, issued by the PS. */
export const personToken = tokenFactory(PS, 'aa-person+jwt', () => ({
  iss: PS.issuer, dwk: PS.dwk, aud: RESOURCE.issuer, sub: PERSON_SUB, cnf: cnf(), jti: 'person-token-1', iat: IAT, exp: IAT + 3600,
}))

/** Auth token (`aa-auth+jwt`) for the resource, issued by the AS (four-party). */
export const authToken = tokenFactory(AS, 'aa-auth+jwt', () => ({
  iss: AS.issuer, dwk: AS.dwk, aud: RESOURCE.issuer, ps: PS.issuer, sub: PERSON_SUB, scope: 'flights:read flights:book', cnf: cnf(),
  jti: 'auth-token-1', iat: IAT, exp: IAT + 3600,
}))

/** Auth token issued by the PS itself (three-party): `dwk` is the PS document and `ps` = `iss`. */
export const psAuthToken = tokenFactory(PS, 'aa-auth+jwt', () => ({
  iss: PS.issuer, dwk: PS.dwk, aud: RESOURCE.issuer, ps: PS.issuer, sub: PERSON_SUB, scope: 'flights:read', cnf: cnf(),
  jti: 'auth-token-ps-1', iat: IAT, exp: IAT + 3600,
}))

/** Resource token (`aa-resource+jwt`) the resource issues for redemption at the PS. */
export const resourceToken = tokenFactory(RESOURCE, 'aa-resource+jwt', () => ({
  iss: RESOURCE.issuer, dwk: RESOURCE.dwk, aud: PS.issuer, ps: PS.issuer, sub: PERSON_SUB, presented_jti: 'person-token-1',
  agent_jkt: thumbprint(KEYS.agent.publicJwk), scope: 'flights:book', jti: 'resource-token-1', iat: T - 10, exp: T + 290,
}))

/** How to build one signed request. Every member has a profile-conformant default. */
export interface RequestOptions {
  readonly method?: string
  readonly url?: string
  readonly headers?: Record<string, string>
  readonly body?: string
  /** The token in `sig=jwt;jwt="…"`. Default: the baseline agent token. */
  readonly jwt?: string
  /** A raw `Signature-Key` value, replacing the `jwt` member. */
  readonly signatureKey?: string
  readonly key?: KeyName
  readonly label?: string
  /** Exact covered components. Default: the profile's, plus `additionalComponents`. */
  readonly components?: readonly string[]
  readonly additionalComponents?: readonly string[]
  readonly params?: Readonly<Record<string, number | string>>
}

/** The components the AAuth profile covers (main draft §Covered Components), written out independently. */
export function profileComponents(req: VectorRequest, additional: readonly string[] = []): string[] {
  const list = ['@method', '@authority', '@path']
  if (new URL(req.url).search !== '') list.push('@query')
  list.push('signature-key')
  if (req.body !== null) list.push('content-type', 'content-digest')
  if (/^aauth\s/i.test(req.headers['authorization'] ?? '')) list.push('authorization')
  return [...list, ...additional.filter((c) => !list.includes(c))]
}

/** Builds and signs a request; returns it with the components and the exact signature base. */
export function signedRequest(o: RequestOptions = {}, memo?: SignatureMemo): { request: VectorRequest; base: string; components: string[] } {
  const body = o.body ?? null
  const headers: Record<string, string> = { ...(body === null ? {} : { 'content-type': 'application/json' }), ...o.headers }
  if (body !== null && headers['content-digest'] === undefined) headers['content-digest'] = contentDigest(body)
  const unsigned: VectorRequest = { method: o.method ?? (body === null ? 'GET' : 'POST'), url: o.url ?? 'https://api.example/flights', headers, body }
  const label = o.label ?? 'sig'
  const components = [...(o.components ?? profileComponents(unsigned, o.additionalComponents))]
  const signatureKey = o.signatureKey ?? `${label}=jwt;jwt="${o.jwt ?? agentToken()}"`
  const { request, base } = signRequestRaw({ request: unsigned, key: KEYS[o.key ?? 'agent'], signatureKey, label, components, params: o.params ?? { created: T } }, memo)
  return { request, base, components }
}
