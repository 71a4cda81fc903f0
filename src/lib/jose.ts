/**
 * `jose`, loaded on first use: a process that only signs requests with a token it already holds
 * (the `aauth fetch --token` cold start) never pays for loading it. Private to the library.
 *
 * @module
 */

let jose: Promise<typeof import('jose')> | undefined

/** The `jose` module (one shared import). */
export function loadJose(): Promise<typeof import('jose')> {
  jose ??= import('jose')
  return jose
}
