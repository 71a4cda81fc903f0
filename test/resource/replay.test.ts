/**
 * Replay (main draft §Verification (Server) step 5, CHECKLIST SIG-18, NEG-SIG-10): one table run
 * against the in-memory store and against Redis, through real Hono servers on 127.0.0.1 — and the
 * load-balancer case, two instances behind one authority, where only a shared Redis store stops
 * a request replayed to the other instance.
 */
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { createResource, MemoryStore, RedisStore, type AAuthStore } from '../../src/resource/index.js'
import { aauth, type AAuthEnv } from '../../src/resource/hono.js'
import { createSigner, generateKeyPair, signRequest } from '../../src/protocol/index.js'
import { AgentCredentials, createAgentClient } from '../../src/agent/index.js'
import { closeAll, LOOPBACK, startAgentProvider } from '../helpers/aauth-servers.js'
import { redisUrl, stopRedis } from '../helpers/redis.js'
import { loopIssuer, makeAgent, type Agent } from './resource-fixture.js'

const ISSUER = 'https://api.example'
const servers: Server[] = []
const stores: AAuthStore[] = []

afterAll(async () => {
  for (const s of servers) s.closeAllConnections()
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  for (const s of stores) await s.close?.()
  await closeAll()
  await stopRedis()
})

/** One instance of the API behind the proxy: issuer https://api.example, listening on loopback. */
async function instance(store: AAuthStore): Promise<{ origin: string; runs: () => number }> {
  let runs = 0
  const resource = createResource({ issuer: ISSUER, store, ...LOOPBACK })
  const app = new Hono<AAuthEnv>()
  app.use('*', aauth(resource))
  app.all('*', (c) => {
    runs++
    return c.json({ agent: c.get('aauth').agent?.id })
  })
  const server = createAdaptorServer({ fetch: app.fetch }) as Server
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, runs: () => runs }
}

async function signed(agent: Agent, path: string): Promise<Headers> {
  const { headers } = await signRequest({ method: 'GET', url: `${ISSUER}${path}`, headers: new Headers() }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false } })
  return headers
}

type StoreKind = 'memory' | 'redis'
const makeStore: Record<StoreKind, (prefix: string) => Promise<AAuthStore>> = {
  memory: async () => new MemoryStore(),
  redis: async (prefix) => RedisStore.connect({ url: await redisUrl(), prefix }),
}

describe.each(['memory', 'redis'] as const)('replay with the %s store', (kind) => {
  it('SIG-18 / NEG-SIG-10 the same signed request twice: the second is refused and the handler runs once', async () => {
    const agent = await makeAgent(await loopIssuer('aauth-agent.json'))
    const store = await makeStore[kind](`replay-a-${Date.now()}:`)
    stores.push(store)
    const api = await instance(store)
    const headers = await signed(agent, '/flights')
    expect((await fetch(`${api.origin}/flights`, { headers })).status).toBe(200)
    const again = await fetch(`${api.origin}/flights`, { headers })
    expect(again.status).toBe(401)
    expect(again.headers.get('signature-error')).toBe('error=invalid_signature')
    expect(api.runs()).toBe(1)
  })

  it('the same signature on another path is refused', async () => {
    const agent = await makeAgent(await loopIssuer('aauth-agent.json'))
    const store = await makeStore[kind](`replay-b-${Date.now()}:`)
    stores.push(store)
    const api = await instance(store)
    const headers = await signed(agent, '/flights')
    expect((await fetch(`${api.origin}/flights`, { headers })).status).toBe(200)
    expect((await fetch(`${api.origin}/bookings`, { headers })).status).toBe(401)
    expect(api.runs()).toBe(1)
  })

  it(kind === 'redis' ? 'two instances sharing Redis: a request replayed to the other instance is refused' : 'two instances with separate memory stores do NOT see each other’s requests (why Redis exists)', async () => {
    const agent = await makeAgent(await loopIssuer('aauth-agent.json'))
    const prefix = `replay-c-${Date.now()}:`
    const storeA = await makeStore[kind](prefix)
    const storeB = await makeStore[kind](prefix)
    stores.push(storeA, storeB)
    const a = await instance(storeA)
    const b = await instance(storeB)
    const headers = await signed(agent, '/flights')
    expect((await fetch(`${a.origin}/flights`, { headers })).status).toBe(200)
    const atB = await fetch(`${b.origin}/flights`, { headers })
    expect(atB.status).toBe(kind === 'redis' ? 401 : 200)
    expect(b.runs()).toBe(kind === 'redis' ? 0 : 1)
  })
})

describe('the agent client and the replay cache', () => {
  it('two identical requests in the same second both succeed: the client moves the second to the next second', async () => {
    const { ap } = await startAgentProvider()
    const key = await generateKeyPair()
    const token = await ap.issue({ local: 'repeat-bot', cnfJwk: key.publicJwk })
    const api = await instance(new MemoryStore())
    // The resource is https://api.example behind a proxy: the client talks to the loopback origin.
    const client = createAgentClient({ credentials: AgentCredentials.fixed(token, await createSigner(key.privateJwk)), ...LOOPBACK, fetch: (input, init) => fetch(String(input).replace(ISSUER, api.origin), init) })
    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push((await client.fetch(`${ISSUER}/whoami`)).status)
    expect(statuses).toEqual([200, 200, 200, 200, 200])
    expect(api.runs()).toBe(5)
  })
})

describe('revocation endpoints of two resources sharing one store', () => {
  it('REV-02 each resource verifies revocations addressed to itself (the verifier is per resource, not per store)', async () => {
    const store = new MemoryStore()
    const ps = await loopIssuer('aauth-person.json', { person_token_endpoint: 'https://x.example/p', auth_token_endpoint: 'https://x.example/t' })
    const signer = await createSigner(ps.key.privateJwk)
    for (const issuer of ['https://one.example', 'https://two.example']) {
      const resource = createResource({ issuer, store, ...LOOPBACK })
      const body = new TextEncoder().encode(JSON.stringify({ jti: `t-${issuer}`, exp: Math.floor(Date.now() / 1000) + 600 }))
      const { headers } = await signRequest(
        { method: 'POST', url: `${issuer}/aauth/revoke`, headers: new Headers({ 'content-type': 'application/json' }) },
        { signer, signatureKey: { scheme: 'jwks_uri', id: ps.issuer, dwk: ps.dwk, kid: ps.key.kid }, body },
      )
      const res = await resource.serve(new Request(`${issuer}/aauth/revoke`, { method: 'POST', headers, body }), body)
      expect(res?.status, issuer).toBe(200)
    }
  })
})
