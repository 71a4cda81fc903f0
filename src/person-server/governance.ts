/**
 * The optional governance endpoints (main draft §Permission Endpoint, §Audit Endpoint,
 * §Interaction Endpoint; CHECKLIST PS-GOV-01..05): an agent asks before acting where no resource
 * governs, records what it did under a mission, and reaches its person through the PS.
 *
 * @module
 */

import { assertEndpointUrl, ProblemError } from '../protocol/index.js'
import { optionalText, requiredText, type AgentRequest } from './agent-requests.js'
import { PERMISSION_RESOURCE } from './consent-service.js'
import type { PsContext } from './context.js'
import { deferToPerson } from './pending.js'
import { missionContext } from './missions.js'
import { decide } from './policy.js'
import type { AuditEvent, ConsentView, MissionRecord, PendingKind } from './store/types.js'
import { activeMission, boundPerson, refuseSubAgentCaller } from './token-request.js'

function optionalObject(body: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  const v = body[name]
  if (v === undefined) return undefined
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProblemError('invalid_request', `${name} must be a JSON object`)
  return v as Record<string, unknown>
}

async function missionOf(ctx: PsContext, req: AgentRequest, required: boolean): Promise<MissionRecord | undefined> {
  const s = req.body['mission_s256']
  if (s === undefined && !required) return undefined
  if (s === undefined) throw new ProblemError('invalid_request', 'mission_s256 is required')
  return activeMission(ctx, s, req.agent)
}

/** The person of a governance request; these endpoints need a bound agent. */
async function personOf(ctx: PsContext, req: AgentRequest) {
  const bound = await boundPerson(ctx, req.agent)
  if (bound === undefined) throw new ProblemError('user_unreachable', 'this agent does not act for anyone at this person server yet: obtain a person token first')
  return bound.person
}

/** The consent view of a governance request; under a mission it shows the mission's text and updates (PS-CON-06). */
async function agentView(ctx: PsContext, req: AgentRequest, kind: PendingKind, mission: MissionRecord | undefined, extra: Partial<ConsentView>): Promise<ConsentView> {
  return { kind, agent: { iss: req.agent.iss, sub: req.agent.sub }, ...(mission === undefined ? {} : { missionS256: mission.s256, mission: await missionContext(ctx, mission) }), ...extra }
}

function logEntry(mission: MissionRecord | undefined, at: number, type: string, detail: Record<string, unknown>) {
  return mission === undefined ? {} : { missionLog: [{ s256: mission.s256, at, type, detail }] }
}

/** `POST /permission` (main draft §Permission Endpoint). */
export async function permissionEndpoint(ctx: PsContext, req: AgentRequest): Promise<Response> {
  refuseSubAgentCaller(req.agent)
  const action = requiredText(req.body, 'action', 512)
  const description = optionalText(req.body, 'description', 16_000)
  const parameters = optionalObject(req.body, 'parameters')
  const mission = await missionOf(ctx, req, false)
  const person = await personOf(ctx, req)
  const now = ctx.now()
  const grants = await ctx.store.activeGrants(person.id, req.agent.iss, req.agent.sub, PERMISSION_RESOURCE, now)
  const verdict = await decide(
    { kind: 'permission', person, agent: { iss: req.agent.iss, sub: req.agent.sub }, scopes: [], permission: { action, ...(parameters === undefined ? {} : { parameters }) }, ...(mission === undefined ? {} : { missionS256: mission.s256 }) },
    grants,
    ctx.options.organization,
    ctx.options.policy,
  )
  const base: AuditEvent = { at: now, type: 'permission.decided', personId: person.id, agentSub: req.agent.sub, ...(mission === undefined ? {} : { missionS256: mission.s256 }), detail: { action } }
  if (verdict.decision === 'ask') {
    return deferToPerson(ctx, {
      kind: 'permission',
      agent: req.agent,
      personId: person.id,
      view: await agentView(ctx, req, 'permission', mission, { permission: { action, ...(description === undefined ? {} : { description }), ...(parameters === undefined ? {} : { parameters }) } }),
      work: { capabilities: ['interaction'] },
      audit: { ...base, type: 'permission.pending', decision: 'ask' },
    })
  }
  const body = verdict.decision === 'grant' ? { permission: 'granted' } : { permission: 'denied', reason: verdict.reason }
  await ctx.store.commit({
    audit: [{ ...base, decision: verdict.decision, ...(verdict.reason === undefined ? {} : { reason: verdict.reason }) }],
    ...logEntry(mission, now, 'permission', { action, ...(parameters === undefined ? {} : { parameters }), response: body }),
  })
  return Response.json(body, { headers: { 'cache-control': 'no-store' } })
}

