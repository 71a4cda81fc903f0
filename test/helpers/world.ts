/**
 * The world the negative suites (negative-signature, negative-tokens) share: a fixed clock, the
 * four issuers behind a fake network, and a minter that starts from a valid token of each type
 * and applies patches to its claims and JOSE header, including ones no token creator allows.
 */
import { createPrivateKey } from 'node:crypto'
import { SignJWT } from 'jose'
import type { PublicJwk } from '../../src/protocol/index.js'
import { fakeIssuer, type FakeIssuer, type FakeNetwork } from './issuers.js'

export const NOW = Date.UTC(2027, 0, 15, 12, 0, 0)
export const NOW_S = NOW / 1000
export const AP = 'https://agents.example'
export const PS = 'https://ps.example'
export const AS = 'https://as.example'
export const RES = 'https://api.example'
export const AGENT_ID = 'aauth:bot@agents.example'

export interface Issuers {
  ap: FakeIssuer
  ps: FakeIssuer
  as: FakeIssuer
  res: FakeIssuer
}

/** The agent provider, person server, access server and resource, each served on `net`. */
export async function fakeIssuers(net: FakeNetwork): Promise<Issuers> {
  const ap = await fakeIssuer(net, AP, 'aauth-agent.json')
  const ps = await fakeIssuer(net, PS, 'aauth-person.json', { auth_token_endpoint: `${PS}/token`, person_token_endpoint: `${PS}/person-token` })
  const as = await fakeIssuer(net, AS, 'aauth-access.json', { auth_token_endpoint: `${AS}/token` })
  const res = await fakeIssuer(net, RES, 'aauth-resource.json')
  return { ap, ps, as, res }
}

export type Kind = 'agent' | 'person' | 'auth' | 'resource'
/** Changes to a JSON object: a member set to `undefined` is deleted. */
export type Patch = Record<string, unknown>
export const TYP: Record<Kind, string> = { agent: 'aa-agent+jwt', person: 'aa-person+jwt', auth: 'aa-auth+jwt', resource: 'aa-resource+jwt' }

export function applyPatch(base: Patch, patch: Patch): Patch {
  const out = { ...base }
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete out[k]
    else out[k] = v
  }
  return out
}

export function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url')
}

/** What a valid token is issued at and bound to. */
export interface Binding {
  /** `iat`, Unix seconds; `exp` follows from it. */
  iat: number
  /** The agent key: `cnf.jwk` of agent, person and auth tokens. */
  cnfJwk: PublicJwk
  /** Its thumbprint: `agent_jkt` of resource tokens. */
  agentJkt: string
}

/** A valid token of `kind`: the issuer that signs it and its claims. */
export function validToken(w: Issuers, kind: Kind, b: Binding): { issuer: FakeIssuer; claims: Patch } {
  const t = { jti: `${kind}-jti-1`, iat: b.iat, exp: b.iat + 3000 }
  const cnf = { jwk: b.cnfJwk }
  switch (kind) {
    case 'agent':
      return { issuer: w.ap, claims: { iss: AP, dwk: 'aauth-agent.json', sub: AGENT_ID, ps: PS, cnf, ...t } }
    case 'person':
      return { issuer: w.ps, claims: { iss: PS, dwk: 'aauth-person.json', aud: RES, sub: 'user-1', cnf, ...t } }
    case 'auth':
      return { issuer: w.as, claims: { iss: AS, dwk: 'aauth-access.json', aud: RES, ps: PS, sub: 'user-1', scope: 'read', cnf, ...t } }
    case 'resource':
      return { issuer: w.res, claims: { iss: RES, dwk: 'aauth-resource.json', aud: PS, ps: PS, sub: 'user-1', presented_jti: 'p-1', agent_jkt: b.agentJkt, scope: 'read', ...t, exp: b.iat + 300 } }
  }
}

export interface MintOptions {
  /** Applied to the claims. */
  patch?: Patch
  /** Applied to the JOSE header `{typ, alg, kid}`. */
  header?: Patch
  /** Sign with this issuer's key (and name its `kid`) instead of the kind's issuer. */
  signWith?: FakeIssuer | undefined
  /** The signature part of an `alg: none` token. Default `AAAA`. */
  noneSignature?: string
}

/**
 * A token of `kind`, patched, signed by its issuer's key (or `signWith`). With `alg: HS256` it is
 * keyed with the issuer's public `x` as an HMAC secret; with `alg: none` it is unsigned.
 */
export async function mintToken(w: Issuers, kind: Kind, b: Binding, o: MintOptions = {}): Promise<string> {
  const { issuer, claims } = validToken(w, kind, b)
  const payload = applyPatch(claims, o.patch ?? {})
  const key = (o.signWith ?? issuer).key
  const h = applyPatch({ typ: TYP[kind], alg: key.privateJwk.alg, kid: key.kid }, o.header ?? {})
  if (h['alg'] === 'none') return `${b64json(h)}.${b64json(payload)}.${o.noneSignature ?? 'AAAA'}`
  const secret = h['alg'] === 'HS256' ? Buffer.from(issuer.publicJwk.x as string, 'base64url') : createPrivateKey({ key: key.privateJwk as never, format: 'jwk' })
  return new SignJWT(payload).setProtectedHeader(h as { alg: string }).sign(secret)
}
