/**
 * The shared R3 helpers (draft-hardt-aauth-r3 §Content Addressing, §Flow step 3): content
 * digests, JSON equality for parameter binding, digest parameters, and the parsers of untrusted
 * R3 values — fuzzed (they read what agents, resources and tokens send).
 */
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isParameterDigest, jsonEqual, listsOperation, parametersMatch, r3Digest, readR3Operations, sameOperation, serializeR3 } from '../../src/protocol/index.js'
import { numRuns } from '../helpers/property.js'

const sha = (s: string | Uint8Array) => createHash('sha256').update(s).digest('base64url')

/** A JSON object's members in another order, recursively. */
function shuffled(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shuffled)
  if (typeof v !== 'object' || v === null) return v
  return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, shuffled(x)]))
}

describe('R3 content addressing', () => {
  it('R3-03 / R3-04 r3_s256 is the unpadded base64url SHA-256 of the serialised bytes', async () => {
    const doc = { vocabulary: 'urn:aauth:vocabulary:openapi', operations: [{ operationId: 'createBooking' }], display: { summary: 'Book' } }
    const { bytes, s256 } = await serializeR3(doc)
    expect(s256).toBe(sha(bytes))
    expect(s256).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(await r3Digest('abc')).toBe(sha('abc'))
  })
})

describe('R3-10 parameter binding', () => {
  const json = fc.jsonValue({ maxDepth: 3 })
  it('jsonEqual: member order never matters, array order does, and it is symmetric', () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        expect(jsonEqual(a, shuffled(a))).toBe(true)
        expect(jsonEqual(a, b)).toBe(jsonEqual(b, a))
        expect(jsonEqual(a, b)).toBe(JSON.stringify(a) === JSON.stringify(b) || jsonEqual(shuffled(a), b))
      }),
      { numRuns },
    )
    expect(jsonEqual([1, 2], [2, 1])).toBe(false)
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false)
    expect(jsonEqual(null, {})).toBe(false)
    expect(jsonEqual([], {})).toBe(false)
  })

  it('parametersMatch: the approved call matches itself in any member order; any changed value, added or missing parameter does not', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 8 }), json, { minKeys: 1, maxKeys: 5 }), fc.jsonValue({ maxDepth: 1 }), async (params, other) => {
        expect(await parametersMatch(params, shuffled(params) as Record<string, unknown>)).toBe(true)
        const name = Object.keys(params)[0]!
        if (!jsonEqual(params[name], other) && !isParameterDigest(params[name])) expect(await parametersMatch(params, { ...params, [name]: other })).toBe(false)
        expect(await parametersMatch(params, { ...params, ['\u0000extra']: 1 })).toBe(false)
        const { [name]: _gone, ...rest } = params
        expect(await parametersMatch(params, rest)).toBe(false)
      }),
      { numRuns: Math.min(numRuns, 2000) },
    )
  })

  it('digest parameters: the presented bytes must hash to the stored s256 (strings as UTF-8, other values as their JSON)', async () => {
    const body = 'Hi Mom, are you free on Sunday?'
    const approved = { to: 'mom@example.com', body: { s256: sha(body), excerpt: 'Hi Mom…' } }
    expect(await parametersMatch(approved, { to: 'mom@example.com', body })).toBe(true)
    expect(await parametersMatch(approved, { to: 'mom@example.com', body: `${body} ` })).toBe(false)
    expect(await parametersMatch({ n: { s256: sha('[1,2]') } }, { n: [1, 2] })).toBe(true)
    // A digest object is recognised only with s256 and the two optional members.
    expect(isParameterDigest({ s256: 'x', excerpt: 'e', media_type: 'text/plain' })).toBe(true)
    expect(isParameterDigest({ s256: 'x', other: 1 })).toBe(false)
    expect(isParameterDigest({ s256: 1 })).toBe(false)
  })
})

describe('R3 parsers of untrusted values', () => {
  it('readR3Operations never throws, and accepts only {vocabulary, operations: object[]}', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        const r = readR3Operations(v)
        if (r !== undefined) {
          expect(typeof r.vocabulary).toBe('string')
          expect(r.operations.every((o) => typeof o === 'object' && o !== null && !Array.isArray(o))).toBe(true)
        }
      }),
      { numRuns },
    )
    expect(readR3Operations({ vocabulary: 'v', operations: [{ operationId: 'a' }] })).toEqual({ vocabulary: 'v', operations: [{ operationId: 'a' }] })
    expect(readR3Operations({ vocabulary: '', operations: [] })).toBeUndefined()
    expect(readR3Operations({ vocabulary: 'v', operations: [null] })).toBeUndefined()
    expect(readR3Operations({ vocabulary: 'v', operations: {} })).toBeUndefined()
  })

  it('R3-09 operations match on their identifier members; annotations (x-…) are ignored; the vocabulary must match', () => {
    expect(sameOperation({ operationId: 'a' }, { operationId: 'a', 'x-aauth-access-mode': 'per-call' })).toBe(true)
    expect(sameOperation({ operationId: 'a' }, { operationId: 'b' })).toBe(false)
    expect(sameOperation({ tool: 'a' }, { operationId: 'a' })).toBe(false)
    expect(sameOperation({}, {})).toBe(false)
    const granted = { vocabulary: 'urn:aauth:vocabulary:openapi', operations: [{ operationId: 'createBooking' }] }
    expect(listsOperation(granted, 'urn:aauth:vocabulary:openapi', { operationId: 'createBooking' })).toBe(true)
    expect(listsOperation(granted, 'urn:aauth:vocabulary:mcp', { operationId: 'createBooking' })).toBe(false)
    expect(listsOperation(undefined, 'urn:aauth:vocabulary:openapi', { operationId: 'createBooking' })).toBe(false)
  })
})
