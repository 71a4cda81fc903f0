/**
 * The consent page and the dashboard in a real browser (Debian Chromium through playwright-core),
 * served over loopback by @hono/node-server with the fake ConsentService: log in from an
 * interaction code, read the request, check an XSS payload in the justification did not run, ask
 * the agent a question, approve with "remember for 30 days", revoke a grant through its
 * confirmation page; the pages fit a 375 px wide phone screen; and approving works with
 * JavaScript disabled.
 */
import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { serve, type ServerType } from '@hono/node-server'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AGENT_SUB, harness, PASSWORD, sampleRecord, sampleView, T0, type Harness } from './fakes.js'

const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='
const PAYLOAD = 'Pay the invoice.\n\n<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2; alert(1)">"><svg onload="window.__xss = 3">'

let h: Harness
let server: ServerType
let origin: string
let browser: Browser
const contexts: BrowserContext[] = []

async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<{ page: Page; dialogs: string[] }> {
  const context = await browser.newContext({ viewport: { width: 375, height: 667 }, ...options })
  contexts.push(context)
  const page = await context.newPage()
  const dialogs: string[] = []
  page.on('dialog', (d) => {
    dialogs.push(d.message())
    void d.dismiss()
  })
  return { page, dialogs }
}

async function logIn(page: Page, path: string): Promise<void> {
  await page.goto(origin + path)
  expect(new URL(page.url()).pathname).toBe('/login')
  await page.fill('#username', 'alice')
  await page.fill('#password', PASSWORD)
  await page.getByRole('button', { name: 'Log in' }).click()
}

async function noHorizontalScroll(page: Page): Promise<void> {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }))
  expect(scrollWidth).toBeLessThanOrEqual(innerWidth)
}

