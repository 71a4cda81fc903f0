import { describe, expect, it } from 'vitest'
import {
  aauthAuthorization,
  generateInteractionCode,
  HeaderError,
  interactionCodesMatch,
  normalizeInteractionCode,
  parseAAuthAccess,
  parseAAuthAuthorization,
  parseCapabilities,
  parsePreferWait,
  parseRequirement,
  parseRetryAfter,
  parseSignatureError,
  parseTokenList,
  pendingResponse,
  preferWait,
  ProblemError,
  problemResponse,
  readDeferred,
  serializeCapabilities,
  serializeRequirement,
  serializeSignatureError,
  serializeTokenList,
  SignatureError,
  signatureErrorResponse,
  CROCKFORD_ALPHABET,
  type AAuthRequirement,
} from '../../src/protocol/index.js'

describe('AAuth-Requirement (main draft §Requirement Responses)', () => {
  const cases: AAuthRequirement[] = [
    { requirement: 'agent-token' },
    { requirement: 'person-token' },
    { requirement: 'auth-token', resourceToken: 'eyJh.eyJw.c2ln' },
    { requirement: 'interaction', url: 'https://example.com/interact', code: 'A1B2-C3D4' },
    { requirement: 'approval' },
    { requirement: 'clarification' },
    { requirement: 'claims' },
  ]
  it.each(cases)('HDR-01/02 round-trips requirement=$requirement', (r) => {
    const parsed = parseRequirement(serializeRequirement(r))
    expect(parsed.recognized).toBe(true)
    expect(parsed).toMatchObject(r)
  })

  it('HDR-04 the draft example parses', () => {
    expect(parseRequirement('requirement=auth-token; resource-token="eyJ..."')).toMatchObject({ requirement: 'auth-token', resourceToken: 'eyJ...' })
  })

  it('HDR-01 unknown parameters are ignored; an unknown requirement is surfaced, not satisfied', () => {
    expect(parseRequirement('requirement=agent-token; future=1').recognized).toBe(true)
    expect(parseRequirement('requirement=payment-proof; x="y"')).toMatchObject({ recognized: false, requirement: 'payment-proof' })
  })

  it.each([
    ['', 'no requirement member'],
    ['foo=bar', 'no requirement member'],
    ['requirement="agent-token"', 'String instead of Token'],
    ['requirement=auth-token', 'auth-token without resource-token'],
    ['requirement=interaction; url="https://x.example/i"', 'interaction without code'],
    ['requirement=interaction; url="http://x.example/i"; code="ABCD1234"', 'interaction url not https'],
    ['requirement=interaction; url="https://x.example/i?x=1"; code="ABCD1234"', 'interaction url with query'],
    ['requirement=(a b)', 'inner list'],
    ['requirement=agent-token,,', 'malformed dictionary'],
  ])('HDR-04/05 rejects %j (%s) with HeaderError', (v) => {
    expect(() => parseRequirement(v)).toThrow(HeaderError)
  })

  it('HDR-05 refuses to serialize an interaction URL with a query', () => {
    expect(() => serializeRequirement({ requirement: 'interaction', url: 'https://x.example/i?q=1', code: 'ABCD1234' })).toThrow()
  })
})

describe('AAuth-Capabilities (main draft §AAuth-Capabilities Request Header)', () => {
  it('HDR-08 parses the defined values and ignores unknown ones and parameters', () => {
    expect([...parseCapabilities('interaction, clarification, payment')]).toEqual(['interaction', 'clarification', 'payment'])
    expect([...parseCapabilities('interaction;v=2, telepathy, "str", (a b)')]).toEqual(['interaction'])
  })
  it('HDR-09 absent or malformed means no capabilities', () => {
    expect(parseCapabilities(null).size).toBe(0)
    expect(parseCapabilities('interaction,,').size).toBe(0)
  })
  it('serializes without duplicates', () => {
    expect(serializeCapabilities(['interaction', 'clarification', 'interaction'])).toBe('interaction, clarification')
  })
})

describe('AAuth-Access and Authorization: AAuth (main draft §AAuth-Access Response Header)', () => {
  it('HDR-10 accepts a token68', () => {
    expect(parseAAuthAccess('abc.DEF-_~+/==')).toBe('abc.DEF-_~+/==')
    expect(parseAAuthAuthorization('AAuth abc123')).toBe('abc123')
    expect(parseAAuthAuthorization('Bearer abc')).toBeUndefined()
    expect(aauthAuthorization('tok')).toBe('AAuth tok')
  })
  it.each(['', 'a b', 'a\tb', 'a,b', 'a\u0001b', 'ä'])('HDR-10 NEG-RES-10 rejects AAuth-Access %j', (v) => {
    expect(() => parseAAuthAccess(v)).toThrow(HeaderError)
  })
  it.each(['AAuth', 'AAuth ', 'AAuth a b', 'AAuth a, AAuth b'])('HDR-10 NEG-RES-10 rejects Authorization %j', (v) => {
    expect(() => parseAAuthAuthorization(v)).toThrow(HeaderError)
  })
})

