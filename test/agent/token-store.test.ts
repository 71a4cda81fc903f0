import { describe, expect, it } from 'vitest'
import { TokenStore, type HeldToken } from '../../src/agent/token-store.js'

const token = (o: { iat?: number; exp: number; kind?: 'auth' | 'person' }): HeldToken => ({
  token: `t-${o.exp}`,
  kind: o.kind ?? 'auth',
  iss: 'https://ps.example',
  aud: 'https://api.example',
  sub: 'p',
  jti: `j-${o.exp}`,
  exp: o.exp,
  ...(o.iat === undefined ? {} : { iat: o.iat }),
  scope: new Set(['read']),
  mission: undefined,
})

describe('TokenStore refresh margin', () => {
  it('a token living longer than twice the margin is used until the margin', () => {
    let now = 1_000_000_000
    const store = new TokenStore({ now: () => now, refreshMarginSec: 300 })
    store.addAuth(token({ iat: 1_000_000, exp: 1_003_600 }), 'k')
    expect(store.auth('https://api.example', undefined, 'k')).toBeDefined()
    now = (1_003_600 - 300) * 1000
    expect(store.auth('https://api.example', undefined, 'k')).toBeUndefined()
  })

  it('a token living shorter than twice the margin (a 5-minute exchanged token) is used for its first half', () => {
    let now = 1_000_000_000
    const store = new TokenStore({ now: () => now, refreshMarginSec: 300 })
    store.addAuth(token({ iat: 1_000_000, exp: 1_000_300 }), 'k')
    expect(store.auth('https://api.example', undefined, 'k')?.exp).toBe(1_000_300)
    now = 1_000_149_000
    expect(store.auth('https://api.example', undefined, 'k')).toBeDefined()
    now = 1_000_150_000
    expect(store.auth('https://api.example', undefined, 'k')).toBeUndefined()
  })

  it('AG-05 a short-lived person token keeps the full margin (never presented inside it)', () => {
    const store = new TokenStore({ now: () => 1_000_000_000, refreshMarginSec: 300 })
    store.setPerson(token({ iat: 1_000_000, exp: 1_000_240, kind: 'person' }), 'k')
    expect(store.person('https://api.example', undefined, 'k')).toBeUndefined()
  })

  it('without iat, the margin applies as configured', () => {
    const store = new TokenStore({ now: () => 1_000_000_000, refreshMarginSec: 300 })
    store.addAuth(token({ exp: 1_000_300 }), 'k')
    expect(store.auth('https://api.example', undefined, 'k')).toBeUndefined()
  })
})
