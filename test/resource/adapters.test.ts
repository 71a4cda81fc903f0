/**
 * The resource middleware over real HTTP: one table of cases, each run against the Hono adapter
 * (`aauth-kit/hono`) and the Express 5 adapter (`aauth-kit/express`), both served on 127.0.0.1
 * with issuers publishing real metadata and JWKS on loopback (main draft §Resource Access,
 * §Resource Access Modes, §Auth Token Verification, §Resource Token, §Token Revocation, §Error
 * Responses, §Verification (Server); CHECKLIST Part 3 and the negative tests, IDs in the names).
 *
 * Every case asserts the exact status, `Signature-Error` and `AAuth-Requirement` (absent unless
 * named), that the route handler did not run for a refusal, and what it saw on success. Resource
 * tokens are verified with the resource's own JWKS, fetched from it.
 */
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentCredentials, createAgentClient, type AgentStep } from '../../src/agent/index.js'
import type { Policy, ResourceOptions, RouteRequirement } from '../../src/resource/index.js'
import {
  createSigner,
  decodeJwt,
  generateKeyPair,
  parseRequirement,
  parseSignatureError,
  verifyResourceToken,
  type ResourceTokenClaims,
} from '../../src/protocol/index.js'
import { closeAll, LOOPBACK, loopbackJwks, startAgentProvider, startPersonServer } from '../helpers/aauth-servers.js'
import {
  authToken,
  forgeToken,
  loopIssuer,
  makeAgent,
  personToken,
  resend,
  resourceKeys,
  send,
  startApp,
  type AdapterKind,
  type Agent,
  type App,
  type HandlerRun,
  type LoopIssuer,
  type Sent,
} from './resource-fixture.js'

const MISSION = createHash('sha256').update('book a trip to Sydney').digest('base64url')
const SCOPES = { 'flights.read': 'Read flights', 'bookings.write': 'Book flights', 'payments.send': 'Pay' }
const ROUTES: Record<string, RouteRequirement> = {
  '/whoami': { access: 'agent' },
  '/me': { access: 'person' },
  '/flights': { access: 'auth', scope: 'flights.read' },
  '/bookings': { access: 'auth', scope: 'bookings.write' },
  '/policy/deny': { access: 'agent' },
  '/policy/approve': { access: 'auth', scope: 'payments.send', operation: 'pay' },
  '/session': { access: 'session' },
}

// ---------------------------------------------------------------------------------------------
// The world: issuers on loopback (shared), and per adapter the apps the cases run against.

interface Issuers {
  ap: LoopIssuer
  ps: LoopIssuer
  /** Another person server (not trusted by `trusted`). */
  ps2: LoopIssuer
  as: LoopIssuer
}

interface World {
  kind: AdapterKind
  /** Keys, scope_descriptions, a policy on /policy/*, the default store. */
  main: App
  /** `personServers: [ps]`. */
  trusted: App
  /** `accessServer: as` (four-party). */
  fourParty: App
  /** `authority: 'api.example'` (behind a proxy). */
  proxy: App
  /** `revocation: { maxPerIssuer: 2, issuers: [ps] }`. */
  limited: App
  /** What the policy of `main` saw. */
  policySeen: { method: string; path: string; body: unknown }[]
}

let I: Issuers

const policyFor = (seen: World['policySeen']): Policy => ({ method, path, body }) => {
  if (!path.startsWith('/policy/')) return { decision: 'grant' }
  seen.push({ method, path, body })
  if (path === '/policy/deny') return { decision: 'deny', detail: 'this agent may not do that' }
  return { decision: 'grant' }
}

/** R3: `/policy/approve` is operation `pay`; every payment needs the person's approval of its amount. */
const R3_PAY: ResourceOptions['r3'] = {
  operations: [
    {
      operationId: 'pay',
      method: 'POST',
      path: '/policy/approve',
      scope: 'payments.send',
      display: { summary: 'Send payments' },
      perCall: ({ body }) => {
        const amount = (body as { amount?: unknown } | undefined)?.amount
        return { parameters: { amount }, display: { summary: `Pay ${String(amount)}`, amount } }
      },
    },
  ],
}

async function world(kind: AdapterKind): Promise<World> {
  const policySeen: World['policySeen'] = []
  const keys = await resourceKeys()
  const [main, trusted, fourParty, proxy, limited] = await Promise.all([
    startApp(kind, { routes: ROUTES, options: () => ({ keys, metadata: { name: 'Flights', scope_descriptions: SCOPES }, policy: policyFor(policySeen), r3: R3_PAY }) }),
    startApp(kind, { routes: ROUTES, options: () => ({ keys, personServers: [I.ps.issuer] }) }),
    startApp(kind, { routes: ROUTES, options: () => ({ keys, accessServer: I.as.issuer }) }),
    startApp(kind, { routes: ROUTES, options: () => ({ authority: 'api.example' }) }),
    startApp(kind, { routes: ROUTES, options: () => ({ keys, revocation: { maxPerIssuer: 2, issuers: [I.ps.issuer] } }) }),
  ])
  return { kind, main, trusted, fourParty, proxy, limited, policySeen }
}

// ---------------------------------------------------------------------------------------------
// Assertions.

interface Expected {
  status: number
  /** The `Signature-Error` code; absent when not given. */
  signatureError?: string
  /** The `AAuth-Requirement` value; absent when not given. */
  requirement?: string
  /** The problem body's `error`. */
  problem?: string
}

interface Answer {
  res: Response
  text: string
  body: Record<string, unknown>
}

function header(res: Response) {
  const se = res.headers.get('signature-error')
  const rq = res.headers.get('aauth-requirement')
  return {
    status: res.status,
    signatureError: se === null ? undefined : parseSignatureError(se).error,
    requirement: rq === null ? undefined : parseRequirement(rq, LOOPBACK).requirement,
  }
}

