/**
 * The signed fetch client against real servers on 127.0.0.1: an agent provider, a Person Server
 * and a resource (test/helpers/aauth-servers.ts). One test per requirement path of main draft
 * §Resource Access and §Deferred Responses; CHECKLIST IDs in the names.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { AgentCredentials, AgentError, createAgentClient, enroll, type AgentClientOptions, type AgentStep } from '../../src/agent/index.js'
import { createSigner, decodeJwt, generateKeyPair, HeaderError, ProblemError } from '../../src/protocol/index.js'
import { closeAll, LOOPBACK, startAgentProvider, startPersonServer, startResource, type RouteMode, type TestPersonServer, type TestResource } from '../helpers/aauth-servers.js'

afterEach(closeAll)

interface World {
  ps: TestPersonServer
  res: TestResource
  steps: AgentStep[]
  issued: () => number
  client: ReturnType<typeof createAgentClient>
  credentials: AgentCredentials
}

/** An agent enrolled at a real AP, whose tokens name a real PS, and a resource with `routes`. */
async function world(routes: Record<string, RouteMode>, extra: Partial<AgentClientOptions> = {}, withPs = true): Promise<World> {
  const { ap } = await startAgentProvider()
  const ps = await startPersonServer()
  const res = await startResource(routes)
  const key = await generateKeyPair('Ed25519')
  const signer = await createSigner(key.privateJwk)
  let issued = 0
  const credentials = new AgentCredentials({
    refresh: async () => {
      issued++
      return { agentToken: await ap.issue({ local: 'travel-bot', cnfJwk: key.publicJwk, ...(withPs ? { ps: ps.issuer } : {}) }), signer }
    },
  })
  const steps: AgentStep[] = []
  const client = createAgentClient({ credentials, ...LOOPBACK, minPollIntervalMs: 0, onStep: (s) => steps.push(s), ...extra })
  return { ps, res, steps, issued: () => issued, client, credentials }
}

/** A resource that requires `prefer` to be covered (answers `invalid_input` with `required_input`). */
const STRICT: RouteMode = {
  kind: 'raw',
  respond: (req) => (req.headers.get('signature-input')!.includes('"prefer"') ? Response.json({ ok: true }) : new Response(null, { status: 401, headers: { 'signature-error': 'error=invalid_input, required_input=("prefer")' } })),
}

const kinds = (w: World, path?: string) => w.res.presented.filter((p) => path === undefined || p.path === path).map((p) => p.kind)

