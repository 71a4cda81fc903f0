/**
 * The {@link PersonServerStore} over SQLite (better-sqlite3): the embedded default of the Person
 * Server, one database file in WAL mode (design.md "Stores are interfaces").
 *
 * better-sqlite3 is synchronous: every method runs to completion on the calling thread and
 * returns an already settled promise, so calls never interleave and every method is safe to call
 * concurrently. A {@link PersonServerStore.commit} is one `BEGIN IMMEDIATE` transaction.
 *
 * @module
 */

import Database from 'better-sqlite3'
import { migrateSqlite, sqliteSchemaVersion } from './migrations.js'
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js'
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

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** The database file, created if missing; `':memory:'` for a private in-memory database (tests). */
  readonly filename: string
  /**
   * `PRAGMA synchronous`. `NORMAL` (the default) in WAL mode makes every commit durable against a
   * crash of the process (even `SIGKILL`): the transaction is in the WAL file, in the operating
   * system's cache, before `commit` resolves. `FULL` also syncs the WAL to the disk on every
   * commit, for durability against power loss and operating-system crashes, at the price of one
   * `fsync` per commit.
   */
  readonly synchronous?: 'NORMAL' | 'FULL'
  /** The clock (epoch ms) for the `applied_at` of migrations. Default `Date.now`. */
  readonly now?: () => number
  /**
   * WAL checkpoints (files only): `worker` (default) copies the WAL into the database from a
   * worker thread every second, so no request waits for a checkpoint's `fsync`; `inline` leaves it
   * to SQLite's automatic checkpoint inside commits.
   */
  readonly checkpoint?: 'worker' | 'inline'
}

/** Thrown inside the transaction when the compare-and-set of `batch.pending` misses, to roll it back. */
const CAS_MISS: unique symbol = Symbol('pending compare-and-set missed')

/** A commit waiting for the group transaction of this turn of the event loop. */
interface QueuedCommit {
  readonly plan: CommitPlan
  readonly resolve: (r: { readonly applied: boolean }) => void
  readonly reject: (e: unknown) => void
  outcome?: { readonly applied: boolean } | { readonly error: unknown }
}

/**
 * The {@link PersonServerStore} over one SQLite database through better-sqlite3.
 *
 * - Opened with `journal_mode=WAL` (files), `synchronous=NORMAL` (or `FULL`), `foreign_keys=ON`
 *   and `busy_timeout=5000`, so several processes may share the file (each write waits up to 5 s
 *   for the single writer lock).
 * - Statements are prepared once, on first use, and reused.
 * - {@link SqliteStore.commit} runs each batch all-or-nothing (commits of one event-loop turn
 *   share one `BEGIN IMMEDIATE` transaction, a savepoint each): the
 *   compare-and-set of `batch.pending` first; when it changes no row, the transaction is rolled
 *   back and `{ applied: false }` returned; any failure rolls everything back and rejects.
 *
 * @example
 * ```ts
 * const store = await SqliteStore.open({ filename: '/var/lib/aauth/ps.db' })
 * await store.commit({ persons: [{ id: 'p1', username: 'alice', displayName: 'Alice', createdAt: Date.now() }] })
 * await store.close()
 * ```
 */
export class SqliteStore implements PersonServerStore {
  readonly #db: Database.Database
  readonly #now: () => number
  readonly #statements = new Map<string, Database.Statement<Param[]>>()
  readonly #transaction: Database.Transaction<(plan: CommitPlan) => void>
  /** Group commit: the commits queued in one turn of the event loop, in one transaction. */
  readonly #group: Database.Transaction<(queue: readonly QueuedCommit[]) => void>
  #queue: QueuedCommit[] = []
  #checkpointer: Checkpointer | undefined
  #closed = false

