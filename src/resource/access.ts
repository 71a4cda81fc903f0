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
  | {
      readonly access: 'auth'
      readonly scope: string
      readonly account?: string
      /**
       * The R3 operation this route is (its `operationId` in `r3.operations`). Omitted: the
       * operation declared with this request's method and path template, if any. A route with an
       * operation is enforced by R3 claims and per-call approval (R3 §Resource Enforcement).
       */
      readonly operation?: string
    }
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
  /**
   * Present when this invocation runs under a per-call grant (R3 §Per-Call Proposals): the
   * proposal's hash and the per-call auth token's `jti`. It runs once; its response is retained.
   */
  readonly perCall?: { readonly r3_s256: string; readonly jti: string }
}

/**
 * The resource-wide policy's verdict. Asking the person to approve one call is an R3 per-call
 * proposal: declare the operation in `r3.operations` with a `perCall` decider.
 */
export type PolicyDecision =
  | { readonly decision: 'grant' }
  /** Refused: `403` with problem `denied` (no `Signature-Error`). */
  | { readonly decision: 'deny'; readonly detail?: string }

/** What the policy hook sees: the verified request. */
export interface PolicyInput {
  readonly method: string
  readonly path: string
  /** The JSON body, parsed, when the request had one; `undefined` otherwise. */
  readonly body: unknown
  readonly access: ResourceAccess
}

/** A resource-wide policy, run on every call once its requirement is met. */
export type Policy = (input: PolicyInput) => PolicyDecision | Promise<PolicyDecision>
