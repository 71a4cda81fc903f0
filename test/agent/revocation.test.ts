/**
 * The agent provider revokes an agent token at the agent's person server (main draft §Token
 * Revocation, §Agent Provider; CHECKLIST AG-07): a signed POST `{jti, exp}` to the PS
 * `revocation_endpoint`, signed as a server with the `jwks_uri` scheme, verified by a real PS on
 * loopback.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createAgentProvider, KeyRing } from '../../src/agent/index.js'
import { AAuthError, decodeJwt, generateKeyPair, MetadataError } from '../../src/protocol/index.js'
import { closeAll, LOOPBACK, startAgentProvider, startPersonServer } from '../helpers/aauth-servers.js'

afterEach(closeAll)

describe('agent token revocation by the agent provider (AG-07)', () => {
  it('AG-07 posts {jti, exp} signed as the AP (jwks_uri, dwk=aauth-agent.json); the PS verifies it', async () => {
    const { ap, issuer } = await startAgentProvider()
    const ps = await startPersonServer()
    const token = await ap.issue({ local: 'rogue-bot', cnfJwk: (await generateKeyPair()).publicJwk, ps: ps.issuer })
    expect(await ap.revokeAgentToken(token)).toBe(true)
    const claims = decodeJwt(token).payload
    expect(ps.revocations).toEqual([{ issuer, dwk: 'aauth-agent.json', jti: claims['jti'], exp: claims['exp'] }])
  })

  it('a token that names no PS has no one to tell; a token of another AP is refused', async () => {
    const { ap } = await startAgentProvider()
    const other = await startAgentProvider()
    const cnfJwk = (await generateKeyPair()).publicJwk
    expect(await ap.revokeAgentToken(await ap.issue({ local: 'solo', cnfJwk }))).toBe(false)
    const foreign = await other.ap.issue({ local: 'x', cnfJwk })
    const err = await ap.revokeAgentToken(foreign).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AAuthError)
    expect(err).toMatchObject({ code: 'invalid_request' })
  })

  it('a PS without a revocation endpoint is a MetadataError; a PS refusing the signature is a typed SignatureError', async () => {
    const { ap } = await startAgentProvider()
    const ps = await startPersonServer()
    const cnfJwk = (await generateKeyPair()).publicJwk
    ps.revocation = false
    await expect(ap.revokeAgentToken(await ap.issue({ local: 'a', cnfJwk, ps: ps.issuer }))).rejects.toBeInstanceOf(MetadataError)
    ps.revocation = true
    // An AP whose signing key is not the one its JWKS publishes: the PS answers 401.
    const { issuer } = await startAgentProvider()
    const impostor = createAgentProvider({ issuer, keys: await KeyRing.create(), ...LOOPBACK })
    const token = await impostor.issue({ local: 'b', cnfJwk, ps: ps.issuer })
    await expect(impostor.revokeAgentToken(token)).rejects.toMatchObject({ code: 'unknown_key', status: 401 })
    expect(ps.revocations).toEqual([])
  })
})
