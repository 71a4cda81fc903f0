/**
 * SPIFFE attestation at an agent provider: the `attest` hook of `createAgentProvider`. A workload
 * proves its SPIFFE ID with a JWT-SVID whose audience is this AP (body member `spiffe_jwt_svid`)
 * or with its X.509-SVID as TLS client certificate; the AP validates it against the trust bundle
 * of the SVID's trust domain, maps the SPIFFE ID to an agent name by configuration and enrols the
 * agent's own Ed25519 key (the SVID cannot carry it: SPIFFE allows no EdDSA). Each agent token
 * carries the SPIFFE ID as `spiffe_id`, and each token request must present a current SVID
 * (`reattest`).
 *
 * Exported from `'aauth-kit/bridges/spiffe'`.
 *
 * @module
 */

import type { AttestationInput, EnrollmentGrant } from '../../agent/provider.js'
import { verifyJwtSvid } from './jwt-svid.js'
import { SvidError, type TrustBundleSource } from './types.js'
import { verifyX509Svid } from './x509-svid.js'

/** The body member carrying a JWT-SVID. */
export const SPIFFE_JWT_SVID_MEMBER = 'spiffe_jwt_svid'
/** The agent token claim carrying the attested SPIFFE ID. */
export const SPIFFE_ID_CLAIM = 'spiffe_id'

/** The agent a SPIFFE ID maps to: its local name, and optionally its person server. */
export type SpiffeAgentMapping = string | { readonly local: string; readonly ps?: string }

/** How SVIDs may be presented. */
export type SpiffeAttestationMethod = 'jwt-svid' | 'x509-svid'

/** Options of {@link spiffeAttestation}. */
export interface SpiffeAttestationOptions {
  /** The trusted trust domains. */
  readonly bundles: TrustBundleSource
  /** The AP's issuer: a JWT-SVID's `aud` must contain it. */
  readonly audience: string
  /**
   * SPIFFE ID → agent, e.g. `{ 'spiffe://demo.example.com/agent/summarizer-tech': 'summarizer-tech' }`,
   * or a function; `undefined` means not mapped.
   */
  readonly agents:
    | Readonly<Record<string, SpiffeAgentMapping>>
    | ((spiffeId: string, trustDomain: string) => SpiffeAgentMapping | undefined | Promise<SpiffeAgentMapping | undefined>)
  /** Accepted presentations. Default both. */
  readonly accept?: readonly SpiffeAttestationMethod[]
  /** Clock, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
}

/**
 * The `attest` hook for `createAgentProvider`.
 *
 * A JWT-SVID in the body is used when present, else the mTLS client certificate chain. With
 * neither, enrolment falls back to enrollment codes (`undefined`) while a token request is refused.
 *
 * @throws {SvidError} with the exact reason (answered `403` with `svid_error`); `unmapped_spiffe_id`
 *   for a valid SVID no agent is configured for.
 * @example
 * ```ts
 * const ap = createAgentProvider({ issuer, keys, attest: spiffeAttestation({
 *   bundles: staticTrustBundles({ 'demo.example.com': bundleJson }),
 *   audience: issuer,
 *   agents: { 'spiffe://demo.example.com/agent/summarizer-tech': 'summarizer-tech' },
 * }) })
 * ```
 */
export function spiffeAttestation(options: SpiffeAttestationOptions): (input: AttestationInput) => Promise<EnrollmentGrant | undefined> {
  const accept = new Set(options.accept ?? ['jwt-svid', 'x509-svid'])
  const verifyOpts = { bundles: options.bundles, ...(options.now === undefined ? {} : { now: options.now }) }
  const lookup = async (spiffeId: string, trustDomain: string): Promise<SpiffeAgentMapping | undefined> => {
    const agents = options.agents
    if (typeof agents === 'function') return agents(spiffeId, trustDomain)
    return Object.hasOwn(agents, spiffeId) ? agents[spiffeId] : undefined
  }
  return async (input) => {
    const jwt = input.body[SPIFFE_JWT_SVID_MEMBER]
    let verified: { spiffeId: string; trustDomain: string } | undefined
    if (jwt !== undefined) {
      if (!accept.has('jwt-svid')) throw new SvidError('invalid_svid', 'this agent provider does not accept JWT-SVIDs')
      if (typeof jwt !== 'string') throw new SvidError('invalid_svid', `${SPIFFE_JWT_SVID_MEMBER} must be a string`)
      verified = await verifyJwtSvid(jwt, { audience: options.audience, ...verifyOpts })
    } else if (input.peerCertificates !== undefined && input.peerCertificates.length > 0 && accept.has('x509-svid')) {
      verified = await verifyX509Svid(input.peerCertificates, verifyOpts)
    }
    if (verified === undefined) {
      if (input.phase === 'enroll') return undefined
      throw new SvidError('invalid_svid', `this agent was enrolled by SPIFFE attestation: present a current SVID (${[...accept].join(' or ')}) with each token request`)
    }
    const mapping = await lookup(verified.spiffeId, verified.trustDomain)
    if (mapping === undefined) throw new SvidError('unmapped_spiffe_id', `no agent is configured for ${verified.spiffeId}`)
    const { local, ps } = typeof mapping === 'string' ? { local: mapping, ps: undefined } : mapping
    return { local, ...(ps === undefined ? {} : { ps }), claims: { [SPIFFE_ID_CLAIM]: verified.spiffeId }, reattest: true }
  }
}
