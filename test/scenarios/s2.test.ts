/**
 * Scenario S2 (/work/shared/scenarios.md), end to end over real parts on 127.0.0.1:
 *
 * - four agents run as SPIFFE workloads, each with its own real gRPC Workload API server on a
 *   Unix socket (test/helpers/spiffe.ts) handing out short-lived SVIDs;
 * - the agent provider attests them by JWT-SVID (`spiffeAttestation`) and issues agent tokens
 *   carrying `spiffe_id`; the agents' Ed25519 keys are generated in memory where they run;
 * - alice (engineering, finance) and bob (hr) live in a Keycloak-shaped realm, a separate
 *   oidc-provider process (test/helpers/keycloak.ts);
 * - the organisation's Person Server holds the S2 capability table, delegates login to the realm
 *   and offers RFC 8693 token exchange;
 * - the Documents API (examples/documents-api.ts, Express) serves documents per department.
 *
 * The table of every (person, agent) pair: the exchange grants exactly person ∩ agent, and each
 * department's documents are returned only when both allow it; everything else is refused with
 * its status and error. The AAuth-native path (consent at the PS, person logged in through the
 * realm) runs in Chromium. Test names start with `S2` (run with `-t S2`).
 */
import { mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { createAgentClient, createAgentProvider, enroll, KeyRing, MemoryEnrollmentStore, type AgentClient, type AgentProvider } from '../../src/agent/index.js'
import { exchangeToken, realmPersonId, TOKEN_EXCHANGE_EVENT, TokenExchangeError, tokenExchange } from '../../src/bridges/keycloak/index.js'
import { createWorkloadApiSource, spiffeAgentCredentials, spiffeAttestation, staticTrustBundles, type SpiffeAgent, type WorkloadApiSource } from '../../src/bridges/spiffe/index.js'
import { decodeJwt, generateKeyPair, parseRequirement } from '../../src/protocol/index.js'
import { DEPARTMENTS, DOCUMENTS, documentsApi, type DocumentRead } from '../../examples/documents-api.js'
import { closeAll, LOOPBACK, serve } from '../helpers/aauth-servers.js'
import { launchChromium } from '../helpers/chromium.js'
import { closeKeycloakRealms, startKeycloakRealm, startPsWithKeycloakLogin, type KeycloakRealmProcess } from '../helpers/keycloak.js'
import type { RunningPs } from '../helpers/person-server.js'
import { createTestCa, prepareJwks, startWorkloadApi, type TestCa, type TestWorkloadApi } from '../helpers/spiffe.js'

const TRUST_DOMAIN = 'demo.example.com'
const AGENTS = ['summarizer-hr', 'summarizer-tech', 'reviewer-ops', 'summarizer-everything'] as const
type AgentName = (typeof AGENTS)[number]
const spiffeIdOf = (name: string): string => `spiffe://${TRUST_DOMAIN}/agent/${name}`
/** SVID lifetime at the Workload APIs (minutes): short-lived, as SPIRE issues them. */
const SVID_TTL_MIN = 5

/** The S2 policy: agent → capability set. */
const CAPABILITIES: Record<AgentName, readonly string[]> = {
  'summarizer-hr': ['hr'],
  'summarizer-tech': ['finance', 'engineering'],
  'reviewer-ops': ['engineering', 'admin'],
  'summarizer-everything': [],
}
/** The realm: each person's departments. */
const PERMISSIONS = { alice: ['engineering', 'finance'], bob: ['hr'] } as const
type PersonName = keyof typeof PERMISSIONS

let ca: TestCa
let realm: KeycloakRealmProcess
let apIssuer: string
let ap: AgentProvider
let ps: RunningPs
let docs: { origin: string; reads: DocumentRead[] }
const apis = new Map<AgentName, TestWorkloadApi>()
const sources: WorkloadApiSource[] = []
const sourceOf = new Map<AgentName, WorkloadApiSource>()
const agents = new Map<AgentName, SpiffeAgent>()
const servers: Server[] = []
/** What the agent provider's attest hook saw: JWT-SVIDs presented, per phase. */
const presented: { phase: string; jwt: string }[] = []

const agentId = (name: string): string => `aauth:${name}@${new URL(apIssuer).host}`

/**
 * A new agent client on the agent's SPIFFE credentials, after a fresh agent token (a new key, a
 * new JWT-SVID presented at the AP): each person the agent serves gets its own client and key.
 */
async function freshClient(name: AgentName, extra: Partial<Parameters<typeof createAgentClient>[0]> = {}): Promise<AgentClient> {
  const credentials = agents.get(name)!.credentials
  credentials.invalidate((await credentials.current()).agentToken)
  return createAgentClient({ credentials, ...LOOPBACK, minPollIntervalMs: 0, ...extra })
}

beforeAll(async () => {
  ca = await prepareJwks(await createTestCa(TRUST_DOMAIN))
  realm = await startKeycloakRealm()

  // The agent provider: serves first so its issuer (and so the agent ids) is known.
  apIssuer = await serve((req) => ap.app.fetch(req))
  const attest = spiffeAttestation({
    bundles: staticTrustBundles({ [TRUST_DOMAIN]: ca.bundle() }),
    audience: apIssuer,
    // Workloads under /agent/ that the policy names are agents of this PS; nobody else.
    agents: (spiffeId) => {
      const name = AGENTS.find((a) => spiffeIdOf(a) === spiffeId)
      return name === undefined ? undefined : { local: name, ps: ps.issuer }
    },
  })

  // The organisation's PS: S2 table, login through the realm, token exchange for realm tokens.
  ;({ ps } = await startPsWithKeycloakLogin(realm, {
    ps: {
      organization: { agents: Object.fromEntries(AGENTS.map((a) => [agentId(a), { scopes: CAPABILITIES[a] }])) },
      extensions: [tokenExchange({ realm: { issuer: realm.issuer, ...LOOPBACK }, audience: 'aauth-person-server' })],
    },
  }))
  ap = createAgentProvider({
    issuer: apIssuer,
    keys: await KeyRing.create(),
    store: new MemoryEnrollmentStore(),
    name: 'Demo Agents',
    ...LOOPBACK,
    attest: async (input) => {
      const jwt = input.body['spiffe_jwt_svid']
      if (typeof jwt === 'string') presented.push({ phase: input.phase, jwt })
      return attest(input)
    },
  })

  // The Documents API's issuer is the origin it is served at: listen first, then build.
  let built: ReturnType<typeof documentsApi> | undefined
  const server = createServer((req, res) => built!.app(req, res))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  built = documentsApi({ issuer: origin, keys: await KeyRing.create(), personServers: [ps.issuer], ...LOOPBACK })
  docs = { origin, reads: built.reads }

  // Each workload: its Workload API, its SVID source, its in-memory Ed25519 key, its enrolment.
  for (const name of AGENTS) {
    const api = await startWorkloadApi({ ca, spiffeId: spiffeIdOf(name), svidTtlMin: SVID_TTL_MIN })
    apis.set(name, api)
    const source = createWorkloadApiSource({ socketPath: api.endpoint })
    sources.push(source)
    sourceOf.set(name, source)
    agents.set(name, await spiffeAgentCredentials({ source, provider: apIssuer, via: 'jwt-svid', allowInsecureLoopback: true }))
  }
}, 60_000)

afterAll(async () => {
  for (const s of sources) s.close()
  for (const api of apis.values()) await api.close()
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))))
  ps?.ps.close()
  await ps?.store.close()
  await closeKeycloakRealms()
  await closeAll()
})

