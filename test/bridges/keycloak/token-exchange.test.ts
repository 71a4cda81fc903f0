/**
 * RFC 8693 token exchange at the Person Server (scenario S2), against real parts on loopback: an
 * OpenID Provider (test/helpers/oidc-issuer.ts) signing Keycloak-shaped tokens, a real PS in
 * organisation mode with the S2 capability table, real agents signing the exchange, and the
 * Documents API (our Hono resource middleware) accepting the issued auth token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose'
import { KeyRing } from '../../../src/agent/index.js'
import { KeycloakRealm, realmPersonId, TOKEN_EXCHANGE_EVENT, TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_URN, tokenExchange, type ExchangeErrorCode } from '../../../src/bridges/keycloak/index.js'
import { createPersonServer, SqliteStore, type OrganizationPolicy, type PersonServerStore } from '../../../src/person-server/index.js'
import { createAgentToken, createSigner, generateKeyPair, jwkThumbprint, signRequest } from '../../../src/protocol/index.js'
import { closeAll, LOOPBACK } from '../../helpers/aauth-servers.js'
import { startOidcIssuer, type OidcIssuer, type RealmUser } from '../../helpers/oidc-issuer.js'
import { startRealPersonServer, type RunningPs } from '../../helpers/person-server.js'
import { loopIssuer, makeAgent, resourceKeys, send, startApp, type Agent, type App, type LoopIssuer } from '../../resource/resource-fixture.js'

const CLIENT = 'aauth-person-server'
const BLOCKED = 'https://blocked.example'
const alice: RealmUser = { sub: '7d0e6b1a-alice', username: 'alice', departments: ['engineering', 'finance'] }
const bob: RealmUser = { sub: '2f4c9e77-bob', username: 'bob', departments: ['hr'] }

let oidc: OidcIssuer
let otherRealm: OidcIssuer
let ap: LoopIssuer
let ps: RunningPs
let askPs: RunningPs
let capsPs: RunningPs
let racePs: RunningPs
/** The agent token `jti` the racing PS's policy hook revokes while it decides. */
let revokeDuring: string | undefined
let docs: App
/** The realm's clock runs ahead by this much (ms): JWKS refetches are at most once a minute. */
let realmSkew = 0

const agentId = (local: string): string => `aauth:${local}@${new URL(ap.issuer).host}`

/** The S2 table: agent → capability set. */
function s2Table(): OrganizationPolicy['agents'] {
  return {
    [agentId('summarizer-hr')]: { scopes: ['hr'] },
    [agentId('summarizer-tech')]: { scopes: ['finance', 'engineering'] },
    [agentId('reviewer-ops')]: { scopes: ['engineering', 'admin'] },
    [agentId('summarizer-everything')]: { scopes: [] },
  }
}

beforeAll(async () => {
  oidc = await startOidcIssuer()
  otherRealm = await startOidcIssuer()
  ap = await loopIssuer('aauth-agent.json')
  const realm = new KeycloakRealm({ issuer: oidc.issuer, ...LOOPBACK, now: () => Date.now() + realmSkew })
  ps = await startRealPersonServer({ organization: { agents: s2Table() }, extensions: [tokenExchange({ realm, audience: CLIENT, resources: (r) => r !== BLOCKED })] })
  askPs = await startRealPersonServer({ organization: { agents: s2Table(), consent: 'ask' }, extensions: [tokenExchange({ realm, audience: CLIENT })] })
  capsPs = await startRealPersonServer({ extensions: [tokenExchange({ realm, audience: CLIENT, path: '/exchange', capabilities: (a) => (a.sub === agentId('summarizer-tech') ? ['engineering'] : undefined) })] })
  racePs = await startRealPersonServer({
    organization: { agents: s2Table() },
    policy: async (request) => {
      if (revokeDuring !== undefined) await racePs.store.addRevocation({ iss: request.agent.iss, jti: revokeDuring, expiresAt: Date.now() + 3_600_000, receivedAt: Date.now() })
      return undefined
    },
    extensions: [tokenExchange({ realm, audience: CLIENT })],
  })
  const keys = await resourceKeys()
  docs = await startApp('hono', {
    routes: { '/docs/engineering': { access: 'auth', scope: 'engineering' }, '/docs/finance': { access: 'auth', scope: 'finance' }, '/docs/hr': { access: 'auth', scope: 'hr' } },
    options: () => ({ keys, personServers: [ps.issuer, capsPs.issuer], metadata: { name: 'Documents API' } }),
  })
})

