/**
 * The Person Server's schema as versioned migrations, one list for both backends
 * ({@link SqliteStore} and {@link PostgresStore}), and the two runners that apply what is missing.
 *
 * - Every migration has a `version` (1, 2, 3 …, never reused) and its statements per dialect. The
 *   applied versions are rows of the `schema_version` table; a runner applies, in order and in
 *   one transaction, every migration whose version is above the highest row, then records it.
 * - Running a runner again is a no-op. Two PS instances starting at once against one PostgreSQL
 *   are serialised by a transaction-scoped advisory lock (`pg_advisory_xact_lock`) taken before
 *   `schema_version` is read, so the second one finds the schema already there. SQLite serialises
 *   them with `BEGIN IMMEDIATE` (the database's single write lock).
 * - A database already at a higher version than this code knows (a newer PS ran first) is left
 *   as it is: migrations only add, so an older PS keeps working through a rolling upgrade.
 * - A new migration is appended, never edited: an installed database has run the old text.
 *
 * Times are epoch milliseconds in `INTEGER` (SQLite) / `BIGINT` (PostgreSQL) columns. The JSON
 * members (`view`, `work`, `result`, `chat`, `detail`, `permissions`) are stored as JSON text in
 * `TEXT` columns in both dialects, so that they come back exactly as stored (no `jsonb` key
 * reordering) and both backends behave the same; nothing queries inside them. PostgreSQL text
 * columns use the `"C"` collation so that sorting and comparing are bytewise, as in SQLite.
 * SQLite tables are `STRICT` (a fractional or textual time is refused, as PostgreSQL refuses it).
 * Foreign keys (a binding, grant, subject, issued token, pending request or mission names an
 * existing person; a mission log entry an existing mission) are `DEFERRABLE INITIALLY DEFERRED`:
 * checked at `COMMIT`, so the members of one batch may come in any order.
 *
 * @module
 */

import { createHash } from 'node:crypto'
import type { Database } from 'better-sqlite3'

/**
 * The one method of a PostgreSQL connection the runner and {@link PostgresStore} use: a `pg`
 * `PoolClient` or `Client` fits. Typed structurally so that these modules' types do not depend on
 * the optional `pg` package.
 */
export interface PgQueryable {
  query(config: { readonly text: string; readonly values?: unknown[]; readonly name?: string }): Promise<{ readonly rows: Record<string, unknown>[]; readonly rowCount: number | null }>
}

/** The two SQL dialects of the store. */
export type Dialect = 'sqlite' | 'postgres'

/** One schema version: the statements that take the schema from `version - 1` to `version`. */
export interface Migration {
  /** 1, 2, 3 …: consecutive, in array order. */
  readonly version: number
  /** What it changes, for people. */
  readonly description: string
  /** SQLite statements (better-sqlite3 `exec`), run in order. */
  readonly sqlite: readonly string[]
  /** PostgreSQL statements, run in order. */
  readonly postgres: readonly string[]
}

/**
 * Version 1: every table of the store (design.md "Stores are interfaces"). Written once for both
 * dialects; the few differences are the column types and the `seq` columns.
 */
