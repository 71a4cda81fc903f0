/**
 * The agent's mission calls (main draft §Mission Creation … §Mission Status Errors; CHECKLIST
 * AG-MIS-01..05) end to end over loopback HTTP: our agent client → this Person Server (the person
 * deciding through the consent service) → a resource behind our Hono middleware.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { AgentError, MissionTerminatedError, verifyMission } from '../../src/agent/index.js'
import { decodeJwt, ProblemError } from '../../src/protocol/index.js'
import { closeAll } from '../helpers/aauth-servers.js'
import { psWorld } from '../helpers/person-server.js'

afterEach(closeAll)

const digest = (bytes: string | Uint8Array): string => createHash('sha256').update(bytes).digest('base64url')

describe('agent missions', () => {
  it('AG-MIS-01..05 propose → approve → the held person token is used at the resource → update → completion accepted → terminated', async () => {
    const w = await psWorld({ '/profile': { access: 'person' } })
    const proposal = { description: '# Weekly report\n\nRead my profile and summarise.', tools: [{ name: 'Read', description: 'Read pages' }], resources: [w.app.origin] }
    const m = await w.client.proposeMission(proposal)
    // AG-MIS-02: the digest is of the exact bytes; the blob is decoded.
    expect(m.s256).toBe(digest(m.bytes))
    expect(m.blob).toMatchObject({ agent: w.agentId(), description: proposal.description, approved_tools: proposal.tools, approved_resources: [w.app.origin] })
    expect(m.capabilities).toEqual([])
    expect(Object.keys(m.personTokens)).toEqual([w.app.origin])
    expect((decodeJwt(m.personTokens[w.app.origin]!.token).payload as Record<string, unknown>)['mission_s256']).toBe(m.s256)
    expect(w.codes).toHaveLength(1)

    // AG-MIS-03: a call under the mission presents the token the approval carried; the PS is not asked again.
    const issuedBefore = (await w.ps.store.queryAudit({ missionS256: m.s256 })).filter((e) => e.type === 'person_token.issued').length
    const r = await w.client.fetch(`${w.app.origin}/profile`, { aauth: { mission: m.s256 } })
    expect(r.status).toBe(200)
    expect(await r.json()).toMatchObject({ mode: 'person', token: 'aa-person+jwt' })
    expect(w.app.runs.at(-1)?.access?.mission).toBe(m.s256)
    expect((await w.ps.store.queryAudit({ missionS256: m.s256 })).filter((e) => e.type === 'person_token.issued').length).toBe(issuedBefore)

    // AG-MIS-04: an update is accepted at once with the digest of its bytes.
    const update = 'The profile moved; reading the new one.'
    expect(await w.client.updateMission(m.s256, update)).toEqual({ s256: digest(update) })

    // AG-MIS-04: completion waits for the person, who accepts.
    await w.client.completeMission(m.s256, 'Report sent.')
    expect(w.codes).toHaveLength(2)
    expect(await w.ps.store.getMission(m.s256)).toMatchObject({ status: 'terminated', terminationReason: 'completed' })

    // AG-MIS-05: the ended mission surfaces as mission_terminated with its reason.
    const err = await w.client.updateMission(m.s256, 'one more').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissionTerminatedError)
    expect(err).toBeInstanceOf(ProblemError)
    expect(err).toMatchObject({ code: 'mission_terminated', status: 403, missionStatus: 'terminated', terminationReason: 'completed' })
  })

  it('AG-MIS-05 a mission the person revoked: mission_terminated with termination_reason revoked', async () => {
    const w = await psWorld({ '/profile': { access: 'person' } })
    const m = await w.client.proposeMission({ description: 'Tidy my calendar' })
    await w.ps.ps.missions.revoke(w.alice, m.s256)
    const err = await w.client.completeMission(m.s256, 'done').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'mission_terminated', terminationReason: 'revoked' })
    // The same from a call under the mission: the person token request is refused with the reason.
    const viaFetch = await w.client.fetch(`${w.app.origin}/profile`, { aauth: { mission: m.s256 } }).catch((e: unknown) => e)
    expect(viaFetch).toBeInstanceOf(MissionTerminatedError)
    expect(viaFetch).toMatchObject({ code: 'mission_terminated', terminationReason: 'revoked' })
  })

  it('AG-MIS-02 a blob that does not hash to s256 is refused with a typed error', async () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ agent: 'aauth:a@b.example', approved_at: '2026-01-01T00:00:00Z', description: 'x' }))
    const mission = Buffer.from(bytes).toString('base64url')
    await expect(verifyMission(digest(bytes), mission)).resolves.toMatchObject({ s256: digest(bytes), blob: { description: 'x' } })
    const err = await verifyMission(digest('something else'), mission).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AgentError)
    expect(err).toMatchObject({ code: 'unexpected_response' })
    await expect(verifyMission(digest(bytes), 'not base64url!')).rejects.toMatchObject({ code: 'unexpected_response' })
    const noDescription = new TextEncoder().encode(JSON.stringify({ agent: 'a', approved_at: 't' }))
    await expect(verifyMission(digest(noDescription), Buffer.from(noDescription).toString('base64url'))).rejects.toMatchObject({ code: 'unexpected_response' })
  })
})
