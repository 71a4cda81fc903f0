/**
 * The PersonServerStore contract (src/person-server/store/types.ts), one table run against every
 * backend: SqliteStore in memory, SqliteStore on a file (WAL), and PostgresStore over a real
 * PostgreSQL on loopback (AAUTH_TEST_PG_URL, or one started by test/helpers/postgres.ts), each
 * case on a fresh database or schema. Then what only one backend has: the SQLite file surviving
 * close/reopen and a SIGKILL right after a commit; PostgreSQL instances sharing one database
 * (concurrent migrations, compare-and-set across pools, audit order), lent pools, and errors.
 *
 * Times are fixed epoch ms around T, passed explicitly (`now` arguments), so nothing here waits.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest'
import {
  LATEST_SCHEMA_VERSION,
  MIGRATIONS,
  PostgresStore,
  SqliteStore,
  type AgentBinding,
  type AuditEvent,
  type Grant,
  type IssuedToken,
  type MissionRecord,
  type PendingRecord,
  type PersonRecord,
  type PersonServerStore,
  type PostgresPool,
  type StoreBatch,
} from '../../src/person-server/store/index.js'
import { freePort } from '../helpers/redis.js'
import { freshSchema, postgresUrl, stopPostgres } from '../helpers/postgres.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIXTURE = fileURLToPath(new URL('./fixtures/sqlite-commit.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'aauth-ps-store-'))
let files = 0
const dbFile = (): string => join(dir, `ps-${++files}.db`)

/** Stores opened by the current case, closed after it. */
const open: PersonServerStore[] = []
async function track<S extends PersonServerStore>(s: Promise<S>): Promise<S> {
  const store = await s
  open.push(store)
  return store
}

afterEach(async () => {
  for (const s of open.splice(0)) await s.close()
})

afterAll(async () => {
  await stopPostgres()
  rmSync(dir, { recursive: true, force: true })
})

async function pgStore(schema = freshSchema()): Promise<PostgresStore> {
  return track(PostgresStore.connect({ connectionString: await postgresUrl(), schema, max: 4 }))
}

const backends: [string, () => Promise<PersonServerStore>][] = [
  ['sqlite', () => track(SqliteStore.open({ filename: ':memory:' }))],
  ['sqlite-file', () => track(SqliteStore.open({ filename: dbFile() }))],
  ['postgres', () => pgStore()],
]

// ---------------------------------------------------------------------------------------------
// Records

const T = 1_800_000_000_000
const MIN = 60_000
const HOUR = 3_600_000
const AP = 'https://ap.example'
const BOT = 'aauth:bot@ap.example'
const HELPER = 'aauth:helper@ap.example'
const RS = 'https://rs.example'
const RS2 = 'https://other.example'

const alice: PersonRecord = { id: 'p-alice', username: 'alice', displayName: 'Alice', createdAt: T }
const bob: PersonRecord = { id: 'p-bob', username: 'bob', displayName: 'Bob', createdAt: T + 1 }
const carol: PersonRecord = {
  id: 'p-carol',
  username: 'carol',
  displayName: 'Carol Ünïcode 😀',
  passwordHash: 'scrypt$16384$8$1$salt$hash',
  email: 'carol@example.com',
  permissions: ['files.read', 'files.write', ''],
  tenant: 'acme',
  createdAt: T + 2,
}

/** A store with alice, bob and carol. */
async function seeded(make: () => Promise<PersonServerStore>): Promise<PersonServerStore> {
  const s = await make()
  await s.commit({ persons: [alice, bob, carol] })
  return s
}

function grant(id: string, over: Partial<Grant> = {}): Grant {
  return { id, personId: alice.id, agentIss: AP, agentSub: BOT, resource: RS, scope: 'files.read', createdAt: T, ...over }
}

function issued(jti: string, over: Partial<IssuedToken> = {}): IssuedToken {
  return { jti, kind: 'auth', personId: alice.id, agentIss: AP, agentSub: BOT, resource: RS, sub: 'sub-alice', issuedAt: T, expiresAt: T + HOUR, ...over }
}

function pending(id: string, over: Partial<PendingRecord> = {}): PendingRecord {
  return {
    id,
    kind: 'auth_token',
    agentIss: AP,
    agentSub: BOT,
    state: 'pending',
    view: { kind: 'auth_token', agent: { iss: AP, sub: BOT } },
    work: {},
    createdAt: T,
    updatedAt: T,
    expiresAt: T + 10 * MIN,
    ...over,
  }
}

const fullPending: PendingRecord = {
  id: 'pend-full',
  kind: 'auth_token',
  agentIss: AP,
  agentSub: HELPER,
  personId: carol.id,
  code: 'ABCD1234',
  state: 'clarification',
  view: {
    kind: 'auth_token',
    agent: { iss: AP, sub: HELPER, parentAgent: BOT, providerName: 'AP', providerLogoUri: 'https://ap.example/logo.png', platform: 'linux', device: 'laptop' },
    resource: { id: RS, name: 'Files', description: 'A file store', logoUri: 'https://rs.example/logo.png', scopeDescriptions: { 'files.read': 'Read your files' }, accessMode: 'read' },
    scopes: ['files.read', 'files.write'],
    newScopes: ['files.write'],
    account: 'carol@rs',
    missionS256: 'm-1',
    justification: '**Because** I need it — ünïcode 😀',
    permission: { action: 'pay', description: 'Pay 10 €', parameters: { amount: 10, nested: [1, null, { a: true }] } },
    question: 'Which folder?',
    relay: { type: 'payment', url: 'https://pay.example/x', code: 'PAY-1', description: 'Pay' },
    details: { amount: '10.00', refundable: false },
  },
  work: { tokens: ['a', 'b'], bounds: { exp: 123 }, nul: 'a\u0000b', nothing: null, deep: { x: [{ y: 'z' }] } },
  result: { status: 200, body: { auth_token: 'ey…', expires_in: 3600 } },
  chat: [
    { from: 'person', text: 'Why?', at: T + 1 },
    { from: 'agent', text: '*Because*', at: T + 2 },
  ],
  resourceTokenIss: RS,
  resourceTokenJti: 'rt-1',
  createdAt: T,
  updatedAt: T + 2,
  expiresAt: T + 10 * MIN,
}

const mission: MissionRecord = { s256: 'm-1', agentIss: AP, agentSub: BOT, personId: alice.id, status: 'active', blob: '{"description":"Plan a trip","approved":true}', createdAt: T }

/** No member of a record is `undefined` or `null` (absent members are absent). */
function expectNoEmptyMembers(record: object): void {
  for (const [k, v] of Object.entries(record)) {
    expect(v, k).not.toBeUndefined()
    expect(v, k).not.toBeNull()
  }
}

function audit(at: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return { at, type: 'auth_token.issued', ...over }
}

// ---------------------------------------------------------------------------------------------
// The contract

