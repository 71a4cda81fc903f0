/**
 * `aauth-kit/person-server`: the Person Server (main draft §Person Server) — person and auth
 * token endpoints, consent pages, deferred requests, clarification, permission, audit and
 * interaction endpoints, revocation with its cascade, and a durable store (SQLite by default,
 * PostgreSQL for several instances).
 *
 * @example
 * ```ts
 * import { createPersonServer, SqliteStore } from 'aauth-kit/person-server'
 * import { KeyRing } from 'aauth-kit/agent'
 * const store = await SqliteStore.open({ filename: 'ps.sqlite' })
 * const ps = await createPersonServer({ issuer: 'https://ps.example', keys: await KeyRing.create(), store })
 * ```
 *
 * @module
 */

export { createPersonServer, errorResponse, type PersonServer } from './server.js'
export type { PersonServerOptions, PsContext } from './context.js'
export { ConsentError, type ConsentDecision, type ConsentErrorCode, type ConsentService, type MissionChoices, type MissionExpiry, type RememberChoice, type RevocationReport } from './consent.js'
export { readMissionLog, type AcceptedUpdate, type MissionDetail, type MissionLogItem, type MissionService, type MissionTool } from './missions.js'
export { perCallCeiling, type OrganizationPolicy, type PolicyHook, type PolicyRequest, type PolicyVerdict } from './policy.js'
export { directedSubject } from './directed-id.js'
export type { ExtensionHelpers, PersonServerExtension } from './extensions.js'
export type { AgentAuthenticator, AgentRequest, RawAgentRequest } from './agent-requests.js'
export { safeNext, type LoginHelpers, type LoginMethod } from './web/index.js'
export { DELEGATION_EVENT, type SubAgentOptions } from './delegation.js'
export { PLATFORMS } from './token-request.js'
export { hashPassword, verifyPassword } from './web/password.js'
export * from './store/index.js'
