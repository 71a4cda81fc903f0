/**
 * The Person Server store: its interface and records ({@link PersonServerStore}), and its two
 * backends, {@link SqliteStore} (embedded, one file) and {@link PostgresStore} (several
 * instances sharing one database). Importing this module does not load `pg`: only
 * {@link PostgresStore.connect} does.
 *
 * @module
 */

export * from './types.js'
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js'
export { PostgresStore, type PostgresPool, type PostgresPoolClient, type PostgresStoreOptions } from './postgres.js'
export { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from './migrations.js'
