/**
 * The account page (main draft §Agent-Person Binding, §Token Revocation): agents, grants, waiting
 * requests, the audit trail and its filters, the JSON export, and revocation through a
 * confirmation page with the per-recipient report.
 */
import { describe, expect, it } from 'vitest'
import { ConsentError } from '../../../src/person-server/consent.js'
import type { AgentBinding, AuditEvent, Grant } from '../../../src/person-server/store/types.js'
import { AGENT_ISS, AGENT_SUB, harness, sampleRecord, T0 } from './fakes.js'

const XSS = '"><script>window.__xss=1</script><img src=x onerror=alert(1)>'

async function setup() {
  const h = await harness()
  const bindings: AgentBinding[] = [
    { agentIss: AGENT_ISS, agentSub: AGENT_SUB, personId: 'person-alice', providerName: 'Example Agents', platform: 'linux', device: 'Laptop (CLI)', createdAt: T0 - 86_400_000 },
    { agentIss: AGENT_ISS, agentSub: 'aauth:old@agents.example', personId: 'person-alice', createdAt: T0 - 2 * 86_400_000, revokedAt: T0 - 3600_000 },
    { agentIss: AGENT_ISS, agentSub: 'aauth:bobs@agents.example', personId: 'person-bob', createdAt: T0 },
  ]
  const grants: Grant[] = [
    { id: 'g-files', personId: 'person-alice', agentIss: AGENT_ISS, agentSub: AGENT_SUB, resource: 'https://files.example', scope: 'files.read', missionS256: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', createdAt: T0 - 1000, expiresAt: T0 + 30 * 86_400_000 },
    { id: 'g-person', personId: 'person-alice', agentIss: AGENT_ISS, agentSub: AGENT_SUB, resource: 'https://news.example', scope: '', createdAt: T0 - 2000 },
    { id: 'g-revoked', personId: 'person-alice', agentIss: AGENT_ISS, agentSub: AGENT_SUB, resource: 'https://old.example', scope: 'x', createdAt: T0 - 3000, revokedAt: T0 - 100 },
    { id: 'g-expired', personId: 'person-alice', agentIss: AGENT_ISS, agentSub: AGENT_SUB, resource: 'https://gone.example', scope: 'y', createdAt: T0 - 4000, expiresAt: T0 - 1 },
    { id: 'g-bob', personId: 'person-bob', agentIss: AGENT_ISS, agentSub: 'aauth:bobs@agents.example', resource: 'https://bob.example', scope: 'z', createdAt: T0 },
  ]
  const audit: AuditEvent[] = [
    { seq: 1, at: T0 - 5000, type: 'grant.created', personId: 'person-alice', agentSub: AGENT_SUB, resource: 'https://files.example', scope: 'files.read', decision: 'grant' },
    { seq: 2, at: T0 - 4000, type: 'request.denied', personId: 'person-alice', agentSub: 'aauth:other@agents.example', reason: 'Not today', missionS256: 'missionAAAAAAAAAAAAAAAA' },
    { seq: 3, at: T0 - 3000, type: 'grant.created', personId: 'person-bob', agentSub: 'aauth:bobs@agents.example' },
    { seq: 4, at: T0 - 2000, type: 'audit.recorded', personId: 'person-alice', agentSub: AGENT_SUB, detail: { action: 'SendEmail' } },
  ]
  h.consent.bindings = bindings
  h.consent.grantList = grants
  h.store.audit = audit
  h.consent.add(sampleRecord({ id: 'req-wait', personId: 'person-alice', state: 'interacting' }))
  h.consent.add(sampleRecord({ id: 'req-done', personId: 'person-alice', state: 'granted', code: undefined as never }))
  const jar = await h.login()
  return { h, jar }
}

describe('GET /account', () => {
  it('needs a login', async () => {
    const h = await harness()
    const res = await h.request('/account?agent=x')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/login?next=%2Faccount%3Fagent%3Dx')
  })

  it('/ goes to /account', async () => {
    const h = await harness()
    const res = await h.request('/')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/account')
  })

  it("lists the person's agents, grants, waiting requests and audit events", async () => {
    const { h, jar } = await setup()
    const res = await h.request('/account', {}, jar)
    expect(res.status).toBe(200)
    const body = await res.text()
    // Agents
    expect(body).toContain(`<strong class="mono">${AGENT_SUB}</strong>`)
    expect(body).toContain('<strong>Example Agents</strong>')
    expect(body).toContain('linux · Laptop (CLI) (reported by the agent)')
    expect(body).toContain('Connected since 2026-04-30 12:00 UTC')
    expect(body).toMatch(/aauth:old@agents.example<\/strong><span class="tag off">revoked<\/span>/)
    expect(body).not.toContain('aauth:bobs@agents.example')
    expect(body.match(/action="\/account\/agents\/revoke"/g)?.length).toBe(1) // only the live agent
    // Grants
    expect(body).toMatch(/data-grant="g-files"><p><strong>files.example<\/strong><br><code>files.read<\/code>/)
    expect(body).toContain('mission <span class="mono" title="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk">dBjftJeZ4CVP…</span>')
    expect(body).toContain('until 2026-05-31 12:00 UTC')
    expect(body).toMatch(/data-grant="g-person"><p><strong>news.example<\/strong><br><em>act as you at this resource<\/em>/)
    expect(body).toContain('no expiry')
    expect(body).toMatch(/data-grant="g-revoked">[\s\S]*?<span class="tag off">revoked<\/span>/)
    expect(body).toMatch(/data-grant="g-expired">[\s\S]*?<span class="tag old">expired<\/span>/)
    expect(body).toContain('action="/account/grants/g-files/revoke"')
    expect(body).toContain('action="/account/grants/g-person/revoke"')
    expect(body).not.toContain('action="/account/grants/g-revoked/revoke"')
    expect(body).not.toContain('action="/account/grants/g-expired/revoke"')
    expect(body).not.toContain('bob.example')
    // Waiting
    expect(body).toContain('<a href="/interaction/req-wait">')
    expect(body).not.toContain('/interaction/req-done')
    // Audit
    expect(body).toContain('<strong>request.denied</strong>')
    expect(body).toContain('Reason: Not today')
    expect(body).toMatch(/<strong>audit.recorded<\/strong> <span class="muted">[^<]* · reported by the agent<\/span>/)
    expect(h.store.queries.at(-1)).toEqual({ personId: 'person-alice', limit: 50, order: 'desc' })
  })

  it('audit filters: agent, mission, date range (UTC days, "to" inclusive)', async () => {
    const { h, jar } = await setup()
    const res = await h.request(`/account?agent=${encodeURIComponent(AGENT_SUB)}&mission=m1&from=2026-05-01&to=2026-05-02`, {}, jar)
    expect(res.status).toBe(200)
    expect(h.store.queries.at(-1)).toEqual({
      personId: 'person-alice', order: 'desc',
      limit: 50,
      agentSub: AGENT_SUB,
      missionS256: 'm1',
      from: Date.UTC(2026, 4, 1),
      to: Date.UTC(2026, 4, 3),
    })
    const body = await res.text()
    expect(body).toContain(`name="agent" value="${AGENT_SUB}"`)
    expect(body).toContain('name="from" value="2026-05-01"')
    expect(body).toContain('<a href="/account/audit.json?agent=')
  })

  it('bad filter values are ignored with a note; the person cannot be changed', async () => {
    const { h, jar } = await setup()
    const res = await h.request('/account?from=2026-13-01&to=yesterday&limit=5000&personId=person-bob', {}, jar)
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('Ignored: limit must be between 1 and 1000; from must be a date like 2026-01-31; to must be a date like 2026-01-31.')
    expect(h.store.queries.at(-1)).toEqual({ personId: 'person-alice', limit: 50, order: 'desc' })
  })

  it('untrusted values are escaped', async () => {
    const { h, jar } = await setup()
    h.consent.bindings = [{ agentIss: XSS, agentSub: XSS, personId: 'person-alice', providerName: XSS, providerLogoUri: 'javascript:alert(1)', platform: XSS, device: XSS, createdAt: T0 }]
    h.consent.grantList = [{ id: 'g"x', personId: 'person-alice', agentIss: XSS, agentSub: XSS, resource: XSS, scope: XSS, missionS256: XSS, createdAt: T0 }]
    h.store.audit = [{ at: T0, type: XSS, personId: 'person-alice', agentSub: XSS, resource: XSS, reason: XSS, decision: XSS, missionS256: XSS, scope: XSS }]
    const body = await (await h.request('/account', {}, jar)).text()
    expect(body).not.toMatch(/<script|<img src=x/i)
    expect(body).not.toContain('javascript:')
    expect(body).toContain('&lt;script&gt;')
    expect(body).toContain('action="/account/grants/g%22x/revoke"')
  })
})

describe('GET /account/audit.json', () => {
  it("the same query as JSON, the person's only", async () => {
    const { h, jar } = await setup()
    const res = await h.request('/account/audit.json?agent=' + encodeURIComponent(AGENT_SUB), {}, jar)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const json = (await res.json()) as { events: AuditEvent[] }
    expect(json.events.map((e) => e.seq)).toEqual([1, 4])
    expect(h.store.queries.at(-1)).toEqual({ personId: 'person-alice', limit: 50, order: 'desc', agentSub: AGENT_SUB })
  })
  it('bad parameters: 400', async () => {
    const { h, jar } = await setup()
    const res = await h.request('/account/audit.json?from=nope', {}, jar)
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'from must be a date like 2026-01-31' })
  })
  it('needs a login', async () => {
    const h = await harness()
    expect((await h.request('/account/audit.json')).status).toBe(303)
  })
})