afterAll(async () => {
  for (const p of [ps, askPs, capsPs, racePs]) {
    p?.ps.close()
    await p?.store.close()
  }
  await docs?.close()
  await oidc?.close()
  await otherRealm?.close()
  await closeAll()
})

/** A fresh key and agent token for `local` (each exchange signs with its own key: no replay). */
const agent = (local: string, at: RunningPs = ps): Promise<Agent> => makeAgent(ap, { local, ps: at.issuer })

/** The S2 request: alice's (or `subject`'s) access token for the Documents API. */
function params(subject: string, extra: [string, string][] = []): [string, string][] {
  return [['grant_type', TOKEN_EXCHANGE_GRANT], ['subject_token', subject], ['subject_token_type', TOKEN_TYPE_URN.accessToken], ['audience', docs.origin], ...extra]
}

/** POSTs the form to the PS's exchange endpoint, signed by `who` (unsigned when undefined). */
async function exchange(who: Agent | undefined, form: [string, string][], o: { at?: RunningPs; path?: string; contentType?: string } = {}): Promise<Response> {
  const url = `${(o.at ?? ps).issuer}${o.path ?? '/token-exchange'}`
  const body = new TextEncoder().encode(new URLSearchParams(form).toString())
  const headers = new Headers({ 'content-type': o.contentType ?? 'application/x-www-form-urlencoded' })
  if (who === undefined) return fetch(url, { method: 'POST', headers, body })
  const signed = await signRequest({ method: 'POST', url: new URL(url), headers }, { signer: who.signer, signatureKey: { scheme: 'jwt', jwt: who.token, cache: false }, body })
  return fetch(url, { method: 'POST', headers: signed.headers, body })
}

/** What a refusal must not leave behind, and what the audit trail holds. */
async function trail(store: PersonServerStore): Promise<{ issuedEvents: number; exchangeEvents: number; issuedRecords: number }> {
  const events = await store.queryAudit({ limit: 1000 })
  let issuedRecords = 0
  for (const local of ['summarizer-hr', 'summarizer-tech', 'reviewer-ops', 'summarizer-everything', 'stranger']) {
    issuedRecords += (await store.liveIssued({ agentIss: ap.issuer, agentSub: agentId(local), now: Date.now() })).length
  }
  return { issuedEvents: events.filter((e) => e.type === 'auth_token.issued').length, exchangeEvents: events.filter((e) => e.type === TOKEN_EXCHANGE_EVENT).length, issuedRecords }
}

async function expectRefused(res: Response, code: ExchangeErrorCode): Promise<string> {
  const body = (await res.json()) as { error: string; error_description: string }
  expect({ status: res.status, error: body.error }).toEqual({ status: 400, error: code })
  expect(res.headers.get('content-type')).toMatch(/^application\/json/)
  expect(res.headers.get('cache-control')).toBe('no-store')
  expect(body.error_description).toEqual(expect.any(String))
  return body.error_description
}

interface Exchanged {
  access_token: string
  issued_token_type: string
  token_type: string
  expires_in: number
  scope: string
}

