/**
 * The Person Server's revocation endpoint and its cascade to resources (main draft §Token
 * Revocation; CHECKLIST REV-10, REV-11, REV-14, REV-15, REV-16, ERR-08), over real loopback HTTP:
 * a real agent provider revokes at the PS, and real resources (`createResource`) verify the PS's
 * signed revocations and then refuse the revoked auth tokens with `revoked_jwt`.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createRequestVerifier, parseSignatureError, sendServerSigned, SignatureError, signRequest } from '../../src/protocol/index.js'
import { OPEN_PENDING_STATES, type PendingRecord } from '../../src/person-server/store/types.js'
import { closeAll, LOOPBACK, loopbackJwks } from '../helpers/aauth-servers.js'
import { send } from '../resource/resource-fixture.js'
import {
  issueAuthToken,
  makeAgent,
  pollAs,
  present,
  releaseAll,
  revoke,
  revokeRaw,
  startAp,
  startIdentity,
  startPs,
  startResource,
  type TestAgent,
  type TestPs,
} from './revocation-fixture.js'

afterEach(async () => {
  await releaseAll()
  await closeAll()
})

const nowSec = (): number => Math.floor(Date.now() / 1000)

/** The `Signature-Error` code of a 401. */
function sigError(res: Response): string | undefined {
  const h = res.headers.get('signature-error')
  return h === null ? undefined : parseSignatureError(h).error
}

async function problem(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { error?: string }).error
}

/** Nothing was recorded for `iss` at the PS. */
async function nothingRecorded(ps: TestPs, iss: string, jti: string): Promise<void> {
  expect(await ps.store.isRevoked(iss, jti)).toBe(false)
  expect(await ps.store.countRevocations(iss, Date.now())).toBe(0)
}

/** An empty `200`: no body, no `Content-Type` (§Revocation Response "Body"). */
function expectEmpty200(answer: { status: number; contentType: string | null; body: string }): void {
  expect(answer).toEqual({ status: 200, contentType: null, body: '' })
}

async function outcomeOf(ps: TestPs, jti: string): Promise<string | undefined> {
  const [o] = await ps.store.outcomes(jti)
  return o?.outcome
}

/** AP, PS, one agent with its agent token recorded at the PS. */
async function basics(o: Parameters<typeof startPs>[0] = {}) {
  const ps = await startPs(o)
  const ap = await startAp()
  const agent = await makeAgent(ap, ps, 'travel-bot')
  return { ps, ap, agent }
}