describe.each(backends)('PersonServerStore contract: %s', (_name, make) => {
  it('migrate: at the latest version, versioned, idempotent, concurrent calls succeed, data kept', async () => {
    const s = await make()
    expect(LATEST_SCHEMA_VERSION).toBe(MIGRATIONS.at(-1)!.version)
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1))
    expect(await s.schemaVersion()).toBe(LATEST_SCHEMA_VERSION)
    await s.commit({ persons: [alice] })
    await s.migrate()
    await Promise.all([s.migrate(), s.migrate(), s.migrate()])
    expect(await s.schemaVersion()).toBe(LATEST_SCHEMA_VERSION)
    expect(await s.getPerson(alice.id)).toStrictEqual(alice)
  })

  it('persons: every optional member round-trips present and absent; upsert by id', async () => {
    const s = await seeded(make)
    expect(await s.getPerson(carol.id)).toStrictEqual(carol)
    expect(await s.getPersonByUsername('carol')).toStrictEqual(carol)
    expect(await s.getPerson(alice.id)).toStrictEqual(alice)
    expectNoEmptyMembers((await s.getPerson(alice.id))!)
    expect(await s.getPerson('nobody')).toBeUndefined()
    expect(await s.getPersonByUsername('nobody')).toBeUndefined()
    expect(await s.listPersons()).toStrictEqual([alice, bob, carol])
    // An empty permission list is not "unrestricted".
    const restricted = { ...bob, permissions: [] }
    await s.commit({ persons: [restricted] })
    expect(await s.getPerson(bob.id)).toStrictEqual(restricted)
    // Replacing a person drops the members the new record does not have.
    const { email: _e, passwordHash: _p, ...lean } = carol
    await s.commit({ persons: [{ ...lean, displayName: 'C' }] })
    expect(await s.getPerson(carol.id)).toStrictEqual({ ...lean, displayName: 'C' })
  })

  it('bindings: round-trip, newest first, revoke once, a revoked binding replaced by a new one', async () => {
    const s = await seeded(make)
    const full: AgentBinding = { agentIss: AP, agentSub: BOT, personId: alice.id, providerName: 'AP', providerLogoUri: 'https://ap.example/l.png', platform: 'macOS', device: 'laptop', createdAt: T }
    const bare: AgentBinding = { agentIss: AP, agentSub: HELPER, personId: alice.id, createdAt: T + 5 }
    await s.commit({ bindings: [full, bare, { agentIss: AP, agentSub: 'aauth:x@ap.example', personId: bob.id, createdAt: T }] })
    expect(await s.getBinding(AP, BOT)).toStrictEqual(full)
    expect(await s.getBinding(AP, HELPER)).toStrictEqual(bare)
    expectNoEmptyMembers((await s.getBinding(AP, HELPER))!)
    expect(await s.getBinding('https://other-ap.example', BOT)).toBeUndefined()
    expect(await s.listBindings(alice.id)).toStrictEqual([bare, full])
    expect(await s.listBindings('nobody')).toStrictEqual([])

    await s.commit({ revokeBindings: [{ agentIss: AP, agentSub: BOT, at: T + 10 }] })
    await s.commit({ revokeBindings: [{ agentIss: AP, agentSub: BOT, at: T + 20 }] })
    expect(await s.getBinding(AP, BOT)).toStrictEqual({ ...full, revokedAt: T + 10 })

    const rebound: AgentBinding = { agentIss: AP, agentSub: BOT, personId: bob.id, createdAt: T + 30 }
    await s.commit({ bindings: [rebound] })
    expect(await s.getBinding(AP, BOT)).toStrictEqual(rebound)
    expect(await s.listBindings(bob.id)).toContainEqual(rebound)
    expect(await s.listBindings(alice.id)).toStrictEqual([bare])
  })

  it('grants: round-trip; listGrants newest first with revoked ones; revokeGrants', async () => {
    const s = await seeded(make)
    const full = grant('g-full', { missionS256: 'm-1', expiresAt: T + HOUR, createdAt: T + 1 })
    const bare = grant('g-bare', { scope: '', createdAt: T + 2 })
    const revoked = grant('g-revoked', { scope: 'files.write', createdAt: T + 3, revokedAt: T + 4 })
    await s.commit({ grants: [full, bare, revoked] })
    expect(await s.getGrant('g-full')).toStrictEqual(full)
    expect(await s.getGrant('g-bare')).toStrictEqual(bare)
    expectNoEmptyMembers((await s.getGrant('g-bare'))!)
    expect(await s.getGrant('nope')).toBeUndefined()
    expect(await s.listGrants(alice.id)).toStrictEqual([revoked, bare, full])
    await s.commit({ revokeGrants: [{ id: 'g-full', at: T + 50 }] })
    await s.commit({ revokeGrants: [{ id: 'g-full', at: T + 60 }] })
    expect(await s.getGrant('g-full')).toStrictEqual({ ...full, revokedAt: T + 50 })
  })

  it('activeGrants: only unrevoked, unexpired grants of that person, agent and resource', async () => {
    const s = await seeded(make)
    const now = T + MIN
    const live = [
      grant('a-1', { scope: 'files.read' }),
      grant('a-2', { scope: 'files.write', expiresAt: now + 1, createdAt: T + 1 }),
      grant('a-3', { scope: '', missionS256: 'm-1', createdAt: T + 2 }),
    ]
    await s.commit({
      grants: [
        ...live,
        grant('x-revoked', { scope: 'x1', revokedAt: T }),
        grant('x-expired', { scope: 'x2', expiresAt: now }),
        grant('x-expired-long-ago', { scope: 'x3', expiresAt: T - HOUR }),
        grant('x-other-agent', { agentSub: HELPER }),
        grant('x-other-iss', { agentIss: 'https://ap2.example' }),
        grant('x-other-resource', { resource: RS2 }),
        grant('x-other-person', { personId: bob.id }),
      ],
    })
    expect(await s.activeGrants(alice.id, AP, BOT, RS, now)).toStrictEqual(live)
    expect((await s.activeGrants(alice.id, AP, BOT, RS, now + 1)).map((g) => g.id)).toEqual(['a-1', 'a-3'])
    expect(await s.activeGrants(alice.id, AP, 'aauth:nobody@ap.example', RS, now)).toStrictEqual([])
  })

  it('grants: a new grant replaces the active one of the same (person, agent, resource, scope, mission)', async () => {
    const s = await seeded(make)
    const old = grant('g-old', { createdAt: T })
    const otherMission = grant('g-mission', { missionS256: 'm-1', createdAt: T })
    const otherScope = grant('g-scope', { scope: 'files.write', createdAt: T })
    const revoked = grant('g-revoked', { createdAt: T - 3 * HOUR, revokedAt: T - HOUR })
    const expired = grant('g-expired', { createdAt: T - 2 * HOUR, expiresAt: T - HOUR })
    // In order: a revoked grant and an expired one are not replaced.
    await s.commit({ grants: [revoked, expired, old, otherMission, otherScope] })
    const renewed = grant('g-new', { createdAt: T + MIN, expiresAt: T + HOUR })
    await s.commit({ grants: [renewed] })
    expect(await s.getGrant('g-old')).toStrictEqual({ ...old, revokedAt: T + MIN })
    expect(await s.getGrant('g-mission')).toStrictEqual(otherMission)
    expect(await s.getGrant('g-scope')).toStrictEqual(otherScope)
    expect(await s.getGrant('g-expired')).toStrictEqual(expired)
    expect(await s.getGrant('g-revoked')).toStrictEqual(revoked)
    expect((await s.activeGrants(alice.id, AP, BOT, RS, T + 2 * MIN)).map((g) => g.id).sort()).toEqual(['g-mission', 'g-new', 'g-scope'])

    // Within one batch, in order: the later grant of a key wins; the mission-bound key too.
    await s.commit({ grants: [grant('g-m2', { missionS256: 'm-1', createdAt: T + 2 * MIN }), grant('g-m3', { missionS256: 'm-1', createdAt: T + 3 * MIN })] })
    expect((await s.getGrant('g-mission'))!.revokedAt).toBe(T + 2 * MIN)
    expect((await s.getGrant('g-m2'))!.revokedAt).toBe(T + 3 * MIN)
    expect((await s.getGrant('g-m3'))!.revokedAt).toBeUndefined()
  })

  it('subjects: insert or ignore; personForSubject', async () => {
    const s = await seeded(make)
    await s.commit({ subjects: [{ personId: alice.id, resource: RS, sub: 'sub-a' }, { personId: bob.id, resource: RS, sub: 'sub-b' }, { personId: alice.id, resource: RS2, sub: 'sub-a' }] })
    // Both unique keys are kept: a second sub for (alice, RS) and bob taking alice's sub are ignored.
    await s.commit({ subjects: [{ personId: alice.id, resource: RS, sub: 'sub-a2' }, { personId: bob.id, resource: RS2, sub: 'sub-a' }, { personId: alice.id, resource: RS, sub: 'sub-a' }] })
    expect(await s.personForSubject(RS, 'sub-a')).toBe(alice.id)
    expect(await s.personForSubject(RS, 'sub-b')).toBe(bob.id)
    expect(await s.personForSubject(RS2, 'sub-a')).toBe(alice.id)
    expect(await s.personForSubject(RS, 'sub-a2')).toBeUndefined()
    expect(await s.personForSubject(RS2, 'sub-b')).toBeUndefined()
  })

  it('issued tokens: round-trip and revokeIssued (first revocation time kept)', async () => {
    const s = await seeded(make)
    const full = issued('t-full', {
      kind: 'person',
      agentSub: HELPER,
      parentAgent: BOT,
      scope: 'files.read files.write',
      missionS256: 'm-1',
      presentedJti: 'pt-1',
      upstreamIss: 'https://ps2.example',
      upstreamJti: 'up-1',
      revokedAt: T + 5,
    })
    const bare = issued('t-bare')
    await s.commit({ issued: [full, bare] })
    expect(await s.getIssued('t-full')).toStrictEqual(full)
    expect(await s.getIssued('t-bare')).toStrictEqual(bare)
    expectNoEmptyMembers((await s.getIssued('t-bare'))!)
    expect(await s.getIssued('nope')).toBeUndefined()
    await s.commit({ revokeIssued: [{ jti: 't-bare', at: T + 7 }, { jti: 't-full', at: T + 8 }] })
    expect(await s.getIssued('t-bare')).toStrictEqual({ ...bare, revokedAt: T + 7 })
    expect(await s.getIssued('t-full')).toStrictEqual(full)
  })

  it('liveIssued: by agentSub and by parentAgent, person and resource filters, no expired or revoked', async () => {
    const s = await seeded(make)
    const now = T + MIN
    const own = issued('own', { issuedAt: T })
    const ownOtherRs = issued('own-rs2', { resource: RS2, issuedAt: T + 1 })
    const ownBob = issued('own-bob', { personId: bob.id, issuedAt: T + 2 })
    const child = issued('child', { agentSub: HELPER, parentAgent: BOT, issuedAt: T + 3, expiresAt: now + 1 })
    await s.commit({
      issued: [
        own, ownOtherRs, ownBob, child,
        issued('expired', { expiresAt: now }),
        issued('revoked', { revokedAt: T + 1 }),
        issued('other-iss', { agentIss: 'https://ap2.example' }),
        issued('stranger', { agentSub: 'aauth:stranger@ap.example' }),
        issued('stranger-child', { agentSub: 'aauth:c@ap.example', parentAgent: 'aauth:stranger@ap.example' }),
      ],
    })
    expect(await s.liveIssued({ agentIss: AP, agentSub: BOT, now })).toStrictEqual([own, ownOtherRs, ownBob, child])
    expect(await s.liveIssued({ agentIss: AP, agentSub: BOT, personId: alice.id, now })).toStrictEqual([own, ownOtherRs, child])
    expect(await s.liveIssued({ agentIss: AP, agentSub: BOT, resource: RS2, now })).toStrictEqual([ownOtherRs])
    expect(await s.liveIssued({ agentIss: AP, agentSub: BOT, personId: bob.id, resource: RS, now })).toStrictEqual([ownBob])
    expect(await s.liveIssued({ agentIss: AP, agentSub: HELPER, now })).toStrictEqual([child])
    expect(await s.liveIssued({ agentIss: AP, agentSub: BOT, now: now + 1 })).toStrictEqual([own, ownOtherRs, ownBob])
    expect(await s.liveIssued({ agentIss: AP, agentSub: BOT, now: T + 2 * HOUR })).toStrictEqual([])
  })

  it('PS-CH-07 issuedFromUpstream: live tokens issued with one of the upstream jtis, oldest first', async () => {
    const s = await seeded(make)
    const now = T + MIN
    const up = { upstreamIss: 'https://ps.example' }
    const a = issued('down-a', { ...up, upstreamJti: 'up-1', issuedAt: T + 2 })
    const b = issued('down-b', { ...up, upstreamJti: 'up-2', issuedAt: T + 1 })
    await s.commit({
      issued: [
        a, b,
        issued('down-other', { ...up, upstreamJti: 'up-3' }),
        issued('down-expired', { ...up, upstreamJti: 'up-1', expiresAt: now }),
        issued('down-revoked', { ...up, upstreamJti: 'up-1', revokedAt: T + 1 }),
        issued('plain'),
      ],
    })
    expect(await s.issuedFromUpstream(['up-1', 'up-2'], now)).toStrictEqual([b, a])
    expect(await s.issuedFromUpstream(['up-1'], now)).toStrictEqual([a])
    expect(await s.issuedFromUpstream([], now)).toStrictEqual([])
    expect(await s.issuedFromUpstream(['nope'], now)).toStrictEqual([])
  })

  it('agent tokens: insert or ignore', async () => {
    const s = await make()
    const rec = { iss: AP, jti: 'at-1', sub: BOT, expiresAt: T + HOUR }
    await s.noteAgentToken(rec)
    await s.noteAgentToken({ ...rec, sub: 'aauth:other@ap.example', expiresAt: T })
    expect(await s.getAgentToken(AP, 'at-1')).toStrictEqual(rec)
    expect(await s.getAgentToken('https://ap2.example', 'at-1')).toBeUndefined()
  })

  it('revocations: addRevocation is false the second time; isRevoked; countRevocations counts live ones of one issuer', async () => {
    const s = await make()
    const now = T + MIN
    expect(await s.addRevocation({ iss: AP, jti: 'r-1', expiresAt: T + HOUR, receivedAt: T })).toBe(true)
    expect(await s.addRevocation({ iss: AP, jti: 'r-1', expiresAt: T + 2 * HOUR, receivedAt: T + 1 })).toBe(false)
    expect(await s.addRevocation({ iss: AP, jti: 'r-2', expiresAt: now + 1, receivedAt: T })).toBe(true)
    expect(await s.addRevocation({ iss: AP, jti: 'r-old', expiresAt: now, receivedAt: T })).toBe(true)
    expect(await s.addRevocation({ iss: RS, jti: 'r-1', expiresAt: T + HOUR, receivedAt: T })).toBe(true)
    expect(await s.isRevoked(AP, 'r-1')).toBe(true)
    expect(await s.isRevoked(RS, 'r-1')).toBe(true)
    expect(await s.isRevoked(AP, 'r-3')).toBe(false)
    expect(await s.isRevoked(RS2, 'r-1')).toBe(false)
    expect(await s.countRevocations(AP, now)).toBe(2)
    expect(await s.countRevocations(AP, now + 1)).toBe(1)
    expect(await s.countRevocations(RS, now)).toBe(1)
    expect(await s.countRevocations(RS2, now)).toBe(0)
  })

  it('recordOutcomes: the latest per (jti, recipient) wins', async () => {
    const s = await make()
    await s.recordOutcomes([])
    await s.recordOutcomes([
      { jti: 'j', recipient: RS, outcome: 'revocation_unavailable', at: T },
      { jti: 'j', recipient: RS2, outcome: 'revocation_unsupported', at: T },
      { jti: 'other', recipient: RS, outcome: 'revoked', at: T },
    ])
    await s.recordOutcomes([{ jti: 'j', recipient: RS, outcome: 'revoked', at: T + 10 }])
    // An older attempt reported late does not overwrite a newer outcome; a tie is the later call.
    await s.recordOutcomes([{ jti: 'j', recipient: RS, outcome: 'revocation_unavailable', at: T + 5 }])
    await s.recordOutcomes([{ jti: 'j', recipient: RS2, outcome: 'revoked', at: T }])
    expect(await s.outcomes('j')).toStrictEqual([
      { jti: 'j', recipient: RS2, outcome: 'revoked', at: T },
      { jti: 'j', recipient: RS, outcome: 'revoked', at: T + 10 },
    ].sort((a, b) => (a.recipient < b.recipient ? -1 : 1)))
    expect(await s.outcomes('none')).toStrictEqual([])
  })

  it('pending: full and bare records round-trip; getPendingByCode', async () => {
    const s = await seeded(make)
    const bare = pending('pend-bare')
    await s.commit({ newPending: fullPending })
    await s.commit({ newPending: bare })
    expect(await s.getPending('pend-full')).toStrictEqual(fullPending)
    expect(await s.getPending('pend-bare')).toStrictEqual(bare)
    expectNoEmptyMembers((await s.getPending('pend-bare'))!)
    expect(await s.getPendingByCode('ABCD1234')).toStrictEqual(fullPending)
    expect(await s.getPendingByCode('NOPE')).toBeUndefined()
    expect(await s.getPending('nope')).toBeUndefined()
    // Codes are unique among requests that hold one.
    await expect(s.commit({ newPending: pending('pend-dup', { code: 'ABCD1234' }) })).rejects.toThrow()
    await s.commit({ newPending: pending('pend-nocode') })
  })

  it('pending: the compare-and-set patch sets what it names, consumes the code, keeps the rest', async () => {
    const s = await seeded(make)
    await s.commit({ newPending: pending('p1', { code: 'CODE1' }) })
    const r1 = await s.commit({ pending: { id: 'p1', from: ['pending'], patch: { state: 'interacting', personId: alice.id, code: null, updatedAt: T + 1 } } })
    expect(r1).toStrictEqual({ applied: true })
    expect(await s.getPendingByCode('CODE1')).toBeUndefined()
    expect(await s.getPending('p1')).toStrictEqual(pending('p1', { state: 'interacting', personId: alice.id, updatedAt: T + 1 }))

    const chat = [{ from: 'person' as const, text: 'why?', at: T + 2 }]
    const view = { ...pending('x').view, question: 'Which?' }
    await s.commit({ pending: { id: 'p1', from: ['interacting'], patch: { state: 'clarification', chat, view, work: { step: 2 }, updatedAt: T + 2, expiresAt: T + HOUR } } })
    const result = { status: 200, body: { ok: true, list: [1, 2] } }
    await s.commit({ pending: { id: 'p1', from: ['clarification'], patch: { state: 'granted', result, updatedAt: T + 3 } } })
    expect(await s.getPending('p1')).toStrictEqual(
      pending('p1', { state: 'granted', personId: alice.id, chat, view, work: { step: 2 }, result, updatedAt: T + 3, expiresAt: T + HOUR }),
    )
    // Closed: no open state matches any more.
    expect((await s.commit({ pending: { id: 'p1', from: ['pending', 'interacting', 'clarification'], patch: { state: 'denied', updatedAt: T + 4 } } })).applied).toBe(false)
    expect((await s.commit({ pending: { id: 'p1', from: [], patch: { updatedAt: T + 4 } } })).applied).toBe(false)
    expect((await s.commit({ pending: { id: 'missing', from: ['pending'], patch: { state: 'denied', updatedAt: T + 4 } } })).applied).toBe(false)
    expect((await s.getPending('p1'))!.state).toBe('granted')
  })

  it('missions: listed per person, newest first; a terminated mission is never changed again (MIS-11)', async () => {
    const s = await seeded(make)
    const older = { ...mission, s256: 'm-old', createdAt: T - 1 }
    const bobs = { ...mission, s256: 'm-bob', personId: bob.id }
    await s.commit({ missions: [older, mission, bobs] })
    expect((await s.listMissions(alice.id)).map((m) => m.s256)).toEqual(['m-1', 'm-old'])
    expect(await s.listMissions(bob.id)).toStrictEqual([bobs])
    expect(await s.listMissions('nobody')).toStrictEqual([])
    const ended = { ...mission, status: 'terminated' as const, terminationReason: 'completed' }
    await s.commit({ missions: [ended] })
    expect(await s.getMission('m-1')).toStrictEqual(ended)
    // Neither back to active nor to another reason.
    await s.commit({ missions: [mission] })
    await s.commit({ missions: [{ ...ended, terminationReason: 'revoked' }] })
    expect(await s.getMission('m-1')).toStrictEqual(ended)
  })

  it('commit: a compare-and-set that misses writes nothing of its batch', async () => {
    const s = await seeded(make)
    await s.commit({ newPending: pending('p1', { state: 'denied' }) })
    const batch: StoreBatch = {
      pending: { id: 'p1', from: ['pending', 'interacting'], patch: { state: 'granted', updatedAt: T + 1 } },
      newPending: pending('p2'),
      persons: [{ ...bob, id: 'p-dave', username: 'dave' }],
      bindings: [{ agentIss: AP, agentSub: BOT, personId: alice.id, createdAt: T }],
      grants: [grant('g-1')],
      subjects: [{ personId: alice.id, resource: RS, sub: 'sub-1' }],
      issued: [issued('t-1')],
      missions: [mission],
      missionLog: [{ s256: 'm-1', at: T, type: 'created', detail: {} }],
      audit: [audit(T, { personId: alice.id, type: 'request.approved' })],
    }
    expect(await s.commit(batch)).toStrictEqual({ applied: false })
    expect(await s.getPending('p1')).toStrictEqual(pending('p1', { state: 'denied' }))
    expect(await s.getPending('p2')).toBeUndefined()
    expect(await s.getPerson('p-dave')).toBeUndefined()
    expect(await s.getBinding(AP, BOT)).toBeUndefined()
    expect(await s.getGrant('g-1')).toBeUndefined()
    expect(await s.personForSubject(RS, 'sub-1')).toBeUndefined()
    expect(await s.getIssued('t-1')).toBeUndefined()
    expect(await s.getMission('m-1')).toBeUndefined()
    expect(await s.missionLog('m-1')).toStrictEqual([])
    expect(await s.queryAudit({})).toStrictEqual([])
  })

  it('commit: all parts together, or none when one fails', async () => {
    const s = await seeded(make)
    await s.commit({ newPending: pending('p1') })
    const batch: StoreBatch = {
      pending: { id: 'p1', from: ['pending'], patch: { state: 'granted', updatedAt: T + 1 } },
      bindings: [{ agentIss: AP, agentSub: BOT, personId: alice.id, createdAt: T }],
      grants: [grant('g-1')],
      issued: [issued('t-1')],
      audit: [audit(T, { type: 'request.approved' })],
    }
    // The same jti twice: the second insert fails, and everything before it is undone.
    await expect(s.commit({ ...batch, issued: [issued('t-1'), issued('t-1')] })).rejects.toThrow()
    // A grant for a person who does not exist (foreign key).
    await expect(s.commit({ ...batch, grants: [grant('g-1', { personId: 'p-ghost' })] })).rejects.toThrow()
    expect((await s.getPending('p1'))!.state).toBe('pending')
    expect(await s.getBinding(AP, BOT)).toBeUndefined()
    expect(await s.getGrant('g-1')).toBeUndefined()
    expect(await s.getIssued('t-1')).toBeUndefined()
    expect(await s.queryAudit({})).toStrictEqual([])
    // The store is still usable, and the intact batch applies in full.
    expect(await s.commit(batch)).toStrictEqual({ applied: true })
    expect((await s.getPending('p1'))!.state).toBe('granted')
    expect(await s.getBinding(AP, BOT)).toBeDefined()
    expect(await s.getGrant('g-1')).toBeDefined()
    expect(await s.getIssued('t-1')).toBeDefined()
    expect(await s.queryAudit({})).toHaveLength(1)
    expect(await s.commit({})).toStrictEqual({ applied: true })
  })

  it('commit: of two concurrent approvals of one request exactly one applies', async () => {
    const s = await seeded(make)
    await s.commit({ newPending: pending('p1') })
    const approve = (n: number): StoreBatch => ({
      pending: { id: 'p1', from: ['pending'], patch: { state: 'granted', updatedAt: T + n } },
      issued: [issued(`t-${n}`)],
      audit: [audit(T + n, { type: 'request.approved', detail: { n } })],
    })
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => s.commit(approve(n))))
    expect(results.filter((r) => r.applied)).toHaveLength(1)
    const winner = [1, 2, 3, 4, 5][results.findIndex((r) => r.applied)]!
    for (const n of [1, 2, 3, 4, 5]) expect(await s.getIssued(`t-${n}`) !== undefined).toBe(n === winner)
    expect((await s.queryAudit({})).map((e) => e.detail)).toStrictEqual([{ n: winner }])
    expect((await s.getPending('p1'))!.updatedAt).toBe(T + winner)
  })

  it('openPending: open requests of one person, newest first; pendingForResourceToken: open ones only', async () => {
    const s = await seeded(make)
    const rt = { resourceTokenIss: RS, resourceTokenJti: 'rt-1' }
    const records = [
      pending('o1', { personId: alice.id, createdAt: T, ...rt }),
      pending('o2', { personId: alice.id, state: 'interacting', createdAt: T + 2 }),
      pending('o3', { personId: alice.id, state: 'clarification', createdAt: T + 1, ...rt }),
      pending('c1', { personId: alice.id, state: 'granted', createdAt: T + 3, ...rt }),
      pending('c2', { personId: alice.id, state: 'expired', createdAt: T + 4 }),
      pending('b1', { personId: bob.id, createdAt: T + 5, ...rt }),
      pending('u1', { createdAt: T + 6, resourceTokenIss: RS, resourceTokenJti: 'rt-2' }),
    ]
    for (const r of records) await s.commit({ newPending: r })
    expect((await s.openPending(alice.id)).map((p) => p.id)).toEqual(['o2', 'o3', 'o1'])
    expect(await s.openPending(alice.id)).toStrictEqual([records[1], records[2], records[0]])
    expect((await s.openPending(bob.id)).map((p) => p.id)).toEqual(['b1'])
    expect(await s.openPending(carol.id)).toStrictEqual([])
    expect((await s.pendingForResourceToken(RS, 'rt-1')).map((p) => p.id)).toEqual(['o1', 'o3', 'b1'])
    expect((await s.pendingForResourceToken(RS, 'rt-2')).map((p) => p.id)).toEqual(['u1'])
    expect(await s.pendingForResourceToken(RS2, 'rt-1')).toStrictEqual([])
  })

  it('missions and the mission log: upsert, entries in order with increasing seq', async () => {
    const s = await seeded(make)
    const timed: MissionRecord = { ...mission, s256: 'm-2', expiresAt: T + HOUR, status: 'terminated', terminationReason: 'done' }
    await s.commit({ missions: [mission, timed], missionLog: [{ s256: 'm-1', at: T, type: 'created', detail: { a: 1 } }] })
    expect(await s.getMission('m-1')).toStrictEqual(mission)
    expect(await s.getMission('m-2')).toStrictEqual(timed)
    expectNoEmptyMembers((await s.getMission('m-1'))!)
    expect(await s.getMission('m-3')).toBeUndefined()
    const ended: MissionRecord = { ...mission, status: 'terminated', terminationReason: 'revoked by the person' }
    await s.commit({ missions: [ended], missionLog: [{ s256: 'm-1', at: T + 1, type: 'permission', detail: { action: 'pay', nested: { ok: [true] } } }, { s256: 'm-1', at: T + 1, type: 'terminated', detail: {} }] })
    expect(await s.getMission('m-1')).toStrictEqual(ended)
    const log = await s.missionLog('m-1')
    expect(log.map(({ seq: _seq, ...e }) => e)).toStrictEqual([
      { s256: 'm-1', at: T, type: 'created', detail: { a: 1 } },
      { s256: 'm-1', at: T + 1, type: 'permission', detail: { action: 'pay', nested: { ok: [true] } } },
      { s256: 'm-1', at: T + 1, type: 'terminated', detail: {} },
    ])
    const seqs = log.map((e) => e.seq!)
    expect(seqs.every((q, i) => Number.isSafeInteger(q) && (i === 0 || q > seqs[i - 1]!))).toBe(true)
    expect(await s.missionLog('m-2')).toStrictEqual([])
  })

  it('audit: round-trip, seq increasing, filters combined with AND, paging', async () => {
    const s = await make()
    const full: AuditEvent = { at: T, type: 'grant.created', personId: alice.id, agentSub: HELPER, parentAgent: BOT, resource: RS, scope: 'files.read', missionS256: 'm-1', decision: 'grant', reason: 'remembered', detail: { scopes: ['a'], n: 1, nothing: null } }
    const bare: AuditEvent = { at: T + 1, type: 'agent.bound' }
    await s.commit({ audit: [full, bare] })
    await s.commit({
      audit: [
        audit(T + 2, { personId: alice.id, agentSub: BOT }),
        audit(T + 3, { personId: bob.id, agentSub: BOT, missionS256: 'm-1' }),
        audit(T + 4, { personId: alice.id, agentSub: BOT, missionS256: 'm-2' }),
      ],
    })
    const all = await s.queryAudit({})
    expect(all).toHaveLength(5)
    const seqs = all.map((e) => e.seq!)
    expect(seqs.every((q, i) => Number.isSafeInteger(q) && (i === 0 || q > seqs[i - 1]!))).toBe(true)
    expect(all[0]).toStrictEqual({ ...full, seq: seqs[0] })
    expect(all[1]).toStrictEqual({ ...bare, seq: seqs[1] })
    expectNoEmptyMembers(all[1]!)
    const ats = async (q: Parameters<PersonServerStore['queryAudit']>[0]): Promise<number[]> => (await s.queryAudit(q)).map((e) => e.at - T)
    expect(await ats({ personId: alice.id })).toEqual([0, 2, 4])
    expect(await ats({ agentSub: BOT })).toEqual([0, 2, 3, 4]) // event 0 is its sub-agent's (parentAgent)
    expect(await ats({ missionS256: 'm-1' })).toEqual([0, 3])
    expect(await ats({ from: T + 2 })).toEqual([2, 3, 4])
    expect(await ats({ to: T + 2 })).toEqual([0, 1])
    expect(await ats({ from: T + 1, to: T + 4 })).toEqual([1, 2, 3])
    expect(await ats({ afterSeq: seqs[2] })).toEqual([3, 4])
    expect(await ats({ personId: alice.id, agentSub: BOT, from: T + 3 })).toEqual([4])
    expect(await ats({ personId: 'nobody' })).toEqual([])
    expect(await ats({ limit: 2 })).toEqual([0, 1])
    expect(await ats({ limit: 2, afterSeq: seqs[1] })).toEqual([2, 3])
    expect(await ats({ order: 'desc', limit: 2 })).toEqual([4, 3])
    expect(await ats({ order: 'desc', limit: 2, beforeSeq: seqs[3] })).toEqual([2, 1])
  })

  it('audit: an agent filter includes the events of its sub-agents (parent_agent)', async () => {
    const s = await make()
    await s.commit({ audit: [audit(T, { agentSub: 'aauth:bot@a.example' }), audit(T + 1, { agentSub: 'aauth:bot+pay@a.example', parentAgent: 'aauth:bot@a.example' }), audit(T + 2, { agentSub: 'aauth:other@a.example' })] })
    expect((await s.queryAudit({ agentSub: 'aauth:bot@a.example' })).map((e) => e.at - T)).toEqual([0, 1])
    expect((await s.queryAudit({ agentSub: 'aauth:bot+pay@a.example' })).map((e) => e.at - T)).toEqual([1])
  })

  it('audit: limit defaults to 100 and is at most 1000', async () => {
    const s = await make()
    const events = Array.from({ length: 1100 }, (_, i) => audit(T + i, { detail: { i } }))
    await s.commit({ audit: events })
    expect(await s.queryAudit({})).toHaveLength(100)
    expect(await s.queryAudit({ limit: 5000 })).toHaveLength(1000)
    expect(await s.queryAudit({ limit: 1000 })).toHaveLength(1000)
    expect(await s.queryAudit({ limit: 7 })).toHaveLength(7)
    const page = await s.queryAudit({ limit: 1000 })
    expect((await s.queryAudit({ afterSeq: page.at(-1)!.seq!, limit: 1000 })).map((e) => e.detail)).toEqual(events.slice(1000).map((e) => e.detail))
  })

  it('setting: the first value is kept forever, also under concurrent first calls', async () => {
    const s = await make()
    expect(await s.setting('secret', 'first')).toBe('first')
    expect(await s.setting('secret', 'second')).toBe('first')
    expect(await s.setting('other', '')).toBe('')
    const raced = await Promise.all(['a', 'b', 'c', 'd'].map((v) => s.setting('raced', v)))
    expect(new Set(raced).size).toBe(1)
    expect(await s.setting('raced', 'z')).toBe(raced[0])
  })

  it('purge: removes what expired before now - skew, keeps the rest', async () => {
    const s = await seeded(make)
    const now = T + HOUR
    const skew = MIN
    const gone = now - skew - 1
    const kept = now - skew
    await s.commit({
      issued: [issued('i-gone', { expiresAt: gone }), issued('i-kept', { expiresAt: kept }), issued('i-live', { expiresAt: now + HOUR })],
      newPending: pending('p-open-gone', { expiresAt: gone }),
      grants: [grant('g-expired', { expiresAt: gone })],
      missions: [mission],
      missionLog: [{ s256: 'm-1', at: T, type: 'created', detail: {} }],
      audit: [audit(T)],
    })
    await s.commit({ newPending: pending('p-closed-gone', { state: 'denied', expiresAt: gone }) })
    await s.commit({ newPending: pending('p-closed-kept', { state: 'granted', expiresAt: kept }) })
    await s.commit({ newPending: pending('p-open-live', { expiresAt: now + MIN }) })
    await s.noteAgentToken({ iss: AP, jti: 'a-gone', sub: BOT, expiresAt: gone })
    await s.noteAgentToken({ iss: AP, jti: 'a-kept', sub: BOT, expiresAt: kept })
    await s.addRevocation({ iss: AP, jti: 'r-gone', expiresAt: gone, receivedAt: T })
    await s.addRevocation({ iss: AP, jti: 'r-kept', expiresAt: kept, receivedAt: T })
    await s.recordOutcomes([{ jti: 'i-gone', recipient: RS, outcome: 'revoked', at: T }, { jti: 'i-kept', recipient: RS, outcome: 'revoked', at: T }])

    await s.purge(now, skew)
    expect(await s.getIssued('i-gone')).toBeUndefined()
    expect(await s.getIssued('i-kept')).toBeDefined()
    expect(await s.getIssued('i-live')).toBeDefined()
    expect(await s.getPending('p-open-gone')).toBeUndefined()
    expect(await s.getPending('p-closed-gone')).toBeUndefined()
    expect(await s.getPending('p-closed-kept')).toBeDefined()
    expect(await s.getPending('p-open-live')).toBeDefined()
    expect(await s.getAgentToken(AP, 'a-gone')).toBeUndefined()
    expect(await s.getAgentToken(AP, 'a-kept')).toBeDefined()
    expect(await s.isRevoked(AP, 'r-gone')).toBe(false)
    expect(await s.isRevoked(AP, 'r-kept')).toBe(true)
    expect(await s.outcomes('i-gone')).toStrictEqual([])
    expect(await s.outcomes('i-kept')).toHaveLength(1)
    // Not purged: persons, grants (history), missions and their logs, audit.
    expect(await s.getGrant('g-expired')).toBeDefined()
    expect(await s.getMission('m-1')).toBeDefined()
    expect(await s.missionLog('m-1')).toHaveLength(1)
    expect(await s.queryAudit({})).toHaveLength(1)
    expect(await s.listPersons()).toHaveLength(3)
    await s.purge(now, skew)
  })

  it('close: later calls reject; closing twice is fine', async () => {
    const s = await make()
    open.splice(open.indexOf(s), 1)
    await s.close()
    await s.close()
    await expect(s.getPerson('x')).rejects.toThrow()
    await expect(s.commit({ persons: [alice] })).rejects.toThrow()
  })
})

