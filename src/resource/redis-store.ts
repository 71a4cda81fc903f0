/**
 * An {@link AAuthStore} over Redis, so that several instances of a resource behind a load
 * balancer share one replay cache (main draft §Verification (Server) step 5) and one set of
 * revocation records (§Token Revocation): a request replayed to another instance is still
 * refused, and a token revoked at one instance is refused by all.
 *
 * It uses the `redis` package (node-redis, `^6.3.1`), an optional peer dependency: it is loaded
 * with a dynamic `import()` only by {@link RedisStore.connect}, so an application that never
 * uses Redis never loads it and need not install it.
 *
 * Exported from `'aauth-kit/resource'`.
 *
 * @module
 */

import { createHash } from 'node:crypto'
import { AAuthError } from '../protocol/index.js'
import type { PerCallStore } from './per-call-store.js'
import type { AAuthStore } from './store.js'

/**
 * The few commands {@link RedisStore} sends, typed structurally so that this module's types do
 * not depend on the `redis` package. Any node-redis (`^6.3.1`) client fits: one from
 * `createClient()`, a pool from `createClientPool()`, a cluster from `createCluster()` (every
 * command touches one key) or a sentinel client.
 */
export interface RedisStoreClient {
  set(key: string, value: string, options: { condition?: 'NX'; expiration?: { type: 'PXAT'; value: number } }): Promise<unknown>
  get(key: string): Promise<unknown>
  exists(key: string): Promise<unknown>
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  /** `false` once the client was closed (checked by {@link RedisStore.connect}). */
  readonly isOpen?: boolean
}

/** Options of {@link RedisStore.connect}. */
export interface RedisStoreOptions {
  /**
   * Where to connect, e.g. `redis://127.0.0.1:6379` or `rediss://user:pass@host:6380/0`; the
   * store creates, owns and (on {@link RedisStore.close}) quits the client. Default: node-redis's
   * default, `localhost:6379`. Not with `client`.
   */
  readonly url?: string
  /**
   * An already connected node-redis client to use instead (not with `url`); the application
   * keeps owning it: {@link RedisStore.close} leaves it open, and its own options apply. Give it
   * `disableOfflineQueue: true` and a `commandOptions.timeout` so that requests fail at once
   * rather than wait while Redis is unreachable, and an `'error'` listener.
   */
  readonly client?: RedisStoreClient
  /** Prepended to every key. Default `aauth:`. */
  readonly prefix?: string
  /** For a client created from `url`: how long one connection attempt may take (ms). Default 5,000. */
  readonly connectTimeout?: number
  /** For a client created from `url`: how long one command may take (ms). Default 2,000. */
  readonly commandTimeout?: number
  /**
   * For a client created from `url`: told of every connection error, including those the client
   * recovers from by reconnecting (operations fail with `server_error` meanwhile). Default: none.
   */
  readonly onError?: (error: unknown) => void
}

/** Connection attempts (after the first) before {@link RedisStore.connect} gives up. */
const INITIAL_RETRIES = 2

/**
 * INCR, and on the first increment the window's end: `ARGV[1]` is epoch ms, or empty for none.
 * A time already past deletes the key at once (the counter was never live).
 */
const INCREMENT_SCRIPT = `local n = redis.call('INCR', KEYS[1])
if n == 1 and ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return n`
const INCREMENT_SHA = createHash('sha1').update(INCREMENT_SCRIPT).digest('hex')

/** The client methods used on a client the store created itself. */
interface OwnedClient extends RedisStoreClient {
  close(): Promise<void>
  destroy(): void
}

/**
 * The {@link AAuthStore} over Redis (node-redis `^6.3.1`), shared by every instance of a resource
 * that connects to the same Redis with the same prefix.
 *
 * - `add` is `SET key 1 NX PXAT expiresAt`; `has` is `EXISTS`; `increment` is `INCR` with
 *   `PEXPIREAT` on the first increment, in one Lua script (atomic: a fixed window).
 * - Keys live at `prefix + 'k:' + key` and counters at `prefix + 'n:' + key`: two namespaces,
 *   as in {@link MemoryStore}.
 * - Expiry is Redis's own clock; an `expiresAt` already past stores nothing (`add` answers
 *   whether a live entry existed, `increment` answers 1). `Infinity` is "never expires".
 * - Every failure of Redis (unreachable, timeout, closed store) rejects with an
 *   {@link AAuthError} `server_error`, so the resource fails closed with a 500.
 * - It is also a {@link PerCallStore} (R3 documents, per-call proposals and held calls, claims,
 *   retained results): values at `prefix + 'v:' + key`, `setIfAbsent` is `SET NX PXAT`. Pass the
 *   same store as `r3.store` so that a poll or a retry reaching another instance finds the call.
 *
 * @example
 * ```ts
 * import { createResource, RedisStore } from 'aauth-kit/resource'
 *
 * const store = await RedisStore.connect({ url: process.env.REDIS_URL })
 * const resource = createResource({ issuer: 'https://api.example', store })
 * // on shutdown:
 * await store.close()
 * ```
 */