describe('consent page in Chromium', { timeout: 30_000 }, () => {
  beforeAll(async () => {
    h = await harness({ now: Date.now })
    h.consent.add(
      sampleRecord({
        id: 'req-1',
        code: 'K7QD2M9X',
        createdAt: Date.now(),
        expiresAt: Date.now() + 600_000,
        view: sampleView({
          justification: PAYLOAD,
          agent: { iss: 'https://agents.example', sub: AGENT_SUB, providerName: 'Example Agents', providerLogoUri: PNG, platform: 'linux', device: 'Laptop (CLI)' },
          resource: {
            id: 'https://bank.example',
            name: 'Example Bank',
            description: 'Your **bank** accounts, with a very long unbroken identifier: ' + 'x'.repeat(200),
            logoUri: PNG,
            scopeDescriptions: { 'payments.send': 'Send payments from your account', 'accounts.read': 'See your balances' },
          },
        }),
      }),
    )
    h.consent.add(sampleRecord({ id: 'req-2', code: 'Q7QD2M9X', createdAt: Date.now(), expiresAt: Date.now() + 600_000 }))
    h.consent.grantList = [
      { id: 'g-files', personId: 'person-alice', agentIss: 'https://agents.example', agentSub: AGENT_SUB, resource: 'https://files.example', scope: 'files.read', createdAt: T0 },
    ]
    h.consent.bindings = [{ agentIss: 'https://agents.example', agentSub: AGENT_SUB, personId: 'person-alice', providerName: 'Example Agents', platform: 'linux', createdAt: T0 }]
    await new Promise<void>((ready) => {
      server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, () => ready())
    })
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
  })

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined)
    await browser?.close()
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()))
  })

  it('log in from the code, read the request, ask, approve with remember=month, revoke a grant', async () => {
    const { page, dialogs } = await newPage()
    await logIn(page, '/interaction?code=k7qd-2m9x')
    await page.waitForURL(`${origin}/interaction/req-1`)

    // Who, for whom, what.
    const who = page.locator('section.verified')
    await expect(who.textContent()).resolves.toContain(AGENT_SUB)
    await expect(who.textContent()).resolves.toContain('Example Agents')
    await expect(who.textContent()).resolves.toContain('On behalf of Alice Example')
    const resource = page.locator('section.resource-box')
    const resourceText = (await resource.textContent()) ?? ''
    for (const text of ['Example Bank', 'payments.send', 'Send payments from your account', 'accounts.read', 'already granted', '$9,000', 'refundable', 'Send a wire transfer']) {
      expect(resourceText).toContain(text)
    }
    expect(await resource.locator('.details .big').textContent()).toBe('$9,000')
    const agent = page.locator('section.agent-box')
    const agentText = (await agent.textContent()) ?? ''
    expect(agentText).toContain('Said by the agent — not verified')
    expect(agentText).toContain('Pay the invoice.')
    // The payload is shown as text, and nothing of it ran.
    expect(agentText).toContain('<script>window.__xss = 1</script>')
    expect(agentText).toContain('<img src=x onerror=')
    expect(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss)).toBeUndefined()
    expect(await page.evaluate(() => document.querySelectorAll('script, svg, img[src="x"]').length)).toBe(0)
    expect(await page.locator('img.logo').count()).toBe(2)
    expect(dialogs).toEqual([])

    // Fits a phone.
    await noHorizontalScroll(page)

    // Ask the agent.
    await page.fill('#question', 'Why **9,000**?')
    await page.getByRole('button', { name: 'Ask the agent' }).click()
    await page.getByText('Waiting for the agent to answer your question.').waitFor()
    expect(h.consent.mutations.at(-1)).toEqual({ method: 'ask', args: ['req-1', 'person-alice', 'Why **9,000**?'] })
    h.consent.agentReplies('req-1', 'It is the **invoice** total.')
    await page.getByRole('link', { name: 'Check for an answer' }).click()
    await page.getByText('4 of 5 questions left').waitFor()
    expect(await page.locator('li.turn-agent strong').textContent()).toBe('invoice')
    await noHorizontalScroll(page)

    mkdirSync(resolve('test-artifacts'), { recursive: true })
    await page.screenshot({ path: resolve('test-artifacts/consent-page.png'), fullPage: true })

    // Approve and remember for 30 days.
    await page.check('input[name="remember"][value="month"]')
    await page.getByRole('button', { name: 'Approve' }).click()
    await page.getByText('Approved. You can close this page.').waitFor()
    expect(h.consent.mutations.at(-1)).toEqual({ method: 'decide', args: ['req-1', 'person-alice', { approve: true, remember: 'month', seen: expect.any(Number) }] })
    expect(await page.locator('button[value="approve"]').count()).toBe(0)
    expect(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss)).toBeUndefined()
    expect(dialogs).toEqual([])

    // The dashboard: revoke a grant through the confirmation page.
    await page.goto(`${origin}/account`)
    await noHorizontalScroll(page)
    await page.screenshot({ path: resolve('test-artifacts/dashboard.png'), fullPage: true })
    await page.locator('li[data-grant="g-files"]').getByRole('button', { name: 'Revoke…' }).click()
    await page.getByRole('heading', { name: 'Revoke this access?' }).waitFor()
    expect(h.consent.mutations.filter((c) => c.method === 'revokeGrant')).toEqual([])
    await noHorizontalScroll(page)
    await page.getByRole('button', { name: 'Yes, revoke it' }).click()
    await page.getByText('Access revoked. 2 tokens were revoked.').waitFor()
    expect(h.consent.mutations.at(-1)).toEqual({ method: 'revokeGrant', args: ['person-alice', 'g-files'] })
    await noHorizontalScroll(page)
  })

  it('works with JavaScript disabled', async () => {
    const { page } = await newPage({ javaScriptEnabled: false })
    await logIn(page, '/interaction?code=Q7QD-2M9X')
    await page.waitForURL(`${origin}/interaction/req-2`)
    await page.getByRole('button', { name: 'Approve' }).click()
    await page.getByText('Approved. You can close this page.').waitFor()
    expect(h.consent.mutations.at(-1)).toEqual({ method: 'decide', args: ['req-2', 'person-alice', { approve: true, remember: 'once', seen: expect.any(Number) }] })
  })

  it('the login page fits a phone too', async () => {
    const { page } = await newPage()
    await page.goto(`${origin}/login`)
    await noHorizontalScroll(page)
    const box = await page.getByRole('button', { name: 'Log in' }).boundingBox()
    expect(box!.height).toBeGreaterThanOrEqual(44)
  })
})