  private constructor(db: Database.Database, now: () => number) {
    this.#db = db
    this.#now = now
    this.#transaction = db.transaction((plan: CommitPlan) => {
      if (plan.cas !== undefined && this.#run(plan.cas) === 0) throw CAS_MISS
      for (const step of plan.steps) if ('sql' in step && this.#run(step) === 0 && step.mustChange === true) throw CAS_MISS
    })
    // Each batch in its own savepoint (better-sqlite3 nests transactions that way): a batch that
    // fails or misses its compare-and-set rolls back alone; the others commit together.
    this.#group = db.transaction((queue: readonly QueuedCommit[]) => {
      for (const item of queue) {
        try {
          this.#transaction(item.plan)
          item.outcome = { applied: true }
        } catch (e) {
          item.outcome = e === CAS_MISS ? { applied: false } : { error: e }
        }
      }
    })
  }

  /** One batch in its own `BEGIN IMMEDIATE` transaction. */
  #commitOne(item: QueuedCommit): void {
    try {
      this.#transaction.immediate(item.plan)
      item.resolve({ applied: true })
    } catch (e) {
      if (e === CAS_MISS) item.resolve({ applied: false })
      else item.reject(e)
    }
  }

  /**
   * Runs the queued commits in one `BEGIN IMMEDIATE` transaction and settles them once it is
   * committed (each is then as durable as alone). If the group's COMMIT itself fails (a deferred
   * foreign-key check of one batch), each batch is run again on its own so one bad batch cannot
   * fail the others.
   */
  #flush(): void {
    const queue = this.#queue
    this.#queue = []
    if (queue.length === 0) return
    if (queue.length === 1) return this.#commitOne(queue[0]!)
    try {
      this.#group.immediate(queue)
    } catch {
      for (const item of queue) this.#commitOne(item)
      return
    }
    for (const item of queue) {
      const o = item.outcome!
      if ('error' in o) item.reject(o.error)
      else item.resolve(o)
    }
  }

  /**
   * Opens (creating if needed) the database and brings its schema to the latest version.
   *
   * @throws when the file cannot be opened or a migration fails.
   */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const synchronous = options.synchronous ?? 'NORMAL'
    if (synchronous !== 'NORMAL' && synchronous !== 'FULL') throw new TypeError("SqliteStore: synchronous must be 'NORMAL' or 'FULL'")
    const db = new Database(options.filename)
    try {
      if (options.filename !== ':memory:' && options.filename !== '') db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${synchronous}`)
      db.pragma('foreign_keys = ON')
      db.pragma('busy_timeout = 5000')
      const store = new SqliteStore(db, options.now ?? Date.now)
      await store.migrate()
      const file = options.filename !== ':memory:' && options.filename !== ''
      if (file && options.checkpoint !== 'inline') {
        db.pragma('wal_autocheckpoint = 0')
        store.#checkpointer = startCheckpointer(options.filename, 1000, (m) => console.error(`SqliteStore: WAL checkpoint failed: ${m}`))
      }
      return store
    } catch (e) {
      db.close()
      throw e
    }
  }

  /** Applies the missing migrations (up to `LATEST_SCHEMA_VERSION`); a no-op when there are none. */
  async migrate(): Promise<void> {
    migrateSqlite(this.#open(), this.#now)
  }

  /** The applied schema version. */
  async schemaVersion(): Promise<number> {
    return sqliteSchemaVersion(this.#open())
  }

  /** Closes the database (a checkpoint of the WAL included). Calling it again does nothing. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#flush()
    this.#closed = true
    await this.#checkpointer?.close()
    this.#statements.clear()
    this.#db.close()
  }

  /**
   * The atomic write ({@link PersonServerStore.commit}): the batch is all-or-nothing, the
   * compare-and-set of `batch.pending` first. Resolves `{ applied: false }` (nothing written) when
   * it misses; rejects (nothing written) when any statement fails. Commits made in the same turn of
   * the event loop share one transaction (group commit: one WAL append for many issuances), each
   * in its own savepoint; every promise resolves only after that transaction is committed.
   */
  async commit(batch: StoreBatch): Promise<{ readonly applied: boolean }> {
    const plan = planCommit(batch)
    this.#open()
    return new Promise((resolve, reject) => {
      this.#queue.push({ plan, resolve, reject })
      if (this.#queue.length === 1) setImmediate(() => this.#flush())
    })
  }

  /** As {@link PersonServerStore.setting}. */
  async setting(name: string, value: string): Promise<string> {
    this.#run({ sql: SQL.insertSetting, params: [name, value] })
    return textOf(this.#get(SQL.getSetting, name), 'value') ?? value
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
    return this.#all(SQL.listPersons).map(toPerson)
  }

  /** As {@link PersonServerStore.getBinding}. */
  async getBinding(agentIss: string, agentSub: string): Promise<AgentBinding | undefined> {
    return this.#one(toBinding, SQL.getBinding, agentIss, agentSub)
  }

  /** As {@link PersonServerStore.listBindings}. */
  async listBindings(personId: string): Promise<AgentBinding[]> {
    return this.#all(SQL.listBindings, personId).map(toBinding)
  }

  /** As {@link PersonServerStore.activeGrants} (unexpired: `expiresAt > now`), oldest first. */
  async activeGrants(personId: string, agentIss: string, agentSub: string, resource: string, now: number): Promise<Grant[]> {
    return this.#all(SQL.activeGrants, personId, agentIss, agentSub, resource, now).map(toGrant)
  }

  /** As {@link PersonServerStore.getGrant}. */
  async getGrant(id: string): Promise<Grant | undefined> {
    return this.#one(toGrant, SQL.getGrant, id)
  }

  /** As {@link PersonServerStore.listGrants}. */
  async listGrants(personId: string): Promise<Grant[]> {
    return this.#all(SQL.listGrants, personId).map(toGrant)
  }

  /** As {@link PersonServerStore.personForSubject}. */
  async personForSubject(resource: string, sub: string): Promise<string | undefined> {
    return textOf(this.#get(SQL.personForSubject, resource, sub), 'person_id')
  }

  /** As {@link PersonServerStore.getIssued}. */
  async getIssued(jti: string): Promise<IssuedToken | undefined> {
    return this.#one(toIssued, SQL.getIssued, jti)
  }

  /** As {@link PersonServerStore.liveIssued} (unexpired: `expiresAt > now`), oldest first. */
  async liveIssued(filter: { readonly agentIss: string; readonly agentSub: string; readonly personId?: string; readonly resource?: string; readonly now: number }): Promise<IssuedToken[]> {
    const q = liveIssuedQuery(filter)
    return this.#all(q.sql, ...q.params).map(toIssued)
  }

  /** As {@link PersonServerStore.issuedFromUpstream}. */
  async issuedFromUpstream(upstreamJtis: readonly string[], now: number): Promise<IssuedToken[]> {
    if (upstreamJtis.length === 0) return []
    const q = issuedFromUpstreamQuery(upstreamJtis, now)
    return this.#all(q.sql, ...q.params).map(toIssued)
  }

  /** As {@link PersonServerStore.noteAgentToken}. */
  async noteAgentToken(rec: AgentTokenRecord): Promise<void> {
    this.#run({ sql: SQL.noteAgentToken, params: [rec.iss, rec.jti, rec.sub, rec.expiresAt] })
  }

  /** As {@link PersonServerStore.getAgentToken}. */
  async getAgentToken(iss: string, jti: string): Promise<AgentTokenRecord | undefined> {
    return this.#one(toAgentToken, SQL.getAgentToken, iss, jti)
  }

  /** As {@link PersonServerStore.addRevocation}. */
  async addRevocation(rec: ReceivedRevocation): Promise<boolean> {
    return this.#run({ sql: SQL.addRevocation, params: [rec.iss, rec.jti, rec.expiresAt, rec.receivedAt] }) === 1
  }

  /** As {@link PersonServerStore.isRevoked}. */
  async isRevoked(iss: string, jti: string): Promise<boolean> {
    return this.#get(SQL.isRevoked, iss, jti) !== undefined
  }

  /** As {@link PersonServerStore.countRevocations}; live: `expiresAt > now`. */
  async countRevocations(iss: string, now: number): Promise<number> {
    return countOf(this.#get(SQL.countRevocations, iss, now), 'n')
  }

  /** As {@link PersonServerStore.recordOutcomes}, in one transaction: the outcome with the latest `at` wins; on a tie, the later call. */
  async recordOutcomes(outcomes: readonly RevocationOutcome[]): Promise<void> {
    if (outcomes.length > 0) this.#transaction.immediate({ steps: outcomeSteps(outcomes) })
  }

  /** The outcomes recorded for `jti` ({@link PersonServerStore.outcomes}), by recipient. */
  async outcomes(jti: string): Promise<RevocationOutcome[]> {
    return this.#all(SQL.outcomes, jti).map(toOutcome)
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
    return this.#all(SQL.openPending, personId).map(toPending)
  }

  /** As {@link PersonServerStore.pendingForResourceToken}, oldest first. */
  async pendingForResourceToken(iss: string, jti: string): Promise<PendingRecord[]> {
    return this.#all(SQL.pendingForResourceToken, iss, jti).map(toPending)
  }

  /** As {@link PersonServerStore.getMission}. */
  async getMission(s256: string): Promise<MissionRecord | undefined> {
    return this.#one(toMission, SQL.getMission, s256)
  }

  /** As {@link PersonServerStore.listMissions}. */
  async listMissions(personId: string): Promise<MissionRecord[]> {
    return this.#all(SQL.listMissions, personId).map(toMission)
  }

  /** As {@link PersonServerStore.missionLog}. */
  async missionLog(s256: string): Promise<MissionLogEntry[]> {
    return this.#all(SQL.missionLog, s256).map(toMissionLog)
  }

  /** As {@link PersonServerStore.queryAudit}. */
  async queryAudit(q: AuditQuery): Promise<AuditEvent[]> {
    const s = auditQuery(q)
    return this.#all(s.sql, ...s.params).map(toAudit)
  }

  /**
   * As {@link PersonServerStore.purge}, in one transaction: issued tokens, agent tokens,
   * revocations and pending requests (whatever their state) whose `expiresAt` is before
   * `now - skewMs`, then the revocation outcomes of issued tokens no longer held.
   */
  async purge(now: number, skewMs: number): Promise<void> {
    this.#transaction.immediate({ steps: purgeSteps(now, skewMs) })
  }

  #open(): Database.Database {
    if (this.#closed) throw new Error('SqliteStore: the store is closed')
    return this.#db
  }

  #statement(sql: string): Database.Statement<Param[]> {
    let s = this.#statements.get(sql)
    if (s === undefined) {
      s = this.#open().prepare<Param[]>(sql)
      this.#statements.set(sql, s)
    }
    return s
  }

  /** Runs a write; the number of rows changed. */
  #run(s: Statement): number {
    return this.#statement(s.sql).run(...s.params).changes
  }

  #get(sql: string, ...params: Param[]): Row | undefined {
    return this.#statement(sql).get(...params) as Row | undefined
  }

  #all(sql: string, ...params: Param[]): Row[] {
    return this.#statement(sql).all(...params) as Row[]
  }

  #one<T>(map: (row: Row) => T, sql: string, ...params: Param[]): T | undefined {
    const row = this.#get(sql, ...params)
    return row === undefined ? undefined : map(row)
  }
}
