/**
 * What the `serve` commands share (`aauth agent serve`, `aauth resource serve`): where to bind and
 * what the issuer is, a Node HTTP server around a Fetch handler with an optional request log,
 * listening, closing, and waiting for Ctrl-C or SIGTERM.
 *
 * @module
 */

import { createAdaptorServer } from '@hono/node-server'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { KeyRing } from '../agent/key-ring.js'
import { isServerIdentifier } from '../protocol/identifiers.js'
import { UsageError } from './args.js'
import type { Context } from './output.js'
import { readAgentKey } from './shared.js'

/** Where to bind and what the issuer is once the port is known. */
export interface Plan {
  readonly bindHost: string
  readonly issuer: (port: number) => string
  /** The issuer is not the listening address: a TLS-terminating proxy forwards to it. */
  readonly behindProxy: boolean
}

/** What names the issuer: `--domain D` (issuer `https://D`) or, where a command takes it, `--issuer URL`. */
export interface IssuerFlags {
  readonly domain?: string | undefined
  /** Already checked to be a server identifier. */
  readonly issuer?: string | undefined
}

/**
 * Production: issuer `https://D` (or `--issuer`), bound to `--host` (default 127.0.0.1) behind a
 * TLS proxy. Development (`AAUTH_DEV_LOOPBACK=1`): bound to 127.0.0.1, issuer
 * `http://127.0.0.1:P` (or `localhost`, or `--issuer`, whose port must then be P).
 *
 * @param what - the server, as error messages name it (`provider`, `resource`).
 * @throws {UsageError}
 */
export function plan(command: string, what: string, dev: boolean, names: IssuerFlags, host: string | undefined, port: number): Plan {
  const { domain, issuer } = names
  if (dev && host !== undefined && host !== '127.0.0.1') throw new UsageError(`with AAUTH_DEV_LOOPBACK=1 the ${what} binds 127.0.0.1 only; drop --host`, command)
  const bindHost = dev ? '127.0.0.1' : (host ?? '127.0.0.1')
  if (issuer !== undefined) {
    if (domain !== undefined) throw new UsageError('--issuer and --domain both name the issuer: give one', command)
    const url = new URL(issuer)
    const local = url.protocol === 'http:'
    if (local && (port === 0 || Number(url.port) !== port)) {
      throw new UsageError(`--issuer ${issuer} names port ${url.port || 80}, but the ${what} listens on ${port === 0 ? 'a free port (--port 0): leave --issuer out, the issuer is then http://127.0.0.1:PORT' : `port ${port}`}`, command)
    }
    return { bindHost, issuer: () => issuer, behindProxy: !local }
  }
  if (dev) {
    let name = '127.0.0.1'
    if (domain !== undefined) {
      const m = /^(127\.0\.0\.1|localhost)(?::(\d+))?$/.exec(domain)
      if (m === null) throw new UsageError(`with AAUTH_DEV_LOOPBACK=1, --domain must be 127.0.0.1[:P] or localhost[:P], not ${JSON.stringify(domain)}`, command)
      if (m[2] !== undefined && (port === 0 || Number(m[2]) !== port)) {
        throw new UsageError(`--domain ${domain} names port ${m[2]}, but the ${what} listens on ${port === 0 ? 'a free port (--port 0): leave the port out of --domain' : `port ${port}`}`, command)
      }
      name = m[1]!
    }
    return { bindHost, issuer: (p) => `http://${name}:${p}`, behindProxy: false }
  }
  if (domain === undefined) throw new UsageError('--domain D is required: the issuer is https://D (for local development set AAUTH_DEV_LOOPBACK=1)', command)
  const fixed = `https://${domain}`
  if (!isServerIdentifier(fixed)) throw new UsageError(`--domain ${JSON.stringify(domain)}: ${fixed} is not a server identifier (a lowercase host name without port, path or scheme)`, command)
  return { bindHost, issuer: () => fixed, behindProxy: true }
}

/**
 * A Node HTTP server answering with `handler()` — `503 starting` until it is set (the handler
 * usually needs the issuer, which needs the port) — and logging each request to stderr when
 * `verbose`.
 */
export function fetchServer(handler: () => ((req: Request) => Response | Promise<Response>) | undefined, verbose: boolean, ctx: Context): Server {
  return createAdaptorServer({
    fetch: async (req: Request) => {
      const h = handler()
      if (h === undefined) return new Response('starting', { status: 503 })
      const t0 = performance.now()
      const res = await h(req)
      if (verbose) ctx.stderr.write(`${req.method} ${new URL(req.url).pathname} → ${res.status} (${(performance.now() - t0).toFixed(1)} ms)\n`)
      return res
    },
  }) as Server
}

/** The `http://host:port` a server listens on, with what to do when the issuer is elsewhere. */
export function listeningLine(where: Plan, port: number, issuer: string): string {
  return `http://${where.bindHost}:${port}${where.behindProxy ? ` (serve ${issuer} through a TLS-terminating proxy to this address)` : ''}`
}

/** The signing key as the startup output shows it. */
export type KeyInfo = { readonly kid: string; readonly ephemeral: true } | { readonly kid: string; readonly file: string; readonly created: boolean }

/**
 * The server's signing keys: `--key-file` (created, mode 0600, when missing), or an ephemeral key
 * with a warning on stderr saying what stops verifying when the process exits.
 */
export async function signingKeys(keyFile: string | undefined, ctx: Context, whatStopsVerifying: string): Promise<{ keys: KeyRing; info: KeyInfo; line: string }> {
  const { key, created } = keyFile === undefined ? { key: undefined, created: false } : await readAgentKey(keyFile, { create: true })
  const keys = await KeyRing.create(key === undefined ? {} : { initial: key })
  const kid = keys.current.kid
  if (keyFile === undefined) {
    ctx.stderr.write(`aauth: warning: ephemeral signing key — ${whatStopsVerifying} stop verifying when this process exits (use --key-file FILE)\n`)
    return { keys, info: { kid, ephemeral: true }, line: `ephemeral, kid ${kid}` }
  }
  return { keys, info: { kid, file: keyFile, created }, line: `${keyFile}${created ? ' (created, mode 0600)' : ''}, kid ${kid}` }
}

/** Waits for Ctrl-C or SIGTERM, closes `server`, says so on stderr; the exit code (0). */
export async function serveUntilStopped(server: Server, ctx: Context, what: string): Promise<number> {
  const signal = await stopSignal()
  await close(server)
  ctx.stderr.write(`aauth: ${signal}: ${what} stopped\n`)
  return 0
}

/** Listens on `host:port`; resolves with the port (the one chosen for port 0). */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** Stops accepting, drops open connections, and resolves once closed. */
export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/** Resolves with the signal's name on the first SIGINT or SIGTERM. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve(signal)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}
