/**
 * `aauth person-server` (alias `aauth ps`) as an operator runs it: real child processes
 * (`node --import tsx src/cli/main.ts`) with AAUTH_DEV_LOOPBACK=1 on temporary SQLite files, and
 * one round on a real PostgreSQL (test/helpers/postgres.ts).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PostgresStore, SqliteStore, verifyPassword, type AuditEvent, type PersonServerStore } from '../../src/person-server/index.js'
import { freshSchema, postgresUrl, stopPostgres } from '../helpers/postgres.js'
import { expectUsageErrors, runCli, startCli, type UsageCase } from './cli-process.js'

interface ServeInfo {
  issuer: string
  metadata: string
  jwks: string
  consent: string
  login: string
  dashboard: string
  host: string
  port: number
  key: { kid: string; ephemeral?: true; file?: string; created?: boolean }
  store: { kind: string; file?: string; url?: string; schema?: string; created?: boolean }
  persons: number
  organization: { agents: number; consent: string } | null
}

type AuditLine = AuditEvent & { time: string; username?: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** No Postgres URL from the developer's environment may leak into these runs. */
const NO_PG = { AAUTH_PS_POSTGRES_URL: undefined }

/** Per test: each spawns several CLI processes, and CI machines are small and busy. */
const SLOW = 180_000

let dir: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aauth-ps-cli-'))
})

afterAll(async () => {
  await stopPostgres()
  rmSync(dir, { recursive: true, force: true })
})

/**
 * {@link expectUsageErrors} a few at a time: every case is a Node process compiling TypeScript,
 * and a score of them at once on a small, busy machine outlasts the per-process time limit.
 */
async function expectUsageErrorsInTurn(cases: readonly UsageCase[], atOnce = 4): Promise<void> {
  for (let i = 0; i < cases.length; i += atOnce) await expectUsageErrors(cases.slice(i, i + atOnce))
}

const addPerson = (args: string[], input: string, env: Record<string, string | undefined> = NO_PG) => runCli(['person-server', 'add-person', ...args], { input, env })

const jsonLines = (stdout: string): AuditLine[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditLine)

/** The cookies a response sets, as a `Cookie` header. */
const cookiesOf = (res: Response): string =>
  res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ')

