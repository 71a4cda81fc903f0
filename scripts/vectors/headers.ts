/**
 * Header vectors: `Signature-Key` (all eight schemes of SK -09, plus malformed and unknown
 * forms), `Signature-Key-Cache`, `Signature-Error` and the `Accept-Signature-*` lists. The expected
 * values are written out by hand from the drafts' rules.
 */
import type { HeaderVector, InterpretedMember, SfValue, VectorFile } from './types.js'
import { base32 } from './crypto.js'
import { RFC9421_ED25519 } from './rfc.js'
import { agentToken, KEYS } from './world.js'

const SK = 'draft-hardt-httpbis-signature-key'
const X5T_B64 = 'bWcoon4QTVn8Q6xiY0ekMD6L8bNLMkuDV2KtvsFc1nM='

type Members = Record<string, { scheme: string | null; params: Record<string, SfValue> }>

/** A `Signature-Key` vector whose members parse; `serialized` defaults to the header itself. */
function sk(id: string, title: string, refs: string[], header: string, members: Members, interpreted: Record<string, InterpretedMember>, serialized: string | null = header): HeaderVector {
  return { id, title, refs, kind: 'signature-key', header, expected: { members, interpreted, ...(serialized === null ? {} : { serialized }) } }
}

function malformed(id: string, title: string, refs: string[], header: string): HeaderVector {
  return { id, title, refs, kind: 'signature-key', header, expected: { error: 'malformed_header' } }
}

const one = (scheme: string | null, params: Record<string, SfValue>): Members => ({ sig: { scheme, params } })
const err = (error: string): InterpretedMember => ({ error })

