/**
 * Verification rows about the token in `Signature-Key`: its JWS algorithm, its `cnf.jwk`, issuer
 * discovery, and the claims of agent, person and auth tokens (CHECKLIST ALG-*, TOK-*, META-*,
 * JWKS-*, NEG-ALG-*, NEG-META-*, NEG-TOK-*, NEG-RES-*).
 */
import type { Network } from './types.js'
import { b64url } from './crypto.js'
import { ALL_ALGS, AS_AUTH, AS_PERSON, AS_PS_AUTH, fail, ok, type Expect, type Row } from './verify-common.js'
import { AGENT_ID, agentToken, AP, authToken, jwksOf, KEYS, personToken, psAuthToken, resourceToken, T, type TokenPatch } from './world.js'

const AP_METADATA = `${AP.issuer}/.well-known/${AP.dwk}`
const AP_JWKS = `${AP.issuer}/.well-known/jwks.json`
const agentKey = KEYS.agent.publicJwk

/** A row presenting a patched agent token. */
const agent = (id: string, title: string, refs: string[], patch: TokenPatch, expect: Expect, network?: Network): Row => ({
  id, title, refs, req: { jwt: agentToken(patch) }, expect, ...(network === undefined ? {} : { network }),
})
/** A row whose agent token carries this `cnf.jwk`. */
const cnfRow = (id: string, title: string, jwk: Record<string, unknown>, expect: Expect, refs = [id.replace(/-[a-z]$/, ''), 'TOK-06', 'ALG-07']): Row =>
  agent(id, title, refs, { payload: { cnf: { jwk } } }, expect)
const apMetadata = (patch: Record<string, unknown>): Network => ({ [AP_METADATA]: { status: 200, body: { ...AP.metadata, ...patch } } })
const unsupportedAlg = fail('unsupported_algorithm', { acceptAlg: ALL_ALGS })

