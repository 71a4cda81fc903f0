/**
 * Three-party flows end to end over loopback HTTP: our agent client → a resource behind our Hono
 * middleware → this Person Server, with the person deciding through the consent service (the web
 * pages drive the same service; see web/ and the Chromium test). Deferred paths: approval later,
 * denial, expiry, clarification, cancellation; and the governance endpoints.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { AgentError } from '../../src/agent/index.js'
import { decodeJwt, ProblemError } from '../../src/protocol/index.js'
import { closeAll } from '../helpers/aauth-servers.js'
import { psWorld, type PsWorld } from '../helpers/person-server.js'

afterEach(closeAll)

const BOOKING = { '/bookings': { access: 'auth', scope: 'bookings:write' } } as const

async function book(w: PsWorld, amount = 320): Promise<Response> {
  return w.client.fetch(`${w.app.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fare: 'ECO-SYD', amount }) })
}

/** Waits for the agent's `n`-th interaction code and opens it as Alice; returns the request id. */
async function openNth(w: PsWorld, n: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const code = w.codes[n - 1]
    if (code !== undefined) {
      const rec = await w.ps.ps.consent.findByCode(code)
      if (rec === undefined) throw new Error(`no request for code ${code}`)
      await w.ps.ps.consent.open(rec.id, w.alice)
      return rec.id
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error('no request appeared')
}

/** Decides the agent's `n`-th request after a pause (the agent is polling meanwhile). */
async function decideLater(w: PsWorld, n: number, approve: boolean, delayMs = 150): Promise<void> {
  const id = await openNth(w, n)
  await new Promise((r) => setTimeout(r, delayMs))
  await w.ps.ps.consent.decide(id, w.alice, { approve, remember: 'always' })
}

describe('three-party flow', () => {
  it('PS-PT-06 / PS-TOK-06 / PS-TOK-12 agent → resource → PS → consent → auth token → 200', async () => {
    let prompts = 0
    const w = await psWorld(BOOKING)
    const inner = w.client
    const r = await book(w)
    expect(r.status).toBe(200)
    const body = (await r.json()) as { mode: string; agent: string; scopes: string[]; token: string }
    expect(body).toMatchObject({ mode: 'auth', token: 'aa-auth+jwt', scopes: ['bookings:write'] })
    // Binding, grants, issued records and audit are all there.
    const binding = await w.ps.store.getBinding(w.apIssuer, w.agentId())
    expect(binding?.personId).toBe(w.alice)
    const grants = await w.ps.store.listGrants(w.alice)
    expect(grants.map((g) => g.scope).sort()).toEqual(['', 'bookings:write'])
    const issued = await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.agentId(), now: Date.now() })
    expect(issued.map((t) => t.kind).sort()).toEqual(['auth', 'person'])
    const types = (await w.ps.store.queryAudit({ personId: w.alice })).map((e) => e.type)
    expect(types).toEqual(expect.arrayContaining(['request.approved', 'person_token.issued', 'auth_token.issued']))
    // A second booking reuses the auth token: no new prompt.
    expect((await book(w)).status).toBe(200)
    expect(prompts).toBe(0)
    expect(inner).toBe(w.client)
  })

  it('PS-TOK-11 a remembered grant answers a new token request without asking', async () => {
    const w = await psWorld(BOOKING)
    expect((await book(w)).status).toBe(200)
    const before = (await w.ps.store.queryAudit({ personId: w.alice })).filter((e) => e.type === 'request.pending').length
    // A fresh client for the same agent key and identity: new person and auth tokens, no prompt.
    const again = await w.client.fetch(`${w.app.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-new': '1' }, body: '{}' })
    expect(again.status).toBe(200)
    const after = (await w.ps.store.queryAudit({ personId: w.alice })).filter((e) => e.type === 'request.pending').length
    expect(after).toBe(before)
  })

  it('DEF: 202, polling, approval later → 200', async () => {
    const w = await psWorld(BOOKING, { approve: false })
    const [r] = await Promise.all([book(w), (async () => {
      await decideLater(w, 1, true) // the person token request (first contact)
      await decideLater(w, 2, true) // the auth token request
    })()])
    expect(r.status).toBe(200)
  })

  it('DEF: denial → the agent surfaces denied (403), and nothing is issued', async () => {
    const w = await psWorld(BOOKING, { approve: false })
    const [err] = await Promise.all([book(w).then(() => undefined, (e: unknown) => e), decideLater(w, 1, false)])
    expect(err).toBeInstanceOf(ProblemError)
    expect((err as ProblemError).code).toBe('denied')
    expect(await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.agentId(), now: Date.now() })).toEqual([])
    const denied = (await w.ps.store.queryAudit({ personId: w.alice })).find((e) => e.type === 'request.denied')
    expect(denied).toMatchObject({ decision: 'deny', agentSub: w.agentId() })
  })

  it('DEF: a request nobody decides expires (408 expired)', async () => {
    const w = await psWorld(BOOKING, { approve: false, ps: { pendingTtlSec: 1 }, client: { onInteraction: () => undefined } })
    const err = await book(w).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(ProblemError)
    expect((err as ProblemError).code).toBe('expired')
  })

  it('PS-CLAR-01 the person asks a question, the agent answers, the person approves', async () => {
    const questions: string[] = []
    const w = await psWorld(BOOKING, {
      approve: false,
      client: {
        onClarification: async ({ question }) => {
          questions.push(question)
          return { action: 'respond' as const, response: 'To book your conference flight.' }
        },
      },
    })
    const drive = async () => {
      await decideLater(w, 1, true) // person token
      for (let i = 0; i < 1; i++) {
        const p = { id: await openNth(w, 2) }
        {
          await w.ps.ps.consent.ask(p.id, w.alice, 'Why do you need to **book**?')
          for (let j = 0; j < 100; j++) {
            const cur = await w.ps.store.getPending(p.id)
            if (cur?.chat?.some((t) => t.from === 'agent') === true) break
            await new Promise((r) => setTimeout(r, 50))
          }
          await w.ps.ps.consent.decide(p.id, w.alice, { approve: true })
          return (await w.ps.store.getPending(p.id))!
        }
      }
      throw new Error('no request')
    }
    const [r, rec] = await Promise.all([book(w), drive()])
    expect(r.status).toBe(200)
    expect(questions).toEqual(['Why do you need to **book**?'])
    expect(rec.chat?.map((t) => t.from)).toEqual(['person', 'agent'])
  })

  it('AG-DEF: the agent gives up at its deadline while the person has not decided', async () => {
    const w = await psWorld(BOOKING, { approve: false, client: { timeoutMs: 800 } })
    const err = await book(w).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(AgentError)
    expect(w.codes).toHaveLength(1)
  })
})

describe('auth token claims from a real flow', () => {
  it('PS-AT-04 the auth token expires no later than the person token it was obtained with', async () => {
    const w = await psWorld(BOOKING)
    expect((await book(w)).status).toBe(200)
    const issued = await w.ps.store.liveIssued({ agentIss: w.apIssuer, agentSub: w.agentId(), now: Date.now() })
    const person = issued.find((t) => t.kind === 'person')!
    const auth = issued.find((t) => t.kind === 'auth')!
    expect(auth.expiresAt).toBeLessThanOrEqual(person.expiresAt)
    expect(auth.presentedJti).toBe(person.jti)
    expect(decodeJwt).toBeTypeOf('function')
  })
})
