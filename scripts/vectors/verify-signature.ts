/**
 * Verification rows about the HTTP signature itself: headers, covered components, time window,
 * replay, schemes, labels, `keyid`, tampering, and servers signing with `jwks_uri`
 * (CHECKLIST SIG-*, SK-*, NEG-SIG-*).
 */
import { b64, thumbprint } from './crypto.js'
import { ES256_AGENT } from './sign.js'
import { BASE, BODY, fail, ok, type Row } from './verify-common.js'
import { agentToken, AS, KEYS, PS, T } from './world.js'

const PS_BODY = '{"resource_token":"eyJhbGciOiJFZDI1NTE5In0.e30.c2ln"}'
const AT_PS = { url: 'https://ps.example/token', body: PS_BODY }
const AT_PS_VERIFIER = { audience: PS.issuer, requireBodyComponents: true }
const SESSION = { authorization: 'AAuth c2Vzc2lvbi10b2tlbi0xMjM0NQ' }
const PS_SIGNS = (keyid = PS.kid, id = PS.issuer, dwk = PS.dwk) =>
  ({ key: 'person-server', url: 'https://as.example/token', body: PS_BODY, signatureKey: `sig=jwks_uri;id="${id}";dwk="${dwk}";kid="${keyid}"` }) as const
const AS_VERIFIER = { audience: AS.issuer, acceptServerSignatures: true, requireBodyComponents: true }

const drop = (name: string) => (r: { headers: Record<string, string> }) => void delete r.headers[name]
const hwk = `sig=hwk;kty="OKP";crv="Ed25519";x="${KEYS.agent.publicJwk.x}";alg="Ed25519"`

function flipLastByte(r: { headers: Record<string, string> }): void {
  const m = /^(\w+)=:(.*):$/.exec(r.headers['signature']!)!
  const bytes = Buffer.from(m[2]!, 'base64')
  bytes[bytes.length - 1] ^= 0x01
  r.headers['signature'] = `${m[1]}=:${b64(bytes)}:`
}

