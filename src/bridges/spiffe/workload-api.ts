/**
 * A SPIFFE Workload API client (SPIFFE Workload API standard §5, §6): gRPC over the agent's Unix
 * socket, every call carrying the `workload.spiffe.io: true` metadata. One FetchX509SVID stream
 * stays open and always holds the newest X.509-SVID (the server pushes a new one at each
 * rotation); when the stream ends it reconnects with back-off. JWT-SVIDs are fetched per audience
 * and reused until they come close to `exp`.
 *
 * `@grpc/grpc-js` and `@grpc/proto-loader` (optional peer dependencies) are imported on first
 * use, so the rest of `'aauth-kit/bridges/spiffe'` loads without them.
 *
 * Exported from `'aauth-kit/bridges/spiffe'`.
 *
 * @module
 */

import { X509Certificate } from 'node:crypto'
import { isAbsolute } from 'node:path'
import { fileURLToPath } from 'node:url'
import { splitDerCertificates } from './der.js'
import type { JwtSvid, SvidSource, X509Svid } from './types.js'

/** The metadata every Workload API call carries (Workload API §5.2), against server-side request forgery. */
export const WORKLOAD_API_METADATA = { key: 'workload.spiffe.io', value: 'true' } as const
/** The environment variable naming the Workload API endpoint (Workload API §4). */
export const SPIFFE_ENDPOINT_SOCKET = 'SPIFFE_ENDPOINT_SOCKET'
/** At most this many audiences keep a cached JWT-SVID. */
const MAX_JWT_CACHE = 32
const DEFAULT_JWT_MARGIN_SEC = 30
const CALL_TIMEOUT_MS = 10_000

/** Options of {@link createWorkloadApiSource}. */
export interface WorkloadApiSourceOptions {
  /** The endpoint: `unix:///path`, `unix:/path` or an absolute path. Default: `$SPIFFE_ENDPOINT_SOCKET`. */
  readonly socketPath?: string
  /** Choose the SVID with this hint when the Workload API lists several; default the first. */
  readonly hint?: string
  /** Fetch a new JWT-SVID once fewer than this many seconds remain. Default 30. */
  readonly jwtRefreshMarginSec?: number
  /** Reconnect back-off in milliseconds: first delay and ceiling. Default 250 and 10,000. */
  readonly backoffMs?: { readonly initial: number; readonly max: number }
  /** How long {@link SvidSource.x509Svid} waits for a first SVID. Default 30,000 ms. */
  readonly timeoutMs?: number
  /** Clock, epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number
}

/** A {@link SvidSource} fed by the Workload API. */
export interface WorkloadApiSource extends SvidSource {
  /** Resolves once the first X.509-SVID arrived; rejects if the source is closed first. */
  readonly ready: Promise<void>
  /** Calls `listener` with every X.509-SVID that replaces the previous one. Returns an unsubscribe function. */
  onRotate(listener: (svid: X509Svid) => void): () => void
}

/** The grpc-js pieces used here: typed narrowly, since the service is built from the .proto at run time. */
type Grpc = typeof import('@grpc/grpc-js')
interface Stream {
  on(event: 'data', l: (r: X509SvidResponse) => void): Stream
  on(event: 'error', l: (e: Error & { code?: number }) => void): Stream
  on(event: 'end' | 'close', l: () => void): Stream
  cancel(): void
  removeAllListeners(): void
}
interface WorkloadClient {
  FetchX509SVID(request: object, metadata: InstanceType<Grpc['Metadata']>): Stream
  FetchJWTSVID(request: { audience: string[]; spiffe_id?: string }, metadata: InstanceType<Grpc['Metadata']>, options: { deadline: Date }, cb: (err: Error | null, res?: { svids: { spiffe_id: string; svid: string; hint: string }[] }) => void): void
  close(): void
}
interface X509SvidResponse {
  svids: { spiffe_id: string; x509_svid: Uint8Array; x509_svid_key: Uint8Array; bundle: Uint8Array; hint: string }[]
}
/** The generated service: a client constructor and the definition a server registers. */
export interface WorkloadApiDefinition {
  readonly grpc: Grpc
  readonly Client: new (target: string, credentials: ReturnType<Grpc['credentials']['createInsecure']>) => WorkloadClient
  readonly service: import('@grpc/grpc-js').ServiceDefinition
}

let definition: Promise<WorkloadApiDefinition> | undefined

/**
 * Loads grpc-js and the Workload API service from `workload.proto` (next to this module in
 * `src/` and in `dist/`). Shared by the client and by test servers.
 *
 * @throws when `@grpc/grpc-js` or `@grpc/proto-loader` is not installed.
 */
export function loadWorkloadApi(): Promise<WorkloadApiDefinition> {
  definition ??= (async () => {
    let grpcModule: { default?: Grpc } & Grpc
    let loader: typeof import('@grpc/proto-loader')
    try {
      grpcModule = (await import('@grpc/grpc-js')) as { default?: Grpc } & Grpc
      loader = await import('@grpc/proto-loader')
    } catch (cause) {
      throw new Error('the SPIFFE Workload API client needs the optional peer dependencies @grpc/grpc-js and @grpc/proto-loader', { cause })
    }
    const grpc = grpcModule.default ?? grpcModule
    const packageDefinition = await loader.load(fileURLToPath(new URL('./workload.proto', import.meta.url)), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true })
    const ctor = grpc.loadPackageDefinition(packageDefinition)['SpiffeWorkloadAPI'] as unknown as WorkloadApiDefinition['Client'] & { service: WorkloadApiDefinition['service'] }
    return { grpc, Client: ctor, service: ctor.service }
  })()
  definition.catch(() => {
    definition = undefined
  })
  return definition
}

