/**
 * Fixture of the PS revocation tests: every party is real and talks HTTP on 127.0.0.1.
 *
 * - a minimal Person Server: its metadata (with `revocation_endpoint`), its JWKS from a
 *   {@link KeyRing}, and the revocation endpoint under test mounted at `POST /revoke` and
 *   `GET /revoke/pending/:id`, over an in-memory {@link SqliteStore};
 * - agent providers built with `createAgentProvider`, their keys kept for hand-made requests;
 * - resources built with `createResource` (they verify the PS's signature and refuse revoked
 *   tokens), whose revocation endpoint can be made to fail, hang, lag or vanish from metadata;
 * - a server identity under any `dwk` (an access server, for `unsupported_iss`).
 */
import { createAgentProvider, KeyRing, type AgentProvider } from '../../src/agent/index.js'
import {
  createRevocationCascade,
  createRevocationEndpoint,
  type RevocationCascade,
  type RevocationEndpoint,
  type RevocationEndpointOptions,
} from '../../src/person-server/revocation.js'
import { SqliteStore } from '../../src/person-server/store/sqlite.js'
import type { IssuedToken } from '../../src/person-server/store/types.js'
import {
  createAuthToken,
  createSigner,
  decodeJwt,
  DWK,
  generateKeyPair,
  sendServerSigned,
  signRequest,
  type AAuthDwk,
  type IssuerKey,
  type PublicJwk,
  type Signer,
} from '../../src/protocol/index.js'
import { createResource, type Resource } from '../../src/resource/index.js'
import { LOOPBACK, loopbackJwks, serve } from '../helpers/aauth-servers.js'
import { send } from '../resource/resource-fixture.js'

/** A server that signs in its own right: its identifier, metadata document and current key. */
export interface ServerIdentity {
  readonly issuer: string
  readonly dwk: AAuthDwk
  readonly keys: KeyRing
}

/** The Person Server under test. */
export interface TestPs extends ServerIdentity {
  readonly store: SqliteStore
  readonly cascade: RevocationCascade
  readonly endpoint: RevocationEndpoint
  /** Every answer of `POST /revoke`, with its body read. */
  readonly answers: { status: number; contentType: string | null; body: string }[]
  /** The person every issued token is for. */
  readonly personId: string
  /** Agents whose pending requests the `onAgentRevoked` hook was called for. */
  readonly agentsRevoked: string[]
}

export type PsOptions = Partial<Pick<RevocationEndpointOptions, 'holdMs' | 'maxPerIssuer' | 'timeoutMs' | 'skewSec'>>

const stores: SqliteStore[] = []
/** Resolvers of requests held by hanging resources. */
const held: (() => void)[] = []

/** Releases held requests and closes the stores (call before `closeAll`). */
export async function releaseAll(): Promise<void> {
  for (const r of held.splice(0)) r()
  await Promise.all(stores.splice(0).map((s) => s.close()))
}

export async function startPs(o: PsOptions = {}): Promise<TestPs> {
  const keys = await KeyRing.create()
  const store = await SqliteStore.open({ filename: ':memory:' })
  stores.push(store)
  const personId = 'person-alice'
  await store.commit({ persons: [{ id: personId, username: 'alice', displayName: 'Alice', createdAt: Date.now() }] })
  const answers: TestPs['answers'] = []
  const agentsRevoked: string[] = []
  let endpoint: RevocationEndpoint | undefined
  const issuer = await serve(async (req, origin) => {
    const path = new URL(req.url).pathname
    if (path === `/.well-known/${DWK.person}`) {
      return Response.json({
        issuer: origin,
        jwks_uri: `${origin}/.well-known/jwks.json`,
        person_token_endpoint: `${origin}/person`,
        auth_token_endpoint: `${origin}/token`,
        revocation_endpoint: `${origin}/revoke`,
      })
    }
    if (path === '/.well-known/jwks.json') return Response.json(keys.jwks())
    if (path === '/revoke' && req.method === 'POST') {
      const res = await endpoint!.handle(req)
      answers.push({ status: res.status, contentType: res.headers.get('content-type'), body: await res.clone().text() })
      return res
    }
    const pending = /^\/revoke\/pending\/([^/]+)$/.exec(path)
    if (pending !== null && req.method === 'GET') return endpoint!.poll(req, pending[1]!)
    return new Response(null, { status: 404 })
  })
  const base = { issuer, keys, store, ...LOOPBACK, ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) }
  const cascade = createRevocationCascade(base)
  endpoint = createRevocationEndpoint({ ...base, ...o, jwks: loopbackJwks(), cascade, onAgentRevoked: (iss, sub) => void agentsRevoked.push(`${iss} ${sub}`) })
  return { issuer, dwk: DWK.person, keys, store, cascade, endpoint, answers, personId, agentsRevoked }
}