// ---------------------------------------------------------------------------------------------
// SQLite only

describe('SqliteStore', () => {
  it('a file store keeps everything across close and reopen, in WAL mode', async () => {
    const file = dbFile()
    const a = await SqliteStore.open({ filename: file, synchronous: 'FULL' })
    await a.commit({ persons: [alice], grants: [grant('g-1')], newPending: { ...fullPending, personId: alice.id }, audit: [audit(T)] })
    expect(await a.setting('secret', 's1')).toBe('s1')
    expect(existsSync(`${file}-wal`)).toBe(true)
    await a.close()
    const b = await track(SqliteStore.open({ filename: file }))
    expect(await b.schemaVersion()).toBe(LATEST_SCHEMA_VERSION)
    expect(await b.getPerson(alice.id)).toStrictEqual(alice)
    expect(await b.getGrant('g-1')).toStrictEqual(grant('g-1'))
    expect(await b.getPending('pend-full')).toStrictEqual({ ...fullPending, personId: alice.id })
    expect(await b.queryAudit({})).toHaveLength(1)
    expect(await b.setting('secret', 's2')).toBe('s1')
    const raw = new Database(file, { readonly: true })
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal')
      expect(raw.prepare('SELECT version FROM schema_version ORDER BY version').all()).toEqual(MIGRATIONS.map((m) => ({ version: m.version })))
    } finally {
      raw.close()
    }
  })

  it('two stores on one file (two processes) see each other and serialise their writes', async () => {
    const file = dbFile()
    const a = await track(SqliteStore.open({ filename: file }))
    const b = await track(SqliteStore.open({ filename: file }))
    await a.commit({ persons: [alice], newPending: pending('p1') })
    expect(await b.getPerson(alice.id)).toStrictEqual(alice)
    const cas = { id: 'p1', from: ['pending' as const], patch: { state: 'granted' as const, updatedAt: T + 1 } }
    expect((await b.commit({ pending: cas })).applied).toBe(true)
    expect((await a.commit({ pending: cas })).applied).toBe(false)
  })

  it('a commit is durable once it resolves: SIGKILL right after it loses nothing (synchronous=NORMAL)', async () => {
    const file = dbFile()
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d
        // Kill it in the middle of its stream of commits.
        if (/^committed 300$/m.test(stdout)) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      child.once('exit', () => reject(new Error(`the child exited before it was killed: ${stderr}`)))
      setTimeout(() => reject(new Error(`no commits from the child within 20 s: ${stdout.slice(-200)} ${stderr}`)), 20_000).unref()
    })
    expect(await exited).toBe('SIGKILL')
    const lines = stdout.split('\n')
    expect(lines[0]).toBe('committed')
    const reported = lines.filter((l) => /^committed \d+$/.test(l)).map((l) => Number(l.split(' ')[1]))
    expect(reported.length).toBeGreaterThanOrEqual(301)

    const raw = new Database(file)
    try {
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok')
    } finally {
      raw.close()
    }
    const s = await track(SqliteStore.open({ filename: file }))
    expect(await s.getPerson('p-durable')).toBeDefined()
    for (const i of reported) expect(await s.getIssued(`jti-${i}`), `jti-${i}`).toBeDefined()
    const events = await s.queryAudit({ limit: 1000, personId: 'p-durable' })
    expect(events.length).toBeGreaterThanOrEqual(reported.length)
    expect(events.slice(0, reported.length).map((e) => e.detail)).toStrictEqual(reported.map((i) => ({ i })))
  })

  it('refuses a bad synchronous option', async () => {
    await expect(SqliteStore.open({ filename: ':memory:', synchronous: 'OFF' as 'FULL' })).rejects.toThrow(TypeError)
  })
})

