/**
 * The AAuthStore contract, one table run against both stores: the bounded MemoryStore and the
 * RedisStore over a real redis-server on loopback (AAUTH_TEST_REDIS_URL, or one started by
 * test/helpers/redis.ts). Expiry is real time with short windows and small waits, so the same
 * cases hold for both clocks. Then what only Redis has: instances sharing one Redis, clients owned
 * or lent, and Redis being unreachable (a typed `server_error`, never a hang or endless retries).
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient, type RedisClientPoolType, type RedisClientType, type RedisClusterType } from 'redis'
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest'
import { AAuthError } from '../../src/protocol/index.js'
import { MemoryStore, RedisStore, type AAuthStore, type RedisStoreClient } from '../../src/resource/index.js'
import { freePort, redisUrl, stopRedis } from '../helpers/redis.js'

/** Short real expiry, and a wait safely past it. */
const TTL = 300
const PAST_TTL = 400

const open: { close?(): Promise<void> }[] = []

afterAll(async () => {
  for (const s of open.splice(0)) await s.close?.()
  await stopRedis()
})

/** A store under a fresh prefix, so that cases never see each other's keys. */
async function redisStore(prefix = `test:${randomUUID()}:`): Promise<RedisStore> {
  const s = await RedisStore.connect({ url: await redisUrl(), prefix })
  open.push(s)
  return s
}

const stores: { name: string; make: () => Promise<AAuthStore> }[] = [
  { name: 'MemoryStore', make: async () => new MemoryStore() },
  { name: 'RedisStore', make: () => redisStore() },
]