export class RedisStore implements AAuthStore, PerCallStore {
  readonly #client: RedisStoreClient
  readonly #owned: OwnedClient | undefined
  readonly #keys: string
  readonly #counters: string
  readonly #values: string
  #closed = false

  private constructor(client: RedisStoreClient, owned: OwnedClient | undefined, prefix: string) {
    this.#client = client
    this.#owned = owned
    this.#keys = `${prefix}k:`
    this.#counters = `${prefix}n:`
    this.#values = `${prefix}v:`
  }

  /**
   * A store over an existing connected client, or over a new client connected to `url`.
   *
   * A client created here gives up connecting after a few quick attempts (so a wrong URL fails
   * here, not later); once connected, it reconnects with backoff whenever the connection drops,
   * and operations fail at once with `server_error` until it is back (no offline queue).
   *
   * @throws {AAuthError} `server_error` when Redis cannot be reached or the `redis` package is not
   *   installed.
   * @throws {TypeError} for both `url` and `client`, a closed `client`, or a bad timeout.
   *
   * @example
   * ```ts
   * const store = await RedisStore.connect({ url: 'redis://127.0.0.1:6379', prefix: 'api1:' })
   *
   * // or share the application's client:
   * import { createClient } from 'redis'
   * const client = await createClient({ url, disableOfflineQueue: true }).on('error', log).connect()
   * const shared = await RedisStore.connect({ client })
   * ```
   */
  static async connect(options: RedisStoreOptions = {}): Promise<RedisStore> {
    const prefix = options.prefix ?? 'aauth:'
    if (typeof prefix !== 'string') throw new TypeError('RedisStore: prefix must be a string')
    if (options.client !== undefined) {
      if (options.url !== undefined) throw new TypeError('RedisStore: give either url or client, not both')
      if (options.client.isOpen === false) throw new TypeError('RedisStore: the client is not connected (call client.connect() first)')
      return new RedisStore(options.client, undefined, prefix)
    }
    const connectTimeout = positive(options.connectTimeout ?? 5000, 'connectTimeout')
    const commandTimeout = positive(options.commandTimeout ?? 2000, 'commandTimeout')

    let redis: typeof import('redis')
    try {
      redis = await import('redis')
    } catch (e) {
      throw new AAuthError('server_error', 'RedisStore needs the optional peer dependency `redis` (npm install redis@^6.3.1)', { cause: e })
    }
    let established = false
    const client = redis.createClient({
      ...(options.url === undefined ? {} : { url: options.url }),
      disableOfflineQueue: true,
      commandOptions: { timeout: commandTimeout },
      socket: {
        connectTimeout,
        reconnectStrategy: (retries: number, cause: Error): number | Error => {
          if (!established) return retries < INITIAL_RETRIES ? 100 * (retries + 1) : cause
          return Math.min(50 * 2 ** Math.min(retries, 10), 2000) + Math.floor(Math.random() * 100)
        },
      },
    })
    // Without a listener, node-redis's 'error' events would be thrown by the EventEmitter.
    const onError = options.onError
    client.on('error', (e: unknown) => {
      if (onError !== undefined) {
        try { onError(e) } catch { /* the listener's own failure must not escape an EventEmitter */ }
      }
    })
    try {
      await client.connect()
    } catch (e) {
      try { client.destroy() } catch { /* already torn down */ }
      // The message never includes the URL: it may carry a password.
      throw unavailable(e)
    }
    established = true
    return new RedisStore(client, client, prefix)
  }

