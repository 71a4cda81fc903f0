/**
 * Egress admission: the one outbound fetcher used for every metadata and JWKS fetch
 * (draft-hardt-httpbis-signature-key §7.3; main draft §JWKS Discovery and Caching; CHECKLIST
 * SK-26, JWKS-10).
 *
 * - https only; redirects are never followed;
 * - time and response-size limits;
 * - private, loopback, link-local, multicast and reserved destinations refused — checked on the
 *   literal host and again on every address DNS returns, and the connection is made to the
 *   address that was checked (no DNS-rebinding window). On runtimes without `node:net`/`node:dns`
 *   the fetcher falls back to `fetch` and can only check literal hosts: pass your own
 *   {@link EgressFetcher} there if names may resolve to private space;
 * - `allowInsecureLoopback: true` (development; env `AAUTH_DEV_LOOPBACK=1` in the CLI and
 *   examples) admits `http://127.0.0.1:PORT` and `http://localhost:PORT`, and nothing else.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

import { EgressError } from './errors.js'
import { isInsecureLoopbackUrl } from './identifiers.js'

/** What an egress fetch returns: the status, headers and the whole (bounded) body. */
export interface EgressResponse {
  readonly url: string
  readonly status: number
  readonly headers: Headers
  readonly body: Uint8Array
}

/** Options of a single fetch. */
export interface EgressRequestInit {
  readonly headers?: Record<string, string>
  /** Default `GET`. `POST` is for back-channel form posts such as an OAuth token request. */
  readonly method?: 'GET' | 'POST'
  /** The request body (with `POST`). */
  readonly body?: string
}

/** The outbound fetch function every discovery path takes. Inject one in tests. */
export type EgressFetcher = (url: string, init?: EgressRequestInit) => Promise<EgressResponse>

/** Options of {@link createEgressFetcher}. */
export interface EgressOptions {
  /** Abort after this many milliseconds. Default 5000. */
  readonly timeoutMs?: number
  /** Refuse bodies larger than this many bytes. Default 524288 (512 KiB). */
  readonly maxBytes?: number
  /** Development only: admit `http://127.0.0.1:PORT` and `http://localhost:PORT`. Default false. */
  readonly allowInsecureLoopback?: boolean
  /** Extra destination hosts (exact host names) admitted even if they resolve to private space. */
  readonly allowHosts?: readonly string[]
  /** DNS resolver (all addresses of a host name). Default: the system resolver. For tests. */
  readonly resolve?: (hostname: string) => Promise<readonly { address: string; family: number }[]>
}

type NetModule = typeof import('node:net')
type Lookup = NonNullable<import('node:http').RequestOptions['lookup']>

interface NodeNet {
  net: NetModule
  http: typeof import('node:http')
  https: typeof import('node:https')
  dns: typeof import('node:dns')
  blocked: import('node:net').BlockList
}

let nodeNet: Promise<NodeNet | undefined> | undefined

async function loadNodeNet(): Promise<NodeNet | undefined> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process
  if (proc?.versions?.node === undefined) return undefined
  const [net, http, https, dns] = await Promise.all([import('node:net'), import('node:http'), import('node:https'), import('node:dns')])
  const blocked = new net.BlockList()
  for (const [a, p] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
    ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
    ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const) blocked.addSubnet(a, p, 'ipv4')
  for (const [a, p] of [
    ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64],
  ] as const) blocked.addSubnet(a, p, 'ipv6')
  return { net, http, https, dns, blocked }
}

const IPV4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/** True when `address` (an IP literal) lies in private, loopback, link-local or reserved space. */
function isBlockedAddress(n: NodeNet, address: string): boolean {
  const family = n.net.isIP(address)
  if (family === 0) return true
  if (family === 6) {
    const mapped = IPV4_MAPPED.exec(address)
    if (mapped !== null) return n.blocked.check(mapped[1]!, 'ipv4')
    if (/^64:ff9b::/i.test(address)) return true
    return n.blocked.check(address, 'ipv6')
  }
  return n.blocked.check(address, 'ipv4')
}

const LITERAL_PRIVATE_V4 = /^(?:0|10|127|169\.254|172\.(?:1[6-9]|2\d|3[01])|192\.168|100\.(?:6[4-9]|[7-9]\d|1[01]\d|12[0-7]))\./

