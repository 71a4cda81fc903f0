/**
 * The shapes the SPIFFE bridge passes around: SVIDs as the Workload API delivers them, trust
 * bundles, and the errors an agent provider answers when an attestation fails.
 *
 * SPIFFE standards used (spiffe/spiffe `standards/`): SPIFFE-ID, X509-SVID, JWT-SVID,
 * SPIFFE_Trust_Domain_and_Bundle, SPIFFE_Workload_API.
 *
 * @module
 */

import type { X509Certificate } from 'node:crypto'
import { ProblemError } from '../../protocol/index.js'

/** An X.509-SVID with its private key, as FetchX509SVID delivers it. */
export interface X509Svid {
  /** The SPIFFE ID in the leaf's single URI SAN. */
  readonly spiffeId: string
  /** DER certificates, leaf first, then intermediates (not the trust anchor). */
  readonly certChain: readonly Uint8Array[]
  /** The leaf's private key, PKCS#8 DER. */
  readonly privateKey: Uint8Array
  /** The X.509 authorities of the SVID's own trust domain (DER). */
  readonly bundle: readonly Uint8Array[]
  /** The leaf's `notAfter`, epoch milliseconds. */
  readonly expiresAt: number
  /** The operator's hint (e.g. `internal`), when given. */
  readonly hint?: string
}

/** A JWT-SVID, as FetchJWTSVID delivers it. */
export interface JwtSvid {
  readonly spiffeId: string
  /** The compact JWS. */
  readonly token: string
  /** `exp`, epoch milliseconds. */
  readonly expiresAt: number
  readonly hint?: string
}

/**
 * Where a workload gets its current SVIDs: the Workload API client, or anything else that keeps
 * them fresh. Implementations return an SVID valid now (rotating under the hood).
 */
export interface SvidSource {
  /** The current X.509-SVID (the first one the Workload API lists, or the one chosen by hint). */
  x509Svid(): Promise<X509Svid>
  /** A JWT-SVID for `audience`, fetched or reused while it has enough life left. */
  jwtSvid(audience: string): Promise<JwtSvid>
  /** Stops watching and releases the connection. */
  close(): void
}

/** The trust material of one trust domain (SPIFFE bundle: a JWKS with `use` per key). */
export interface TrustBundle {
  /** The trust domain name, e.g. `demo.example.com`. */
  readonly trustDomain: string
  /** X.509 authorities (keys with `use: x509-svid`, one certificate each). */
  readonly x509Authorities: readonly X509Certificate[]
  /** JWT authorities (keys with `use: jwt-svid`), each with its `kid`. */
  readonly jwtAuthorities: readonly (JsonWebKey & { readonly kid: string })[]
  /** `spiffe_sequence`, when present. */
  readonly sequence?: number
  /** `spiffe_refresh_hint` in seconds, when present. */
  readonly refreshHintSec?: number
}

/** Looks up the bundle of a trust domain; `undefined` when that trust domain is not trusted. */
export type TrustBundleSource = (trustDomain: string) => TrustBundle | undefined | Promise<TrustBundle | undefined>

/** Why an SVID was refused. */
export type SvidErrorReason =
  /** Malformed: not an SVID at all, bad SPIFFE ID, wrong number of URI SANs, a CA as leaf, a bad signature. */
  | 'invalid_svid'
  /** Outside its validity window. */
  | 'expired_svid'
  /** Its trust domain has no bundle here. */
  | 'untrusted_trust_domain'
  /** JWT-SVID whose `aud` does not name this server. */
  | 'invalid_audience'
  /** Valid, but no agent is configured for its SPIFFE ID. */
  | 'unmapped_spiffe_id'
  /** A JWT-SVID algorithm SPIFFE does not allow (e.g. EdDSA, HS256, none). */
  | 'unsupported_algorithm'

/**
 * An SVID was refused. At an agent provider it answers `403` (`invalid_request` `400` when no
 * SVID was presented at all) with `error: "denied"` and the exact `svid_error`.
 */
export class SvidError extends ProblemError {
  readonly reason: SvidErrorReason
  /** Added to the problem body by the agent provider. */
  readonly body: { readonly svid_error: SvidErrorReason }

  constructor(reason: SvidErrorReason, message: string, options?: { cause?: unknown }) {
    super('denied', message, options)
    this.name = 'SvidError'
    this.reason = reason
    this.body = { svid_error: reason }
  }
}
