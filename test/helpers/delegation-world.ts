/**
 * A world for delegation tests: a real agent provider, Person Server and Hono resource on
 * loopback, a parent agent client (approving its first requests as Alice through the consent
 * service) and a sub-agent client whose person and auth tokens its parent obtains
 * (`parentMediator`), never calling the PS itself.
 */
import { AgentCredentials, createAgentClient, parentMediator, type AgentClient, type AgentClientOptions, type AgentProvider, type AgentStep, type TokenMediator } from '../../src/agent/index.js'
import { createSigner, generateKeyPair, type GeneratedKeyPair } from '../../src/protocol/index.js'
import type { RouteRequirement } from '../../src/resource/index.js'
import { resourceKeys, startApp, type App } from '../resource/resource-fixture.js'
import { LOOPBACK, startAgentProvider } from './aauth-servers.js'
import { startRealPersonServer, type RunningPs } from './person-server.js'

export interface DelegationWorld {
  readonly ap: AgentProvider
  readonly apIssuer: string
  readonly ps: RunningPs
  readonly alice: string
  readonly app: App
  readonly parent: AgentClient
  readonly parentId: string
  readonly subAgent: AgentClient
  readonly subAgentId: string
  readonly mediator: TokenMediator
  readonly subKey: GeneratedKeyPair
  /** Every request the sub-agent sent (none may go to the PS: SUB-01). */
  readonly subSteps: AgentStep[]
  /** Interaction codes the parent was given. */
  readonly codes: string[]
}

/** Builds the world; `parentLocal` and `subLocal` make `aauth:{parent}` and `aauth:{parent}+{sub}`. */
export async function delegationWorld(
  routes: Record<string, RouteRequirement>,
  o: { parentLocal?: string; subLocal?: string; ps?: Parameters<typeof startRealPersonServer>[0]; parent?: Partial<AgentClientOptions>; subAgent?: Partial<AgentClientOptions> } = {},
): Promise<DelegationWorld> {
  const { ap, issuer: apIssuer } = await startAgentProvider()
  const ps = await startRealPersonServer(o.ps)
  const alice = await ps.addPerson('alice')
  const keys = await resourceKeys()
  const app = await startApp('hono', { routes, options: () => ({ keys, personServers: [ps.issuer], metadata: { name: 'Travel API' } }) })
  const parentLocal = o.parentLocal ?? 'travel-bot.7f3c'
  const subLocal = o.subLocal ?? 'pay'
  const host = new URL(apIssuer).host
  const parentKey = await generateKeyPair('Ed25519')
  const parentSigner = await createSigner(parentKey.privateJwk)
  const codes: string[] = []
  const parent = createAgentClient({
    credentials: new AgentCredentials({ refresh: async () => ({ agentToken: await ap.issue({ local: parentLocal, cnfJwk: parentKey.publicJwk, ps: ps.issuer }), signer: parentSigner }) }),
    ...LOOPBACK,
    minPollIntervalMs: 0,
    onInteraction: async ({ code }) => {
      codes.push(code)
      const rec = await ps.ps.consent.findByCode(code)
      if (rec === undefined) throw new Error(`no request for code ${code}`)
      await ps.ps.consent.open(rec.id, alice)
      await ps.ps.consent.decide(rec.id, alice, { approve: true, remember: 'always' })
    },
    ...o.parent,
  })
  const subKey = await generateKeyPair('Ed25519')
  const subSigner = await createSigner(subKey.privateJwk)
  const mediator = parentMediator(parent)
  const subSteps: AgentStep[] = []
  const subAgent = createAgentClient({
    credentials: new AgentCredentials({ refresh: async () => ({ agentToken: await ap.issue({ local: subLocal, parentLocal, cnfJwk: subKey.publicJwk, ps: ps.issuer }), signer: subSigner }) }),
    ...LOOPBACK,
    minPollIntervalMs: 0,
    mediator,
    onStep: (s) => subSteps.push(s),
    ...o.subAgent,
  })
  return { ap, apIssuer, ps, alice, app, parent, parentId: `aauth:${parentLocal}@${host}`, subAgent, subAgentId: `aauth:${parentLocal}+${subLocal}@${host}`, mediator, subKey, subSteps, codes }
}