const cases: { name: string; run: (store: AAuthStore) => Promise<void> }[] = [
  {
    name: 'add twice: the second is refused (a replay)',
    async run(s) {
      const exp = Date.now() + 60_000
      expect(await s.add('replay', exp)).toBe(true)
      expect(await s.add('replay', exp)).toBe(false)
      expect(await s.add('replay', exp + 60_000)).toBe(false)
      expect(await s.add('other', exp)).toBe(true)
    },
  },
  {
    name: 'add after expiry is accepted again',
    async run(s) {
      expect(await s.add('k', Date.now() + TTL)).toBe(true)
      expect(await s.add('k', Date.now() + TTL)).toBe(false)
      await sleep(PAST_TTL)
      expect(await s.add('k', Date.now() + TTL)).toBe(true)
      expect(await s.add('k', Date.now() + TTL)).toBe(false)
    },
  },
  {
    name: 'has: false before add, true while live, false after expiry',
    async run(s) {
      expect(await s.has('rev')).toBe(false)
      expect(await s.add('rev', Date.now() + TTL)).toBe(true)
      expect(await s.has('rev')).toBe(true)
      expect(await s.has('rev2')).toBe(false)
      await sleep(PAST_TTL)
      expect(await s.has('rev')).toBe(false)
    },
  },
  {
    name: 'increment counts 1, 2, 3 in a fixed window, then starts again at 1',
    async run(s) {
      expect(await s.increment('n', Date.now() + TTL)).toBe(1)
      // Later increments keep the first expiry: a later expiresAt does not extend the window.
      expect(await s.increment('n', Date.now() + 60_000)).toBe(2)
      expect(await s.increment('n', Date.now() + 60_000)).toBe(3)
      expect(await s.increment('m', Date.now() + 60_000)).toBe(1)
      await sleep(PAST_TTL)
      expect(await s.increment('n', Date.now() + 60_000)).toBe(1)
      expect(await s.increment('m', Date.now() + 60_000)).toBe(2)
    },
  },
  {
    name: 'expiresAt in the past: nothing is stored, and a live entry still wins',
    async run(s) {
      const past = Date.now() - 1000
      expect(await s.add('gone', past)).toBe(true)
      expect(await s.has('gone')).toBe(false)
      expect(await s.add('gone', past)).toBe(true)
      expect(await s.add('gone', Date.now() + 60_000)).toBe(true)
      expect(await s.add('gone', past)).toBe(false)
      expect(await s.increment('c', past)).toBe(1)
      expect(await s.increment('c', past)).toBe(1)
      expect(await s.increment('c', Date.now() + 60_000)).toBe(1)
      expect(await s.increment('c', past)).toBe(2)
    },
  },
  {
    name: 'many keys, concurrently',
    async run(s) {
      const exp = Date.now() + 60_000
      const keys = Array.from({ length: 500 }, (_, i) => `replay\u0000${i}\u0000GET\u0000api.example\u0000/p`)
      expect(await Promise.all(keys.map((k) => s.add(k, exp)))).toEqual(keys.map(() => true))
      expect(await Promise.all(keys.map((k) => s.add(k, exp)))).toEqual(keys.map(() => false))
      expect((await Promise.all(keys.map((k) => s.has(k)))).every(Boolean)).toBe(true)
      // Concurrent increments of one counter are atomic: each value is handed out once.
      const ns = await Promise.all(Array.from({ length: 100 }, () => s.increment('revn\u0000https://ps.example', exp)))
      expect([...ns].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    },
  },
  {
    name: 'keys and counters are separate namespaces; keys are exact (no prefix matching)',
    async run(s) {
      const exp = Date.now() + 60_000
      expect(await s.add('x', exp)).toBe(true)
      expect(await s.increment('x', exp)).toBe(1)
      expect(await s.has('x')).toBe(true)
      expect(await s.has('x ')).toBe(false)
      expect(await s.has('')).toBe(false)
      expect(await s.add('', exp)).toBe(true)
      expect(await s.add('ünïcødé \u0000 🔑', exp)).toBe(true)
      expect(await s.has('ünïcødé \u0000 🔑')).toBe(true)
    },
  },
  {
    name: 'close() resolves, and twice too',
    async run(s) {
      await s.close?.()
      await s.close?.()
    },
  },
]

describe.each(stores)('AAuthStore contract: $name', ({ make }) => {
  it.each(cases)('$name', async ({ run }) => {
    const store = await make()
    await run(store)
  })
})

describe('RedisStore', () => {
  it('two instances on one Redis (two servers behind a load balancer) see each other', async () => {
    const prefix = `test:${randomUUID()}:`
    const a = await redisStore(prefix)
    const b = await redisStore(prefix)
    const exp = Date.now() + 60_000
    expect(await a.add('replay', exp)).toBe(true)
    expect(await b.add('replay', exp)).toBe(false)
    expect(await b.add('rev', exp)).toBe(true)
    expect(await a.has('rev')).toBe(true)
    expect(await a.increment('revn', exp)).toBe(1)
    expect(await b.increment('revn', exp)).toBe(2)
    expect(await a.increment('revn', exp)).toBe(3)
    // Another prefix is another store.
    const c = await redisStore(`test:${randomUUID()}:`)
    expect(await c.has('rev')).toBe(false)
    expect(await c.add('replay', exp)).toBe(true)
  })

  it('the default prefix is aauth:, keys under k: and counters under n:', async () => {
    const url = await redisUrl()
    const client = createClient({ url })
    client.on('error', () => {})
    await client.connect()
    try {
      const store = await RedisStore.connect({ client })
      const id = randomUUID()
      await store.add(id, Date.now() + 5000)
      await store.increment(id, Date.now() + 5000)
      expect(await client.get(`aauth:k:${id}`)).toBe('1')
      expect(await client.get(`aauth:n:${id}`)).toBe('1')
      const ttl = await client.pTTL(`aauth:k:${id}`)
      expect(ttl).toBeGreaterThan(3000)
      expect(ttl).toBeLessThanOrEqual(5000)
      expect(await client.pTTL(`aauth:n:${id}`)).toBeGreaterThan(3000)
      await client.del([`aauth:k:${id}`, `aauth:n:${id}`])
    } finally {
      client.destroy()
    }
  })

  it('a lent client stays open after close(); an owned one is quit, and later calls fail typed', async () => {
    const url = await redisUrl()
    const client = createClient({ url })
    client.on('error', () => {})
    await client.connect()
    try {
      const lent = await RedisStore.connect({ client, prefix: `test:${randomUUID()}:` })
      expect(await lent.add('a', Date.now() + 5000)).toBe(true)
      await lent.close()
      expect(client.isOpen).toBe(true)
      expect(await client.ping()).toBe('PONG')
      // The store still works over the application's client.
      expect(await lent.has('a')).toBe(true)
    } finally {
      client.destroy()
    }
    // A closed client is refused up front.
    await expect(RedisStore.connect({ client })).rejects.toThrow(TypeError)
    await expect(RedisStore.connect({ client, url })).rejects.toThrow(TypeError)

    const owned = await RedisStore.connect({ url, prefix: `test:${randomUUID()}:` })
    expect(await owned.add('a', Date.now() + 5000)).toBe(true)
    await owned.close()
    await owned.close()
    const err = await owned.add('b', Date.now() + 5000).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AAuthError)
    expect((err as AAuthError).code).toBe('server_error')
    await expect(owned.has('a')).rejects.toMatchObject({ code: 'server_error' })
    await expect(owned.increment('n', Date.now() + 5000)).rejects.toMatchObject({ code: 'server_error' })
  })

  it('increment survives an empty script cache (SCRIPT FLUSH, or a restarted Redis)', async () => {
    const url = await redisUrl()
    const client = createClient({ url })
    client.on('error', () => {})
    await client.connect()
    try {
      const store = await RedisStore.connect({ client, prefix: `test:${randomUUID()}:` })
      expect(await store.increment('n', Date.now() + 5000)).toBe(1)
      await client.scriptFlush()
      expect(await store.increment('n', Date.now() + 5000)).toBe(2)
    } finally {
      client.destroy()
    }
  })

  it('Redis unreachable at connect: a typed server_error, quickly, with no retries left running', async () => {
    const port = await freePort()
    const started = Date.now()
    const err = await RedisStore.connect({ url: `redis://:s3cret@127.0.0.1:${port}`, connectTimeout: 1000 }).catch((e: unknown) => e)
    expect(Date.now() - started).toBeLessThan(3000)
    expect(err).toBeInstanceOf(AAuthError)
    expect((err as AAuthError).code).toBe('server_error')
    expect((err as AAuthError).message).toMatch(/^replay\/revocation store unavailable: .*ECONNREFUSED/)
    // The URL's password never reaches the message.
    expect((err as AAuthError).message).not.toContain('s3cret')
    expect((err as AAuthError).cause).toBeDefined()
  })

  it('Redis lost after connect: operations fail typed at once (no queue), and recover when it is back', async () => {
    const url = await redisUrl()
    const target = new URL(url)
    const proxy = await startProxy(Number(target.port || 6379), target.hostname)
    const errors: unknown[] = []
    const store = await RedisStore.connect({ url: `redis://127.0.0.1:${proxy.port}`, prefix: `test:${randomUUID()}:`, onError: (e) => errors.push(e) })
    open.push(store)
    const other = await RedisStore.connect({ url: `redis://127.0.0.1:${proxy.port}` })
    expect(await store.add('before', Date.now() + 60_000)).toBe(true)

    await proxy.stop()
    // Closing while Redis is away resolves at once and ends the reconnection attempts.
    const closing = Date.now()
    await other.close()
    expect(Date.now() - closing).toBeLessThan(1000)
    const started = Date.now()
    for (const op of [() => store.add('during', Date.now() + 60_000), () => store.has('before'), () => store.increment('n', Date.now() + 60_000)]) {
      const err = await op().catch((e: unknown) => e)
      expect(err).toBeInstanceOf(AAuthError)
      expect((err as AAuthError).code).toBe('server_error')
    }
    expect(Date.now() - started).toBeLessThan(1000)
    expect(errors.length).toBeGreaterThan(0)

    await proxy.restart()
    let recovered = false
    for (let i = 0; i < 60 && !recovered; i++) {
      recovered = await store.has('before').catch(() => false)
      if (!recovered) await sleep(100)
    }
    expect(recovered).toBe(true)
    expect(await store.add('before', Date.now() + 60_000)).toBe(false)
    await store.close()
    await proxy.stop()
  })

  it('accepts any node-redis client, pool or cluster (types), and loads redis only on connect()', () => {
    expectTypeOf<RedisClientType>().toExtend<RedisStoreClient>()
    expectTypeOf<ReturnType<typeof createClient>>().toExtend<RedisStoreClient>()
    expectTypeOf<RedisClientPoolType>().toExtend<RedisStoreClient>()
    expectTypeOf<RedisClusterType>().toExtend<RedisStoreClient>()
    // verbatimModuleSyntax erases `import type`; the only runtime reference is the dynamic import.
    const source = readFileSync(new URL('../../src/resource/redis-store.ts', import.meta.url), 'utf8')
    expect(source).not.toMatch(/^import\s+(?!type\b)[^\n]*from\s+'redis'/m)
    expect(source).not.toMatch(/require\(\s*'redis'/)
    expect(source).toContain("await import('redis')")
  })
})

/** A TCP relay to Redis on loopback that can be cut (server closed, connections dropped) and resumed on the same port. */
async function startProxy(targetPort: number, targetHost: string): Promise<{ port: number; stop(): Promise<void>; restart(): Promise<void> }> {
  const port = await freePort()
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const listen = async (): Promise<void> => {
    const s = createServer((inbound) => {
      const outbound = tcpConnect({ host: targetHost, port: targetPort })
      for (const sock of [inbound, outbound]) {
        sockets.add(sock)
        sock.on('close', () => sockets.delete(sock))
        sock.on('error', () => { inbound.destroy(); outbound.destroy() })
      }
      inbound.pipe(outbound).pipe(inbound)
    })
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject)
      s.listen(port, '127.0.0.1', resolve)
    })
    server = s
  }
  await listen()
  return {
    port,
    async stop() {
      const s = server
      server = undefined
      if (s === undefined) return
      const closed = new Promise<void>((resolve) => s.close(() => resolve()))
      for (const sock of sockets) sock.destroy()
      await closed
    },
    restart: listen,
  }
}