/** `@hono/node-server` replaces the global `Response`, so no `instanceof` here. */
const responseOf = (s: Sent | Response): Response => ('res' in s ? s.res : s)

/** The request is refused as `e` says, and the route handler did not run. */
async function refused(app: App, sent: Promise<Sent | Response>, e: Expected): Promise<Answer> {
  const before = app.runs.length
  const s = await sent
  const res = responseOf(s)
  const text = await res.text()
  expect(header(res), text).toEqual({ status: e.status, signatureError: e.signatureError, requirement: e.requirement })
  let body: Record<string, unknown> = {}
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {
    /* not JSON */
  }
  if (e.signatureError !== undefined) expect(body).toMatchObject({ type: `urn:ietf:params:sig-error:${e.signatureError}`, error: e.signatureError })
  if (e.problem !== undefined) expect(body['error'], text).toBe(e.problem)
  // A refusal (and a 403 in particular, NEG-SIG-19) never carries what a signature failure does.
  if (e.signatureError === undefined) {
    expect(res.headers.get('accept-signature-scheme')).toBeNull()
    expect(res.headers.get('accept-signature-alg')).toBeNull()
  }
  expect(app.runs.length, 'the route handler must not run').toBe(before)
  return { res, text, body }
}

/** The request is served: `200`, the handler ran once; what it saw. */
async function served(app: App, sent: Promise<Sent | Response>): Promise<HandlerRun> {
  const before = app.runs.length
  const s = await sent
  const res = responseOf(s)
  const text = await res.text()
  expect(header(res), text).toEqual({ status: 200, signatureError: undefined, requirement: undefined })
  expect(app.runs.length).toBe(before + 1)
  return app.runs.at(-1)!
}

/**
 * The `401 requirement=auth-token` resource token (RES-AT-01), verified as the agent verifies it
 * (AG-RES-06: signature with the resource's published JWKS, `iss` the resource, `agent_jkt` the
 * signer), with `aud` and the lifetime bound (RES-RT-02, RES-RT-06, RES-RT-08).
 */
async function challenge(app: App, a: Answer, agent: Agent, aud: string): Promise<ResourceTokenClaims & Record<string, unknown>> {
  expect(a.res.status).toBe(401)
  const rq = parseRequirement(a.res.headers.get('aauth-requirement')!, LOOPBACK)
  if (rq.requirement !== 'auth-token' || !rq.recognized) throw new Error(`expected requirement=auth-token, got ${rq.requirement}`)
  const claims = (await verifyResourceToken(rq.resourceToken, { jwks: loopbackJwks(), issuer: app.origin, agentJkt: agent.jkt, ...LOOPBACK })) as ResourceTokenClaims & Record<string, unknown>
  const { header: h } = decodeJwt(rq.resourceToken)
  expect(h).toMatchObject({ typ: 'aa-resource+jwt', alg: 'Ed25519', kid: expect.any(String) })
  expect(claims.aud).toBe(aud)
  expect(claims.exp - claims.iat).toBeLessThanOrEqual(300)
  expect(claims.exp).toBeGreaterThan(Date.now() / 1000)
  expect(claims).not.toHaveProperty('cnf')
  return claims
}

const jti = (token: string): string => String(decodeJwt(token).payload['jti'])
const exp = (token: string): number => Number(decodeJwt(token).payload['exp'])
const hoursAgo = (h: number) => () => Date.now() - h * 3600_000

/** A signed revocation `POST {jti, exp}` by `by`, signing as itself (`jwks_uri`, REV-01). */
async function revoke(app: App, by: LoopIssuer, body: unknown, o: { now?: () => number; unsignedBody?: boolean } = {}): Promise<Sent> {
  const signer = await signerOf(by)
  return send(`${app.origin}/aauth/revoke`, { signer }, { json: body, signatureKey: { scheme: 'jwks_uri', id: by.issuer, dwk: by.dwk, kid: by.key.kid }, ...o })
}

const signers = new Map<LoopIssuer, ReturnType<typeof createSigner>>()
function signerOf(by: LoopIssuer): ReturnType<typeof createSigner> {
  let s = signers.get(by)
  if (s === undefined) signers.set(by, (s = createSigner(by.key.privateJwk)))
  return s
}

// ---------------------------------------------------------------------------------------------
// The table.

interface Case {
  name: string
  /** Run against this adapter only. */
  only?: AdapterKind
  /**
   * A bug in src/ this case reveals (the case is right; it runs as `it.fails` until the fix
   * lands, then fails loudly so the marker is removed).
   */
  bug?: string
  run: (w: World) => Promise<void>
}

const newAgent = () => makeAgent(I.ap, { ps: I.ps.issuer })

