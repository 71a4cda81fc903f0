/**
 * The Person Server's durable state behind one interface (design.md "Stores are interfaces"),
 * with two real backends: SQLite through better-sqlite3 (the embedded default, one file, WAL) and
 * PostgreSQL (several PS instances behind a load balancer).
 *
 * Everything that grants access — a binding, a grant, an issued-token record, the audit event that
 * says so, the resolution of a pending request — goes through {@link PersonServerStore.commit},
 * one atomic transaction that is durable before the promise resolves; the HTTP layer only answers
 * after it. Reads are plain methods.
 *
 * Times are epoch **milliseconds** everywhere in the store (JWT `exp` values are converted at the
 * boundary).
 *
 * @module
 */

/** A person the PS represents. */
export interface PersonRecord {
  readonly id: string
  /** Login name, unique. */
  readonly username: string
  readonly displayName: string
  /** scrypt hash (see `web/password.ts`); absent for people who log in elsewhere (OIDC). */
  readonly passwordHash?: string
  readonly email?: string
  /**
   * Organisation mode: the scope values this person may delegate (roles mapped to scopes). `undefined`
   * means "not restricted" (a personal PS).
   */
  readonly permissions?: readonly string[]
  /** `tenant` claim for organisation deployments. */
  readonly tenant?: string
  readonly createdAt: number
}

/**
 * The agent–person binding (main draft §Agent-Person Binding, CHECKLIST PS-05): each agent,
 * recognised by `(agent token iss, sub)`, acts for exactly one person.
 */
export interface AgentBinding {
  /** The agent provider (`iss` of the agent token). */
  readonly agentIss: string
  /** The agent identifier `aauth:local@domain` (`sub` of the agent token). */
  readonly agentSub: string
  readonly personId: string
  /** The agent provider's display name and logo, from its metadata, at binding time. */
  readonly providerName?: string
  readonly providerLogoUri?: string
  /** Agent-attested, shown as such. */
  readonly platform?: string
  readonly device?: string
  readonly createdAt: number
  readonly revokedAt?: number
}

/**
 * A remembered consent: `person` let `agent` use `scope` at `resource` until `expiresAt`. One row per
 * scope value, so incremental consent is a set difference. The empty scope `''` is the consent
 * behind person tokens: "this agent may act at this resource as me" (§Person Token Endpoint).
 */
export interface Grant {
  readonly id: string
  readonly personId: string
  readonly agentIss: string
  readonly agentSub: string
  readonly resource: string
  readonly scope: string
  /** Granted under this mission only, when set. */
  readonly missionS256?: string
  readonly createdAt: number
  /** No expiry when absent. */
  readonly expiresAt?: number
  readonly revokedAt?: number
}

/** A person or auth token this PS issued (§Person Token Endpoint "Retention", §Revocation Cascade "Records"). */
export interface IssuedToken {
  readonly jti: string
  readonly kind: 'person' | 'auth'
  readonly personId: string
  readonly agentIss: string
  /** The agent the token was issued to (for a sub-agent, the sub-agent's identifier). */
  readonly agentSub: string
  /** The parent agent, for tokens issued to a sub-agent through its parent. */
  readonly parentAgent?: string
  /** `aud`: the resource. */
  readonly resource: string
  /** The directed `sub` in the token. */
  readonly sub: string
  readonly scope?: string
  readonly missionS256?: string
  /** Auth tokens: the `jti` of the presented token it was issued against. */
  readonly presentedJti?: string
  /** Person tokens issued with an `upstream_token`: that token's `(iss, jti)`. */
  readonly upstreamIss?: string
  readonly upstreamJti?: string
  readonly issuedAt: number
  readonly expiresAt: number
  readonly revokedAt?: number
}

/** An agent token the PS accepted (§Revocation Cascade "Records", CHECKLIST REV-15). */
export interface AgentTokenRecord {
  readonly iss: string
  readonly jti: string
  readonly sub: string
  readonly expiresAt: number
}

/** A revocation this PS received: an agent token from its AP, a resource token from its resource. */
export interface ReceivedRevocation {
  /** The verified caller (`id` of its `jwks_uri` signature). */
  readonly iss: string
  readonly jti: string
  /** The revoked token's own `exp` (ms): the record may go after it plus skew. */
  readonly expiresAt: number
  readonly receivedAt: number
}

/** Where a downstream revocation ended (§Revocation Response). */
export type RevocationOutcomeKind = 'revoked' | 'revocation_unsupported' | 'revocation_unavailable'

/** One downstream revocation attempt of an issued token. */
export interface RevocationOutcome {
  readonly jti: string
  /** The resource called. */
  readonly recipient: string
  readonly outcome: RevocationOutcomeKind
  readonly at: number
}