/** `POST /audit` (main draft §Audit Endpoint): needs a mission; `201` once recorded. */
export async function auditEndpoint(ctx: PsContext, req: AgentRequest): Promise<Response> {
  refuseSubAgentCaller(req.agent)
  const mission = await missionOf(ctx, req, true)
  const action = requiredText(req.body, 'action', 512)
  const description = optionalText(req.body, 'description', 16_000)
  const parameters = optionalObject(req.body, 'parameters')
  const result = optionalObject(req.body, 'result')
  const now = ctx.now()
  const detail = { action, ...(description === undefined ? {} : { description }), ...(parameters === undefined ? {} : { parameters }), ...(result === undefined ? {} : { result }) }
  await ctx.store.commit({
    audit: [{ at: now, type: 'audit.recorded', personId: mission!.personId, agentSub: req.agent.sub, missionS256: mission!.s256, detail }],
    ...logEntry(mission, now, 'audit', detail),
  })
  return new Response(null, { status: 201 })
}

/** `POST /relay`, the `interaction_endpoint` (main draft §Interaction Endpoint). */
export async function interactionEndpoint(ctx: PsContext, req: AgentRequest): Promise<Response> {
  refuseSubAgentCaller(req.agent)
  const type = req.body['type']
  if (type !== 'interaction' && type !== 'payment' && type !== 'question') throw new ProblemError('invalid_request', 'type must be interaction, payment or question')
  const description = optionalText(req.body, 'description', 16_000)
  const mission = await missionOf(ctx, req, false)
  if (type !== 'question' && ctx.options.relay === false) throw new ProblemError('interaction_unavailable', 'this person server does not relay interactions; direct the person yourself')
  const person = await personOf(ctx, req)
  let view: ConsentView
  if (type === 'question') {
    view = await agentView(ctx, req, 'question', mission, { question: requiredText(req.body, 'question', 16_000) })
  } else {
    const url = optionalText(req.body, 'url', 2048)
    if (url !== undefined) {
      try {
        assertEndpointUrl(url, 'endpoint', ctx.idOpts)
      } catch {
        throw new ProblemError('invalid_request', 'url must be an https URL')
      }
    }
    const code = optionalText(req.body, 'code', 64)
    view = await agentView(ctx, req, 'relay', mission, { relay: { type, ...(url === undefined ? {} : { url }), ...(code === undefined ? {} : { code }), ...(description === undefined ? {} : { description }) } })
  }
  const now = ctx.now()
  const response = await deferToPerson(ctx, {
    kind: view.kind,
    agent: req.agent,
    personId: person.id,
    view,
    work: { capabilities: ['interaction'] },
    audit: { at: now, type: 'interaction.relayed', personId: person.id, agentSub: req.agent.sub, ...(mission === undefined ? {} : { missionS256: mission.s256 }), detail: { type } },
  })
  if (mission !== undefined) await ctx.store.commit(logEntry(mission, now, 'interaction', { type, ...(description === undefined ? {} : { description }) }))
  // The person is reached through the PS, not by the agent: no requirement for the agent to act on.
  response.headers.delete('aauth-requirement')
  return response
}
