/**
 * Sub-agents on the agent side (main draft §Sub-Agents, §Single-Level Depth, §Parent-Mediated
 * Authorization; CHECKLIST SUB-01..05).
 *
 * A sub-agent never calls the person server. Its parent asks for it, signing with its **own** key
 * and agent token and naming the sub-agent with `subagent_token`; the tokens it gets back are
 * bound to the sub-agent's key. In one process the two meet through a {@link TokenMediator}; across
 * processes the same two calls travel over whatever IPC the platform has.
 *
 * @example
 * ```ts
 * const parent = createAgentClient({ credentials: parentCredentials })
 * const pay = createAgentClient({ credentials: subAgentCredentials, mediator: parentMediator(parent) })
 * await pay.fetch('https://payments.example/charge', { method: 'POST', … }) // the parent asks the PS
 * ```
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

import type { Capability } from '../protocol/index.js'
import type { AgentClient } from './client.js'

/** A sub-agent's request for a person token, carried to its parent. */
export interface MediatedPersonTokenRequest {
  /** The sub-agent's agent token (it carries `parent_agent`). */
  readonly subagentToken: string
  /** The resource the person token is for. */
  readonly resource: string
  readonly mission?: string
  readonly signal?: AbortSignal
}

/** A sub-agent's request for an auth token, carried to its parent. */
export interface MediatedAuthTokenRequest {
  readonly subagentToken: string
  /** The resource token the resource gave the sub-agent (bound to the sub-agent's key). */
  readonly resourceToken: string
  /** What the sub-agent presented to get it: the person token, or its auth token on a step-up. */
  readonly presentedToken: string
  readonly justification?: string
  readonly signal?: AbortSignal
}

/**
 * The parent's side of parent-mediated authorization: each call answers with the PS's JSON
 * (`{person_token, expires_in}` / `{auth_token, expires_in}`), or throws the PS's error.
 */
export interface TokenMediator {
  personToken(request: MediatedPersonTokenRequest): Promise<Record<string, unknown>>
  authToken(request: MediatedAuthTokenRequest): Promise<Record<string, unknown>>
}

/** Options of {@link parentMediator}. */
export interface ParentMediatorOptions {
  /** Capabilities the parent declares on its sub-agents' requests (e.g. `interaction` when it can reach the person). */
  readonly capabilities?: readonly Capability[]
  /**
   * The parent's say before it asks (main draft: it "can refuse, attenuate, or rate-limit"): throw
   * to refuse. Called with the request as the sub-agent made it.
   */
  readonly approve?: (request: MediatedPersonTokenRequest | MediatedAuthTokenRequest) => void | Promise<void>
}

/**
 * A {@link TokenMediator} backed by the parent's agent client: the PS calls go out signed by the
 * parent (SUB-02, SUB-04), with `subagent_token`, to the parent's person server.
 */
export function parentMediator(parent: AgentClient, options: ParentMediatorOptions = {}): TokenMediator {
  const caps = options.capabilities === undefined || options.capabilities.length === 0 ? {} : { capabilities: [...options.capabilities] }
  return {
    async personToken(r) {
      await options.approve?.(r)
      const body = { resource: r.resource, subagent_token: r.subagentToken, ...(r.mission === undefined ? {} : { mission_s256: r.mission }), ...caps }
      return parent.requestToken('person_token_endpoint', body, r.signal === undefined ? {} : { signal: r.signal })
    },
    async authToken(r) {
      await options.approve?.(r)
      const body = {
        resource_token: r.resourceToken,
        presented_token: r.presentedToken,
        subagent_token: r.subagentToken,
        ...(r.justification === undefined ? {} : { justification: r.justification }),
        ...caps,
      }
      return parent.requestToken('auth_token_endpoint', body, r.signal === undefined ? {} : { signal: r.signal })
    },
  }
}
