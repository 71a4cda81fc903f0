/**
 * Property tests: every parser either parses or throws one of the library's own error classes
 * (never a TypeError, RangeError or anything else), and serializers round-trip through their
 * parsers. `numRuns` is 10,000 on CI and 1,000 locally; fast-check prints the seed of a failure.
 */
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  AAuthError,
  CAPABILITIES,
  assertServerIdentifier,
  components,
  createAgentToken,
  createRequestVerifier,
  createSigner,
  decodeJwt,
  generateKeyPair,
  HeaderError,
  IdentifierError,
  interpretSignatureKeyMember,
  parseAgentIdentifier,
  parseCapabilities,
  parseRequirement,
  parseSignature,
  parseSignatureError,
  parseSignatureInput,
  parseSignatureKey,
  serializeRequirement,
  serializeSignatureError,
  serializeSignatureKey,
  serializeSignatureParams,
  SIGNATURE_ERROR_CODES,
  SignatureError,
  signRequest,
  Token,
  type AAuthRequirement,
  type RequestVerifier,
  type SignatureKeyMember,
} from '../../src/protocol/index.js'
import { fakeIssuer, fakeNetwork, jwksFor } from '../helpers/issuers.js'
import { numRuns } from '../helpers/property.js'
import { NOW, NOW_S } from '../helpers/world.js'

type ErrorClass = abstract new (...args: never[]) => Error

/** Runs `f`; anything it throws must be an instance of one of `allowed`. */
function parsesOr<T>(f: () => T, allowed: readonly ErrorClass[]): T | undefined {
  try {
    return f()
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return undefined
    throw new Error(`unexpected ${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)}`, { cause: e })
  }
}

// ---------------------------------------------------------------------------------------------
// Generators

/** Characters that matter to structured fields, plus a little of everything else. */
const SF_CHARS = [...'abcgijklorstuwxyz019AZ=;,"():*?-_./+@%\\ \t', '\u00e9', '\u0000', '\r', '\n', '\u2028', '\u00a0']
const sfish = fc.string({ unit: fc.constantFrom(...SF_CHARS), maxLength: 80 })
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: 'grapheme-ascii', maxLength: 60 }), sfish)
/** Printable ASCII only: what can travel in a Fetch `Headers` value. */
const printable = fc.string({ unit: fc.constantFrom(...'abcsigjwt=;,"():*?-_./+@%\\ 019AZ'), maxLength: 60 })

const b64url = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('base64url'))
const jwtish = fc.oneof(
  fc.tuple(b64url(20), b64url(30), b64url(64)).map((p) => p.join('.')),
  fc.tuple(fc.json(), fc.json(), fc.string()).map(([h, p, s]) => `${Buffer.from(h).toString('base64url')}.${Buffer.from(p).toString('base64url')}.${s}`),
  fc.tuple(fc.object(), fc.object()).map(([h, p]) => `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${Buffer.from(JSON.stringify(p)).toString('base64url')}.sig`),
  fc.stringMatching(/^[A-Za-z0-9_.-]{0,40}$/),
  anyText,
)

const sfValue = fc.oneof(
  fc.constantFrom('?0', '?1', 'tok', 'Tok/x', ':AAAA:', ':', '1', '-1', '1.5', '1.2345', '999999999999999999', '""', '"x"', '"\\"q"', '"\\x"', '"é"', '("a" "b")', '"https://ps.example"'),
  fc.integer().map(String),
  jwtish.filter((s) => /^[\x20-\x7e]*$/.test(s)).map((s) => `"${s.replace(/["\\]/g, '\\$&')}"`),
  sfish,
)
const sfKey = fc.oneof(fc.constantFrom('sig', 'sig1', '*', 'a-b.c_d', 'Sig', '1sig', '', 'jwt', 'requirement', 'error', 'required_input'), fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,8}$/), sfish)
const params = fc.array(fc.tuple(fc.constantFrom('jwt', 'id', 'dwk', 'kid', 'cache', 'x5t', 'x5u', 'url', 'cid', 'kty', 'crv', 'x', 'y', 'alg', 'created', 'expires', 'keyid', 'name', 'sf', 'resource-token', 'code'), fc.option(sfValue)), { maxLength: 5 }).map((ps) =>
  ps.map(([k, v]) => (v === null ? `;${k}` : `;${k}=${v}`)).join(''),
)
const schemeish = fc.oneof(fc.constantFrom('jwt', 'hwk', 'jwks_uri', 'jwks', 'jkt-jwt', 'self-jwt', 'x509', 'cached', 'foo', 'JWT', '"jwt"', '(jwt)', '?1', '1.5', ':AAAA:', '()'), sfValue)
const dictionaryish = (value: fc.Arbitrary<string>) =>
  fc.array(fc.tuple(sfKey, fc.option(value), params), { minLength: 0, maxLength: 4 }).chain((members) =>
    fc.constantFrom(', ', ',', ' ,\t', ',,').map((sep) => members.map(([k, v, p]) => (v === null ? `${k}${p}` : `${k}=${v}${p}`)).join(sep)),
  )
