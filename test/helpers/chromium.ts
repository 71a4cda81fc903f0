/**
 * Real Chromium for tests that drive the person's pages (playwright-core with Debian's
 * /usr/bin/chromium; CI installs it when missing).
 */
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { closeAll } from './aauth-servers.js'

/** Launches Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
}

/**
 * One browser for the test file, closed with every loopback server afterwards. Returns a getter
 * (the browser exists once `beforeAll` ran).
 */
export function useBrowser(): () => Browser {
  let browser: Browser | undefined
  beforeAll(async () => {
    browser = await launchChromium()
  }, 30_000)
  afterAll(async () => {
    await browser?.close()
    await closeAll()
  })
  return () => browser!
}