function version1(d: Dialect): string[] {
  const text = d === 'postgres' ? 'TEXT COLLATE "C"' : 'TEXT'
  const int = d === 'postgres' ? 'BIGINT' : 'INTEGER'
  const seq = d === 'postgres' ? 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT'
  const strict = d === 'sqlite' ? ' STRICT' : ''
  // Checked at COMMIT, so that the members of one batch may come in any order (a pending
  // request naming a person added later in the same batch).
  const deferred = 'DEFERRABLE INITIALLY DEFERRED'
  return [
    // The people the PS represents.
    `CREATE TABLE persons (
      id ${text} NOT NULL PRIMARY KEY,
      username ${text} NOT NULL UNIQUE,
      display_name ${text} NOT NULL,
      password_hash ${text},
      email ${text},
      permissions ${text},
      tenant ${text},
      created_at ${int} NOT NULL
    )${strict}`,
    // Agent–person bindings (§Agent-Person Binding).
    `CREATE TABLE bindings (
      agent_iss ${text} NOT NULL,
      agent_sub ${text} NOT NULL,
      person_id ${text} NOT NULL REFERENCES persons (id) ${deferred},
      provider_name ${text},
      provider_logo_uri ${text},
      platform ${text},
      device ${text},
      created_at ${int} NOT NULL,
      revoked_at ${int},
      PRIMARY KEY (agent_iss, agent_sub)
    )${strict}`,
    'CREATE INDEX bindings_person ON bindings (person_id, created_at)',
    // Remembered consent, one row per scope value.
    `CREATE TABLE grants (
      id ${text} NOT NULL PRIMARY KEY,
      person_id ${text} NOT NULL REFERENCES persons (id) ${deferred},
      agent_iss ${text} NOT NULL,
      agent_sub ${text} NOT NULL,
      resource ${text} NOT NULL,
      scope ${text} NOT NULL,
      mission_s256 ${text},
      created_at ${int} NOT NULL,
      expires_at ${int},
      revoked_at ${int}
    )${strict}`,
    'CREATE INDEX grants_agent ON grants (person_id, agent_iss, agent_sub, resource)',
    'CREATE INDEX grants_person ON grants (person_id, created_at)',
    // Directed identifiers: one per (person, resource), each naming one person at its resource.
    `CREATE TABLE subjects (
      person_id ${text} NOT NULL REFERENCES persons (id) ${deferred},
      resource ${text} NOT NULL,
      sub ${text} NOT NULL,
      PRIMARY KEY (resource, sub),
      UNIQUE (person_id, resource)
    )${strict}`,
    // Person and auth tokens issued (§Person Token Endpoint "Retention", §Revocation Cascade "Records").
    `CREATE TABLE issued_tokens (
      jti ${text} NOT NULL PRIMARY KEY,
      kind ${text} NOT NULL,
      person_id ${text} NOT NULL REFERENCES persons (id) ${deferred},
      agent_iss ${text} NOT NULL,
      agent_sub ${text} NOT NULL,
      parent_agent ${text},
      resource ${text} NOT NULL,
      sub ${text} NOT NULL,
      scope ${text},
      mission_s256 ${text},
      presented_jti ${text},
      upstream_iss ${text},
      upstream_jti ${text},
      issued_at ${int} NOT NULL,
      expires_at ${int} NOT NULL,
      revoked_at ${int}
    )${strict}`,
    'CREATE INDEX issued_agent ON issued_tokens (agent_iss, agent_sub)',
    'CREATE INDEX issued_parent ON issued_tokens (agent_iss, parent_agent)',
    'CREATE INDEX issued_person ON issued_tokens (person_id)',
    'CREATE INDEX issued_expiry ON issued_tokens (expires_at)',
    // Agent tokens accepted (CHECKLIST REV-15).
    `CREATE TABLE agent_tokens (
      iss ${text} NOT NULL,
      jti ${text} NOT NULL,
      sub ${text} NOT NULL,
      expires_at ${int} NOT NULL,
      PRIMARY KEY (iss, jti)
    )${strict}`,
    'CREATE INDEX agent_tokens_expiry ON agent_tokens (expires_at)',
    // Revocations received (§Token Revocation).
    `CREATE TABLE revocations (
      iss ${text} NOT NULL,
      jti ${text} NOT NULL,
      expires_at ${int} NOT NULL,
      received_at ${int} NOT NULL,
      PRIMARY KEY (iss, jti)
    )${strict}`,
    'CREATE INDEX revocations_live ON revocations (iss, expires_at)',
    'CREATE INDEX revocations_expiry ON revocations (expires_at)',
    // Downstream revocation outcomes (§Revocation Response).
    `CREATE TABLE revocation_outcomes (
      jti ${text} NOT NULL,
      recipient ${text} NOT NULL,
      outcome ${text} NOT NULL,
      at ${int} NOT NULL,
      PRIMARY KEY (jti, recipient)
    )${strict}`,
    // Deferred requests (§Deferred Responses).
    `CREATE TABLE pending (
      id ${text} NOT NULL PRIMARY KEY,
      kind ${text} NOT NULL,
      agent_iss ${text} NOT NULL,
      agent_sub ${text} NOT NULL,
      person_id ${text} REFERENCES persons (id) ${deferred},
      code ${text},
      state ${text} NOT NULL,
      view ${text} NOT NULL,
      work ${text} NOT NULL,
      result ${text},
      chat ${text},
      resource_token_iss ${text},
      resource_token_jti ${text},
      created_at ${int} NOT NULL,
      updated_at ${int} NOT NULL,
      expires_at ${int} NOT NULL
    )${strict}`,
    'CREATE UNIQUE INDEX pending_code ON pending (code) WHERE code IS NOT NULL',
    'CREATE INDEX pending_person ON pending (person_id, created_at)',
    'CREATE INDEX pending_resource_token ON pending (resource_token_iss, resource_token_jti)',
    'CREATE INDEX pending_expiry ON pending (expires_at)',
    // Missions (§Mission) and their logs.
    `CREATE TABLE missions (
      s256 ${text} NOT NULL PRIMARY KEY,
      agent_iss ${text} NOT NULL,
      agent_sub ${text} NOT NULL,
      person_id ${text} NOT NULL REFERENCES persons (id) ${deferred},
      status ${text} NOT NULL,
      termination_reason ${text},
      blob ${text} NOT NULL,
      created_at ${int} NOT NULL,
      expires_at ${int}
    )${strict}`,
    'CREATE INDEX missions_person ON missions (person_id)',
    `CREATE TABLE mission_log (
      seq ${seq},
      s256 ${text} NOT NULL REFERENCES missions (s256) ${deferred},
      at ${int} NOT NULL,
      type ${text} NOT NULL,
      detail ${text} NOT NULL
    )${strict}`,
    'CREATE INDEX mission_log_mission ON mission_log (s256, seq)',
    // The audit trail, append-only.
    `CREATE TABLE audit (
      seq ${seq},
      at ${int} NOT NULL,
      type ${text} NOT NULL,
      person_id ${text},
      agent_sub ${text},
      parent_agent ${text},
      resource ${text},
      scope ${text},
      mission_s256 ${text},
      decision ${text},
      reason ${text},
      detail ${text}
    )${strict}`,
    'CREATE INDEX audit_person ON audit (person_id, at)',
    'CREATE INDEX audit_agent ON audit (agent_sub, at)',
    'CREATE INDEX audit_mission ON audit (mission_s256, at)',
    // Values stored once (the directed-identifier secret …).
    `CREATE TABLE settings (
      name ${text} NOT NULL PRIMARY KEY,
      value ${text} NOT NULL
    )${strict}`,
  ]
}

