/**
 * Interop: our agent runs its three-party flow against `@hellocoop/mockin` 2.0.0, the mock Person
 * Server used by the AAuth reference SDK, started as a real process on 127.0.0.1.
 *
 * mockin declares `engines: node ~22` but runs on Node 20 (npm only warns). It follows a
 * pre-publication text of draft -11, with two differences that matter here:
 *
 * - it reads the presented person token's id from a resource-token claim `person_token_jti`,
 *   where draft -11 §Resource Token Structure names it `presented_jti` ("resource_token missing
 *   person_token_jti" otherwise). Our test resource adds `person_token_jti` (equal to
 *   `presented_jti`) for mockin; the agent needs nothing special.
 * - it ignores `presented_token` and finds the person token in its own records, so a step-up
 *   (where the presented token is an auth token) cannot work against it; only first grants are
 *   exercised.
 *
 * mockin's own issuer is `http://127.0.0.1:PORT`, so the agent runs with the development
 * loopback switch, as every loopback test does.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentCredentials, createAgentClient } from '../../src/agent/index.js'
import { createSigner, decodeJwt, generateKeyPair } from '../../src/protocol/index.js'
import { closeAll, LOOPBACK, startAgentProvider, startResource } from '../helpers/aauth-servers.js'

let mockin: ChildProcess
let psOrigin: string

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

beforeAll(async () => {
  const port = await freePort()
  const pkg = createRequire(import.meta.url).resolve('@hellocoop/mockin/package.json')
  mockin = spawn(process.execPath, [join(dirname(pkg), 'src/server.js')], { env: { ...process.env, PORT: String(port), IP: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  psOrigin = `http://127.0.0.1:${port}`
  // Ready when its metadata answers.
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${psOrigin}/.well-known/aauth-person.json`).then((r) => r.ok, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('mockin did not start')
}, 20_000)

afterAll(async () => {
  mockin.kill()
  await closeAll()
})

describe('three-party flow against @hellocoop/mockin', () => {
  it('AG-RES-04/05 person token, resource token, auth token from mockin; the resource accepts it', async () => {
    const { ap } = await startAgentProvider()
    const res = await startResource({ '/me': { kind: 'person' }, '/flights': { kind: 'auth', scope: 'flights.read' } })
    res.extraResourceTokenClaims = (jti) => ({ person_token_jti: jti })
    const key = await generateKeyPair('Ed25519')
    const token = await ap.issue({ local: 'mockin-bot', cnfJwk: key.publicJwk, ps: psOrigin })
    const tokens: { kind: string; issuer: string }[] = []
    const client = createAgentClient({
      credentials: AgentCredentials.fixed(token, await createSigner(key.privateJwk)),
      ...LOOPBACK,
      minPollIntervalMs: 0,
      onStep: (s) => void (s.type === 'token' && s.kind !== 'agent' && tokens.push({ kind: s.kind, issuer: s.issuer })),
    })
    const me = await client.fetch(`${res.origin}/me`)
    expect(me.status).toBe(200)
    const flights = await client.fetch(`${res.origin}/flights`)
    expect(flights.status).toBe(200)
    expect(await flights.json()).toMatchObject({ presented: 'auth', scope: 'flights.read' })
    expect(tokens).toEqual([
      { kind: 'person', issuer: psOrigin },
      { kind: 'auth', issuer: psOrigin },
    ])
    const held = await client.prepare(`${res.origin}/flights`)
    const jwt = /jwt="([^"]+)"/.exec(held.headers.get('signature-key')!)![1]!
    expect(decodeJwt(jwt).header['typ']).toBe('aa-auth+jwt')
  })

  it('AG-DEF-01 polls a deferred person-token answer from mockin to the grant', async () => {
    await fetch(`${psOrigin}/mock/aauth`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ person_requirement: 'approval' }) })
    try {
      const { ap } = await startAgentProvider()
      const res = await startResource({ '/me': { kind: 'person' } })
      const key = await generateKeyPair('Ed25519')
      const token = await ap.issue({ local: 'mockin-bot', cnfJwk: key.publicJwk, ps: psOrigin })
      let polls = 0
      const client = createAgentClient({ credentials: AgentCredentials.fixed(token, await createSigner(key.privateJwk)), ...LOOPBACK, minPollIntervalMs: 0, onStep: (s) => void (s.type === 'poll' && polls++) })
      expect((await client.fetch(`${res.origin}/me`)).status).toBe(200)
      expect(polls).toBeGreaterThan(0)
    } finally {
      await fetch(`${psOrigin}/mock`, { method: 'DELETE' })
    }
  })
})