const withNoise = (a: fc.Arbitrary<string>) => fc.oneof({ weight: 3, arbitrary: a }, { weight: 1, arbitrary: anyText }, { weight: 1, arbitrary: fc.tuple(a, anyText).map(([x, y]) => x + y) })

const componentName = fc.oneof(
  fc.constantFrom('"@method"', '"@authority"', '"@path"', '"@query"', '"@target-uri"', '"@scheme"', '"@request-target"', '"@status"', '"@signature-params"', '"@query-param";name="to"', '"@query-param"', '"signature-key"', '"content-digest";sf', '"x-a";bs', '"x-a";key="k"', '"x-a";req', '"Content-Type"', '"a b"', '"a(b"', '""', '"@"', 'tok', '1', ':AAAA:'),
  sfValue,
)
const innerList = fc.tuple(fc.array(componentName, { maxLength: 6 }), params).map(([cs, p]) => `(${cs.join(' ')})${p}`)

// ---------------------------------------------------------------------------------------------

describe('parsers never fail outside the library error classes', () => {
  it('SK-01 SK-27 parseSignatureKey + interpretSignatureKeyMember: parse or HeaderError / SignatureError', () => {
    fc.assert(
      fc.property(withNoise(dictionaryish(fc.tuple(schemeish, params).map(([s, p]) => s + p))), (value) => {
        const parsed = parsesOr(() => parseSignatureKey(value), [HeaderError])
        for (const raw of parsed?.values() ?? []) parsesOr(() => interpretSignatureKeyMember(raw), [SignatureError])
      }),
      { numRuns },
    )
  })

  it('SIG-01 parseSignatureInput and parseSignature: parse or HeaderError', () => {
    fc.assert(
      fc.property(withNoise(dictionaryish(fc.oneof(innerList, sfValue))), (value) => {
        const inputs = parsesOr(() => parseSignatureInput(value), [HeaderError])
        for (const e of inputs?.values() ?? []) {
          expect(e.components.every((c) => typeof c.name === 'string')).toBe(true)
          // What was parsed serializes again without throwing.
          parsesOr(() => serializeSignatureParams(e.components, e.rawParams), [])
        }
        parsesOr(() => parseSignature(value), [HeaderError])
      }),
      { numRuns },
    )
  })

  it('HDR-01 parseRequirement: parse or HeaderError', () => {
    const requirement = fc.oneof(fc.constantFrom('agent-token', 'person-token', 'auth-token', 'interaction', 'approval', 'clarification', 'claims', 'frobnicate', '"auth-token"', '?1'), sfValue)
    const extra = fc.array(fc.tuple(fc.constantFrom('resource-token', 'url', 'code', 'x'), fc.oneof(fc.constantFrom('"https://ps.example/i"', '"https://ps.example/i?x"', '"http://ps.example/i"', '"ABCD-2345"', '""'), sfValue)), { maxLength: 3 })
    const structured = fc.tuple(requirement, extra).map(([r, ps]) => `requirement=${r}${ps.map(([k, v]) => `; ${k}=${v}`).join('')}`)
    fc.assert(
      fc.property(withNoise(fc.oneof(structured, dictionaryish(sfValue))), (value) => {
        const r = parsesOr(() => parseRequirement(value), [HeaderError])
        if (r?.recognized === true && r.requirement === 'interaction') expect(r.url.startsWith('https://')).toBe(true)
      }),
      { numRuns },
    )
  })

  it('SK-10 parseSignatureError: parse or HeaderError', () => {
    const structured = fc.tuple(fc.oneof(fc.constantFrom(...SIGNATURE_ERROR_CODES), sfValue), fc.option(fc.array(sfValue, { maxLength: 4 }))).map(
      ([e, ri]) => `error=${e}${ri === null ? '' : `, required_input=(${ri.join(' ')})`}`,
    )
    fc.assert(
      fc.property(withNoise(fc.oneof(structured, dictionaryish(sfValue))), (value) => {
        const r = parsesOr(() => parseSignatureError(value), [HeaderError])
        if (r !== undefined) expect(r.code === undefined || SIGNATURE_ERROR_CODES.includes(r.code)).toBe(true)
      }),
      { numRuns },
    )
  })

  it('HDR-08 HDR-09 parseCapabilities never throws and returns only defined capabilities', () => {
    const list = fc.array(fc.oneof(fc.constantFrom(...CAPABILITIES, 'frob', '"interaction"', 'interaction;x=1', '(interaction)', 'Interaction'), sfValue), { maxLength: 5 }).map((xs) => xs.join(', '))
    fc.assert(
      fc.property(fc.oneof(withNoise(list), fc.constantFrom(null, undefined)), (value) => {
        const caps = parseCapabilities(value)
        for (const c of caps) expect(CAPABILITIES).toContain(c)
      }),
      { numRuns },
    )
  })

  it('TOK-01 decodeJwt: decodes to two JSON objects or throws SignatureError invalid_jwt', () => {
    fc.assert(
      fc.property(jwtish, (token) => {
        try {
          const { header, payload } = decodeJwt(token)
          expect(typeof header === 'object' && header !== null && !Array.isArray(header)).toBe(true)
          expect(typeof payload === 'object' && payload !== null && !Array.isArray(payload)).toBe(true)
        } catch (e) {
          if (!(e instanceof SignatureError) || e.code !== 'invalid_jwt') throw e
        }
      }),
      { numRuns },
    )
  })

  it('ID-01..ID-07 parseAgentIdentifier / assertServerIdentifier: valid or IdentifierError', () => {
    const local = fc.string({ unit: fc.constantFrom(...'aZ09-_+.@ :/é'), maxLength: 12 })
    const host = fc.string({ unit: fc.constantFrom(...'az09-.:/[]@?#A é'), maxLength: 16 })
    const agentish = fc.tuple(fc.constantFrom('aauth:', 'AAUTH:', '', 'aauth'), local, fc.constantFrom('@', '', '@@'), host).map((p) => p.join(''))
    const serverish = fc.tuple(fc.constantFrom('https://', 'http://', 'HTTPS://', '', 'https:/'), host).map((p) => p.join(''))
    const input = fc.oneof(agentish, serverish, anyText, fc.anything())
    fc.assert(
      fc.property(input, fc.boolean(), (v, loopback) => {
        parsesOr(() => parseAgentIdentifier(v, { allowInsecureLoopback: loopback }), [IdentifierError])
        parsesOr(() => assertServerIdentifier(v, { allowInsecureLoopback: loopback }), [IdentifierError])
      }),
      { numRuns },
    )
  })
})

