/**
 * Crash safety of the Person Server: "SIGKILL the PS process in the middle of consents and
 * issuance, in a loop; restart; every approval the person saw confirmed is still there, every
 * issued token has its record, no audit event is lost."
 *
 * The PS runs in its own process (fixtures/ps-process.ts) on a fixed loopback port, over a SQLite
 * file (WAL, the store's defaults) or a PostgreSQL schema, with its signing key in a file, so the
 * issuer and its keys are the same after every restart. The agent provider and the resources are
 * loopback issuers in this process (the PS fetches their JWKS from here).
 *
 * Each round: start the PS, log in as Alice through the real login form, then a burst of
 * concurrent work —
 *  - token workers: one bound agent each, a person token from `POST /person`, then `POST /token`
 *    with a fresh resource token each time (remembered grant → 200);
 *  - consent workers: alternately a bound agent asking for a resource it has no grant for, and a
 *    brand-new agent (first contact, so the approval also binds it), each `POST /person` with
 *    `capabilities: ["interaction"]` → 202 with an interaction code; Alice opens
 *    `/interaction?code=…`, reads the consent page, posts Approve ("until I revoke it") with the
 *    page's CSRF token → 303 (the PS's confirmation, sent only after the commit); the agent then
 *    polls its pending URL → 200 with the person token minted on approval —
 * and SIGKILL the PS at a random moment while requests are in flight. Only what the client saw
 * succeed is recorded: a 200 whose body was read in full (token `jti`s), a 303 after Approve.
 *
 * Then, with the PS dead, this process opens the same store and checks everything recorded so far
 * (all rounds): each token's issued record (kind, person, agent) and its `*_token.issued` audit
 * event; each confirmed approval's request `granted`, with its `request.approved` audit event, the
 * agent's binding to Alice, the remembered grant, and the issued record of the token minted with
 * it. The next round restarts on the same store.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { PostgresStore, SqliteStore, type AuditEvent, type PersonServerStore } from '../../src/person-server/index.js'
import { createResourceToken, decodeJwt, signRequest } from '../../src/protocol/index.js'
import { closeAll, LOOPBACK } from '../helpers/aauth-servers.js'
import { freshSchema, postgresUrl, stopPostgres } from '../helpers/postgres.js'
import { freePort } from '../helpers/redis.js'
import { loopIssuer, makeAgent, type Agent } from '../resource/resource-fixture.js'
import type { ReadyLine, Seed } from './fixtures/ps-process.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIXTURE = fileURLToPath(new URL('./fixtures/ps-process.ts', import.meta.url))
const ROUNDS = 5
const TOKEN_WORKERS = 4
const CONSENT_WORKERS = 2
/** The kill comes this long (ms, uniformly random) after the burst started. */
const KILL_AFTER_MS: readonly [number, number] = [400, 1400]
const PERSON = { id: 'alice', username: 'alice', displayName: 'Alice', password: 'correct horse battery staple' }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Requests to the PS sent and not yet answered in full (read to the end of the body). */
let inFlight = 0

/** `fetch`, counted in {@link inFlight} until the body is read; answers the status and the body text. */
async function counted(url: string | URL, init: RequestInit): Promise<{ res: Response; body: string }> {
  inFlight++
  try {
    const res = await fetch(url, init)
    return { res, body: await res.text() }
  } finally {
    inFlight--
  }
}

// ------------------------------------------------------------------ the PS process

interface PsProcess {
  readonly child: ChildProcess
  readonly issuer: string
  readonly exited: Promise<void>
  /** Everything the process wrote on stderr. */
  stderr(): string
}

/** Starts the PS process and waits for its ready line. */
function startPs(args: readonly string[]): Promise<PsProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise<PsProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the PS process did not start within 30 s: ${stderr}`))
    }, 30_000)
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      const nl = stdout.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      const ready = JSON.parse(stdout.slice(0, nl)) as ReadyLine
      resolve({ child, issuer: ready.issuer, exited, stderr: () => stderr })
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the PS process exited (${code ?? signal}) before it was ready: ${stderr}`))
    })
  })
}

