/**
 * Base64url (RFC 4648 §5, no padding) and base64 helpers. Private to the library.
 *
 * @module
 */

const hasBuffer = typeof (globalThis as { Buffer?: unknown }).Buffer === 'function'
const NodeBuffer = (globalThis as unknown as { Buffer: typeof import('node:buffer').Buffer }).Buffer

const B64URL = /^[A-Za-z0-9_-]*$/
const B64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Encodes bytes as unpadded base64url. */
export function encodeBase64url(bytes: Uint8Array): string {
  if (hasBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
  return encodeBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * Decodes unpadded base64url. Returns `undefined` for any character outside the alphabet or an
 * impossible length, so callers turn malformed input into their own typed error.
 */
export function decodeBase64url(input: string): Uint8Array | undefined {
  if (!B64URL.test(input) || input.length % 4 === 1) return undefined
  if (hasBuffer) return new Uint8Array(NodeBuffer.from(input, 'base64url'))
  const b64 = input.replace(/-/g, '+').replace(/_/g, '/')
  return decodeBase64(b64 + '='.repeat((4 - (b64.length % 4)) % 4))
}

/** Encodes bytes as padded base64 (RFC 8941 Byte Sequences use this alphabet). */
export function encodeBase64(bytes: Uint8Array): string {
  if (hasBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s)
}

/** Decodes padded base64; `undefined` when malformed. */
export function decodeBase64(input: string): Uint8Array | undefined {
  if (!B64.test(input) || input.length % 4 !== 0) return undefined
  if (hasBuffer) return new Uint8Array(NodeBuffer.from(input, 'base64'))
  const s = atob(input)
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** UTF-8 encode. */
export function utf8(input: string): Uint8Array {
  // Same bytes as TextEncoder (lone surrogates become U+FFFD in both), about 2× faster on Node.
  if (hasBuffer) return NodeBuffer.from(input, 'utf8')
  return encoder.encode(input)
}

/** Strict UTF-8 decode; `undefined` on invalid sequences. */
export function fromUtf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}
