import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isSpiffeId, parseSpiffeId, SvidError, trustDomainOf } from '../../../src/bridges/spiffe/index.js'
import { numRuns } from '../../helpers/property.js'

describe('SPIFFE ID parser (SPIFFE-ID §2)', () => {
  it.each([
    ['spiffe://demo.example.com/agent/summarizer-tech', 'demo.example.com', '/agent/summarizer-tech'],
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://td_1-x.y/A.b-C_d/0', 'td_1-x.y', '/A.b-C_d/0'],
    ['spiffe://a/...', 'a', '/...'],
  ])('accepts %s', (id, trustDomain, path) => {
    expect(parseSpiffeId(id)).toEqual({ id, trustDomain, path })
    expect(isSpiffeId(id)).toBe(true)
    expect(trustDomainOf(id)).toBe(trustDomain)
  })

  it.each([
    ['https://example.org/a', /scheme/],
    ['SPIFFE://example.org/a', /scheme/],
    ['spiffe://', /trust domain is empty/],
    ['spiffe:///a', /trust domain is empty/],
    ['spiffe://Example.org/a', /lowercase/],
    ['spiffe://example.org:8080/a', /port/],
    ['spiffe://user@example.org/a', /userinfo/],
    ['spiffe://example.org/a?x=1', /query or fragment/],
    ['spiffe://example.org/a#frag', /query or fragment/],
    ['spiffe://example.org/', /trailing slash/],
    ['spiffe://example.org/a/', /trailing slash/],
    ['spiffe://example.org//a', /empty path segments/],
    ['spiffe://example.org/a/./b', /"\." and "\.\."/],
    ['spiffe://example.org/a/..', /"\." and "\.\."/],
    ['spiffe://example.org/a%20b', /path segments may hold/],
    ['spiffe://example.org/ü', /path segments may hold/],
    [`spiffe://example.org/${'a'.repeat(2048)}`, /2048 bytes/],
    [42, /not a string/],
  ])('refuses %s', (id, why) => {
    expect(() => parseSpiffeId(id)).toThrow(why)
    expect(isSpiffeId(id)).toBe(false)
  })

  it('fuzz: never throws anything but SvidError invalid_svid', () => {
    const segment = fc.string({ unit: fc.constantFrom(...'aZ09.-_/:@?#%ü '.split('')), maxLength: 12 })
    const candidate = fc.oneof(fc.string(), fc.tuple(fc.constantFrom('spiffe://', 'SPIFFE://', 'spiffe:/', ''), segment, segment).map(([a, b, c]) => `${a}${b}${c}`), fc.anything())
    fc.assert(
      fc.property(candidate, (value) => {
        try {
          const id = parseSpiffeId(value)
          expect(id.id).toBe(value)
          expect(`spiffe://${id.trustDomain}${id.path}`).toBe(value)
        } catch (e) {
          expect(e).toBeInstanceOf(SvidError)
          expect((e as SvidError).reason).toBe('invalid_svid')
        }
      }),
      { numRuns },
    )
  })
})
