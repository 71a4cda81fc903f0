/**
 * In-memory fakes for the web-page tests: a ConsentService that records every call and follows
 * the contract's rules (ownership, open states, clarification limit), a store with people and an
 * audit log, a clock, a cookie jar, and helpers to log in through the real login form.
 */
import type { Hono } from 'hono'
import { normalizeInteractionCode } from '../../../src/protocol/interaction-code.js'
import { ConsentError, type ConsentDecision, type ConsentService, type RevocationReport } from '../../../src/person-server/consent.js'
import {
  OPEN_PENDING_STATES,
  type AgentBinding,
  type AuditEvent,
  type AuditQuery,
  type ConsentView,
  type Grant,
  type PendingRecord,
  type PersonRecord,
  type StoreBatch,
} from '../../../src/person-server/store/types.js'
import { createPersonWeb, hashPassword, type PersonWebOptions } from '../../../src/person-server/web/index.js'
import type { WebEnv } from '../../../src/person-server/web/context.js'

export const SECRET = 'test secret that is long enough for HMAC keys!!'
export const T0 = Date.UTC(2026, 4, 1, 12, 0, 0)

/** A mutable clock. */
export class Clock {
  t = T0
  readonly now = (): number => this.t
  advance(ms: number): void {
    this.t += ms
  }
}

export interface Call {
  readonly method: string
  readonly args: readonly unknown[]
}

const MUTATING = new Set(['open', 'decide', 'ask', 'answer', 'revokeGrant', 'revokeAgent'])

/** A ConsentService over maps, recording calls. */
export class FakeConsent implements ConsentService {
  readonly records = new Map<string, PendingRecord>()
  bindings: AgentBinding[] = []
  grantList: Grant[] = []
  readonly calls: Call[] = []
  /** Make the next call of `method` throw. */
  readonly failures = new Map<string, ConsentError>()
  report: RevocationReport = {
    tokens: 2,
    outcomes: [
      { jti: 'jti-one-1234567890', recipient: 'https://files.example', outcome: 'revoked', at: T0 },
      { jti: 'jti-two-1234567890', recipient: 'https://old.example', outcome: 'revocation_unsupported', at: T0 },
    ],
  }

  readonly clock: Clock
  constructor(clock: Clock) {
    this.clock = clock
  }

  /** Calls that change something. */
  get mutations(): Call[] {
    return this.calls.filter((c) => MUTATING.has(c.method))
  }