describe('Signature-Error and Accept-Signature-* (signature-key §4, §5)', () => {
  it('SK-10 serializes and parses error with required_input', () => {
    const v = serializeSignatureError('invalid_input', ['@method', '@authority', '@path', 'signature-key', 'content-digest'])
    expect(v).toBe('error=invalid_input, required_input=("@method" "@authority" "@path" "signature-key" "content-digest")')
    expect(parseSignatureError(v)).toEqual({ error: 'invalid_input', code: 'invalid_input', requiredInput: ['@method', '@authority', '@path', 'signature-key', 'content-digest'] })
  })
  it('SK-10 unknown members are ignored; unknown codes are reported raw', () => {
    expect(parseSignatureError('error=future_code, hint="x"')).toEqual({ error: 'future_code', code: undefined, requiredInput: undefined })
    expect(() => parseSignatureError('hint="x"')).toThrow(HeaderError)
  })
  it('SK-19/20 NEG-ALG-15 token lists keep case and never advertise none or HMAC', () => {
    expect(serializeTokenList(['Ed25519', 'ES256'])).toBe('Ed25519, ES256')
    expect(parseTokenList('jwt, jwks_uri, "x", (a)')).toEqual(['jwt', 'jwks_uri'])
    expect(() => serializeTokenList(['none'])).toThrow(TypeError)
    expect(() => serializeTokenList(['HS256'])).toThrow(TypeError)
  })
  it('SIG-11 SK-11 SIG-12 a signature failure is a 401 with header, Accept-Signature-* and a sig-error URN body', async () => {
    const r = signatureErrorResponse(new SignatureError('unsupported_scheme', 'hwk not accepted', { acceptSignatureScheme: ['jwt'] }))
    expect(r.status).toBe(401)
    expect(r.headers.get('signature-error')).toBe('error=unsupported_scheme')
    expect(r.headers.get('accept-signature-scheme')).toBe('jwt')
    expect(((await r.json()) as { type: string }).type).toBe('urn:ietf:params:sig-error:unsupported_scheme')
    const a = signatureErrorResponse(new SignatureError('unsupported_algorithm', 'x', { acceptSignatureAlg: ['Ed25519', 'ES256'] }))
    expect(a.headers.get('accept-signature-alg')).toBe('Ed25519, ES256')
  })
  it('ERR-01 SIG-13 endpoint errors are problem+json with error, and a 403 carries no signature headers', async () => {
    const r = problemResponse(new ProblemError('denied', 'The user declined the request.'))
    expect(r.status).toBe(403)
    expect(r.headers.get('content-type')).toBe('application/problem+json')
    expect(r.headers.get('signature-error')).toBeNull()
    expect(r.headers.get('accept-signature-scheme')).toBeNull()
    expect(await r.json()).toMatchObject({ error: 'denied', detail: 'The user declined the request.' })
  })
  it.each([
    ['invalid_request', 400], ['expired_resource_token', 400], ['user_unreachable', 403], ['as_unreachable', 502],
    ['abandoned', 403], ['expired', 408], ['revoked', 403], ['invalid_code', 410], ['slow_down', 429],
    ['interaction_unavailable', 424], ['unsupported_iss', 403], ['rate_limited', 429], ['mission_not_found', 404],
  ] as const)('ERR-02..08 %s → %i', (code, status) => {
    expect(new ProblemError(code, 'x').status).toBe(status)
  })
})

describe('deferred responses (main draft §Deferred Responses)', () => {
  it('DEF-01 a 202 carries Location, Retry-After, no-store and a status body', async () => {
    const r = pendingResponse({ location: '/pending/abc', retryAfter: 3, requirement: { requirement: 'approval' } })
    expect(r.status).toBe(202)
    expect(r.headers.get('cache-control')).toBe('no-store')
    const info = await readDeferred(r, 'https://ps.example/token')
    expect(info.location.href).toBe('https://ps.example/pending/abc')
    expect(info.retryAfter).toBe(3)
    expect(info.status).toBe('pending')
    expect(info.requirement).toMatchObject({ requirement: 'approval' })
  })
  it('DEF-03 an unknown status is treated as pending; DEF-05 Retry-After defaults to 5 s', async () => {
    const r = new Response(JSON.stringify({ status: 'thinking' }), { status: 202, headers: { location: '/p/1' } })
    const info = await readDeferred(r, 'https://ps.example/token')
    expect(info.status).toBe('pending')
    expect(info.retryAfter).toBe(5)
  })
  it('a pending URL on another origin is refused', async () => {
    const r = new Response('{}', { status: 202, headers: { location: 'https://evil.example/p/1' } })
    await expect(readDeferred(r, 'https://ps.example/token')).rejects.toMatchObject({ code: 'invalid_request' })
  })
  it('Prefer: wait and Retry-After dates', () => {
    expect(preferWait(45)).toBe('wait=45')
    expect(parsePreferWait('respond-async, wait=30')).toBe(30)
    expect(parsePreferWait(null)).toBeUndefined()
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 0)).toBe(10)
    expect(parseRetryAfter('soon')).toBe(5)
  })
})

describe('interaction codes (main draft §Interaction Code Format)', () => {
  it('CODE-01/02 at least 8 Crockford symbols, grouped by hyphens', () => {
    for (let i = 0; i < 200; i++) {
      const c = generateInteractionCode()
      expect(c).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/)
      for (const ch of c.replace('-', '')) expect(CROCKFORD_ALPHABET).toContain(ch)
    }
    expect(generateInteractionCode(12, 0)).toHaveLength(12)
    expect(() => generateInteractionCode(7)).toThrow(RangeError)
  })
  it('CODE-03 compares without hyphens, case-insensitively, folding I/L→1 and O→0', () => {
    expect(interactionCodesMatch('a1b2-c3d4', 'A1B2C3D4')).toBe(true)
    expect(interactionCodesMatch('OIL0-ABCD', '0110ABCD')).toBe(true)
    expect(interactionCodesMatch('A1B2C3D5', 'A1B2C3D4')).toBe(false)
    expect(normalizeInteractionCode('U!!')).toBeUndefined()
  })
})