// ---------------------------------------------------------------------------------------------
// PostgreSQL only

describe('PostgresStore', () => {
  it('instances starting at once on a new schema all migrate it once', async () => {
    const schema = freshSchema()
    const stores = await Promise.all([1, 2, 3, 4].map(() => pgStore(schema)))
    for (const s of stores) expect(await s.schemaVersion()).toBe(LATEST_SCHEMA_VERSION)
    await Promise.all(stores.map((s) => s.migrate()))
    const client = new pg.Client({ connectionString: await postgresUrl() })
    await client.connect()
    try {
      const r = await client.query(`SELECT version FROM "${schema}".schema_version`)
      expect(r.rows.map((x: { version: string }) => Number(x.version)).sort((a, b) => a - b)).toEqual(MIGRATIONS.map((m) => m.version))
    } finally {
      await client.end()
    }
  })

  it('two instances (two pools): one approval wins, the losers write nothing', async () => {
    const schema = freshSchema()
    const [a, b] = await Promise.all([pgStore(schema), pgStore(schema)])
    await a.commit({ persons: [alice], newPending: pending('p1') })
    const approve = (n: number): StoreBatch => ({
      pending: { id: 'p1', from: ['pending', 'interacting'], patch: { state: 'granted', updatedAt: T + n } },
      grants: [grant(`g-${n}`)],
      issued: [issued(`t-${n}`)],
      audit: [audit(T + n, { detail: { n } })],
    })
    const ns = Array.from({ length: 12 }, (_, i) => i + 1)
    const results = await Promise.all(ns.map((n) => (n % 2 === 0 ? a : b).commit(approve(n))))
    expect(results.filter((r) => r.applied)).toHaveLength(1)
    const winner = ns[results.findIndex((r) => r.applied)]!
    expect((await b.listGrants(alice.id)).map((g) => g.id)).toEqual([`g-${winner}`])
    expect((await a.queryAudit({})).map((e) => e.detail)).toStrictEqual([{ n: winner }])
    expect((await b.liveIssued({ agentIss: AP, agentSub: BOT, now: T })).map((t) => t.jti)).toEqual([`t-${winner}`])
  })

  it('concurrent grants of one key from two instances leave exactly one active', async () => {
    const schema = freshSchema()
    const [a, b] = await Promise.all([pgStore(schema), pgStore(schema)])
    await a.commit({ persons: [alice] })
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).commit({ grants: [grant(`g-${i}`, { createdAt: T + i })] })))
    expect(await a.activeGrants(alice.id, AP, BOT, RS, T + HOUR)).toHaveLength(1)
    expect(await b.listGrants(alice.id)).toHaveLength(10)
  })

  it('audit seq order is commit order: a reader paging with afterSeq never skips an event that commits late', async () => {
    const schema = freshSchema()
    const [a, b] = await Promise.all([pgStore(schema), pgStore(schema)])
    await a.commit({ persons: [alice] })
    // Hold alice's row: A's deferred foreign-key check at COMMIT waits for it, after A has
    // inserted its audit event. B's event, committed meanwhile, must not become visible first.
    const holder = new pg.Client({ connectionString: await postgresUrl() })
    await holder.connect()
    try {
      await holder.query('BEGIN')
      await holder.query(`SELECT id FROM "${schema}".persons WHERE id = $1 FOR UPDATE`, [alice.id])
      const slow = a.commit({ grants: [grant('g-1')], audit: [audit(T, { detail: { n: 1 } })] })
      await new Promise((resolve) => setTimeout(resolve, 300))
      const fast = b.commit({ audit: [audit(T + 1, { detail: { n: 2 } })] })
      await new Promise((resolve) => setTimeout(resolve, 300))
      const first = await a.queryAudit({})
      await holder.query('ROLLBACK')
      await Promise.all([slow, fast])
      const rest = await a.queryAudit(first.length === 0 ? {} : { afterSeq: first.at(-1)!.seq! })
      expect([...first, ...rest].map((e) => e.detail)).toStrictEqual([{ n: 1 }, { n: 2 }])
    } finally {
      await holder.end()
    }
  })

  it('a lent pool: its connections get the schema, and close() leaves it open', async () => {
    const pool = new pg.Pool({ connectionString: await postgresUrl(), max: 2 })
    try {
      const schema = freshSchema()
      const s = await PostgresStore.connect({ pool, schema })
      await s.commit({ persons: [alice] })
      expect(await s.getPerson(alice.id)).toStrictEqual(alice)
      await s.close()
      await expect(s.getPerson(alice.id)).rejects.toThrow(/closed/)
      const r = await pool.query(`SELECT username FROM "${schema}".persons`)
      expect(r.rows).toEqual([{ username: 'alice' }])
      // An owned pool and the same schema see the same data.
      const owned = await pgStore(schema)
      expect(await owned.getPerson(alice.id)).toStrictEqual(alice)
    } finally {
      await pool.end()
    }
  })

  it('accepts a pg Pool (types), refuses bad options, and loads pg only in connect()', async () => {
    expectTypeOf<pg.Pool>().toExtend<PostgresPool>()
    await expect(PostgresStore.connect({ schema: 'bad-name; DROP' })).rejects.toThrow(TypeError)
    await expect(PostgresStore.connect({ schema: '1abc' })).rejects.toThrow(TypeError)
    await expect(PostgresStore.connect({ max: 0 })).rejects.toThrow(TypeError)
    const pool = new pg.Pool({ connectionString: await postgresUrl() })
    try {
      await expect(PostgresStore.connect({ pool, connectionString: 'postgres://x' })).rejects.toThrow(TypeError)
    } finally {
      await pool.end()
    }
  })

  it('without the pg package, connect() says to install it (and importing the store does not need it)', async () => {
    vi.resetModules()
    vi.doMock('pg', () => {
      throw new Error("Cannot find package 'pg'")
    })
    try {
      const { PostgresStore: Fresh, SqliteStore: FreshSqlite } = await import('../../src/person-server/store/index.js')
      await expect(Fresh.connect({ connectionString: 'postgres://127.0.0.1:1/x' })).rejects.toThrow(/install pg to use PostgresStore/)
      const s = await track(FreshSqlite.open({ filename: ':memory:' }))
      expect(await s.schemaVersion()).toBe(LATEST_SCHEMA_VERSION)
    } finally {
      vi.doUnmock('pg')
      vi.resetModules()
    }
  })

  it('an unreachable server fails connect() promptly, with no pool left behind', async () => {
    const port = await freePort()
    const started = Date.now()
    await expect(PostgresStore.connect({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 2000 })).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('stores JSON members as text: exact round-trip, NUL characters included', async () => {
    const s = await pgStore()
    await s.commit({ persons: [alice], newPending: pending('p1', { work: { key: 'a\u0000b', order: { z: 1, a: 2 } } }) })
    const rec = await s.getPending('p1')
    expect(rec!.work).toStrictEqual({ key: 'a\u0000b', order: { z: 1, a: 2 } })
    expect(Object.keys(rec!.work['order'] as object)).toEqual(['z', 'a'])
  })
})