/**
 * Decides whether a URL may be fetched at all, before any connection: scheme, credentials,
 * literal-IP destinations. DNS results are checked separately at connect time.
 *
 * @throws {EgressError} `egress_refused`
 */
export function admitUrl(raw: string, options?: EgressOptions): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new EgressError('egress_refused', raw, 'not an absolute URL')
  }
  const loopback = options?.allowInsecureLoopback === true && isInsecureLoopbackUrl(url)
  if (url.protocol !== 'https:' && !loopback) throw new EgressError('egress_refused', raw, 'only https URLs are fetched')
  if (url.username !== '' || url.password !== '') throw new EgressError('egress_refused', raw, 'URLs with credentials are not fetched')
  if (!loopback && !(options?.allowHosts ?? []).includes(url.hostname)) {
    const host = url.hostname
    if (host === 'localhost' || host.endsWith('.localhost') || host.startsWith('[') || LITERAL_PRIVATE_V4.test(host)) {
      throw new EgressError('egress_refused', raw, `destination ${host} is private, loopback or link-local`)
    }
  }
  return url
}

/**
 * {@link admitUrl}, then the destination's DNS answers: every address must be public (loopback
 * only with `allowInsecureLoopback` for a loopback URL). For calls that cannot go through the
 * egress fetcher (signed POSTs with `fetch`); the connection is not pinned to the checked address,
 * so a name that changes its answer in between (DNS rebinding) is not caught — the egress fetcher
 * itself pins.
 *
 * @throws {EgressError} `egress_refused`
 */
export async function admitDestination(raw: string, options?: EgressOptions): Promise<URL> {
  const url = admitUrl(raw, options)
  const loopback = options?.allowInsecureLoopback === true && isInsecureLoopbackUrl(url)
  if (loopback || (options?.allowHosts ?? []).includes(url.hostname)) return url
  const n = await (nodeNet ??= loadNodeNet())
  if (n === undefined) return url
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const addresses = n.net.isIP(host) !== 0 ? [{ address: host, family: n.net.isIP(host) }] : options?.resolve !== undefined ? await options.resolve(host) : await n.dns.promises.lookup(host, { all: true })
  for (const a of addresses) {
    if (isBlockedAddress(n, a.address)) throw new EgressError('egress_refused', raw, `${url.hostname} resolves to a refused address ${a.address}`)
  }
  return url
}

function guardedLookup(n: NodeNet, url: string, allowLoopback: boolean, resolve: EgressOptions['resolve']): Lookup {
  return ((hostname: string, opts: import('node:dns').LookupOptions, cb: (...a: unknown[]) => void) => {
    const done = (err: Error | null, addresses: readonly { address: string; family: number }[]): void => {
      if (err !== null) return cb(err)
      const list = addresses
      for (const a of list) {
        const loopbackOk = allowLoopback && (a.address === '127.0.0.1' || a.address === '::1')
        if (!loopbackOk && isBlockedAddress(n, a.address)) {
          return cb(new EgressError('egress_refused', url, `${hostname} resolves to a refused address ${a.address}`))
        }
      }
      const first = list[0]
      if (first === undefined) return cb(new Error(`no address for ${hostname}`))
      // Connect to the very address that was checked.
      if ((opts as { all?: boolean }).all === true) return cb(null, [first])
      return cb(null, first.address, first.family)
    }
    if (resolve !== undefined) resolve(hostname).then((a) => done(null, a), (e: Error) => done(e, []))
    else n.dns.lookup(hostname, { ...opts, all: true }, (err, a) => done(err, a))
  }) as unknown as Lookup
}

/**
 * Creates the egress fetcher.
 *
 * @example
 * ```ts
 * const fetcher = createEgressFetcher({ timeoutMs: 3000 })
 * const res = await fetcher('https://agent.example/.well-known/aauth-agent.json')
 * ```
 */
