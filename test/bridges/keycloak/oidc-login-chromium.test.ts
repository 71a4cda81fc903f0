/**
 * Person login through Keycloak in a real browser: the PS login page → "Log in with Keycloak" →
 * the Keycloak-shaped realm's login form (its own process, test/fixtures/keycloak-realm.ts) →
 * back at the PS, logged in as alice. Chromium is Debian's /usr/bin/chromium driven by
 * playwright-core; a screenshot of the account page is saved to test-artifacts/keycloak-login.png.
 */
import { mkdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useBrowser } from '../../helpers/chromium.js'
import { closeKeycloakRealms, startKeycloakRealm, startPsWithKeycloakLogin, type KeycloakRealmProcess, type PsWithKeycloak } from '../../helpers/keycloak.js'

const browser = useBrowser()
let realm: KeycloakRealmProcess
let world: PsWithKeycloak

beforeAll(async () => {
  realm = await startKeycloakRealm()
  world = await startPsWithKeycloakLogin(realm)
}, 30_000)

afterAll(async () => {
  await closeKeycloakRealms()
})

describe('Keycloak login in Chromium', () => {
  it('PS login page → Log in with Keycloak → realm form → PS account page as alice', async () => {
    const context = await browser().newContext({ viewport: { width: 900, height: 800 } })
    const page = await context.newPage()
    await page.goto(`${world.ps.issuer}/login?next=%2Faccount`)
    await Promise.all([page.waitForURL((u) => u.href.startsWith(`${realm.issuer}/login-actions/authenticate/`)), page.click('text=Log in with Keycloak')])
    expect(await page.title()).toBe('Sign in to demo')
    await page.fill('#username', 'alice')
    await page.fill('#password', realm.config.users.find((u) => u.username === 'alice')!.password)
    await Promise.all([page.waitForURL(`${world.ps.issuer}/account`), page.click('#kc-login')])
    const text = await page.innerText('body')
    expect(text).toContain('Alice Example')
    mkdirSync('test-artifacts', { recursive: true })
    await page.screenshot({ path: 'test-artifacts/keycloak-login.png', fullPage: true })
    const person = await world.ps.store.getPersonByUsername('alice')
    expect(person).toMatchObject({ email: 'alice@demo.example.com', permissions: ['engineering', 'finance'] })
    const cookies = await context.cookies(world.ps.issuer)
    expect(cookies.find((c) => c.name === 'aauth_ps_session')?.httpOnly).toBe(true)
    expect(cookies.find((c) => c.name === 'aauth_ps_oidc_flow')).toBeUndefined()
    await context.close()
  })
})
