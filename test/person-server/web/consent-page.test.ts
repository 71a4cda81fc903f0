/**
 * The consent page (main draft §User Interaction, §Consent Presentation, §Clarification Chat,
 * §Interaction Code Format; CHECKLIST PS-CON-01..05, PS-TOK-08/09) over a fake ConsentService:
 * the code flow, every page state and request kind, the resource/agent boxes, the actions, every
 * ConsentError status, and XSS payloads in every untrusted field.
 */
import { describe, expect, it } from 'vitest'
import { ConsentError, type ConsentErrorCode } from '../../../src/person-server/consent.js'
import type { ConsentView, PendingRecord, PendingState } from '../../../src/person-server/store/types.js'
import { AGENT_ISS, AGENT_SUB, harness, sampleRecord, sampleView, T0, type Harness } from './fakes.js'
import type { Jar } from './fakes.js'

/** The inside of the first `<section>` of a kind (they do not nest). */
function box(body: string, kind: 'resource' | 'agent' | 'verified'): string {
  const cls = kind === 'resource' ? 'resource-box' : kind === 'agent' ? 'agent-box' : 'verified'
  const m = new RegExp(`<section class="box ${cls}"[^>]*>([\\s\\S]*?)</section>`).exec(body)
  return m?.[1] ?? ''
}

