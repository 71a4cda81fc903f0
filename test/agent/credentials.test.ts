/**
 * AgentCredentials: refresh inside the 5-minute margin (main draft §Expiry and the Refresh Margin,
 * CHECKLIST AG-05), background refresh before it, single-flight, and no dropped requests when the
 * provider is briefly unavailable. A fake clock; tokens are real JWTs from a real issuer key.
 */
import { describe, expect, it } from 'vitest'
import { AgentCredentials, EARLY_REFRESH_SEC, REFRESH_MARGIN_SEC } from '../../src/agent/index.js'
import { AAuthError, createAgentToken, createSigner, generateKeyPair, type Signer } from '../../src/protocol/index.js'

const T0 = Date.UTC(2027, 0, 15, 12, 0, 0)

async function setup(lifetimeSec = 3600) {
  let now = T0
  const issuerKey = (await generateKeyPair()).privateJwk
  const agentKey = await generateKeyPair()
  const signer: Signer = await createSigner(agentKey.privateJwk)
  let calls = 0
  let failing = false
  let gate: Promise<void> | undefined
  const refresh = async () => {
    calls++
    if (gate !== undefined) await gate
    if (failing) throw new AAuthError('server_error', 'provider down')
    const agentToken = await createAgentToken({ key: { kid: 'k', privateJwk: issuerKey }, issuer: 'https://agents.example', sub: 'aauth:bot@agents.example', cnfJwk: agentKey.publicJwk, lifetimeSec, now: () => now })
    return { agentToken, signer }
  }
  const creds = new AgentCredentials({ refresh, now: () => now })
  return {
    creds,
    calls: () => calls,
    advance: (sec: number) => (now += sec * 1000),
    fail: (v: boolean) => (failing = v),
    hold: () => {
      let release!: () => void
      gate = new Promise((r) => (release = r))
      return () => {
        gate = undefined
        release()
      }
    },
  }
}

describe('AgentCredentials (AG-05)', () => {
  it('obtains a token on first use and reuses it while far from expiry', async () => {
    const s = await setup()
    const a = await s.creds.current()
    s.advance(1800)
    expect((await s.creds.current()).agentToken).toBe(a.agentToken)
    expect(s.calls()).toBe(1)
    expect(a.claims.sub).toBe('aauth:bot@agents.example')
    expect(a.jkt).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('starts a background refresh shortly before the margin and keeps signing meanwhile', async () => {
    const s = await setup()
    const a = await s.creds.current()
    s.advance(3600 - REFRESH_MARGIN_SEC - EARLY_REFRESH_SEC + 1)
    const release = s.hold()
    // Returns at once with the current token although the refresh is held.
    expect((await s.creds.current()).agentToken).toBe(a.agentToken)
    expect(s.calls()).toBe(2)
    release()
    await new Promise((r) => setTimeout(r, 10))
    expect((await s.creds.current()).agentToken).not.toBe(a.agentToken)
    expect(s.creds.generation).toBe(2)
  })

  it('AG-05 never presents a token inside the margin when a fresh one can be had; callers share one refresh', async () => {
    const s = await setup()
    const a = await s.creds.current()
    s.advance(3600 - REFRESH_MARGIN_SEC + 1)
    const got = await Promise.all(Array.from({ length: 10 }, () => s.creds.current()))
    expect(new Set(got.map((c) => c.agentToken)).size).toBe(1)
    expect(got[0]!.agentToken).not.toBe(a.agentToken)
    expect(s.calls()).toBe(2)
  })

  it('keeps serving the old token while it is valid when the provider is down, then fails typed', async () => {
    const s = await setup()
    const a = await s.creds.current()
    s.fail(true)
    s.advance(3600 - REFRESH_MARGIN_SEC + 1)
    expect((await s.creds.current()).agentToken).toBe(a.agentToken)
    // Within the retry back-off no new attempt is made.
    expect((await s.creds.current()).agentToken).toBe(a.agentToken)
    expect(s.calls()).toBe(2)
    s.advance(REFRESH_MARGIN_SEC)
    await expect(s.creds.current()).rejects.toMatchObject({ code: 'server_error' })
    s.fail(false)
    s.advance(11)
    expect((await s.creds.current()).agentToken).not.toBe(a.agentToken)
  })

  it('invalidate forces a new token on next use; a fixed token without refresh expires typed', async () => {
    const s = await setup()
    const a = await s.creds.current()
    s.creds.invalidate('someone-else')
    expect((await s.creds.current()).agentToken).toBe(a.agentToken)
    s.creds.invalidate(a.agentToken)
    expect((await s.creds.current()).agentToken).not.toBe(a.agentToken)
    const fixed = AgentCredentials.fixed(a.agentToken, a.signer)
    expect((await fixed.current()).agentToken).toBe(a.agentToken)
    fixed.invalidate(a.agentToken)
    await expect(fixed.current()).rejects.toMatchObject({ code: 'expired_jwt' })
    expect(() => new AgentCredentials({})).toThrow(TypeError)
  })
})
