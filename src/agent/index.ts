/**
 * aauth-kit agent side: keys, the agent provider and (next) the signing client.
 *
 * Exported from `'aauth-kit/agent'`.
 *
 * @module
 */

export * from './key-file.js'
export * from './key-ring.js'
export * from './provider.js'
export * from './enrollment-client.js'