const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** True when the value parses and covers a non-derived component that is not a valid field name. */
function coversInvalidFieldName(input: string | undefined): boolean {
  if (input === undefined) return false
  const parsed = parsesOr(() => parseSignatureInput(input), [HeaderError])
  return [...(parsed?.values() ?? [])].some((e) => e.components.some((c) => !c.name.startsWith('@') && !FIELD_NAME.test(c.name)))
}

describe('the full request verifier never fails outside SignatureError', () => {
  let verifier: RequestVerifier
  let valid: { input: string; signature: string; key: string }

  beforeAll(async () => {
    const net = fakeNetwork()
    const ap = await fakeIssuer(net, 'https://agents.example', 'aauth-agent.json')
    const { privateJwk, publicJwk } = await generateKeyPair()
    const token = await createAgentToken({ key: ap.key, issuer: ap.issuer, sub: 'aauth:bot@agents.example', cnfJwk: publicJwk, now: () => NOW })
    const { headers } = await signRequest(
      { method: 'GET', url: 'https://api.example/p?q=1', headers: new Headers() },
      { signer: await createSigner(privateJwk), signatureKey: { scheme: 'jwt', jwt: token, cache: false }, now: () => NOW },
    )
    valid = { input: headers.get('signature-input')!, signature: headers.get('signature')!, key: headers.get('signature-key')! }
    verifier = createRequestVerifier({ audience: 'https://api.example', jwks: jwksFor(net, () => NOW), now: () => NOW })
    await verifier.verify(new Request('https://api.example/p?q=1', { headers }))
  })

  const base = '"@method" "@authority" "@path" "signature-key"'
  const inputArb = fc.oneof(
    fc.constant(undefined),
    fc.tuple(fc.array(componentName, { maxLength: 4 }), fc.constantFrom(`;created=${NOW_S}`, `;created=${NOW_S};expires=${NOW_S + 5}`, `;created=${NOW_S};keyid="k"`, `;created=${NOW_S};alg="x"`, `;created=${NOW_S};foo=tok`)).map(
      ([cs, p]) => `sig=(${base}${cs.length > 0 ? ' ' : ''}${cs.join(' ')})${p}`,
    ),
    withNoise(dictionaryish(fc.oneof(innerList, sfValue))),
  )
  const sigArb = fc.oneof(fc.constant(undefined), b64url(64).map((s) => `sig=:${Buffer.from(s, 'base64url').toString('base64')}:`), withNoise(dictionaryish(sfValue)))
  const keyArb = (validKey: () => string) =>
    fc.oneof(fc.constant(undefined), fc.constant(null).map(() => validKey()), withNoise(dictionaryish(fc.tuple(schemeish, params).map(([s, p]) => s + p))))

  // Regression (fixed): a covered component whose name is not a valid HTTP field name ("a(b", "a b", "") makes
  // Headers.get throw a TypeError out of profileSignatureBase / referenceSignatureBase once the key
  // has resolved, so an agent with a valid token can turn a 401 into an unhandled 500.
  it.each(['"a(b"', '"a b"', '""', '"a(b";sf'])('SIG-10 a covered component %s that is not a field name → invalid_signature', async (name) => {
    const input = valid.input.replace('"signature-key"', `"signature-key" ${name}`)
    const req = new Request('https://api.example/p?q=1', { headers: { 'signature-input': input, signature: valid.signature, 'signature-key': valid.key } })
    const err = await verifier.verify(req).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SignatureError)
    expect((err as SignatureError).code).toBe('invalid_signature')
  })

  it('SIG-10 random Signature-Input / Signature / Signature-Key triples → verified or SignatureError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(inputArb, fc.constant(null).map(() => valid.input)),
        fc.oneof(sigArb, fc.constant(null).map(() => valid.signature)),
        keyArb(() => valid.key),
        fc.record({ method: fc.constantFrom('GET', 'POST', 'get', 'X'), path: fc.constantFrom('/p?q=1', '/p', '/%7e?', '/a b'), a: fc.option(printable), auth: fc.constantFrom(undefined, 'AAuth x', 'AAuth', 'Bearer y'), asRequest: fc.boolean() }),
        async (input, signature, key, m) => {
          const headers: Record<string, string> = {}
          for (const [k, v] of [['signature-input', input], ['signature', signature], ['signature-key', key], ['x-a', m.a ?? undefined], ['authorization', m.auth]] as const) if (v !== undefined) headers[k] = v
          const url = `https://api.example${m.path}`
          const printableOnly = Object.values(headers).every((v) => /^[\x20-\x7e]*$/.test(v))
          // A Fetch Request is used unless the headers cannot travel in one, or a covered
          // component is not a valid field name (the known bug pinned below).
          const message = m.asRequest && printableOnly && !coversInvalidFieldName(input) ? new Request(url, { method: m.method === 'X' ? 'GET' : m.method, headers }) : { method: m.method, url, headers }
          await verifier.verify(message).catch((e: unknown) => {
            if (!(e instanceof SignatureError)) throw new Error(`unexpected ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} for ${JSON.stringify(headers)}`, { cause: e })
          })
        },
      ),
      { numRuns },
    )
  })
})

