/**
 * Builds every vector file (JSON, see `types.ts`). Deterministic: fixed clock, keys derived from fixed seeds,
 * fixed `jti`s, and Ed25519 everywhere bytes must be reproducible. The only randomized values are
 * ES256 request signatures; they are kept from a previous `sign.json` while they still verify
 * over the same signature base, so regenerating an unchanged set changes nothing.
 */
import type { KeysFile, SignVector, VectorFile } from './types.js'
import { thumbprint, type SignatureMemo } from './crypto.js'
import { headerVectors } from './headers.js'
import { RFC9421_ED25519, rfcVectors } from './rfc.js'
import { signVectors } from './sign.js'
import { tokenVectors } from './tokens.js'
import { verifyVectors } from './verify.js'
import { AP, AS, KEYS, PS, RESOURCE, type KeyName } from './world.js'

/** File name → parsed JSON content. */
export type VectorFiles = Record<string, unknown>

/** The files {@link buildVectorFiles} builds, one per group. */
export const VECTOR_FILE_NAMES = ['keys.json', 'rfc.json', 'headers.json', 'sign.json', 'verify.json', 'tokens.json'] as const

const USES: Record<KeyName, [string, string?]> = {
  agent: ['the agent key: cnf.jwk of the baseline agent, person and auth tokens'],
  'agent-es256': ['an ES256 agent key'],
  'other-agent': ['a second agent key, for mismatched-key cases'],
  'agent-provider': [`the agent provider ${AP.issuer}`, AP.kid],
  'person-server': [`the person server ${PS.issuer}`, PS.kid],
  'access-server': [`the access server ${AS.issuer}`, AS.kid],
  resource: [`the resource ${RESOURCE.issuer}`, RESOURCE.kid],
}

function keysFile(): KeysFile {
  const keys: KeysFile['keys'] = {}
  for (const [name, key] of Object.entries(KEYS) as [KeyName, (typeof KEYS)[KeyName]][]) {
    const [use, kid] = USES[name]
    keys[name] = { use, ...(kid === undefined ? {} : { kid }), alg: key.alg, publicJwk: key.publicJwk, privateJwk: key.privateJwk, thumbprint: thumbprint(key.publicJwk) }
  }
  keys['rfc9421-test-key-ed25519'] = { use: 'RFC 9421 B.1.4 test-key-ed25519, with alg added', ...RFC9421_ED25519, thumbprint: thumbprint(RFC9421_ED25519.publicJwk) }
  return {
    title: 'Test keys',
    description: 'Every key the vectors use. They are derived from fixed seeds (SHA-256 of "aauth-kit interop vector key: <name>") and are published, private halves included: never use them outside tests.',
    keys,
  }
}

/** ES256 signatures from a previous `sign.json`, by signature base. */
function memoFrom(previous: VectorFiles | undefined): SignatureMemo {
  const memo: SignatureMemo = new Map()
  const sign = previous?.['sign.json'] as VectorFile<SignVector> | undefined
  for (const v of sign?.vectors ?? []) {
    const m = /=:([^:]*):$/.exec(v.output.headers['signature'] ?? '')
    if (!v.deterministic && m !== null) memo.set(v.output.signatureBase, m[1]!)
  }
  return memo
}

/** Builds all vector files; `previous` supplies ES256 signatures to keep. */
export function buildVectorFiles(previous?: VectorFiles): VectorFiles {
  const memo = memoFrom(previous)
  const files: VectorFiles = {
    'keys.json': keysFile(),
    'rfc.json': rfcVectors(),
    'headers.json': headerVectors(),
    'sign.json': signVectors(memo),
    'verify.json': verifyVectors(memo),
    'tokens.json': tokenVectors(),
  }
  // Drop members set to undefined, exactly as writing the JSON does.
  return JSON.parse(JSON.stringify(files)) as VectorFiles
}

/** The bytes written for one file. */
export function serialize(content: unknown): string {
  return `${JSON.stringify(content, null, 2)}\n`
}
