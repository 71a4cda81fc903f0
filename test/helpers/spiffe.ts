/**
 * SPIFFE test fixtures: a CA per trust domain (@peculiar/x509) minting X.509-SVIDs (with knobs for
 * the negative cases), JWT-SVIDs (jose), SPIFFE bundle JSON, and a real gRPC Workload API server
 * on a Unix socket in a temp dir standing in for the SPIRE agent (it implements the bridge's own
 * workload.proto, refuses calls without the `workload.spiffe.io` metadata and can rotate).
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { randomBytes, webcrypto } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as jose from 'jose'
import { loadWorkloadApi, WORKLOAD_API_METADATA } from '../../src/bridges/spiffe/index.js'

x509.cryptoProvider.set(webcrypto as Crypto)

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const

/** The demo trust domain, its summarizer-tech workload and the demo agent provider (scenario S2). */
export const TD = 'demo.example.com'
export const ID = `spiffe://${TD}/agent/summarizer-tech`
export const AUD = 'https://agents.demo.example.com'

export const pem = (der: ArrayBuffer | Uint8Array, label: string): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der as ArrayBuffer).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`

/** Knobs of {@link TestCa.issueX509Svid}. */
export interface X509SvidOptions {
  /** URI SANs; default `[spiffeId]`. */
  readonly uris?: readonly string[]
  readonly notBefore?: Date
  readonly notAfter?: Date
  /** Mint a CA certificate instead of a leaf. */
  readonly ca?: boolean
  /** Sign with an unrelated key (same issuer name): a bad chain signature. */
  readonly badSignature?: boolean
  /** Issue from this intermediate instead of the root. */
  readonly issuer?: IssuedCert
  /** Key usage override. */
  readonly keyUsage?: number
  /** DNS SANs (AP server certificates). */
  readonly dns?: readonly string[]
}

/** A minted certificate with its private key. */
export interface IssuedCert {
  readonly cert: x509.X509Certificate
  readonly der: Uint8Array
  readonly keys: CryptoKeyPair
  /** PKCS#8 DER. */
  readonly pkcs8: Uint8Array
}

/** The trust material of one test trust domain. */
export interface TestCa {
  readonly trustDomain: string
  readonly root: IssuedCert
  /** JWT authorities: `es-1` (ES256) and `rs-1` (RS256). */
  readonly jwtKeys: { readonly es: CryptoKeyPair; readonly rs: CryptoKeyPair }
  issueX509Svid(spiffeId: string, options?: X509SvidOptions): Promise<IssuedCert>
  /** An intermediate CA under the root. */
  issueIntermediate(options?: { readonly notAfter?: Date; readonly keyUsage?: number; readonly ca?: boolean }): Promise<IssuedCert>
  /** A JWT-SVID (default ES256, kid `es-1`, 5 minutes). */
  mintJwtSvid(sub: string, aud: string | string[], options?: JwtSvidOptions): Promise<string>
  /** The SPIFFE bundle JSON document. */
  bundle(): { spiffe_sequence: number; spiffe_refresh_hint: number; keys: Record<string, unknown>[] }
}

/** Knobs of {@link TestCa.mintJwtSvid}. */
export interface JwtSvidOptions {
  readonly alg?: 'ES256' | 'RS256' | 'EdDSA' | 'HS256' | 'none'
  readonly kid?: string
  /** Lifetime in seconds (negative: already expired). Default 300. */
  readonly ttlSec?: number
  readonly omitExp?: boolean
  readonly typ?: string
}

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

async function mint(params: {
  subject: string
  issuer: IssuedCert | undefined
  keys: CryptoKeyPair
  ca: boolean
  keyUsage: number
  uris: readonly string[]
  dns?: readonly string[]
  notBefore: Date
  notAfter: Date
  badSignature?: boolean
}): Promise<IssuedCert> {
  const names = [...params.uris.map((value) => ({ type: 'url' as const, value })), ...(params.dns ?? []).map((value) => ({ type: 'dns' as const, value }))]
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(params.ca, undefined, true),
    new x509.KeyUsagesExtension(params.keyUsage, true),
    await x509.SubjectKeyIdentifierExtension.create(params.keys.publicKey),
  ]
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false))
  if (!params.ca) extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]))
  const signingKey = params.badSignature === true ? (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])).privateKey : (params.issuer?.keys ?? params.keys).privateKey
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: params.subject,
    issuer: params.issuer?.cert.subject ?? params.subject,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    signingAlgorithm: EC,
    publicKey: params.keys.publicKey,
    signingKey,
    extensions,
  })
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', params.keys.privateKey))
  return { cert, der: new Uint8Array(cert.rawData), keys: params.keys, pkcs8 }
}

const ecKeys = () => webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as Promise<CryptoKeyPair>
const minutesFromNow = (m: number) => new Date(Date.now() + m * 60_000)

/** A test CA for `trustDomain` (root valid an hour back to a day ahead). */
export async function createTestCa(trustDomain: string): Promise<TestCa> {
  const CA_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
  const root = await mint({ subject: `CN=SPIFFE CA,O=${trustDomain}`, issuer: undefined, keys: await ecKeys(), ca: true, keyUsage: CA_USAGE, uris: [`spiffe://${trustDomain}`], notBefore: minutesFromNow(-60), notAfter: minutesFromNow(24 * 60) })
  const es = (await jose.generateKeyPair('ES256', { extractable: true })) as CryptoKeyPair
  const rs = (await jose.generateKeyPair('RS256', { extractable: true })) as CryptoKeyPair
  const hs = new TextEncoder().encode('a-shared-secret-that-spiffe-does-not-allow!')
  const ed = await jose.generateKeyPair('EdDSA', { extractable: true })
  return {
    trustDomain,
    root,
    jwtKeys: { es, rs },
    issueX509Svid: async (spiffeId, o = {}) =>
      mint({
        subject: `O=SPIRE,CN=${o.dns?.[0] ?? 'workload'}`,
        issuer: o.issuer ?? root,
        keys: await ecKeys(),
        ca: o.ca === true,
        keyUsage: o.keyUsage ?? (o.ca === true ? CA_USAGE : x509.KeyUsageFlags.digitalSignature),
        uris: o.uris ?? (spiffeId === '' ? [] : [spiffeId]),
        ...(o.dns === undefined ? {} : { dns: o.dns }),
        notBefore: o.notBefore ?? minutesFromNow(-1),
        notAfter: o.notAfter ?? minutesFromNow(60),
        ...(o.badSignature === undefined ? {} : { badSignature: o.badSignature }),
      }),
    issueIntermediate: async (o = {}) =>
      mint({ subject: `CN=SPIFFE intermediate,O=${trustDomain}`, issuer: root, keys: await ecKeys(), ca: o.ca ?? true, keyUsage: o.keyUsage ?? CA_USAGE, uris: [`spiffe://${trustDomain}`], notBefore: minutesFromNow(-30), notAfter: o.notAfter ?? minutesFromNow(120) }),
    async mintJwtSvid(sub, aud, o = {}) {
      const alg = o.alg ?? 'ES256'
      const header = { alg, kid: o.kid ?? (alg === 'RS256' ? 'rs-1' : 'es-1'), ...(o.typ === undefined ? { typ: 'JWT' } : { typ: o.typ }) }
      const iat = Math.floor(Date.now() / 1000)
      const claims = { sub, aud, iat, ...(o.omitExp === true ? {} : { exp: iat + (o.ttlSec ?? 300) }) }
      if (alg === 'none') return `${b64u(header)}.${b64u(claims)}.`
      const key = alg === 'ES256' ? es.privateKey : alg === 'RS256' ? rs.privateKey : alg === 'HS256' ? hs : ed.privateKey
      return new jose.SignJWT(claims).setProtectedHeader(header).sign(key)
    },
    bundle() {
      return {
        spiffe_sequence: 1,
        spiffe_refresh_hint: 300,
        keys: [
          { kty: 'EC', crv: 'P-256', use: 'x509-svid', x5c: [Buffer.from(root.der).toString('base64')] },
          { kty: 'EC', use: 'something-else', x5c: [] },
          { kty: 'EC', x5c: [] },
          { use: 'jwt-svid', kid: 'es-1', ...jwkOf(es) },
          { use: 'jwt-svid', kid: 'rs-1', ...jwkOf(rs) },
        ],
      }
    },
  }
}