/** Every migration, in order. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: 'all tables of the Person Server store', sqlite: version1('sqlite'), postgres: version1('postgres') },
  // The revocation cascade follows call chains by the upstream token's jti (§Call Chaining).
  { version: 2, description: 'issued tokens by upstream_jti', sqlite: ['CREATE INDEX issued_upstream ON issued_tokens (upstream_jti)'], postgres: ['CREATE INDEX issued_upstream ON issued_tokens (upstream_jti)'] },
  { version: 3, description: 'the capabilities captured at mission approval', sqlite: ['ALTER TABLE missions ADD COLUMN capabilities TEXT'], postgres: ['ALTER TABLE missions ADD COLUMN capabilities TEXT COLLATE "C"'] },
]

/** The schema version this code creates: the last of {@link MIGRATIONS}. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version

const SCHEMA_VERSION_TABLE: Record<Dialect, string> = {
  sqlite: 'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT',
  postgres: 'CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)',
}
const CURRENT_VERSION = 'SELECT COALESCE(MAX(version), 0) AS version FROM schema_version'
const RECORD_VERSION: Record<Dialect, string> = {
  sqlite: 'INSERT INTO schema_version (version, applied_at) VALUES (?, ?)',
  postgres: 'INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)',
}

/** The migrations above `current`, in order. */
function missing(current: number): Migration[] {
  return MIGRATIONS.filter((m) => m.version > current)
}

