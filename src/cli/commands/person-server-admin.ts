/**
 * The Person Server's operator commands, on its store directly (no server needs to run):
 * `aauth person-server add-person` (a person who logs in with a password read from stdin) and
 * `aauth person-server audit` (the audit trail, filtered). `aauth ps …` is the same.
 *
 * @module
 */

import { randomUUID } from 'node:crypto'
import type { AuditEvent, AuditQuery, PersonRecord, PersonServerStore } from '../../person-server/store/types.js'
import { hashPassword, MAX_PASSWORD_LENGTH } from '../../person-server/web/password.js'
import { parseAgentIdentifier } from '../../protocol/identifiers.js'
import { expectPositionals, integerFlag, parseArgs, UsageError } from '../args.js'
import { terminalSafe, writeJson, type CommandRun, type Context } from '../output.js'
import { isUniqueViolation, messageOf, openStore, STORE_FLAGS, storeChoice, storeLabel, type StoreChoice } from '../person-store.js'
import { readStdin } from '../shared.js'

/** As the login form takes it. */
const MAX_USERNAME_LENGTH = 200
/** An RFC 6749 scope-token. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/
// C0 and C1 controls, DEL, bidi overrides: never part of a name.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

/** Runs `fn` with the store open, and closes it. */
async function withStore<T>(choice: StoreChoice, fn: (store: PersonServerStore) => Promise<T>): Promise<T> {
  const { store } = await openStore(choice)
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

function duplicate(username: string, choice: StoreChoice, command: string): UsageError {
  return new UsageError(`a person with username ${JSON.stringify(username)} already exists in ${storeLabel(choice)}; choose another --username`, command)
}

// ---------------------------------------------------------------------------------------------
// add-person

const ADD_FLAGS = {
  username: { type: 'string' },
  'display-name': { type: 'string' },
  email: { type: 'string' },
  permissions: { type: 'string' },
  tenant: { type: 'string' },
  ...STORE_FLAGS,
  json: { type: 'boolean' },
} as const

/** Reads one hidden line from a terminal (raw mode, no echo); Ctrl-C interrupts. */
function promptHidden(ctx: Context, prompt: string): Promise<string> {
  const stdin = ctx.stdin
  return new Promise((resolve, reject) => {
    let value = ''
    ctx.stderr.write(prompt)
    const finish = (error?: Error): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      ctx.stderr.write('\n')
      if (error === undefined) resolve(value)
      else reject(error)
    }
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish()
        if (ch === '\u0003') return finish(Object.assign(new Error('interrupted'), { name: 'AbortError' }))
        if (ch === '\u0004') {
          if (value === '') return finish()
          continue
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('')
        else if (!CONTROL.test(ch)) value += ch
      }
    }
    stdin.setRawMode(true)
    stdin.on('data', onData)
    stdin.resume()
  })
}

/**
 * The new person's password: one line of stdin (a trailing newline is dropped), or, on a
 * terminal, typed twice without echo. Never from a flag (it would show in `ps` and the shell's
 * history).
 *
 * @throws {UsageError} for an empty password, more than one line, or a mismatch on a terminal.
 */
