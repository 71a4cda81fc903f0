/**
 * Missions on the person's pages, against a real Person Server over loopback HTTP: the consent
 * page of a mission proposal (agent-asserted Markdown escaped, the person's edits: description,
 * tools, resources, expiry), updates and completions showing the whole mission (PS-CON-06), the
 * missions dashboard with the blob as stored and the log, the JSON view, and revocation through a
 * confirmation page — every POST CSRF-protected.
 */
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll } from '../../helpers/aauth-servers.js'
import { startRealPersonServer, type RunningPs } from '../../helpers/person-server.js'
import { loopIssuer, makeAgent, send, type Agent, type LoopIssuer } from '../../resource/resource-fixture.js'
import { Jar, PASSWORD } from './fakes.js'

afterAll(closeAll)

const digest = (bytes: string | Uint8Array): string => createHash('sha256').update(bytes).digest('base64url')
const XSS = '<script>window.__xss=1</script><img src=x onerror=alert(1)>'
const FLIGHTS = 'https://flights.example'
const HOTELS = 'https://hotels.example'

/** A person's browser: cookies kept, redirects not followed. */
class Browser {
  readonly jar = new Jar()
  readonly origin: string
  constructor(origin: string) {
    this.origin = origin
  }
  async get(path: string): Promise<Response> {
    return this.jar.take(await fetch(new URL(path, this.origin), { redirect: 'manual', headers: { cookie: this.jar.header() } }))
  }
  async post(path: string, form: Record<string, string>): Promise<Response> {
    return this.jar.take(
      await fetch(new URL(path, this.origin), { method: 'POST', redirect: 'manual', headers: { cookie: this.jar.header(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() }),
    )
  }
  static csrfOf(page: string): string {
    return /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? ''
  }
  async login(username: string): Promise<void> {
    const csrf = Browser.csrfOf(await (await this.get('/login')).text())
    const res = await this.post('/login', { username, password: PASSWORD, csrf, next: '/account' })
    expect(res.status).toBe(303)
  }
}

/** The interaction code of a `202`. */
function codeOf(res: Response): string {
  return /code="([^"]+)"/.exec(res.headers.get('aauth-requirement') ?? '')![1]!
}

