/**
 * `aauth person-server serve` (alias `aauth ps serve`): runs a Person Server
 * ({@link createPersonServer}) on Node's HTTP server, over a SQLite file or PostgreSQL, optionally
 * in organisation mode (`--org FILE`).
 *
 * @module
 */

import { readFileSync } from 'node:fs'
import type { PersonServerStore } from '../../person-server/store/types.js'
import type { OrganizationPolicy } from '../../person-server/policy.js'
import { createPersonServer, type PersonServer } from '../../person-server/server.js'
import { parseAgentIdentifier, type IdentifierOptions } from '../../protocol/identifiers.js'
import { DWK } from '../../protocol/metadata.js'
import { expectPositionals, integerFlag, parseArgs, UsageError } from '../args.js'
import { writeJson, type CommandRun, type Context } from '../output.js'
import { DEFAULT_DB, messageOf, openStore, STORE_FLAGS, storeChoice, storeInfo, storeLabel } from '../person-store.js'
import { close, fetchServer, listen, listeningLine, plan, serveUntilStopped, signingKeys } from '../server.js'
import { loopbackOptions, serverUrlFlag } from '../shared.js'

const COMMAND = 'person-server serve'

const FLAGS = {
  port: { type: 'string' },
  domain: { type: 'string' },
  issuer: { type: 'string' },
  host: { type: 'string' },
  'key-file': { type: 'string' },
  ...STORE_FLAGS,
  name: { type: 'string' },
  org: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
} as const

/** An RFC 6749 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/**
 * Reads and checks the organisation policy of `--org FILE`:
 * `{ "agents": { "aauth:…": { "scopes": [...] } }, "consent": "preauthorised" | "ask" }`.
 *
 * @throws {UsageError} naming the file and what is wrong where.
 */
