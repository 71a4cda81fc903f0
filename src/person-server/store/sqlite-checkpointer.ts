/**
 * WAL checkpoints for {@link SqliteStore} in a worker thread. SQLite's automatic checkpoint runs
 * inside whichever commit crosses the threshold, and with `synchronous=NORMAL` a checkpoint is the
 * one moment that `fsync`s: a request that happens to commit then waits milliseconds. Here the
 * store's own connection never checkpoints (`wal_autocheckpoint=0`); a worker with its own
 * connection to the same file runs a `PASSIVE` checkpoint (it never blocks writers) on an interval,
 * off the event loop. Durability is unchanged: commits are in the WAL before they resolve, whoever
 * copies them into the database file later.
 *
 * @module
 */

import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** The worker's code (CommonJS, evaluated; it loads better-sqlite3 from the path it is given). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.filename)
db.pragma('busy_timeout = 5000')
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)') } catch (e) { parentPort.postMessage(String(e && e.message || e)) }
}, workerData.intervalMs)
parentPort.on('message', (m) => {
  if (m !== 'close') return
  clearInterval(timer)
  try { db.pragma('wal_checkpoint(PASSIVE)') } catch {}
  db.close()
  process.exit(0)
})
`

/** A running checkpointer. */
export interface Checkpointer {
  /** Stops the worker after one last checkpoint. */
  close(): Promise<void>
}

/**
 * Starts checkpointing `filename` every `intervalMs` in a worker thread.
 *
 * @param onError - a checkpoint that failed (the next one retries).
 */
export function startCheckpointer(filename: string, intervalMs: number, onError: (message: string) => void): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { filename, intervalMs, driver } })
  worker.unref()
  worker.on('message', (m: unknown) => onError(String(m)))
  worker.on('error', (e) => onError(e.message))
  let exited = false
  worker.once('exit', () => {
    exited = true
  })
  return {
    async close() {
      if (exited) return
      const exit = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
      worker.postMessage('close')
      // A checkpoint in progress is safe to interrupt (the WAL stays authoritative): do not wait long.
      const timer = setTimeout(() => void worker.terminate(), 1000)
      await exit
      clearTimeout(timer)
    },
  }
}