describe('mission pages', () => {
  let ps: RunningPs
  let ap: LoopIssuer
  let agent: Agent
  let alice: string
  let browser: Browser
  let s256 = ''

  beforeAll(async () => {
    ap = await loopIssuer('aauth-agent.json')
    ps = await startRealPersonServer()
    alice = await ps.addPerson('alice', PASSWORD)
    await ps.addPerson('bob', PASSWORD)
    agent = await makeAgent(ap, { local: 'planner', ps: ps.issuer })
    browser = new Browser(ps.issuer)
    await browser.login('alice')
  })

  /** Proposes, follows the code as Alice, and returns the consent page. */
  async function proposal(json: Record<string, unknown>): Promise<{ location: string; page: string; path: string }> {
    const r = await send(`${ps.issuer}/mission`, agent, { json })
    expect(r.res.status).toBe(202)
    const found = await browser.get(`/interaction?code=${codeOf(r.res)}`)
    expect(found.status).toBe(303)
    const path = found.headers.get('location')!
    const page = await browser.get(path)
    expect(page.status).toBe(200)
    return { location: r.res.headers.get('location')!, page: await page.text(), path }
  }

  it('PS-CON-06 a proposal page shows the agent’s description, tools and resources escaped, labelled as the agent’s, with the person’s choices', async () => {
    const { page, path } = await proposal({
      description: `# Trip ${XSS}\n\n**Book** flights`,
      tools: [{ name: `Tool${XSS}`, description: XSS }, { name: 'WebSearch', description: 'Search the web' }],
      resources: [FLIGHTS, HOTELS],
    })
    expect(page).toContain('An agent proposes a mission')
    expect(page).not.toContain('<script>')
    expect(page).not.toContain('<img src=x')
    expect(page).toContain('&lt;script&gt;window.__xss=1&lt;/script&gt;')
    expect(page).toContain('<strong>Book</strong>')
    expect(page).toMatch(/data-source="agent" data-mission-action="propose"[\s\S]*Said by the agent — not verified/)
    expect(page).toContain('flights.example')
    expect(page).toContain('<textarea id="mission_description" name="mission_description"')
    expect(page).toContain('name="mission_tool_0" value="Tool&lt;script&gt;')
    expect(page).toContain('name="mission_resource_1" value="https://hotels.example" checked')
    for (const v of ['none', 'day', 'month']) expect(page).toContain(`name="mission_expiry" value="${v}"`)
    // Withdrawn: nothing else to do with it here.
    const id = path.split('/').pop()!
    await ps.ps.consent.decide(id, alice, { approve: false })
  })

  it('CSRF: an approval without the session’s token is refused and nothing is approved', async () => {
    const { page, path, location } = await proposal({ description: 'Plan a dinner' })
    const seen = /name="seen" value="(\d+)"/.exec(page)![1]!
    const before = (await ps.store.listMissions(alice)).length
    const res = await browser.post(path, { action: 'approve', seen, mission_form: '1', mission_description: 'Plan a dinner', mission_expiry: 'none' })
    expect(res.status).toBe(403)
    expect((await ps.store.listMissions(alice)).length).toBe(before)
    const poll = await send(location, agent)
    expect(poll.res.status).toBe(202)
  })

  it('MIS-02 MIS-04 the person edits the description, drops a tool and a resource, picks 30 days: the blob says so', async () => {
    const { page, path, location } = await proposal({
      description: 'Plan the trip',
      tools: [{ name: 'WebSearch', description: 'Search the web' }, { name: 'DeleteFiles', description: 'Delete files' }],
      resources: [FLIGHTS, HOTELS],
    })
    const res = await browser.post(path, {
      csrf: Browser.csrfOf(page),
      action: 'approve',
      seen: /name="seen" value="(\d+)"/.exec(page)![1]!,
      mission_form: '1',
      mission_description: 'Plan the trip\r\n\r\nFlights only.',
      mission_tool_0: 'WebSearch',
      mission_resource_0: FLIGHTS,
      mission_expiry: 'month',
    })
    expect(res.status).toBe(303)
    const poll = await send(location, agent)
    expect(poll.res.status).toBe(200)
    const body = (await poll.res.json()) as { s256: string; mission: string; person_tokens: Record<string, string> }
    const bytes = Buffer.from(body.mission, 'base64url')
    expect(body.s256).toBe(digest(bytes))
    const blob = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
    expect(blob).toMatchObject({ description: 'Plan the trip\n\nFlights only.', approved_tools: [{ name: 'WebSearch', description: 'Search the web' }], approved_resources: [FLIGHTS] })
    expect(Date.parse(blob['expires_at'] as string) - Date.parse(blob['approved_at'] as string)).toBe(30 * 86_400_000)
    expect(Object.keys(body.person_tokens)).toEqual([FLIGHTS])
    s256 = body.s256
  })

  it('PS-CON-06 MIS-09 a token request, an update and a completion under the mission show the mission as approved plus its updates', async () => {
    // An accepted update first (accepted at once by default).
    expect((await send(`${ps.issuer}/mission/${s256}`, agent, { json: { action: 'update', description: `Hotel too ${XSS}` } })).res.status).toBe(200)
    const r = await send(`${ps.issuer}/person`, agent, { json: { resource: HOTELS, mission_s256: s256, capabilities: ['interaction'] } })
    expect(r.res.status).toBe(202)
    const found = await browser.get(`/interaction?code=${codeOf(r.res)}`)
    const page = await (await browser.get(found.headers.get('location')!)).text()
    expect(page).toMatch(/data-source="mission"[\s\S]*The mission this is part of[\s\S]*Flights only\.[\s\S]*Updates accepted since[\s\S]*Hotel too &lt;script&gt;/)
    expect(page).not.toContain('<script>')

    const c = await send(`${ps.issuer}/mission/${s256}`, agent, { json: { action: 'completion', summary: `Booked. ${XSS}` } })
    expect(c.res.status).toBe(202)
    const cf = await browser.get(`/interaction?code=${codeOf(c.res)}`)
    const cpage = await (await browser.get(cf.headers.get('location')!)).text()
    expect(cpage).toContain('An agent says its mission is complete')
    expect(cpage).toMatch(/What the agent says it accomplished[\s\S]*Booked\. &lt;script&gt;/)
    expect(cpage).toMatch(/data-source="mission"[\s\S]*Flights only\./)
    expect(cpage).not.toContain('name="mission_form"')
    await ps.ps.consent.decide(cf.headers.get('location')!.split('/').pop()!, alice, { approve: false })
    expect((await ps.store.getMission(s256))!.status).toBe('active')
  })

  it('MIS-LOG-01 /account/missions lists missions; a mission page shows the stored blob, updates and the log; .json too', async () => {
    const list = await (await browser.get('/account/missions')).text()
    expect(list).toMatch(new RegExp(`data-mission="${s256}"[\\s\\S]*Plan the trip[\\s\\S]*data-status="active"`))
    const res = await browser.get(`/account/missions/${s256}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
    const page = await res.text()
    const stored = (await ps.store.getMission(s256))!.blob
    expect(page).toContain(stored.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'))
    expect(page).toMatch(/Updates accepted since[\s\S]*Hotel too &lt;script&gt;/)
    expect(page).toMatch(/Mission log[\s\S]*created[\s\S]*update/)
    expect(page).not.toContain('<script>')
    const json = (await (await browser.get(`/account/missions/${s256}.json`)).json()) as Record<string, unknown>
    expect(digest(Buffer.from(json['mission'] as string, 'base64url'))).toBe(s256)
    expect(json).toMatchObject({ s256, status: 'active', updates: [{ description: `Hotel too ${XSS}` }] })
    expect((json['log'] as { type: string }[]).map((e) => e.type)).toEqual(expect.arrayContaining(['created', 'update', 'mission.approved']))
  })

  it('the mission pages need the session, and show another person’s mission to nobody', async () => {
    const anon = new Browser(ps.issuer)
    const r = await anon.get(`/account/missions/${s256}.json`)
    expect(r.status).toBe(303)
    expect(r.headers.get('location')).toMatch(/^\/login\?next=/)
    const bob = new Browser(ps.issuer)
    await bob.login('bob')
    expect((await bob.get(`/account/missions/${s256}`)).status).toBe(404)
    expect((await bob.get(`/account/missions/${s256}.json`)).status).toBe(404)
    expect(await (await bob.get('/account/missions')).text()).not.toContain(s256)
    const page = await (await bob.get('/account')).text()
    const revoke = await bob.post(`/account/missions/${s256}/revoke`, { csrf: Browser.csrfOf(page), confirm: 'yes' })
    expect(revoke.status).toBe(404)
    expect((await ps.store.getMission(s256))!.status).toBe('active')
  })

  it('REV-12 revoking from the page: a confirmation first, CSRF required, then terminated (revoked) with the report', async () => {
    const page = await (await browser.get(`/account/missions/${s256}`)).text()
    expect(page).toContain(`action="/account/missions/${s256}/revoke"`)
    const csrf = Browser.csrfOf(page)
    // No CSRF token: refused, nothing done.
    expect((await browser.post(`/account/missions/${s256}/revoke`, { confirm: 'yes' })).status).toBe(403)
    expect((await ps.store.getMission(s256))!.status).toBe('active')
    // The first POST only asks.
    const confirm = await browser.post(`/account/missions/${s256}/revoke`, { csrf })
    expect(confirm.status).toBe(200)
    const confirmPage = await confirm.text()
    expect(confirmPage).toContain('Revoke this mission?')
    expect(confirmPage).toContain('name="confirm" value="yes"')
    expect((await ps.store.getMission(s256))!.status).toBe('active')
    const done = await browser.post(`/account/missions/${s256}/revoke`, { csrf, confirm: 'yes' })
    expect(done.status).toBe(200)
    expect(await done.text()).toContain('Mission revoked')
    expect(await ps.store.getMission(s256)).toMatchObject({ status: 'terminated', terminationReason: 'revoked' })
    const list = await (await browser.get('/account/missions')).text()
    expect(list).toMatch(new RegExp(`data-mission="${s256}"[\\s\\S]*data-status="terminated"[\\s\\S]*data-reason="revoked"`))
    const again = await browser.post(`/account/missions/${s256}/revoke`, { csrf, confirm: 'yes' })
    expect(again.status).toBe(409)
  })
})