/** The states of a deferred request (main draft §Deferred Responses, §Polling Error Codes). */
export type PendingState =
  | 'pending'
  | 'interacting'
  | 'clarification'
  | 'granted'
  | 'denied'
  | 'abandoned'
  | 'expired'
  | 'cancelled'
  | 'revoked'
  | 'failed'

/** States a pending request can still leave. */
export const OPEN_PENDING_STATES: readonly PendingState[] = ['pending', 'interacting', 'clarification']

/** What kind of request is waiting. */
export type PendingKind = 'person_token' | 'auth_token' | 'permission' | 'question' | 'relay' | 'mission'

/** One line of a clarification chat (main draft §Clarification Chat). */
export interface ClarificationTurn {
  readonly from: 'person' | 'agent'
  /** Markdown; untrusted when from the agent. */
  readonly text: string
  readonly at: number
}

/**
 * What the consent page shows (main draft §Consent Presentation): resource-asserted and
 * agent-asserted content kept apart.
 */
export interface ConsentView {
  readonly kind: PendingKind
  readonly agent: {
    readonly iss: string
    readonly sub: string
    readonly parentAgent?: string
    readonly providerName?: string
    readonly providerLogoUri?: string
    /** Agent-asserted. */
    readonly platform?: string
    /** Agent-asserted. */
    readonly device?: string
  }
  /** Resource-asserted (its metadata), when the request is for a resource. */
  readonly resource?: {
    readonly id: string
    readonly name?: string
    readonly description?: string
    readonly logoUri?: string
    readonly scopeDescriptions?: Readonly<Record<string, string>>
    readonly accessMode?: string
  }
  /** Every scope requested. */
  readonly scopes?: readonly string[]
  /** The scopes not yet granted (incremental consent): what the person is asked about. */
  readonly newScopes?: readonly string[]
  readonly account?: string
  readonly missionS256?: string
  /**
   * The mission the request is under, as approved plus every accepted update, oldest first
   * (main draft §Incremental Consent, CHECKLIST PS-CON-06): the whole picture, not only the hash.
   */
  readonly mission?: { readonly description: string; readonly updates: readonly string[] }
  /** Mission endpoint requests (kind `mission`), agent-asserted (main draft §Mission). */
  readonly missionRequest?: MissionRequestView
  /** Agent-asserted Markdown. */
  readonly justification?: string
  /** Permission endpoint requests. */
  readonly permission?: { readonly action: string; readonly description?: string; readonly parameters?: unknown }
  /** Interaction endpoint `question`. */
  readonly question?: string
  /** Interaction endpoint `interaction`/`payment`: what the person is sent to. */
  readonly relay?: { readonly type: 'interaction' | 'payment'; readonly url?: string; readonly code?: string; readonly description?: string }
  /** Resource-asserted per-call details (R3 `display`), e.g. amount and refundability. */
  readonly details?: Readonly<Record<string, unknown>>
  /** The request is for one call (an R3 per-call proposal): approved once, never remembered. */
  readonly perCall?: boolean
}

/** What a mission endpoint request asks the person (main draft §Mission Creation, §Mission Update, §Mission Completion). */
export interface MissionRequestView {
  readonly action: 'propose' | 'update' | 'completion'
  /** Proposal: the proposed description; update: what changed (Markdown). */
  readonly description?: string
  /** Proposal: the tools the agent wants. */
  readonly tools?: readonly { readonly name: string; readonly description: string }[]
  /** Proposal: the resources it expects to access (server identifiers). */
  readonly resources?: readonly string[]
  /** Proposal: structured ceilings (e.g. `amount`), kept in the approved blob. */
  readonly limits?: Readonly<Record<string, { readonly max: number; readonly currency?: string }>>
  /** Completion: what the agent says it accomplished (Markdown). */
  readonly summary?: string
}

/** A deferred request and everything needed to finish it. */
export interface PendingRecord {
  /** Unguessable; the pending URL is `/pending/{id}`. */
  readonly id: string
  readonly kind: PendingKind
  /** The agent that started it; only it may poll (`404` to anyone else). */
  readonly agentIss: string
  readonly agentSub: string
  /** The person asked, once known (a new agent is bound by the person who approves). */
  readonly personId?: string
  /** The interaction code, normalised (CODE-01..07); single use. */
  readonly code?: string
  readonly state: PendingState
  readonly view: ConsentView
  /** Internal data to finish the request on approval (tokens, claims, bounds). Opaque to the store. */
  readonly work: Readonly<Record<string, unknown>>
  /** The terminal answer: HTTP status and JSON body, once resolved. */
  readonly result?: { readonly status: number; readonly body: Readonly<Record<string, unknown>> }
  /** The clarification chat, oldest first. */
  readonly chat?: readonly ClarificationTurn[]
  /** `(iss, jti)` of the resource token the request was started for (ended on its revocation). */
  readonly resourceTokenIss?: string
  readonly resourceTokenJti?: string
  readonly createdAt: number
  readonly updatedAt: number
  readonly expiresAt: number
}