async function readPassword(ctx: Context, username: string, command: string): Promise<string> {
  let password: string
  if (ctx.stdin.isTTY === true) {
    password = await promptHidden(ctx, `password for ${username}: `)
    if (password !== '' && (await promptHidden(ctx, 'again: ')) !== password) throw new UsageError('the two passwords differ; nothing was added', command)
  } else {
    let text: string
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(await readStdin(ctx))
    } catch {
      throw new UsageError('the password on stdin is not UTF-8 text', command)
    }
    const lines = text.split(/\r?\n/)
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
    if (lines.length > 1) throw new UsageError('stdin has more than one line: give the password alone, on one line', command)
    password = lines[0] ?? ''
  }
  if (password === '') throw new UsageError(`no password: give it on stdin, one line (e.g. printf '%s\\n' "$PASSWORD" | aauth person-server add-person --username ${username} …); an empty password is refused`, command)
  if (password.length > MAX_PASSWORD_LENGTH) throw new UsageError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`, command)
  return password
}

/** `--permissions a,b` as scope values. */
function permissionsFlag(value: string, command: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const s of list) {
    if (!SCOPE_TOKEN.test(s)) throw new UsageError(`--permissions: ${JSON.stringify(s)} is not a scope value (one word of printable ASCII, no quotes or backslashes; separate values with commas)`, command)
  }
  return [...new Set(list)]
}

/** A name-like flag: not empty, no surrounding spaces, no control characters, at most `max`. */
function textFlag(value: string, flag: string, command: string, max: number): string {
  if (value.trim() === '') throw new UsageError(`${flag} needs a value`, command)
  if (value !== value.trim()) throw new UsageError(`${flag} ${JSON.stringify(value)} has spaces around it`, command)
  if (CONTROL.test(value)) throw new UsageError(`${flag} contains control characters`, command)
  if (value.length > max) throw new UsageError(`${flag} is longer than ${max} characters`, command)
  return value.normalize('NFC')
}

/**
 * `aauth person-server add-person --username U [...] (--db FILE | --postgres URL)`: reads the
 * password from stdin, hashes it (scrypt) and adds the person; prints the new person's id.
 */
export const addPerson: CommandRun = async (argv, ctx) => {
  const command = 'person-server add-person'
  const { flags, positionals } = parseArgs(argv, ADD_FLAGS, command)
  expectPositionals(positionals, [], command)
  if (flags.username === undefined) throw new UsageError('--username U is required (the login name)', command)
  const username = textFlag(flags.username, '--username', command, MAX_USERNAME_LENGTH)
  const displayName = flags['display-name'] === undefined ? username : textFlag(flags['display-name'], '--display-name', command, 200)
  let email: string | undefined
  if (flags.email !== undefined) {
    email = textFlag(flags.email, '--email', command, 320)
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new UsageError(`--email ${JSON.stringify(flags.email)} is not an e-mail address`, command)
  }
  const permissions = flags.permissions === undefined ? undefined : permissionsFlag(flags.permissions, command)
  const tenant = flags.tenant === undefined ? undefined : textFlag(flags.tenant, '--tenant', command, 200)
  const choice = storeChoice(flags, ctx, command)

  const person = await withStore(choice, async (store) => {
    // Before asking for the password, so that a taken name costs nobody any typing.
    if ((await store.getPersonByUsername(username)) !== undefined) throw duplicate(username, choice, command)
    const password = await readPassword(ctx, username, command)
    const record: PersonRecord = {
      id: randomUUID(),
      username,
      displayName,
      passwordHash: await hashPassword(password),
      createdAt: ctx.now(),
      ...(email === undefined ? {} : { email }),
      ...(permissions === undefined ? {} : { permissions }),
      ...(tenant === undefined ? {} : { tenant }),
    }
    try {
      await store.commit({ persons: [record] })
    } catch (e) {
      // Added by someone else since the check above.
      if (isUniqueViolation(e)) throw duplicate(username, choice, command)
      throw e
    }
    return record
  })

  const { passwordHash: _hash, ...shown } = person
  if (flags.json) writeJson(ctx.stdout, { ...shown, store: storeLabel(choice) })
  else {
    ctx.stderr.write(`added ${username} (${displayName}) to ${storeLabel(choice)}; person id:\n`)
    ctx.stdout.write(`${person.id}\n`)
  }
  return 0
}

// ---------------------------------------------------------------------------------------------
// audit

const AUDIT_FLAGS = {
  ...STORE_FLAGS,
  person: { type: 'string' },
  agent: { type: 'string' },
  mission: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
} as const

const DAY_MS = 86_400_000
const TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:\d{2})?)?$/

/**
 * `--from` / `--to`: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS[.mmm]][Z|±HH:MM]`, UTC when no zone is
 * given. A date alone in `--to` includes that whole day.
 */
function timeFlag(value: string | undefined, flag: '--from' | '--to', command: string): number | undefined {
  if (value === undefined) return undefined
  const m = TIME.exec(value)
  const t = m === null ? NaN : Date.parse(m[2] === undefined ? `${m[1]}T00:00:00Z` : `${m[1]}T${m[2]}${m[3] ?? 'Z'}`)
  // Date.parse rolls 2025-02-30 over to March: compare the day back.
  const dayOk = m !== null && !Number.isNaN(t) && (m[3] !== undefined || new Date(t).toISOString().slice(0, 10) === m[1])
  if (!dayOk) throw new UsageError(`${flag} ${JSON.stringify(value)} is not an ISO 8601 date or time (2025-01-31, 2025-01-31T09:30Z, 2025-01-31T09:30:00+02:00)`, command)
  return flag === '--to' && m![2] === undefined ? t + DAY_MS : t
}

/** ISO 8601, to the second unless the event has milliseconds. */
function isoMs(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z')
}

/** A table cell: terminal-safe, `-` when empty. */
function cell(v: string | undefined): string {
  return v === undefined || v === '' ? '-' : terminalSafe(v)
}