// ------------------------------------------------------------------ clients

/** A signed agent request (RFC 9421, body covered), `created` = now. */
async function agentFetch(url: string, agent: Agent, json?: unknown): Promise<{ res: Response; body: string }> {
  const method = json === undefined ? 'GET' : 'POST'
  const body = json === undefined ? undefined : new TextEncoder().encode(JSON.stringify(json))
  const headers = new Headers(body === undefined ? {} : { 'content-type': 'application/json' })
  const signed = await signRequest({ method, url, headers }, { signer: agent.signer, signatureKey: { scheme: 'jwt', jwt: agent.token, cache: false }, ...(body === undefined ? {} : { body }) })
  return counted(url, { method, headers: signed.headers, ...(body === undefined ? {} : { body: body as BufferSource }) })
}

/** Alice's browser: a cookie jar over `fetch`, redirects not followed. */
class Browser {
  readonly #jar = new Map<string, string>()
  readonly origin: string
  constructor(origin: string) {
    this.origin = origin
  }

  async request(path: string, form?: Record<string, string>): Promise<{ res: Response; body: string }> {
    const headers = new Headers()
    if (this.#jar.size > 0) headers.set('cookie', [...this.#jar].map(([k, v]) => `${k}=${v}`).join('; '))
    if (form !== undefined) headers.set('content-type', 'application/x-www-form-urlencoded')
    const answer = await counted(new URL(path, this.origin), { method: form === undefined ? 'GET' : 'POST', headers, redirect: 'manual', ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }) })
    for (const c of answer.res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      if (value === '') this.#jar.delete(name)
      else this.#jar.set(name, value)
    }
    return answer
  }

  /** The CSRF token of the first form of a page. */
  static csrfOf(page: string): string {
    const m = /name="csrf" value="([^"]+)"/.exec(page)
    if (m === null) throw new Error('no CSRF field on the page')
    return m[1]!
  }

  async login(username: string, password: string): Promise<void> {
    const form = await this.request('/login')
    expect(form.res.status).toBe(200)
    const done = await this.request('/login', { username, password, csrf: Browser.csrfOf(form.body), next: '/account' })
    expect(done.res.status, 'login').toBe(303)
  }
}

// ------------------------------------------------------------------ what the client saw

interface SeenToken {
  readonly jti: string
  readonly kind: 'person' | 'auth'
  readonly agent: Agent
  readonly round: number
}

interface SeenApproval {
  readonly pendingId: string
  readonly agent: Agent
  readonly resource: string
  readonly round: number
  /** The agent had no binding before (first contact): the approval binds it. */
  readonly firstContact: boolean
}

interface Seen {
  readonly tokens: SeenToken[]
  readonly approvals: SeenApproval[]
}

// ------------------------------------------------------------------ one backend

interface Backend {
  readonly name: string
  /** Store arguments of the PS process. */
  readonly args: readonly string[]
  /** The store, opened in this process while the PS is down. */
  open(): Promise<PersonServerStore>
  /** Done with what `open` gave for this round. */
  release(store: PersonServerStore): Promise<void>
  dispose(): Promise<void>
}

/** Every audit event, in order (the query pages by 1000). */
async function allAudit(store: PersonServerStore): Promise<AuditEvent[]> {
  const out: AuditEvent[] = []
  for (;;) {
    const page = await store.queryAudit({ limit: 1000, ...(out.length === 0 ? {} : { afterSeq: out[out.length - 1]!.seq! }) })
    out.push(...page)
    if (page.length < 1000) return out
  }
}

/**
 * Checks everything the client saw, over all rounds so far, against the store; and the converse
 * for every token the store holds for `agents`: its audit event committed with it.
 */
