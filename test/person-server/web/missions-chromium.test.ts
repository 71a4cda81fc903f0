/**
 * A mission proposal decided in real Chromium (playwright-core, /usr/bin/chromium), no JavaScript
 * on the page: our agent client proposes, the person logs in, reads the agent's description
 * (escaped, inert), edits it, drops a tool, picks 30 days and approves; the agent gets the blob
 * with the person's edits and its digest checks out.
 */
import { describe, expect, it } from 'vitest'
import { useBrowser } from '../../helpers/chromium.js'
import { psWorld } from '../../helpers/person-server.js'

const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

const browser = useBrowser()

describe('mission consent in Chromium', () => {
  it('MIS-02 PS-CON-06 the person edits and approves a proposal in the browser; the agent gets the edited blob', async () => {
    const page = await (await browser().newContext()).newPage()
    const dialogs: string[] = []
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    const w = await psWorld(
      { '/profile': { access: 'person' } },
      {
        approve: false,
        client: {
          onInteraction: async ({ url, code }) => {
            await page.goto(`${url}?code=${code}`)
            await page.fill('input[name="username"]', 'alice')
            await page.fill('input[name="password"]', 'correct horse battery staple')
            await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type="submit"]')])
            expect(await page.innerText('section[data-mission-action="propose"]')).toContain(XSS)
            await page.fill('textarea[name="mission_description"]', 'Weekly report\nRead-only.')
            await page.uncheck('input[value="DeleteFiles"]')
            await page.check('input[name="mission_expiry"][value="month"]')
            await Promise.all([page.waitForLoadState('load'), page.click('button[name="action"][value="approve"]')])
            await page.waitForSelector('text=Approved')
          },
        },
      },
    )
    const m = await w.client.proposeMission({
      description: `Weekly report ${XSS}`,
      tools: [{ name: 'Read', description: 'Read pages' }, { name: 'DeleteFiles', description: 'Delete files' }],
      resources: [w.app.origin],
    })
    expect(m.blob).toMatchObject({ description: 'Weekly report\nRead-only.', approved_tools: [{ name: 'Read', description: 'Read pages' }], approved_resources: [w.app.origin] })
    expect(Date.parse(m.blob.expires_at!) - Date.parse(m.blob.approved_at)).toBe(30 * 86_400_000)
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined()
    expect(dialogs).toEqual([])
    const r = await w.client.fetch(`${w.app.origin}/profile`, { aauth: { mission: m.s256 } })
    expect(r.status).toBe(200)
  }, 60_000)
})
