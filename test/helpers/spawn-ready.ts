/**
 * Waits until a spawned test server answers `probe` (polled, one probe at a time), or fails on
 * its exit, a spawn error or the deadline. Shared by the Redis and PostgreSQL test helpers.
 */
import type { ChildProcess } from 'node:child_process'

export interface ReadyOptions {
  readonly probe: () => Promise<boolean>
  readonly intervalMs: number
  readonly timeoutMs: number
  /** The error for a spawn failure (e.g. ENOENT: not installed). */
  readonly spawnError?: (e: NodeJS.ErrnoException) => Error
  readonly exited: (code: number | null, signal: NodeJS.Signals | null) => Error
  readonly timedOut: () => Error
}

export function untilReady(child: ChildProcess, o: ReadyOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false
    let probing = false
    const finish = (e?: Error): void => {
      if (done) return
      done = true
      clearInterval(timer)
      clearTimeout(deadline)
      if (e === undefined) resolve()
      else reject(e)
    }
    child.once('error', (e: NodeJS.ErrnoException) => finish(o.spawnError?.(e) ?? e))
    child.once('exit', (code, signal) => finish(o.exited(code, signal)))
    const deadline = setTimeout(() => finish(o.timedOut()), o.timeoutMs)
    const timer = setInterval(() => {
      if (probing) return
      probing = true
      void o.probe().then((ok) => {
        probing = false
        if (ok) finish()
      })
    }, o.intervalMs)
  })
}
