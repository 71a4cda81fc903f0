/**
 * The {@link PersonServerStore} over PostgreSQL, for several Person Server instances behind a
 * load balancer sharing one database (design.md "Stores are interfaces").
 *
 * It uses the `pg` package (node-postgres, `^8.23.1`), an optional peer dependency: it is loaded
 * with a dynamic `import()` only by {@link PostgresStore.connect} when the store creates its own
 * pool, so an application that never uses PostgreSQL never loads it and need not install it. The
 * types here are structural for the same reason: a `pg.Pool` fits {@link PostgresPool}.
 *
 * @module
 */

import { createHash } from 'node:crypto'
import { migratePostgres, postgresSchemaVersion, quoteIdent, type PgQueryable } from './migrations.js'
import {
  SQL,
  auditQuery,
  countOf,
  liveIssuedQuery,
  issuedFromUpstreamQuery,
  outcomeSteps,
  planCommit,
  purgeSteps,
  textOf,
  toAgentToken,
  toAudit,
  toBinding,
  toGrant,
  toIssued,
  toMission,
  toMissionLog,
  toOutcome,
  toPending,
  toPerson,
  type CommitPlan,
  type Param,
  type Row,
  type Statement,
} from './rows.js'
import type {
  AgentBinding,
  AgentTokenRecord,
  AuditEvent,
  AuditQuery,
  Grant,
  IssuedToken,
  MissionLogEntry,
  MissionRecord,
  PendingRecord,
  PersonRecord,
  PersonServerStore,
  ReceivedRevocation,
  RevocationOutcome,
  StoreBatch,
} from './types.js'

/** A connection checked out of a {@link PostgresPool} (a `pg` `PoolClient` fits). */
export interface PostgresPoolClient extends PgQueryable {
  /** Returns the connection to the pool; with an error, the pool discards it. */
  release(err?: Error | boolean): void
}

/** The pool methods {@link PostgresStore} uses (a `pg` `Pool` fits). */
export interface PostgresPool {
  connect(): Promise<PostgresPoolClient>
  end(): Promise<void>
}

/** Options of {@link PostgresStore.connect}. */
export interface PostgresStoreOptions {
  /**
   * Where to connect, e.g. `postgres://ps:secret@db.internal:5432/aauth`; the store creates, owns
   * and (on {@link PostgresStore.close}) ends a pool. Default: `pg`'s defaults and the `PG*`
   * environment variables. Not with `pool`.
   */
  readonly connectionString?: string
  /**
   * A `pg` `Pool` of the application to use instead (not with `connectionString` or `max`); the
   * application keeps owning it: {@link PostgresStore.close} leaves it open. Its connections must
   * return `BIGINT` as `pg` does by default (strings) or as numbers.
   */
  readonly pool?: PostgresPool
  /**
   * The schema of the store's tables, created when missing (e.g. one per PS deployment, or per
   * test): letters, digits and `_`, not starting with a digit. Every connection's `search_path`
   * is set to it: for a pool the store creates, as a connection option; for a lent `pool`, with
   * `SET search_path` on each connection the first time the store uses it. Default: the
   * connection's own `search_path` (normally `public`).
   */
  readonly schema?: string
  /** For a pool the store creates: at most this many connections. Default 10. */
  readonly max?: number
  /** For a pool the store creates: how long getting a connection may take (ms). Default 10,000. */
  readonly connectionTimeoutMillis?: number
  /**
   * For a pool the store creates: told of errors of idle connections (the database restarting, a
   * network failure); the pool drops such a connection and opens a new one when needed. Default:
   * none (without a listener, such an error would crash the process).
   */
  readonly onError?: (error: unknown) => void
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** The statement that takes a transaction-scoped advisory lock (see `Lock` in rows.ts). */
const LOCK_SQL = 'SELECT pg_advisory_xact_lock($1::int4, $2::int4)'

/**
 * The {@link PersonServerStore} over PostgreSQL through `pg` (node-postgres `^8.23.1`).
 *
 * - {@link PostgresStore.commit} is `BEGIN` … `COMMIT` on one pooled connection, at READ
 *   COMMITTED: the compare-and-set `UPDATE pending … WHERE id = $1 AND state IN (…)` first (a
 *   concurrent commit of the same request waits for the row, then sees the new state and
 *   matches no row); when it matches nothing, `ROLLBACK` and `{ applied: false }`; on any error,
 *   `ROLLBACK` and the error. `COMMIT` returns once the WAL is flushed (with the server's
 *   default `synchronous_commit = on`).
 * - Replacing an active grant takes an advisory lock on the grant's key, and appending audit
 *   events one on the audit log, both until `COMMIT`: two instances never keep two active grants
 *   for one key, and audit `seq` order is commit order (paging with `afterSeq` never skips).
 * - Statements are named (`pg` prepares each once per connection). `BIGINT` values are
 *   converted to numbers.
 * - Migrations run at {@link PostgresStore.connect}, under an advisory lock: instances may start
 *   at once.
 *
 * @example
 * ```ts
 * const store = await PostgresStore.connect({ connectionString: process.env.DATABASE_URL, schema: 'aauth_ps' })
 * const ps = await createPersonServer({ issuer: 'https://ps.example', keys, store })
 * // on shutdown:
 * await store.close()
 * ```
 */
export class PostgresStore implements PersonServerStore {
  readonly #pool: PostgresPool
  readonly #owned: boolean
  readonly #schema: string | undefined
  /** Connections of a lent pool whose `search_path` the store has set. */
  readonly #prepared = new WeakSet<PostgresPoolClient>()
  readonly #names = new Map<string, { name: string; text: string }>()
  /** Mixed into advisory lock keys, so that stores in different schemas do not wait on each other. */
  readonly #lockSalt: number
  #closed = false

