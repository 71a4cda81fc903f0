import { createAdaptorServer } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { createAgentProvider, enroll, KeyRing, requestAgentToken, type AgentProvider } from '../../src/agent/index.js'
import {
  createEgressFetcher,
  createSigner,
  createRequestVerifier,
  decodeJwt,
  generateKeyPair,
  jwkThumbprint,
  JwksCache,
  ProblemError,
  signRequest,
} from '../../src/protocol/index.js'

const servers: Server[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

/** A real agent provider on 127.0.0.1 (dev loopback mode). */
async function startProvider(): Promise<{ ap: AgentProvider; issuer: string }> {
  let ap: AgentProvider | undefined
  const server = createAdaptorServer({ fetch: (req: Request) => ap!.app.fetch(req) }) as Server
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  ap = createAgentProvider({ issuer, keys: await KeyRing.create(), name: 'Test Agents', allowInsecureLoopback: true })
  return { ap, issuer }
}

const loopbackJwks = () => new JwksCache({ fetcher: createEgressFetcher({ allowInsecureLoopback: true }), allowInsecureLoopback: true })

describe('agent provider on loopback (bootstrap §8, §10)', () => {
  it('AG enrolls with a one-time code, refreshes with jkt-jwt, and the token works at a resource', async () => {
    const { ap, issuer } = await startProvider()
    const code = await ap.createEnrollmentCode({ local: 'travel-bot.7f3c', ps: 'https://ps.example' })
    const durable = (await generateKeyPair()).privateJwk
    expect(await enroll({ provider: issuer, durableKey: durable, code })).toBe(`aauth:travel-bot.7f3c@${new URL(issuer).host}`)

    const issued = await requestAgentToken({ provider: issuer, durableKey: durable })
    const claims = decodeJwt(issued.agentToken).payload
    expect(claims).toMatchObject({ sub: issued.agent, ps: 'https://ps.example', iss: issuer })
    // Two-key: the token binds the ephemeral key, not the durable one.
    expect(await jwkThumbprint((claims['cnf'] as { jwk: never }).jwk)).toBe(await jwkThumbprint(issued.signer.publicJwk))
    expect(await jwkThumbprint(issued.signer.publicJwk)).not.toBe(await jwkThumbprint(durable))

    const verifier = createRequestVerifier({ audience: 'https://api.example', jwks: loopbackJwks(), allowInsecureLoopback: true })
    const { headers } = await signRequest({ method: 'GET', url: 'https://api.example/flights', headers: new Headers() }, { signer: issued.signer, signatureKey: { scheme: 'jwt', jwt: issued.agentToken, cache: false } })
    const v = await verifier.verify({ method: 'GET', url: 'https://api.example/flights', headers })
    expect(v.key.context.scheme === 'jwt' && v.key.context.claims.sub).toBe(issued.agent)
  })

  it('single-key refresh binds the durable key itself', async () => {
    const { ap, issuer } = await startProvider()
    const durable = (await generateKeyPair()).privateJwk
    await enroll({ provider: issuer, durableKey: durable, code: await ap.createEnrollmentCode({ local: 'solo' }) })
    const issued = await requestAgentToken({ provider: issuer, durableKey: durable, singleKey: true })
    expect(await jwkThumbprint(issued.signer.publicJwk)).toBe(await jwkThumbprint(durable))
  })

  it('a code is single use; an unknown code and an unenrolled key are refused with typed errors', async () => {
    const { ap, issuer } = await startProvider()
    const code = await ap.createEnrollmentCode({ local: 'one' })
    await enroll({ provider: issuer, durableKey: (await generateKeyPair()).privateJwk, code })
    await expect(enroll({ provider: issuer, durableKey: (await generateKeyPair()).privateJwk, code })).rejects.toMatchObject({ code: 'invalid_request' })
    await expect(enroll({ provider: issuer, durableKey: (await generateKeyPair()).privateJwk, code: 'NOPE' })).rejects.toBeInstanceOf(ProblemError)
    await expect(requestAgentToken({ provider: issuer, durableKey: (await generateKeyPair()).privateJwk })).rejects.toMatchObject({ code: 'denied' })
  })

  it('an unsigned or wrongly signed call gets 401 with Signature-Error', async () => {
    const { issuer } = await startProvider()
    const res = await fetch(`${issuer}/token`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(401)
    expect(res.headers.get('signature-error')).toBe('error=invalid_signature')
    const agentKey = await generateKeyPair()
    // A jwt-scheme signature is not how an agent talks to its provider.
    const { headers } = await signRequest({ method: 'POST', url: `${issuer}/token`, headers: new Headers({ 'content-type': 'application/json' }) }, { signer: await createSigner(agentKey.privateJwk), signatureKey: { scheme: 'jwt', jwt: 'a.b.c', cache: false }, body: new TextEncoder().encode('{}') })
    const r2 = await fetch(`${issuer}/token`, { method: 'POST', headers, body: '{}' })
    expect(r2.status).toBe(401)
    expect(r2.headers.get('signature-error')).toBe('error=unsupported_scheme')
    expect(r2.headers.get('accept-signature-scheme')).toBe('hwk, jkt-jwt')
  })

  it('publishes metadata and the JWKS; a self-hosted agent can be its own provider', async () => {
    const { ap, issuer } = await startProvider()
    const meta = (await (await fetch(`${issuer}/.well-known/aauth-agent.json`)).json()) as Record<string, unknown>
    expect(meta).toEqual({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json`, name: 'Test Agents' })
    const jwks = (await (await fetch(`${issuer}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] }
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).not.toHaveProperty('d')
    const me = await generateKeyPair()
    const token = await ap.issue({ local: 'self', cnfJwk: me.publicJwk })
    const sub = await ap.issue({ local: 'pay', parentLocal: 'self', cnfJwk: (await generateKeyPair()).publicJwk })
    expect(decodeJwt(token).payload['sub']).toBe(`aauth:self@${new URL(issuer).host}`)
    expect(decodeJwt(sub).payload).toMatchObject({ sub: `aauth:self+pay@${new URL(issuer).host}`, parent_agent: `aauth:self@${new URL(issuer).host}` })
  })

  it('refuses bad configuration at construction', async () => {
    const keys = await KeyRing.create()
    expect(() => createAgentProvider({ issuer: 'https://agents.example/', keys })).toThrow()
    expect(() => createAgentProvider({ issuer: 'https://agents.example', keys, tokenLifetimeSec: 90_000 })).toThrow(RangeError)
    const ap = createAgentProvider({ issuer: 'https://agents.example', keys })
    await expect(ap.createEnrollmentCode({ local: 'a+b' })).rejects.toThrow(TypeError)
    await expect(ap.createEnrollmentCode({ local: 'ok', ps: 'http://ps.example' })).rejects.toThrow()
  })
})