/**
 * The gRPC target of a Workload API endpoint (Workload API §4: `unix:` URIs; TCP endpoints are not
 * supported by this client).
 *
 * @throws {TypeError} for a missing or unsupported endpoint.
 */
export function workloadApiTarget(endpoint: string | undefined): string {
  if (endpoint === undefined || endpoint === '') throw new TypeError(`no Workload API endpoint: pass socketPath or set ${SPIFFE_ENDPOINT_SOCKET}`)
  let path: string
  if (endpoint.startsWith('unix://')) {
    const url = new URL(endpoint)
    if (url.host !== '' || url.search !== '' || url.hash !== '') throw new TypeError(`Workload API endpoint ${endpoint}: a unix URI has no host, query or fragment`)
    path = decodeURIComponent(url.pathname)
  } else if (endpoint.startsWith('unix:')) path = endpoint.slice('unix:'.length)
  else if (isAbsolute(endpoint)) path = endpoint
  else throw new TypeError(`Workload API endpoint ${endpoint}: only unix: endpoints are supported`)
  if (!isAbsolute(path)) throw new TypeError(`Workload API endpoint ${endpoint}: the socket path must be absolute`)
  return `unix:${path}`
}

function toX509Svid(res: X509SvidResponse, hint: string | undefined): X509Svid | undefined {
  const entry = hint === undefined ? res.svids[0] : res.svids.find((s) => s.hint === hint)
  if (entry === undefined) return undefined
  const certChain = splitDerCertificates(new Uint8Array(entry.x509_svid))
  const leaf = new X509Certificate(certChain[0]!)
  return {
    spiffeId: entry.spiffe_id,
    certChain,
    privateKey: new Uint8Array(entry.x509_svid_key),
    bundle: splitDerCertificates(new Uint8Array(entry.bundle)),
    expiresAt: Date.parse(leaf.validTo),
    ...(entry.hint === '' ? {} : { hint: entry.hint }),
  }
}

/** `exp` of a JWT-SVID from the local Workload API (read, not verified: the agent trusts its own SPIRE agent). */
function jwtExp(token: string): number {
  let payload: { exp?: unknown }
  try {
    payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }
  } catch (cause) {
    throw new Error('the Workload API returned a JWT-SVID that is not a JWT', { cause })
  }
  if (typeof payload?.exp !== 'number') throw new Error('the Workload API returned a JWT-SVID without exp')
  return payload.exp * 1000
}

/**
 * Watches the Workload API for this workload's SVIDs.
 *
 * @throws {TypeError} for a missing or unsupported endpoint (checked at once).
 * @example
 * ```ts
 * const source = createWorkloadApiSource() // $SPIFFE_ENDPOINT_SOCKET
 * await source.ready
 * const { spiffeId } = await source.x509Svid()
 * ```
 */
