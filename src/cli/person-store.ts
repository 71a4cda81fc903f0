/**
 * What the `aauth person-server` commands share: which store the flags name (`--db FILE`, a
 * SQLite file, or `--postgres URL` / `AAUTH_PS_POSTGRES_URL`, with `--schema`), opening it with
 * readable errors, and how it is shown. The store modules are loaded only here, when a command
 * opens a store (`pg` only for PostgreSQL).
 *
 * @module
 */

import { existsSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { PersonServerStore } from '../person-server/store/types.js'
import { UsageError } from './args.js'
import { CliError, type Context } from './output.js'
import { flagOrEnv } from './shared.js'

/** The environment variable that stands for `--postgres URL`. */
export const POSTGRES_ENV = 'AAUTH_PS_POSTGRES_URL'

/** The default `--db` of `aauth person-server serve`. */
export const DEFAULT_DB = './aauth-ps.sqlite'

/** The store flags every `person-server` command takes. */
export const STORE_FLAGS = {
  db: { type: 'string' },
  postgres: { type: 'string' },
  schema: { type: 'string' },
} as const

/** The store the flags name. */
export type StoreChoice =
  | { readonly kind: 'sqlite'; readonly file: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema?: string }

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * Reads `--db` / `--postgres` (or `AAUTH_PS_POSTGRES_URL`) / `--schema`. An explicit `--db` wins
 * over the environment variable.
 *
 * @param defaultDb - the SQLite file used when neither is given; without it one is required.
 * @param mustExist - `--db` must name an existing file (reading commands: never create an empty
 *   database by mistake); otherwise only its directory must exist.
 * @throws {UsageError}
 */
export function storeChoice(
  flags: { db?: string | undefined; postgres?: string | undefined; schema?: string | undefined },
  ctx: Context,
  command: string,
  options: { defaultDb?: string; mustExist?: boolean } = {},
): StoreChoice {
  if (flags.db !== undefined && flags.postgres !== undefined) throw new UsageError('--db and --postgres both name the store: give one', command)
  const url = flags.db === undefined ? flagOrEnv(flags.postgres, ctx, POSTGRES_ENV) : undefined
  if (url !== undefined) {
    const shown = flags.postgres === undefined ? POSTGRES_ENV : '--postgres'
    if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError(`${shown} must be a postgres://user:password@host:port/database URL`, command)
    try {
      new URL(url)
    } catch {
      throw new UsageError(`${shown} is not a valid URL: ${redactPostgresUrl(url)}`, command)
    }
    if (flags.schema !== undefined && !SCHEMA_NAME.test(flags.schema)) {
      throw new UsageError(`--schema ${JSON.stringify(flags.schema)}: a schema name is letters, digits and _ (at most 63), not starting with a digit`, command)
    }
    return { kind: 'postgres', url, ...(flags.schema === undefined ? {} : { schema: flags.schema }) }
  }
  if (flags.schema !== undefined) throw new UsageError('--schema goes with --postgres URL (the tables of a SQLite --db have no schema)', command)
  const file = flags.db ?? options.defaultDb
  if (file === undefined) throw new UsageError(`--db FILE or --postgres URL is required (or set ${POSTGRES_ENV})`, command)
  if (file === '') throw new UsageError('--db needs a file name', command)
  if (file === ':memory:') return { kind: 'sqlite', file }
  const dir = dirname(resolve(file))
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--db ${file}: the directory ${dir} does not exist`, command)
  if (existsSync(file) && statSync(file).isDirectory()) throw new UsageError(`--db ${file} is a directory; give the database file`, command)
  if (options.mustExist === true && !existsSync(file)) throw new UsageError(`--db ${file} does not exist (aauth person-server add-person and serve create it)`, command)
  return { kind: 'sqlite', file }
}

/** A PostgreSQL URL with its password replaced by `***`, for output. */
export function redactPostgresUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    // Not a URL: show the scheme and the part after any `@` only.
    const at = url.lastIndexOf('@')
    return at < 0 ? url : `postgres://***@${url.slice(at + 1)}`
  }
}

/** The store as output shows it: `sqlite /abs/path` or `postgres postgres://u:***@h/db (schema s)`. */
export function storeLabel(choice: StoreChoice): string {
  if (choice.kind === 'sqlite') return `sqlite ${choice.file === ':memory:' ? ':memory: (nothing is kept)' : resolve(choice.file)}`
  return `postgres ${redactPostgresUrl(choice.url)}${choice.schema === undefined ? '' : ` (schema ${choice.schema})`}`
}

/** The store as `--json` output shows it. */
export function storeInfo(choice: StoreChoice, created: boolean): Record<string, unknown> {
  if (choice.kind === 'sqlite') return { kind: 'sqlite', file: choice.file === ':memory:' ? ':memory:' : resolve(choice.file), created }
  return { kind: 'postgres', url: redactPostgresUrl(choice.url), ...(choice.schema === undefined ? {} : { schema: choice.schema }) }
}

/** The message of an error, looking into an `AggregateError` (Node's failed connect to every address). */
export function messageOf(e: unknown): string {
  if (e instanceof AggregateError && e.message === '' && e.errors.length > 0) return messageOf(e.errors[0])
  if (e instanceof Error) return e.message === '' ? ((e as { code?: unknown }).code as string | undefined) ?? e.name : e.message
  return String(e)
}

/**
 * Opens the store (creating the SQLite file or the PostgreSQL tables when missing) and brings its
 * schema up to date.
 *
 * @param onIdleError - PostgreSQL: told of errors of idle connections (a long-running server).
 * @throws {CliError} `store_error` (SQLite) or `store_unavailable` (PostgreSQL), with the cause.
 */
export async function openStore(choice: StoreChoice, onIdleError?: (e: unknown) => void): Promise<{ store: PersonServerStore; created: boolean }> {
  if (choice.kind === 'sqlite') {
    const created = choice.file === ':memory:' || !existsSync(choice.file)
    const { SqliteStore } = await import('../person-server/store/sqlite.js')
    try {
      return { store: await SqliteStore.open({ filename: choice.file }), created }
    } catch (e) {
      throw new CliError('store_error', `cannot open the SQLite database ${resolve(choice.file)}: ${messageOf(e)}`, { cause: e })
    }
  }
  const { PostgresStore } = await import('../person-server/store/postgres.js')
  try {
    const store = await PostgresStore.connect({
      connectionString: choice.url,
      ...(choice.schema === undefined ? {} : { schema: choice.schema }),
      ...(onIdleError === undefined ? {} : { onError: onIdleError }),
    })
    return { store, created: false }
  } catch (e) {
    throw new CliError('store_unavailable', `cannot use PostgreSQL at ${redactPostgresUrl(choice.url)}: ${messageOf(e)}`, { cause: e })
  }
}

/** Whether `e` is a unique-constraint violation of SQLite or PostgreSQL. */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505'
}