  /** Records `key` until `expiresAt` (epoch ms); `false` when a live entry already existed. */
  async add(key: string, expiresAt: number): Promise<boolean> {
    const at = expiry(expiresAt)
    const k = this.#keys + key
    try {
      // An entry that expires before it is stored is never live: store nothing, and answer
      // whether a live one is already there (as MemoryStore does).
      if (at !== undefined && at <= Date.now()) return Number(await this.#client.exists(k)) === 0
      const reply = await this.#client.set(k, '1', at === undefined ? { condition: 'NX' } : { condition: 'NX', expiration: { type: 'PXAT', value: at } })
      return reply !== null
    } catch (e) {
      throw unavailable(e)
    }
  }

  /** Whether a live entry exists for `key`. */
  async has(key: string): Promise<boolean> {
    try {
      return Number(await this.#client.exists(this.#keys + key)) > 0
    } catch (e) {
      throw unavailable(e)
    }
  }

  /**
   * Increments the counter `key` and returns its new value; the first increment sets its expiry
   * to `expiresAt` (epoch ms), later ones keep it (a fixed window).
   */
  async increment(key: string, expiresAt: number): Promise<number> {
    const at = expiry(expiresAt)
    const args = { keys: [this.#counters + key], arguments: [at === undefined ? '' : String(at)] }
    try {
      let reply: unknown
      try {
        reply = await this.#client.evalSha(INCREMENT_SHA, args)
      } catch (e) {
        // The script cache is empty after a restart or SCRIPT FLUSH: send the script itself.
        if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e
        reply = await this.#client.eval(INCREMENT_SCRIPT, args)
      }
      const n = Number(reply)
      if (!Number.isSafeInteger(n)) throw new TypeError(`unexpected reply to INCR: ${String(reply)}`)
      return n
    } catch (e) {
      throw unavailable(e)
    }
  }

  /** {@link PerCallStore}: stores `value` under `key` until `expiresAt` (epoch ms), replacing it. */
  async set(key: string, value: string, expiresAt: number): Promise<void> {
    const at = expiry(expiresAt)
    try {
      if (at !== undefined && at <= Date.now()) return
      await this.#client.set(this.#values + key, value, at === undefined ? {} : { expiration: { type: 'PXAT', value: at } })
    } catch (e) {
      throw unavailable(e)
    }
  }

  /** {@link PerCallStore}: the live value under `key`. */
  async get(key: string): Promise<string | undefined> {
    try {
      const v = await this.#client.get(this.#values + key)
      return typeof v === 'string' ? v : undefined
    } catch (e) {
      throw unavailable(e)
    }
  }

  /** {@link PerCallStore}: `SET key value NX PXAT expiresAt`; `true` when it stored. */
  async setIfAbsent(key: string, value: string, expiresAt: number): Promise<boolean> {
    const at = expiry(expiresAt)
    try {
      if (at !== undefined && at <= Date.now()) return false
      const reply = await this.#client.set(this.#values + key, value, at === undefined ? { condition: 'NX' } : { condition: 'NX', expiration: { type: 'PXAT', value: at } })
      return reply !== null
    } catch (e) {
      throw unavailable(e)
    }
  }

  /**
   * Quits the client the store created from `url` (waiting for commands in flight); a client
   * passed in as `client` is left open. Later operations on a store that owned its client reject
   * with `server_error`. Calling it again does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const owned = this.#owned
    if (owned === undefined) return
    try {
      if (owned.isOpen !== false) await owned.close()
    } catch {
      owned.destroy()
    }
  }
}

/** `expiresAt` as whole epoch ms for PXAT (rounded up: never shorter), or undefined for never. */
function expiry(expiresAt: number): number | undefined {
  if (expiresAt === Infinity) return undefined
  if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt)) throw new TypeError('expiresAt must be epoch milliseconds')
  return Math.ceil(expiresAt)
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`RedisStore: ${name} must be a positive number of milliseconds`)
  return value
}

/** The typed error for any failure of Redis. */
function unavailable(cause: unknown): AAuthError {
  return new AAuthError('server_error', `replay/revocation store unavailable: ${describe(cause, 0)}`, { cause })
}

/** A one-line reason; connecting to a name with several addresses fails with an AggregateError and no message. */
function describe(e: unknown, depth: number): string {
  if (!(e instanceof Error)) return String(e)
  if (e.message !== '') return e.message
  if (depth < 3 && e instanceof AggregateError && e.errors.length > 0) return e.errors.map((x: unknown) => describe(x, depth + 1)).join('; ')
  if (depth < 3 && e.cause !== undefined) return describe(e.cause, depth + 1)
  return e.name
}