// ---------------------------------------------------------------------------------------------
// Round trips

const printableNonEmpty = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 })
const label = fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,10}$/)

const memberArb: fc.Arbitrary<SignatureKeyMember> = fc.oneof(
  fc.record({ scheme: fc.constantFrom('jwt' as const, 'jkt-jwt' as const), jwt: printableNonEmpty, cache: fc.boolean() }),
  fc.record({ scheme: fc.constant('self-jwt' as const), jwt: printableNonEmpty }),
  fc.record({ scheme: fc.constant('jwks_uri' as const), id: printableNonEmpty, dwk: printableNonEmpty, kid: printableNonEmpty }),
  fc.record({ scheme: fc.constant('jwks' as const), url: printableNonEmpty, kid: printableNonEmpty }),
  fc.record({ scheme: fc.constant('x509' as const), x5u: printableNonEmpty, x5t: fc.uint8Array({ maxLength: 48 }) }),
  fc.record({ scheme: fc.constant('cached' as const), cid: printableNonEmpty }),
  fc.record({ scheme: fc.constant('hwk' as const), jwk: fc.record({ kty: fc.constant('OKP'), crv: printableNonEmpty, x: printableNonEmpty, alg: printableNonEmpty }) }),
)

describe('round trips', () => {
  it('SK-01 serializeSignatureKey → parseSignatureKey → interpretSignatureKeyMember is the identity', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(label, memberArb), { selector: (e) => e[0], minLength: 1, maxLength: 4 }), (entries) => {
        const header = serializeSignatureKey(Object.fromEntries(entries))
        const parsed = parseSignatureKey(header)
        expect([...parsed.keys()]).toEqual(entries.map((e) => e[0]))
        for (const [l, m] of entries) expect(interpretSignatureKeyMember(parsed.get(l)!)).toEqual(m)
      }),
      { numRuns },
    )
  })

  it('HDR-01 HDR-04 HDR-05 serializeRequirement → parseRequirement is the identity', () => {
    // An `xn--` label must be valid punycode for a URL parser to accept the host: left out here.
    const host = fc.stringMatching(/^[a-z0-9]{1,10}(\.[a-z0-9-]{0,8}[a-z])?\.[a-z]{2,6}$/).filter((h) => !/(^|\.)xn--/.test(h))
    const req: fc.Arbitrary<AAuthRequirement> = fc.oneof(
      fc.constantFrom(...(['agent-token', 'person-token', 'approval', 'clarification', 'claims'] as const).map((requirement) => ({ requirement }))),
      fc.record({ requirement: fc.constant('auth-token' as const), resourceToken: printableNonEmpty }),
      fc.record({
        requirement: fc.constant('interaction' as const),
        url: fc.tuple(host, fc.stringMatching(/^(\/[A-Za-z0-9._~%-]{0,8}){0,3}$/)).map(([h, p]) => `https://${h}${p}`),
        code: printableNonEmpty,
      }),
    )
    fc.assert(
      fc.property(req, (r) => {
        const { parameters, recognized, ...parsed } = parseRequirement(serializeRequirement(r)) as AAuthRequirement & { recognized: boolean; parameters: unknown }
        expect(recognized).toBe(true)
        expect(parameters).toBeInstanceOf(Map)
        expect(parsed).toEqual(r)
      }),
      { numRuns },
    )
  })

  it('SK-10 serializeSignatureError → parseSignatureError is the identity', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SIGNATURE_ERROR_CODES), fc.array(printableNonEmpty, { minLength: 1, maxLength: 5 }), (code, ri) => {
        const parsed = parseSignatureError(serializeSignatureError(code, ri))
        expect(parsed).toEqual({ error: code, code, requiredInput: ri })
      }),
      { numRuns },
    )
  })

  const componentNames = fc.array(fc.oneof(fc.constantFrom('@method', '@authority', '@path', '@query', 'signature-key', 'content-digest'), printableNonEmpty), { maxLength: 6 })
  const intOrString = fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), printableNonEmpty)

  it('SIG-06 serializeSignatureParams → parseSignatureInput keeps components and Integer/String/true parameters', () => {
    fc.assert(
      fc.property(componentNames, fc.uniqueArray(fc.tuple(label, fc.oneof(intOrString, fc.constant(true))), { selector: (e) => e[0], maxLength: 5 }), (names, ps) => {
        const entry = parseSignatureInput(`sig=${serializeSignatureParams(components(names), new Map(ps))}`).get('sig')!
        expect(entry.components.map((c) => c.name)).toEqual(names)
        expect([...entry.rawParams]).toEqual(ps)
      }),
      { numRuns },
    )
  })

  // Regression (fixed): serializeSignatureParams writes Decimal, Token, Byte Sequence and false parameters with a
  // doubled "=" (`;created==1.5`, `;x==?0`): bareItem() slices ";x=1.5" at 2 instead of 3. The
  // verifier rebuilds `@signature-params` with it, so any such parameter from a conforming signer
  // makes a good signature fail, and the value cannot be re-parsed.
  it('SIG-06 serializeSignatureParams → parseSignatureInput keeps Decimal, Token, Byte Sequence and false parameters', () => {
    const other = fc.oneof(
      fc.integer({ min: 1, max: 10_000 }).map((n) => n + 0.5),
      fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/).map((t) => ({ token: t })),
      fc.uint8Array({ maxLength: 8 }).map((b) => ({ bytes: b })),
      fc.constant(false),
    )
    fc.assert(
      fc.property(label, other, (k, v) => {
        const item = typeof v === 'object' && 'token' in v ? new Token(v.token) : typeof v === 'object' ? v.bytes.buffer : v
        const s = serializeSignatureParams([], new Map([[k, item]]))
        const back = parseSignatureInput(`sig=${s}`).get('sig')!.rawParams.get(k)
        expect(back instanceof ArrayBuffer ? new Uint8Array(back) : typeof back === 'object' ? String(back) : back).toEqual(
          typeof v === 'object' && 'token' in v ? v.token : typeof v === 'object' ? v.bytes : v,
        )
      }),
      { numRuns: 100 },
    )
  })
})

it('AAuthError is the common base of every error class the properties admit', () => {
  for (const c of [HeaderError, SignatureError, IdentifierError]) expect(c.prototype).toBeInstanceOf(AAuthError)
})