async function checkStore(store: PersonServerStore, seen: Seen, apIssuer: string, agents: readonly Agent[]): Promise<void> {
  const audit = await allAudit(store)
  const issuedEvents = new Map<string, AuditEvent>()
  const approvedEvents = new Set<string>()
  for (const e of audit) {
    const jti = e.detail?.['jti']
    if ((e.type === 'auth_token.issued' || e.type === 'person_token.issued') && typeof jti === 'string') issuedEvents.set(jti, e)
    const pending = e.detail?.['pending']
    if (e.type === 'request.approved' && typeof pending === 'string') approvedEvents.add(pending)
  }
  for (const t of seen.tokens) {
    const where = `${t.kind} token ${t.jti} seen in round ${t.round}`
    expect(await store.getIssued(t.jti), where).toMatchObject({ jti: t.jti, kind: t.kind, personId: PERSON.id, agentIss: apIssuer, agentSub: t.agent.id })
    expect(issuedEvents.get(t.jti), `audit event of ${where}`).toMatchObject({ type: `${t.kind}_token.issued`, personId: PERSON.id, agentSub: t.agent.id })
  }
  for (const a of seen.approvals) {
    const where = `approval of ${a.pendingId} confirmed in round ${a.round}`
    const rec = await store.getPending(a.pendingId)
    expect(rec?.state, where).toBe('granted')
    expect(rec?.personId, where).toBe(PERSON.id)
    expect(approvedEvents.has(a.pendingId), `request.approved audit event of ${where}`).toBe(true)
    expect(await store.getBinding(apIssuer, a.agent.id), `binding of ${where}`).toMatchObject({ personId: PERSON.id })
    const grants = await store.activeGrants(PERSON.id, apIssuer, a.agent.id, a.resource, Date.now())
    expect(grants.map((g) => g.scope), `remembered grant of ${where}`).toContain('')
    // The token minted with the approval (whether or not the agent got to poll it) has its record.
    const minted = (rec?.result?.body as { person_token?: string } | undefined)?.person_token
    expect(minted, where).toBeTypeOf('string')
    const jti = decodeJwt(minted!).payload['jti'] as string
    expect(await store.getIssued(jti), `issued record of the token minted by ${where}`).toMatchObject({ kind: 'person', personId: PERSON.id, agentSub: a.agent.id, resource: a.resource })
    expect(issuedEvents.has(jti), `audit event of the token minted by ${where}`).toBe(true)
  }
  // Tokens the client never saw (answers cut by the kill) still come with their audit event.
  for (const a of agents) {
    for (const t of await store.liveIssued({ agentIss: apIssuer, agentSub: a.id, now: Date.now() })) {
      expect(issuedEvents.get(t.jti), `audit event of issued record ${t.jti} (${t.kind}, ${a.id})`).toMatchObject({ type: `${t.kind}_token.issued`, agentSub: a.id })
    }
  }
}