describe('aauth person-server add-person / serve', { timeout: SLOW }, () => {
  it('adds a person with the password from stdin, serves the PS on its store, logs the person in, stops on SIGTERM', async () => {
    const db = join(dir, 'serve.sqlite')
    const keyFile = join(dir, 'ps.key')
    const added = await addPerson(['--username', 'alice', '--display-name', 'Alice Liddell', '--email', 'alice@example.com', '--db', db], 'correct horse battery staple\n')
    expect(added.code).toBe(0)
    expect(added.stdout).toMatch(new RegExp(`^${UUID.source.slice(1, -1)}\n$`))
    expect(added.stderr).toBe(`added alice (Alice Liddell) to sqlite ${db}; person id:\n`)
    const id = added.stdout.trim()

    const store = await SqliteStore.open({ filename: db })
    const alice = await store.getPersonByUsername('alice')
    await store.close()
    expect(alice).toMatchObject({ id, username: 'alice', displayName: 'Alice Liddell', email: 'alice@example.com' })
    expect(alice!.permissions).toBeUndefined()
    expect(await verifyPassword('correct horse battery staple', alice!.passwordHash)).toBe(true)

    const server = startCli(['ps', 'serve', '--port', '0', '--json', '--db', db, '--key-file', keyFile, '--name', 'Test PS'], NO_PG)
    try {
      const info = JSON.parse((await server.waitFor(/^\{.*\}$/m))[0]) as ServeInfo
      const issuer = `http://127.0.0.1:${info.port}`
      expect(info).toMatchObject({
        issuer,
        metadata: `${issuer}/.well-known/aauth-person.json`,
        jwks: `${issuer}/.well-known/jwks.json`,
        consent: `${issuer}/interaction`,
        login: `${issuer}/login`,
        dashboard: `${issuer}/account`,
        host: '127.0.0.1',
        key: { file: keyFile, created: true },
        store: { kind: 'sqlite', file: db, created: false },
        persons: 1,
        organization: null,
      })
      expect(statSync(keyFile).mode & 0o777).toBe(0o600)

      const metadata = (await (await fetch(info.metadata)).json()) as Record<string, unknown>
      expect(metadata).toMatchObject({ issuer, jwks_uri: info.jwks, person_token_endpoint: `${issuer}/person`, auth_token_endpoint: `${issuer}/token`, name: 'Test PS' })
      const jwks = (await (await fetch(info.jwks)).json()) as { keys: { kid: string }[] }
      expect(jwks.keys.map((k) => k.kid)).toEqual([info.key.kid])

      const page = await fetch(info.login)
      expect(page.status).toBe(200)
      expect(page.headers.get('content-type')).toMatch(/^text\/html/)
      const html = await page.text()
      expect(html).toContain('name="password"')
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!
      // The password added from stdin logs Alice in (cookies without Secure: loopback development).
      const login = await fetch(info.login, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookiesOf(page) },
        body: new URLSearchParams({ csrf, username: 'alice', password: 'correct horse battery staple' }),
      })
      expect(login.status).toBe(303)
      const account = await fetch(info.dashboard, { headers: { cookie: cookiesOf(login) } })
      expect(account.status).toBe(200)
      expect(await account.text()).toContain('Alice Liddell')
      // The consent page needs a session too.
      const consent = await fetch(info.consent, { redirect: 'manual' })
      expect(consent.status).toBe(303)
      expect(consent.headers.get('location')).toMatch(/^\/login\?next=/)
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0)
    }
    expect(server.stderr()).toBe('aauth: SIGTERM: person server stopped\n')
  })

  it('prints a readable startup: issuer, metadata, consent page, dashboard, store, persons, key, organisation', async () => {
    const db = join(dir, 'readable.sqlite')
    const org = join(dir, 'org.json')
    writeFileSync(org, JSON.stringify({ agents: { 'aauth:assistant@agents.example': { scopes: ['calendar.read', 'mail.send'] } }, consent: 'ask' }))
    const server = startCli(['person-server', 'serve', '--port', '0', '--db', db, '--org', org], NO_PG)
    try {
      const [, issuer] = await server.waitFor(/issuer:\s+(\S+)/)
      await server.waitFor(/Ctrl-C to stop/)
      const out = server.stdout()
      expect(out).toMatch(/^person server running\n/)
      expect(out).toContain(`  metadata:  ${issuer}/.well-known/aauth-person.json\n`)
      expect(out).toContain(`  consent:   ${issuer}/interaction  (`)
      expect(out).toContain(`  dashboard: ${issuer}/account  (log in at ${issuer}/login)\n`)
      expect(out).toContain(`  store:     sqlite ${db} (created)\n`)
      expect(out).toMatch(/ {2}persons: {3}0 — nobody can log in yet; add a person: aauth person-server add-person/)
      expect(out).toMatch(/ {2}key: {7}ephemeral, kid \S+\n/)
      expect(out).toContain(`  org:       ${org} — 1 agent, people still consent; others are refused\n`)
      expect(server.stderr()).toMatch(/^aauth: warning: ephemeral signing key/)
      expect((await fetch(`${issuer}/login`)).status).toBe(200)
    } finally {
      expect(await server.stop('SIGINT')).toBe(0)
    }
    expect(server.stderr()).toMatch(/aauth: SIGINT: person server stopped\n$/)
  })

  it('stores --permissions and --tenant, and prints the person as JSON with --json (never the hash)', async () => {
    const db = join(dir, 'org.sqlite')
    const r = await addPerson(['--username', 'bob', '--permissions', 'calendar.read, mail.send,calendar.read', '--tenant', 'acme', '--json', '--db', db], 'hunter2 but longer\r\n')
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout) as Record<string, unknown>
    expect(out).toEqual({ id: expect.stringMatching(UUID), username: 'bob', displayName: 'bob', permissions: ['calendar.read', 'mail.send'], tenant: 'acme', createdAt: expect.any(Number), store: `sqlite ${db}` })
    const store = await SqliteStore.open({ filename: db })
    const bob = await store.getPersonByUsername('bob')
    await store.close()
    expect(bob).toMatchObject({ id: out['id'], permissions: ['calendar.read', 'mail.send'], tenant: 'acme' })
    // The carriage return of a CRLF line is not part of the password.
    expect(await verifyPassword('hunter2 but longer', bob!.passwordHash)).toBe(true)
  })

  it('refuses a username already taken, an empty password and more than one line, and adds nothing', async () => {
    const db = join(dir, 'refuse.sqlite')
    expect((await addPerson(['--username', 'carol', '--db', db], 'first password\n')).code).toBe(0)
    const again = await addPerson(['--username', 'carol', '--db', db], 'second password\n')
    expect(again).toMatchObject({ code: 2, stdout: '' })
    expect(again.stderr).toBe(`aauth: a person with username "carol" already exists in sqlite ${db}; choose another --username\n  see: aauth person-server add-person --help\n`)
    const refused = await Promise.all([
      addPerson(['--username', 'dave', '--db', db], ''),
      addPerson(['--username', 'dave', '--db', db], '\n'),
      addPerson(['--username', 'dave', '--db', db], 'one\ntwo\n'),
      addPerson(['--username', 'dave', '--db', db, '--json'], ''),
    ])
    for (const r of refused) expect(r.code).toBe(2)
    expect(refused[0]!.stderr).toMatch(/^aauth: no password: give it on stdin, one line .*an empty password is refused\n/)
    expect(refused[1]!.stderr).toMatch(/^aauth: no password/)
    expect(refused[2]!.stderr).toMatch(/^aauth: stdin has more than one line: give the password alone, on one line\n/)
    expect(JSON.parse(refused[3]!.stdout)).toMatchObject({ error: { code: 'usage', message: expect.stringMatching(/^no password/) } })
    const store = await SqliteStore.open({ filename: db })
    const persons = await store.listPersons()
    await store.close()
    expect(persons.map((p) => p.username)).toEqual(['carol'])
    expect(await verifyPassword('first password', persons[0]!.passwordHash)).toBe(true)
  })
})

