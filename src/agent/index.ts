/**
 * aauth-kit agent: keys, the agent provider, enrollment, and the signed fetch client.
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

export * from './key-file.js'
export * from './key-ring.js'
export * from './provider.js'
export * from './enrollment-client.js'
export * from './errors.js'
export * from './agent-credentials.js'
export * from './signed-transport.js'
export * from './deferred-poller.js'
export * from './token-store.js'
export * from './person-server-client.js'
export * from './client.js'
export * from './missions.js'
export * from './sub-agents.js'