  #record(method: string, args: readonly unknown[]): void {
    this.calls.push({ method, args })
    const failure = this.failures.get(method)
    if (failure !== undefined) {
      this.failures.delete(method)
      throw failure
    }
  }

  #mine(id: string, personId: string): PendingRecord {
    const rec = this.records.get(id)
    if (rec === undefined) throw new ConsentError('not_found', 'No such request.')
    if (rec.personId !== undefined && rec.personId !== personId) throw new ConsentError('not_yours', 'This request is for someone else.')
    return rec
  }

  #open(id: string, personId: string): PendingRecord {
    const rec = this.#mine(id, personId)
    if (!OPEN_PENDING_STATES.includes(rec.state)) throw new ConsentError('closed', 'The request is closed.')
    return rec
  }

  #set(rec: PendingRecord, patch: Partial<PendingRecord>): PendingRecord {
    const next = { ...rec, ...patch, updatedAt: this.clock.now() } as PendingRecord
    this.records.set(rec.id, next)
    return next
  }

  add(rec: PendingRecord): PendingRecord {
    this.records.set(rec.id, rec)
    return rec
  }

  /** The agent answers the latest question. */
  agentReplies(id: string, text: string): void {
    const rec = this.records.get(id)!
    this.#set(rec, { state: 'interacting', chat: [...(rec.chat ?? []), { from: 'agent', text, at: this.clock.now() }] })
  }

  async findByCode(code: string): Promise<PendingRecord | undefined> {
    this.#record('findByCode', [code])
    const wanted = normalizeInteractionCode(code)
    return [...this.records.values()].find((r) => r.code !== undefined && r.code === wanted && OPEN_PENDING_STATES.includes(r.state))
  }

  async get(id: string, personId: string): Promise<PendingRecord> {
    this.#record('get', [id, personId])
    return this.#mine(id, personId)
  }

  async open(id: string, personId: string): Promise<PendingRecord> {
    this.#record('open', [id, personId])
    const rec = this.#open(id, personId)
    const { code: _code, ...rest } = rec
    const next = { ...rest, state: 'interacting', personId, updatedAt: this.clock.now() } as PendingRecord
    this.records.set(id, next)
    return next
  }

  async decide(id: string, personId: string, decision: ConsentDecision): Promise<PendingRecord> {
    this.#record('decide', [id, personId, decision])
    return this.#set(this.#open(id, personId), { state: decision.approve ? 'granted' : 'denied', personId })
  }

  async ask(id: string, personId: string, question: string): Promise<PendingRecord> {
    this.#record('ask', [id, personId, question])
    const rec = this.#open(id, personId)
    const asked = (rec.chat ?? []).filter((t) => t.from === 'person').length
    if (asked >= 5) throw new ConsentError('clarification_limit', 'Five questions asked already.')
    return this.#set(rec, { state: 'clarification', chat: [...(rec.chat ?? []), { from: 'person', text: question, at: this.clock.now() }] })
  }

  async answer(id: string, personId: string, answer: string): Promise<PendingRecord> {
    this.#record('answer', [id, personId, answer])
    return this.#set(this.#open(id, personId), { state: 'granted' })
  }

  async waiting(personId: string): Promise<PendingRecord[]> {
    this.#record('waiting', [personId])
    return [...this.records.values()].filter((r) => r.personId === personId && OPEN_PENDING_STATES.includes(r.state))
  }

  async agents(personId: string): Promise<AgentBinding[]> {
    this.#record('agents', [personId])
    return this.bindings.filter((b) => b.personId === personId)
  }

  async grants(personId: string): Promise<Grant[]> {
    this.#record('grants', [personId])
    return this.grantList.filter((g) => g.personId === personId)
  }

  async revokeGrant(personId: string, grantId: string): Promise<RevocationReport> {
    this.#record('revokeGrant', [personId, grantId])
    const g = this.grantList.find((x) => x.id === grantId)
    if (g === undefined) throw new ConsentError('not_found', 'No such grant.')
    if (g.personId !== personId) throw new ConsentError('not_yours', 'Not your grant.')
    this.grantList = this.grantList.map((x) => (x.id === grantId ? { ...x, revokedAt: this.clock.now() } : x))
    return this.report
  }

  async revokeAgent(personId: string, agentIss: string, agentSub: string): Promise<RevocationReport> {
    this.#record('revokeAgent', [personId, agentIss, agentSub])
    const b = this.bindings.find((x) => x.agentIss === agentIss && x.agentSub === agentSub)
    if (b === undefined) throw new ConsentError('not_found', 'No such agent.')
    if (b.personId !== personId) throw new ConsentError('not_yours', 'Not your agent.')
    this.bindings = this.bindings.map((x) => (x === b ? { ...x, revokedAt: this.clock.now() } : x))
    return this.report
  }
}

/** People and an audit log. */
export class FakeStore {
  readonly persons = new Map<string, PersonRecord>()
  audit: AuditEvent[] = []
  readonly queries: AuditQuery[] = []

  async getPerson(id: string): Promise<PersonRecord | undefined> {
    return this.persons.get(id)
  }
  async getPersonByUsername(username: string): Promise<PersonRecord | undefined> {
    return [...this.persons.values()].find((p) => p.username === username)
  }
  async queryAudit(q: AuditQuery): Promise<AuditEvent[]> {
    this.queries.push(q)
    return this.audit
      .filter((e) => (q.personId === undefined || e.personId === q.personId) && (q.agentSub === undefined || e.agentSub === q.agentSub))
      .filter((e) => (q.missionS256 === undefined || e.missionS256 === q.missionS256) && (q.from === undefined || e.at >= q.from) && (q.to === undefined || e.at < q.to))
      .slice(0, q.limit ?? 100)
  }
  /** Only `persons` (what login methods write). */
  async commit(batch: StoreBatch): Promise<{ applied: boolean }> {
    for (const p of batch.persons ?? []) this.persons.set(p.id, p)
    return { applied: true }
  }
}

