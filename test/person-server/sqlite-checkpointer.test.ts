/**
 * SqliteStore's WAL checkpoints run in a worker thread: commits never checkpoint inline, yet the
 * WAL is copied into the database file within about a second, and close() stops the worker.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../src/person-server/index.js'

const dir = mkdtempSync(join(tmpdir(), 'aauth-ckpt-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('SqliteStore WAL checkpoints', () => {
  it('the worker copies committed pages into the database file; the data survives close and reopen', async () => {
    const file = join(dir, 'ps.sqlite')
    const store = await SqliteStore.open({ filename: file })
    const before = statSync(file).size
    const at = Date.now()
    await store.commit({ audit: Array.from({ length: 2000 }, (_, i) => ({ at: at + i, type: 'test.event', detail: { i, pad: 'x'.repeat(200) } })) })
    for (let i = 0; i < 40 && statSync(file).size <= before; i++) await new Promise((r) => setTimeout(r, 100))
    expect(statSync(file).size).toBeGreaterThan(before)
    // The store's own connection does not checkpoint inside commits.
    const raw = new Database(file, { readonly: true })
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal')
    raw.close()
    await store.close()
    const again = await SqliteStore.open({ filename: file, checkpoint: 'inline' })
    expect(await again.queryAudit({ limit: 1000 })).toHaveLength(1000)
    await again.close()
  })
})