/** An audit event (append-only). */
export interface AuditEvent {
  /** Assigned by the store, increasing. */
  readonly seq?: number
  readonly at: number
  /**
   * e.g. `agent.bound`, `person_token.issued`, `auth_token.issued`, `grant.created`,
   * `grant.revoked`, `agent.revoked`, `request.denied`, `request.approved`, `token.revoked`,
   * `permission.decided`, `audit.recorded`, `interaction.relayed`.
   */
  readonly type: string
  readonly personId?: string
  readonly agentSub?: string
  readonly parentAgent?: string
  readonly resource?: string
  readonly scope?: string
  readonly missionS256?: string
  /** `grant` | `deny` | `ask` | `revoke` … */
  readonly decision?: string
  readonly reason?: string
  readonly detail?: Readonly<Record<string, unknown>>
}

/** Filters of {@link PersonServerStore.queryAudit}; all optional, combined with AND. */
export interface AuditQuery {
  readonly personId?: string
  /** The agent, or a parent whose sub-agents' events are included too. */
  readonly agentSub?: string
  readonly missionS256?: string
  /** Inclusive, epoch ms. */
  readonly from?: number
  /** Exclusive, epoch ms. */
  readonly to?: number
  /** Only events with `seq` greater than this (paging forward). */
  readonly afterSeq?: number
  /** Only events with `seq` less than this (paging backward, with `order: 'desc'`). */
  readonly beforeSeq?: number
  /** `asc` (default, oldest first) or `desc` (the latest first). */
  readonly order?: 'asc' | 'desc'
  /** Default 100, at most 1000. */
  readonly limit?: number
}

/** A mission (main draft §Mission); the mission endpoint of [P5] fills these. */
export interface MissionRecord {
  readonly s256: string
  readonly agentIss: string
  readonly agentSub: string
  readonly personId: string
  readonly status: 'active' | 'terminated'
  readonly terminationReason?: string
  /** The approved mission JSON, exactly as hashed. */
  readonly blob: string
  /**
   * The capabilities the agent declared with its proposal, captured at approval: used for requests
   * under the mission that send none (CHECKLIST PS-TOK-10, PS-PT-12). Not part of the blob.
   */
  readonly capabilities?: readonly string[]
  readonly createdAt: number
  readonly expiresAt?: number
}

/** One mission log entry, in order. */
export interface MissionLogEntry {
  readonly seq?: number
  readonly s256: string
  readonly at: number
  readonly type: string
  readonly detail: Readonly<Record<string, unknown>>
}

/**
 * One atomic unit of work. Every member is optional; the backend applies them in one transaction
 * in the order listed, and when `pending.from` does not match the current state nothing at all is
 * written and `commit` resolves `{ applied: false }` (so two approvals of one request cannot both
 * issue).
 */
export interface StoreBatch {
  /**
   * Compare-and-set of a pending request: only when its state is one of `from` (and, with `at`,
   * its `updatedAt` is still `at`: the version the person saw).
   */
  readonly pending?: { readonly id: string; readonly from: readonly PendingState[]; readonly at?: number; readonly patch: PendingPatch }
  /** Insert a new pending request. */
  readonly newPending?: PendingRecord
  readonly persons?: readonly PersonRecord[]
  /**
   * Insert, or replace a revoked binding or one of the same person. An active binding to another
   * person is never replaced: the whole batch is then not applied (`{ applied: false }`).
   */
  readonly bindings?: readonly AgentBinding[]
  /** Mark bindings revoked. */
  readonly revokeBindings?: readonly { readonly agentIss: string; readonly agentSub: string; readonly at: number }[]
  /** Insert; an active grant for the same (person, agent, resource, scope, mission) is replaced. */
  readonly grants?: readonly Grant[]
  readonly revokeGrants?: readonly { readonly id: string; readonly at: number }[]
  /** Directed identifiers first used (insert or ignore). */
  readonly subjects?: readonly { readonly personId: string; readonly resource: string; readonly sub: string }[]
  readonly issued?: readonly IssuedToken[]
  readonly revokeIssued?: readonly { readonly jti: string; readonly at: number }[]
  /** Insert or update; a terminated mission is never changed again (main draft §Mission Management). */
  readonly missions?: readonly MissionRecord[]
  readonly missionLog?: readonly MissionLogEntry[]
  readonly audit?: readonly AuditEvent[]
}