describe('aauth ps audit', { timeout: SLOW }, () => {
  const db = () => join(dir, 'audit.sqlite')
  const T = (iso: string) => Date.parse(iso)
  const BOT = 'aauth:travel-bot@agents.example'
  const SUB = 'aauth:travel-bot+s1@agents.example'
  const OTHER = 'aauth:other@agents.example'
  const MISSION = 'x'.repeat(20) + 'A'.repeat(23)
  let alice: string
  let bob: string

  beforeAll(async () => {
    const store = await SqliteStore.open({ filename: db() })
    alice = 'p-alice'
    bob = 'p-bob'
    await store.commit({
      persons: [
        { id: alice, username: 'alice', displayName: 'Alice', createdAt: T('2025-03-01T00:00:00Z') },
        { id: bob, username: 'bob', displayName: 'Bob', createdAt: T('2025-03-01T00:00:00Z') },
      ],
    })
    await store.commit({
      audit: [
        { at: T('2025-03-01T10:00:00Z'), type: 'agent.bound', personId: alice, agentSub: BOT, decision: 'grant' },
        { at: T('2025-03-01T11:00:00.250Z'), type: 'auth_token.issued', personId: alice, agentSub: BOT, resource: 'https://api.example', scope: 'flights.read', missionS256: MISSION, decision: 'grant', reason: 'remembered grant' },
        { at: T('2025-03-02T09:00:00Z'), type: 'request.denied', personId: bob, agentSub: SUB, parentAgent: BOT, resource: 'https://shop.example', scope: 'pay', decision: 'deny', reason: 'Bob said no' },
        { at: T('2025-03-03T12:00:00Z'), type: 'person_token.issued', personId: alice, agentSub: OTHER, resource: 'https://api.example', scope: '', decision: 'grant', detail: { jti: 'j1' } },
      ],
    })
    await store.close()
  })

  const audit = async (...args: string[]) => {
    const r = await runCli(['ps', 'audit', '--db', db(), ...args], { env: NO_PG })
    expect(r.code, r.stderr).toBe(0)
    return r
  }
  const types = async (...args: string[]) => jsonLines((await audit('--json', ...args)).stdout).map((e) => e.type)

  it('--json prints one event per line, oldest first, with its ISO time and the username', async () => {
    const r = await audit('--json')
    expect(r.stderr).toBe('')
    const events = jsonLines(r.stdout)
    expect(events.map((e) => e.type)).toEqual(['agent.bound', 'auth_token.issued', 'request.denied', 'person_token.issued'])
    expect(events[1]).toEqual({
      time: '2025-03-01T11:00:00.250Z',
      seq: expect.any(Number),
      at: T('2025-03-01T11:00:00.250Z'),
      type: 'auth_token.issued',
      personId: alice,
      username: 'alice',
      agentSub: BOT,
      resource: 'https://api.example',
      scope: 'flights.read',
      missionS256: MISSION,
      decision: 'grant',
      reason: 'remembered grant',
    })
    expect(events[2]).toMatchObject({ time: '2025-03-02T09:00:00Z', username: 'bob', agentSub: SUB, parentAgent: BOT })
    expect(events[3]).toMatchObject({ scope: '', detail: { jti: 'j1' } })
  })

  it('filters by person (username), agent, mission and time', async () => {
    expect(await types('--person', 'alice')).toEqual(['agent.bound', 'auth_token.issued', 'person_token.issued'])
    expect(await types('--person', 'bob')).toEqual(['request.denied'])
    // An agent's events include its sub-agents' (the chain).
    expect(await types('--agent', BOT)).toEqual(['agent.bound', 'auth_token.issued', 'request.denied'])
    expect(await types('--agent', SUB)).toEqual(['request.denied'])
    expect(await types('--mission', MISSION)).toEqual(['auth_token.issued'])
    expect(await types('--from', '2025-03-01T10:30Z')).toEqual(['auth_token.issued', 'request.denied', 'person_token.issued'])
    // A date alone in --to includes that day; a time is exclusive.
    expect(await types('--from', '2025-03-02', '--to', '2025-03-02')).toEqual(['request.denied'])
    expect(await types('--to', '2025-03-02T09:00:00Z')).toEqual(['agent.bound', 'auth_token.issued'])
    expect(await types('--from', '2025-03-01T12:00:00.100+01:00', '--to', '2025-03-03')).toEqual(['auth_token.issued', 'request.denied', 'person_token.issued'])
    expect(await types('--person', 'alice', '--agent', BOT, '--from', '2025-03-01T10:00:01Z')).toEqual(['auth_token.issued'])
    const none = await audit('--person', 'bob', '--agent', OTHER)
    expect(none).toMatchObject({ stdout: '', stderr: 'no audit events match\n' })
  })

  it('--limit shows the first N events and says on stderr where the next ones start', async () => {
    const r = await audit('--json', '--limit', '2')
    expect(jsonLines(r.stdout).map((e) => e.type)).toEqual(['agent.bound', 'auth_token.issued'])
    expect(r.stderr).toBe('aauth: showing the first 2 matching events (oldest first); more follow — next: --from 2025-03-02T09:00:00Z\n')
    expect((await audit('--json', '--limit', '4')).stderr).toBe('')
  })

  it('prints a readable table: time, type, person, agent (with parent), resource, scope, mission, decision, reason', async () => {
    const { stdout } = await audit()
    const lines = stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(5)
    expect(lines[0]).toMatch(/^TIME +TYPE +PERSON +AGENT +RESOURCE +SCOPE +MISSION +DECISION +REASON$/)
    expect(lines[1]).toMatch(new RegExp(`^2025-03-01T10:00:00Z +agent\\.bound +alice +${BOT.replace(/[.+]/g, '\\$&')} +- +- +- +grant +-$`))
    expect(lines[2]).toMatch(/^2025-03-01T11:00:00Z +auth_token\.issued +alice +\S+ +https:\/\/api\.example +flights\.read +xxxxxxxx… +grant +remembered grant$/)
    expect(lines[3]).toContain(`${SUB} (parent ${BOT})`)
    expect(lines[3]).toMatch(/ +deny +Bob said no$/)
    expect(lines[4]).toContain('(act as person)')
    // Columns line up: every row starts its TYPE where the header does.
    const typeAt = lines[0]!.indexOf('TYPE')
    for (const l of lines.slice(1)) expect(l[typeAt - 1]).toBe(' ')
    expect(lines.slice(1).every((l) => l.slice(typeAt, typeAt + 1) !== ' ')).toBe(true)
  })

  it('refuses an unknown person, a store that does not exist and malformed filters', async () => {
    const missing = join(dir, 'nope.sqlite')
    await expectUsageErrorsInTurn([
      [['ps', 'audit', '--db', db(), '--person', 'zoe'], new RegExp(`^aauth: no person with username "zoe" in sqlite ${db()}\n`), NO_PG],
      [['ps', 'audit', '--db', missing], /^aauth: --db .*nope\.sqlite does not exist \(aauth person-server add-person and serve create it\)\n/, NO_PG],
      [['ps', 'audit'], /^aauth: --db FILE or --postgres URL is required \(or set AAUTH_PS_POSTGRES_URL\)\n {2}see: aauth person-server audit --help\n$/, NO_PG],
      [['ps', 'audit', '--db', db(), '--from', 'yesterday'], /^aauth: --from "yesterday" is not an ISO 8601 date or time/, NO_PG],
      [['ps', 'audit', '--db', db(), '--to', '2025-02-30'], /^aauth: --to "2025-02-30" is not an ISO 8601 date or time/, NO_PG],
      [['ps', 'audit', '--db', db(), '--from', '2025-03-02', '--to', '2025-03-01'], /^aauth: --from 2025-03-02 is not before --to 2025-03-01/, NO_PG],
      [['ps', 'audit', '--db', db(), '--limit', '0'], /^aauth: --limit must be a whole number from 1 to 1000/, NO_PG],
      [['ps', 'audit', '--db', db(), '--agent', 'travel-bot'], /^aauth: --agent "travel-bot" is not an agent identifier \(aauth:name@domain\)/, NO_PG],
      [['ps', 'audit', '--db', db(), '--mission', 'short'], /^aauth: --mission "short" is not a mission's s256/, NO_PG],
      [['ps', 'audit', '--db', db(), 'extra'], /^aauth: unexpected argument "extra"/, NO_PG],
    ])
  })
})

describe('usage errors', { timeout: SLOW }, () => {
  it('exit 2 with a readable message; help texts; the ps alias', async () => {
    const noDir = join(dir, 'no-such-dir', 'ps.sqlite')
    const notJson = join(dir, 'not.json')
    writeFileSync(notJson, '{"agents": ')
    const badAgent = join(dir, 'bad-agent.json')
    writeFileSync(badAgent, JSON.stringify({ agents: { 'travel-bot': { scopes: ['a'] } } }))
    const badConsent = join(dir, 'bad-consent.json')
    writeFileSync(badConsent, JSON.stringify({ agents: {}, consent: 'always' }))
    const badScopes = join(dir, 'bad-scopes.json')
    writeFileSync(badScopes, JSON.stringify({ agents: { 'aauth:bot@agents.example': { scopes: 'a b' } } }))
    const typo = join(dir, 'typo.json')
    writeFileSync(typo, JSON.stringify({ agent: {} }))
    const noDev = { ...NO_PG, AAUTH_DEV_LOOPBACK: undefined }
    const db = join(dir, 'usage.sqlite')
    await expectUsageErrorsInTurn([
      [['person-server', 'serve'], /^aauth: --port P is required/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db], /^aauth: --domain D is required/, noDev],
      [['ps', 'serve', '--port', '0', '--db', db, '--postgres', 'postgres://127.0.0.1/x'], /^aauth: --db and --postgres both name the store: give one\n/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', noDir], /^aauth: --db .*ps\.sqlite: the directory .*no-such-dir does not exist\n/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db, '--schema', 'x'], /^aauth: --schema goes with --postgres URL/, NO_PG],
      [['ps', 'serve', '--port', '0', '--postgres', '/var/run/pg'], /^aauth: --postgres must be a postgres:\/\/user:password@host:port\/database URL/, NO_PG],
      [['ps', 'serve', '--port', '0', '--postgres', 'postgres://127.0.0.1/x', '--schema', '1x'], /^aauth: --schema "1x": a schema name is letters/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db, '--org', join(dir, 'missing.json')], /^aauth: --org .*missing\.json: no such file\n/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db, '--org', notJson], /^aauth: --org .*not\.json: not JSON: /, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db, '--org', badAgent], /^aauth: --org .*: agents\["travel-bot"\]: not an agent identifier \(aauth:name@domain\)/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db, '--org', badConsent], /^aauth: --org .*: "consent" is "preauthorised" or "ask", not "always"\n/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db, '--org', badScopes], /^aauth: --org .*: agents\["aauth:bot@agents\.example"\]\.scopes is required: an array of scope values\n/, NO_PG],
      [['ps', 'serve', '--port', '0', '--db', db, '--org', typo], /^aauth: --org .*: unknown member "agent" \(the policy has "agents" and "consent"\)\n/, NO_PG],
      [['ps', 'add-person', '--db', db], /^aauth: --username U is required/, NO_PG],
      [['ps', 'add-person', '--username', 'eve'], /^aauth: --db FILE or --postgres URL is required/, NO_PG],
      [['ps', 'add-person', '--username', 'eve', '--db', db, '--password', 'x'], /^aauth: unknown option --password\n/, NO_PG],
      [['ps', 'add-person', '--username', ' eve', '--db', db], /^aauth: --username " eve" has spaces around it/, NO_PG],
      [['ps', 'add-person', '--username', 'eve', '--db', db, '--permissions', 'a,"b"'], /^aauth: --permissions: "\\"b\\"" is not a scope value/, NO_PG],
      [['ps', 'add-person', '--username', 'eve', '--db', db, '--email', 'eve'], /^aauth: --email "eve" is not an e-mail address/, NO_PG],
      [['ps'], /^aauth: aauth ps needs a subcommand: serve, add-person, audit\n/, NO_PG],
      [['person-server', 'audits'], /^aauth: unknown command "aauth person-server audits"; person-server has: serve, add-person, audit\n/, NO_PG],
    ])
    const [serveHelp, auditHelp, addHelp, mainHelp] = await Promise.all([runCli(['ps', 'serve', '--help']), runCli(['help', 'ps', 'audit']), runCli(['person-server', 'add-person', '-h']), runCli(['help'])])
    expect(serveHelp.stdout).toMatch(/^Usage: aauth person-server serve --port P/)
    expect(serveHelp.stdout).toContain('--org FILE')
    expect(auditHelp.stdout).toMatch(/^Usage: aauth person-server audit/)
    expect(addHelp.stdout).toMatch(/^Usage: aauth person-server add-person --username U/)
    expect(mainHelp.stdout).toContain('aauth person-server serve --port P')
    expect(mainHelp.stdout).toContain('AAUTH_PS_POSTGRES_URL')
  })
})