  private constructor(pool: PostgresPool, owned: boolean, schema: string | undefined) {
    this.#pool = pool
    this.#owned = owned
    this.#schema = schema
    this.#lockSalt = createHash('sha256').update(schema ?? '').digest().readInt32BE(0)
  }

  /**
   * A store over a new pool (`connectionString`, `max`) or over the application's `pool`, with
   * its schema migrated to the latest version.
   *
   * @throws {Error} "install pg to use PostgresStore" when the `pg` package is missing.
   * @throws {TypeError} for both `pool` and `connectionString`/`max`, a bad `schema` or `max`.
   * @throws the connection or migration error (a pool the store created is ended first).
   */
  static async connect(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const schema = options.schema
    if (schema !== undefined && (typeof schema !== 'string' || !SCHEMA_NAME.test(schema))) {
      throw new TypeError('PostgresStore: schema must be letters, digits and _ (at most 63), not starting with a digit')
    }
    if (options.pool !== undefined) {
      if (options.connectionString !== undefined || options.max !== undefined) throw new TypeError('PostgresStore: give either pool or connectionString/max, not both')
      const store = new PostgresStore(options.pool, false, schema)
      await store.migrate()
      return store
    }
    const max = options.max ?? 10
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('PostgresStore: max must be a positive integer')

    let pg: typeof import('pg').default
    try {
      pg = (await import('pg')).default
    } catch (e) {
      throw new Error('install pg to use PostgresStore (npm install pg@^8.23.1)', { cause: e })
    }
    const pool = new pg.Pool({
      ...(options.connectionString === undefined ? {} : { connectionString: options.connectionString }),
      max,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
      ...(schema === undefined ? {} : { options: `-c search_path=${quoteIdent(schema)}` }),
    })
    // Without a listener, an idle connection's error would be thrown by the EventEmitter.
    const onError = options.onError
    pool.on('error', (e: unknown) => {
      if (onError !== undefined) {
        try { onError(e) } catch { /* the listener's own failure must not escape an EventEmitter */ }
      }
    })
    const store = new PostgresStore(pool, true, schema)
    try {
      await store.migrate()
    } catch (e) {
      await pool.end().catch(() => undefined)
      throw e
    }
    return store
  }

