/**
 * What the two backends of the Person Server store share: the SQL (written once with `?`
 * placeholders, which {@link PostgresStore} numbers as `$1, $2 …`), the plan of a
 * {@link StoreBatch} as an ordered list of statements, and the mapping of rows to records.
 *
 * Rows map NULL to an *absent* member, never to `undefined` or `null` (safe under
 * `exactOptionalPropertyTypes`), and absent members to NULL. Integers may arrive as strings
 * (`pg` returns `BIGINT` that way) and are converted with `Number`.
 *
 * Internal to the store: not exported from the package.
 *
 * @module
 */

import {
  OPEN_PENDING_STATES,
  type AgentBinding,
  type AgentTokenRecord,
  type AuditEvent,
  type AuditQuery,
  type Grant,
  type IssuedToken,
  type MissionLogEntry,
  type MissionRecord,
  type PendingRecord,
  type PendingState,
  type PersonRecord,
  type RevocationOutcome,
  type StoreBatch,
} from './types.js'

/** A result row: column name to value. */
export type Row = Readonly<Record<string, unknown>>

/** A bound parameter. */
export type Param = string | number | null

/** One SQL statement with its parameters, in the shared `?` syntax. */
export interface Statement {
  readonly sql: string
  readonly params: readonly Param[]
  /** The whole batch is abandoned (`{ applied: false }`) when this statement changes no row. */
  readonly mustChange?: boolean
}

/**
 * A point in a transaction where PostgreSQL takes a transaction-scoped advisory lock (two `int4`
 * keys); SQLite, which has one writer at a time, skips it.
 */
export interface Lock {
  readonly lock: readonly [number, number]
}

/** One step of a transaction. */
export type Step = Statement | Lock

/** A {@link StoreBatch} as statements: the compare-and-set first, then the rest in order. */
export interface CommitPlan {
  /** The `UPDATE pending … WHERE id = ? AND state IN (…)`; when it changes no row, nothing is written. */
  readonly cas?: Statement
  readonly steps: readonly Step[]
}

/** The number of `?` slots for `PendingBatch.from`: every {@link PendingState} once. */
const FROM_SLOTS = 10

const OPEN_STATES = OPEN_PENDING_STATES.map((s) => `'${s}'`).join(', ')

/**
 * The columns of each table, in the order of the insert parameters. Reads name them too, never
 * `SELECT *`: a column added by a later migration then does not change the result type of a
 * statement another instance has prepared (PostgreSQL would refuse to run its cached plan).
 */
const COLUMNS = {
  persons: 'id, username, display_name, password_hash, email, permissions, tenant, created_at',
  bindings: 'agent_iss, agent_sub, person_id, provider_name, provider_logo_uri, platform, device, created_at, revoked_at',
  grants: 'id, person_id, agent_iss, agent_sub, resource, scope, mission_s256, created_at, expires_at, revoked_at',
  issued: 'jti, kind, person_id, agent_iss, agent_sub, parent_agent, resource, sub, scope, mission_s256, presented_jti, upstream_iss, upstream_jti, issued_at, expires_at, revoked_at',
  agentTokens: 'iss, jti, sub, expires_at',
  revocations: 'iss, jti, expires_at, received_at',
  outcomes: 'jti, recipient, outcome, at',
  pending: 'id, kind, agent_iss, agent_sub, person_id, code, state, view, work, result, chat, resource_token_iss, resource_token_jti, created_at, updated_at, expires_at',
  missions: 's256, agent_iss, agent_sub, person_id, status, termination_reason, blob, created_at, expires_at, capabilities',
  missionLog: 's256, at, type, detail',
  audit: 'at, type, person_id, agent_sub, parent_agent, resource, scope, mission_s256, decision, reason, detail',
} as const

/** `INSERT INTO table (columns) VALUES (?, ? …)`. */
function insert(table: string, columns: string): string {
  return `INSERT INTO ${table} (${columns}) VALUES (${columns.split(',').map(() => '?').join(', ')})`
}

