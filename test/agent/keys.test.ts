import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { KeyFileError, KeyRing, loadKeyFile, loadOrCreateKeyFile, saveKeyFile } from '../../src/agent/index.js'
import { createAgentToken, decodeJwt, generateKeyPair, JwksCache, verifyAgentToken } from '../../src/protocol/index.js'
import { fakeNetwork } from '../helpers/issuers.js'

const dir = () => mkdtemp(join(tmpdir(), 'aauth-keys-'))

describe('key files (owner-only)', () => {
  it('AG keys are written 0600 with a thumbprint kid, and read back', async () => {
    const path = join(await dir(), 'agent.jwk')
    const saved = await saveKeyFile(path, (await generateKeyPair()).privateJwk)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await loadKeyFile(path)).toEqual(saved)
    expect(saved.kid).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('refuses to overwrite a key, and refuses a key file others can read', async () => {
    const path = join(await dir(), 'agent.jwk')
    await saveKeyFile(path, (await generateKeyPair()).privateJwk)
    await expect(saveKeyFile(path, (await generateKeyPair()).privateJwk)).rejects.toMatchObject({ code: 'key_file_exists' })
    await chmod(path, 0o644)
    await expect(loadKeyFile(path)).rejects.toMatchObject({ code: 'key_file_permissions' })
    await chmod(path, 0o640)
    await expect(loadKeyFile(path)).rejects.toBeInstanceOf(KeyFileError)
  })

  it('refuses content that is not a private JWK with a supported alg', async () => {
    const d = await dir()
    for (const [name, body] of [['a', 'not json'], ['b', '{"kty":"OKP","x":"x","alg":"Ed25519"}'], ['c', '{"kty":"OKP","d":"x","alg":"EdDSA"}']]) {
      const path = join(d, name!)
      await writeFile(path, body!, { mode: 0o600 })
      await expect(loadKeyFile(path)).rejects.toMatchObject({ code: 'key_file_invalid' })
    }
  })

  it('loadOrCreateKeyFile creates once, then loads the same key', async () => {
    const path = join(await dir(), 'k.jwk')
    const a = await loadOrCreateKeyFile(path)
    const b = await loadOrCreateKeyFile(path)
    expect(b.d).toBe(a.d)
    expect(JSON.parse(await readFile(path, 'utf8')).alg).toBe('Ed25519')
  })
})

describe('issuer key rotation', () => {
  it('a new key gets a new kid; the old key stays published for the overlap so its tokens verify', async () => {
    let t = 1_800_000_000_000
    const now = () => t
    const ring = await KeyRing.create({ now, overlapSec: 3600 })
    const net = fakeNetwork()
    const issuer = 'https://agents.example'
    net.serveJson(`${issuer}/.well-known/aauth-agent.json`, { issuer, jwks_uri: `${issuer}/jwks` })
    net.routes.set(`${issuer}/jwks`, () => ({ url: '', status: 200, headers: new Headers(), body: new TextEncoder().encode(JSON.stringify(ring.jwks())) }))
    const agent = await generateKeyPair()
    const old = await createAgentToken({ key: ring.current, issuer, sub: 'aauth:a@agents.example', cnfJwk: agent.publicJwk, now })
    const oldKid = ring.current.kid
    await ring.rotate()
    expect(ring.current.kid).not.toBe(oldKid)
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([ring.current.kid, oldKid])
    const fresh = await createAgentToken({ key: ring.current, issuer, sub: 'aauth:a@agents.example', cnfJwk: agent.publicJwk, now })
    expect(decodeJwt(fresh).header['kid']).toBe(ring.current.kid)
    for (const token of [old, fresh]) await verifyAgentToken(token, { jwks: new JwksCache({ fetcher: net.fetcher, now }), now })
    t += 3600_001
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([ring.current.kid])
    expect(ring.jwks().keys[0]).not.toHaveProperty('d')
  })
})