  /** Applies the missing migrations under the schema's advisory lock; a no-op when there are none. */
  async migrate(): Promise<void> {
    await this.#withClient((c) => migratePostgres(c, this.#schema))
  }

  /** The applied schema version (0 before the first migration). */
  async schemaVersion(): Promise<number> {
    return this.#withClient((c) => postgresSchemaVersion(c))
  }

  /**
   * Ends the pool the store created (waiting for queries in flight); a lent `pool` is left open.
   * Later calls reject. Calling it again does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#owned) await this.#pool.end()
  }

  /**
   * The atomic write ({@link PersonServerStore.commit}): `BEGIN` … `COMMIT` on one connection, the
   * compare-and-set of `batch.pending` first. Resolves `{ applied: false }` after `ROLLBACK` when it
   * misses; rejects after `ROLLBACK` when any statement (or the deferred foreign-key check at
   * `COMMIT`) fails.
   */
  async commit(batch: StoreBatch): Promise<{ readonly applied: boolean }> {
    return { applied: await this.#transaction(planCommit(batch)) }
  }

  /** As {@link PersonServerStore.setting}. */
  async setting(name: string, value: string): Promise<string> {
    await this.#exec({ sql: SQL.insertSetting, params: [name, value] })
    return textOf(await this.#first(SQL.getSetting, name), 'value') ?? value
  }

  /** As {@link PersonServerStore.getPerson}. */
  async getPerson(id: string): Promise<PersonRecord | undefined> {
    return this.#one(toPerson, SQL.getPerson, id)
  }

  /** As {@link PersonServerStore.getPersonByUsername}. */
  async getPersonByUsername(username: string): Promise<PersonRecord | undefined> {
    return this.#one(toPerson, SQL.getPersonByUsername, username)
  }

  /** Every person, oldest first. */
  async listPersons(): Promise<PersonRecord[]> {
    return (await this.#rows(SQL.listPersons)).map(toPerson)
  }

  /** As {@link PersonServerStore.getBinding}. */
  async getBinding(agentIss: string, agentSub: string): Promise<AgentBinding | undefined> {
    return this.#one(toBinding, SQL.getBinding, agentIss, agentSub)
  }

  /** As {@link PersonServerStore.listBindings}. */
  async listBindings(personId: string): Promise<AgentBinding[]> {
    return (await this.#rows(SQL.listBindings, personId)).map(toBinding)
  }

  /** As {@link PersonServerStore.activeGrants} (unexpired: `expiresAt > now`), oldest first. */
  async activeGrants(personId: string, agentIss: string, agentSub: string, resource: string, now: number): Promise<Grant[]> {
    return (await this.#rows(SQL.activeGrants, personId, agentIss, agentSub, resource, now)).map(toGrant)
  }

  /** As {@link PersonServerStore.getGrant}. */
  async getGrant(id: string): Promise<Grant | undefined> {
    return this.#one(toGrant, SQL.getGrant, id)
  }

  /** As {@link PersonServerStore.listGrants}. */
  async listGrants(personId: string): Promise<Grant[]> {
    return (await this.#rows(SQL.listGrants, personId)).map(toGrant)
  }

  /** As {@link PersonServerStore.personForSubject}. */
  async personForSubject(resource: string, sub: string): Promise<string | undefined> {
    return textOf(await this.#first(SQL.personForSubject, resource, sub), 'person_id')
  }

  /** As {@link PersonServerStore.getIssued}. */
  async getIssued(jti: string): Promise<IssuedToken | undefined> {
    return this.#one(toIssued, SQL.getIssued, jti)
  }

  /** As {@link PersonServerStore.liveIssued} (unexpired: `expiresAt > now`), oldest first. */
  async liveIssued(filter: { readonly agentIss: string; readonly agentSub: string; readonly personId?: string; readonly resource?: string; readonly now: number }): Promise<IssuedToken[]> {
    const q = liveIssuedQuery(filter)
    return (await this.#rows(q.sql, ...q.params)).map(toIssued)
  }

  /** As {@link PersonServerStore.issuedFromUpstream}. */
  async issuedFromUpstream(upstreamJtis: readonly string[], now: number): Promise<IssuedToken[]> {
    if (upstreamJtis.length === 0) return []
    const q = issuedFromUpstreamQuery(upstreamJtis, now)
    return (await this.#rows(q.sql, ...q.params)).map(toIssued)
  }

  /** As {@link PersonServerStore.noteAgentToken}. */
  async noteAgentToken(rec: AgentTokenRecord): Promise<void> {
    await this.#exec({ sql: SQL.noteAgentToken, params: [rec.iss, rec.jti, rec.sub, rec.expiresAt] })
  }

  /** As {@link PersonServerStore.getAgentToken}. */
  async getAgentToken(iss: string, jti: string): Promise<AgentTokenRecord | undefined> {
    return this.#one(toAgentToken, SQL.getAgentToken, iss, jti)
  }

  /** As {@link PersonServerStore.addRevocation}. */
  async addRevocation(rec: ReceivedRevocation): Promise<boolean> {
    return (await this.#exec({ sql: SQL.addRevocation, params: [rec.iss, rec.jti, rec.expiresAt, rec.receivedAt] })) === 1
  }

  /** As {@link PersonServerStore.isRevoked}. */
  async isRevoked(iss: string, jti: string): Promise<boolean> {
    return (await this.#first(SQL.isRevoked, iss, jti)) !== undefined
  }

  /** As {@link PersonServerStore.countRevocations}; live: `expiresAt > now`. */
  async countRevocations(iss: string, now: number): Promise<number> {
    return countOf(await this.#first(SQL.countRevocations, iss, now), 'n')
  }

  /** As {@link PersonServerStore.recordOutcomes}, in one transaction: the outcome with the latest `at` wins; on a tie, the later call. */
  async recordOutcomes(outcomes: readonly RevocationOutcome[]): Promise<void> {
    if (outcomes.length > 0) await this.#transaction({ steps: outcomeSteps(outcomes) })
  }

  /** The outcomes recorded for `jti` ({@link PersonServerStore.outcomes}), by recipient. */
  async outcomes(jti: string): Promise<RevocationOutcome[]> {
    return (await this.#rows(SQL.outcomes, jti)).map(toOutcome)
  }

  /** As {@link PersonServerStore.getPending}. */
  async getPending(id: string): Promise<PendingRecord | undefined> {
    return this.#one(toPending, SQL.getPending, id)
  }

  /** The request holding `code`, whatever its state ({@link PersonServerStore.getPendingByCode}); a consumed code is held by none. */
  async getPendingByCode(code: string): Promise<PendingRecord | undefined> {
    return this.#one(toPending, SQL.getPendingByCode, code)
  }

  /** As {@link PersonServerStore.openPending}. */
  async openPending(personId: string): Promise<PendingRecord[]> {
    return (await this.#rows(SQL.openPending, personId)).map(toPending)
  }

  /** As {@link PersonServerStore.pendingForResourceToken}, oldest first. */
  async pendingForResourceToken(iss: string, jti: string): Promise<PendingRecord[]> {
    return (await this.#rows(SQL.pendingForResourceToken, iss, jti)).map(toPending)
  }

  /** As {@link PersonServerStore.getMission}. */
  async getMission(s256: string): Promise<MissionRecord | undefined> {
    return this.#one(toMission, SQL.getMission, s256)
  }

  /** As {@link PersonServerStore.listMissions}. */
  async listMissions(personId: string): Promise<MissionRecord[]> {
    return (await this.#rows(SQL.listMissions, personId)).map(toMission)
  }

  /** As {@link PersonServerStore.missionLog}. */
  async missionLog(s256: string): Promise<MissionLogEntry[]> {
    return (await this.#rows(SQL.missionLog, s256)).map(toMissionLog)
  }

  /** As {@link PersonServerStore.queryAudit}. */
  async queryAudit(q: AuditQuery): Promise<AuditEvent[]> {
    const s = auditQuery(q)
    return (await this.#rows(s.sql, ...s.params)).map(toAudit)
  }

  /**
   * As {@link PersonServerStore.purge}, in one transaction: issued tokens, agent tokens,
   * revocations and pending requests (whatever their state) whose `expiresAt` is before
   * `now - skewMs`, then the revocation outcomes of issued tokens no longer held.
   */
  async purge(now: number, skewMs: number): Promise<void> {
    await this.#transaction({ steps: purgeSteps(now, skewMs) })
  }

  /** Runs `fn` on one pooled connection; a connection that failed other than with an SQL error is discarded. */
  async #withClient<T>(fn: (c: PostgresPoolClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('PostgresStore: the store is closed')
    const c = await this.#pool.connect()
    let broken: Error | undefined
    try {
      if (!this.#owned && this.#schema !== undefined && !this.#prepared.has(c)) {
        await c.query({ text: `SET search_path TO ${quoteIdent(this.#schema)}` })
        this.#prepared.add(c)
      }
      return await fn(c)
    } catch (e) {
      if (!isSqlError(e)) broken = e instanceof Error ? e : new Error(String(e))
      throw e
    } finally {
      c.release(broken)
    }
  }

  /** A shared statement as a named `pg` query (prepared once per connection). */
  #query(s: Statement): { name: string; text: string; values: Param[] } {
    let named = this.#names.get(s.sql)
    if (named === undefined) {
      let n = 0
      const text = s.sql.replace(/\?/g, () => `$${++n}`)
      named = { name: `aauth_ps_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text }
      this.#names.set(s.sql, named)
    }
    return { ...named, values: [...s.params] }
  }

  /** Runs one statement on `c`; the number of rows it changed or returned. */
  async #run(c: PgQueryable, s: Statement): Promise<number> {
    return (await c.query(this.#query(s))).rowCount ?? 0
  }

  async #exec(s: Statement): Promise<number> {
    return this.#withClient((c) => this.#run(c, s))
  }

  async #rows(sql: string, ...params: Param[]): Promise<Row[]> {
    return this.#withClient(async (c) => (await c.query(this.#query({ sql, params }))).rows)
  }

  async #first(sql: string, ...params: Param[]): Promise<Row | undefined> {
    return (await this.#rows(sql, ...params))[0]
  }

  async #one<T>(map: (row: Row) => T, sql: string, ...params: Param[]): Promise<T | undefined> {
    const row = await this.#first(sql, ...params)
    return row === undefined ? undefined : map(row)
  }

  /** Runs a plan in one transaction; `false` (rolled back) when its compare-and-set matched no row. */
  async #transaction(plan: CommitPlan): Promise<boolean> {
    return this.#withClient(async (c) => {
      await c.query({ text: 'BEGIN' })
      try {
        if (plan.cas !== undefined && (await this.#run(c, plan.cas)) === 0) {
          await c.query({ text: 'ROLLBACK' })
          return false
        }
        for (const step of plan.steps) {
          if ('lock' in step) await c.query({ name: 'aauth_ps_lock', text: LOCK_SQL, values: [step.lock[0], step.lock[1] ^ this.#lockSalt] })
          else if ((await this.#run(c, step)) === 0 && step.mustChange === true) {
            await c.query({ text: 'ROLLBACK' })
            return false
          }
        }
        await c.query({ text: 'COMMIT' })
        return true
      } catch (e) {
        try {
          await c.query({ text: 'ROLLBACK' })
        } catch (rollback) {
          // The connection is unusable: make #withClient discard it.
          throw new Error('PostgresStore: transaction failed and could not be rolled back', { cause: new AggregateError([e, rollback]) })
        }
        throw e
      }
    })
  }
}

/** Whether `e` is an error the server reported for a statement (the connection is still usable). */
function isSqlError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && typeof (e as { severity?: unknown }).severity === 'string' && (e as { severity?: unknown }).severity === 'ERROR'
}
