/**
 * The whole three-party flow with a person at a real browser: our agent client → a resource behind
 * our Hono middleware → this Person Server → the consent page in real Chromium (playwright-core,
 * Debian's /usr/bin/chromium) → token → 200. The person logs in, sees who asks, for which
 * resource and scope, with the agent's justification shown inert, and approves. A screenshot of
 * the consent page is saved to test-artifacts/.
 */
import { mkdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import { useBrowser } from '../helpers/chromium.js'
import { psWorld } from '../helpers/person-server.js'

const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> I need to **book** your flight'

const browser = useBrowser()

/** Logs in if asked, then decides on the consent page `userUrl` leads to. */
async function consentInBrowser(page: Page, userUrl: string, shot?: string): Promise<string> {
  await page.goto(userUrl)
  if (new URL(page.url()).pathname === '/login') {
    await page.fill('input[name="username"]', 'alice')
    await page.fill('input[name="password"]', 'correct horse battery staple')
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type="submit"]')])
  }
  expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[A-Za-z0-9_-]+$/)
  const text = await page.innerText('body')
  if (shot !== undefined) {
    mkdirSync('test-artifacts', { recursive: true })
    await page.screenshot({ path: shot, fullPage: true })
  }
  await page.check('input[name="remember"][value="always"]')
  await Promise.all([page.waitForLoadState('load'), page.click('button[name="action"][value="approve"]')])
  await page.waitForSelector('text=Approved')
  return text
}

describe('three-party flow in Chromium', () => {
  it('PS-CON-03 / PS-CON-05 / PS-TOK-08 agent → resource → PS → consent page (Chromium) → auth token → 200', async () => {
    const context = await browser().newContext({ viewport: { width: 390, height: 844 } })
    const page = await context.newPage()
    const dialogs: string[] = []
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    const seen: string[] = []
    const w = await psWorld(
      { '/bookings': { access: 'auth', scope: 'bookings:write' } },
      {
        approve: false,
        client: {
          justification: XSS,
          onInteraction: async ({ userUrl }) => {
            seen.push(await consentInBrowser(page, userUrl, seen.length === 1 ? 'test-artifacts/ps-consent-page.png' : undefined))
          },
        },
      },
    )
    const r = await w.client.fetch(`${w.app.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fare: 'ECO-SYD', amount: 320 }) })
    expect(r.status).toBe(200)
    expect(await r.json()).toMatchObject({ mode: 'auth', scopes: ['bookings:write'] })
    // Two decisions: the first contact (person token) and the scope (auth token).
    expect(seen).toHaveLength(2)
    const scopePage = seen[1]!
    expect(scopePage).toContain(w.agentId())
    expect(scopePage).toContain('Booking API')
    expect(scopePage).toContain('bookings:write')
    expect(scopePage).toContain('Make bookings')
    // The justification is shown as text, never run.
    expect(scopePage).toContain('I need to')
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined()
    expect(dialogs).toEqual([])
    // The decision is durable and audited.
    const types = (await w.ps.store.queryAudit({ personId: w.alice })).map((e) => e.type)
    expect(types).toEqual(expect.arrayContaining(['request.opened', 'request.approved', 'auth_token.issued']))
    // The dashboard lists the agent and the grants.
    await page.goto(`${w.ps.issuer}/account`)
    const dash = await page.innerText('body')
    expect(dash).toContain(w.agentId())
    expect(dash).toContain('bookings:write')

    // REV: Alice revokes the agent from her dashboard (one click, then a confirmation). The PS
    // revokes the agent's tokens at the resource, which refuses the held auth token at once.
    await Promise.all([page.waitForURL(/\/account\/agents\/revoke/), page.click('form[action="/account/agents/revoke"] button')])
    expect(await page.innerText('body')).toContain('Revoke this agent?')
    await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("Yes, revoke it")')])
    const report = await page.innerText('body')
    expect(report).toContain(w.app.origin.replace('http://', ''))
    const binding = await w.ps.store.getBinding(w.apIssuer, w.agentId())
    expect(binding?.revokedAt).toBeDefined()
    const outcomes = (await w.ps.store.queryAudit({ personId: w.alice })).filter((e) => e.type === 'agent.revoked')
    expect(outcomes).toHaveLength(1)
    const mark = w.steps.length
    const asked = seen.length
    const after = await w.client.fetch(`${w.app.origin}/bookings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    // The resource refused the revoked auth token (401); the agent restarted from a person token,
    // and the PS, no longer knowing the agent, asked the person again (who approved in the page).
    const refusedAt = w.steps.slice(mark).find((st) => st.type === 'response' && st.status === 401 && st.url.startsWith(w.app.origin))
    expect(refusedAt).toMatchObject({ signatureError: 'error=revoked_jwt', requirement: 'requirement=person-token' })
    expect(seen.length).toBeGreaterThan(asked)
    expect(after.status).toBe(200)
    await context.close()
  }, 60_000)
})
