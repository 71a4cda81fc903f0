/**
 * What the person's web pages (consent, dashboard) may do, as one service the Person Server
 * implements and `web/` calls (main draft §User Interaction, §Consent Presentation, §Clarification
 * Chat, §Token Revocation). The pages authenticate the person first (CHECKLIST PS-CON-01); every
 * method takes the authenticated person's id and refuses requests that are not theirs.
 *
 * @module
 */

import type { AgentBinding, Grant, PendingRecord, RevocationOutcome } from './store/types.js'

/** Why a consent action was refused. */
export type ConsentErrorCode =
  /** No such request, or the code is unknown or already used. */
  | 'not_found'
  /** The request (or the agent) belongs to another person. */
  | 'not_yours'
  /** The request is no longer open (decided, cancelled, expired, revoked). */
  | 'closed'
  /** The clarification round limit was reached (main draft §Clarification Limits). */
  | 'clarification_limit'
  /** The input is not acceptable (empty question, unknown scope…). */
  | 'bad_input'

/** A refused consent action; the pages show `message` to the person. */
export class ConsentError extends Error {
  readonly code: ConsentErrorCode
  constructor(code: ConsentErrorCode, message: string) {
    super(message)
    this.code = code
    this.name = 'ConsentError'
  }
}

/** How long an approval is remembered. */
export type RememberChoice = 'once' | 'day' | 'month' | 'always'

/** The person's decision on a request. */
export interface ConsentDecision {
  readonly approve: boolean
  /** Approve-and-remember: keep the grant for later requests. Default `once`. */
  readonly remember?: RememberChoice
  /**
   * The request's `updatedAt` as the person saw it. An approval is refused (`closed`) when the
   * request changed since (an agent's `updated_request`). The pages always send it.
   */
  readonly seen?: number
  /** Approving a mission proposal: what the person changed (main draft §Mission Creation). */
  readonly mission?: MissionChoices
}

/** How long an approved mission runs: no `expires_at`, one day, or 30 days. */
export type MissionExpiry = 'none' | 'day' | 'month'

/**
 * The person's changes to a mission proposal on approval: the PS may change the description and
 * reduce the tools (main draft §Mission Creation, §Mission Identifier). Omitted members keep the
 * proposal's.
 */
export interface MissionChoices {
  /** The description as the person edited it (Markdown). */
  readonly description?: string
  /** The names of the proposed tools to keep. */
  readonly tools?: readonly string[]
  /** The proposed resources to keep. */
  readonly resources?: readonly string[]
  /** Default `none`. */
  readonly expiry?: MissionExpiry
}

/** The outcome of a revocation the person started (main draft §Revocation Response: a PS MAY report it per recipient). */
export interface RevocationReport {
  /** How many issued tokens were revoked. */
  readonly tokens: number
  readonly outcomes: readonly RevocationOutcome[]
}

/** The operations behind the person's pages. */
export interface ConsentService {
  /** The open request an interaction code names (codes are compared normalised). */
  findByCode(code: string): Promise<PendingRecord | undefined>
  /** A request by id (any state), only if it is this person's or still unassigned. */
  get(id: string, personId: string): Promise<PendingRecord>
  /**
   * The person arrived at the request: it becomes `interacting` (the agent's polls say so), the
   * code is consumed, and a request from a new agent is assigned to this person.
   *
   * @throws {ConsentError} `not_found`, `not_yours` (the agent is bound to someone else), `closed`.
   */
  open(id: string, personId: string): Promise<PendingRecord>
  /** Approve or deny. @throws {ConsentError} */
  decide(id: string, personId: string, decision: ConsentDecision): Promise<PendingRecord>
  /** Ask the agent a clarification question (Markdown). @throws {ConsentError} `clarification_limit`. */
  ask(id: string, personId: string, question: string): Promise<PendingRecord>
  /** Answer an interaction-endpoint `question`. @throws {ConsentError} */
  answer(id: string, personId: string, answer: string): Promise<PendingRecord>
  /** Open requests waiting for this person. */
  waiting(personId: string): Promise<PendingRecord[]>
  /** The person's agents. */
  agents(personId: string): Promise<AgentBinding[]>
  /** The person's grants, revoked included. */
  grants(personId: string): Promise<Grant[]>
  /** Revokes one grant and the tokens issued under it, at their resources. @throws {ConsentError} */
  revokeGrant(personId: string, grantId: string): Promise<RevocationReport>
  /**
   * Revokes an agent's binding, all its grants, and every token issued to it or its sub-agents, at
   * their resources. @throws {ConsentError}
   */
  revokeAgent(personId: string, agentIss: string, agentSub: string): Promise<RevocationReport>
}