describe('token exchange: metadata and set-up', () => {
  it('publishes token_exchange_endpoint in the PS metadata', async () => {
    const md = (await (await fetch(`${ps.issuer}/.well-known/aauth-person.json`)).json()) as Record<string, unknown>
    expect(md['token_exchange_endpoint']).toBe(`${ps.issuer}/token-exchange`)
    const custom = (await (await fetch(`${capsPs.issuer}/.well-known/aauth-person.json`)).json()) as Record<string, unknown>
    expect(custom['token_exchange_endpoint']).toBe(`${capsPs.issuer}/exchange`)
  })

  it('refuses to mount without a capability set (no organisation, no capabilities): TypeError', async () => {
    const store = await SqliteStore.open({ filename: ':memory:' })
    try {
      const ext = tokenExchange({ realm: { issuer: oidc.issuer, ...LOOPBACK }, audience: CLIENT })
      await expect(createPersonServer({ issuer: 'http://127.0.0.1:9', keys: await KeyRing.create(), store, ...LOOPBACK, purgeIntervalSec: 0, extensions: [ext] })).rejects.toThrow(TypeError)
    } finally {
      await store.close()
    }
  })

  it('refuses bad options at creation: path without /, empty audience, http realm', () => {
    expect(() => tokenExchange({ realm: { issuer: oidc.issuer, ...LOOPBACK }, audience: CLIENT, path: 'x' })).toThrow(TypeError)
    expect(() => tokenExchange({ realm: { issuer: oidc.issuer, ...LOOPBACK }, audience: [] })).toThrow(TypeError)
    expect(() => tokenExchange({ realm: { issuer: oidc.issuer }, audience: CLIENT })).toThrow(TypeError)
  })
})

