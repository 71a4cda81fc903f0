/**
 * X.509-SVID validation (X509-SVID standard §4 and §5), with `node:crypto`: the leaf is not a CA,
 * has KeyUsage `digitalSignature` and not `keyCertSign`/`cRLSign`, and exactly one URI SAN, a
 * workload SPIFFE ID; the chain (leaf, then intermediates, each a CA allowed to sign certificates)
 * ends at an X.509 authority in the bundle of that SPIFFE ID's trust domain; every signature and
 * every certificate's validity window is checked.
 *
 * Exported from `'aauth-kit/bridges/spiffe'`.
 *
 * @module
 */

import { X509Certificate } from 'node:crypto'
import { requireBundle } from './bundle.js'
import { readCertificateExtensions, type CertificateExtensions } from './der.js'
import { parseWorkloadSpiffeId } from './spiffe-id.js'
import { SvidError, type TrustBundleSource } from './types.js'

/** Longest chain accepted (leaf plus intermediates). */
const MAX_CHAIN = 8

/** Options of {@link verifyX509Svid}. */
export interface VerifyX509SvidOptions {
  readonly bundles: TrustBundleSource
  /** Clock, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
}

/** A validated X.509-SVID. */
export interface VerifiedX509Svid {
  readonly spiffeId: string
  readonly trustDomain: string
  /** The earliest `notAfter` of the chain, epoch milliseconds. */
  readonly expiresAt: number
}

function parse(der: Uint8Array, what: string): { cert: X509Certificate; ext: CertificateExtensions } {
  try {
    return { cert: new X509Certificate(der), ext: readCertificateExtensions(der) }
  } catch (cause) {
    throw new SvidError('invalid_svid', `${what} is not a DER X.509 certificate`, { cause })
  }
}

function checkValidity(cert: X509Certificate, what: string, now: number): number {
  const from = Date.parse(cert.validFrom)
  const to = Date.parse(cert.validTo)
  if (!(now >= from)) throw new SvidError('expired_svid', `${what} is not valid before ${new Date(from).toISOString()}`)
  if (!(now <= to)) throw new SvidError('expired_svid', `${what} expired at ${new Date(to).toISOString()}`)
  return to
}

function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey)
  } catch {
    return false
  }
}

/**
 * Validates an X.509-SVID chain, e.g. the client certificates of a mutual-TLS request.
 *
 * @param chainDer - DER certificates, leaf first.
 * @throws {SvidError} `invalid_svid` (malformed, CA as leaf, key usage, URI SAN count, bad
 *   chain or signature), `expired_svid` (outside a validity window), `untrusted_trust_domain`.
 */
export async function verifyX509Svid(chainDer: readonly Uint8Array[], options: VerifyX509SvidOptions): Promise<VerifiedX509Svid> {
  if (chainDer.length === 0) throw new SvidError('invalid_svid', 'no certificate presented')
  if (chainDer.length > MAX_CHAIN) throw new SvidError('invalid_svid', `the chain has more than ${MAX_CHAIN} certificates`)
  const now = (options.now ?? Date.now)()
  const [leaf, ...intermediates] = chainDer.map((der, i) => parse(der, i === 0 ? 'the leaf' : `certificate ${i} of the chain`))
  const { cert, ext } = leaf!
  if (ext.uris.length !== 1) throw new SvidError('invalid_svid', `an X.509-SVID has exactly one URI SAN, this one has ${ext.uris.length}`)
  const id = parseWorkloadSpiffeId(ext.uris[0])
  const bundle = await requireBundle(options.bundles, id.trustDomain)
  if (cert.ca) throw new SvidError('invalid_svid', 'the leaf is a CA certificate, not an X.509-SVID')
  if (ext.keyUsage === undefined || !ext.keyUsage.digitalSignature) throw new SvidError('invalid_svid', 'the leaf lacks the digitalSignature key usage')
  if (ext.keyUsage.keyCertSign || ext.keyUsage.cRLSign) throw new SvidError('invalid_svid', 'the leaf may not have the keyCertSign or cRLSign key usage')
  let expiresAt = checkValidity(cert, 'the X.509-SVID', now)
  let current = cert
  for (const [i, inter] of intermediates.entries()) {
    if (!inter.cert.ca || inter.ext.keyUsage?.keyCertSign !== true) throw new SvidError('invalid_svid', `certificate ${i + 1} of the chain is not a CA allowed to sign certificates`)
    if (!issuedBy(current, inter.cert)) throw new SvidError('invalid_svid', `certificate ${i} of the chain is not signed by certificate ${i + 1}`)
    expiresAt = Math.min(expiresAt, checkValidity(inter.cert, `certificate ${i + 1} of the chain`, now))
    current = inter.cert
  }
  const anchor = bundle.x509Authorities.find((a) => issuedBy(current, a))
  if (anchor === undefined) throw new SvidError('invalid_svid', `the chain does not end at an X.509 authority of ${id.trustDomain}`)
  checkValidity(anchor, `the X.509 authority ${anchor.subject.replace(/\n/g, ', ')}`, now)
  return { spiffeId: id.id, trustDomain: id.trustDomain, expiresAt }
}