describe('PS revocation endpoint: requests it refuses (REV-10, ERR-08)', () => {
  it('REV-10 an unsigned revocation → 401 Signature-Error, nothing recorded', async () => {
    const { ps, ap, agent } = await basics()
    const res = await fetch(`${ps.issuer}/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti: agent.jti, exp: agent.exp }) })
    expect(res.status).toBe(401)
    expect(sigError(res)).toBe('invalid_signature')
    await nothingRecorded(ps, ap.issuer, agent.jti)
  })

  it('REV-10 signed with an agent token (jwt scheme) instead of as a server → 401 invalid_jwt, nothing recorded', async () => {
    const { ps, ap, agent } = await basics()
    const { res } = await send(`${ps.issuer}/revoke`, { signer: agent.signer, token: agent.token }, { json: { jti: agent.jti, exp: agent.exp } })
    expect(res.status).toBe(401)
    expect(sigError(res)).toBe('invalid_jwt')
    await nothingRecorded(ps, ap.issuer, agent.jti)
  })

  it('REV-10 / SIG-03 a server signature that does not cover the body → 401 invalid_input, nothing recorded', async () => {
    const { ps, ap, agent } = await basics()
    const res = await revokeRaw(ps, ap, JSON.stringify({ jti: agent.jti, exp: agent.exp }), false)
    expect(res.status).toBe(401)
    expect(sigError(res)).toBe('invalid_input')
    await nothingRecorded(ps, ap.issuer, agent.jti)
  })

  it('ERR-08 a malformed body, a missing jti, a non-integer exp or an exp too far ahead → 400 invalid_request, nothing recorded', async () => {
    const { ps, ap, agent } = await basics()
    const bodies = [
      '{"jti": ',
      '[1, 2]',
      JSON.stringify({ exp: agent.exp }),
      JSON.stringify({ jti: '', exp: agent.exp }),
      JSON.stringify({ jti: 42, exp: agent.exp }),
      JSON.stringify({ jti: agent.jti }),
      JSON.stringify({ jti: agent.jti, exp: agent.exp + 0.5 }),
      JSON.stringify({ jti: agent.jti, exp: String(agent.exp) }),
      // An agent token lives at most 24 h.
      JSON.stringify({ jti: agent.jti, exp: nowSec() + 2 * 86_400 }),
    ]
    for (const body of bodies) {
      const res = await revokeRaw(ps, ap, body)
      expect(res.status, body).toBe(400)
      expect(await problem(res), body).toBe('invalid_request')
    }
    // A resource token lives minutes: a revocation an hour and more ahead is refused.
    const resource = await startResource()
    const res = await revoke(ps, resource, { jti: 'rt-1', exp: nowSec() + 7200 })
    expect(res.status).toBe(400)
    expect(await problem(res)).toBe('invalid_request')
    await nothingRecorded(ps, ap.issuer, agent.jti)
    await nothingRecorded(ps, resource.issuer, 'rt-1')
  })

  it('REV-02 a caller that revokes nothing at a PS (an access server, dwk=aauth-access.json) → 403 unsupported_iss, nothing recorded', async () => {
    const ps = await startPs()
    const as = await startIdentity('aauth-access.json', (origin) => ({ auth_token_endpoint: `${origin}/token` }))
    const res = await revoke(ps, as, { jti: 'pt-1', exp: nowSec() + 600 })
    expect(res.status).toBe(403)
    expect(res.headers.get('signature-error')).toBeNull()
    expect(await problem(res)).toBe('unsupported_iss')
    await nothingRecorded(ps, as.issuer, 'pt-1')
  })

  it('REV-02 / NEG-PS-34 more live revocations than one caller may hold → 429 rate_limited with Retry-After; a repeat still passes', async () => {
    const ps = await startPs({ maxPerIssuer: 2 })
    const ap = await startAp()
    const exp = nowSec() + 3600
    expect((await revoke(ps, ap, { jti: 'a-1', exp })).status).toBe(200)
    expect((await revoke(ps, ap, { jti: 'a-2', exp })).status).toBe(200)
    const res = await revoke(ps, ap, { jti: 'a-3', exp })
    expect(res.status).toBe(429)
    expect(await problem(res)).toBe('rate_limited')
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await ps.store.isRevoked(ap.issuer, 'a-3')).toBe(false)
    expect(await ps.store.countRevocations(ap.issuer, Date.now())).toBe(2)
    // A repeat of a recorded revocation adds nothing, so the bound does not apply to it.
    expect((await revoke(ps, ap, { jti: 'a-1', exp })).status).toBe(200)
  })
})

describe('agent provider revokes an agent token (REV-10, REV-11, REV-15, REV-16)', () => {
  it('REV-11 the AP revokes: recorded, the agent token is refused with revoked_jwt, the cascade reaches both resources, and the AP gets an empty 200', async () => {
    const { ps, ap, agent } = await basics()
    const [r1, r2] = await Promise.all([startResource(), startResource()])
    const t1 = await issueAuthToken(ps, agent, r1)
    const t2 = await issueAuthToken(ps, agent, r2)
    // Before: both resources accept the auth tokens.
    expect((await present(r1, agent, t1)).status).toBe(200)
    expect((await present(r2, agent, t2)).status).toBe(200)

    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)

    expectEmpty200(ps.answers.at(-1)!)
    expect(await ps.store.isRevoked(ap.issuer, agent.jti)).toBe(true)
    expect(ps.agentsRevoked).toEqual([`${ap.issuer} ${agent.sub}`])
    expect([r1.hits, r2.hits]).toEqual([1, 1])
    expect(await outcomeOf(ps, t1.record.jti)).toBe('revoked')
    expect(await outcomeOf(ps, t2.record.jti)).toBe('revoked')
    expect((await ps.store.getIssued(t1.record.jti))?.revokedAt).toBeTypeOf('number')
    const audit = await ps.store.queryAudit({ agentSub: agent.sub })
    expect(audit.filter((e) => e.type === 'token.revoked').map((e) => e.resource).sort()).toEqual([r1.issuer, r2.issuer].sort())

    // Presenting a revoked auth token: 401 revoked_jwt (§Presenting a Revoked Token).
    for (const [r, t] of [[r1, t1], [r2, t2]] as const) {
      const res = await present(r, agent, t)
      expect(res.status).toBe(401)
      expect(sigError(res)).toBe('revoked_jwt')
    }
    // The PS's own agent verifier, wired to the store, refuses the revoked agent token.
    await expect(agentRequestAtPs(ps, agent)).rejects.toMatchObject({ code: 'revoked_jwt' })
  })

  it('REV-10 a resource that publishes no revocation_endpoint, or answers 403 unsupported_iss → revocation_unsupported (still a terminal 200)', async () => {
    const { ps, ap, agent } = await basics()
    const absent = await startResource({ kind: 'absent' })
    const refusing = await startResource({ kind: 'refuse' })
    const t1 = await issueAuthToken(ps, agent, absent)
    const t2 = await issueAuthToken(ps, agent, refusing)
    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)
    expectEmpty200(ps.answers.at(-1)!)
    expect([absent.hits, refusing.hits]).toEqual([0, 1])
    expect(await outcomeOf(ps, t1.record.jti)).toBe('revocation_unsupported')
    expect(await outcomeOf(ps, t2.record.jti)).toBe('revocation_unsupported')
  })

  it('REV-10 a resource that never answers, past the deadline → revocation_unavailable (still a terminal 200)', async () => {
    const { ps, ap, agent } = await basics({ timeoutMs: 400 })
    const r = await startResource({ kind: 'hang' })
    const t = await issueAuthToken(ps, agent, r)
    const started = Date.now()
    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)
    expect(Date.now() - started).toBeGreaterThanOrEqual(400)
    expectEmpty200(ps.answers.at(-1)!)
    expect(r.hits).toBe(1)
    expect(await outcomeOf(ps, t.record.jti)).toBe('revocation_unavailable')
  })

  it('REV-10 a resource answering 500 → revocation_unavailable (still a terminal 200)', async () => {
    const { ps, ap, agent } = await basics()
    const r = await startResource({ kind: 'fail' })
    const t = await issueAuthToken(ps, agent, r)
    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)
    expectEmpty200(ps.answers.at(-1)!)
    expect(await outcomeOf(ps, t.record.jti)).toBe('revocation_unavailable')
    // The resource never recorded it: the token still works there until its exp.
    expect((await present(r, agent, t)).status).toBe(200)
  })

  it('REV-10 a resource answering 200 with a body that is not a JSON object → revocation_unavailable', async () => {
    const { ps, ap, agent } = await basics()
    const r = await startResource({ kind: 'garbage' })
    const t = await issueAuthToken(ps, agent, r)
    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)
    expect(await outcomeOf(ps, t.record.jti)).toBe('revocation_unavailable')
  })

  it('REV-10 a cascade longer than Prefer: wait=1 → 202 (no AAuth-Requirement); a poll by another server → 404; by the revoking AP → 202, then an empty 200', async () => {
    const { ps, ap, agent } = await basics()
    const r = await startResource({ kind: 'slow', ms: 2500 })
    const t = await issueAuthToken(ps, agent, r)
    const started = Date.now()
    const res = await revoke(ps, ap, { jti: agent.jti, exp: agent.exp }, { prefer: 'wait=1' })
    expect(res.status).toBe(202)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
    expect(res.headers.get('aauth-requirement')).toBeNull()
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
    const location = res.headers.get('location')!
    expect(location).toMatch(/^\/revoke\/pending\/[A-Za-z0-9_-]{20,}$/)
    // Recorded before the cascade finished.
    expect(await ps.store.isRevoked(ap.issuer, agent.jti)).toBe(true)

    const other = await startAp()
    expect((await pollAs(ps, other, location)).status).toBe(404)
    expect((await pollAs(ps, ap, `${location}x`)).status).toBe(404)
    expect((await pollAs(ps, ap, location)).status).toBe(202)
    const done = await pollAs(ps, ap, location, { prefer: 'wait=10' })
    expect(done.status).toBe(200)
    expect(done.headers.get('content-type')).toBeNull()
    expect(await done.text()).toBe('')
    expect(await outcomeOf(ps, t.record.jti)).toBe('revoked')
    // Still readable by its owner only, and an unsigned poll is a 401.
    expect((await pollAs(ps, other, location)).status).toBe(404)
    expect((await fetch(new URL(location, ps.issuer))).status).toBe(401)
  })

  it('REV-10 idempotence: a repeated revocation records nothing new and re-attempts only what did not succeed', async () => {
    const { ps, ap, agent } = await basics()
    const ok = await startResource()
    const flaky = await startResource({ kind: 'fail', times: 1 })
    const tOk = await issueAuthToken(ps, agent, ok)
    const tFlaky = await issueAuthToken(ps, agent, flaky)

    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)
    expect([ok.hits, flaky.hits]).toEqual([1, 1])
    expect(await outcomeOf(ps, tOk.record.jti)).toBe('revoked')
    expect(await outcomeOf(ps, tFlaky.record.jti)).toBe('revocation_unavailable')
    const revokedAt = (await ps.store.getIssued(tOk.record.jti))?.revokedAt
    const auditBefore = (await ps.store.queryAudit({ limit: 1000 })).length
    // Issued to the agent after the revocation (with a later agent token): not the repeat's business.
    const later = await issueAuthToken(ps, agent, ok)

    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)
    expectEmpty200(ps.answers.at(-1)!)
    expect([ok.hits, flaky.hits]).toEqual([1, 2])
    expect(await outcomeOf(ps, tFlaky.record.jti)).toBe('revoked')
    expect((await ps.store.getIssued(tOk.record.jti))?.revokedAt).toBe(revokedAt)
    expect((await ps.store.queryAudit({ limit: 1000 })).length).toBe(auditBefore)
    expect((await ps.store.getIssued(later.record.jti))?.revokedAt).toBeUndefined()
    expect(sigError(await present(flaky, agent, tFlaky))).toBe('revoked_jwt')

    // A third repeat has nothing left to re-attempt.
    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)
    expect([ok.hits, flaky.hits]).toEqual([1, 2])
  })

  it('REV-11 an agent token the PS never saw is recorded and answered 200 with nothing to cascade', async () => {
    const { ps, ap } = await basics()
    const res = await revoke(ps, ap, { jti: 'never-seen', exp: nowSec() + 600 })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBeNull()
    expect(await res.text()).toBe('')
    expect(await ps.store.isRevoked(ap.issuer, 'never-seen')).toBe(true)
    expect(ps.agentsRevoked).toEqual([])
  })

  it("REV-11 revoking an agent cascades to the tokens issued to its sub-agents (parentAgent), and to no other agent's", async () => {
    const { ps, ap, agent } = await basics()
    const sub = await makeAgent(ap, ps, 'pay', 'travel-bot')
    const bystander = await makeAgent(ap, ps, 'other-bot')
    const r = await startResource()
    const own = await issueAuthToken(ps, agent, r)
    const delegated = await issueAuthToken(ps, sub, r, agent.sub)
    const untouched = await issueAuthToken(ps, bystander, r)

    expect(await ap.ap.revokeAgentToken(agent.token)).toBe(true)

    expect(r.hits).toBe(2)
    expect(await outcomeOf(ps, own.record.jti)).toBe('revoked')
    expect(await outcomeOf(ps, delegated.record.jti)).toBe('revoked')
    expect(sigError(await present(r, sub, delegated))).toBe('revoked_jwt')
    expect((await ps.store.getIssued(untouched.record.jti))?.revokedAt).toBeUndefined()
    expect((await present(r, bystander, untouched)).status).toBe(200)
  })
})

describe('resource withdraws a resource token (REV-14)', () => {
  it('REV-14 recorded even though never seen, 200 with an empty body at once; an open pending request started for it ends revoked with the 403 body', async () => {
    const ps = await startPs()
    const r = await startResource()
    const exp = nowSec() + 300
    await ps.store.commit({ newPending: pendingFor(ps, r.issuer, 'rt-1', 'pending-1') })
    await ps.store.commit({ newPending: pendingFor(ps, r.issuer, 'rt-2', 'pending-2') })

    const res = await revoke(ps, r, { jti: 'rt-1', exp }, { prefer: 'wait=0' })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBeNull()
    expect(await res.text()).toBe('')
    expect(await ps.store.isRevoked(r.issuer, 'rt-1')).toBe(true)
    const ended = await ps.store.getPending('pending-1')
    expect(ended?.state).toBe('revoked')
    expect(ended?.result).toEqual({ status: 403, body: { error: 'revoked', detail: 'the resource withdrew the resource token this request was started for' } })
    expect((await ps.store.getPending('pending-2'))?.state).toBe('pending')

    // A repeat records nothing new and answers the same.
    const again = await revoke(ps, r, { jti: 'rt-1', exp })
    expect(again.status).toBe(200)
    expect(await ps.store.countRevocations(r.issuer, Date.now())).toBe(1)
  })
})

describe('server-signed requests (sendServerSigned)', () => {
  it('SIG-19 a revocation is signed with jwks_uri (id, dwk, kid) and covers content-type and content-digest', async () => {
    const ps = await startPs()
    const ap = await startAp()
    const verifier = createRequestVerifier({ audience: ps.issuer, jwks: loopbackJwks(), acceptedTokenTypes: [], acceptServerSignatures: true, requireBodyComponents: true, ...LOOPBACK })
    let seen: { components: readonly string[]; issuer?: string; dwk?: string } | undefined
    const fetchSpy: typeof fetch = async (input, init) => {
      const req = new Request(input as string, init)
      const body = new Uint8Array(await req.clone().arrayBuffer())
      const v = await verifier.verify(req, body)
      const c = v.key.context
      seen = { components: v.components, ...(c.scheme === 'jwks_uri' ? { issuer: c.issuer, dwk: c.dwk } : {}) }
      return new Response(null, { status: 200 })
    }
    const res = await sendServerSigned({ url: `${ps.issuer}/revoke`, method: 'POST', json: { jti: 'x', exp: 1 }, issuer: ap.issuer, dwk: 'aauth-agent.json', key: ap.keys.current, fetch: fetchSpy, ...LOOPBACK })
    expect(res.status).toBe(200)
    expect(seen).toEqual({ components: ['@method', '@authority', '@path', 'signature-key', 'content-type', 'content-digest'], issuer: ap.issuer, dwk: 'aauth-agent.json' })
    // https only unless loopback is allowed: nothing is sent.
    await expect(sendServerSigned({ url: `${ps.issuer}/revoke`, method: 'POST', issuer: ap.issuer, dwk: 'aauth-agent.json', key: ap.keys.current, fetch: fetchSpy })).rejects.toMatchObject({ code: 'egress_refused' })
  })

  it('sendServerSigned aborts at its deadline with EgressError fetch_timeout', async () => {
    const ap = await startAp()
    const r = await startResource({ kind: 'hang' })
    await expect(
      sendServerSigned({ url: `${r.issuer}/aauth/revoke`, method: 'POST', json: { jti: 'x', exp: nowSec() + 60 }, issuer: ap.issuer, dwk: 'aauth-agent.json', key: ap.keys.current, timeoutMs: 200, ...LOOPBACK }),
    ).rejects.toMatchObject({ code: 'fetch_timeout' })
  })
})

/** An open pending request started for the resource token `(iss, jti)`. */
function pendingFor(ps: TestPs, iss: string, jti: string, id: string): PendingRecord {
  const now = Date.now()
  return {
    id,
    kind: 'auth_token',
    agentIss: 'http://127.0.0.1:1',
    agentSub: 'aauth:bot@127.0.0.1:1',
    personId: ps.personId,
    state: OPEN_PENDING_STATES[0]!,
    view: { kind: 'auth_token', agent: { iss: 'http://127.0.0.1:1', sub: 'aauth:bot@127.0.0.1:1' }, resource: { id: iss } },
    work: {},
    resourceTokenIss: iss,
    resourceTokenJti: jti,
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 600_000,
  }
}

/** A request to the PS signed with the agent token, verified as the PS app verifies agents (revocations from the store). */
async function agentRequestAtPs(ps: TestPs, agent: TestAgent): Promise<void> {
  const verifier = createRequestVerifier({ audience: ps.issuer, jwks: loopbackJwks(), acceptedTokenTypes: ['aa-agent+jwt'], isRevoked: (iss, jti) => ps.store.isRevoked(iss, jti), ...LOOPBACK })
  const url = `${ps.issuer}/token`
  const { headers } = await signRequest({ method: 'GET', url, headers: new Headers() }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false } })
  try {
    await verifier.verify(new Request(url, { headers }))
  } catch (e) {
    if (e instanceof SignatureError) throw e
    throw new Error(`unexpected failure: ${String(e)}`)
  }
}