describe('token exchange: S2 grants', () => {
  it('alice + summarizer-tech → "engineering finance"; the Documents API accepts the token; the audit names both principals', async () => {
    const before = await trail(ps.store)
    const subject = await oidc.accessToken(alice)
    const tech = await agent('summarizer-tech')
    const res = await exchange(tech, params(subject))
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = (await res.json()) as Exchanged
    expect(body).toEqual({ access_token: expect.any(String), issued_token_type: TOKEN_TYPE_URN.jwt, token_type: 'N_A', expires_in: expect.any(Number), scope: 'engineering finance' })
    expect(decodeProtectedHeader(body.access_token).typ).toBe('aa-auth+jwt')
    const claims = decodeJwt(body.access_token) as Record<string, unknown> & { exp: number; jti: string; sub: string; cnf: { jwk: unknown } }
    expect(claims).toMatchObject({ iss: ps.issuer, ps: ps.issuer, aud: docs.origin, scope: 'engineering finance' })
    expect(claims.cnf.jwk).toMatchObject({ x: (tech.publicJwk as { x: string }).x })
    expect(claims.exp).toBeLessThanOrEqual(decodeJwt(subject).exp!)

    // The Documents API accepts it exactly like a token from /token.
    const personId = realmPersonId(oidc.issuer, alice.sub)
    for (const dept of ['engineering', 'finance']) {
      const r = await send(`${docs.origin}/docs/${dept}`, { signer: tech.signer, token: body.access_token })
      expect(r.res.status).toBe(200)
      expect(await r.res.json()).toMatchObject({ ok: true, mode: 'auth', person: { ps: ps.issuer, sub: claims.sub }, scopes: ['engineering', 'finance'] })
    }
    expect(await ps.store.personForSubject(docs.origin, claims.sub)).toBe(personId)

    // Recorded like any issued token, bound to the realm token it came from.
    const issued = await ps.store.getIssued(claims.jti)
    expect(issued).toMatchObject({ kind: 'auth', personId, agentSub: tech.id, resource: docs.origin, scope: 'engineering finance', presentedJti: decodeJwt(subject).jti })
    const after = await trail(ps.store)
    expect(after).toEqual({ issuedEvents: before.issuedEvents + 1, exchangeEvents: before.exchangeEvents + 1, issuedRecords: before.issuedRecords + 1 })
    const [event] = (await ps.store.queryAudit({ personId, order: 'desc', limit: 10 })).filter((e) => e.type === TOKEN_EXCHANGE_EVENT)
    expect(event).toMatchObject({
      personId,
      agentSub: tech.id,
      resource: docs.origin,
      scope: 'engineering finance',
      decision: 'grant',
      detail: {
        subject: { person_id: personId, realm: oidc.issuer, sub: alice.sub, username: 'alice', token_jti: decodeJwt(subject).jti, azp: CLIENT },
        actor: { sub: tech.id, iss: ap.issuer },
        requested_scopes: null,
        granted_scopes: ['engineering', 'finance'],
        permissions: ['engineering', 'finance'],
        capabilities: ['finance', 'engineering'],
        auth_token_jti: claims.jti,
      },
    })
    // The realm person is on record, with the permissions the realm gave them.
    expect(await ps.store.getPerson(personId)).toMatchObject({ username: 'alice', permissions: ['engineering', 'finance'] })
  })

  it('a narrower scope, named by resource, with the agent token repeated as actor_token and a jwt subject type', async () => {
    const tech = await agent('summarizer-tech')
    const form: [string, string][] = [
      ['grant_type', TOKEN_EXCHANGE_GRANT],
      ['subject_token', await oidc.accessToken(alice)],
      ['subject_token_type', TOKEN_TYPE_URN.jwt],
      ['resource', docs.origin],
      ['scope', 'finance'],
      ['requested_token_type', TOKEN_TYPE_URN.jwt],
      ['actor_token', tech.token],
      ['actor_token_type', TOKEN_TYPE_URN.jwt],
    ]
    const res = await exchange(tech, form)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Exchanged
    expect(body.scope).toBe('finance')
    expect((await send(`${docs.origin}/docs/finance`, { signer: tech.signer, token: body.access_token })).res.status).toBe(200)
  })

  it('an agent token carrying a SPIFFE ID: the audit names it with the actor', async () => {
    const spiffeId = 'spiffe://demo.example.com/agent/summarizer-tech'
    const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
    const sub = agentId('summarizer-tech')
    const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub, cnfJwk: publicJwk, ps: ps.issuer, extraClaims: { spiffe_id: spiffeId }, ...LOOPBACK })
    const workload: Agent = { id: sub, signer: await createSigner(privateJwk), publicJwk, jkt: await jwkThumbprint(publicJwk), token }
    const res = await exchange(workload, params(await oidc.accessToken(alice)))
    expect(res.status).toBe(200)
    const jti = decodeJwt(((await res.json()) as Exchanged).access_token).jti
    const events = await ps.store.queryAudit({ agentSub: sub, order: 'desc', limit: 10 })
    expect(events.find((e) => e.type === TOKEN_EXCHANGE_EVENT && e.detail?.['auth_token_jti'] === jti)?.detail).toMatchObject({ actor: { sub, iss: ap.issuer, spiffe_id: spiffeId }, subject: { username: 'alice' } })
  })

  it('bob + summarizer-hr → "hr"', async () => {
    const res = await exchange(await agent('summarizer-hr'), params(await oidc.accessToken(bob)))
    expect(res.status).toBe(200)
    expect(((await res.json()) as Exchanged).scope).toBe('hr')
  })

  it('the auth token never outlives the realm token (exp ≤ subject exp)', async () => {
    const subject = await oidc.accessToken(alice, {}, { lifetimeSec: 90 })
    const res = await exchange(await agent('summarizer-tech'), params(subject))
    const body = (await res.json()) as Exchanged
    expect(res.status).toBe(200)
    expect(decodeJwt(body.access_token).exp!).toBeLessThanOrEqual(decodeJwt(subject).exp!)
    expect(body.expires_in).toBeLessThanOrEqual(90)
  })

  it('a capabilities function instead of an organisation policy: alice + summarizer-tech → "engineering" only', async () => {
    const res = await exchange(await agent('summarizer-tech', capsPs), params(await oidc.accessToken(alice)), { at: capsPs, path: '/exchange' })
    expect(res.status).toBe(200)
    expect(((await res.json()) as Exchanged).scope).toBe('engineering')
    const stranger = await exchange(await agent('reviewer-ops', capsPs), params(await oidc.accessToken(alice)), { at: capsPs, path: '/exchange' })
    await expectRefused(stranger, 'unauthorized_client')
  })

  it('a realm key rotation (new kid) is accepted once the realm keys are fetched again', async () => {
    const fetches = oidc.jwksFetches
    await oidc.rotate()
    realmSkew += 61_000 // past the once-a-minute refetch floor
    const res = await exchange(await agent('summarizer-tech'), params(await oidc.accessToken(alice)))
    expect(res.status).toBe(200)
    expect(oidc.jwksFetches).toBe(fetches + 1)
  })
})