export function createWorkloadApiSource(options: WorkloadApiSourceOptions = {}): WorkloadApiSource {
  const target = workloadApiTarget(options.socketPath ?? process.env[SPIFFE_ENDPOINT_SOCKET])
  const now = options.now ?? Date.now
  const marginMs = (options.jwtRefreshMarginSec ?? DEFAULT_JWT_MARGIN_SEC) * 1000
  const backoff = options.backoffMs ?? { initial: 250, max: 10_000 }
  const timeoutMs = options.timeoutMs ?? 30_000
  const listeners = new Set<(svid: X509Svid) => void>()
  const jwtCache = new Map<string, JwtSvid>()
  const jwtInflight = new Map<string, Promise<JwtSvid>>()
  let current: X509Svid | undefined
  let lastError: Error | undefined
  let closed = false
  let client: WorkloadClient | undefined
  let stream: Stream | undefined
  let timer: NodeJS.Timeout | undefined
  let delay = backoff.initial
  let resolveReady!: () => void
  let rejectReady!: (e: Error) => void
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve
    rejectReady = reject
  })
  ready.catch(() => undefined) // observed by callers who await it; never an unhandled rejection

  const api = loadWorkloadApi().then((def) => {
    if (!closed) client = new def.Client(target, def.grpc.credentials.createInsecure())
    return def
  })
  api.catch((e: Error) => {
    lastError = e
    rejectReady(e)
  })

  const metadata = async () => {
    const { grpc } = await api
    const md = new grpc.Metadata()
    md.set(WORKLOAD_API_METADATA.key, WORKLOAD_API_METADATA.value)
    return md
  }

  function reconnectLater(): void {
    stream?.removeAllListeners()
    stream = undefined
    if (closed || timer !== undefined) return
    timer = setTimeout(() => {
      timer = undefined
      void watch()
    }, delay)
    timer.unref()
    delay = Math.min(delay * 2, backoff.max)
  }

  async function watch(): Promise<void> {
    const md = await metadata()
    if (closed || client === undefined) return
    const s = client.FetchX509SVID({}, md)
    stream = s
    s.on('data', (res) => {
      let svid: X509Svid | undefined
      try {
        svid = toX509Svid(res, options.hint)
      } catch (e) {
        lastError = new Error('the Workload API sent an X.509-SVID that is not DER', { cause: e })
        return
      }
      if (svid === undefined) {
        lastError = new Error(options.hint === undefined ? 'the Workload API sent no X.509-SVID' : `the Workload API sent no X.509-SVID with hint "${options.hint}"`)
        return
      }
      delay = backoff.initial
      const first = current === undefined
      current = svid
      if (first) resolveReady()
      else for (const l of listeners) l(svid)
    })
    s.on('error', (e) => {
      lastError = new Error(`Workload API stream failed: ${e.message}`, { cause: e })
      reconnectLater()
    })
    s.on('end', () => reconnectLater())
  }
  api.then(() => watch()).catch(() => undefined)

  async function fetchJwt(audience: string): Promise<JwtSvid> {
    const md = await metadata()
    if (closed || client === undefined) throw new Error('the Workload API source is closed')
    const c = client
    const res = await new Promise<{ svids: { spiffe_id: string; svid: string; hint: string }[] }>((resolve, reject) =>
      c.FetchJWTSVID({ audience: [audience], ...(current === undefined ? {} : { spiffe_id: current.spiffeId }) }, md, { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }, (err, r) =>
        err !== null || r === undefined ? reject(new Error(`Workload API FetchJWTSVID failed: ${err?.message ?? 'no response'}`, { cause: err })) : resolve(r),
      ),
    )
    const entry = options.hint === undefined ? res.svids[0] : res.svids.find((s) => s.hint === options.hint)
    if (entry === undefined) throw new Error('the Workload API returned no JWT-SVID')
    const svid: JwtSvid = { spiffeId: entry.spiffe_id, token: entry.svid, expiresAt: jwtExp(entry.svid), ...(entry.hint === '' ? {} : { hint: entry.hint }) }
    jwtCache.delete(audience)
    jwtCache.set(audience, svid)
    if (jwtCache.size > MAX_JWT_CACHE) jwtCache.delete(jwtCache.keys().next().value as string)
    return svid
  }

  return {
    ready,
    onRotate(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async x509Svid() {
      if (closed) throw new Error('the Workload API source is closed')
      if (current !== undefined) return current
      let t: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          ready,
          new Promise<never>((_, reject) => {
            t = setTimeout(() => reject(new Error(`no X.509-SVID from the Workload API at ${target} within ${timeoutMs} ms${lastError === undefined ? '' : `: ${lastError.message}`}`)), timeoutMs)
          }),
        ])
      } finally {
        clearTimeout(t)
      }
      return current!
    },
    async jwtSvid(audience) {
      if (closed) throw new Error('the Workload API source is closed')
      const cached = jwtCache.get(audience)
      if (cached !== undefined && cached.expiresAt - now() > marginMs) return cached
      let pending = jwtInflight.get(audience)
      if (pending === undefined) {
        pending = fetchJwt(audience).finally(() => jwtInflight.delete(audience))
        jwtInflight.set(audience, pending)
      }
      return pending
    },
    close() {
      if (closed) return
      closed = true
      clearTimeout(timer)
      timer = undefined
      if (stream !== undefined) {
        const s = stream
        stream = undefined
        s.removeAllListeners()
        s.on('error', () => undefined) // the cancellation itself reports CANCELLED
        s.cancel()
      }
      client?.close()
      listeners.clear()
      jwtCache.clear()
      rejectReady(new Error('the Workload API source was closed'))
    },
  }
}
