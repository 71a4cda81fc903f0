/**
 * The body-carrying negative vectors, replayed as Fetch `Request`s without the separate `body`
 * argument to `verifier.verify`. The request plainly has a body, so the outcome must be the same
 * as when the bytes are passed: CHECKLIST SIG-03 (content-type and content-digest covered at a
 * PS/AS endpoint) and the Content-Digest check must not depend on the caller remembering to pass
 * the body. Today both are skipped (fail-open); see the report for the proposed patch to
 * `src/protocol/request-verifier.ts` and `src/protocol/verification.ts`.
 */

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createRequestVerifier, SignatureError } from '../../src/protocol/index.js'
import { VECTORS_DIR, type VectorFile } from '../../scripts/gen-vectors.js'
import { fakeNetwork, jwksFor } from '../helpers/issuers.js'

const doc = JSON.parse(readFileSync(resolve(VECTORS_DIR, 'negative.json'), 'utf8')) as Extract<VectorFile, { kind: 'negative' }>
const withBody = doc.vectors.filter((v) => v.request.body !== null && !v.expected.valid && v.verifier.requireBodyComponents === true && v.verifier.acceptServerSignatures !== true)

describe('verifier given a Fetch Request with a body but no body argument', () => {
  it.each(withBody.map((v) => [v.id, v] as const))('%s: same Signature-Error as with the body bytes', async (_id, v) => {
    const net = fakeNetwork()
    for (const [url, body] of Object.entries(doc.network)) net.serveJson(url, body)
    const now = (): number => v.now * 1000
    const verifier = createRequestVerifier({ audience: v.verifier.audience, jwks: jwksFor(net, now), now, requireBodyComponents: true })
    const request = new Request(v.request.url, { method: v.request.method, headers: v.request.headers, body: v.request.body })
    const err = await verifier.verify(request).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(SignatureError)
    expect((err as SignatureError).code).toBe(v.expected.valid ? undefined : v.expected.error)
  })
})
