/**
 * aauth-kit protocol library: the shared AAuth primitives every component builds on.
 *
 * Exported from `'aauth-kit'` and `'aauth-kit/protocol'`.
 *
 * @module
 */

export * from './errors.js'
export * from './identifiers.js'
export * from './crypto.js'
export * from './jwk.js'
export * from './signature-key.js'
export * from './signature-input.js'
export * from './signature-base.js'
export * from './digest.js'
export * from './signing.js'
export * from './verification.js'
export * from './request-verifier.js'
export * from './egress.js'
export * from './metadata.js'
export * from './jwks.js'
export * from './tokens/common.js'
export * from './tokens/agent-token.js'
export * from './tokens/person-token.js'
export * from './tokens/resource-token.js'
export * from './tokens/auth-token.js'
export * from './aauth-requirement.js'
export * from './aauth-capabilities.js'
export * from './aauth-access.js'
export * from './signature-error.js'
export * from './deferred.js'
export * from './interaction-code.js'
export * from './jkt-jwt.js'
export * from './server-request.js'
export * from './r3.js'
