/**
 * examples/keycloak/realm-export.json is what a user imports into Keycloak 26 for scenario S2; it
 * must describe the same realm the tests run (test/fixtures/keycloak-realm.ts `demoRealm`) and hold
 * no secret.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { demoRealm } from '../../fixtures/keycloak-realm.js'

interface ExportedClient {
  clientId: string
  publicClient?: boolean
  standardFlowEnabled?: boolean
  directAccessGrantsEnabled?: boolean
  implicitFlowEnabled?: boolean
  redirectUris?: string[]
  attributes?: Record<string, string>
  protocolMappers?: { name: string; protocolMapper: string; config?: Record<string, string> }[]
}
interface RealmExport {
  realm: string
  roles: { realm: { name: string }[] }
  clients: ExportedClient[]
  users: { username: string; realmRoles?: string[]; attributes?: Record<string, string[]>; credentials?: unknown[] }[]
}

const text = readFileSync(new URL('../../../examples/keycloak/realm-export.json', import.meta.url), 'utf8')
const realm = JSON.parse(text) as RealmExport
const fixture = demoRealm({ alicePassword: 'x', bobPassword: 'x' })

describe('examples/keycloak/realm-export.json', () => {
  it('is the realm the tests run: realm name, users with their roles and departments', () => {
    expect(realm.realm).toBe(fixture.name)
    expect(realm.roles.realm.map((r) => r.name).sort()).toEqual(['admin', 'engineering', 'finance', 'hr'])
    for (const u of fixture.users) {
      const exported = realm.users.find((x) => x.username === u.username)
      expect(exported, u.username).toBeDefined()
      expect(exported!.realmRoles?.slice().sort()).toEqual([...(u.roles ?? [])].sort())
      expect(exported!.attributes?.['departments']?.slice().sort()).toEqual([...(u.departments ?? [])].sort())
    }
  })

  it('has the two clients, both public: the PS with the code flow and PKCE S256 only, the app with direct grants and the PS audience', () => {
    const ps = realm.clients.find((c) => c.clientId === 'aauth-person-server')!
    expect(ps).toMatchObject({ publicClient: true, standardFlowEnabled: true, directAccessGrantsEnabled: false, attributes: { 'pkce.code.challenge.method': 'S256' } })
    expect(ps.implicitFlowEnabled ?? false).toBe(false)
    for (const uri of ps.redirectUris ?? []) expect(uri).not.toContain('*')
    const app = realm.clients.find((c) => c.clientId === 'documents-app')!
    expect(app).toMatchObject({ publicClient: true, directAccessGrantsEnabled: true })
    const audience = app.protocolMappers?.find((m) => m.protocolMapper === 'oidc-audience-mapper')
    expect(audience?.config?.['included.custom.audience'] ?? audience?.config?.['included.client.audience']).toBe('aauth-person-server')
  })

  it('holds no secret: no client secret, no user credentials', () => {
    expect(text).not.toMatch(/"secret"|clientSecret|"credentials"\s*:\s*\[\s*\{/i)
    for (const c of realm.clients) expect(c.publicClient).toBe(true)
    for (const u of realm.users) expect(u.credentials ?? []).toEqual([])
  })
})
