/**
 * Verification vectors: a signed request, the verifier's configuration and the documents it can
 * fetch → the identity it yields, or the exact `Signature-Error` (and `Accept-Signature-*`) of
 * the 401. Rows live in `verify-signature.ts` and `verify-tokens.ts`; expectations come from the
 * CHECKLIST, never from running the library.
 */
import type { ExpectedVerification, VerifierConfig, VerifyFile, VerifyVector } from './types.js'
import { thumbprint, type SignatureMemo } from './crypto.js'
import type { Row } from './verify-common.js'
import { baseNetwork, KEYS, RESOURCE, signedRequest, T } from './world.js'
import { signatureRows } from './verify-signature.js'
import { tokenRows } from './verify-tokens.js'

export const DEFAULT_VERIFIER: VerifierConfig = {
  audience: RESOURCE.issuer,
  now: T,
  windowSec: 60,
  acceptedTokenTypes: ['aa-agent+jwt', 'aa-person+jwt', 'aa-auth+jwt'],
  acceptServerSignatures: false,
  acceptedAlgorithms: ['Ed25519', 'ES256'],
  boundIat: false,
  revoked: [],
  requiredComponents: [],
  requireBodyComponents: false,
  replayCache: false,
}

/** `Signature-Error` as the SK draft serializes it (a Dictionary with an `error` Token). */
function signatureErrorValue(code: string, requiredInput: readonly string[] | undefined): string {
  return requiredInput === undefined ? `error=${code}` : `error=${code}, required_input=(${requiredInput.map((c) => `"${c}"`).join(' ')})`
}

function expected(row: Row, components: readonly string[]): ExpectedVerification {
  const e = row.expect
  if ('as' in e) {
    const created = row.req?.params?.['created']
    return {
      verified: {
        label: row.req?.label ?? 'sig',
        created: typeof created === 'number' ? created : T,
        components,
        jkt: thumbprint(KEYS[row.req?.key ?? 'agent'].publicJwk),
        ...e.as,
      },
    }
  }
  const headers: Record<string, string> = { 'signature-error': signatureErrorValue(e.error, e.requiredInput) }
  if (e.acceptScheme !== undefined) headers['accept-signature-scheme'] = e.acceptScheme
  if (e.acceptAlg !== undefined) headers['accept-signature-alg'] = e.acceptAlg
  return { error: e.error, headers }
}

function vector(row: Row, memo: SignatureMemo): VerifyVector {
  const { request, components } = signedRequest(row.req, memo)
  row.mutate?.(request)
  return {
    id: row.id,
    title: row.title,
    refs: row.refs,
    ...(row.level === undefined ? {} : { level: row.level }),
    verifier: row.verifier ?? {},
    ...(row.network === undefined ? {} : { network: row.network }),
    request,
    ...(row.presentations === undefined ? {} : { presentations: row.presentations }),
    expected: expected(row, components),
  }
}

export function verifyVectors(memo: SignatureMemo): VerifyFile {
  const rows = [...signatureRows(), ...tokenRows()]
  const ids = new Set(rows.map((r) => r.id))
  if (ids.size !== rows.length) throw new Error('duplicate verification vector id')
  return {
    title: 'Verifying AAuth requests',
    description:
      'Each vector is a signed request, the verifier configuration (merged over defaults.verifier) and the documents the verifier can fetch (network, with per-vector overrides; any other URL answers 404). The expected result is either the verified identity or the Signature-Error of the 401, with Accept-Signature-Scheme / Accept-Signature-Alg where the verifier sends them. Every failure is status 401.',
    defaults: { verifier: DEFAULT_VERIFIER },
    network: baseNetwork(),
    vectors: rows.map((r) => vector(r, memo)),
  }
}