/** The agent column: the agent and, for a sub-agent, its parent. */
function agentCell(e: AuditEvent): string {
  if (e.agentSub === undefined) return e.parentAgent === undefined ? '-' : `(parent ${cell(e.parentAgent)})`
  return e.parentAgent === undefined ? cell(e.agentSub) : `${cell(e.agentSub)} (parent ${cell(e.parentAgent)})`
}

/** The events as a table; the last column (reason) is not padded. */
function auditTable(events: readonly AuditEvent[], usernames: ReadonlyMap<string, string>): string {
  const header = ['TIME', 'TYPE', 'PERSON', 'AGENT', 'RESOURCE', 'SCOPE', 'MISSION', 'DECISION', 'REASON']
  const rows = events.map((e) => [
    isoMs(e.at).replace(/\.\d{3}Z$/, 'Z'),
    cell(e.type),
    e.personId === undefined ? '-' : cell(usernames.get(e.personId) ?? e.personId),
    agentCell(e),
    cell(e.resource),
    e.scope === '' ? '(act as person)' : cell(e.scope),
    e.missionS256 === undefined ? '-' : `${cell(e.missionS256.slice(0, 8))}…`,
    cell(e.decision),
    cell(e.reason),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: readonly string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

/**
 * `aauth person-server audit (--db FILE | --postgres URL) [filters] [--limit N] [--json]`: the
 * audit trail, oldest first, as a table or JSON lines.
 */
export const personServerAudit: CommandRun = async (argv, ctx) => {
  const command = 'person-server audit'
  const { flags, positionals } = parseArgs(argv, AUDIT_FLAGS, command)
  expectPositionals(positionals, [], command)
  if (flags.agent !== undefined) {
    try {
      parseAgentIdentifier(flags.agent, { allowInsecureLoopback: true })
    } catch (e) {
      throw new UsageError(`--agent ${JSON.stringify(flags.agent)} is not an agent identifier (aauth:name@domain): ${messageOf(e)}`, command)
    }
  }
  if (flags.mission !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(flags.mission)) {
    throw new UsageError(`--mission ${JSON.stringify(flags.mission)} is not a mission's s256 (43 base64url characters)`, command)
  }
  if (flags.person !== undefined && flags.person.trim() === '') throw new UsageError('--person needs a username', command)
  const from = timeFlag(flags.from, '--from', command)
  const to = timeFlag(flags.to, '--to', command)
  if (from !== undefined && to !== undefined && from >= to) throw new UsageError(`--from ${flags.from} is not before --to ${flags.to}`, command)
  const limit = integerFlag(flags.limit, '--limit', command, { min: 1, max: 1000 }) ?? 100
  const choice = storeChoice(flags, ctx, command, { mustExist: true })

  const { events, more, usernames } = await withStore(choice, async (store) => {
    let personId: string | undefined
    if (flags.person !== undefined) {
      personId = (await store.getPersonByUsername(flags.person))?.id
      if (personId === undefined) throw new UsageError(`no person with username ${JSON.stringify(flags.person)} in ${storeLabel(choice)}`, command)
    }
    const query: AuditQuery = {
      limit,
      ...(personId === undefined ? {} : { personId }),
      ...(flags.agent === undefined ? {} : { agentSub: flags.agent }),
      ...(flags.mission === undefined ? {} : { missionS256: flags.mission }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
    }
    const events = await store.queryAudit(query)
    const last = events[events.length - 1]
    const more = events.length === limit && last?.seq !== undefined ? (await store.queryAudit({ ...query, afterSeq: last.seq, limit: 1 }))[0] : undefined
    const usernames = new Map((await store.listPersons()).map((p) => [p.id, p.username]))
    return { events, more, usernames }
  })

  if (flags.json) {
    for (const e of events) {
      const username = e.personId === undefined ? undefined : usernames.get(e.personId)
      writeJson(ctx.stdout, { time: isoMs(e.at), ...e, ...(username === undefined ? {} : { username }) })
    }
  } else if (events.length === 0) ctx.stderr.write('no audit events match\n')
  else ctx.stdout.write(auditTable(events, usernames))
  if (more !== undefined) {
    ctx.stderr.write(`aauth: showing the first ${limit} matching event${limit === 1 ? '' : 's'} (oldest first); more follow — next: --from ${isoMs(more.at)}${flags.limit === undefined ? ' (or a higher --limit, at most 1000)' : ''}\n`)
  }
  return 0
}
