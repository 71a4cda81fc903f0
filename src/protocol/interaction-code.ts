/**
 * Interaction codes (main draft §Interaction Code Format; CHECKLIST CODE-01..03): Crockford
 * base32, at least 8 symbols (40 bits) from a CSPRNG, optional grouping hyphens; compared after
 * stripping hyphens, upper-casing and folding `I`/`L` → `1`, `O` → `0`.
 *
 * Exported from `'aauth-kit'`.
 *
 * @module
 */

/** The Crockford base32 alphabet. */
export const CROCKFORD_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/**
 * Generates a code of `symbols` symbols (minimum 8), grouped by hyphens every `group` symbols.
 *
 * @throws {RangeError} for fewer than 8 symbols.
 * @example
 * ```ts
 * generateInteractionCode() // e.g. 'K7QD-2M9X'
 * ```
 */
export function generateInteractionCode(symbols = 8, group = 4): string {
  if (!Number.isInteger(symbols) || symbols < 8) throw new RangeError('an interaction code has at least 8 symbols (40 bits)')
  const bytes = crypto.getRandomValues(new Uint8Array(symbols))
  let out = ''
  for (let i = 0; i < symbols; i++) {
    if (group > 0 && i > 0 && i % group === 0) out += '-'
    out += CROCKFORD_ALPHABET[bytes[i]! & 31] // 256 is a multiple of 32: no modulo bias
  }
  return out
}

/**
 * Normalizes user input for comparison; `undefined` when a character outside the alphabet (after
 * folding) remains.
 */
export function normalizeInteractionCode(input: string): string | undefined {
  // ASCII only: toUpperCase would fold e.g. dotless ı into I.
  if (/[^\x20-\x7e]/.test(input)) return undefined
  const folded = input.replace(/-/g, '').toUpperCase().replace(/[IL]/g, '1').replace(/O/g, '0')
  if (folded.length === 0) return undefined
  for (const ch of folded) if (!CROCKFORD_ALPHABET.includes(ch)) return undefined
  return folded
}

/** Compares a presented code with the issued one, in constant time over the normalized form. */
export function interactionCodesMatch(presented: string, issued: string): boolean {
  const a = normalizeInteractionCode(presented)
  const b = normalizeInteractionCode(issued)
  if (a === undefined || b === undefined || a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}
