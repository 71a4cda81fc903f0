/**
 * `aauth-kit/bridges/spiffe`: agents attested by SPIFFE. A workload fetches its SVIDs from the
 * SPIFFE Workload API, generates its own Ed25519 AAuth key, and enrols at an agent provider that
 * validates the SVID against the trust bundle of its trust domain, maps the SPIFFE ID to an agent
 * name and issues agent tokens carrying the SPIFFE ID (`spiffe_id`).
 *
 * `@grpc/grpc-js` and `@grpc/proto-loader` are optional peer dependencies, needed only by the
 * Workload API client.
 *
 * @module
 */

export * from './types.js'
export * from './spiffe-id.js'
export * from './bundle.js'
export * from './x509-svid.js'
export * from './jwt-svid.js'
export * from './workload-api.js'
export * from './attestation.js'
export * from './agent.js'
