/**
 * Reads a Fetch body up to a size limit, stopping (and cancelling the stream) as soon as it is
 * larger: a body without `Content-Length` is never buffered whole.
 *
 * @module
 */

/** What {@link readBoundedBody} found. */
export type BoundedBody = { readonly ok: true; readonly bytes: Uint8Array } | { readonly ok: false; readonly reason: 'too_large' | 'unreadable' }

/** Reads `body` (a request's or a response's) if it is at most `max` bytes. */
export async function readBoundedBody(body: ReadableStream<Uint8Array> | null, max: number): Promise<BoundedBody> {
  const reader = body?.getReader()
  if (reader === undefined) return { ok: true, bytes: new Uint8Array(0) }
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > max) {
        await reader.cancel().catch(() => undefined)
        return { ok: false, reason: 'too_large' }
      }
      chunks.push(value)
    }
  } catch {
    return { ok: false, reason: 'unreadable' }
  }
  if (chunks.length === 1) return { ok: true, bytes: chunks[0]! }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return { ok: true, bytes }
}
