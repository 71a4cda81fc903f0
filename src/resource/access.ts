/**
 * What a route requires and what the handler learns (main draft §Resource Access Modes,
 * §Resource Access; CHECKLIST RES-ID, RES-PI, RES-AUTH, RES-RM).
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

import type { AgentTokenClaims, AuthTokenClaims, PersonTokenClaims } from '../protocol/index.js'
import type { SessionClaims } from './session-tokens.js'

/**
 * A route's requirement, by access mode:
 *
 * - `agent`: agent identity — a valid signature with an agent token (§Agent Token Required);
 * - `person`: person identity — a person token for this resource (or an auth token, which
 *   identifies the person too) (§Person Token Required);
 * - `auth`: authorization — an auth token whose scope covers `scope`; anything less is challenged
 *   with a resource token (§Auth Token Required);
 * - `session`: resource-managed — a session token the resource issued (`AAuth-Access`), presented
 *   as `Authorization: AAuth …` under the signature (§AAuth-Access Response Header).
 */
export type RouteRequirement =
  | { readonly access: 'agent' }
  | { readonly access: 'person' }
  | { readonly access: 'auth'; readonly scope: string; readonly account?: string }
  | { readonly access: 'session' }

/** The person a request acts for: `(ps, sub)` is the identifier; never match `sub` across PSes. */
export interface PersonRef {
  /** The person server whose namespace `sub` is in. */
  readonly ps: string
  /** Directed identifier: stable for this person at this resource. */
  readonly sub: string
  readonly tenant?: string
}

/** What the middleware hands the route handler once the request is verified and authorized. */
export interface ResourceAccess {
  /** The requirement the request satisfied. */
  readonly mode: RouteRequirement['access']
  /** RFC 7638 thumbprint of the key that signed the request. */
  readonly agentJkt: string
  /** Present when the request carried an agent token: the verified agent identifier and its provider. */
  readonly agent?: { readonly id: string; readonly provider: string; readonly ps?: string; readonly parent?: string }
  /** Present with a person or auth token. */
  readonly person?: PersonRef
  /** Granted scope values (auth tokens; empty otherwise). */
  readonly scopes: ReadonlySet<string>
  readonly account?: string
  /** `mission_s256` of the presented token. */
  readonly mission?: string
  /** The verified token. */
  readonly token:
    | { readonly type: 'aa-agent+jwt'; readonly claims: AgentTokenClaims; readonly raw: string }
    | { readonly type: 'aa-person+jwt'; readonly claims: PersonTokenClaims; readonly raw: string }
    | { readonly type: 'aa-auth+jwt'; readonly claims: AuthTokenClaims; readonly raw: string }
  /** The session, when an `AAuth-Access` token came with the request. */
  readonly session?: SessionClaims
}

/** The per-call policy's verdict (where R3 per-call step-up plugs in). */
export type PolicyDecision =
  | { readonly decision: 'grant' }
  /** Refused: `403` with problem `denied` (no `Signature-Error`). */
  | { readonly decision: 'deny'; readonly detail?: string }
  /**
   * The person must approve this exact call: answered `401 requirement=auth-token` with a
   * resource token carrying `scope` and `claims` (the parameters to bind).
   */
  | { readonly decision: 'requires-approval'; readonly scope?: string; readonly claims?: Record<string, unknown> }

/** What the policy hook sees: the verified request. */
export interface PolicyInput {
  readonly method: string
  readonly path: string
  /** The JSON body, parsed, when the request had one; `undefined` otherwise. */
  readonly body: unknown
  readonly access: ResourceAccess
}

/** A per-call policy. */
export type Policy = (input: PolicyInput) => PolicyDecision | Promise<PolicyDecision>