/** `col = excluded.col` for every column but the key ones. */
function updateFromExcluded(columns: string, key: readonly string[]): string {
  return columns.split(',').map((c) => c.trim()).filter((c) => !key.includes(c)).map((c) => `${c} = excluded.${c}`).join(', ')
}

/** The fixed statements of both backends. */
export const SQL = {
  casPending: `UPDATE pending SET
      state = COALESCE(?, state), person_id = COALESCE(?, person_id), view = COALESCE(?, view),
      work = COALESCE(?, work), result = COALESCE(?, result), chat = COALESCE(?, chat),
      code = CASE WHEN ? = 1 THEN NULL ELSE code END, updated_at = ?, expires_at = COALESCE(?, expires_at),
      resource_token_iss = COALESCE(?, resource_token_iss), resource_token_jti = COALESCE(?, resource_token_jti)
    WHERE id = ? AND state IN (${Array(FROM_SLOTS).fill('?').join(', ')}) AND (CAST(? AS BIGINT) IS NULL OR updated_at = CAST(? AS BIGINT))`,
  insertPending: insert('pending', COLUMNS.pending),
  upsertPerson: `${insert('persons', COLUMNS.persons)} ON CONFLICT (id) DO UPDATE SET ${updateFromExcluded(COLUMNS.persons, ['id'])}`,
  /** A revoked binding may be replaced; an active one only by the same person (PS-05: one person per agent). */
  upsertBinding: `${insert('bindings', COLUMNS.bindings)}
    ON CONFLICT (agent_iss, agent_sub) DO UPDATE SET ${updateFromExcluded(COLUMNS.bindings, ['agent_iss', 'agent_sub'])}
    WHERE bindings.revoked_at IS NOT NULL OR bindings.person_id = excluded.person_id`,
  revokeBinding: 'UPDATE bindings SET revoked_at = ? WHERE agent_iss = ? AND agent_sub = ? AND revoked_at IS NULL',
  /**
   * Ends the grant a new one replaces: the same person, agent, resource, scope and mission, not
   * revoked and not expired when the new one is created. The later commit wins, so there is never
   * more than one active grant per key.
   */
  replaceGrant: `UPDATE grants SET revoked_at = ?
    WHERE person_id = ? AND agent_iss = ? AND agent_sub = ? AND resource = ? AND scope = ?
      AND mission_s256 IS NOT DISTINCT FROM ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
  insertGrant: insert('grants', COLUMNS.grants),
  revokeGrant: 'UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
  insertSubject: `${insert('subjects', 'person_id, resource, sub')} ON CONFLICT DO NOTHING`,
  insertIssued: insert('issued_tokens', COLUMNS.issued),
  revokeIssued: 'UPDATE issued_tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL',
  // A terminated mission stays terminated, with its first reason (main draft §Mission Management).
  upsertMission: `${insert('missions', COLUMNS.missions)} ON CONFLICT (s256) DO UPDATE SET ${updateFromExcluded(COLUMNS.missions, ['s256'])} WHERE missions.status <> 'terminated'`,
  insertMissionLog: insert('mission_log', COLUMNS.missionLog),
  insertAudit: insert('audit', COLUMNS.audit),
  upsertOutcome: `${insert('revocation_outcomes', COLUMNS.outcomes)}
    ON CONFLICT (jti, recipient) DO UPDATE SET outcome = excluded.outcome, at = excluded.at
    WHERE excluded.at >= revocation_outcomes.at`,

  insertSetting: 'INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING',
  getSetting: 'SELECT value FROM settings WHERE name = ?',
  getPerson: `SELECT ${COLUMNS.persons} FROM persons WHERE id = ?`,
  getPersonByUsername: `SELECT ${COLUMNS.persons} FROM persons WHERE username = ?`,
  listPersons: `SELECT ${COLUMNS.persons} FROM persons ORDER BY created_at, id`,
  getBinding: `SELECT ${COLUMNS.bindings} FROM bindings WHERE agent_iss = ? AND agent_sub = ?`,
  listBindings: `SELECT ${COLUMNS.bindings} FROM bindings WHERE person_id = ? ORDER BY created_at DESC, agent_iss, agent_sub`,
  activeGrants: `SELECT ${COLUMNS.grants} FROM grants
    WHERE person_id = ? AND agent_iss = ? AND agent_sub = ? AND resource = ?
      AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
    ORDER BY created_at, id`,
  getGrant: `SELECT ${COLUMNS.grants} FROM grants WHERE id = ?`,
  listGrants: `SELECT ${COLUMNS.grants} FROM grants WHERE person_id = ? ORDER BY created_at DESC, id DESC`,
  personForSubject: 'SELECT person_id FROM subjects WHERE resource = ? AND sub = ?',
  getIssued: `SELECT ${COLUMNS.issued} FROM issued_tokens WHERE jti = ?`,
  noteAgentToken: `${insert('agent_tokens', COLUMNS.agentTokens)} ON CONFLICT DO NOTHING`,
  getAgentToken: `SELECT ${COLUMNS.agentTokens} FROM agent_tokens WHERE iss = ? AND jti = ?`,
  addRevocation: `${insert('revocations', COLUMNS.revocations)} ON CONFLICT DO NOTHING`,
  isRevoked: 'SELECT 1 AS hit FROM revocations WHERE iss = ? AND jti = ?',
  countRevocations: 'SELECT COUNT(*) AS n FROM revocations WHERE iss = ? AND expires_at > ?',
  outcomes: `SELECT ${COLUMNS.outcomes} FROM revocation_outcomes WHERE jti = ? ORDER BY recipient`,
  getPending: `SELECT ${COLUMNS.pending} FROM pending WHERE id = ?`,
  getPendingByCode: `SELECT ${COLUMNS.pending} FROM pending WHERE code = ?`,
  openPending: `SELECT ${COLUMNS.pending} FROM pending WHERE person_id = ? AND state IN (${OPEN_STATES}) ORDER BY created_at DESC, id DESC`,
  pendingForResourceToken: `SELECT ${COLUMNS.pending} FROM pending
    WHERE resource_token_iss = ? AND resource_token_jti = ? AND state IN (${OPEN_STATES}) ORDER BY created_at, id`,
  getMission: `SELECT ${COLUMNS.missions} FROM missions WHERE s256 = ?`,
  listMissions: `SELECT ${COLUMNS.missions} FROM missions WHERE person_id = ? ORDER BY created_at DESC, s256 DESC`,
  missionLog: `SELECT seq, ${COLUMNS.missionLog} FROM mission_log WHERE s256 = ? ORDER BY seq`,

  purgeIssued: 'DELETE FROM issued_tokens WHERE expires_at < ?',
  purgeAgentTokens: 'DELETE FROM agent_tokens WHERE expires_at < ?',
  purgeRevocations: 'DELETE FROM revocations WHERE expires_at < ?',
  purgePending: 'DELETE FROM pending WHERE expires_at < ?',
  purgeOutcomes: 'DELETE FROM revocation_outcomes WHERE NOT EXISTS (SELECT 1 FROM issued_tokens i WHERE i.jti = revocation_outcomes.jti)',
} as const

/**
 * Advisory lock classes (PostgreSQL): `'AAgr'` serialises the replacement of one grant key,
 * `'AAau'` the appending of audit events (so that `seq` order is commit order: a reader paging
 * with `afterSeq` never skips an event that commits late).
 */
const GRANT_LOCK_CLASS = 0x41416772
const AUDIT_LOCK_CLASS = 0x41416175
const AUDIT_LOCK: Lock = { lock: [AUDIT_LOCK_CLASS, 0] }

/** A 32-bit FNV-1a hash, as a signed `int4`. */
function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}

/**
 * The statements of one {@link StoreBatch}, in the order of its members. The caller runs them in
 * one transaction: first `cas` (nothing else when it changes no row), then `steps`.
 */
export function planCommit(batch: StoreBatch): CommitPlan {
  const steps: Step[] = []
  const add = (sql: string, params: Param[]): void => { steps.push({ sql, params }) }

  let cas: Statement | undefined
  if (batch.pending !== undefined) {
    const { id, from, patch } = batch.pending
    const states = [...new Set<PendingState>(from)]
    if (states.length > FROM_SLOTS) throw new RangeError('pending.from: too many states')
    cas = {
      sql: SQL.casPending,
      params: [
        nul(patch.state), nul(patch.personId), json(patch.view), json(patch.work), json(patch.result), json(patch.chat),
        patch.code === null ? 1 : 0, patch.updatedAt, nul(patch.expiresAt), nul(patch.resourceTokenIss), nul(patch.resourceTokenJti),
        id, ...states, ...Array<null>(FROM_SLOTS - states.length).fill(null), nul(batch.pending.at), nul(batch.pending.at),
      ],
    }
  }
  if (batch.newPending !== undefined) add(SQL.insertPending, pendingParams(batch.newPending))
  for (const p of batch.persons ?? []) {
    add(SQL.upsertPerson, [p.id, p.username, p.displayName, nul(p.passwordHash), nul(p.email), json(p.permissions), nul(p.tenant), p.createdAt])
  }
  for (const b of batch.bindings ?? []) {
    steps.push({ sql: SQL.upsertBinding, params: [b.agentIss, b.agentSub, b.personId, nul(b.providerName), nul(b.providerLogoUri), nul(b.platform), nul(b.device), b.createdAt, nul(b.revokedAt)], mustChange: true })
  }
  for (const r of batch.revokeBindings ?? []) add(SQL.revokeBinding, [r.at, r.agentIss, r.agentSub])
  const grants = batch.grants ?? []
  if (grants.length > 0) {
    // PostgreSQL: lock every key first, always in the same order, so that two batches with keys
    // in common wait for each other rather than deadlock.
    const keys = [...new Set(grants.map(grantKey))].map(hash32).sort((a, b) => a - b)
    for (const k of new Set(keys)) steps.push({ lock: [GRANT_LOCK_CLASS, k] })
    for (const g of grants) {
      add(SQL.replaceGrant, [g.createdAt, g.personId, g.agentIss, g.agentSub, g.resource, g.scope, nul(g.missionS256), g.createdAt])
      add(SQL.insertGrant, [g.id, g.personId, g.agentIss, g.agentSub, g.resource, g.scope, nul(g.missionS256), g.createdAt, nul(g.expiresAt), nul(g.revokedAt)])
    }
  }
  for (const r of batch.revokeGrants ?? []) add(SQL.revokeGrant, [r.at, r.id])
  for (const s of batch.subjects ?? []) add(SQL.insertSubject, [s.personId, s.resource, s.sub])
  for (const t of batch.issued ?? []) {
    add(SQL.insertIssued, [
      t.jti, t.kind, t.personId, t.agentIss, t.agentSub, nul(t.parentAgent), t.resource, t.sub, nul(t.scope), nul(t.missionS256),
      nul(t.presentedJti), nul(t.upstreamIss), nul(t.upstreamJti), t.issuedAt, t.expiresAt, nul(t.revokedAt),
    ])
  }
  for (const r of batch.revokeIssued ?? []) add(SQL.revokeIssued, [r.at, r.jti])
  for (const m of batch.missions ?? []) {
    add(SQL.upsertMission, [m.s256, m.agentIss, m.agentSub, m.personId, m.status, nul(m.terminationReason), m.blob, m.createdAt, nul(m.expiresAt), json(m.capabilities)])
  }
  for (const e of batch.missionLog ?? []) add(SQL.insertMissionLog, [e.s256, e.at, e.type, JSON.stringify(e.detail)])
  const audit = batch.audit ?? []
  if (audit.length > 0) {
    steps.push(AUDIT_LOCK)
    for (const e of audit) {
      add(SQL.insertAudit, [
        e.at, e.type, nul(e.personId), nul(e.agentSub), nul(e.parentAgent), nul(e.resource), nul(e.scope), nul(e.missionS256),
        nul(e.decision), nul(e.reason), json(e.detail),
      ])
    }
  }
  return cas === undefined ? { steps } : { cas, steps }
}

/** The key under which a new grant replaces an active one. */
function grantKey(g: Grant): string {
  return JSON.stringify([g.personId, g.agentIss, g.agentSub, g.resource, g.scope, g.missionS256 ?? null])
}

function pendingParams(p: PendingRecord): Param[] {
  return [
    p.id, p.kind, p.agentIss, p.agentSub, nul(p.personId), nul(p.code), p.state, JSON.stringify(p.view), JSON.stringify(p.work),
    json(p.result), json(p.chat), nul(p.resourceTokenIss), nul(p.resourceTokenJti), p.createdAt, p.updatedAt, p.expiresAt,
  ]
}

/** The upserts of {@link PersonServerStore.recordOutcomes}, for one transaction. */
export function outcomeSteps(outcomes: readonly RevocationOutcome[]): Statement[] {
  return outcomes.map((o) => ({ sql: SQL.upsertOutcome, params: [o.jti, o.recipient, o.outcome, o.at] }))
}

/** The deletes of {@link PersonServerStore.purge}, for one transaction: everything that expired before `now - skewMs`. */
export function purgeSteps(now: number, skewMs: number): Statement[] {
  const before = now - skewMs
  return [
    { sql: SQL.purgeIssued, params: [before] },
    { sql: SQL.purgeAgentTokens, params: [before] },
    { sql: SQL.purgeRevocations, params: [before] },
    { sql: SQL.purgePending, params: [before] },
    { sql: SQL.purgeOutcomes, params: [] },
  ]
}

/** The query of {@link PersonServerStore.liveIssued}. */
export function liveIssuedQuery(f: { readonly agentIss: string; readonly agentSub: string; readonly personId?: string; readonly resource?: string; readonly now: number }): Statement {
  let sql = `SELECT ${COLUMNS.issued} FROM issued_tokens
    WHERE agent_iss = ? AND (agent_sub = ? OR parent_agent = ?) AND revoked_at IS NULL AND expires_at > ?`
  const params: Param[] = [f.agentIss, f.agentSub, f.agentSub, f.now]
  if (f.personId !== undefined) {
    sql += ' AND person_id = ?'
    params.push(f.personId)
  }
  if (f.resource !== undefined) {
    sql += ' AND resource = ?'
    params.push(f.resource)
  }
  return { sql: `${sql} ORDER BY issued_at, jti`, params }
}

/** The query of {@link PersonServerStore.issuedFromUpstream} (callers pass at most a few hundred jtis at a time). */
export function issuedFromUpstreamQuery(upstreamJtis: readonly string[], now: number): Statement {
  const marks = upstreamJtis.map(() => '?').join(', ')
  return {
    sql: `SELECT ${COLUMNS.issued} FROM issued_tokens WHERE upstream_jti IN (${marks}) AND revoked_at IS NULL AND expires_at > ? ORDER BY issued_at, jti`,
    params: [...upstreamJtis, now],
  }
}

/** The default and the maximum of {@link AuditQuery.limit}. */
export const AUDIT_LIMIT = { default: 100, max: 1000 } as const

/** The query of {@link PersonServerStore.queryAudit}: the filters present, oldest first (or newest first), at most `limit` rows. */
export function auditQuery(q: AuditQuery): Statement {
  const where: string[] = []
  const params: Param[] = []
  const filter = (cond: string, value: Param | undefined): void => {
    if (value === undefined) return
    where.push(cond)
    params.push(value)
  }
  filter('person_id = ?', q.personId)
  if (q.agentSub !== undefined) {
    // An agent's events include those of its sub-agents (the chain: parent → sub-agent).
    where.push('(agent_sub = ? OR parent_agent = ?)')
    params.push(q.agentSub, q.agentSub)
  }
  filter('mission_s256 = ?', q.missionS256)
  filter('at >= ?', q.from)
  filter('at < ?', q.to)
  filter('seq > ?', q.afterSeq)
  filter('seq < ?', q.beforeSeq)
  const limit = q.limit === undefined || !Number.isFinite(q.limit) ? AUDIT_LIMIT.default : Math.min(AUDIT_LIMIT.max, Math.max(0, Math.floor(q.limit)))
  params.push(limit)
  return { sql: `SELECT seq, ${COLUMNS.audit} FROM audit${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq${q.order === 'desc' ? ' DESC' : ''} LIMIT ?`, params }
}

// ---------------------------------------------------------------------------------------------
// Values

/** An optional member as a parameter: absent (or `null`) is NULL. */
function nul(v: string | number | null | undefined): Param {
  return v === undefined ? null : v
}

/** An optional JSON member as a parameter: absent is NULL, anything else JSON text. */
function json(v: unknown): string | null {
  return v === undefined || v === null ? null : JSON.stringify(v)
}

/** A writable view of a record type, to build one member by member. */
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

function text(row: Row, col: string): string {
  const v = row[col]
  if (typeof v !== 'string') throw new TypeError(`store: column ${col} is not text`)
  return v
}

function int(row: Row, col: string): number {
  const v = row[col]
  const n = typeof v === 'number' ? v : typeof v === 'string' || typeof v === 'bigint' ? Number(v) : NaN
  if (!Number.isSafeInteger(n)) throw new TypeError(`store: column ${col} is not an integer`)
  return n
}

function parse<T>(row: Row, col: string): T {
  return JSON.parse(text(row, col)) as T
}

/** Sets `o[key]` from a nullable column: NULL leaves the member absent. */
function opt<T, K extends keyof T>(o: Mutable<T>, key: K, row: Row, col: string, read: (row: Row, col: string) => T[K]): void {
  const v = row[col]
  if (v !== null && v !== undefined) o[key] = read(row, col)
}

const optText = <T, K extends keyof T>(o: Mutable<T>, key: K, row: Row, col: string): void => opt(o, key, row, col, text as (r: Row, c: string) => T[K])
const optInt = <T, K extends keyof T>(o: Mutable<T>, key: K, row: Row, col: string): void => opt(o, key, row, col, int as (r: Row, c: string) => T[K])
const optJson = <T, K extends keyof T>(o: Mutable<T>, key: K, row: Row, col: string): void => opt(o, key, row, col, parse as (r: Row, c: string) => T[K])

// ---------------------------------------------------------------------------------------------
// Rows to records

/** A `persons` row. */
export function toPerson(row: Row): PersonRecord {
  const p: Mutable<PersonRecord> = { id: text(row, 'id'), username: text(row, 'username'), displayName: text(row, 'display_name'), createdAt: int(row, 'created_at') }
  optText(p, 'passwordHash', row, 'password_hash')
  optText(p, 'email', row, 'email')
  optJson(p, 'permissions', row, 'permissions')
  optText(p, 'tenant', row, 'tenant')
  return p
}

/** A `bindings` row. */
export function toBinding(row: Row): AgentBinding {
  const b: Mutable<AgentBinding> = { agentIss: text(row, 'agent_iss'), agentSub: text(row, 'agent_sub'), personId: text(row, 'person_id'), createdAt: int(row, 'created_at') }
  optText(b, 'providerName', row, 'provider_name')
  optText(b, 'providerLogoUri', row, 'provider_logo_uri')
  optText(b, 'platform', row, 'platform')
  optText(b, 'device', row, 'device')
  optInt(b, 'revokedAt', row, 'revoked_at')
  return b
}

/** A `grants` row. */
export function toGrant(row: Row): Grant {
  const g: Mutable<Grant> = {
    id: text(row, 'id'),
    personId: text(row, 'person_id'),
    agentIss: text(row, 'agent_iss'),
    agentSub: text(row, 'agent_sub'),
    resource: text(row, 'resource'),
    scope: text(row, 'scope'),
    createdAt: int(row, 'created_at'),
  }
  optText(g, 'missionS256', row, 'mission_s256')
  optInt(g, 'expiresAt', row, 'expires_at')
  optInt(g, 'revokedAt', row, 'revoked_at')
  return g
}

/** An `issued_tokens` row. */
export function toIssued(row: Row): IssuedToken {
  const t: Mutable<IssuedToken> = {
    jti: text(row, 'jti'),
    kind: text(row, 'kind') as IssuedToken['kind'],
    personId: text(row, 'person_id'),
    agentIss: text(row, 'agent_iss'),
    agentSub: text(row, 'agent_sub'),
    resource: text(row, 'resource'),
    sub: text(row, 'sub'),
    issuedAt: int(row, 'issued_at'),
    expiresAt: int(row, 'expires_at'),
  }
  optText(t, 'parentAgent', row, 'parent_agent')
  optText(t, 'scope', row, 'scope')
  optText(t, 'missionS256', row, 'mission_s256')
  optText(t, 'presentedJti', row, 'presented_jti')
  optText(t, 'upstreamIss', row, 'upstream_iss')
  optText(t, 'upstreamJti', row, 'upstream_jti')
  optInt(t, 'revokedAt', row, 'revoked_at')
  return t
}

/** An `agent_tokens` row. */
export function toAgentToken(row: Row): AgentTokenRecord {
  return { iss: text(row, 'iss'), jti: text(row, 'jti'), sub: text(row, 'sub'), expiresAt: int(row, 'expires_at') }
}

/** A `revocation_outcomes` row. */
export function toOutcome(row: Row): RevocationOutcome {
  return { jti: text(row, 'jti'), recipient: text(row, 'recipient'), outcome: text(row, 'outcome') as RevocationOutcome['outcome'], at: int(row, 'at') }
}

/** A `pending` row. */
export function toPending(row: Row): PendingRecord {
  const p: Mutable<PendingRecord> = {
    id: text(row, 'id'),
    kind: text(row, 'kind') as PendingRecord['kind'],
    agentIss: text(row, 'agent_iss'),
    agentSub: text(row, 'agent_sub'),
    state: text(row, 'state') as PendingState,
    view: parse(row, 'view'),
    work: parse(row, 'work'),
    createdAt: int(row, 'created_at'),
    updatedAt: int(row, 'updated_at'),
    expiresAt: int(row, 'expires_at'),
  }
  optText(p, 'personId', row, 'person_id')
  optText(p, 'code', row, 'code')
  optJson(p, 'result', row, 'result')
  optJson(p, 'chat', row, 'chat')
  optText(p, 'resourceTokenIss', row, 'resource_token_iss')
  optText(p, 'resourceTokenJti', row, 'resource_token_jti')
  return p
}

/** A `missions` row. */
export function toMission(row: Row): MissionRecord {
  const m: Mutable<MissionRecord> = {
    s256: text(row, 's256'),
    agentIss: text(row, 'agent_iss'),
    agentSub: text(row, 'agent_sub'),
    personId: text(row, 'person_id'),
    status: text(row, 'status') as MissionRecord['status'],
    blob: text(row, 'blob'),
    createdAt: int(row, 'created_at'),
  }
  optText(m, 'terminationReason', row, 'termination_reason')
  optInt(m, 'expiresAt', row, 'expires_at')
  optJson(m, 'capabilities', row, 'capabilities')
  return m
}

/** A `mission_log` row. */
export function toMissionLog(row: Row): MissionLogEntry {
  return { seq: int(row, 'seq'), s256: text(row, 's256'), at: int(row, 'at'), type: text(row, 'type'), detail: parse(row, 'detail') }
}

/** An `audit` row. */
export function toAudit(row: Row): AuditEvent {
  const e: Mutable<AuditEvent> = { seq: int(row, 'seq'), at: int(row, 'at'), type: text(row, 'type') }
  optText(e, 'personId', row, 'person_id')
  optText(e, 'agentSub', row, 'agent_sub')
  optText(e, 'parentAgent', row, 'parent_agent')
  optText(e, 'resource', row, 'resource')
  optText(e, 'scope', row, 'scope')
  optText(e, 'missionS256', row, 'mission_s256')
  optText(e, 'decision', row, 'decision')
  optText(e, 'reason', row, 'reason')
  optJson(e, 'detail', row, 'detail')
  return e
}

/** The first column of a `COUNT(*)`, `SELECT value` … row as a number. */
export function countOf(row: Row | undefined, col: string): number {
  return row === undefined ? 0 : int(row, col)
}

/** The text column of a row, if any. */
export function textOf(row: Row | undefined, col: string): string | undefined {
  return row === undefined ? undefined : text(row, col)
}
