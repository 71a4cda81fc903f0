/**
 * The Person Server's decision on a request (main draft §Policy Evaluation Points, §Incremental
 * Consent, §PS Response): organisation limits first, then the deployment's own hook, then what
 * the person already granted, and otherwise ask the person.
 *
 * In organisation mode an administrator pre-authorises agents and gives each a capability set;
 * the PS only ever issues scopes in *both* the person's permissions and the agent's capabilities,
 * so an agent can narrow what its person may do, never widen it. A request for more is a denial
 * naming what is outside, never a token with less than was asked (the resource asked for those
 * scopes; silently dropping some would surprise both sides).
 *
 * @module
 */

import type { R3Document } from '../protocol/index.js'
import type { Grant, PersonRecord } from './store/types.js'

/** What is being decided. */
export interface PolicyRequest {
  readonly kind: 'person_token' | 'auth_token' | 'permission'
  readonly person: PersonRecord
  readonly agent: { readonly iss: string; readonly sub: string; readonly parentAgent?: string }
  /** The resource (person and auth tokens). */
  readonly resource?: string
  /** Requested scope values (auth tokens); empty for person tokens and permissions. */
  readonly scopes: readonly string[]
  readonly account?: string
  readonly missionS256?: string
  /** Permission endpoint: the action and its parameters. */
  readonly permission?: { readonly action: string; readonly parameters?: unknown }
  /** Agent-asserted; never the sole basis of a decision (main draft §Consent Presentation). */
  readonly justification?: string
  /**
   * Auth tokens whose resource token references an R3 document: the verified document (resource-
   * asserted). With `perCall`, it is a per-call proposal carrying the call's `parameters`.
   */
  readonly r3?: { readonly uri: string; readonly s256: string; readonly perCall: boolean; readonly document: R3Document }
  /** The mission's approved blob, parsed, when the request is under one (its `limits`, if any, included). */
  readonly mission?: Readonly<Record<string, unknown>>
}

/** A decision. `ask` sends the request to the person. */
export type PolicyVerdict =
  | { readonly decision: 'grant'; readonly reason?: string }
  | { readonly decision: 'deny'; readonly reason: string }
  | { readonly decision: 'ask'; readonly reason?: string }

/**
 * A deployment's own policy engine. Return `undefined` to fall through to the built-in rules
 * (remembered grants, else ask). Runs after the organisation limits, so it cannot widen them.
 */
export type PolicyHook = (request: PolicyRequest) => PolicyVerdict | undefined | Promise<PolicyVerdict | undefined>

/** Organisation mode: the agents an administrator pre-authorised, with their capability sets. */
export interface OrganizationPolicy {
  /** Agent identifier → the scope values it may ever be given. Agents not listed are refused. */
  readonly agents: Readonly<Record<string, { readonly scopes: readonly string[] }>>
  /**
   * `preauthorised` (default): within the intersection the administrator's authorisation stands
   * and the person is not asked; `ask`: the person still consents (to the intersection only).
   */
  readonly consent?: 'preauthorised' | 'ask'
}

/** The outcome of {@link decide}, with the scopes still to ask about. */
export type Decision = PolicyVerdict & {
  /** For `ask`: the requested scopes not covered by a remembered grant (incremental consent). */
  readonly newScopes?: readonly string[]
}

/**
 * The scope values an organisation lets this person delegate to this agent, or `undefined` when
 * not in organisation mode.
 */
export function allowedScopes(org: OrganizationPolicy | undefined, person: PersonRecord, agentSub: string): Set<string> | undefined {
  if (org === undefined) return undefined
  const caps = org.agents[agentSub]?.scopes ?? []
  const perms = new Set(person.permissions ?? [])
  return new Set(caps.filter((s) => perms.has(s)))
}

/** The grant value behind a request: one per scope, or `''` (act as the person) for person tokens. */
export function grantKeys(request: Pick<PolicyRequest, 'kind' | 'scopes' | 'permission'>): string[] {
  if (request.kind === 'permission') return [request.permission?.action ?? '']
  if (request.kind === 'person_token') return ['']
  return request.scopes.length === 0 ? [''] : [...request.scopes]
}