describe('token exchange: refusals before the subject token is trusted (nothing written)', () => {
  const noneToken = (claims: Record<string, unknown>): string =>
    `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`
  const keycloakClaims = (u: RealmUser): Record<string, unknown> => {
    const now = Math.floor(Date.now() / 1000)
    return { iss: oidc.issuer, sub: u.sub, iat: now, exp: now + 300, jti: 'j-1', typ: 'Bearer', azp: CLIENT, aud: 'account', preferred_username: u.username, departments: u.departments }
  }

  type Row = readonly [name: string, form: () => Promise<[string, string][]>, code: ExchangeErrorCode, says?: RegExp, contentType?: string]
  const rows: Row[] = [
    ['a JSON body', async () => params(await oidc.accessToken(alice)), 'invalid_request', /x-www-form-urlencoded/, 'application/json'],
    ['no grant_type', async () => params(await oidc.accessToken(alice)).filter(([k]) => k !== 'grant_type'), 'invalid_request'],
    ['another grant_type', async () => [['grant_type', 'authorization_code'], ...params(await oidc.accessToken(alice)).slice(1)], 'unsupported_grant_type'],
    ['no subject_token', async () => params(await oidc.accessToken(alice)).filter(([k]) => k !== 'subject_token'), 'invalid_request'],
    ['no subject_token_type', async () => params(await oidc.accessToken(alice)).filter(([k]) => k !== 'subject_token_type'), 'invalid_request'],
    ['an id_token subject_token_type', async () => params(await oidc.accessToken(alice)).map(([k, v]) => [k, k === 'subject_token_type' ? 'urn:ietf:params:oauth:token-type:id_token' : v]), 'invalid_request'],
    ['scope twice', async () => params(await oidc.accessToken(alice), [['scope', 'finance'], ['scope', 'engineering']]), 'invalid_request', /scope is repeated/],
    ['audience twice', async () => params(await oidc.accessToken(alice), [['audience', docs.origin]]), 'invalid_request'],
    ['subject_token twice', async () => params(await oidc.accessToken(alice), [['subject_token', 'x']]), 'invalid_request'],
    ['both audience and resource', async () => params(await oidc.accessToken(alice), [['resource', docs.origin]]), 'invalid_request'],
    ['neither audience nor resource', async () => params(await oidc.accessToken(alice)).filter(([k]) => k !== 'audience'), 'invalid_request'],
    ['an empty scope', async () => params(await oidc.accessToken(alice), [['scope', ' ']]), 'invalid_request'],
    ['requested_token_type access_token', async () => params(await oidc.accessToken(alice), [['requested_token_type', TOKEN_TYPE_URN.accessToken]]), 'invalid_request'],
    ['actor_token of another agent', async () => params(await oidc.accessToken(alice), [['actor_token', (await agent('summarizer-tech')).token], ['actor_token_type', TOKEN_TYPE_URN.jwt]]), 'invalid_request', /not the agent token that signed/],
    ['actor_token without actor_token_type', async () => params(await oidc.accessToken(alice), [['actor_token', 'x']]), 'invalid_request'],
    ['actor_token_type without actor_token', async () => params(await oidc.accessToken(alice), [['actor_token_type', TOKEN_TYPE_URN.jwt]]), 'invalid_request'],
    ['an audience that is not a server identifier', async () => params(await oidc.accessToken(alice)).map(([k, v]) => [k, k === 'audience' ? 'documents' : v]), 'invalid_target'],
    ['an audience the PS does not serve', async () => params(await oidc.accessToken(alice)).map(([k, v]) => [k, k === 'audience' ? BLOCKED : v]), 'invalid_target'],
    ['a subject token that is not a JWT', async () => params('not-a-jwt'), 'invalid_request', /Invalid Compact JWS/],
    ['a subject token naming another issuer', async () => params(await oidc.accessToken(alice, { iss: otherRealm.issuer })), 'invalid_request', /iss/],
    ['a subject token signed by another realm', async () => params(await otherRealm.accessToken(alice)), 'invalid_request', /no applicable key/],
    ['an expired subject token', async () => params(await oidc.accessToken(alice, {}, { iat: Math.floor(Date.now() / 1000) - 600, lifetimeSec: 60 })), 'invalid_request', /exp/],
    ['a subject token for another client (aud and azp)', async () => params(await oidc.accessToken(alice, { azp: 'some-other-app' })), 'invalid_request', /does not name aauth-person-server/],
    ['a subject token with an unknown kid', async () => params(await oidc.accessToken(alice, {}, { kid: 'not-a-realm-key' })), 'invalid_request', /no applicable key/],
    ['an HS256 subject token', async () => params(await new SignJWT(keycloakClaims(alice)).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: oidc.kid }).sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'))), 'invalid_request', /alg/],
    ['an unsigned (alg none) subject token', async () => params(noneToken(keycloakClaims(alice))), 'invalid_request', /alg/],
    ['an ID token as subject', async () => params(await oidc.idToken(alice)), 'invalid_request', /"ID" token, not an access token/],
    ['a refresh token as subject', async () => params(await oidc.accessToken(alice, { typ: 'Refresh' })), 'invalid_request', /"Refresh" token, not an access token/],
    ['a subject token with a JOSE typ other than JWT/at+jwt', async () => params(await oidc.accessToken(alice, {}, { typ: 'logout+jwt' })), 'invalid_request', /typ "logout\+jwt"/],
  ]

  it.each(rows.map(([name, form, code, says, contentType]) => ({ name, form, code, says, contentType })))('$name → 400 $code', async ({ form, code, says, contentType }) => {
    const before = await trail(ps.store)
    const res = await exchange(await agent('summarizer-tech'), await form(), contentType === undefined ? {} : { contentType })
    expect(await expectRefused(res, code)).toMatch(says ?? /./)
    expect(await trail(ps.store)).toEqual(before)
  })

  it('an unsigned request → 401 with Signature-Error, nothing written', async () => {
    const before = await trail(ps.store)
    const res = await exchange(undefined, params(await oidc.accessToken(alice)))
    expect(res.status).toBe(401)
    expect(res.headers.get('signature-error')).not.toBeNull()
    expect(await trail(ps.store)).toEqual(before)
  })

  it('a request whose signature does not cover the body sent → 401, nothing written', async () => {
    const before = await trail(ps.store)
    const tech = await agent('summarizer-tech')
    const url = `${ps.issuer}/token-exchange`
    const signedBody = new TextEncoder().encode(new URLSearchParams(params(await oidc.accessToken(alice), [['scope', 'finance']])).toString())
    const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded' })
    const signed = await signRequest({ method: 'POST', url: new URL(url), headers }, { signer: tech.signer, signatureKey: { scheme: 'jwt', jwt: tech.token, cache: false }, body: signedBody })
    const res = await fetch(url, { method: 'POST', headers: signed.headers, body: new URLSearchParams(params(await oidc.accessToken(alice), [['scope', 'engineering']])).toString() })
    expect(res.status).toBe(401)
    expect(await trail(ps.store)).toEqual(before)
  })
})