function algorithmRows(): Row[] {
  const okpX = agentKey.x!
  return [
    agent('NEG-ALG-01', 'token with JWS alg none', ['NEG-ALG-01', 'ALG-03'], { header: { alg: 'none' } }, fail('invalid_jwt')),
    agent('NEG-ALG-02', 'token with the polymorphic JWS alg EdDSA', ['NEG-ALG-02', 'ALG-03'], { header: { alg: 'EdDSA' } }, fail('invalid_jwt')),
    agent('NEG-ALG-03', 'token "signed" with HS256 using the issuer public key as the secret', ['NEG-ALG-03', 'ALG-03'], { header: { alg: 'HS256' }, hmacSecret: KEYS['agent-provider'].publicJwk.x! }, fail('invalid_jwt')),
    cnfRow('NEG-ALG-04', 'cnf.jwk without alg', { kty: 'OKP', crv: 'Ed25519', x: okpX }, unsupportedAlg),
    cnfRow('NEG-ALG-05', 'cnf.jwk with alg EdDSA', { ...agentKey, alg: 'EdDSA' }, unsupportedAlg),
    cnfRow('NEG-ALG-06', 'cnf.jwk kty EC with alg Ed25519', { ...KEYS['agent-es256'].publicJwk, alg: 'Ed25519' }, fail('invalid_key')),
    cnfRow('NEG-ALG-07', 'cnf.jwk crv Ed448 with alg Ed25519', { ...agentKey, crv: 'Ed448' }, fail('invalid_key')),
    cnfRow('NEG-ALG-08', 'symmetric cnf.jwk', { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQ', alg: 'HS256' }, unsupportedAlg),
    cnfRow('NEG-ALG-09-a', 'OKP cnf.jwk without x', { kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519' }, fail('invalid_key')),
    cnfRow('NEG-ALG-09-b', 'EC cnf.jwk without y', { kty: 'EC', crv: 'P-256', x: KEYS['agent-es256'].publicJwk.x, alg: 'ES256' }, fail('invalid_key')),
    cnfRow('NEG-ALG-09-c', 'cnf.jwk without kty', { crv: 'Ed25519', x: okpX, alg: 'Ed25519' }, fail('invalid_key')),
    cnfRow('NEG-ALG-10-a', 'cnf.jwk x in base64, not base64url', { ...agentKey, x: Buffer.from(okpX, 'base64url').toString('base64') }, fail('invalid_key')),
    cnfRow('NEG-ALG-10-b', 'cnf.jwk x of 31 bytes', { ...agentKey, x: b64url(Buffer.alloc(31, 7)) }, fail('invalid_key')),
    cnfRow('NEG-ALG-11', 'cnf.jwk ES512 at a verifier accepting Ed25519 and ES256', { kty: 'EC', crv: 'P-521', x: b64url(Buffer.alloc(66, 1)), y: b64url(Buffer.alloc(66, 2)), alg: 'ES512' }, unsupportedAlg),
    cnfRow('NEG-ALG-14', 'ML-DSA (AKP) cnf.jwk at a verifier without ML-DSA', { kty: 'AKP', alg: 'ML-DSA-44', pub: b64url(Buffer.alloc(32, 3)) }, unsupportedAlg),
    cnfRow('cnf-private-key', 'cnf.jwk carrying the private member d', KEYS.agent.privateJwk, fail('invalid_key'), ['SK-14', 'TOK-06']),
    agent('TOK-06-no-cnf', 'agent token without cnf', ['TOK-06', 'SK-04'], { payload: { cnf: undefined } }, fail('invalid_key')),
    agent('NEG-ALG-12', 'the issuer JWKS key for the kid has no alg', ['NEG-ALG-12', 'JWKS-02'], {}, fail('invalid_jwt'), {
      [AP_JWKS]: { status: 200, body: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: KEYS['agent-provider'].publicJwk.x, kid: AP.kid, use: 'sig' }] } },
    }),
    agent('NEG-ALG-13', 'an ML-DSA key the kid does not select sits in the issuer JWKS', ['NEG-ALG-13', 'JWKS-03'], {}, ok(), {
      [AP_JWKS]: { status: 200, body: jwksOf(AP, [{ kty: 'AKP', alg: 'ML-DSA-44', pub: b64url(Buffer.alloc(32, 4)), kid: 'pq-1' }]) },
    }),
  ]
}

function issuerRows(): Row[] {
  return [
    agent('NEG-META-01', 'issuer metadata without issuer', ['NEG-META-01', 'META-02', 'SK-05'], {}, fail('issuer_missing'), apMetadata({ issuer: undefined })),
    agent('NEG-META-02', 'issuer metadata naming another issuer', ['NEG-META-02', 'META-02'], {}, fail('issuer_mismatch'), apMetadata({ issuer: 'https://evil.example' })),
    agent('NEG-META-03-a', 'issuer differing by a trailing slash', ['NEG-META-03', 'ID-07'], {}, fail('issuer_mismatch'), apMetadata({ issuer: 'https://agents.example/' })),
    agent('NEG-META-03-b', 'issuer differing by case', ['NEG-META-03', 'ID-07'], {}, fail('issuer_mismatch'), apMetadata({ issuer: 'https://Agents.example' })),
    agent('NEG-META-04', 'kid absent from the issuer JWKS', ['NEG-META-04', 'JWKS-05'], { header: { kid: 'ap-retired' } }, fail('unknown_key')),
    agent('NEG-META-05', 'kid found but the token was signed by another key', ['NEG-META-05', 'JWKS-09'], { signWith: 'other-agent' }, fail('invalid_jwt')),
    agent('NEG-META-07', 'agent token with dwk aauth-resource.json', ['NEG-META-07', 'TOK-03'], { payload: { dwk: 'aauth-resource.json' } }, fail('invalid_jwt')),
    ...['http://agents.example', 'https://agents.example:8443', 'https://agents.example/', 'https://agents.example/v1'].map((iss, i) =>
      agent(`NEG-META-08-${'abcd'[i]}`, `agent token iss ${iss}`, ['NEG-META-08', 'ID-06', 'TOK-05'], { payload: { iss } }, fail('invalid_jwt')),
    ),
    agent('NEG-META-10', 'issuer metadata with an http jwks_uri', ['NEG-META-10', 'ID-10'], {}, fail('invalid_jwt'), apMetadata({ jwks_uri: 'http://agents.example/.well-known/jwks.json' })),
    agent('metadata-404', 'issuer metadata not found', ['JWKS-01'], {}, fail('invalid_jwt'), { [AP_METADATA]: null }),
  ]
}

function agentClaimRows(): Row[] {
  const lifetime = (secs: number) => ({ payload: { iat: T - 60, exp: T - 60 + secs } })
  return [
    agent('NEG-TOK-01', 'agent token expired one second ago', ['NEG-TOK-01', 'TOK-04'], { payload: { exp: T - 1 } }, fail('expired_jwt')),
    agent('NEG-TOK-01-now', 'agent token whose exp is now: no tolerance', ['NEG-TOK-01', 'TOK-04'], { payload: { exp: T } }, fail('expired_jwt')),
    agent('ok-exp-next-second', 'agent token with one second left', ['TOK-04'], { payload: { exp: T + 1 } }, ok()),
    agent('ok-lifetime-24h', 'agent token lifetime of exactly 24 h', ['TOK-04', 'TOK-AG-02'], lifetime(86_400), ok()),
    { ...agent('TOK-04-lifetime', 'agent token lifetime over 24 h', ['TOK-04'], lifetime(86_401), fail('invalid_jwt')), level: 'SHOULD' },
    agent('NEG-TOK-03', 'agent token iat 120 s ahead, no iat bound: accepted', ['NEG-TOK-03', 'TOK-04'], { payload: { iat: T + 120, exp: T + 3720 } }, ok()),
    { ...agent('NEG-SIG-20', 'agent token iat 120 s ahead with the iat bound', ['NEG-SIG-20', 'SK-24'], { payload: { iat: T + 120, exp: T + 3720 } }, fail('clock_skew')), verifier: { boundIat: true } },
    { ...agent('NEG-SIG-21', 'revoked agent token', ['NEG-SIG-21', 'SK-24', 'TOK-09'], {}, fail('revoked_jwt')), verifier: { revoked: [{ iss: AP.issuer, jti: 'agent-token-1' }] } },
    { ...agent('TOK-09', 'a revocation for the same jti under another issuer does not apply', ['TOK-09'], {}, ok()), verifier: { revoked: [{ iss: 'https://other.example', jti: 'agent-token-1' }] } },
    agent('NEG-TOK-04', 'typ JWT instead of aa-agent+jwt', ['NEG-TOK-04', 'TOK-01'], { header: { typ: 'JWT' } }, fail('invalid_jwt')),
    agent('TOK-02-kid', 'JWT header without kid', ['TOK-02'], { header: { kid: undefined } }, fail('invalid_jwt')),
    agent('TOK-02-crit', 'JWT header with a crit member', ['TOK-02'], { header: { crit: ['exp'] } }, fail('invalid_jwt')),
    agent('TOK-04-no-jti', 'agent token without jti', ['TOK-AG-01', 'TOK-09'], { payload: { jti: undefined } }, fail('invalid_jwt')),
    agent('TOK-04-no-iat', 'agent token without iat', ['TOK-04'], { payload: { iat: undefined } }, fail('invalid_jwt')),
    agent('NEG-TOK-08', 'parent_agent that is not an agent identifier', ['NEG-TOK-08', 'TOK-AG-04'], { payload: { parent_agent: 'not an id' } }, fail('invalid_jwt')),
    agent('NEG-TOK-09', 'ps claim using http', ['NEG-TOK-09', 'TOK-AG-04'], { payload: { ps: 'http://ps.example' } }, fail('invalid_jwt')),
    agent('NEG-TOK-10-a', 'sub with a space in the local part', ['NEG-TOK-10', 'ID-01'], { payload: { sub: 'aauth:My Agent@agents.example' } }, fail('invalid_jwt')),
    agent('NEG-TOK-10-b', 'sub with an empty local part', ['NEG-TOK-10', 'ID-01'], { payload: { sub: 'aauth:@agents.example' } }, fail('invalid_jwt')),
    agent('NEG-TOK-10-c', 'sub with a 256-character local part', ['NEG-TOK-10', 'ID-01'], { payload: { sub: `aauth:${'a'.repeat(256)}@agents.example` } }, fail('invalid_jwt')),
    agent('NEG-TOK-10-upper', 'an upper-case local part is valid and kept as is', ['NEG-TOK-10', 'ID-01', 'ID-05'], { payload: { sub: 'aauth:Planner@agents.example' } }, ok({ scheme: 'jwt', tokenType: 'aa-agent+jwt', iss: AP.issuer, sub: 'aauth:Planner@agents.example' })),
    agent('TOK-AG-sub-domain', 'sub whose domain is not the agent provider', ['ID-02', 'TOK-AG-04'], { payload: { sub: 'aauth:travel-bot@elsewhere.example' } }, fail('invalid_jwt')),
    agent('ok-subagent', 'a sub-agent token naming its parent', ['TOK-AG-05', 'ID-03'], { payload: { sub: 'aauth:travel-bot+flights@agents.example', parent_agent: AGENT_ID } }, ok({ scheme: 'jwt', tokenType: 'aa-agent+jwt', iss: AP.issuer, sub: 'aauth:travel-bot+flights@agents.example' })),
    { id: 'NEG-TOK-07', title: 'resource token presented in Signature-Key', refs: ['NEG-TOK-07', 'TOK-01'], req: { jwt: resourceToken() }, expect: fail('invalid_jwt') },
  ]
}

function personAndAuthRows(): Row[] {
  const person = (id: string, title: string, refs: string[], patch: TokenPatch, expect: Expect): Row => ({ id, title, refs, req: { jwt: personToken(patch) }, expect })
  const auth = (id: string, title: string, refs: string[], patch: TokenPatch, expect: Expect): Row => ({ id, title, refs, req: { jwt: authToken(patch) }, expect })
  return [
    person('ok-person-token', 'person token for this resource', ['TOK-PT-01', 'TOK-PT-04'], {}, ok(AS_PERSON)),
    person('NEG-RES-01', 'person token for another resource', ['NEG-RES-01', 'TOK-PT-04'], { payload: { aud: 'https://other-api.example' } }, fail('invalid_jwt')),
    person('NEG-RES-02', 'person token bound to another key than the request signature', ['NEG-RES-02', 'TOK-07'], { payload: { cnf: { jwk: KEYS['other-agent'].publicJwk } } }, fail('invalid_signature')),
    person('TOK-PT-03', 'person token carrying scope', ['TOK-PT-03'], { payload: { scope: 'flights:read' } }, fail('invalid_jwt')),
    person('TOK-PT-02', 'person token lifetime over 1 h', ['TOK-PT-02', 'TOK-04'], { payload: { exp: T - 60 + 3601 } }, fail('invalid_jwt')),
    { ...person('NEG-TOK-05', 'person token where only auth tokens are accepted', ['NEG-TOK-05', 'TOK-PT-05'], {}, fail('invalid_jwt')), verifier: { acceptedTokenTypes: ['aa-auth+jwt'] } },
    auth('ok-auth-token', 'auth token from an AS', ['TOK-AT-01', 'TOK-AT-04', 'TOK-AT-05'], {}, ok(AS_AUTH)),
    { id: 'ok-auth-token-ps', title: 'auth token from the PS (three-party)', refs: ['TOK-AT-01', 'TOK-03'], req: { jwt: psAuthToken() }, expect: ok(AS_PS_AUTH) },
    { id: 'TOK-AT-01-ps', title: 'PS-issued auth token whose ps is not its iss', refs: ['TOK-AT-01'], req: { jwt: psAuthToken({ payload: { ps: 'https://other-ps.example' } }) }, expect: fail('invalid_jwt') },
    auth('NEG-RES-03', 'auth token for another resource', ['NEG-RES-03', 'TOK-AT-05'], { payload: { aud: 'https://other-api.example' } }, fail('invalid_jwt')),
    auth('NEG-RES-04', 'auth token without cnf', ['NEG-RES-04', 'TOK-06'], { payload: { cnf: undefined } }, fail('invalid_key')),
    auth('NEG-RES-05', 'auth token without sub', ['NEG-RES-05', 'TOK-AT-05'], { payload: { sub: undefined } }, fail('invalid_jwt')),
    auth('NEG-RES-06', 'auth token with dwk aauth-agent.json', ['NEG-RES-06', 'TOK-03'], { payload: { dwk: 'aauth-agent.json' } }, fail('invalid_jwt')),
    auth('NEG-RES-07', 'auth token lifetime over 1 h', ['NEG-RES-07', 'TOK-AT-02'], { payload: { exp: T - 60 + 3601 } }, fail('invalid_jwt')),
    { ...auth('NEG-RES-09', 'revoked auth token', ['NEG-RES-09', 'TOK-09'], {}, fail('revoked_jwt')), verifier: { revoked: [{ iss: 'https://as.example', jti: 'auth-token-1' }] } },
  ]
}

export function tokenRows(): Row[] {
  return [...algorithmRows(), ...issuerRows(), ...agentClaimRows(), ...personAndAuthRows()]
}