describe('agent client: requirement paths (main draft §Resource Access)', () => {
  it('AG-SIG-01 signs every request with the agent token; identity-only resources answer at once', async () => {
    const w = await world({ '/hello': { kind: 'agent' } })
    const r = await w.client.fetch(`${w.res.origin}/hello`)
    expect(r.status).toBe(200)
    expect(await r.json()).toMatchObject({ presented: 'agent', sub: expect.stringMatching(/^aauth:travel-bot@127\.0\.0\.1:/) })
    const req = w.steps.find((s) => s.type === 'request')
    expect(req).toMatchObject({ presenting: 'agent', components: ['@method', '@authority', '@path', 'signature-key'] })
  })

  it('AG-RES-03 answers requirement=agent-token by presenting the agent token', async () => {
    const w = await world({ '/p': { kind: 'person' }, '/id': { kind: 'agent-only' } })
    await w.client.fetch(`${w.res.origin}/p`) // now holds a person token for this resource
    const r = await w.client.fetch(`${w.res.origin}/id`)
    expect(r.status).toBe(200)
    expect(kinds(w, '/id')).toEqual(['person', 'agent'])
  })

  it('AG-RES-04 / AG-RES-13 gets a person token from the PS, then reuses it', async () => {
    const w = await world({ '/me': { kind: 'person' } })
    expect((await w.client.fetch(`${w.res.origin}/me`)).status).toBe(200)
    expect((await w.client.fetch(`${w.res.origin}/me`)).status).toBe(200)
    expect(kinds(w)).toEqual(['agent', 'person', 'person'])
    const asked = w.ps.received.filter((r) => r.path === '/person')
    expect(asked).toHaveLength(1)
    expect(asked[0]!.body).toMatchObject({ resource: w.res.origin })
  })

  it('AG-RES-05 / AG-RES-06 / AG-PS-02 / AG-RES-14 redeems a verified resource token at the PS and presents the auth token', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    const r = await w.client.fetch(`${w.res.origin}/flights`)
    expect(r.status).toBe(200)
    expect(await r.json()).toMatchObject({ presented: 'auth', scope: 'flights.read' })
    expect((await w.client.fetch(`${w.res.origin}/flights`)).status).toBe(200)
    expect(kinds(w)).toEqual(['agent', 'person', 'auth', 'auth'])
    const tokenReq = w.ps.received.find((r) => r.path === '/token')!.body
    expect(Object.keys(tokenReq).sort()).toEqual(['presented_token', 'resource_token'])
    expect(decodeJwt(String(tokenReq['presented_token'])).header['typ']).toBe('aa-person+jwt')
    expect(w.steps.filter((s) => s.type === 'token').map((s) => (s as { kind: string }).kind)).toEqual(['agent', 'person', 'auth'])
  })

  it('AG-RES-07 follows a step-up challenge and keeps both grants, chosen by scope', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' }, '/bookings': { kind: 'auth', scope: 'bookings.write' } })
    await w.client.fetch(`${w.res.origin}/flights`)
    const r = await w.client.fetch(`${w.res.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"fare":"ECO"}' })
    expect(r.status).toBe(200)
    // The step-up resource token named the auth token presented, which the PS received.
    const stepUp = w.ps.received.filter((x) => x.path === '/token')[1]!.body
    expect(decodeJwt(String(stepUp['presented_token'])).header['typ']).toBe('aa-auth+jwt')
    const again = await w.client.fetch(`${w.res.origin}/flights`, { aauth: { scope: 'flights.read' } })
    expect(await again.json()).toMatchObject({ scope: 'flights.read' })
    expect(w.ps.received.filter((x) => x.path === '/token')).toHaveLength(2)
  })

  it('AG-RES-08 handles deferred auth-token delivery: gets the auth token, then polls with it', async () => {
    const w = await world({ '/hold': { kind: 'auth', scope: 'bookings.write', deferred: true } })
    w.res.presented.length = 0
    const r = await w.client.fetch(`${w.res.origin}/hold`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(r.status).toBe(200)
    expect(await r.json()).toMatchObject({ held: true, presented: 'auth' })
    expect(w.res.presented.at(-1)).toMatchObject({ path: '/held/h1', kind: 'auth' })
  })

  it('AG-RES-12 asks the authorization endpoint ahead of a call, then presents the auth token', async () => {
    const w = await world({ '/authorize': { kind: 'authorize' }, '/flights': { kind: 'auth', scope: 'flights.read' } })
    const got = await w.client.authorize(w.res.origin, { scope: 'flights.read' })
    expect(got.kind).toBe('auth-token')
    const r = await w.client.fetch(`${w.res.origin}/flights`)
    expect(await r.json()).toMatchObject({ presented: 'auth', scope: 'flights.read' })
    expect(kinds(w)).toEqual(['person', 'auth'])
    const other = await world({ '/flights': { kind: 'agent' } })
    await expect(other.client.authorize(other.res.origin, { scope: 'x' })).rejects.toMatchObject({ code: 'requirement_unsatisfiable' })
  })

  it('AG-RES-11 uses AAuth-Access from a resource-managed interaction, covered by the signature', async () => {
    const prompts: string[] = []
    let res!: TestResource
    const w = await world({ '/docs': { kind: 'interaction' } }, {
      onInteraction: (p) => {
        prompts.push(p.userUrl)
        res.completeInteraction()
      },
    })
    res = w.res
    const r = await w.client.fetch(`${w.res.origin}/docs`)
    expect(r.status).toBe(200)
    expect(prompts).toEqual([`${w.res.origin}/interact?code=ABCD-EFGH`])
    const second = await w.client.fetch(`${w.res.origin}/docs`)
    expect(await second.json()).toMatchObject({ session: true })
    expect(w.res.presented.at(-1)!.authorization).toBe('AAuth sess-1')
    const signed = w.steps.filter((s) => s.type === 'request').at(-1) as { components: readonly string[] }
    expect(signed.components).toContain('authorization')
  })
})

describe('agent client: interaction relay through the PS (§Relaying Through the Person Server)', () => {
  it('AG-INT-01 / AG-INT-03 relays a resource interaction to the PS and keeps polling the resource', async () => {
    let res!: TestResource
    const prompted: string[] = []
    const w = await world({ '/docs': { kind: 'interaction' } }, { onInteraction: (p) => void prompted.push(p.userUrl) })
    res = w.res
    w.ps.relay = 'accept'
    setTimeout(() => res.completeInteraction(), 30)
    expect((await w.client.fetch(`${w.res.origin}/docs`)).status).toBe(200)
    expect(prompted).toEqual([])
    expect(w.ps.received.find((x) => x.path === '/interaction')!.body).toEqual({ type: 'interaction', url: `${w.res.origin}/interact`, code: 'ABCD-EFGH' })
  })

  it('AG-INT-01 falls back to prompting directly on interaction_unavailable', async () => {
    let res!: TestResource
    const prompted: string[] = []
    const w = await world({ '/docs': { kind: 'interaction' } }, {
      onInteraction: (p) => {
        prompted.push(p.userUrl)
        res.completeInteraction()
      },
    })
    res = w.res
    w.ps.relay = 'unavailable'
    expect((await w.client.fetch(`${w.res.origin}/docs`)).status).toBe(200)
    expect(prompted).toEqual([`${w.res.origin}/interact?code=ABCD-EFGH`])
  })
})

describe('agent client: audience and capabilities', () => {
  it('AG-RES-14 never sends a token to a resource other than its audience', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    const other = await startResource({ '/flights': { kind: 'agent' } })
    await w.client.fetch(`${w.res.origin}/flights`)
    const r = await w.client.fetch(`${other.origin}/flights`)
    expect(await r.json()).toMatchObject({ presented: 'agent' })
    expect(other.presented.map((p) => p.kind)).toEqual(['agent'])
  })

  it('AG-RES-02 announces AAuth-Capabilities from the configured callbacks, to resources only', async () => {
    const seen: (string | null)[] = []
    const w = await world(
      { '/caps': { kind: 'raw', respond: (req) => (seen.push(req.headers.get('aauth-capabilities')), Response.json({})) } },
      { onInteraction: () => undefined, onClarification: () => ({ action: 'cancel' }), capabilities: ['payment'] },
    )
    await w.client.fetch(`${w.res.origin}/caps`)
    expect(seen).toEqual(['payment, interaction, clarification'])
    const bare = await world({ '/caps': { kind: 'raw', respond: (req) => (seen.push(req.headers.get('aauth-capabilities')), Response.json({})) } })
    await bare.client.fetch(`${bare.res.origin}/caps`)
    expect(seen[1]).toBeNull()
  })
})

describe('agent client: consent at the PS (§Deferred Responses, §User Interaction, §Clarification Chat)', () => {
  it('AG-DEF-01 / AG-INT-02 hands the consent URL to the caller and polls until approved', async () => {
    let ps!: TestPersonServer
    const shown: string[] = []
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } }, {
      onInteraction: (p) => {
        shown.push(p.userUrl)
        setTimeout(() => void ps.decide(true), 20)
      },
    })
    ps = w.ps
    ps.behaviour = { kind: 'interaction' }
    const r = await w.client.fetch(`${w.res.origin}/flights`)
    expect(r.status).toBe(200)
    expect(shown).toHaveLength(1)
    expect(shown[0]).toMatch(new RegExp(`^${ps.issuer}/consent\\?code=[0-9A-Z]{4}-[0-9A-Z]{4}$`))
    expect(w.ps.received.find((x) => x.path === '/person')!.body['capabilities']).toEqual(['interaction'])
    expect(w.steps.some((s) => s.type === 'poll')).toBe(true)
  })

  it('AG-DEF-03 surfaces a denial as ProblemError denied', async () => {
    let ps!: TestPersonServer
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } }, { onInteraction: () => void setTimeout(() => void ps.decide(false), 10) })
    ps = w.ps
    ps.behaviour = { kind: 'interaction' }
    const err = await w.client.fetch(`${w.res.origin}/flights`).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProblemError)
    expect(err).toMatchObject({ code: 'denied', status: 403 })
  })

  it('without an interaction handler a consent requirement is a typed error, not a hang', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    w.ps.behaviour = { kind: 'interaction' }
    await expect(w.client.fetch(`${w.res.origin}/flights`)).rejects.toMatchObject({ code: 'interaction_required' })
  })

  it('AG-CLAR-01 / AG-CLAR-02 answers a clarification, then polls to the grant', async () => {
    const questions: string[] = []
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } }, {
      onClarification: (q) => {
        questions.push(q.question)
        return { action: 'respond', response: 'To compare fares for your trip.' }
      },
    })
    w.ps.behaviour = { kind: 'clarification', question: 'Why do you need my flights?' }
    expect((await w.client.fetch(`${w.res.origin}/flights`)).status).toBe(200)
    expect(questions).toEqual(['Why do you need my flights?'])
    expect(w.ps.received.find((x) => x.body['action'] === 'clarification_response')!.body).toEqual({ action: 'clarification_response', clarification_response: 'To compare fares for your trip.' })
    expect(w.ps.received.find((x) => x.path === '/person')!.body['capabilities']).toEqual(['clarification'])
  })

  it('AG-CLAR-02 cancel sends DELETE to the pending URL and reports cancelled', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } }, { onClarification: () => ({ action: 'cancel' }) })
    w.ps.behaviour = { kind: 'clarification', question: 'Really?' }
    await expect(w.client.fetch(`${w.res.origin}/flights`)).rejects.toMatchObject({ code: 'cancelled' })
    expect(w.steps.some((s) => s.type === 'request' && s.method === 'DELETE')).toBe(true)
  })

  it('AG-PS-07 user_unreachable is terminal and typed', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    w.ps.behaviour = { kind: 'error', code: 'user_unreachable' }
    await expect(w.client.fetch(`${w.res.origin}/flights`)).rejects.toMatchObject({ code: 'user_unreachable', status: 403 })
  })

  it('AG-PS-08 expired_presented_token restarts from a fresh person token, once', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    w.ps.behaviour = { kind: 'error', code: 'expired_presented_token' }
    await expect(w.client.fetch(`${w.res.origin}/flights`)).rejects.toMatchObject({ code: 'expired_presented_token' })
    expect(w.ps.received.filter((x) => x.path === '/person')).toHaveLength(2)
  })
})

describe('agent client: expiry, refresh and revocation (§Expiry and the Refresh Margin)', () => {
  it('AG-05 concurrent requests during a refresh all succeed, with one refresh', async () => {
    const w = await world({ '/hello': { kind: 'agent' } })
    await w.client.fetch(`${w.res.origin}/hello`)
    w.credentials.invalidate((await w.credentials.current()).agentToken)
    const all = await Promise.all(Array.from({ length: 20 }, () => w.client.fetch(`${w.res.origin}/hello`)))
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200))
    expect(w.issued()).toBe(2)
  })

  it('AG-05 a person token inside the refresh margin is not presented again: a fresh one is fetched', async () => {
    const w = await world({ '/me': { kind: 'person' } })
    w.ps.lifetimeSec = 240
    await w.client.fetch(`${w.res.origin}/me`)
    await w.client.fetch(`${w.res.origin}/me`)
    expect(w.ps.received.filter((x) => x.path === '/person')).toHaveLength(2)
  })

  it('AG-06 / BOOT-05 after a two-key refresh (new key) the agent re-authorizes: old grants are never presented', async () => {
    const { ap, issuer } = await startAgentProvider()
    const ps = await startPersonServer()
    const res = await startResource({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    const durableKey = (await generateKeyPair()).privateJwk
    await enroll({ provider: issuer, durableKey, code: await ap.createEnrollmentCode({ local: 'rotating-bot', ps: ps.issuer }), ...LOOPBACK })
    const credentials = AgentCredentials.fromProvider({ provider: issuer, durableKey })
    const client = createAgentClient({ credentials, ...LOOPBACK })
    expect((await client.fetch(`${res.origin}/flights`)).status).toBe(200)
    const firstJkt = (await credentials.current()).jkt
    credentials.invalidate((await credentials.current()).agentToken)
    expect((await client.fetch(`${res.origin}/flights`)).status).toBe(200)
    expect((await credentials.current()).jkt).not.toBe(firstJkt)
    expect(res.presented.map((p) => p.kind)).toEqual(['agent', 'person', 'auth', 'agent', 'person', 'auth'])
    expect(ps.received.filter((x) => x.path === '/token')).toHaveLength(2)
  })

  it('AG-SIG-03 on expired_jwt for the agent token gets a fresh one and retries', async () => {
    let first = true
    const w = await world({
      '/x': {
        kind: 'raw',
        respond: () => {
          if (!first) return Response.json({ ok: true })
          first = false
          return new Response(null, { status: 401, headers: { 'signature-error': 'error=expired_jwt' } })
        },
      },
    })
    expect((await w.client.fetch(`${w.res.origin}/x`)).status).toBe(200)
    expect(w.issued()).toBe(2)
  })

  it('AG-RES-15 a revoked auth token restarts the grant from a fresh person token', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    await w.client.fetch(`${w.res.origin}/flights`)
    const tokens = await collectAuthJtis(w)
    for (const jti of tokens) w.res.revoked.add(jti)
    const r = await w.client.fetch(`${w.res.origin}/flights`)
    expect(r.status).toBe(200)
    expect(w.ps.received.filter((x) => x.path === '/person')).toHaveLength(2)
    expect(w.ps.received.filter((x) => x.path === '/token')).toHaveLength(2)
  })

  it('AG-SIG-03 adds the components named by required_input and retries', async () => {
    const w = await world({ '/strict': STRICT })
    expect((await w.client.fetch(`${w.res.origin}/strict`)).status).toBe(200)
    const last = w.steps.filter((s) => s.type === 'request').at(-1) as { components: readonly string[] }
    expect(last.components).toContain('prefer')
  })
})

/** The jtis of the auth tokens the PS issued (read back from what the agent presented). */
async function collectAuthJtis(w: World): Promise<string[]> {
  const prepared = await w.client.prepare(`${w.res.origin}/flights`)
  expect(prepared.presenting).toBe('auth')
  const sk = prepared.headers.get('signature-key')!
  const jwt = /jwt="([^"]+)"/.exec(sk)![1]!
  return [String(decodeJwt(jwt).payload['jti'])]
}

describe('agent client: bad inputs yield typed errors, no hang (NEG-AG-*)', () => {
  const raw = (respond: (req: Request, origin: string) => Response | Promise<Response>): Record<string, RouteMode> => ({ '/x': { kind: 'raw', respond } })

  it('a malformed AAuth-Requirement is a HeaderError', async () => {
    const w = await world(raw(() => new Response(null, { status: 401, headers: { 'aauth-requirement': 'requirement=' } })))
    const err = await w.client.fetch(`${w.res.origin}/x`).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(HeaderError)
    expect(err).toMatchObject({ code: 'malformed_header', header: 'aauth-requirement' })
  })

  it('NEG-AG-06 requirement=frobnicate is unsupported_requirement after one request', async () => {
    const w = await world(raw(() => new Response(null, { status: 401, headers: { 'aauth-requirement': 'requirement=frobnicate' } })))
    await expect(w.client.fetch(`${w.res.origin}/x`)).rejects.toMatchObject({ code: 'unsupported_requirement' })
    expect(w.res.presented).toHaveLength(1)
  })

  it('a 401 with neither header is a typed unexpected_response with the status', async () => {
    const w = await world(raw(() => Response.json({ error: 'nope', detail: 'go away' }, { status: 401 })))
    await expect(w.client.fetch(`${w.res.origin}/x`)).rejects.toMatchObject({ code: 'unexpected_response', status: 401, serverError: 'nope', detail: 'go away' })
  })

  it('a resource token signed by an unknown key is refused before anything reaches the PS', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    w.res.key = { kid: 'unknown', privateJwk: (await generateKeyPair()).privateJwk }
    await expect(w.client.fetch(`${w.res.origin}/flights`)).rejects.toMatchObject({ code: 'challenge_rejected' })
    expect(w.ps.received.filter((x) => x.path === '/token')).toHaveLength(0)
  })

  it('NEG-AG-04 a PS answering with a token bound to another agent is refused', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' } })
    w.ps.behaviour = { kind: 'wrong-agent' }
    const err = await w.client.fetch(`${w.res.origin}/flights`).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AgentError)
    expect(err).toMatchObject({ code: 'token_rejected' })
    expect(kinds(w)).not.toContain('auth')
  })

  it('an endless 202 loop ends with too_many_rounds, and a deadline with deadline_exceeded', async () => {
    const pending = (retryAfter: string) => (req: Request) => new Response('{"status":"pending"}', { status: 202, headers: { location: new URL(req.url).pathname, 'retry-after': retryAfter, 'content-type': 'application/json' } })
    const w = await world({ '/x': { kind: 'raw', respond: pending('0') }, '/slow': { kind: 'raw', respond: pending('1') } }, { maxPolls: 5 })
    await expect(w.client.fetch(`${w.res.origin}/x`)).rejects.toMatchObject({ code: 'too_many_rounds' })
    expect(w.res.presented).toHaveLength(6)
    const started = Date.now()
    await expect(w.client.fetch(`${w.res.origin}/slow`, { aauth: { deadline: Date.now() + 1500 } })).rejects.toMatchObject({ code: 'deadline_exceeded' })
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('NEG-AG-07 an unknown pending status is treated as pending', async () => {
    let n = 0
    const w = await world(raw(() => (++n < 3 ? new Response('{"status":"weird"}', { status: 202, headers: { location: '/x', 'retry-after': '0' } }) : Response.json({ done: true }))))
    expect(await (await w.client.fetch(`${w.res.origin}/x`)).json()).toEqual({ done: true })
  })

  it('never follows a redirect to another origin; a same-origin redirect is re-signed', async () => {
    const w = await world({
      '/away': { kind: 'raw', respond: () => new Response(null, { status: 302, headers: { location: 'http://127.0.0.2:1/steal' } }) },
      '/moved': { kind: 'raw', respond: () => new Response(null, { status: 307, headers: { location: '/hello' } }) },
      '/hello': { kind: 'agent' },
    })
    await expect(w.client.fetch(`${w.res.origin}/away`)).rejects.toMatchObject({ code: 'redirect_refused' })
    const r = await w.client.fetch(`${w.res.origin}/moved`)
    expect(r.status).toBe(200)
    expect(kinds(w, '/hello')).toEqual(['agent'])
  })

  it('AG-RES-04 an agent without a PS reports no_person_server', async () => {
    const w = await world({ '/me': { kind: 'person' } }, {}, false)
    await expect(w.client.fetch(`${w.res.origin}/me`)).rejects.toMatchObject({ code: 'no_person_server' })
  })

  it('refuses plain http to a non-loopback host', async () => {
    const w = await world({ '/hello': { kind: 'agent' } })
    await expect(w.client.fetch('http://api.example/hello')).rejects.toMatchObject({ code: 'insecure_url' })
  })
})

describe('agent client: required_input it cannot satisfy', () => {
  it('AG-SIG-03 a required component the request lacks surfaces the server error, typed', async () => {
    const w = await world({ '/strict': { kind: 'raw', respond: () => new Response(null, { status: 401, headers: { 'signature-error': 'error=invalid_input, required_input=("x-nope")' } }) } })
    await expect(w.client.fetch(`${w.res.origin}/strict`)).rejects.toMatchObject({ code: 'invalid_input', requiredInput: ['x-nope'] })
  })
})

describe('agent client: transport failures', () => {
  it('an unreachable resource is a typed fetch_failed, and the caller’s abort stays an abort', async () => {
    const w = await world({ '/hello': { kind: 'agent' } })
    await expect(w.client.fetch('http://127.0.0.1:1/hello')).rejects.toMatchObject({ code: 'fetch_failed' })
    const ac = new AbortController()
    ac.abort()
    await expect(w.client.fetch(`${w.res.origin}/hello`, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
  })
})

describe('agent client: deadlines and credentials', () => {
  it('the deadline also bounds a request in flight: a resource that never answers gives deadline_exceeded', async () => {
    const w = await world({ '/hang': { kind: 'raw', respond: () => new Promise<Response>(() => undefined) } })
    const started = Date.now()
    await expect(w.client.fetch(`${w.res.origin}/hang`, { aauth: { deadline: Date.now() + 300 } })).rejects.toMatchObject({ code: 'deadline_exceeded' })
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('reports each new agent token as a step; a token bound to another key is refused up front', async () => {
    const w = await world({ '/hello': { kind: 'agent' } })
    await w.client.fetch(`${w.res.origin}/hello`)
    expect(w.steps.filter((s) => s.type === 'token' && s.kind === 'agent')).toHaveLength(1)
    const current = await w.credentials.current()
    const stranger = await createSigner((await generateKeyPair()).privateJwk)
    await expect(AgentCredentials.fixed(current.agentToken, stranger).current()).rejects.toMatchObject({ code: 'invalid_key' })
  })
})

describe('agent client: review regressions', () => {
  it('AG-SIG-02 never sends a person token to an authorization endpoint on another origin', async () => {
    const w = await world({ '/authorize': { kind: 'authorize' } })
    const other = await startResource({ '/authorize': { kind: 'authorize' } })
    w.res.metadataExtra = { authorization_endpoint: `${other.origin}/authorize` }
    await expect(w.client.authorize(w.res.origin, { scope: 'x' })).rejects.toMatchObject({ code: 'requirement_unsatisfiable' })
    expect(other.presented).toEqual([])
  })

  it('a fixed token bound to another key is reported by current(), never as an unhandled rejection', async () => {
    const w = await world({ '/hello': { kind: 'agent' } })
    const token = (await w.credentials.current()).agentToken
    const creds = AgentCredentials.fixed(token, await createSigner((await generateKeyPair()).privateJwk))
    await new Promise((r) => setTimeout(r, 30))
    await expect(creds.current()).rejects.toMatchObject({ code: 'invalid_key' })
    await expect(creds.current()).rejects.toMatchObject({ code: 'invalid_key' })
  })

  it('a deadline weeks away does not fire at once (timer limit)', async () => {
    const w = await world({ '/hello': { kind: 'agent' } })
    expect((await w.client.fetch(`${w.res.origin}/hello`, { aauth: { deadline: Date.now() + 30 * 86400_000 } })).status).toBe(200)
  })

  it('AG-RES-04 a person-token requirement is met with a person token even while an auth token is held', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' }, '/me': { kind: 'person-only' } })
    await w.client.fetch(`${w.res.origin}/flights`)
    const r = await w.client.fetch(`${w.res.origin}/me`)
    expect(r.status).toBe(200)
    expect(kinds(w, '/me')).toEqual(['auth', 'person'])
  })

  it('AG-RES-15 after a step-up, revoking every grant restarts from a fresh person token', async () => {
    const w = await world({ '/flights': { kind: 'auth', scope: 'flights.read' }, '/bookings': { kind: 'auth', scope: 'bookings.write' } })
    await w.client.fetch(`${w.res.origin}/flights`)
    await w.client.fetch(`${w.res.origin}/bookings`)
    for (const path of ['/flights', '/bookings']) {
      const p = await w.client.prepare(`${w.res.origin}${path}`, { aauth: { scope: path === '/flights' ? 'flights.read' : 'bookings.write' } })
      w.res.revoked.add(String(decodeJwt(/jwt="([^"]+)"/.exec(p.headers.get('signature-key')!)![1]!).payload['jti']))
    }
    expect((await w.client.fetch(`${w.res.origin}/bookings`, { aauth: { scope: 'bookings.write' } })).status).toBe(200)
  })

  it('AG-RES-09 deferred delivery recovers from expired_resource_token with the next poll’s resource token', async () => {
    const w = await world({ '/hold': { kind: 'auth', scope: 'bookings.write', deferred: true } })
    w.ps.behaviour = { kind: 'error', code: 'expired_resource_token', times: 1 }
    const r = await w.client.fetch(`${w.res.origin}/hold`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(await r.json()).toMatchObject({ held: true })
  })

  it('a 402 still asking for payment after authorization is returned to the caller, not looped', async () => {
    const w = await world({ '/pay': { kind: 'auth', scope: 'bookings.write', payment: true } })
    const r = await w.client.fetch(`${w.res.origin}/pay`)
    expect(r.status).toBe(402)
    expect(w.ps.received.filter((x) => x.path === '/token')).toHaveLength(1)
  })

  it('SIG-05 components learned from required_input are covered on later calls', async () => {
    const w = await world({ '/strict': STRICT })
    await w.client.fetch(`${w.res.origin}/strict`)
    await w.client.fetch(`${w.res.origin}/strict`)
    expect(w.res.presented).toHaveLength(3)
  })

  it('AG-MIS-03 a person token without the mission asked for is refused (mission stripping)', async () => {
    const mission = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
    const w = await world({ '/me': { kind: 'person' } }, { mission })
    w.ps.dropMission = true
    await expect(w.client.fetch(`${w.res.origin}/me`)).rejects.toMatchObject({ code: 'token_rejected' })
    w.ps.dropMission = false
    expect((await w.client.fetch(`${w.res.origin}/me`)).status).toBe(200)
    expect(w.ps.received.at(-1)!.body['mission_s256']).toBe(mission)
  })

  it('a 202 whose pending URL is on another origin is the server’s fault: unexpected_response', async () => {
    const w = await world({ '/x': { kind: 'raw', respond: () => new Response('{}', { status: 202, headers: { location: 'https://elsewhere.example/p' } }) } })
    await expect(w.client.fetch(`${w.res.origin}/x`)).rejects.toMatchObject({ code: 'unexpected_response' })
  })
})