/**
 * The organisation limits alone (scenario S2's rule): a denial when the agent is not
 * pre-authorised or asks for a scope outside (person's permissions ∩ agent's capabilities);
 * `undefined` when within them or not in organisation mode. Checked when a request arrives and
 * again when a person approves it.
 */
export function orgLimits(request: PolicyRequest, org: OrganizationPolicy | undefined): { readonly decision: 'deny'; readonly reason: string } | undefined {
  if (org === undefined) return undefined
  if (org.agents[request.agent.sub] === undefined && (request.agent.parentAgent === undefined || org.agents[request.agent.parentAgent] === undefined)) {
    return { decision: 'deny', reason: `${request.agent.sub} is not an agent the organisation has authorised` }
  }
  if (request.kind !== 'auth_token') return undefined
  const allowed = allowedScopes(org, request.person, request.agent.parentAgent ?? request.agent.sub) ?? new Set<string>()
  const outside = request.scopes.filter((s) => !allowed.has(s))
  if (outside.length > 0) return { decision: 'deny', reason: `outside what ${request.person.username} and this agent may both do: ${outside.join(' ')}` }
  return undefined
}

/**
 * Decides a request against the organisation limits, the hook and the person's active grants.
 *
 * @param grants - the active grants of (person, agent, resource).
 */
export async function decide(request: PolicyRequest, grants: readonly Grant[], org: OrganizationPolicy | undefined, hook: PolicyHook | undefined): Promise<Decision> {
  const limit = orgLimits(request, org)
  if (limit !== undefined) return limit
  const verdict = await hook?.(request)
  if (verdict !== undefined) return verdict
  // A per-call proposal is one call: no standing grant or pre-authorisation decides it (R3 §Per-Call Proposals).
  if (request.r3?.perCall === true) return { decision: 'ask', reason: 'this call needs its own approval', newScopes: [] }
  if (org !== undefined && org.consent !== 'ask' && request.kind !== 'permission') return { decision: 'grant', reason: 'pre-authorised by the organisation' }
  const held = new Set(grants.filter((g) => g.missionS256 === undefined || g.missionS256 === request.missionS256).map((g) => g.scope))
  const newScopes = grantKeys(request).filter((k) => !held.has(k))
  if (newScopes.length === 0) return { decision: 'grant', reason: 'remembered grant' }
  return { decision: 'ask', newScopes: newScopes.filter((k) => k !== '') }
}

/** A structured limit in a mission blob: `limits: { amount: { max: 2000, currency: "USD" } }`. */
function missionMax(mission: Readonly<Record<string, unknown>> | undefined, parameter: string): number | undefined {
  const limits = mission?.['limits']
  if (typeof limits !== 'object' || limits === null) return undefined
  const max = (limits as Record<string, { max?: unknown } | undefined>)[parameter]?.max
  return typeof max === 'number' && Number.isFinite(max) ? max : undefined
}

/**
 * A policy hook that machine-decides per-call proposals on one numeric parameter (R3 §Large and
 * Sensitive Payloads: machine evaluation is deployment policy): a call whose `parameter` exceeds
 * the ceiling — the mission's `limits[parameter].max`, else `max` — is denied without asking the
 * person, with the reason audited. Anything else falls through (the person decides).
 *
 * @example
 * ```ts
 * createPersonServer({ …, policy: perCallCeiling({ parameter: 'amount' }) })
 * ```
 */
export function perCallCeiling(o: { readonly parameter: string; readonly max?: number }): PolicyHook {
  return (request) => {
    if (request.r3?.perCall !== true) return undefined
    const value = (request.r3.document as { parameters?: Record<string, unknown> }).parameters?.[o.parameter]
    const fromMission = missionMax(request.mission, o.parameter)
    const ceiling = fromMission ?? o.max
    if (typeof value !== 'number' || ceiling === undefined || value <= ceiling) return undefined
    return { decision: 'deny', reason: `${o.parameter} ${value} is above the ${fromMission === undefined ? 'configured' : "mission's"} ceiling of ${ceiling}` }
  }
}