describe('revocation: confirmation first, then the report', () => {
  const csrf = async (h: Awaited<ReturnType<typeof setup>>['h'], jar: Awaited<ReturnType<typeof setup>>['jar']) => h.csrfOf(await (await h.request('/account', {}, jar)).text())

  it('a grant', async () => {
    const { h, jar } = await setup()
    const token = await csrf(h, jar)
    const confirm = await h.post('/account/grants/g-files/revoke', { csrf: token }, jar)
    expect(confirm.status).toBe(200)
    const page = await confirm.text()
    expect(page).toContain('<h1>Revoke this access?</h1>')
    expect(page).toContain('files.example')
    expect(page).toContain('<input type="hidden" name="confirm" value="yes">')
    expect(h.consent.mutations).toEqual([])
    const done = await h.post('/account/grants/g-files/revoke', { csrf: h.csrfOf(page), confirm: 'yes' }, jar)
    expect(done.status).toBe(200)
    const report = await done.text()
    expect(h.consent.mutations).toEqual([{ method: 'revokeGrant', args: ['person-alice', 'g-files'] }])
    expect(report).toContain('Access revoked. 2 tokens were revoked.')
    expect(report).toMatch(/data-outcome="revoked"><strong>files.example<\/strong>[\s\S]*?Revoked at the resource\./)
    expect(report).toMatch(/data-outcome="revocation_unsupported"><strong>old.example<\/strong>[\s\S]*?does not support revocation/)
    const after = await (await h.request('/account', {}, jar)).text()
    expect(after).toMatch(/data-grant="g-files">[\s\S]*?<span class="tag off">revoked<\/span>/)
  })

  it('an agent', async () => {
    const { h, jar } = await setup()
    const token = await csrf(h, jar)
    const confirm = await h.post('/account/agents/revoke', { csrf: token, iss: AGENT_ISS, sub: AGENT_SUB }, jar)
    expect(confirm.status).toBe(200)
    const page = await confirm.text()
    expect(page).toContain('<h1>Revoke this agent?</h1>')
    expect(page).toContain(AGENT_SUB)
    expect(h.consent.mutations).toEqual([])
    const done = await h.post('/account/agents/revoke', { csrf: h.csrfOf(page), iss: AGENT_ISS, sub: AGENT_SUB, confirm: 'yes' }, jar)
    expect(done.status).toBe(200)
    expect(await done.text()).toContain('Agent revoked. 2 tokens were revoked.')
    expect(h.consent.mutations).toEqual([{ method: 'revokeAgent', args: ['person-alice', AGENT_ISS, AGENT_SUB] }])
  })

  it("someone else's grant or agent: not found on confirmation, refused by the service when forced", async () => {
    const { h, jar } = await setup()
    const token = await csrf(h, jar)
    expect((await h.post('/account/grants/g-bob/revoke', { csrf: token }, jar)).status).toBe(404)
    expect((await h.post('/account/agents/revoke', { csrf: token, iss: AGENT_ISS, sub: 'aauth:bobs@agents.example' }, jar)).status).toBe(404)
    expect((await h.post('/account/grants/g-bob/revoke', { csrf: token, confirm: 'yes' }, jar)).status).toBe(403)
    expect((await h.post('/account/agents/revoke', { csrf: token, iss: AGENT_ISS, sub: 'aauth:bobs@agents.example', confirm: 'yes' }, jar)).status).toBe(403)
    expect(h.consent.grantList.find((g) => g.id === 'g-bob')!.revokedAt).toBeUndefined()
  })

  it('already revoked: 409 on confirmation; missing agent fields: 400', async () => {
    const { h, jar } = await setup()
    const token = await csrf(h, jar)
    expect((await h.post('/account/grants/g-revoked/revoke', { csrf: token }, jar)).status).toBe(409)
    expect((await h.post('/account/agents/revoke', { csrf: token, iss: AGENT_ISS, sub: 'aauth:old@agents.example' }, jar)).status).toBe(409)
    expect((await h.post('/account/agents/revoke', { csrf: token }, jar)).status).toBe(400)
  })

  it('a ConsentError from the service becomes its page', async () => {
    const { h, jar } = await setup()
    const token = await csrf(h, jar)
    h.consent.failures.set('revokeGrant', new ConsentError('closed', 'Already gone.'))
    const res = await h.post('/account/grants/g-files/revoke', { csrf: token, confirm: 'yes' }, jar)
    expect(res.status).toBe(409)
    expect(await res.text()).toContain('Already gone.')
  })
})

describe('other pages', () => {
  it('unknown paths: 404 page with the security headers', async () => {
    const h = await harness()
    const res = await h.request('/nope')
    expect(res.status).toBe(404)
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
  })
  it('redirects carry the security headers too', async () => {
    const h = await harness()
    const res = await h.request('/account')
    expect(res.status).toBe(303)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('referrer-policy')).toBe('no-referrer')
  })
  it('an oversized form: 413', async () => {
    const { h, jar } = await setup()
    const res = await h.post('/interaction/req-wait', { action: 'ask', question: 'x'.repeat(70_000) }, jar)
    expect(res.status).toBe(413)
    expect(h.consent.mutations).toEqual([])
  })
  it('an unexpected failure: a plain 500 page without details', async () => {
    const { h, jar } = await setup()
    h.consent.failures.set('agents', new Error('database password is hunter2') as ConsentError)
    const spy = console.error
    console.error = () => undefined
    try {
      const res = await h.request('/account', {}, jar)
      expect(res.status).toBe(500)
      const body = await res.text()
      expect(body).toContain('Something went wrong')
      expect(body).not.toContain('hunter2')
    } finally {
      console.error = spy
    }
  })
})