/** Every agent-box element (the section and the chat answers). */
function agentBoxes(body: string): string {
  return [...body.matchAll(/<(section|li) class="box agent-box[^"]*"[^>]*>([\s\S]*?)<\/\1>/g)].map((m) => m[2]).join('\n')
}

async function openPage(rec: Partial<PendingRecord> = {}): Promise<{ h: Harness; jar: Jar; body: string; res: Response }> {
  const h = await harness()
  h.consent.add(sampleRecord({ personId: 'person-alice', state: 'interacting', ...rec }))
  const jar = await h.login()
  const res = await h.request(`/interaction/${rec.id ?? 'req-1'}`, {}, jar)
  return { h, jar, body: await res.text(), res }
}

const hasDecisionButtons = (body: string): boolean => body.includes('value="approve"') || body.includes('value="deny"')

describe('GET /interaction?code=…', () => {
  it('needs a login, and comes back to the code after it', async () => {
    const h = await harness()
    const res = await h.request('/interaction?code=K7QD-2M9X')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/login?next=%2Finteraction%3Fcode%3DK7QD-2M9X')
    expect(h.consent.calls).toEqual([])
  })

  it('without a code: a form to type it', async () => {
    const h = await harness()
    const jar = await h.login()
    const res = await h.request('/interaction', {}, jar)
    expect(res.status).toBe(200)
    const body = await res.text()
    expect(body).toContain('<form method="get" action="/interaction"')
    expect(body).toContain('name="code"')
  })

  it('normalises the code (case, hyphens, I/L/O), opens the request and redirects to its id', async () => {
    const h = await harness()
    h.consent.add(sampleRecord({ code: 'A1B0C1D0' }))
    const jar = await h.login()
    const res = await h.request('/interaction?code=' + encodeURIComponent(' aIbO-cLdo '), {}, jar)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/interaction/req-1')
    expect(h.consent.calls.filter((c) => c.method !== 'agents')).toEqual([
      { method: 'findByCode', args: ['A1B0C1D0'] },
      { method: 'open', args: ['req-1', 'person-alice'] },
    ])
    // The page itself no longer needs the code.
    const page = await h.request('/interaction/req-1', {}, jar)
    expect(page.status).toBe(200)
  })

  it('a malformed code: 400 and the service is not asked', async () => {
    const h = await harness()
    const jar = await h.login()
    for (const code of ['abc!', 'ABC', 'é1234567', 'x'.repeat(65), '<script>']) {
      const res = await h.request('/interaction?code=' + encodeURIComponent(code), {}, jar)
      expect(res.status).toBe(400)
      expect(await res.text()).not.toContain('<script>')
    }
    expect(h.consent.calls).toEqual([])
  })

  it('an unknown or used code: 404 with the form', async () => {
    const h = await harness()
    const jar = await h.login()
    const res = await h.request('/interaction?code=ZZZZ-ZZZZ', {}, jar)
    expect(res.status).toBe(404)
    const body = await res.text()
    expect(body).toContain('No open request has this code')
    expect(body).toContain('value="ZZZZ-ZZZZ"')
  })

  it('failed code look-ups are throttled per person', async () => {
    const h = await harness()
    const jar = await h.login()
    for (let i = 0; i < 10; i++) expect((await h.request(`/interaction?code=ZZZZ-ZZZ${i}`, {}, jar)).status).toBe(404)
    h.consent.add(sampleRecord({ code: 'K7QD2M9X' }))
    expect((await h.request('/interaction?code=K7QD-2M9X', {}, jar)).status).toBe(429)
    h.clock.advance(10 * 60_000 + 1)
    expect((await h.request('/interaction?code=K7QD-2M9X', {}, jar)).status).toBe(303)
  })

  it('open refused: not_yours → 403, closed → 409', async () => {
    const h = await harness()
    h.consent.add(sampleRecord({ personId: 'person-bob' }))
    const jar = await h.login()
    const res = await h.request('/interaction?code=K7QD-2M9X', {}, jar)
    expect(res.status).toBe(403)
    expect(await res.text()).toContain('Not your request')
    h.consent.failures.set('open', new ConsentError('closed', 'Already decided.'))
    h.consent.add(sampleRecord({ id: 'req-2', code: 'Q7QD2M9X' }))
    const closed = await h.request('/interaction?code=Q7QD-2M9X', {}, jar)
    expect(closed.status).toBe(409)
    expect(await closed.text()).toContain('Already decided.')
  })
})

describe('GET /interaction/{id}: what the person sees', () => {
  it('needs a login', async () => {
    const h = await harness()
    h.consent.add(sampleRecord())
    const res = await h.request('/interaction/req-1')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/login?next=%2Finteraction%2Freq-1')
  })

  it('shows who asks, for whom, what, and the per-call details', async () => {
    const { body, res } = await openPage()
    expect(res.status).toBe(200)
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(body).toContain('An agent asks for access to Example Bank')
    const who = box(body, 'verified')
    expect(who).toContain(AGENT_SUB)
    expect(who).toContain('Example Agents')
    expect(who).toContain(AGENT_ISS)
    expect(who).toContain('On behalf of <strong>Alice Example</strong>')
    expect(who).toContain('title="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk">dBjftJeZ4CVP…</span>')
    const resource = box(body, 'resource')
    expect(resource).toContain('<strong>Example Bank</strong>')
    expect(resource).toContain('Your <strong>bank</strong> accounts.')
    expect(resource).toContain('checking-001')
    expect(resource).toContain('<span class="big">$9,000</span>')
    expect(resource).toMatch(/refundable<\/th><td>no<\/td>/)
    expect(resource).toContain('Send a wire transfer')
    expect(resource).toContain('Cannot be undone:</strong> A sent wire cannot be recalled')
    expect(resource).toMatch(/data-scope="payments.send" data-new="true"><code>payments.send<\/code><span class="tag new">new<\/span><br>Send payments from your account/)
    expect(resource).toMatch(/data-scope="accounts.read"><code>accounts.read<\/code><span class="tag old">already granted<\/span><br>See your balances/)
    const agent = box(body, 'agent')
    expect(agent).toContain('Said by the agent — not verified')
    expect(agent).toContain('I need to pay the <strong>invoice</strong> you asked about.')
    expect(agent).toContain('Platform: <strong>linux</strong>')
    expect(agent).toContain('Device: <strong>Laptop (CLI)</strong>')
    expect(agent).toContain('reported by the agent, not verified')
    // Decision form: remember choices (once by default) and both buttons; the ask form with 5 rounds.
    for (const v of ['once', 'day', 'month', 'always']) expect(body).toContain(`name="remember" value="${v}"`)
    expect(body).toContain('name="remember" value="once" checked')
    expect(hasDecisionButtons(body)).toBe(true)
    expect(body).toContain('5 of 5 questions left')
    expect(body).toContain('name="csrf"')
  })

  it('agent-asserted content only in the agent box, resource-asserted only in the resource box', async () => {
    const { body } = await openPage()
    const resource = box(body, 'resource')
    const agent = agentBoxes(body)
    for (const agentSaid of ['invoice', 'linux', 'Laptop (CLI)']) {
      expect(agent).toContain(agentSaid)
      expect(resource).not.toContain(agentSaid)
    }
    for (const resourceSaid of ['Send payments from your account', 'See your balances', '$9,000', 'Send a wire transfer', 'Your <strong>bank</strong> accounts.']) {
      expect(resource).toContain(resourceSaid)
      expect(agent).not.toContain(resourceSaid)
    }
    // And nothing of either outside its box.
    const outside = body.replace(/<(section|li) class="box (agent-box|resource-box)[\s\S]*?<\/\1>/g, '')
    for (const text of ['invoice', 'Laptop (CLI)', 'Send payments from your account', '$9,000']) expect(outside).not.toContain(text)
  })

  it('marks a new agent (no binding yet) and not a known one', async () => {
    const first = await openPage()
    expect(first.body).toContain('This agent has not acted for you before.')
    const h = await harness()
    h.consent.add(sampleRecord({ personId: 'person-alice', state: 'interacting' }))
    h.consent.bindings = [{ agentIss: AGENT_ISS, agentSub: AGENT_SUB, personId: 'person-alice', createdAt: T0 }]
    const jar = await h.login()
    const body = await (await h.request('/interaction/req-1', {}, jar)).text()
    expect(body).not.toContain('This agent has not acted for you before.')
  })

  it('a sub-agent names its parent', async () => {
    const { body } = await openPage({ view: sampleView({ agent: { iss: AGENT_ISS, sub: 'aauth:sub@agents.example', parentAgent: AGENT_SUB } }) })
    expect(box(body, 'verified')).toContain(`Sub-agent working for <strong class="mono">${AGENT_SUB}</strong>`)
  })

  it('all scopes new when newScopes is absent; no tags', async () => {
    const { body } = await openPage({ view: sampleView({ newScopes: undefined as unknown as string[] }) })
    expect(body).not.toContain('already granted')
    expect(body).not.toContain('class="tag new">new</span>')
  })

  it('a scope without a description is flagged; identity scopes are described by the PS', async () => {
    const { body } = await openPage({ view: sampleView({ scopes: ['mystery', 'email', 'constructor'], newScopes: ['mystery', 'email', 'constructor'] }) })
    const resource = box(body, 'resource')
    expect(resource).toMatch(/<code>mystery<\/code>[\s\S]*?The resource gives no description of this scope\./)
    expect(resource).toContain('Your email address <span class="muted">(described by Test PS)</span>')
    expect(resource).toMatch(/<code>constructor<\/code>[\s\S]*?The resource gives no description/)
  })

  it('person token request: "act as you" explained', async () => {
    const view = sampleView({ kind: 'person_token', scopes: [], newScopes: [], details: undefined as never, justification: undefined as never })
    const { body } = await openPage({ kind: 'person_token', view })
    expect(body).toContain('An agent asks to act as you at Example Bank')
    expect(body).toContain('this agent can act <strong>as you</strong> at this resource')
    expect(body).toContain('name="remember"')
  })

  it('permission request: action, description, parameters as a table, in the agent box', async () => {
    const view: ConsentView = {
      kind: 'permission',
      agent: { iss: AGENT_ISS, sub: AGENT_SUB },
      permission: { action: 'SendEmail', description: 'Send the **itinerary**', parameters: { to: 'mom@example.com', subject: 'Trip', attachments: [{ name: 'a.pdf' }], urgent: true } },
    }
    const { body } = await openPage({ kind: 'permission', view })
    expect(body).toContain('An agent asks for permission to take an action')
    expect(body).toContain('No resource describes this request')
    expect(box(body, 'resource')).toBe('')
    const agent = box(body, 'agent')
    expect(agent).toContain('<code>SendEmail</code>')
    expect(agent).toContain('Send the <strong>itinerary</strong>')
    expect(agent).toMatch(/<th scope="row">to<\/th><td><span class="pre">mom@example.com<\/span><\/td>/)
    expect(agent).toMatch(/<th scope="row">urgent<\/th><td>yes<\/td>/)
    expect(agent).toContain('&quot;name&quot;: &quot;a.pdf&quot;')
    expect(hasDecisionButtons(body)).toBe(true)
  })

  it('question request: the question and an answer box', async () => {
    const view: ConsentView = { kind: 'question', agent: { iss: AGENT_ISS, sub: AGENT_SUB }, question: 'Refundable **or** not?' }
    const { body } = await openPage({ kind: 'question', view })
    expect(box(body, 'agent')).toContain('Refundable <strong>or</strong> not?')
    expect(body).toContain('<textarea id="answer" name="answer"')
    expect(body).toContain('value="answer"')
    expect(body).toContain('value="deny" formnovalidate')
    expect(body).not.toContain('value="approve"')
    expect(body).not.toContain('name="question"')
  })

  it('relay request: a link to the https URL with the code, and the code shown', async () => {
    const view: ConsentView = {
      kind: 'relay',
      agent: { iss: AGENT_ISS, sub: AGENT_SUB },
      relay: { type: 'payment', url: 'https://booking.example/confirm', code: 'X7K2-M9P4', description: 'Confirm the **booking**' },
    }
    const { body } = await openPage({ kind: 'relay', view })
    expect(body).toContain('An agent asks you to approve a payment')
    const agent = box(body, 'agent')
    expect(agent).toContain('<a class="button secondary" href="https://booking.example/confirm?code=X7K2-M9P4" rel="noopener noreferrer" target="_blank">Open booking.example</a>')
    expect(agent).toContain('<span class="big mono">X7K2-M9P4</span>')
    expect(agent).toContain('Confirm the <strong>booking</strong>')
  })

  it('relay request with a non-https URL: shown, not linked', async () => {
    for (const url of ['javascript:alert(1)', 'http://booking.example/x', 'data:text/html,hi']) {
      const view: ConsentView = { kind: 'relay', agent: { iss: AGENT_ISS, sub: AGENT_SUB }, relay: { type: 'interaction', url, code: 'X7K2-M9P4' } }
      const { body } = await openPage({ kind: 'relay', view })
      expect(body).not.toMatch(/<a [^>]*href="(?!\/)/)
      expect(body).toContain('is not a secure https link')
    }
  })

  it('a malformed id: 404 without asking the service', async () => {
    const h = await harness()
    const jar = await h.login()
    h.consent.calls.length = 0
    const res = await h.request('/interaction/' + encodeURIComponent('a b<'), {}, jar)
    expect(res.status).toBe(404)
    expect(h.consent.calls).toEqual([])
  })
})

describe('page states', () => {
  const terminal: readonly [PendingState, string][] = [
    ['granted', 'Approved. You can close this page.'],
    ['denied', 'Denied.'],
    ['cancelled', 'Withdrawn by the agent.'],
    ['expired', 'Expired'],
    ['abandoned', 'Abandoned'],
    ['revoked', 'Ended'],
    ['failed', 'Something went wrong'],
  ]
  for (const [state, text] of terminal) {
    it(`${state}: "${text}", no buttons, no forms`, async () => {
      const { body, res } = await openPage({ state })
      expect(res.status).toBe(200)
      expect(body).toContain(`data-state="${state}"><p>${text}</p>`)
      expect(hasDecisionButtons(body)).toBe(false)
      expect(body).not.toContain('name="question"')
      expect(body).not.toContain('name="remember"')
      expect(body.match(/<form /g)?.length).toBe(1) // only the log-out form
      expect(body).not.toContain('has not acted for you before')
    })
  }

  for (const state of ['pending', 'interacting'] as const) {
    it(`${state}: the decision form`, async () => {
      const { body } = await openPage({ state })
      expect(hasDecisionButtons(body)).toBe(true)
      expect(body).not.toContain('data-state=')
    })
  }

  it('clarification: waiting for the agent, no new question, decision still possible', async () => {
    const { body } = await openPage({ state: 'clarification', chat: [{ from: 'person', text: 'Why **9000**?', at: T0 }] })
    expect(body).toContain('data-state="waiting"')
    expect(body).toContain('Waiting for the agent to answer your question.')
    expect(body).not.toContain('name="question"')
    expect(hasDecisionButtons(body)).toBe(true)
    expect(body).toContain('Why <strong>9000</strong>?')
  })

  it('an answered question: transcript (answers in agent boxes) and the remaining rounds', async () => {
    const { body } = await openPage({
      chat: [
        { from: 'person', text: 'Why?', at: T0 },
        { from: 'agent', text: 'Because **you** asked.', at: T0 + 1000 },
        { from: 'person', text: 'Sure?', at: T0 + 2000 },
        { from: 'agent', text: 'Yes.', at: T0 + 3000 },
      ],
    })
    expect(agentBoxes(body)).toContain('Because <strong>you</strong> asked.')
    expect(agentBoxes(body)).not.toContain('Why?')
    expect(body).toContain('The agent answered — not verified')
    expect(body).toContain('3 of 5 questions left')
    expect(body).not.toContain('data-state="waiting"')
  })

  it('after five questions: no more asking', async () => {
    const chat = Array.from({ length: 10 }, (_, i) => ({ from: i % 2 === 0 ? ('person' as const) : ('agent' as const), text: `t${i}`, at: T0 + i }))
    const { body } = await openPage({ chat })
    expect(body).not.toContain('name="question"')
    expect(body).toContain('You have asked the agent 5 questions, the most allowed.')
    expect(hasDecisionButtons(body)).toBe(true)
  })

  it('a question request answered shows "Answer sent."', async () => {
    const view: ConsentView = { kind: 'question', agent: { iss: AGENT_ISS, sub: AGENT_SUB }, question: 'Q?' }
    const { body } = await openPage({ kind: 'question', view, state: 'granted' })
    expect(body).toContain('Answer sent. You can close this page.')
  })
})

describe('POST /interaction/{id}', () => {
  const act = async (fields: Record<string, string>, rec: Partial<PendingRecord> = {}) => {
    const { h, jar, body } = await openPage(rec)
    h.consent.calls.length = 0
    const res = await h.post('/interaction/req-1', { csrf: h.csrfOf(body), ...fields }, jar)
    return { h, jar, res }
  }

  it('approve with remember=month, then the page says Approved', async () => {
    const { h, jar, res } = await act({ action: 'approve', remember: 'month' })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/interaction/req-1')
    expect(h.consent.mutations).toEqual([{ method: 'decide', args: ['req-1', 'person-alice', { approve: true, remember: 'month' }] }])
    const page = await (await h.request('/interaction/req-1', {}, jar)).text()
    expect(page).toContain('Approved. You can close this page.')
    expect(hasDecisionButtons(page)).toBe(false)
  })

  it('approve without remember', async () => {
    const { h } = await act({ action: 'approve' })
    expect(h.consent.mutations[0]!.args[2]).toEqual({ approve: true })
  })

  it('approve with an unknown remember value: 400, nothing decided', async () => {
    const { h, res } = await act({ action: 'approve', remember: 'forever-and-ever' })
    expect(res.status).toBe(400)
    expect(h.consent.mutations).toEqual([])
  })

  it('deny, then the page says Denied', async () => {
    const { h, jar, res } = await act({ action: 'deny', remember: 'always' })
    expect(res.status).toBe(303)
    expect(h.consent.mutations).toEqual([{ method: 'decide', args: ['req-1', 'person-alice', { approve: false }] }])
    expect(await (await h.request('/interaction/req-1', {}, jar)).text()).toContain('Denied.')
  })

  it('ask: the question (trimmed) goes to the service, the page then waits', async () => {
    const { h, jar, res } = await act({ action: 'ask', question: '  Why **9000**?  ' })
    expect(res.status).toBe(303)
    expect(h.consent.mutations).toEqual([{ method: 'ask', args: ['req-1', 'person-alice', 'Why **9000**?'] }])
    const page = await (await h.request('/interaction/req-1', {}, jar)).text()
    expect(page).toContain('Waiting for the agent')
    h.consent.agentReplies('req-1', 'It is the invoice total.')
    const answered = await (await h.request('/interaction/req-1', {}, jar)).text()
    expect(agentBoxes(answered)).toContain('It is the invoice total.')
    expect(answered).toContain('4 of 5 questions left')
  })

  it('ask: empty or too long → 400, nothing asked', async () => {
    for (const question of ['', '   ', 'x'.repeat(2001)]) {
      const { h, res } = await act({ action: 'ask', question })
      expect(res.status).toBe(400)
      expect(h.consent.mutations).toEqual([])
    }
  })

  it('answer: the answer goes to the service', async () => {
    const view: ConsentView = { kind: 'question', agent: { iss: AGENT_ISS, sub: AGENT_SUB }, question: 'Q?' }
    const { h, res } = await act({ action: 'answer', answer: 'Yes, the refundable one.' }, { kind: 'question', view })
    expect(res.status).toBe(303)
    expect(h.consent.mutations).toEqual([{ method: 'answer', args: ['req-1', 'person-alice', 'Yes, the refundable one.'] }])
  })

  it('an unknown or missing action: 400', async () => {
    for (const action of ['launch', '']) {
      const { h, res } = await act({ action })
      expect(res.status).toBe(400)
      expect(h.consent.mutations).toEqual([])
    }
  })

  const errors: readonly [ConsentErrorCode, number, string][] = [
    ['not_found', 404, 'Request not found'],
    ['not_yours', 403, 'Not your request'],
    ['closed', 409, 'Request already closed'],
    ['clarification_limit', 429, 'No more questions'],
    ['bad_input', 400, 'That did not work'],
  ]
  for (const [code, status, title] of errors) {
    it(`ConsentError ${code} → ${status} "${title}"`, async () => {
      const { h, jar, body } = await openPage()
      h.consent.failures.set('decide', new ConsentError(code, `service says <${code}>`))
      const res = await h.post('/interaction/req-1', { csrf: h.csrfOf(body), action: 'approve' }, jar)
      expect(res.status).toBe(status)
      const page = await res.text()
      expect(page).toContain(`<h1>${title}</h1>`)
      expect(page).toContain(`service says &lt;${code}&gt;`)
      expect(page).toContain('href="/interaction/req-1"')
      // And on GET.
      h.consent.failures.set('get', new ConsentError(code, 'x'))
      expect((await h.request('/interaction/req-1', {}, jar)).status).toBe(status)
    })
  }

  it("the clarification limit from the service", async () => {
    const chat = Array.from({ length: 10 }, (_, i) => ({ from: i % 2 === 0 ? ('person' as const) : ('agent' as const), text: `t${i}`, at: T0 + i }))
    const { res } = await act({ action: 'ask', question: 'One more?' }, { chat })
    expect(res.status).toBe(429)
  })

  it("another person's request: 403", async () => {
    const { h, jar, body } = await openPage()
    h.consent.add(sampleRecord({ id: 'req-bob', personId: 'person-bob', state: 'interacting' }))
    expect((await h.request('/interaction/req-bob', {}, jar)).status).toBe(403)
    const res = await h.post('/interaction/req-bob', { csrf: h.csrfOf(body), action: 'approve' }, jar)
    expect(res.status).toBe(403)
    expect(h.consent.records.get('req-bob')!.state).toBe('interacting')
  })

  it('a decided request cannot be decided again: 409', async () => {
    const { h, jar, body } = await openPage()
    const csrf = h.csrfOf(body)
    expect((await h.post('/interaction/req-1', { csrf, action: 'approve' }, jar)).status).toBe(303)
    expect((await h.post('/interaction/req-1', { csrf, action: 'deny' }, jar)).status).toBe(409)
    expect(h.consent.records.get('req-1')!.state).toBe('granted')
  })
})

describe('XSS payloads in every untrusted field come out escaped', () => {
  const P = (tag: string): string => `"><script>window.__xss=1</script><img src=x onerror="window.__xss=1" data-f="${tag}">'<svg onload=alert(1)>`

  function assertInert(body: string): void {
    expect(body).not.toMatch(/<script/i)
    expect(body).not.toMatch(/<svg/i)
    expect(body).not.toMatch(/<img src=x/i)
    // No tag anywhere carries an event handler or a javascript: URL.
    // (Attribute values are double-quoted with `"` escaped inside, so blanking them leaves the
    // attribute names.)
    for (const tag of body.match(/<[a-zA-Z][^>]*>/g) ?? []) {
      expect(tag.replace(/"[^"]*"/g, '""')).not.toMatch(/\son[a-z]+\s*=/i)
      expect(tag).not.toMatch(/(href|src)\s*=\s*"?\s*javascript:/i)
    }
    expect(body).toContain('&lt;script&gt;window.__xss=1&lt;/script&gt;')
  }

  it('auth token request: agent id, provider, platform, device, justification, mission, resource fields, scopes, details', async () => {
    const view = sampleView({
      agent: { iss: P('iss'), sub: P('sub'), parentAgent: P('parent'), providerName: P('provider'), providerLogoUri: 'javascript:alert(1)', platform: P('platform'), device: P('device') },
      resource: { id: P('rid'), name: P('rname'), description: P('rdesc'), logoUri: 'https://x" onerror="alert(1)', scopeDescriptions: { [P('scope')]: P('scopedesc') }, accessMode: P('mode') },
      scopes: [P('scope')],
      newScopes: [P('scope')],
      account: P('account'),
      missionS256: P('mission'),
      justification: P('justification') + '\n\n[click](javascript:alert(1))',
      details: { summary: P('summary'), amount: 9000, currency: P('cur'), [P('key')]: P('value'), detail: P('detail') },
    })
    const { body } = await openPage({ view, chat: [{ from: 'agent', text: P('chat'), at: T0 }], code: 'K7QD2M9X' })
    assertInert(body)
    expect(body).toContain('&lt;script&gt;')
    expect(body).not.toContain('href="javascript:')
    expect(body).not.toContain('src="javascript:')
  })

  it('permission request: action, description, parameters', async () => {
    const view: ConsentView = {
      kind: 'permission',
      agent: { iss: AGENT_ISS, sub: P('sub') },
      permission: { action: P('action'), description: P('pdesc'), parameters: { [P('pkey')]: P('pval'), nested: { x: P('nested') } } },
      missionS256: P('mission'),
    }
    const { body } = await openPage({ kind: 'permission', view })
    assertInert(body)
  })

  it('question and relay requests', async () => {
    const q: ConsentView = { kind: 'question', agent: { iss: AGENT_ISS, sub: AGENT_SUB }, question: P('question') }
    assertInert((await openPage({ kind: 'question', view: q })).body)
    const r: ConsentView = { kind: 'relay', agent: { iss: AGENT_ISS, sub: AGENT_SUB }, relay: { type: 'interaction', url: `https://ok.example/a"><script>window.__xss=1</script>`, code: P('code'), description: P('rdesc') } }
    const body = (await openPage({ kind: 'relay', view: r })).body
    assertInert(body)
    expect(body).toContain('href="https://ok.example/a%22%3E%3Cscript%3Ewindow.__xss=1%3C/script%3E?code=')
  })

  it('the error page escapes the service message', async () => {
    const { h, jar, body } = await openPage()
    h.consent.failures.set('decide', new ConsentError('bad_input', P('message')))
    const res = await h.post('/interaction/req-1', { csrf: h.csrfOf(body), action: 'approve' }, jar)
    assertInert(await res.text())
  })

  it('the code form escapes what was typed', async () => {
    const h = await harness()
    const jar = await h.login()
    const res = await h.request('/interaction?code=' + encodeURIComponent('"><script>window.__xss=1</script>'), {}, jar)
    const body = await res.text()
    expect(body).not.toMatch(/<script/i)
  })
})
