/**
 * aauth-kit resource: the framework-neutral core that verifies agents' signed requests and
 * answers with the draft's challenges, its stores, and session tokens. The Hono and Express
 * adapters live at `aauth-kit/hono` and `aauth-kit/express`.
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

export * from './access.js'
export * from './core.js'
export * from './revocation.js'
export * from './session-tokens.js'
export * from './store.js'
export * from './redis-store.js'
export * from './r3.js'
export * from './intermediary.js'
export type { ChallengeBinding, HeldOutcome } from './per-call.js'
export * from './per-call-store.js'
