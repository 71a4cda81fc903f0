/**
 * The few ASN.1 DER readings the SPIFFE bridge needs and `node:crypto` does not offer: splitting
 * concatenated certificates (the Workload API's `x509_svid` and `bundle` fields) and reading the
 * KeyUsage and URI SubjectAltName extensions of a certificate (X509-SVID §4). Private to the bridge.
 *
 * @module
 */

/** One DER element: its tag, where its contents are, and where it ends. */
interface DerElement {
  readonly tag: number
  readonly start: number
  readonly end: number
}

function readElement(bytes: Uint8Array, offset: number, limit = bytes.length): DerElement {
  if (offset + 2 > limit) throw new RangeError('truncated DER')
  const tag = bytes[offset]!
  let length = bytes[offset + 1]!
  let start = offset + 2
  if (length & 0x80) {
    const n = length & 0x7f
    if (n === 0 || n > 4 || start + n > limit) throw new RangeError('unsupported DER length')
    length = 0
    for (let i = 0; i < n; i++) length = length * 256 + bytes[start + i]!
    start += n
  }
  const end = start + length
  if (end > limit) throw new RangeError('truncated DER')
  return { tag, start, end }
}

function children(bytes: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = []
  for (let at = parent.start; at < parent.end; ) {
    const e = readElement(bytes, at, parent.end)
    out.push(e)
    at = e.end
  }
  return out
}

/**
 * Splits concatenated DER certificates.
 *
 * @throws {RangeError} for bytes that are not a sequence of DER SEQUENCEs.
 */
export function splitDerCertificates(bytes: Uint8Array, max = 64): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0; at < bytes.length; ) {
    const e = readElement(bytes, at)
    if (e.tag !== 0x30) throw new RangeError('not a DER certificate')
    out.push(bytes.subarray(at, e.end))
    at = e.end
    if (out.length > max) throw new RangeError(`more than ${max} certificates`)
  }
  return out
}

const OID_KEY_USAGE = '551d0f'
const OID_SUBJECT_ALT_NAME = '551d11'
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** The certificate's extensions by OID (hex of the OID's content bytes): the extnValue contents. */
function extensions(der: Uint8Array): Map<string, Uint8Array> {
  const cert = readElement(der, 0)
  const tbs = children(der, cert)[0]
  const out = new Map<string, Uint8Array>()
  if (tbs === undefined) return out
  const explicit3 = children(der, tbs).find((e) => e.tag === 0xa3)
  if (explicit3 === undefined) return out
  const list = children(der, explicit3)[0]
  if (list === undefined) return out
  for (const ext of children(der, list)) {
    const parts = children(der, ext)
    const oid = parts[0]
    const value = parts[parts.length - 1]
    if (oid?.tag !== 0x06 || value?.tag !== 0x04) throw new RangeError('malformed extension')
    const key = hex(der.subarray(oid.start, oid.end))
    if (out.has(key)) throw new RangeError('duplicate extension')
    out.set(key, der.subarray(value.start, value.end))
  }
  return out
}

/** KeyUsage bits (RFC 5280 §4.2.1.3) the bridge cares about. */
export interface KeyUsage {
  readonly digitalSignature: boolean
  readonly keyCertSign: boolean
  readonly cRLSign: boolean
}

/** What the bridge reads from a certificate's extensions. */
export interface CertificateExtensions {
  /** `undefined` when the certificate has no KeyUsage extension. */
  readonly keyUsage?: KeyUsage
  /** Every uniformResourceIdentifier SubjectAltName, in order. */
  readonly uris: readonly string[]
}

/**
 * Reads KeyUsage and URI SANs from a DER certificate.
 *
 * @throws {RangeError} for malformed DER.
 */
export function readCertificateExtensions(der: Uint8Array): CertificateExtensions {
  const ext = extensions(der)
  let keyUsage: KeyUsage | undefined
  const ku = ext.get(OID_KEY_USAGE)
  if (ku !== undefined) {
    const bits = readElement(ku, 0)
    if (bits.tag !== 0x03) throw new RangeError('malformed KeyUsage')
    const first = bits.end - bits.start > 1 ? ku[bits.start + 1]! : 0
    keyUsage = { digitalSignature: (first & 0x80) !== 0, keyCertSign: (first & 0x04) !== 0, cRLSign: (first & 0x02) !== 0 }
  }
  const uris: string[] = []
  const san = ext.get(OID_SUBJECT_ALT_NAME)
  if (san !== undefined) {
    const names = readElement(san, 0)
    if (names.tag !== 0x30) throw new RangeError('malformed SubjectAltName')
    for (const name of children(san, names)) if (name.tag === 0x86) uris.push(Buffer.from(san.subarray(name.start, name.end)).toString('latin1'))
  }
  return { ...(keyUsage === undefined ? {} : { keyUsage }), uris }
}