/**
 * Brings a SQLite database to {@link LATEST_SCHEMA_VERSION}, in one `BEGIN IMMEDIATE`
 * transaction (so a second process migrating the same file waits, then finds nothing to do).
 *
 * @param now - The clock for `schema_version.applied_at` (epoch ms).
 */
export function migrateSqlite(db: Database, now: () => number = Date.now): void {
  db.transaction(() => {
    db.exec(SCHEMA_VERSION_TABLE.sqlite)
    const row = db.prepare(CURRENT_VERSION).get() as { version: number }
    const record = db.prepare(RECORD_VERSION.sqlite)
    for (const m of missing(Number(row.version))) {
      for (const sql of m.sqlite) db.exec(sql)
      record.run(m.version, now())
    }
  }).immediate()
}

/** The applied version of a SQLite database (0 for an empty one). */
export function sqliteSchemaVersion(db: Database): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get()
  if (exists === undefined) return 0
  return Number((db.prepare(CURRENT_VERSION).get() as { version: number }).version)
}

/** The advisory lock class of the migration lock (`'AAmg'`); the object is a hash of the schema. */
const MIGRATION_LOCK_CLASS = 0x41416d67

/** The two-`int4` advisory lock key that serialises migrations of one schema. */
function migrationLock(schema: string | undefined): [number, number] {
  return [MIGRATION_LOCK_CLASS, createHash('sha256').update(`aauth-kit/person-server/${schema ?? ''}`).digest().readInt32BE(0)]
}

/**
 * Brings a PostgreSQL schema to {@link LATEST_SCHEMA_VERSION} on one connection, in one
 * transaction that first takes `pg_advisory_xact_lock` for the schema: instances starting at once
 * run one after the other, and the later ones find nothing to do. PostgreSQL DDL is
 * transactional, so a failed migration leaves nothing behind.
 *
 * @param client - A connection whose `search_path` names the schema first.
 * @param schema - Created (`CREATE SCHEMA IF NOT EXISTS`) under the lock when given.
 */
export async function migratePostgres(client: PgQueryable, schema: string | undefined, now: () => number = Date.now): Promise<void> {
  await client.query({ text: 'BEGIN' })
  try {
    const [cls, obj] = migrationLock(schema)
    await client.query({ text: 'SELECT pg_advisory_xact_lock($1::int4, $2::int4)', values: [cls, obj] })
    if (schema !== undefined) await client.query({ text: `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}` })
    await client.query({ text: SCHEMA_VERSION_TABLE.postgres })
    const { rows } = await client.query({ text: CURRENT_VERSION })
    for (const m of missing(Number(rows[0]?.['version'] ?? 0))) {
      // One round trip: the simple query protocol runs the statements in order, in this transaction.
      await client.query({ text: m.postgres.join(';\n') })
      await client.query({ text: RECORD_VERSION.postgres, values: [m.version, now()] })
    }
    await client.query({ text: 'COMMIT' })
  } catch (e) {
    await client.query({ text: 'ROLLBACK' }).catch(() => undefined)
    throw e
  }
}

/** The applied version of a PostgreSQL schema (0 when `schema_version` does not exist yet). */
export async function postgresSchemaVersion(client: PgQueryable): Promise<number> {
  const { rows } = await client.query({ text: "SELECT to_regclass('schema_version') IS NOT NULL AS present" })
  if (rows[0]?.['present'] !== true) return 0
  const r = await client.query({ text: CURRENT_VERSION })
  return Number(r.rows[0]?.['version'] ?? 0)
}

/** A PostgreSQL identifier, double-quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