/** The whole loop against one backend. */
async function crashLoop(backend: Backend): Promise<Seen> {
  const dir = mkdtempSync(join(tmpdir(), `aauth-crash-${backend.name}-`))
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const ap = await loopIssuer('aauth-agent.json', { name: 'Crash-test Agents' })
  const res = await loopIssuer('aauth-resource.json', { name: 'Booking API' })
  const tokenAgents = await Promise.all(Array.from({ length: TOKEN_WORKERS }, (_, i) => makeAgent(ap, { local: `token-${i}`, ps: issuer })))
  const consentAgents = await Promise.all(Array.from({ length: CONSENT_WORKERS }, (_, i) => makeAgent(ap, { local: `consent-${i}`, ps: issuer })))
  const at = Date.now()
  const seed: Seed = {
    person: PERSON,
    agents: [...tokenAgents, ...consentAgents].map((a) => ({
      binding: { agentIss: ap.issuer, agentSub: a.id, personId: PERSON.id, createdAt: at },
      grants: ['', 'read'].map((scope) => ({ id: `${a.id}-${scope === '' ? 'person' : scope}`, personId: PERSON.id, agentIss: ap.issuer, agentSub: a.id, resource: res.issuer, scope, createdAt: at })),
    })),
  }
  const seedFile = join(dir, 'seed.json')
  writeFileSync(seedFile, JSON.stringify(seed))
  const args = ['--port', String(port), '--key', join(dir, 'ps-key.json'), '--seed', seedFile, ...backend.args]
  const seen: Seen = { tokens: [], approvals: [] }
  /** Every agent that talked to the PS. */
  const agents: Agent[] = [...tokenAgents, ...consentAgents]
  let newAgents = 0
  let ps: PsProcess | undefined
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      ps = await startPs(args)
      expect(ps.issuer).toBe(issuer)
      let killed = false
      const failures: unknown[] = []
      /** Runs a worker loop; a failure before the kill is a test failure, after it the end of the loop. */
      const worker = async (body: () => Promise<void>): Promise<void> => {
        try {
          while (!killed) await body()
        } catch (e) {
          if (!killed) failures.push(e)
        }
      }
      const browser = new Browser(issuer)
      await browser.login(PERSON.username, PERSON.password)

      const tokenWorker = async (agent: Agent): Promise<void> => {
        const r = await agentFetch(`${issuer}/person`, agent, { resource: res.issuer })
        if (r.res.status !== 200) throw new Error(`POST /person answered ${r.res.status}: ${r.body}`)
        const pt = (JSON.parse(r.body) as { person_token: string }).person_token
        const c = decodeJwt(pt).payload
        seen.tokens.push({ jti: c['jti'] as string, kind: 'person', agent, round })
        await worker(async () => {
          const rt = await createResourceToken({ key: res.key, issuer: res.issuer, aud: issuer, ps: issuer, sub: c['sub'] as string, presentedJti: c['jti'] as string, agentJkt: agent.jkt, scope: 'read', ...LOOPBACK })
          const t = await agentFetch(`${issuer}/token`, agent, { resource_token: rt, presented_token: pt })
          if (t.res.status !== 200) throw new Error(`POST /token answered ${t.res.status}: ${t.body}`)
          seen.tokens.push({ jti: decodeJwt((JSON.parse(t.body) as { auth_token: string }).auth_token).payload['jti'] as string, kind: 'auth', agent, round })
        })
      }

      const consentWorker = async (w: number): Promise<void> => {
        let n = 0
        await worker(async () => {
          // Alternately: a bound agent and a resource it never used; a new agent and a known resource.
          const firstContact = n++ % 2 === 1
          const agent = firstContact ? await makeAgent(ap, { local: `new-${backend.name}-${++newAgents}`, ps: issuer }) : consentAgents[w]!
          if (firstContact) agents.push(agent)
          const resource = firstContact ? res.issuer : (await loopIssuer('aauth-resource.json', { name: `Resource ${n}` })).issuer
          const r = await agentFetch(`${issuer}/person`, agent, { resource, capabilities: ['interaction'] })
          if (r.res.status !== 202) throw new Error(`POST /person for a new resource answered ${r.res.status}: ${r.body}`)
          const code = /code="([^"]+)"/.exec(r.res.headers.get('aauth-requirement') ?? '')?.[1]
          const pendingUrl = r.res.headers.get('location') ?? ''
          const pendingId = pendingUrl.slice(`${issuer}/pending/`.length)
          if (code === undefined || !pendingUrl.startsWith(`${issuer}/pending/`)) throw new Error(`202 without an interaction code or pending URL: ${r.res.headers.get('aauth-requirement')} ${pendingUrl}`)
          // Alice enters the code, reads the page, approves.
          const opened = await browser.request(`/interaction?code=${encodeURIComponent(code)}`)
          const page = opened.res.headers.get('location')
          if (opened.res.status !== 303 || page !== `/interaction/${pendingId}`) throw new Error(`the code led to ${opened.res.status} ${page}, not /interaction/${pendingId}`)
          const shown = await browser.request(page)
          if (shown.res.status !== 200) throw new Error(`the consent page answered ${shown.res.status}`)
          const decided = await browser.request(page, { csrf: Browser.csrfOf(shown.body), action: 'approve', remember: 'always' })
          if (decided.res.status !== 303 || decided.res.headers.get('location') !== page) throw new Error(`Approve answered ${decided.res.status} ${decided.res.headers.get('location')}`)
          seen.approvals.push({ pendingId, agent, resource, round, firstContact })
          // The agent collects its person token.
          const polled = await agentFetch(pendingUrl, agent)
          if (polled.res.status !== 200) throw new Error(`the pending URL answered ${polled.res.status} after the approval: ${polled.body}`)
          seen.tokens.push({ jti: decodeJwt((JSON.parse(polled.body) as { person_token: string }).person_token).payload['jti'] as string, kind: 'person', agent, round })
        })
      }

      const before = { tokens: seen.tokens.length, approvals: seen.approvals.length }
      const burst = [...tokenAgents.map((a) => tokenWorker(a).catch((e: unknown) => void (killed || failures.push(e)))), ...Array.from({ length: CONSENT_WORKERS }, (_, w) => consentWorker(w))]
      const delay = KILL_AFTER_MS[0] + Math.random() * (KILL_AFTER_MS[1] - KILL_AFTER_MS[0])
      await sleep(delay)
      killed = true
      const inFlightAtKill = inFlight
      ps.child.kill('SIGKILL')
      await ps.exited
      await Promise.all(burst)
      if (failures.length > 0) {
        throw new AggregateError(failures, `${backend.name} round ${round}: ${failures.length} request(s) failed before the kill; PS stderr:\n${ps.stderr()}`)
      }
      const tokens = seen.tokens.length - before.tokens
      const approvals = seen.approvals.length - before.approvals
      console.info(`${backend.name} round ${round}: SIGKILL after ${Math.round(delay)} ms with ${inFlightAtKill} requests in flight; ${tokens} tokens and ${approvals} approvals seen this round, ${seen.tokens.length} and ${seen.approvals.length} in all`)

      // Killed in the middle of the work, not between bursts.
      expect(inFlightAtKill, 'requests in flight at the kill').toBeGreaterThan(0)
      const store = await backend.open()
      try {
        await checkStore(store, seen, ap.issuer, agents)
      } finally {
        await backend.release(store)
      }
    }
  } finally {
    // A round that failed before its kill leaves the process running.
    if (ps !== undefined && ps.child.exitCode === null && ps.child.signalCode === null) {
      ps.child.kill('SIGKILL')
      await ps.exited
    }
    await backend.dispose()
    rmSync(dir, { recursive: true, force: true })
  }
  // The loop proved something only if the client saw work succeed.
  expect(seen.tokens.filter((t) => t.kind === 'auth').length).toBeGreaterThan(0)
  expect(seen.approvals.length).toBeGreaterThan(0)
  expect(seen.approvals.some((a) => a.firstContact)).toBe(true)
  return seen
}

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'aauth-crash-db-'))
  const filename = join(dir, 'ps.sqlite')
  return {
    name: 'sqlite',
    args: ['--sqlite', filename],
    open: () => SqliteStore.open({ filename }),
    release: (store) => store.close(),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

async function postgresBackend(): Promise<Backend> {
  const url = await postgresUrl()
  const schema = freshSchema()
  // The schema exists (migrated) before the PS first starts; this store checks between rounds.
  const store = await PostgresStore.connect({ connectionString: url, schema, max: 2 })
  return {
    name: 'postgres',
    args: ['--postgres', url, '--schema', schema],
    open: async () => store,
    release: async () => undefined,
    dispose: () => store.close(),
  }
}

afterAll(async () => {
  await closeAll()
  await stopPostgres()
})

describe('Person Server crash safety (SIGKILL during consents and issuance, restart, check the store)', () => {
  it(`SQLite file (WAL): ${ROUNDS} rounds`, async () => {
    await crashLoop(sqliteBackend())
  }, 120_000)

  it(`PostgreSQL: ${ROUNDS} rounds`, async () => {
    await crashLoop(await postgresBackend())
  }, 120_000)
})
