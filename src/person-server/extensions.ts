/**
 * Extensions: endpoints a deployment (or a bridge such as `'aauth-kit/bridges/keycloak'`) mounts
 * beside the Person Server's AAuth endpoints, sharing its store, keys, clock and agent
 * authentication.
 *
 * @module
 */

import type { Hono } from 'hono'
import type { AgentAuthenticator } from './agent-requests.js'
import type { PsContext } from './context.js'

/** What an extension gets to build its routes. */
export interface ExtensionHelpers {
  /** The PS's shared dependencies (store, keys, issuer, clock, options). */
  readonly ctx: PsContext
  /**
   * Verifies a signed agent request exactly as the AAuth endpoints do (RFC 9421 profile, body
   * covered, an agent token in `Signature-Key`, revocation, replay): use
   * {@link AgentAuthenticator.authenticateRaw} for bodies that are not JSON.
   */
  readonly agents: AgentAuthenticator
  /** Maps a failure to the PS's error response (problem details; `500` without detail otherwise). */
  errorResponse(err: unknown): Response
}

/** An endpoint (or several) mounted on the Person Server. */
export interface PersonServerExtension {
  /** A short identifier, e.g. `'token-exchange'`. */
  readonly id: string
  /** Members added to the PS metadata document, e.g. `{ token_exchange_endpoint: … }`. */
  metadata?(issuer: string): Readonly<Record<string, unknown>>
  /** Mounts the routes. Called once, after the AAuth endpoints. */
  mount(app: Hono, helpers: ExtensionHelpers): void
}