export function signatureRows(): Row[] {
  return [
    // Verified requests
    { id: 'ok-agent-get', title: 'agent token, GET without a query', refs: ['SIG-01', 'SIG-02', 'SIG-10', 'TOK-AG-04'], expect: ok() },
    { id: 'ok-agent-get-query', title: 'agent token, GET with a query covering @query', refs: ['SIG-02'], req: { url: 'https://api.example/flights?from=SFO&to=SYD' }, expect: ok() },
    { id: 'ok-post-ps', title: 'POST to a PS endpoint covering content-type and content-digest', refs: ['SIG-03'], req: AT_PS, verifier: AT_PS_VERIFIER, expect: ok() },
    { id: 'ok-post-resource-no-digest', title: 'a resource that does not require body components accepts a POST signed over the base set', refs: ['SIG-02', 'SIG-03'], req: { body: PS_BODY, components: BASE }, expect: ok() },
    { id: 'ok-authorization', title: 'Authorization: AAuth covered', refs: ['SIG-04'], req: { headers: SESSION }, expect: ok() },
    { id: 'ok-label', title: 'a label other than "sig"', refs: ['SK-02'], req: { label: 'aauth' }, expect: ok() },
    { id: 'ok-es256', title: 'ES256 agent key', refs: ['ALG-01'], req: ES256_AGENT, expect: ok() },
    { id: 'ok-created-60s-old', title: 'created exactly 60 s old is still inside the window', refs: ['SIG-10'], verifier: { now: T + 60 }, expect: ok() },
    { id: 'ok-created-60s-ahead', title: 'created exactly 60 s ahead is still inside the window', refs: ['SIG-10', 'SK-24'], verifier: { now: T - 60 }, expect: ok() },
    { id: 'ok-expires-future', title: 'expires one second ahead', refs: ['SIG-15'], req: { params: { created: T, expires: T + 1 } }, expect: ok() },
    { id: 'NEG-SIG-17-alg-ed25519', title: 'an alg signature parameter is ignored', refs: ['NEG-SIG-17', 'SIG-07'], req: { params: { created: T, alg: 'ed25519' } }, expect: ok() },
    { id: 'NEG-SIG-17-alg-hmac', title: 'an alg parameter naming another algorithm does not change the algorithm', refs: ['NEG-SIG-17', 'SIG-07'], req: { params: { created: T, alg: 'hmac-sha256' } }, expect: ok() },
    { id: 'ok-keyid-thumbprint', title: 'a keyid equal to the key thumbprint names the same key', refs: ['SIG-08'], req: { params: { created: T, keyid: thumbprint(KEYS.agent.publicJwk) } }, expect: ok() },
    {
      id: 'NEG-SIG-23',
      title: 'an unknown scheme on a label that is not verified is ignored',
      refs: ['NEG-SIG-23', 'SK-27'],
      req: { signatureKey: `sig=jwt;jwt="${agentToken()}", sig9=frob;x=1` },
      expect: ok(),
    },

    // Step 1: the three headers
    { id: 'NEG-SIG-01-signature', title: 'Signature missing', refs: ['NEG-SIG-01', 'SIG-10'], mutate: drop('signature'), expect: fail('invalid_signature') },
    { id: 'NEG-SIG-01-signature-input', title: 'Signature-Input missing', refs: ['NEG-SIG-01'], mutate: drop('signature-input'), expect: fail('invalid_signature') },
    { id: 'NEG-SIG-01-signature-key', title: 'Signature-Key missing', refs: ['NEG-SIG-01'], mutate: drop('signature-key'), expect: fail('invalid_signature') },
    { id: 'NEG-RES-11', title: 'a session token with no signature at all', refs: ['NEG-RES-11'], mutate: (r) => { for (const h of ['signature', 'signature-input', 'signature-key']) delete r.headers[h]; r.headers['authorization'] = SESSION.authorization }, expect: fail('invalid_signature') },

    // Step 2: covered components
    { id: 'NEG-SIG-02-signature-key', title: 'signature-key not covered', refs: ['NEG-SIG-02', 'SK-16'], req: { components: ['@method', '@authority', '@path'] }, expect: fail('invalid_input', { requiredInput: BASE }) },
    { id: 'NEG-SIG-02-authority', title: '@authority not covered', refs: ['NEG-SIG-02'], req: { components: ['@method', '@path', 'signature-key'] }, expect: fail('invalid_input', { requiredInput: BASE }) },
    { id: 'NEG-SIG-03', title: 'POST to a PS endpoint without content-digest covered', refs: ['NEG-SIG-03', 'SIG-03'], req: { ...AT_PS, components: [...BASE, 'content-type'] }, verifier: AT_PS_VERIFIER, expect: fail('invalid_input', { requiredInput: [...BASE, ...BODY] }) },
    { id: 'NEG-SIG-04', title: 'Authorization: AAuth present but not covered', refs: ['NEG-SIG-04', 'SIG-04'], req: { headers: SESSION, components: BASE }, expect: fail('invalid_input', { requiredInput: [...BASE, 'authorization'] }) },
    {
      id: 'NEG-SIG-05',
      title: 'a component the resource requires is left out',
      refs: ['NEG-SIG-05', 'SIG-05'],
      req: { headers: { 'aauth-capabilities': 'interaction' } },
      verifier: { requiredComponents: ['aauth-capabilities'] },
      expect: fail('invalid_input', { requiredInput: [...BASE, 'aauth-capabilities'] }),
    },

    // Step 3: created / expires
    { id: 'NEG-SIG-06', title: 'created 61 s old', refs: ['NEG-SIG-06', 'SIG-10'], verifier: { now: T + 61 }, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-07', title: 'created 61 s ahead is clock skew', refs: ['NEG-SIG-07', 'SK-24'], verifier: { now: T - 61 }, expect: fail('clock_skew') },
    { id: 'NEG-SIG-08', title: 'created missing', refs: ['NEG-SIG-08', 'SIG-06'], req: { params: {} }, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-08-string', title: 'created sent as a String, not an Integer', refs: ['NEG-SIG-08', 'SIG-06'], req: { params: { created: String(T) } }, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-09', title: 'expires in the past', refs: ['NEG-SIG-09', 'SIG-15'], req: { params: { created: T - 10, expires: T - 1 } }, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-09-now', title: 'expires equal to now has passed', refs: ['SIG-15'], req: { params: { created: T - 10, expires: T } }, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-10', title: 'the same signature presented twice with a replay cache', refs: ['NEG-SIG-10', 'SIG-16'], verifier: { replayCache: true }, presentations: 2, expect: fail('invalid_signature') },

    // Step 4: the Signature-Key member and its scheme
    { id: 'NEG-SIG-11', title: 'hwk to an AAuth verifier', refs: ['NEG-SIG-11', 'SIG-09', 'SIG-12'], req: { signatureKey: hwk }, expect: fail('unsupported_scheme', { acceptScheme: 'jwt' }) },
    { id: 'NEG-SIG-12-jwks-uri', title: 'jwks_uri from an agent at a resource', refs: ['NEG-SIG-12', 'SIG-09'], req: { signatureKey: `sig=jwks_uri;id="https://agents.example";dwk="aauth-agent.json";kid="ap-2026-09"` }, expect: fail('unsupported_scheme', { acceptScheme: 'jwt' }) },
    { id: 'NEG-SIG-12-unregistered', title: 'an unregistered scheme', refs: ['NEG-SIG-12', 'SK-27'], req: { signatureKey: 'sig=frob;x=1' }, expect: fail('unsupported_scheme', { acceptScheme: 'jwt' }) },
    { id: 'NEG-SIG-22', title: 'cached scheme to a verifier that issues no cache identifiers', refs: ['NEG-SIG-22', 'SK-23'], req: { signatureKey: 'sig=cached;cid="2f9c8a1e-a7b3"' }, expect: fail('unsupported_scheme', { acceptScheme: 'jwt' }) },
    { id: 'NEG-SIG-13', title: 'Signature-Key labelled sig2 while the signature is sig', refs: ['NEG-SIG-13', 'SK-02'], req: { signatureKey: `sig2=jwt;jwt="${agentToken()}"` }, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-14', title: 'jwt parameter that is not a compact JWT', refs: ['NEG-SIG-14'], req: { jwt: 'not-a-jwt' }, expect: fail('invalid_jwt') },
    { id: 'NEG-SIG-14-not-json', title: 'three parts that are not base64url JSON', refs: ['NEG-SIG-14', 'SK-05'], req: { jwt: 'a.b.c' }, expect: fail('invalid_jwt') },

    // Steps 6 and 7: key binding and the signature
    { id: 'NEG-SIG-15', title: 'request signed by another key than cnf.jwk', refs: ['NEG-SIG-15', 'TOK-07'], req: { key: 'other-agent' }, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-16-bytes', title: 'one bit of the signature flipped', refs: ['NEG-SIG-16'], mutate: flipLastByte, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-16-body', title: 'body changed after signing (Content-Digest mismatch)', refs: ['NEG-SIG-16', 'SIG-03'], req: AT_PS, verifier: AT_PS_VERIFIER, mutate: (r) => void (r.body = PS_BODY.replace('c2ln', 'c2lo')), expect: fail('invalid_signature') },
    { id: 'NEG-SIG-16-path', title: 'path changed after signing', refs: ['NEG-SIG-16'], mutate: (r) => void (r.url = 'https://api.example/flights/42'), expect: fail('invalid_signature') },
    { id: 'rfc9421-duplicate-derived', title: 'a component covered twice: RFC 9421 forbids building that base', refs: ['https://www.rfc-editor.org/rfc/rfc9421#section-2.5', 'SIG-10'], req: { components: [...BASE, '@authority'] }, expect: fail('invalid_signature') },
    { id: 'rfc9421-duplicate-field', title: 'a header field covered twice', refs: ['https://www.rfc-editor.org/rfc/rfc9421#section-2.5', 'SIG-10'], req: { ...AT_PS, components: [...BASE, ...BODY, 'content-type'] }, verifier: AT_PS_VERIFIER, expect: fail('invalid_signature') },
    { id: 'NEG-SIG-18', title: 'keyid naming a different key than Signature-Key', refs: ['NEG-SIG-18', 'SIG-08'], req: { params: { created: T, keyid: 'some-other-key' } }, expect: fail('invalid_signature') },
    { id: 'NEG-ALG-11-policy', title: 'an ES256 key at a verifier that accepts only Ed25519', refs: ['NEG-ALG-11', 'SIG-12', 'ALG-07'], req: ES256_AGENT, verifier: { acceptedAlgorithms: ['Ed25519'] }, expect: fail('unsupported_algorithm', { acceptAlg: 'Ed25519' }) },

    // Servers signing in their own right (jwks_uri)
    { id: 'ok-server-jwks-uri', title: 'a PS signs a request to an AS with jwks_uri', refs: ['SIG-19', 'SK-09'], req: PS_SIGNS(), verifier: AS_VERIFIER, expect: ok({ scheme: 'jwks_uri', iss: PS.issuer, dwk: PS.dwk, kid: PS.kid }) },
    {
      id: 'NEG-SIG-24',
      title: 'jwks_uri whose metadata issuer differs from id',
      refs: ['NEG-SIG-24', 'SK-09'],
      req: PS_SIGNS(),
      verifier: AS_VERIFIER,
      network: { 'https://ps.example/.well-known/aauth-person.json': { status: 200, body: { ...PS.metadata, issuer: 'https://other-ps.example' } } },
      expect: fail('issuer_mismatch'),
    },
    { id: 'jwks-uri-unknown-kid', title: 'jwks_uri naming a kid the JWKS does not have', refs: ['SK-09', 'SK-12'], req: PS_SIGNS('ps-retired'), verifier: AS_VERIFIER, expect: fail('unknown_key') },
    { id: 'jwks-uri-bad-id', title: 'jwks_uri whose id is not a server identifier', refs: ['SK-09', 'ID-06'], req: PS_SIGNS(PS.kid, 'http://ps.example'), verifier: AS_VERIFIER, expect: fail('invalid_key') },
    { id: 'jwks-uri-bad-dwk', title: 'jwks_uri whose dwk is not an AAuth metadata document', refs: ['SIG-19'], req: PS_SIGNS(PS.kid, PS.issuer, 'openid-configuration'), verifier: AS_VERIFIER, expect: fail('invalid_key') },
    { id: 'jwks-uri-scheme-list', title: 'a verifier that accepts server signatures lists both schemes', refs: ['SIG-12', 'SK-19'], req: { signatureKey: hwk }, verifier: AS_VERIFIER, expect: fail('unsupported_scheme', { acceptScheme: 'jwt, jwks_uri' }) },
  ]
}