export function createEgressFetcher(options: EgressOptions = {}): EgressFetcher {
  const timeoutMs = options.timeoutMs ?? 5000
  const maxBytes = options.maxBytes ?? 512 * 1024
  return async (raw, init) => {
    const url = admitUrl(raw, options)
    nodeNet ??= loadNodeNet()
    const n = await nodeNet
    if (n === undefined) return fetchWithWebApi(url, raw, init, timeoutMs, maxBytes)
    const loopback = options.allowInsecureLoopback === true && isInsecureLoopbackUrl(url)
    const allowed = (options.allowHosts ?? []).includes(url.hostname)
    // Node skips the lookup hook for a literal IP: check it against the full block list here.
    const literal = url.hostname.replace(/^\[|\]$/g, '')
    if (!loopback && !allowed && n.net.isIP(literal) !== 0 && isBlockedAddress(n, literal)) {
      throw new EgressError('egress_refused', raw, `destination ${url.hostname} is private, loopback, link-local or reserved`)
    }
    const mod = url.protocol === 'https:' ? n.https : n.http
    return new Promise<EgressResponse>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method: init?.method ?? 'GET',
          headers: { accept: 'application/json', ...init?.headers },
          ...(allowed ? {} : { lookup: guardedLookup(n, raw, loopback, options.resolve) }),
          timeout: timeoutMs,
        },
        (res) => {
          const status = res.statusCode ?? 0
          if (status >= 300 && status < 400) {
            res.resume()
            return reject(new EgressError('fetch_failed', raw, `redirect (${status}) refused`))
          }
          const declared = Number(res.headers['content-length'])
          if (Number.isFinite(declared) && declared > maxBytes) {
            res.destroy()
            return reject(new EgressError('response_too_large', raw, `response exceeds ${maxBytes} bytes`))
          }
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (c: Buffer) => {
            size += c.length
            if (size > maxBytes) {
              res.destroy()
              reject(new EgressError('response_too_large', raw, `response exceeds ${maxBytes} bytes`))
              return
            }
            chunks.push(c)
          })
          res.on('error', (cause) => reject(new EgressError('fetch_failed', raw, 'response failed', { cause })))
          res.on('end', () => {
            const headers = new Headers()
            for (const [k, v] of Object.entries(res.headers)) {
              if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v)
            }
            resolve({ url: raw, status, headers, body: new Uint8Array(Buffer.concat(chunks)) })
          })
        },
      )
      const timer = setTimeout(() => req.destroy(new EgressError('fetch_timeout', raw, `no response within ${timeoutMs} ms`)), timeoutMs)
      req.on('close', () => clearTimeout(timer))
      req.on('timeout', () => req.destroy(new EgressError('fetch_timeout', raw, `no response within ${timeoutMs} ms`)))
      req.on('error', (cause) => reject(cause instanceof EgressError ? cause : new EgressError('fetch_failed', raw, 'request failed', { cause })))
      req.end(init?.body)
    })
  }
}

async function fetchWithWebApi(url: URL, raw: string, init: EgressRequestInit | undefined, timeoutMs: number, maxBytes: number): Promise<EgressResponse> {
  let res: Response
  try {
    res = await fetch(url, { method: init?.method ?? 'GET', ...(init?.body === undefined ? {} : { body: init.body }), redirect: 'manual', headers: { accept: 'application/json', ...init?.headers }, signal: AbortSignal.timeout(timeoutMs) })
  } catch (cause) {
    const timeout = (cause as { name?: string }).name === 'TimeoutError'
    throw new EgressError(timeout ? 'fetch_timeout' : 'fetch_failed', raw, 'request failed', { cause })
  }
  if (res.status >= 300 && res.status < 400) throw new EgressError('fetch_failed', raw, `redirect (${res.status}) refused`)
  const reader = res.body?.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  while (reader !== undefined) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > maxBytes) {
      await reader.cancel()
      throw new EgressError('response_too_large', raw, `response exceeds ${maxBytes} bytes`)
    }
    chunks.push(value)
  }
  const body = new Uint8Array(size)
  let off = 0
  for (const c of chunks) {
    body.set(c, off)
    off += c.length
  }
  return { url: raw, status: res.status, headers: res.headers, body }
}

/**
 * The development switch for the CLI and examples: true when `AAUTH_DEV_LOOPBACK=1`. Libraries
 * never read the environment themselves; callers pass the result as `allowInsecureLoopback`.
 */
export function devLoopbackFromEnv(env: Record<string, string | undefined> | undefined = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env): boolean {
  return env?.['AAUTH_DEV_LOOPBACK'] === '1'
}

/** Parses an egress response body as a JSON object; `undefined` when it is not one. */
export function jsonObject(res: EgressResponse): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(res.body))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