export function readOrganization(file: string, idOpts: IdentifierOptions): OrganizationPolicy {
  const bad = (message: string) => new UsageError(`--org ${file}: ${message}`, COMMAND)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw bad((e as { code?: unknown }).code === 'ENOENT' ? 'no such file' : `cannot read it: ${messageOf(e)}`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw bad(`not JSON: ${messageOf(e)}`)
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  if (!isObject(doc)) throw bad('the policy is a JSON object {"agents": {...}, "consent": "preauthorised" | "ask"}')
  for (const k of Object.keys(doc)) if (k !== 'agents' && k !== 'consent') throw bad(`unknown member ${JSON.stringify(k)} (the policy has "agents" and "consent")`)
  const consent = doc['consent']
  if (consent !== undefined && consent !== 'preauthorised' && consent !== 'ask') throw bad(`"consent" is "preauthorised" or "ask", not ${JSON.stringify(consent)}`)
  const agents = doc['agents']
  if (!isObject(agents)) throw bad('"agents" is required: an object {"aauth:name@domain": {"scopes": ["scope", ...]}, ...}')
  const out: Record<string, { scopes: string[] }> = {}
  for (const [id, entry] of Object.entries(agents)) {
    const at = `agents[${JSON.stringify(id)}]`
    try {
      parseAgentIdentifier(id, idOpts)
    } catch (e) {
      throw bad(`${at}: not an agent identifier (aauth:name@domain): ${messageOf(e)}`)
    }
    if (!isObject(entry)) throw bad(`${at} is an object {"scopes": [...]}`)
    for (const k of Object.keys(entry)) if (k !== 'scopes') throw bad(`${at}: unknown member ${JSON.stringify(k)} (an agent has "scopes")`)
    const scopes = entry['scopes']
    if (!Array.isArray(scopes)) throw bad(`${at}.scopes is required: an array of scope values`)
    for (const s of scopes) {
      if (typeof s !== 'string' || !SCOPE_TOKEN.test(s)) throw bad(`${at}.scopes: ${JSON.stringify(s)} is not a scope value (one word of printable ASCII, no spaces, quotes or backslashes)`)
    }
    out[id] = { scopes: [...new Set(scopes as string[])] }
  }
  return { agents: out, ...(consent === undefined ? {} : { consent }) }
}

/** The `persons:` line: how many can log in, and how to add one when none can. */
async function personsLine(store: PersonServerStore): Promise<{ count: number; line: string }> {
  const count = (await store.listPersons()).length
  return { count, line: count === 0 ? '0 — nobody can log in yet; add a person: aauth person-server add-person --username NAME (same --db/--postgres)' : String(count) }
}

/**
 * `aauth person-server serve --port P [...]`: serves until SIGINT/SIGTERM, then closes the server
 * and the store and exits 0.
 */
export const personServerServe: CommandRun = async (argv, ctx: Context) => {
  const { flags, positionals } = parseArgs(argv, FLAGS, COMMAND)
  expectPositionals(positionals, [], COMMAND)
  const idOpts = loopbackOptions(ctx)
  const port = integerFlag(flags.port, '--port', COMMAND, { min: 0, max: 65535 })
  if (port === undefined) throw new UsageError('--port P is required (0 picks a free port)', COMMAND)
  const issuerFlag = flags.issuer === undefined ? undefined : serverUrlFlag(flags.issuer, '--issuer', COMMAND, idOpts)
  const where = plan(COMMAND, 'person server', idOpts.allowInsecureLoopback, { domain: flags.domain, issuer: issuerFlag }, flags.host, port)
  const choice = storeChoice(flags, ctx, COMMAND, { defaultDb: DEFAULT_DB })
  const organization = flags.org === undefined ? undefined : readOrganization(flags.org, idOpts)
  if (flags.name !== undefined && flags.name.trim() === '') throw new UsageError('--name needs a display name', COMMAND)

  const { store, created } = await openStore(choice, (e) => ctx.stderr.write(`aauth: warning: postgres: ${messageOf(e)}\n`))
  let ps: PersonServer | undefined
  const server = fetchServer(() => (ps === undefined ? undefined : (req) => ps!.app.fetch(req)), flags.verbose, ctx)
  let actualPort: number
  let persons: { count: number; line: string }
  let keyInfo: Awaited<ReturnType<typeof signingKeys>>['info']
  let keyLine: string
  try {
    const signing = await signingKeys(flags['key-file'], ctx, 'the person and auth tokens it issues')
    keyInfo = signing.info
    keyLine = signing.line
    persons = await personsLine(store)
    actualPort = await listen(server, port, where.bindHost)
    try {
      ps = await createPersonServer({
        issuer: where.issuer(actualPort),
        keys: signing.keys,
        store,
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(organization === undefined ? {} : { organization }),
        ...idOpts,
      })
    } catch (e) {
      await close(server)
      throw e instanceof TypeError ? new UsageError(e.message, COMMAND) : e
    }
  } catch (e) {
    await store.close()
    throw e
  }

  const issuer = ps.metadata.issuer
  const info = {
    issuer,
    metadata: `${issuer}/.well-known/${DWK.person}`,
    jwks: ps.metadata.jwks_uri,
    consent: `${issuer}/interaction`,
    login: `${issuer}/login`,
    dashboard: `${issuer}/account`,
    host: where.bindHost,
    port: actualPort,
    key: keyInfo,
    store: storeInfo(choice, created),
    persons: persons.count,
    organization: organization === undefined ? null : { agents: Object.keys(organization.agents).length, consent: organization.consent ?? 'preauthorised' },
  }
  if (flags.json) writeJson(ctx.stdout, info)
  else {
    const lines = [
      'person server running',
      `  issuer:    ${issuer}`,
      `  metadata:  ${info.metadata}`,
      `  consent:   ${info.consent}  (people open it with the code an agent shows them)`,
      `  dashboard: ${info.dashboard}  (log in at ${info.login})`,
      `  listening: ${listeningLine(where, actualPort, issuer)}`,
      `  store:     ${storeLabel(choice)}${created && choice.kind === 'sqlite' && choice.file !== ':memory:' ? ' (created)' : ''}`,
      `  persons:   ${persons.line}`,
      `  key:       ${keyLine}`,
    ]
    if (info.organization !== null) {
      const mode = info.organization.consent === 'ask' ? 'people still consent' : 'pre-authorised, people are not asked'
      lines.push(`  org:       ${flags.org} — ${info.organization.agents} agent${info.organization.agents === 1 ? '' : 's'}, ${mode}; others are refused`)
    }
    lines.push('Ctrl-C to stop.')
    ctx.stdout.write(lines.join('\n') + '\n')
  }
  const code = await serveUntilStopped(server, ctx, 'person server')
  await store.close()
  return code
}