const jwks = new WeakMap<CryptoKeyPair, Record<string, unknown>>()
/** Public JWKs are exported once, up front (see {@link prepareJwks}). */
function jwkOf(k: CryptoKeyPair): Record<string, unknown> {
  const j = jwks.get(k)
  if (j === undefined) throw new Error('call prepareJwks(ca) first')
  return j
}
/** Exports the CA's JWT authority public keys (bundle() is synchronous). */
export async function prepareJwks(ca: TestCa): Promise<TestCa> {
  for (const k of [ca.jwtKeys.es, ca.jwtKeys.rs]) jwks.set(k, await jose.exportJWK(k.publicKey))
  return ca
}

/** A running test Workload API. */
export interface TestWorkloadApi {
  /** `unix:` endpoint for the client. */
  readonly endpoint: string
  readonly socketPath: string
  /** The X.509-SVID currently served. */
  readonly current: IssuedCert
  /** Issues a new X.509-SVID and pushes it on every open FetchX509SVID stream. */
  rotate(): Promise<IssuedCert>
  /** Stops the server, then serves again on the same socket (the client should reconnect). */
  restart(): Promise<void>
  /** Calls refused for missing metadata. */
  readonly refused: number
  /** FetchX509SVID streams opened so far. */
  readonly streamsOpened: number
  close(): Promise<void>
}