describe('on PostgreSQL', { timeout: SLOW }, () => {
  let url: string
  let schema: string

  beforeAll(async () => {
    url = await postgresUrl()
    schema = freshSchema()
  }, 60_000)

  it('add-person and audit with --postgres (and AAUTH_PS_POSTGRES_URL); serve on the same database', async () => {
    const added = await addPerson(['--username', 'carol', '--permissions', 'files.read', '--postgres', url, '--schema', schema], 'pg password\n')
    expect(added.code, added.stderr).toBe(0)
    const id = added.stdout.trim()
    expect(id).toMatch(UUID)
    expect(added.stderr).toMatch(new RegExp(`^added carol \\(carol\\) to postgres postgres://\\S+ \\(schema ${schema}\\); person id:\n$`))
    // The URL from the environment; a taken username is refused there too.
    const dup = await addPerson(['--username', 'carol', '--schema', schema], 'other\n', { AAUTH_PS_POSTGRES_URL: url })
    expect(dup.code).toBe(2)
    expect(dup.stderr).toMatch(/^aauth: a person with username "carol" already exists in postgres /)

    const store: PersonServerStore = await PostgresStore.connect({ connectionString: url, schema })
    try {
      const carol = await store.getPersonByUsername('carol')
      expect(carol).toMatchObject({ id, permissions: ['files.read'] })
      expect(await verifyPassword('pg password', carol!.passwordHash)).toBe(true)
      await store.commit({
        audit: [
          { at: Date.parse('2025-04-01T08:00:00Z'), type: 'auth_token.issued', personId: id, agentSub: 'aauth:filer@agents.example', resource: 'https://files.example', scope: 'files.read', decision: 'grant' },
          { at: Date.parse('2025-04-02T08:00:00Z'), type: 'grant.revoked', personId: id, agentSub: 'aauth:filer@agents.example', resource: 'https://files.example', scope: 'files.read', decision: 'revoke', reason: 'by the person' },
        ],
      })
    } finally {
      await store.close()
    }

    const r = await runCli(['ps', 'audit', '--postgres', url, '--schema', schema, '--person', 'carol', '--from', '2025-04-02', '--json'], { env: NO_PG })
    expect(r.code, r.stderr).toBe(0)
    expect(jsonLines(r.stdout)).toEqual([expect.objectContaining({ type: 'grant.revoked', username: 'carol', personId: id, reason: 'by the person', time: '2025-04-02T08:00:00Z' })])
    const table = await runCli(['person-server', 'audit', '--schema', schema], { env: { AAUTH_PS_POSTGRES_URL: url } })
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout.trimEnd().split('\n')).toHaveLength(3)

    const server = startCli(['ps', 'serve', '--port', '0', '--json', '--postgres', url, '--schema', schema], NO_PG)
    try {
      const info = JSON.parse((await server.waitFor(/^\{.*\}$/m, 20_000))[0]) as ServeInfo
      expect(info.store).toEqual({ kind: 'postgres', url: expect.stringMatching(/^postgres:\/\//), schema })
      expect(info.persons).toBe(1)
      expect((await fetch(info.login)).status).toBe(200)
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('says clearly when PostgreSQL cannot be reached', async () => {
    const r = await addPerson(['--username', 'x', '--postgres', 'postgres://postgres@127.0.0.1:9/none'], 'pw\n')
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^aauth: store_unavailable: cannot use PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:9\/none: .*ECONNREFUSED/)
  })
})
