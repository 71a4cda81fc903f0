/**
 * A real Person Server on 127.0.0.1 for tests (SQLite in memory unless a store is given), with
 * people, plus a "world": an agent provider, the PS, a resource (our Hono middleware) and an
 * agent client, all over loopback HTTP.
 */
import { AgentCredentials, createAgentClient, KeyRing, type AgentClientOptions, type AgentStep } from '../../src/agent/index.js'
import { createPersonServer, hashPassword, SqliteStore, type PersonServer, type PersonServerOptions, type PersonServerStore } from '../../src/person-server/index.js'
import { createSigner, generateKeyPair, type GeneratedKeyPair } from '../../src/protocol/index.js'
import type { RouteRequirement } from '../../src/resource/index.js'
import { resourceKeys, startApp, type App } from '../resource/resource-fixture.js'
import { LOOPBACK, serve, startAgentProvider } from './aauth-servers.js'

/** A running PS and its store. */
export interface RunningPs {
  readonly issuer: string
  readonly ps: PersonServer
  readonly store: PersonServerStore
  /** Adds a person with a password; returns the person id. */
  addPerson(username: string, password?: string, extra?: { permissions?: string[]; tenant?: string }): Promise<string>
}

let counter = 0

/** Starts a PS on loopback. */
export async function startRealPersonServer(o: Partial<Omit<PersonServerOptions, 'issuer'>> & { store?: PersonServerStore; loginMethodsFor?: (issuer: string) => PersonServerOptions['loginMethods'] } = {}): Promise<RunningPs> {
  const store = o.store ?? (await SqliteStore.open({ filename: ':memory:' }))
  let ps: PersonServer | undefined
  const issuer = await serve((req) => ps!.app.fetch(req))
  const { loginMethodsFor, ...rest } = o
  ps = await createPersonServer({ keys: await KeyRing.create(), name: 'Alice’s Person Server', ...LOOPBACK, ...rest, ...(loginMethodsFor === undefined ? {} : { loginMethods: loginMethodsFor(issuer) }), issuer, store })
  return {
    issuer,
    ps,
    store,
    async addPerson(username, password = 'correct horse battery staple', extra = {}) {
      const id = `person-${++counter}-${username}`
      await store.commit({
        persons: [{ id, username, displayName: username[0]!.toUpperCase() + username.slice(1), passwordHash: await hashPassword(password), createdAt: Date.now(), ...(extra.permissions === undefined ? {} : { permissions: extra.permissions }), ...(extra.tenant === undefined ? {} : { tenant: extra.tenant }) }],
      })
      return id
    },
  }
}

/** Agent provider + PS + resource + agent client. */
export interface PsWorld {
  readonly ps: RunningPs
  readonly app: App
  readonly client: ReturnType<typeof createAgentClient>
  readonly key: GeneratedKeyPair
  readonly apIssuer: string
  readonly agentId: () => string
  readonly steps: AgentStep[]
  readonly alice: string
  /** Interaction codes the agent was given, oldest first. */
  readonly codes: string[]
}

/**
 * Builds a world. `onInteraction` defaults to approving through the consent service as Alice
 * (the web pages are tested on their own and in Chromium).
 */
export async function psWorld(routes: Record<string, RouteRequirement>, o: { ps?: Parameters<typeof startRealPersonServer>[0]; client?: Partial<AgentClientOptions>; local?: string; approve?: 'once' | 'always' | false } = {}): Promise<PsWorld> {
  const { ap, issuer: apIssuer } = await startAgentProvider()
  const ps = await startRealPersonServer(o.ps)
  const alice = await ps.addPerson('alice')
  const keys = await resourceKeys()
  const app = await startApp('hono', { routes, options: () => ({ keys, personServers: [ps.issuer], metadata: { name: 'Booking API', scope_descriptions: { 'bookings:write': 'Make bookings', 'flights:read': 'Read flights' } } }) })
  const key = await generateKeyPair('Ed25519')
  const signer = await createSigner(key.privateJwk)
  let agentSub = ''
  const credentials = new AgentCredentials({
    refresh: async () => {
      const agentToken = await ap.issue({ local: o.local ?? 'travel-bot', cnfJwk: key.publicJwk, ps: ps.issuer })
      agentSub = JSON.parse(Buffer.from(agentToken.split('.')[1]!, 'base64url').toString()).sub as string
      return { agentToken, signer }
    },
  })
  const steps: AgentStep[] = []
  const approve = o.approve ?? 'always'
  const codes: string[] = []
  const client = createAgentClient({
    credentials,
    ...LOOPBACK,
    minPollIntervalMs: 0,
    onStep: (s) => steps.push(s),
    onInteraction: async ({ code }) => {
      codes.push(code)
      if (approve === false) return
      const rec = await ps.ps.consent.findByCode(code)
      if (rec === undefined) throw new Error(`no request for code ${code}`)
      await ps.ps.consent.open(rec.id, alice)
      await ps.ps.consent.decide(rec.id, alice, { approve: true, remember: approve })
    },
    ...o.client,
  })
  return { ps, app, client, key, apIssuer, agentId: () => agentSub, steps, alice, codes }
}

/**
 * Binds agent `agentSub` (of provider `agentIss`) to `personId` with standing grants at
 * `resource`: the identity grant plus `scopes` (as an approval remembered "always" would).
 */
export async function bindWithGrants(store: PersonServerStore, o: { agentIss: string; agentSub: string; personId: string; resource: string; scopes: readonly string[] }): Promise<void> {
  const at = Date.now()
  await store.commit({
    bindings: [{ agentIss: o.agentIss, agentSub: o.agentSub, personId: o.personId, createdAt: at }],
    grants: ['', ...o.scopes].map((scope, i) => ({ id: `${o.agentSub}-${i}-${at}`, personId: o.personId, agentIss: o.agentIss, agentSub: o.agentSub, resource: o.resource, scope, createdAt: at })),
  })
}