function signatureKeyVectors(): HeaderVector[] {
  const jwt = agentToken()
  const jwtInterp = (cache: boolean) => ({ scheme: 'jwt', jwt, cache })
  const okp = RFC9421_ED25519.publicJwk
  const ec = KEYS['agent-es256'].publicJwk
  const okpHeader = `sig=hwk;kty="OKP";crv="Ed25519";x="${okp.x}";alg="Ed25519"`
  const jwksUri = { id: 'https://ps.example', dwk: 'aauth-person.json', kid: 'ps-2026-09' }
  return [
    sk('sk-jwt', 'jwt scheme: the form every AAuth agent sends', ['SK-01', 'SK-04', 'SIG-09'], `sig=jwt;jwt="${jwt}"`, one('jwt', { jwt }), { sig: jwtInterp(false) }),
    sk('sk-jwt-ows', 'jwt scheme with spaces around the member and after ";" parses; re-serialization drops them', ['SK-01'], ` sig=jwt; jwt="${jwt}" `, one('jwt', { jwt }), { sig: jwtInterp(false) }, `sig=jwt;jwt="${jwt}"`),
    sk('sk-jwt-cache', 'jwt scheme with the bare cache flag', ['SK-23'], `sig1=jwt;jwt="${jwt}";cache`, { sig1: { scheme: 'jwt', params: { jwt, cache: true } } }, { sig1: jwtInterp(true) }),
    sk('sk-jwt-cache-false', 'cache=?0 means no cache request, and is omitted when re-serialized', ['SK-23'], `sig=jwt;jwt="${jwt}";cache=?0`, one('jwt', { jwt, cache: false }), { sig: jwtInterp(false) }, `sig=jwt;jwt="${jwt}"`),
    sk('sk-jwt-cache-string', 'a cache parameter that is not a Boolean makes the member invalid', ['SK-23', 'SK-14'], `sig=jwt;jwt="${jwt}";cache="yes"`, one('jwt', { jwt, cache: 'yes' }), { sig: err('invalid_key') }, null),
    sk('sk-jwt-missing', 'jwt scheme without its jwt parameter is invalid_jwt', ['SK-04', 'NEG-SIG-14'], 'sig=jwt', one('jwt', {}), { sig: err('invalid_jwt') }, null),
    sk('sk-jwt-token-param', 'a jwt parameter sent as a Token, not a String, is invalid_jwt', ['SK-01', 'NEG-SIG-14'], 'sig=jwt;jwt=abc', one('jwt', { jwt: { __type: 'token', value: 'abc' } }), { sig: err('invalid_jwt') }, null),
    sk('sk-hwk-okp', 'hwk scheme, OKP key (the RFC 9421 test key) with the now-required alg', ['SK-07'], okpHeader, one('hwk', { kty: 'OKP', crv: 'Ed25519', x: okp.x!, alg: 'Ed25519' }), { sig: { scheme: 'hwk', jwk: okp } }),
    sk(
      'sk-hwk-ec',
      'hwk scheme, EC P-256 key',
      ['SK-07'],
      `sig=hwk;kty="EC";crv="P-256";x="${ec.x}";y="${ec.y}";alg="ES256"`,
      one('hwk', { kty: 'EC', crv: 'P-256', x: ec.x!, y: ec.y!, alg: 'ES256' }),
      { sig: { scheme: 'hwk', jwk: { kty: 'EC', crv: 'P-256', x: ec.x!, y: ec.y!, alg: 'ES256' } } },
    ),
    sk('sk-hwk-rsa', 'hwk scheme, RSA key with a padding-and-hash alg (parsed; AAuth never accepts hwk)', ['SK-07', 'ALG-07'], 'sig=hwk;kty="RSA";n="0vx7agoebGcQ";e="AQAB";alg="PS256"', one('hwk', { kty: 'RSA', n: '0vx7agoebGcQ', e: 'AQAB', alg: 'PS256' }), {
      sig: { scheme: 'hwk', jwk: { kty: 'RSA', n: '0vx7agoebGcQ', e: 'AQAB', alg: 'PS256' } },
    }),
    sk('sk-hwk-kid', 'hwk scheme carrying kid, which SK -08 forbids, is invalid_key', ['SK-07'], `${okpHeader};kid="k1"`, one('hwk', { kty: 'OKP', crv: 'Ed25519', x: okp.x!, alg: 'Ed25519', kid: 'k1' }), { sig: err('invalid_key') }, null),
    sk('sk-hwk-no-x', 'hwk OKP key without x is invalid_key', ['SK-07', 'SK-14'], 'sig=hwk;kty="OKP";crv="Ed25519";alg="Ed25519"', one('hwk', { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519' }), { sig: err('invalid_key') }, null),
    sk(
      'sk-jwks-uri',
      'jwks_uri scheme as a server signing in its own right sends it',
      ['SK-09', 'SIG-19'],
      `sig=jwks_uri;id="${jwksUri.id}";dwk="${jwksUri.dwk}";kid="${jwksUri.kid}"`,
      one('jwks_uri', jwksUri),
      { sig: { scheme: 'jwks_uri', ...jwksUri } },
    ),
    sk('sk-jwks-uri-no-dwk', 'jwks_uri scheme without dwk is invalid_key', ['SK-09'], 'sig=jwks_uri;id="https://ps.example";kid="k1"', one('jwks_uri', { id: 'https://ps.example', kid: 'k1' }), { sig: err('invalid_key') }, null),
    sk('sk-jwks', 'jwks scheme: the URL is both identity and key location', ['SK-25'], 'sig=jwks;url="https://client.example/keys.jwks";kid="key-1"', one('jwks', { url: 'https://client.example/keys.jwks', kid: 'key-1' }), {
      sig: { scheme: 'jwks', url: 'https://client.example/keys.jwks', kid: 'key-1' },
    }),
    sk(
      'sk-x509',
      'x509 scheme: x5t is a Byte Sequence',
      ['SK-25'],
      `sig=x509;x5u="https://client.example/.well-known/cert.pem";x5t=:${X5T_B64}:`,
      one('x509', { x5u: 'https://client.example/.well-known/cert.pem', x5t: { __type: 'binary', value: base32(Buffer.from(X5T_B64, 'base64')) } }),
      { sig: { scheme: 'x509', x5u: 'https://client.example/.well-known/cert.pem', x5t: X5T_B64 } },
    ),
    sk('sk-x509-x5t-string', 'x509 with x5t as a String instead of a Byte Sequence is invalid_key', ['SK-25'], `sig=x509;x5u="https://client.example/c.pem";x5t="${X5T_B64}"`, one('x509', { x5u: 'https://client.example/c.pem', x5t: X5T_B64 }), { sig: err('invalid_key') }, null),
    sk('sk-self-jwt', 'self-jwt scheme', ['SK-25'], 'sig=self-jwt;jwt="eyJhbGciOiJFZDI1NTE5In0.e30.c2ln"', one('self-jwt', { jwt: 'eyJhbGciOiJFZDI1NTE5In0.e30.c2ln' }), {
      sig: { scheme: 'self-jwt', jwt: 'eyJhbGciOiJFZDI1NTE5In0.e30.c2ln' },
    }),
    sk('sk-jkt-jwt', 'jkt-jwt scheme (agent provider key refresh only)', ['SK-08'], 'sig=jkt-jwt;jwt="eyJhbGciOiJFZDI1NTE5In0.e30.c2ln"', one('jkt-jwt', { jwt: 'eyJhbGciOiJFZDI1NTE5In0.e30.c2ln' }), {
      sig: { scheme: 'jkt-jwt', jwt: 'eyJhbGciOiJFZDI1NTE5In0.e30.c2ln', cache: false },
    }),
    sk('sk-cached', 'cached scheme', ['SK-23'], 'sig1=cached;cid="2f9c8a1e-a7b3"', { sig1: { scheme: 'cached', params: { cid: '2f9c8a1e-a7b3' } } }, { sig1: { scheme: 'cached', cid: '2f9c8a1e-a7b3' } }),
    sk('sk-unknown-scheme', 'an unregistered scheme parses, and interpreting it is unsupported_scheme', ['SK-27', 'NEG-SIG-12'], 'sig=frob;x=1', one('frob', { x: 1 }), { sig: err('unsupported_scheme') }, null),
    sk('sk-string-scheme', 'a scheme sent as a String is not a scheme token: unsupported_scheme', ['SK-01', 'SK-27'], `sig="jwt";jwt="${jwt}"`, one(null, { jwt }), { sig: err('unsupported_scheme') }, null),
    sk('sk-inner-list', 'a member that is an Inner List has no scheme: unsupported_scheme', ['SK-01', 'SK-27'], 'sig=("a" "b")', one(null, {}), { sig: err('unsupported_scheme') }, null),
    sk(
      'sk-two-members',
      'two members, one per signature label (SK §3.2)',
      ['SK-02', 'SK-03'],
      `sig1=jwt;jwt="${jwt}", sig2=jwks_uri;id="${jwksUri.id}";dwk="${jwksUri.dwk}";kid="${jwksUri.kid}"`,
      { sig1: { scheme: 'jwt', params: { jwt } }, sig2: { scheme: 'jwks_uri', params: jwksUri } },
      { sig1: jwtInterp(false), sig2: { scheme: 'jwks_uri', ...jwksUri } },
    ),
    sk(
      'sk-unknown-member-kept',
      'an unknown scheme on another label does not stop the jwt member from being used',
      ['SK-27', 'NEG-SIG-23'],
      `sig=jwt;jwt="${jwt}", sig9=frob;x=1`,
      { sig: { scheme: 'jwt', params: { jwt } }, sig9: { scheme: 'frob', params: { x: 1 } } },
      { sig: jwtInterp(false), sig9: err('unsupported_scheme') },
      null,
    ),
    malformed('sk-malformed-unterminated', 'an unterminated String is not a Dictionary', ['SK-01'], 'sig=jwt;jwt="eyJhbGciOi'),
    malformed('sk-malformed-uppercase-label', 'Dictionary keys are lowercase: Sig= does not parse', ['SK-01'], `Sig=jwt;jwt="${jwt}"`),
    malformed('sk-malformed-empty-param', 'a parameter with "=" and no value does not parse', ['SK-01'], 'sig=jwt;jwt='),
  ]
}

function otherHeaderVectors(): HeaderVector[] {
  const sigErr = (id: string, title: string, header: string, expected: Extract<HeaderVector, { kind: 'signature-error' }>['expected']): HeaderVector => ({
    id, title, refs: ['SK-10', 'SIG-18'], kind: 'signature-error', header, expected,
  })
  const accept = (id: string, title: string, header: string, tokens: string[]): HeaderVector => ({ id, title, refs: ['SK-19', 'SK-20'], kind: 'accept-signature', header, expected: { tokens } })
  return [
    { id: 'skc-entry', title: 'Signature-Key-Cache entry with jti and expires', refs: ['SK-23'], kind: 'signature-key-cache', header: 'sig1="2f9c8a1e-a7b3";jti="2f9c8a1e";expires=1730000000', expected: { entries: { sig1: { cid: '2f9c8a1e-a7b3', jti: '2f9c8a1e', expires: 1730000000 } }, serialized: 'sig1="2f9c8a1e-a7b3";jti="2f9c8a1e";expires=1730000000' } },
    { id: 'skc-token-cid', title: 'Signature-Key-Cache member that is a Token, not a String, is malformed', refs: ['SK-23'], kind: 'signature-key-cache', header: 'sig1=abc', expected: { error: 'malformed_header' } },
    sigErr('se-invalid-input', 'invalid_input with required_input', 'error=invalid_input, required_input=("@method" "@authority" "@path" "signature-key")', { error: 'invalid_input', known: true, requiredInput: ['@method', '@authority', '@path', 'signature-key'] }),
    sigErr('se-unknown-member', 'members a client does not know are ignored', 'error=expired_jwt, hint="refresh"', { error: 'expired_jwt', known: true, requiredInput: null }),
    sigErr('se-future-code', 'a code outside the registry is still read, and flagged unknown', 'error=some_future_code', { error: 'some_future_code', known: false, requiredInput: null }),
    sigErr('se-no-error', 'a Signature-Error without error is malformed', 'required_input=("@method")', { error: 'malformed_header' }),
    sigErr('se-string-error', 'error must be a Token, not a String', 'error="invalid_key"', { error: 'malformed_header' }),
    accept('asa-algs', 'Accept-Signature-Alg keeps the registered spelling (ES256, never es256)', 'Ed25519, ES256', ['Ed25519', 'ES256']),
    accept('ass-schemes', 'Accept-Signature-Scheme in preference order', 'jwks_uri, jwt', ['jwks_uri', 'jwt']),
    accept('ass-non-tokens', 'Strings and Inner Lists are not tokens and are dropped; parameters are ignored', 'jwt;q=1, "hwk", (a b), jwks_uri', ['jwt', 'jwks_uri']),
    accept('ass-malformed', 'an unparseable list yields nothing to act on', 'jwt,,', []),
  ]
}

export function headerVectors(): VectorFile<HeaderVector> {
  return {
    title: 'Signature-Key and signature response headers',
    description: `Parsing and serialization of Signature-Key (${SK} -09 §3), Signature-Key-Cache (§6), Signature-Error (§5) and Accept-Signature-Scheme / Accept-Signature-Alg (§4). Structured-field values use the httpwg structured-field-tests JSON convention (Byte Sequences as base32).`,
    vectors: [...signatureKeyVectors(), ...otherHeaderVectors()],
  }
}