/** A real agent provider whose keys the test holds. */
export interface TestAp extends ServerIdentity {
  readonly ap: AgentProvider
}

export async function startAp(): Promise<TestAp> {
  const keys = await KeyRing.create()
  let ap: AgentProvider | undefined
  const issuer = await serve((req) => ap!.app.fetch(req))
  ap = createAgentProvider({ issuer, keys, ...LOOPBACK })
  return { issuer, dwk: DWK.agent, keys, ap }
}

/** How a test resource's revocation endpoint behaves. */
export type RevocationMode =
  | { kind: 'ok' }
  /** Answers 500 (the next `times` calls, then `ok`; default always). */
  | { kind: 'fail'; times?: number }
  /** Never answers (the request is held until the test ends). */
  | { kind: 'hang' }
  /** Answers after `ms`. */
  | { kind: 'slow'; ms: number }
  /** Publishes no `revocation_endpoint`. */
  | { kind: 'absent' }
  /** Accepts revocations from another PS only (`createResource` answers `403 unsupported_iss`). */
  | { kind: 'refuse' }
  /** Answers `200` with a body that is not a JSON object. */
  | { kind: 'garbage' }

/** A resource built with `createResource`, serving `GET /data` to auth tokens with scope `read`. */
export interface TestResource extends ServerIdentity {
  readonly resource: Resource
  mode: RevocationMode
  /** Requests that reached the revocation path. */
  hits: number
}

export async function startResource(mode: RevocationMode = { kind: 'ok' }): Promise<TestResource> {
  const keys = await KeyRing.create()
  let r: TestResource | undefined
  const issuer = await serve(async (req) => {
    const res = r!.resource
    const path = new URL(req.url).pathname
    if (path === `/.well-known/${DWK.resource}` && r!.mode.kind === 'absent') {
      const { revocation_endpoint: _omitted, ...metadata } = res.metadata
      return Response.json(metadata)
    }
    if (path === res.metadata.revocation_endpoint?.slice(issuer.length)) {
      r!.hits++
      const m = r!.mode
      if (m.kind === 'hang') return new Promise<Response>((resolve) => held.push(() => resolve(new Response(null, { status: 503 }))))
      if (m.kind === 'fail') {
        if (m.times !== undefined && --m.times <= 0) r!.mode = { kind: 'ok' }
        return new Response('boom', { status: 500 })
      }
      if (m.kind === 'garbage') return new Response('<html>ok</html>', { status: 200, headers: { 'content-type': 'text/html' } })
      if (m.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, m.ms))
    }
    const served = await res.serve(req)
    if (served !== undefined) return served
    const decision = await res.authenticate(req, { access: 'auth', scope: 'read' })
    return decision.ok ? Response.json({ ok: true, sub: decision.access.person?.sub }) : decision.response
  })
  const revocation = mode.kind === 'refuse' ? { revocation: { issuers: ['https://ps.other.example'] } } : {}
  r = { issuer, dwk: DWK.resource, keys, resource: createResource({ issuer, keys, ...revocation, ...LOOPBACK }), mode, hits: 0 }
  return r
}

/** A server publishing `dwk` metadata and a JWKS, and nothing else (e.g. an access server). */
export async function startIdentity(dwk: AAuthDwk, extra: (origin: string) => Record<string, unknown> = () => ({})): Promise<ServerIdentity> {
  const keys = await KeyRing.create()
  const issuer = await serve((req, origin) => {
    const path = new URL(req.url).pathname
    if (path === `/.well-known/${dwk}`) return Response.json({ issuer: origin, jwks_uri: `${origin}/.well-known/jwks.json`, ...extra(origin) })
    if (path === '/.well-known/jwks.json') return Response.json(keys.jwks())
    return new Response(null, { status: 404 })
  })
  return { issuer, dwk, keys }
}