/** A minimal cookie jar for `app.request`. */
export class Jar {
  readonly cookies = new Map<string, string>()
  take(res: Response): Response {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      if (/Max-Age=0\b/i.test(line) || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return res
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }
}

export const PASSWORD = 'correct horse battery staple'
let aliceHash: Promise<string> | undefined
/** One scrypt hash shared by every test file's Alice (hashing is deliberately slow). */
export function passwordHash(): Promise<string> {
  aliceHash ??= hashPassword(PASSWORD, { N: 2 ** 14 })
  return aliceHash
}

export const AGENT_ISS = 'https://agents.example'
export const AGENT_SUB = 'aauth:assistant@agents.example'

/** A request view like the PS builds for an auth token request with per-call details. */
export function sampleView(over: Partial<ConsentView> = {}): ConsentView {
  return {
    kind: 'auth_token',
    agent: { iss: AGENT_ISS, sub: AGENT_SUB, providerName: 'Example Agents', platform: 'linux', device: 'Laptop (CLI)' },
    resource: {
      id: 'https://bank.example',
      name: 'Example Bank',
      description: 'Your **bank** accounts.',
      scopeDescriptions: { 'payments.send': 'Send payments from your account', 'accounts.read': 'See your balances' },
      accessMode: 'ps',
    },
    scopes: ['accounts.read', 'payments.send'],
    newScopes: ['payments.send'],
    account: 'checking-001',
    missionS256: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
    justification: 'I need to pay the **invoice** you asked about.',
    details: { summary: 'Send a wire transfer', amount: 9000, currency: 'USD', refundable: false, irreversible: 'A sent wire cannot be recalled' },
    ...over,
  }
}

export function sampleRecord(over: Partial<PendingRecord> = {}): PendingRecord {
  const view = over.view ?? sampleView()
  return {
    id: 'req-1',
    kind: view.kind,
    agentIss: AGENT_ISS,
    agentSub: AGENT_SUB,
    code: 'K7QD2M9X',
    state: 'pending',
    view,
    work: {},
    createdAt: T0,
    updatedAt: T0,
    expiresAt: T0 + 10 * 60_000,
    ...over,
  }
}

export interface Harness {
  readonly app: Hono<WebEnv>
  readonly consent: FakeConsent
  readonly store: FakeStore
  readonly clock: Clock
  readonly alice: PersonRecord
  readonly bob: PersonRecord
  /** A request with the jar's cookies. */
  request(path: string, init?: RequestInit, jar?: Jar): Promise<Response>
  /** Logs in through the form; returns the jar holding the session. */
  login(username?: string, password?: string): Promise<Jar>
  /** The CSRF token of a page. */
  csrfOf(html: string): string
  /** POSTs a form with the page's CSRF token. */
  post(path: string, fields: Record<string, string>, jar: Jar, init?: RequestInit): Promise<Response>
}

/** Builds the web app over fakes, with Alice and Bob. */
export async function harness(options: Partial<PersonWebOptions> = {}): Promise<Harness> {
  const clock = new Clock()
  const consent = new FakeConsent(clock)
  const store = new FakeStore()
  const hash = await passwordHash()
  const alice: PersonRecord = { id: 'person-alice', username: 'alice', displayName: 'Alice Example', passwordHash: hash, createdAt: T0 }
  const bob: PersonRecord = { id: 'person-bob', username: 'bob', displayName: 'Bob Example', passwordHash: hash, createdAt: T0 }
  store.persons.set(alice.id, alice)
  store.persons.set(bob.id, bob)
  const app = createPersonWeb({ consent, store, secret: SECRET, secureCookies: false, name: 'Test PS', now: clock.now, ...options })
  const request = async (path: string, init: RequestInit = {}, jar?: Jar): Promise<Response> => {
    const headers = new Headers(init.headers)
    if (jar !== undefined && jar.cookies.size > 0) headers.set('cookie', jar.header())
    const res = await app.request(path, { ...init, headers })
    return jar !== undefined ? jar.take(res) : res
  }
  const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? ''
  const post = (path: string, fields: Record<string, string>, jar: Jar, init: RequestInit = {}): Promise<Response> =>
    request(path, { ...init, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(init.headers as Record<string, string>) }, body: new URLSearchParams(fields).toString() }, jar)
  const login = async (username = 'alice', password = PASSWORD): Promise<Jar> => {
    const jar = new Jar()
    const page = await request('/login', {}, jar)
    const csrf = csrfOf(await page.text())
    const res = await post('/login', { username, password, csrf, next: '/account' }, jar)
    if (res.status !== 303) throw new Error(`login failed: ${res.status}`)
    return jar
  }
  return { app, consent, store, clock, alice, bob, request, login, csrfOf, post }
}