/** What a pending request can change. */
export interface PendingPatch {
  readonly state?: PendingState
  readonly personId?: string
  readonly result?: { readonly status: number; readonly body: Readonly<Record<string, unknown>> }
  readonly chat?: readonly ClarificationTurn[]
  readonly view?: ConsentView
  readonly work?: Readonly<Record<string, unknown>>
  /** Consumes the interaction code (set to `null`). */
  readonly code?: null
  /** The resource token the request now stands for (an updated request). */
  readonly resourceTokenIss?: string
  readonly resourceTokenJti?: string
  readonly updatedAt: number
  readonly expiresAt?: number
}

/** The Person Server store. Every method is safe to call concurrently. */
export interface PersonServerStore {
  /** Creates or upgrades the schema (versioned migrations); idempotent, safe from several instances. */
  migrate(): Promise<void>
  /** The applied schema version. */
  schemaVersion(): Promise<number>
  close(): Promise<void>

  /** The atomic write. Resolves once the transaction is durable. */
  commit(batch: StoreBatch): Promise<{ readonly applied: boolean }>

  /** A value stored once (e.g. the PS secret for directed identifiers): returns the existing value if any, else stores `value`. */
  setting(name: string, value: string): Promise<string>

  getPerson(id: string): Promise<PersonRecord | undefined>
  getPersonByUsername(username: string): Promise<PersonRecord | undefined>
  listPersons(): Promise<PersonRecord[]>

  /** The binding of an agent, revoked or not. */
  getBinding(agentIss: string, agentSub: string): Promise<AgentBinding | undefined>
  /** All bindings of a person, newest first. */
  listBindings(personId: string): Promise<AgentBinding[]>

  /** Active (not revoked, not expired at `now`) grants of (person, agent, resource). */
  activeGrants(personId: string, agentIss: string, agentSub: string, resource: string, now: number): Promise<Grant[]>
  getGrant(id: string): Promise<Grant | undefined>
  /** All grants of a person (revoked included), newest first. */
  listGrants(personId: string): Promise<Grant[]>

  /** The person a directed identifier was minted for at `resource`. */
  personForSubject(resource: string, sub: string): Promise<string | undefined>

  getIssued(jti: string): Promise<IssuedToken | undefined>
  /**
   * Unrevoked, unexpired tokens issued to an agent (as `agentSub`, or as the `parentAgent` of a
   * sub-agent), optionally only for one person and one resource.
   */
  liveIssued(filter: { readonly agentIss: string; readonly agentSub: string; readonly personId?: string; readonly resource?: string; readonly now: number }): Promise<IssuedToken[]>
  /**
   * Unrevoked, unexpired tokens issued on chained requests whose `upstream_token` had one of these
   * `jti`s (§Call Chaining; the revocation cascade follows the chain), oldest first.
   */
  issuedFromUpstream(upstreamJtis: readonly string[], now: number): Promise<IssuedToken[]>

  /** Records an accepted agent token (insert or ignore). */
  noteAgentToken(rec: AgentTokenRecord): Promise<void>
  getAgentToken(iss: string, jti: string): Promise<AgentTokenRecord | undefined>

  /** Records a received revocation; `false` when `(iss, jti)` was already recorded. */
  addRevocation(rec: ReceivedRevocation): Promise<boolean>
  isRevoked(iss: string, jti: string): Promise<boolean>
  /** Live revocation records held for one issuer (per-issuer bound). */
  countRevocations(iss: string, now: number): Promise<number>

  /** Records downstream revocation outcomes (the latest per (jti, recipient) wins). */
  recordOutcomes(outcomes: readonly RevocationOutcome[]): Promise<void>
  outcomes(jti: string): Promise<RevocationOutcome[]>

  getPending(id: string): Promise<PendingRecord | undefined>
  getPendingByCode(code: string): Promise<PendingRecord | undefined>
  /** Open requests (state in {@link OPEN_PENDING_STATES}) of a person, newest first. */
  openPending(personId: string): Promise<PendingRecord[]>
  /** Open requests started for a resource token; used when the resource revokes it. */
  pendingForResourceToken(iss: string, jti: string): Promise<PendingRecord[]>

  getMission(s256: string): Promise<MissionRecord | undefined>
  /** All missions of a person, newest first. */
  listMissions(personId: string): Promise<MissionRecord[]>
  missionLog(s256: string): Promise<MissionLogEntry[]>

  queryAudit(q: AuditQuery): Promise<AuditEvent[]>

  /** Deletes records past their expiry plus `skewMs` (issued tokens, agent tokens, revocations, closed pending requests). */
  purge(now: number, skewMs: number): Promise<void>
}