/** The person's realm access token, as the app that logged them in holds it. */
const realmToken = async (person: PersonName): Promise<string> => (await realm.passwordGrant(person)).access_token

/** The departments both allow, in the Documents API's order. */
const intersection = (person: PersonName, agent: AgentName): string[] => DEPARTMENTS.filter((d) => (PERMISSIONS[person] as readonly string[]).includes(d) && CAPABILITIES[agent].includes(d))

/** A GET signed by the client as it stands (held auth token for the API, else its agent token), sent once. */
async function getOnce(client: AgentClient, path: string): Promise<Response> {
  const prepared = await client.prepare(`${docs.origin}${path}`)
  return fetch(prepared.url, { headers: prepared.headers })
}

describe('S2 SPIFFE-attested agents', () => {
  it('S2 AG-01 each workload enrols with a JWT-SVID from its Workload API; its agent tokens carry spiffe_id and bind an Ed25519 key generated where it runs', async () => {
    for (const name of AGENTS) {
      const agent = agents.get(name)!
      expect(agent.agent).toBe(agentId(name))
      expect(agent.durableKey).toMatchObject({ kty: 'OKP', crv: 'Ed25519' })
      const { claims, agentToken } = await agent.credentials.current()
      expect(claims).toMatchObject({ iss: apIssuer, sub: agentId(name), spiffe_id: spiffeIdOf(name), ps: ps.issuer })
      expect(claims.cnf.jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' })
      expect(decodeJwt(agentToken).header['typ']).toBe('aa-agent+jwt')
    }
    // Enrolment and every token request presented a JWT-SVID for the AP, short-lived.
    expect(presented.filter((p) => p.phase === 'enroll')).toHaveLength(AGENTS.length)
    for (const { jwt } of presented) {
      const { payload } = decodeJwt(jwt)
      expect(payload['aud']).toEqual([apIssuer])
      expect((payload['exp'] as number) - (payload['iat'] as number)).toBeLessThanOrEqual(300)
    }
  })

  it('S2 a workload the policy does not name is refused at the agent provider: 403 denied, svid_error unmapped_spiffe_id, nothing enrolled', async () => {
    const api = await startWorkloadApi({ ca, spiffeId: spiffeIdOf('intruder'), svidTtlMin: SVID_TTL_MIN })
    const source = createWorkloadApiSource({ socketPath: api.endpoint })
    try {
      const durableKey = (await generateKeyPair('Ed25519')).privateJwk
      const svid = await source.jwtSvid(apIssuer)
      await expect(enroll({ provider: apIssuer, durableKey, body: { spiffe_jwt_svid: svid.token } })).rejects.toMatchObject({ code: 'denied', status: 403 })
      expect(presented.filter((p) => p.phase === 'enroll')).toHaveLength(AGENTS.length + 1)
    } finally {
      source.close()
      await api.close()
    }
  })
})

/** The S2 table: every person with every agent. */
const TABLE: [PersonName, AgentName][] = (['alice', 'bob'] as const).flatMap((p) => AGENTS.map((a): [PersonName, AgentName] => [p, a]))

describe('S2 permission intersection through RFC 8693 token exchange', () => {
  it.each(TABLE)('S2 %s + %s: the exchange grants exactly person ∩ agent; the Documents API returns exactly those departments, refuses the rest', async (person, agent) => {
    const allowed = intersection(person, agent)
    const client = await freshClient(agent)
    const readsBefore = docs.reads.length
    const auditBefore = (await ps.store.queryAudit({ limit: 10_000 })).filter((e) => e.type === TOKEN_EXCHANGE_EVENT).length

    let directedSub: string | undefined
    const exchanged = exchangeToken(client, { personServer: ps.issuer, subjectToken: await realmToken(person), resource: docs.origin, ...LOOPBACK })
    if (allowed.length === 0) {
      // An empty intersection is a denial, never a token with nothing in it.
      const refusal = await exchanged.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(refusal).toBeInstanceOf(TokenExchangeError)
      expect(refusal).toMatchObject({ status: 400, error: 'invalid_scope' })
    } else {
      const held = await exchanged
      directedSub = held.sub
      expect([...held.scope].sort()).toEqual([...allowed].sort())
      const claims = decodeJwt(held.token).payload
      expect(claims).toMatchObject({ iss: ps.issuer, aud: docs.origin, cnf: { jwk: { x: ((await agents.get(agent)!.credentials.current()).claims.cnf.jwk as { x: string }).x } } })
    }
    // Both principals are on the audit trail, the decision with them.
    const events = (await ps.store.queryAudit({ limit: 10_000 })).filter((e) => e.type === TOKEN_EXCHANGE_EVENT)
    expect(events).toHaveLength(auditBefore + 1)
    const event = events.at(-1)!
    expect(event).toMatchObject({ agentSub: agentId(agent), decision: allowed.length === 0 ? 'deny' : 'grant' })
    expect(event.detail).toMatchObject({ subject: { realm: realm.issuer, username: person }, actor: { sub: agentId(agent), iss: apIssuer, spiffe_id: spiffeIdOf(agent) } })

    for (const department of DEPARTMENTS) {
      const res = await getOnce(client, `/documents/${department}`)
      if (allowed.includes(department)) {
        expect(res.status, `${res.headers.get('signature-error')} ${res.headers.get('aauth-requirement')} ${await res.clone().text()}`).toBe(200)
        const body = (await res.json()) as { documents: { id: string }[] }
        expect(body.documents.map((d) => d.id)).toEqual(DOCUMENTS.filter((d) => d.department === department).map((d) => d.id))
      } else {
        // Refused with a challenge: holding an auth token that does not cover the department, an
        // auth-token requirement for it (a resource token to take to the PS); holding none, the
        // person must be known first (person-token).
        expect(res.status).toBe(401)
        const header = res.headers.get('aauth-requirement')
        expect(header, `${res.status} ${res.headers.get('signature-error')} ${await res.clone().text()}`).not.toBeNull()
        const requirement = parseRequirement(header!)
        if (allowed.length === 0) expect(requirement).toMatchObject({ requirement: 'person-token' })
        else {
          expect(requirement).toMatchObject({ requirement: 'auth-token' })
          const rt = decodeJwt((requirement as { resourceToken: string }).resourceToken).payload
          expect(rt).toMatchObject({ aud: ps.issuer, scope: department, agent_jkt: (await agents.get(agent)!.credentials.current()).jkt })
        }
      }
    }
    // Exactly the allowed documents left the API, under this person's (directed) identifier and the
    // granted scope. (An auth token names no agent: its key binding is the agent.)
    const reads = docs.reads.slice(readsBefore)
    expect(reads.map((r) => r.documents).flat().sort()).toEqual(DOCUMENTS.filter((d) => allowed.includes(d.department)).map((d) => d.id).sort())
    for (const r of reads) expect(r).toEqual({ agent: undefined, ps: ps.issuer, sub: directedSub, scopes: [...allowed].sort(), documents: expect.any(Array) })
  })

  it('S2 the realm person the exchange recorded is the realm user, with the realm roles as permissions', async () => {
    const sub = decodeJwt(await realmToken('alice')).payload['sub'] as string
    expect(await ps.store.getPerson(realmPersonId(realm.issuer, sub))).toMatchObject({ username: 'alice', permissions: ['engineering', 'finance'] })
  })
})

describe('S2 AAuth-native: consent at the PS, the person logged in through the realm (Chromium)', () => {
  let browser: Browser
  let page: Page
  beforeAll(async () => {
    browser = await launchChromium()
    page = await (await browser.newContext()).newPage()
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
  })

  it('S2 alice + summarizer-tech reads finance after logging in through Keycloak at her PS', async () => {
    const pages: string[] = []
    const client = await freshClient('summarizer-tech', {
      capabilities: ['interaction'],
      onInteraction: async ({ userUrl }) => {
        await page.goto(userUrl)
        pages.push(page.url())
        if (new URL(page.url()).pathname === '/login') {
          await Promise.all([page.waitForURL((u) => u.href.startsWith(`${realm.issuer}/`)), page.click('text=Log in with Keycloak')])
          await page.fill('#username', 'alice')
          await page.fill('#password', realm.config.users.find((u) => u.username === 'alice')!.password)
          await Promise.all([page.waitForURL((u) => u.href.startsWith(ps.issuer)), page.click('#kc-login')])
        }
        pages.push(await page.innerText('body'))
        mkdirSync('test-artifacts', { recursive: true })
        await page.screenshot({ path: 'test-artifacts/s2-consent-after-keycloak-login.png', fullPage: true })
        const approve = page.locator('button[name="action"][value="approve"]')
        if ((await approve.count()) > 0) await Promise.all([page.waitForLoadState('load'), approve.click()])
      },
    })
    const res = await client.fetch(`${docs.origin}/documents/finance`)
    expect(res.status).toBe(200)
    expect(((await res.json()) as { documents: { id: string }[] }).documents.map((d) => d.id)).toEqual(['fin-1', 'fin-2'])
    // The PS sent alice to log in, she did so at the realm, and approved the agent on the PS page.
    expect(new URL(pages[0]!).pathname).toBe('/login')
    expect(pages[1]).toContain('Logged in as Alice Example (alice)')
    expect(pages[1]).toContain(`Agent ${agentId('summarizer-tech')}`)
    // The agent is now bound to alice's realm person; within person ∩ agent the organisation's
    // pre-authorisation stands (no second page), so finance was granted without another prompt.
    const aliceSub = decodeJwt(await realmToken('alice')).payload['sub'] as string
    expect(await ps.store.getBinding(apIssuer, agentId('summarizer-tech'))).toMatchObject({ personId: realmPersonId(realm.issuer, aliceSub) })
    expect(pages).toHaveLength(2)
    // Outside the intersection (alice has no hr), the PS refuses: no token, no documents.
    const readsBefore = docs.reads.length
    await expect(client.fetch(`${docs.origin}/documents/hr`)).rejects.toMatchObject({ code: 'denied', status: 403, message: expect.stringMatching(/outside what alice and this agent may both do: hr/) })
    expect(docs.reads.slice(readsBefore)).toEqual([])
  })
})

describe('S2 nothing is a static secret', () => {
  it('S2 SVIDs are short-lived and rotate mid-run; the agent keeps working on the rotated SVID without a restart', async () => {
    const source = sourceOf.get('summarizer-hr')!
    const before = await source.x509Svid()
    expect(before.expiresAt - Date.now()).toBeLessThanOrEqual(SVID_TTL_MIN * 60_000)
    const rotated = new Promise<Uint8Array>((resolve) => {
      const off = source.onRotate((svid) => {
        off()
        resolve(svid.certChain[0]!)
      })
    })
    const minted = await apis.get('summarizer-hr')!.rotate()
    expect(Buffer.from(await rotated).equals(Buffer.from(minted.der))).toBe(true)
    expect(Buffer.from((await source.x509Svid()).certChain[0]!).equals(Buffer.from(before.certChain[0]!))).toBe(false)
    // A new agent token (a new JWT-SVID presented), then bob + summarizer-hr reads hr as before.
    const client = await freshClient('summarizer-hr')
    const held = await exchangeToken(client, { personServer: ps.issuer, subjectToken: await realmToken('bob'), resource: docs.origin, ...LOOPBACK })
    expect([...held.scope]).toEqual(['hr'])
    expect((await getOnce(client, '/documents/hr')).status).toBe(200)
  })

  it('S2 agent keys are generated where the agents run (one per workload, a new one per agent token); the realm clients are public (PKCE, no client secret); tokens are short-lived', async () => {
    const durable = AGENTS.map((a) => agents.get(a)!.durableKey.d)
    expect(new Set(durable).size).toBe(AGENTS.length)
    const credentials = agents.get('reviewer-ops')!.credentials
    const k1 = (await credentials.current()).jkt
    credentials.invalidate((await credentials.current()).agentToken)
    const k2 = (await credentials.current()).jkt
    expect(k2).not.toBe(k1)
    for (const client of realm.config.clients) expect(Object.keys(client).filter((k) => /secret/i.test(k))).toEqual([])
    // The subject token and the auth token minted from it live minutes, the auth token never longer.
    const subject = await realmToken('alice')
    const s = decodeJwt(subject).payload as { iat: number; exp: number }
    expect(s.exp - s.iat).toBeLessThanOrEqual(300)
    const client = await freshClient('summarizer-tech')
    const held = await exchangeToken(client, { personServer: ps.issuer, subjectToken: subject, resource: docs.origin, ...LOOPBACK })
    expect(held.exp).toBeLessThanOrEqual(s.exp)
  })
})