describe('token exchange: policy refusals (audited, never a token)', () => {
  type Row = readonly [name: string, user: RealmUser, local: string, extra: [string, string][], code: ExchangeErrorCode, decision: 'deny' | 'ask', says: RegExp, at?: () => RunningPs]
  const rows: Row[] = [
    ['alice + summarizer-tech asking for "engineering hr"', alice, 'summarizer-tech', [['scope', 'engineering hr']], 'invalid_scope', 'deny', /outside .*: hr$/],
    ['alice + summarizer-hr (empty intersection)', alice, 'summarizer-hr', [], 'invalid_scope', 'deny', /may do nothing together/],
    ['alice + summarizer-everything (empty intersection)', alice, 'summarizer-everything', [], 'invalid_scope', 'deny', /may do nothing together/],
    ['bob + summarizer-everything (empty intersection)', bob, 'summarizer-everything', [], 'invalid_scope', 'deny', /may do nothing together/],
    ['bob + summarizer-tech (empty intersection)', bob, 'summarizer-tech', [['scope', 'finance']], 'invalid_scope', 'deny', /may do nothing together/],
    ['an agent the organisation has not listed', alice, 'stranger', [], 'unauthorized_client', 'deny', /not an agent the organisation has authorised/],
    ['an organisation whose consent mode is ask', alice, 'summarizer-tech', [], 'interaction_required', 'ask', /must approve/, () => askPs],
  ]

  it.each(rows.map(([name, user, local, extra, code, decision, says, at]) => ({ name, user, local, extra, code, decision, says, at })))('$name → 400 $code', async ({ user, local, extra, code, decision, says, at }) => {
    const server = at?.() ?? ps
    const before = await trail(server.store)
    const res = await exchange(await agent(local, server), params(await oidc.accessToken(user), extra), { at: server })
    expect(await expectRefused(res, code)).toMatch(says)
    const after = await trail(server.store)
    expect(after).toEqual({ ...before, exchangeEvents: before.exchangeEvents + 1 })
    const [event] = (await server.store.queryAudit({ agentSub: agentId(local), order: 'desc', limit: 1 }))
    expect(event).toMatchObject({ type: TOKEN_EXCHANGE_EVENT, decision, personId: realmPersonId(oidc.issuer, user.sub), agentSub: agentId(local), detail: { subject: { username: user.username }, actor: { sub: agentId(local) }, granted_scopes: [] } })
    expect(event!.reason).toMatch(says)
  })

  it('an agent token revoked while the exchange is decided → unauthorized_client, the issued record withdrawn', async () => {
    const tech = await agent('summarizer-tech', racePs)
    revokeDuring = decodeJwt(tech.token).jti
    try {
      const res = await exchange(tech, params(await oidc.accessToken(alice)), { at: racePs })
      expect(await expectRefused(res, 'unauthorized_client')).toMatch(/revoked or bound elsewhere while the token was being issued/)
    } finally {
      revokeDuring = undefined
    }
    expect(await racePs.store.liveIssued({ agentIss: ap.issuer, agentSub: tech.id, now: Date.now() })).toEqual([])
    const [last] = await racePs.store.queryAudit({ agentSub: tech.id, order: 'desc', limit: 1 })
    expect(last).toMatchObject({ type: TOKEN_EXCHANGE_EVENT, decision: 'deny' })
  })

  it('a sub-agent calling itself → unauthorized_client, nothing written', async () => {
    const { privateJwk, publicJwk } = await generateKeyPair('Ed25519')
    const sub = agentId('summarizer-tech+pay')
    const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub, parentAgent: agentId('summarizer-tech'), cnfJwk: publicJwk, ps: ps.issuer, ...LOOPBACK })
    const before = await trail(ps.store)
    const res = await exchange({ id: sub, signer: await createSigner(privateJwk), publicJwk, jkt: await jwkThumbprint(publicJwk), token }, params(await oidc.accessToken(alice)))
    expect(await expectRefused(res, 'unauthorized_client')).toMatch(/sub-agent/)
    expect(await trail(ps.store)).toEqual(before)
  })

  it('an agent bound to another person at this PS → unauthorized_client', async () => {
    const carol = await ps.addPerson('carol', undefined, { permissions: ['engineering'] })
    await ps.store.commit({ bindings: [{ agentIss: ap.issuer, agentSub: agentId('reviewer-ops'), personId: carol, createdAt: Date.now() }] })
    const before = await trail(ps.store)
    const res = await exchange(await agent('reviewer-ops'), params(await oidc.accessToken(alice)))
    expect(await expectRefused(res, 'unauthorized_client')).toMatch(/acts for another person/)
    expect(await trail(ps.store)).toEqual({ ...before, exchangeEvents: before.exchangeEvents + 1 })
  })
})
