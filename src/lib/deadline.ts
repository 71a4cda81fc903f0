/**
 * An abort signal that fires at a deadline or when a parent signal aborts, whichever is first.
 * Built from a timer and an AbortController (a combination that reliably fires on Node 20), with
 * the timer unreferenced so a pending deadline never keeps a process alive. Private to the
 * library.
 *
 * @module
 */

const MAX_TIMER_MS = 2 ** 31 - 1

/** A deadline signal and the function that releases its timer and listener. */
export interface Deadline {
  readonly signal: AbortSignal
  /** Stops the timer; call when the guarded work is over. */
  readonly clear: () => void
}

/**
 * @param ms - milliseconds until the signal aborts with `reason()`.
 * @param parent - aborts the signal with its own reason when it aborts first.
 */
export function deadlineSignal(ms: number, reason: () => unknown, parent?: AbortSignal | null): Deadline {
  const controller = new AbortController()
  const onParent = (): void => controller.abort(parent!.reason)
  if (parent?.aborted === true) controller.abort(parent.reason)
  else parent?.addEventListener('abort', onParent, { once: true })
  // Timers cannot wait longer than 2^31-1 ms (Node fires them at once); such a deadline is left to
  // the caller's own checks.
  const timer = ms >= MAX_TIMER_MS ? undefined : setTimeout(() => controller.abort(reason()), Math.max(0, ms))
  ;(timer as { unref?: () => void } | undefined)?.unref?.()
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer)
      parent?.removeEventListener('abort', onParent)
    },
  }
}