/**
 * A real grpc-js Workload API server on a Unix socket in a fresh temp dir, serving `spiffeId`'s
 * SVIDs from `ca`.
 */
export async function startWorkloadApi(opts: { ca: TestCa; spiffeId: string; svidTtlMin?: number }): Promise<TestWorkloadApi> {
  const { grpc, service } = await loadWorkloadApi()
  const dir = mkdtempSync(join(tmpdir(), 'spiffe-wl-'))
  const socketPath = join(dir, 'agent.sock')
  const issue = () => opts.ca.issueX509Svid(opts.spiffeId, { notAfter: minutesFromNow(opts.svidTtlMin ?? 60) })
  let current = await issue()
  let refused = 0
  let streamsOpened = 0
  const streams = new Set<{ write(m: unknown): boolean; end(): void }>()
  const response = () => ({
    svids: [{ spiffe_id: opts.spiffeId, x509_svid: Buffer.from(current.der), x509_svid_key: Buffer.from(current.pkcs8), bundle: Buffer.from(opts.ca.root.der), hint: '' }],
    crl: [],
    federated_bundles: {},
  })
  type Call = { metadata: { get(k: string): unknown[] }; request: { audience?: string[] } }
  const allowed = (call: Call) => {
    const ok = call.metadata.get(WORKLOAD_API_METADATA.key)[0] === WORKLOAD_API_METADATA.value
    if (!ok) refused++
    return ok
  }
  const denied = { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' }
  const implementation = {
    FetchX509SVID(call: Call & { write(m: unknown): boolean; end(): void; emit(e: string, v: unknown): void; on(e: string, l: () => void): void }) {
      if (!allowed(call)) return call.emit('error', denied)
      streamsOpened++
      streams.add(call)
      call.on('cancelled', () => streams.delete(call))
      call.write(response())
    },
    FetchX509Bundles(call: Call & { write(m: unknown): boolean; emit(e: string, v: unknown): void }) {
      if (!allowed(call)) return call.emit('error', denied)
      call.write({ crl: [], bundles: { [opts.ca.trustDomain]: Buffer.from(opts.ca.root.der) } })
    },
    async FetchJWTSVID(call: Call, cb: (e: unknown, r?: unknown) => void) {
      if (!allowed(call)) return cb(denied)
      const aud = call.request.audience ?? []
      if (aud.length === 0) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'audience must be specified' })
      cb(null, { svids: [{ spiffe_id: opts.spiffeId, svid: await opts.ca.mintJwtSvid(opts.spiffeId, aud), hint: '' }] })
    },
    FetchJWTBundles(call: Call & { write(m: unknown): boolean; emit(e: string, v: unknown): void }) {
      if (!allowed(call)) return call.emit('error', denied)
      const keys = opts.ca.bundle().keys.filter((k) => k['use'] === 'jwt-svid')
      call.write({ bundles: { [opts.ca.trustDomain]: Buffer.from(JSON.stringify({ keys })) } })
    },
    ValidateJWTSVID(_call: Call, cb: (e: unknown) => void) {
      cb({ code: grpc.status.UNIMPLEMENTED, details: 'not in this test server' })
    },
  }
  let server: InstanceType<typeof grpc.Server>
  const listen = async () => {
    server = new grpc.Server()
    server.addService(service, implementation as never)
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())))
  }
  const stop = () => {
    for (const s of streams) s.end()
    streams.clear()
    server.forceShutdown()
  }
  await listen()
  return {
    endpoint: `unix://${socketPath}`,
    socketPath,
    get current() {
      return current
    },
    get refused() {
      return refused
    },
    get streamsOpened() {
      return streamsOpened
    },
    async rotate() {
      current = await issue()
      for (const s of streams) s.write(response())
      return current
    },
    async restart() {
      stop()
      rmSync(socketPath, { force: true })
      await listen()
    },
    async close() {
      stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