const CASES: Case[] = [
  // --- agent identity and request verification ---------------------------------------------
  {
    name: 'RES-ID-02 agent identity: the handler gets the verified agent id, provider, PS and key thumbprint',
    run: async ({ main }) => {
      const agent = await newAgent()
      const run = await served(main, send(`${main.origin}/whoami`, agent))
      expect(run.access).toMatchObject({ mode: 'agent', agentJkt: agent.jkt, agent: { id: agent.id, provider: I.ap.issuer, ps: I.ps.issuer }, token: { type: 'aa-agent+jwt', raw: agent.token } })
      expect(run.access?.person).toBeUndefined()
      expect([...run.access!.scopes]).toEqual([])
    },
  },
  {
    name: 'NEG-SIG-01 / RES-VER-01 / RES-ID-01 an unsigned request is 401 Signature-Error invalid_signature with requirement=agent-token, on every mode',
    run: async ({ main }) => {
      for (const path of ['/whoami', '/me', '/flights', '/session']) await refused(main, send(`${main.origin}${path}`, undefined), { status: 401, signatureError: 'invalid_signature', requirement: 'agent-token' })
    },
  },
  {
    name: 'RES-ID-01 an agent-identity route presented a person token: 401 requirement=agent-token, no Signature-Error',
    run: async ({ main }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent)
      await refused(main, send(`${main.origin}/whoami`, { signer: agent.signer, token: pt }), { status: 401, requirement: 'agent-token' })
    },
  },
  {
    name: 'RES-PI-04 a person-identity route presented an agent token: 401 requirement=person-token',
    run: async ({ main }) => {
      const agent = await newAgent()
      await refused(main, send(`${main.origin}/me`, agent), { status: 401, requirement: 'person-token' })
    },
  },
  {
    name: 'RES-PI-01 / RES-PI-02 a person-identity route with a person token: the handler gets (ps, sub) and the mission',
    run: async ({ main }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent, { sub: 'user-42', mission: MISSION })
      const run = await served(main, send(`${main.origin}/me`, { signer: agent.signer, token: pt }))
      expect(run.access).toMatchObject({ mode: 'person', agentJkt: agent.jkt, person: { ps: I.ps.issuer, sub: 'user-42' }, mission: MISSION, token: { type: 'aa-person+jwt', raw: pt } })
      expect(run.access?.agent).toBeUndefined()
      expect([...run.access!.scopes]).toEqual([])
    },
  },
  {
    name: 'RES-PI-04 / RES-AUTH-05 a person-identity route with an auth token: the person and the granted scopes',
    run: async ({ main }) => {
      const agent = await newAgent()
      const at = await authToken(I.ps, main.origin, agent, { sub: 'user-42', scope: 'flights.read' })
      const run = await served(main, send(`${main.origin}/me`, { signer: agent.signer, token: at }))
      expect(run.access).toMatchObject({ mode: 'person', person: { ps: I.ps.issuer, sub: 'user-42' }, token: { type: 'aa-auth+jwt' } })
      expect([...run.access!.scopes]).toEqual(['flights.read'])
    },
  },

  // --- authorization: challenges, resource tokens, step-up ----------------------------------
  {
    name: 'RES-RT-01 an auth route presented an agent token: 401 requirement=person-token, no resource token',
    run: async ({ main }) => {
      const agent = await newAgent()
      await refused(main, send(`${main.origin}/flights`, agent), { status: 401, requirement: 'person-token' })
    },
  },
  {
    name: 'RES-AT-01 / RES-RT-01..06 an auth route presented a person token: 401 auth-token with a resource token bound to it',
    run: async ({ main }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent, { sub: 'user-7', mission: MISSION })
      const a = await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: pt }), { status: 401, requirement: 'auth-token' })
      const rt = await challenge(main, a, agent, I.ps.issuer)
      expect(rt).toMatchObject({ iss: main.origin, dwk: 'aauth-resource.json', aud: I.ps.issuer, ps: I.ps.issuer, sub: 'user-7', presented_jti: jti(pt), agent_jkt: agent.jkt, scope: 'flights.read', mission_s256: MISSION })
    },
  },
  {
    name: 'RES-VER-02 / RES-VER-03 / NEG-TOK-05 a person token is never authorization, not even one forged to carry the scope',
    run: async ({ main }) => {
      const agent = await newAgent()
      // The genuine person token (same iss/aud/sub/cnf an auth token would have) is challenged…
      const pt = await personToken(I.ps, main.origin, agent)
      const a = await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: pt }), { status: 401, requirement: 'auth-token' })
      await challenge(main, a, agent, I.ps.issuer)
      // …and one whose issuer slipped a scope into it is not a person token at all (TOK-PT-04).
      const now = Math.floor(Date.now() / 1000)
      const forged = await forgeToken(I.ps, 'aa-person+jwt', { iss: I.ps.issuer, dwk: 'aauth-person.json', aud: main.origin, sub: 'user-1', cnf: { jwk: agent.publicJwk }, scope: 'flights.read', jti: 'forged-1', iat: now, exp: now + 600 })
      await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: forged }), { status: 401, signatureError: 'invalid_jwt' })
    },
  },
  {
    name: 'RES-AT-02 / RES-RT-04 an auth token without the scope: step-up resource token naming the auth token',
    run: async ({ main }) => {
      const agent = await newAgent()
      const at = await authToken(I.ps, main.origin, agent, { sub: 'user-8', scope: 'flights.read', mission: MISSION })
      const a = await refused(main, send(`${main.origin}/bookings`, { signer: agent.signer, token: at }), { status: 401, requirement: 'auth-token' })
      const rt = await challenge(main, a, agent, I.ps.issuer)
      expect(rt).toMatchObject({ ps: I.ps.issuer, sub: 'user-8', presented_jti: jti(at), agent_jkt: agent.jkt, scope: 'bookings.write', mission_s256: MISSION })
    },
  },
  {
    name: 'RES-AUTH-01 / RES-AUTH-02 a valid auth token covering the scope: served, with the granted scopes and the person',
    run: async ({ main }) => {
      const agent = await newAgent()
      const at = await authToken(I.ps, main.origin, agent, { sub: 'user-9', scope: 'flights.read bookings.write', mission: MISSION })
      for (const path of ['/flights', '/bookings']) {
        const run = await served(main, send(`${main.origin}${path}`, { signer: agent.signer, token: at }))
        expect(run.access).toMatchObject({ mode: 'auth', agentJkt: agent.jkt, person: { ps: I.ps.issuer, sub: 'user-9' }, mission: MISSION, token: { type: 'aa-auth+jwt', raw: at } })
        expect([...run.access!.scopes].sort()).toEqual(['bookings.write', 'flights.read'])
      }
    },
  },
  {
    name: 'NEG-SIG-15 / NEG-RES-02 an auth token bound to another key: 401 invalid_signature',
    run: async ({ main }) => {
      const agent = await newAgent()
      const other = await generateKeyPair()
      const at = await authToken(I.ps, main.origin, agent, { scope: 'flights.read', cnfJwk: other.publicJwk })
      await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: at }), { status: 401, signatureError: 'invalid_signature' })
      const pt = await personToken(I.ps, main.origin, agent, { cnfJwk: other.publicJwk })
      await refused(main, send(`${main.origin}/me`, { signer: agent.signer, token: pt }), { status: 401, signatureError: 'invalid_signature' })
    },
  },
  {
    name: 'NEG-RES-03 / NEG-RES-01 an auth or person token for another resource (aud): 401 invalid_jwt',
    run: async ({ main }) => {
      const agent = await newAgent()
      const at = await authToken(I.ps, 'https://other-api.example', agent, { scope: 'flights.read' })
      await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: at }), { status: 401, signatureError: 'invalid_jwt' })
      const pt = await personToken(I.ps, 'https://other-api.example', agent)
      await refused(main, send(`${main.origin}/me`, { signer: agent.signer, token: pt }), { status: 401, signatureError: 'invalid_jwt' })
    },
  },
  {
    name: 'personServers: an untrusted PS\'s auth token is 401 invalid_jwt, its person token 403 denied; the trusted PS is served',
    run: async ({ trusted }) => {
      const agent = await newAgent()
      const at2 = await authToken(I.ps2, trusted.origin, agent, { scope: 'flights.read' })
      await refused(trusted, send(`${trusted.origin}/flights`, { signer: agent.signer, token: at2 }), { status: 401, signatureError: 'invalid_jwt' })
      const pt2 = await personToken(I.ps2, trusted.origin, agent)
      await refused(trusted, send(`${trusted.origin}/me`, { signer: agent.signer, token: pt2 }), { status: 403, problem: 'denied' })
      // Not even a resource token for the untrusted PS's person.
      await refused(trusted, send(`${trusted.origin}/flights`, { signer: agent.signer, token: pt2 }), { status: 403, problem: 'denied' })
      const pt = await personToken(I.ps, trusted.origin, agent)
      await served(trusted, send(`${trusted.origin}/me`, { signer: agent.signer, token: pt }))
      const at = await authToken(I.ps, trusted.origin, agent, { scope: 'flights.read' })
      await served(trusted, send(`${trusted.origin}/flights`, { signer: agent.signer, token: at }))
    },
  },
  {
    name: 'RES-RT-02 four-party (accessServer): resource token aud = AS, ps = PS; PS-issued auth tokens refused, AS-issued served',
    run: async ({ fourParty }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, fourParty.origin, agent, { sub: 'user-4', mission: MISSION })
      const a = await refused(fourParty, send(`${fourParty.origin}/flights`, { signer: agent.signer, token: pt }), { status: 401, requirement: 'auth-token' })
      const rt = await challenge(fourParty, a, agent, I.as.issuer)
      expect(rt).toMatchObject({ aud: I.as.issuer, ps: I.ps.issuer, sub: 'user-4', presented_jti: jti(pt), scope: 'flights.read', mission_s256: MISSION })
      const fromPs = await authToken(I.ps, fourParty.origin, agent, { sub: 'user-4', scope: 'flights.read' })
      await refused(fourParty, send(`${fourParty.origin}/flights`, { signer: agent.signer, token: fromPs }), { status: 401, signatureError: 'invalid_jwt' })
      const fromAs = await authToken(I.as, fourParty.origin, agent, { ps: I.ps.issuer, sub: 'user-4', scope: 'flights.read' })
      const run = await served(fourParty, send(`${fourParty.origin}/flights`, { signer: agent.signer, token: fromAs }))
      expect(run.access).toMatchObject({ mode: 'auth', person: { ps: I.ps.issuer, sub: 'user-4' }, token: { type: 'aa-auth+jwt', claims: { iss: I.as.issuer, dwk: 'aauth-access.json' } } })
    },
  },
  {
    name: 'NEG-TOK-01 / RES-AUTH-04 expired agent, person and auth tokens: 401 expired_jwt',
    run: async ({ main }) => {
      const stale = await makeAgent(I.ap, { now: hoursAgo(2) })
      await refused(main, send(`${main.origin}/whoami`, stale), { status: 401, signatureError: 'expired_jwt' })
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent, { now: hoursAgo(1.1) })
      await refused(main, send(`${main.origin}/me`, { signer: agent.signer, token: pt }), { status: 401, signatureError: 'expired_jwt' })
      const at = await authToken(I.ps, main.origin, agent, { scope: 'flights.read', now: hoursAgo(1.1) })
      await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: at }), { status: 401, signatureError: 'expired_jwt' })
    },
  },
  {
    name: 'NEG-SIG-10 the same signed request twice: the second is 401 invalid_signature (replay cache)',
    run: async ({ main }) => {
      const agent = await newAgent()
      const first = send(`${main.origin}/whoami`, agent)
      await served(main, first)
      await refused(main, resend(await first), { status: 401, signatureError: 'invalid_signature' })
    },
  },
  {
    name: 'NEG-SIG-16 the same signature on another path, or a body changed after signing: 401 invalid_signature',
    run: async ({ main }) => {
      const agent = await newAgent()
      const first = send(`${main.origin}/whoami`, agent)
      await served(main, first)
      await refused(main, resend(await first, `${main.origin}/whoami-too`), { status: 401, signatureError: 'invalid_signature' })
      await refused(main, send(`${main.origin}/whoami`, agent, { json: { fare: 'ECO' }, sendBody: '{"fare":"BIZ"}' }), { status: 401, signatureError: 'invalid_signature' })
    },
  },
  {
    name: 'behind a proxy (authority option): a request signed for api.example is served although Host is 127.0.0.1:PORT',
    run: async ({ proxy }) => {
      const agent = await newAgent()
      const run = await served(proxy, send(`${proxy.origin}/whoami`, agent, { signUrl: 'https://api.example/whoami' }))
      expect(run.access?.agent?.id).toBe(agent.id)
    },
  },
  {
    name: 'behind a proxy: a request signed for another authority (or the backend host) is 401 invalid_signature',
    run: async ({ proxy }) => {
      const agent = await newAgent()
      await refused(proxy, send(`${proxy.origin}/whoami`, agent, { signUrl: 'https://other.example/whoami' }), { status: 401, signatureError: 'invalid_signature' })
      await refused(proxy, send(`${proxy.origin}/whoami`, agent), { status: 401, signatureError: 'invalid_signature' })
    },
  },

  // --- policy ------------------------------------------------------------------------------
  {
    name: 'NEG-SIG-19 a policy denial is 403 denied with no Signature-Error nor Accept-Signature-*',
    run: async ({ main, policySeen }) => {
      const agent = await newAgent()
      const a = await refused(main, send(`${main.origin}/policy/deny`, agent), { status: 403, problem: 'denied' })
      expect(a.body['detail']).toBe('this agent may not do that')
      expect(policySeen.at(-1)).toEqual({ method: 'GET', path: '/policy/deny', body: undefined })
    },
  },
  {
    name: 'R3-10 / R3-11 per-call approval on the 401 path: the call is challenged with a proposal bound to the auth token; the approved retry runs once, a repeat gets the retained result',
    run: async ({ main, policySeen }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent, { sub: 'user-p' })
      // R3-03: the class challenge references the class document of the scope.
      const a = await refused(main, send(`${main.origin}/policy/approve`, { signer: agent.signer, token: pt }, { json: { amount: 42 } }), { status: 401, requirement: 'auth-token' })
      const classRt = await challenge(main, a, agent, I.ps.issuer)
      expect(classRt).toMatchObject({ scope: 'payments.send', presented_jti: jti(pt), r3_uri: `${main.origin}/aauth/r3/${String(classRt['r3_s256'])}` })
      const at = await authToken(I.ps, main.origin, agent, { sub: 'user-p', scope: 'payments.send' })
      const b = await refused(main, send(`${main.origin}/policy/approve`, { signer: agent.signer, token: at }, { json: { amount: 42 } }), { status: 401, requirement: 'auth-token' })
      // R3-15: presented_jti is the auth token the call carried.
      const rt = await challenge(main, b, agent, I.ps.issuer)
      expect(rt).toMatchObject({ scope: 'payments.send', presented_jti: jti(at), sub: 'user-p', r3_uri: `${main.origin}/aauth/r3/call/${String(rt['r3_s256'])}` })
      const grant = { r3_uri: rt['r3_uri'], r3_s256: rt['r3_s256'], r3_granted: { vocabulary: 'urn:aauth:vocabulary:openapi', operations: [{ operationId: 'pay' }] } }
      const perCall = await authToken(I.ps, main.origin, agent, { sub: 'user-p', scope: 'payments.send', extra: grant })
      await refused(main, send(`${main.origin}/policy/approve`, { signer: agent.signer, token: perCall }, { json: { amount: 43 } }), { status: 403, problem: 'denied' })
      const run = await served(main, send(`${main.origin}/policy/approve`, { signer: agent.signer, token: perCall }, { json: { amount: 42 } }))
      expect(run.body).toEqual({ amount: 42 })
      expect(policySeen.at(-1)).toEqual({ method: 'POST', path: '/policy/approve', body: { amount: 42 } })
      expect(run.access?.perCall).toEqual({ r3_s256: rt['r3_s256'], jti: jti(perCall) })
      const runs = main.runs.length
      const again = await send(`${main.origin}/policy/approve`, { signer: agent.signer, token: perCall }, { json: { amount: 42 } })
      expect(again.res.status).toBe(200)
      expect(await again.res.json()).toMatchObject({ ok: true, body: { amount: 42 } })
      expect(main.runs.length).toBe(runs)
    },
  },

  // --- resource-managed sessions ------------------------------------------------------------
  {
    name: 'RES-RM-02 a session route without a session: 403 denied',
    run: async ({ main }) => {
      const agent = await newAgent()
      await refused(main, send(`${main.origin}/session`, agent), { status: 403, problem: 'denied' })
    },
  },
  {
    name: 'RES-RM-02 a session from issueSession, sent as Authorization: AAuth under the signature: served with the session data',
    run: async ({ main }) => {
      const agent = await newAgent()
      const who = await served(main, send(`${main.origin}/whoami`, agent))
      const session = main.resource.issueSession(who.access!, { user: 'u-1' })
      const run = await served(main, send(`${main.origin}/session`, agent, { headers: { authorization: `AAuth ${session}` } }))
      expect(run.access).toMatchObject({ mode: 'session', agentJkt: agent.jkt, session: { jkt: agent.jkt, data: { user: 'u-1' } } })
    },
  },
  {
    name: 'RES-RM-02 / NEG-SIG-04 the session value with authorization not covered: 401 invalid_input naming authorization',
    run: async ({ main }) => {
      const agent = await newAgent()
      const who = await served(main, send(`${main.origin}/whoami`, agent))
      const session = main.resource.issueSession(who.access!)
      const a = await refused(main, send(`${main.origin}/session`, agent, { unsignedHeaders: { authorization: `AAuth ${session}` } }), { status: 401, signatureError: 'invalid_input' })
      expect(parseSignatureError(a.res.headers.get('signature-error')!).requiredInput).toContain('authorization')
      // NEG-RES-11: the bare bearer, with no signature at all.
      await refused(main, send(`${main.origin}/session`, undefined, { headers: { authorization: `AAuth ${session}` } }), { status: 401, signatureError: 'invalid_signature', requirement: 'agent-token' })
    },
  },
  {
    name: 'RES-RM-02 a session bound to another agent key: 403 denied',
    run: async ({ main }) => {
      const owner = await newAgent()
      const thief = await newAgent()
      const who = await served(main, send(`${main.origin}/whoami`, owner))
      const session = main.resource.issueSession(who.access!)
      await refused(main, send(`${main.origin}/session`, thief, { headers: { authorization: `AAuth ${session}` } }), { status: 403, problem: 'denied' })
    },
  },
  {
    name: 'RES-RM-03 / NEG-RES-10 a malformed Authorization: AAuth (two credentials) at a session route is 400 invalid_request, not a 500',
    run: async ({ main }) => {
      const agent = await newAgent()
      await refused(main, send(`${main.origin}/session`, agent, { headers: { authorization: 'AAuth abc def' } }), { status: 400, problem: 'invalid_request' })
    },
  },

  // --- metadata and the authorization endpoint ----------------------------------------------
  {
    name: 'RES-META-02 metadata and JWKS are served unsigned by the middleware (the handler does not run)',
    run: async ({ main }) => {
      const before = main.runs.length
      const md = await fetch(`${main.origin}/.well-known/aauth-resource.json`)
      expect(md.status).toBe(200)
      expect(await md.json()).toEqual({
        name: 'Flights',
        scope_descriptions: SCOPES,
        issuer: main.origin,
        jwks_uri: `${main.origin}/.well-known/jwks.json`,
        revocation_endpoint: `${main.origin}/aauth/revoke`,
        authorization_endpoint: `${main.origin}/aauth/authorize`,
        // R3-01: the OpenAPI vocabulary and its discovery endpoint.
        r3_vocabularies: { 'urn:aauth:vocabulary:openapi': `${main.origin}/openapi.json` },
      })
      const jwks = (await (await fetch(`${main.origin}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] }
      expect(jwks.keys.length).toBeGreaterThan(0)
      for (const k of jwks.keys) expect(k).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519', kid: expect.any(String) })
      expect(jwks.keys.some((k) => 'd' in k)).toBe(false)
      const get = await fetch(`${main.origin}/aauth/revoke`)
      expect(get.status).toBe(405)
      expect(get.headers.get('allow')).toBe('POST')
      expect(main.runs.length).toBe(before)
    },
  },
  {
    name: 'RES-AZ-01 / NEG-RES-12 / NEG-TOK-06 the authorization endpoint without a person token: 401 requirement=person-token',
    run: async ({ main }) => {
      const agent = await newAgent()
      const url = `${main.origin}/aauth/authorize`
      await refused(main, send(url, agent, { json: { scope: 'flights.read' } }), { status: 401, requirement: 'person-token' })
      const at = await authToken(I.ps, main.origin, agent, { scope: 'flights.read' })
      await refused(main, send(url, { signer: agent.signer, token: at }, { json: { scope: 'flights.read' } }), { status: 401, requirement: 'person-token' })
      await refused(main, send(url, undefined, { json: { scope: 'flights.read' } }), { status: 401, signatureError: 'invalid_signature', requirement: 'agent-token' })
    },
  },
  {
    name: 'RES-AZ-02 / NEG-RES-15 the authorization endpoint with scope missing or not a string: 400 invalid_request',
    run: async ({ main }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent)
      const url = `${main.origin}/aauth/authorize`
      for (const body of [{}, { scope: '' }, { scope: ['flights.read'] }, { scope: 'flights.read', account: 7 }]) {
        await refused(main, send(url, { signer: agent.signer, token: pt }, { json: body }), { status: 400, problem: 'invalid_request' })
      }
    },
  },
  {
    name: 'RES-AZ-02 / NEG-RES-13 the authorization endpoint with a scope outside scope_descriptions: 400 invalid_scope',
    run: async ({ main }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent)
      await refused(main, send(`${main.origin}/aauth/authorize`, { signer: agent.signer, token: pt }, { json: { scope: 'flights.read admin' } }), { status: 400, problem: 'invalid_scope' })
    },
  },
  {
    name: 'RES-AZ-03 / RES-RT-03 the authorization endpoint with a person token: 200 {resource_token} for the scope and account',
    run: async ({ main }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent, { sub: 'user-az', mission: MISSION })
      const before = main.runs.length
      const { res } = await send(`${main.origin}/aauth/authorize`, { signer: agent.signer, token: pt }, { json: { scope: 'flights.read bookings.write', account: 'acct-9' } })
      expect(res.status).toBe(200)
      expect(res.headers.get('cache-control')).toBe('no-store')
      const { resource_token } = (await res.json()) as { resource_token: string }
      const rt = await verifyResourceToken(resource_token, { jwks: loopbackJwks(), issuer: main.origin, agentJkt: agent.jkt, ...LOOPBACK })
      expect(rt).toMatchObject({ aud: I.ps.issuer, ps: I.ps.issuer, sub: 'user-az', presented_jti: jti(pt), scope: 'flights.read bookings.write', account: 'acct-9', mission_s256: MISSION })
      expect(rt.exp - rt.iat).toBeLessThanOrEqual(300)
      expect(main.runs.length).toBe(before)
    },
  },

  // --- revocation ---------------------------------------------------------------------------
  {
    name: 'REV-01 / REV-03 / NEG-RES-20 a PS revocation signed as itself (jwks_uri): 200 with an empty body, held token or not',
    run: async ({ main }) => {
      const before = main.runs.length
      const { res } = await revoke(main, I.ps, { jti: 'never-seen', exp: Math.floor(Date.now() / 1000) + 600 })
      expect(header(res)).toEqual({ status: 200, signatureError: undefined, requirement: undefined })
      expect(await res.text()).toBe('')
      expect(res.headers.get('content-type')).toBeNull()
      expect(main.runs.length).toBe(before)
    },
  },
  {
    name: 'REV-04 / NEG-RES-09 a revoked auth token (accepted before): 401 revoked_jwt with requirement=person-token, no resource token',
    run: async ({ main }) => {
      const agent = await newAgent()
      const at = await authToken(I.ps, main.origin, agent, { scope: 'flights.read' })
      await served(main, send(`${main.origin}/flights`, { signer: agent.signer, token: at }))
      expect((await revoke(main, I.ps, { jti: jti(at), exp: exp(at) })).res.status).toBe(200)
      await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: at }), { status: 401, signatureError: 'revoked_jwt', requirement: 'person-token' })
      await refused(main, send(`${main.origin}/me`, { signer: agent.signer, token: at }), { status: 401, signatureError: 'revoked_jwt', requirement: 'person-token' })
    },
  },
  {
    name: 'REV-04 / NEG-RES-24 a revoked person token: 401 revoked_jwt everywhere, and no resource token names it',
    run: async ({ main }) => {
      const agent = await newAgent()
      const pt = await personToken(I.ps, main.origin, agent)
      await served(main, send(`${main.origin}/me`, { signer: agent.signer, token: pt }))
      expect((await revoke(main, I.ps, { jti: jti(pt), exp: exp(pt) })).res.status).toBe(200)
      await refused(main, send(`${main.origin}/me`, { signer: agent.signer, token: pt }), { status: 401, signatureError: 'revoked_jwt' })
      await refused(main, send(`${main.origin}/flights`, { signer: agent.signer, token: pt }), { status: 401, signatureError: 'revoked_jwt' })
      const a = await refused(main, send(`${main.origin}/aauth/authorize`, { signer: agent.signer, token: pt }, { json: { scope: 'flights.read' } }), { status: 401, signatureError: 'revoked_jwt' })
      expect(a.text).not.toContain('resource_token')
    },
  },
  {
    name: 'REV-02 a caller revokes only its own tokens: PS2 revoking PS\'s jti leaves PS\'s token valid',
    run: async ({ main }) => {
      const agent = await newAgent()
      const at = await authToken(I.ps, main.origin, agent, { scope: 'flights.read' })
      expect((await revoke(main, I.ps2, { jti: jti(at), exp: exp(at) })).res.status).toBe(200)
      await served(main, send(`${main.origin}/flights`, { signer: agent.signer, token: at }))
    },
  },
  {
    name: 'NEG-RES-21 a revocation missing jti or exp, or not JSON: 400 invalid_request',
    run: async ({ main }) => {
      const exp = Math.floor(Date.now() / 1000) + 600
      for (const body of [{ exp }, { jti: 'x' }, { jti: '', exp }, { jti: 'x', exp: 'soon' }, { iss: I.ps.issuer, jti: 'x' }, 'just a string']) {
        await refused(main, revoke(main, I.ps, body), { status: 400, problem: 'invalid_request' })
      }
    },
  },
  {
    name: 'REV-03 a revocation whose exp is further out than any token lifetime accepted: 400 invalid_request',
    run: async ({ main }) => {
      await refused(main, revoke(main, I.ps, { jti: 'far', exp: Math.floor(Date.now() / 1000) + 3600 + 600 }), { status: 400, problem: 'invalid_request' })
    },
  },
  {
    name: 'REV-01 / NEG-RES-22 an unsigned revocation is 401 invalid_signature; one not covering content-digest 401 invalid_input',
    run: async ({ main }) => {
      const body = { jti: 'x', exp: Math.floor(Date.now() / 1000) + 600 }
      await refused(main, send(`${main.origin}/aauth/revoke`, undefined, { json: body }), { status: 401, signatureError: 'invalid_signature' })
      const a = await refused(main, revoke(main, I.ps, body, { unsignedBody: true }), { status: 401, signatureError: 'invalid_input' })
      expect(parseSignatureError(a.res.headers.get('signature-error')!).requiredInput).toEqual(expect.arrayContaining(['content-type', 'content-digest']))
    },
  },
  {
    name: 'REV-01 a revocation signed by an agent (jwt scheme, agent token) is refused with 401',
    run: async ({ main }) => {
      const agent = await newAgent()
      // The verifier accepts the jwt scheme at step 4 and refuses the agent token's typ at step 5.
      await refused(main, send(`${main.origin}/aauth/revoke`, agent, { json: { jti: 'x', exp: Math.floor(Date.now() / 1000) + 600 } }), { status: 401, signatureError: 'invalid_jwt' })
    },
  },
  {
    name: 'REV-02 / NEG-RES-19 per-issuer bound: 429 rate_limited with Retry-After; an issuer not accepted: 403 unsupported_iss',
    run: async ({ limited }) => {
      const exp = Math.floor(Date.now() / 1000) + 600
      expect((await revoke(limited, I.ps, { jti: 'r1', exp })).res.status).toBe(200)
      expect((await revoke(limited, I.ps, { jti: 'r2', exp })).res.status).toBe(200)
      const a = await refused(limited, revoke(limited, I.ps, { jti: 'r3', exp }), { status: 429, problem: 'rate_limited' })
      expect(Number(a.res.headers.get('retry-after'))).toBeGreaterThan(0)
      await refused(limited, revoke(limited, I.ps2, { jti: 'r4', exp }), { status: 403, problem: 'unsupported_iss' })
    },
  },
  {
    name: 'REV-03 two revocations a PS signs in the same second (a cascade) are both recorded',
    run: async ({ main }) => {
      const agent = await newAgent()
      const at1 = await authToken(I.ps, main.origin, agent, { scope: 'flights.read' })
      const at2 = await authToken(I.ps, main.origin, agent, { scope: 'bookings.write' })
      const second = Math.floor(Date.now() / 1000) * 1000
      const r1 = await revoke(main, I.ps, { jti: jti(at1), exp: exp(at1) }, { now: () => second })
      const r2 = await revoke(main, I.ps, { jti: jti(at2), exp: exp(at2) }, { now: () => second })
      expect([r1.res.status, r2.res.status], await r2.res.text()).toEqual([200, 200])
      await refused(main, send(`${main.origin}/bookings`, { signer: agent.signer, token: at2 }), { status: 401, signatureError: 'revoked_jwt', requirement: 'person-token' })
    },
  },

  // --- bodies -------------------------------------------------------------------------------
  {
    name: 'a POST with a JSON body (content-digest covered) is verified and the handler still reads it (Hono: c.req.json(); Express: express.json() after aauth)',
    run: async ({ main }) => {
      const agent = await newAgent()
      const run = await served(main, send(`${main.origin}/whoami`, agent, { json: { fare: 'ECO', pax: [1, 2] } }))
      expect(run.body).toEqual({ fare: 'ECO', pax: [1, 2] })
      expect(run.method).toBe('POST')
    },
  },
  {
    name: 'Express: express.json({ verify: keepRawBody }) before aauth() verifies the raw bytes; the handler gets req.body',
    only: 'express',
    run: async () => {
      const app = await startApp('express', { bodyParser: 'before-keep-raw' })
      try {
        const agent = await newAgent()
        const run = await served(app, send(`${app.origin}/whoami`, agent, { json: { fare: 'ECO' } }))
        expect(run.body).toEqual({ fare: 'ECO' })
        await refused(app, send(`${app.origin}/whoami`, agent, { json: { fare: 'ECO' }, sendBody: '{"fare":"BIZ"}' }), { status: 401, signatureError: 'invalid_signature' })
      } finally {
        await app.close()
      }
    },
  },
  {
    name: 'Express: express.json() before aauth() without keepRawBody is a 500 that says why; the handler does not run',
    only: 'express',
    run: async () => {
      const app = await startApp('express', { bodyParser: 'before-plain' })
      try {
        const agent = await newAgent()
        const before = app.runs.length
        const { res } = await send(`${app.origin}/whoami`, agent, { json: { fare: 'ECO' } })
        const text = await res.text()
        expect(res.status, text).toBe(500)
        expect(JSON.parse(text)).toMatchObject({ error: 'server_error', detail: expect.stringContaining('keepRawBody') })
        expect(app.runs.length).toBe(before)
      } finally {
        await app.close()
      }
    },
  },

  // --- end to end with the real agent client ------------------------------------------------
  {
    name: 'AG-RES-04 / AG-RES-05 end to end: the real agent client goes agent → person → auth against the adapter and gets 200',
    run: async ({ main }) => {
      const { ap } = await startAgentProvider()
      const ps = await startPersonServer()
      const key = await generateKeyPair('Ed25519')
      const signer = await createSigner(key.privateJwk)
      const credentials = new AgentCredentials({ refresh: async () => ({ agentToken: await ap.issue({ local: 'travel-bot', cnfJwk: key.publicJwk, ps: ps.issuer }), signer }) })
      const steps: AgentStep[] = []
      const client = createAgentClient({ credentials, ...LOOPBACK, minPollIntervalMs: 0, onStep: (s) => steps.push(s) })
      // The flow takes a few milliseconds on loopback: start it at the top of a second, so that
      // whether it straddles a second boundary is not left to chance.
      await new Promise((r) => setTimeout(r, 1005 - (Date.now() % 1000)))
      const before = main.runs.length
      const res = await client.fetch(`${main.origin}/flights`)
      expect(res.status, await res.clone().text()).toBe(200)
      expect(main.runs.length).toBe(before + 1)
      expect(main.runs.at(-1)!.access).toMatchObject({ mode: 'auth', person: { ps: ps.issuer }, token: { type: 'aa-auth+jwt' } })
      expect([...main.runs.at(-1)!.access!.scopes]).toEqual(['flights.read'])
      const atResource = steps.flatMap((s) => (s.type === 'request' && s.url.startsWith(main.origin) ? [s.presenting] : []))
      expect(atResource).toEqual(['agent', 'person', 'auth'])
    },
  },
]

// ---------------------------------------------------------------------------------------------

/** Endpoints a PS document must name (never called here: the tokens are minted directly). */
const PS_ENDPOINTS = { person_token_endpoint: 'https://ps.invalid/person', auth_token_endpoint: 'https://ps.invalid/token' }

beforeAll(async () => {
  const [ap, ps, ps2, as] = await Promise.all([
    loopIssuer('aauth-agent.json'),
    loopIssuer('aauth-person.json', PS_ENDPOINTS),
    loopIssuer('aauth-person.json', PS_ENDPOINTS),
    loopIssuer('aauth-access.json', { auth_token_endpoint: 'https://as.invalid/token' }),
  ])
  I = { ap, ps, ps2, as }
})

afterAll(closeAll)

describe.each(['hono', 'express'] as const)('resource middleware over HTTP: %s adapter', (kind) => {
  let w: World
  beforeAll(async () => {
    w = await world(kind)
  })
  afterAll(async () => {
    await Promise.all([w.main, w.trusted, w.fourParty, w.proxy, w.limited].map((a) => a.close()))
  })
  for (const c of CASES) {
    if (c.only !== undefined && c.only !== kind) continue
    ;(c.bug === undefined ? it : it.fails)(c.name, () => c.run(w))
  }
})