/** An agent: its key and an agent token from `ap` naming `ps`. */
export interface TestAgent {
  readonly signer: Signer
  readonly publicJwk: PublicJwk
  readonly token: string
  readonly iss: string
  readonly sub: string
  readonly jti: string
  readonly exp: number
}

/**
 * Issues an agent token (a sub-agent's when `parentLocal` is given) and records it at the PS as
 * an accepted agent token (§Revocation Cascade "Records").
 */
export async function makeAgent(ap: TestAp, ps: TestPs, local: string, parentLocal?: string): Promise<TestAgent> {
  const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
  const token = await ap.ap.issue({ local, cnfJwk: publicJwk, ps: ps.issuer, ...(parentLocal === undefined ? {} : { parentLocal }) })
  const c = decodeJwt(token).payload as { iss: string; sub: string; jti: string; exp: number }
  await ps.store.noteAgentToken({ iss: c.iss, jti: c.jti, sub: c.sub, expiresAt: c.exp * 1000 })
  return { signer: await createSigner(privateJwk), publicJwk, token, iss: c.iss, sub: c.sub, jti: c.jti, exp: c.exp }
}

/** An auth token the PS issued to `agent` for `resource`, recorded as issued. */
export interface Issued {
  readonly token: string
  readonly record: IssuedToken
}

export async function issueAuthToken(ps: TestPs, agent: TestAgent, resource: ServerIdentity, parentAgent?: string): Promise<Issued> {
  const token = await createAuthToken({
    key: ps.keys.current,
    issuer: ps.issuer,
    issuerRole: 'person',
    aud: resource.issuer,
    ps: ps.issuer,
    sub: 'alice-at-resource',
    cnfJwk: agent.publicJwk,
    scope: 'read',
    ...LOOPBACK,
  })
  const c = decodeJwt(token).payload as { jti: string; iat: number; exp: number }
  const record: IssuedToken = {
    jti: c.jti,
    kind: 'auth',
    personId: ps.personId,
    agentIss: agent.iss,
    agentSub: agent.sub,
    ...(parentAgent === undefined ? {} : { parentAgent }),
    resource: resource.issuer,
    sub: 'alice-at-resource',
    scope: 'read',
    issuedAt: c.iat * 1000,
    expiresAt: c.exp * 1000,
  }
  await ps.store.commit({ issued: [record] })
  return { token, record }
}

/** Presents `issued` at its resource (`GET /data`, signed by the agent). */
export async function present(resource: TestResource, agent: TestAgent, issued: Issued): Promise<Response> {
  return (await send(`${resource.issuer}/data`, { signer: agent.signer, token: issued.token })).res
}

/** A signed `POST /revoke` from `who` with `json` (and extra headers). */
export function revoke(ps: TestPs, who: ServerIdentity, json: unknown, headers?: Record<string, string>): Promise<Response> {
  return sendServerSigned({ url: `${ps.issuer}/revoke`, method: 'POST', json, issuer: who.issuer, dwk: who.dwk, key: who.keys.current, ...(headers === undefined ? {} : { headers }), ...LOOPBACK })
}

/** A signed `GET` of a pending URL by `who`. */
export function pollAs(ps: TestPs, who: ServerIdentity, location: string, headers?: Record<string, string>): Promise<Response> {
  return sendServerSigned({ url: new URL(location, ps.issuer).href, method: 'GET', issuer: who.issuer, dwk: who.dwk, key: who.keys.current, ...(headers === undefined ? {} : { headers }), ...LOOPBACK })
}

/**
 * A `POST /revoke` with raw body bytes, signed by `who` under `jwks_uri` — with the body covered
 * (`content-type`, `content-digest`) unless `coverBody` is false.
 */
export async function revokeRaw(ps: TestPs, who: ServerIdentity, body: string, coverBody = true): Promise<Response> {
  const url = `${ps.issuer}/revoke`
  const bytes = new TextEncoder().encode(body)
  const key: IssuerKey = who.keys.current
  const { headers } = await signRequest(
    { method: 'POST', url, headers: new Headers({ 'content-type': 'application/json' }) },
    { signer: await createSigner(key.privateJwk), signatureKey: { scheme: 'jwks_uri', id: who.issuer, dwk: who.dwk, kid: key.kid }, ...(coverBody ? { body: bytes } : {}) },
  )
  return fetch(url, { method: 'POST', headers, body: bytes })
}
