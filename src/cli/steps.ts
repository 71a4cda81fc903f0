/**
 * The readable form of the agent client's protocol steps, as `aauth fetch -v` prints them: `>` for
 * what the agent sends, `<` for what it receives, `*` for everything else (curl's convention).
 *
 * @module
 */

import type { AgentStep } from '../agent/signed-transport.js'
import { isoTime, relativeTime, terminalSafe } from './output.js'

/**
 * Formats one step as lines ending in a newline. Server-supplied text (URLs, header values,
 * questions) is made terminal-safe.
 *
 * @param nowSec - for the relative expiry of tokens ("in 59m").
 */
export function formatStep(step: AgentStep, nowSec: number): string {
  const lines: string[] = []
  switch (step.type) {
    case 'request':
      lines.push(`> ${step.method} ${step.url}`, `>   presenting: ${step.presenting} token`, `>   covered:    ${step.components.map((c) => `"${c}"`).join(' ')}`)
      if (step.signatureBase !== undefined) {
        lines.push('>   signature base:')
        for (const line of step.signatureBase.split('\n')) lines.push(`>     ${line}`)
      }
      break
    case 'response':
      lines.push(`< ${step.status} (${step.method} ${step.url})`)
      if (step.requirement !== undefined) lines.push(`<   AAuth-Requirement: ${step.requirement}`)
      if (step.signatureError !== undefined) lines.push(`<   Signature-Error: ${step.signatureError}`)
      break
    case 'token':
      lines.push(
        `* obtained ${step.kind} token from ${step.issuer}${step.audience === undefined ? '' : ` for ${step.audience}`}, ` +
          `expires ${isoTime(step.expiresAt)} (${relativeTime(step.expiresAt, nowSec)})${step.scope === undefined || step.scope === '' ? '' : `, scope "${step.scope}"`}`,
      )
      break
    case 'poll':
      lines.push(`* poll #${step.attempt}: GET ${step.url}${step.waitMs > 0 ? ` after ${step.waitMs} ms` : ''}`)
      break
    case 'interaction':
      lines.push(`* interaction (${step.status}): the person is asked at ${step.userUrl}`)
      break
    case 'clarification':
      lines.push(`* clarification: the person asks: ${step.question}`)
      break
    case 'redirect':
      lines.push(`* redirect: ${step.from} → ${step.to} (same origin, signed again)`)
      break
    case 'retry':
      lines.push(`* retry: ${step.reason}`)
      break
    default: {
      const other: { readonly type: string } = step
      lines.push(`* ${other.type}: ${JSON.stringify(other)}`)
    }
  }
  return lines.map((l) => terminalSafe(l)).join('\n') + '\n'
}
