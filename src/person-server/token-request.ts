/**
 * What the person token and auth token endpoints share (main draft §Auth Token Request, §Person
 * Token Endpoint): the optional request parameters, the mission check, the single-level-depth
 * rule and the person the agent acts for.
 *
 * @module
 */

import { CAPABILITIES, ProblemError, type AgentTokenClaims, type Capability } from '../protocol/index.js'
import { optionalText } from './agent-requests.js'
import type { PsContext } from './context.js'
import type { AgentBinding, MissionRecord, PersonRecord } from './store/types.js'

/** The AAuth Platform Value Registry (main draft §AAuth Platform Value Registry). */
export const PLATFORMS = ['web', 'mobile', 'desktop', 'workload', 'self-hosted'] as const

/** The optional parameters of both token endpoints. */
export interface CommonTokenParams {
  /** `undefined` when the body carried none (the mission's captured values apply then). */
  readonly capabilities?: ReadonlySet<Capability>
  readonly justification?: string
  readonly platform?: string
  readonly device?: string
  readonly loginHint?: string
  readonly tenant?: string
  readonly domainHint?: string
  readonly prompt?: readonly string[]
}

const PRINTABLE = /^[^\p{Cc}\p{Cs}\p{Co}\p{Cn}]*$/u
const MISSION_S256 = /^[A-Za-z0-9_-]{43}$/

/**
 * Reads the optional parameters (CHECKLIST PS-PT-12, PS-TOK-08..10).
 *
 * @throws {ProblemError} `invalid_request`: an unknown `platform`, a `device` over 64 characters
 *   or with control characters, `capabilities` not an array of strings, a `prompt` value outside
 *   OpenID's set.
 */
export function commonTokenParams(body: Record<string, unknown>): CommonTokenParams {
  const caps = body['capabilities']
  let capabilities: Set<Capability> | undefined
  if (caps !== undefined) {
    if (!Array.isArray(caps) || caps.some((c) => typeof c !== 'string')) throw new ProblemError('invalid_request', 'capabilities must be an array of strings')
    // Unknown capability values are ignored (main draft §AAuth-Capabilities Request Header).
    capabilities = new Set((caps as string[]).filter((c): c is Capability => (CAPABILITIES as readonly string[]).includes(c)))
  }
  const platform = optionalText(body, 'platform', 64)
  if (platform !== undefined && !(PLATFORMS as readonly string[]).includes(platform)) throw new ProblemError('invalid_request', `platform must be one of ${PLATFORMS.join(', ')}`)
  const device = optionalText(body, 'device', 256)
  if (device !== undefined && ([...device].length > 64 || !PRINTABLE.test(device))) throw new ProblemError('invalid_request', 'device must be at most 64 printable characters')
  const promptText = optionalText(body, 'prompt', 200)
  const prompt = promptText?.split(' ').filter((p) => p !== '')
  if (prompt?.some((p) => !['none', 'login', 'consent', 'select_account'].includes(p)) === true) throw new ProblemError('invalid_request', 'prompt takes none, login, consent and select_account')
  const text = (name: string, max = 4000): Record<string, string> => {
    const v = optionalText(body, name, max)
    return v === undefined ? {} : { [name]: v }
  }
  const j = text('justification', 16_000)
  const lh = text('login_hint', 512)
  const t = text('tenant', 512)
  const dh = text('domain_hint', 512)
  return {
    ...(capabilities === undefined ? {} : { capabilities }),
    ...(j['justification'] === undefined ? {} : { justification: j['justification'] }),
    ...(platform === undefined ? {} : { platform }),
    ...(device === undefined ? {} : { device }),
    ...(lh['login_hint'] === undefined ? {} : { loginHint: lh['login_hint'] }),
    ...(t['tenant'] === undefined ? {} : { tenant: t['tenant'] }),
    ...(dh['domain_hint'] === undefined ? {} : { domainHint: dh['domain_hint'] }),
    ...(prompt === undefined ? {} : { prompt }),
  }
}

/**
 * Sub-agents never call the PS themselves; their parent asks for them (main draft §Single-Level
 * Depth, CHECKLIST PS-04).
 *
 * @throws {ProblemError} `invalid_request`.
 */
export function refuseSubAgentCaller(agent: AgentTokenClaims): void {
  if (agent.parent_agent !== undefined) {
    throw new ProblemError('invalid_request', 'a sub-agent does not call the person server; its parent requests on its behalf with subagent_token')
  }
}

/** The mission error body members (main draft §Mission Status Errors). */
export function missionTerminated(m: MissionRecord, now: number): ProblemError & { body: Record<string, unknown> } {
  const err = new ProblemError('mission_terminated', 'the mission has ended; stop acting on it') as ProblemError & { body: Record<string, unknown> }
  // A mission past its expires_at has ended with reason `expired`, even before anything marked it so.
  const reason = m.terminationReason ?? (m.expiresAt !== undefined && m.expiresAt <= now ? 'expired' : undefined)
  err.body = { mission_status: 'terminated', ...(reason === undefined ? {} : { termination_reason: reason }) }
  return err
}

/**
 * Checks that `s256` names an active, unexpired mission of this agent (CHECKLIST PS-PT-03,
 * PS-RT-04, MIS-12, MIS-ERR-01). Unknown and not-this-agent's answer the same.
 *
 * @throws {ProblemError} `invalid_request` (malformed), `mission_not_found` (404), `mission_terminated` (403).
 */
export async function activeMission(ctx: PsContext, s256: unknown, agent: { iss: string; sub: string }): Promise<MissionRecord> {
  if (typeof s256 !== 'string' || !MISSION_S256.test(s256)) throw new ProblemError('invalid_request', 'mission_s256 must be a base64url SHA-256 (43 characters)')
  const m = await ctx.store.getMission(s256)
  if (m === undefined || m.agentIss !== agent.iss || m.agentSub !== agent.sub) throw new ProblemError('mission_not_found', 'no such mission for this agent')
  if (m.status !== 'active' || (m.expiresAt !== undefined && m.expiresAt <= ctx.now())) throw missionTerminated(m, ctx.now())
  return m
}

/** The person an agent acts for, when it is bound (main draft §Agent-Person Binding, PS-05). */
export async function boundPerson(ctx: PsContext, agent: { iss: string; sub: string }): Promise<{ binding: AgentBinding; person: PersonRecord } | undefined> {
  const binding = await ctx.store.getBinding(agent.iss, agent.sub)
  if (binding === undefined || binding.revokedAt !== undefined) return undefined
  const person = await ctx.store.getPerson(binding.personId)
  return person === undefined ? undefined : { binding, person }
}
