/**
 * `aauth agent enroll` (enroll the agent's durable key with a one-time code) and `aauth agent
 * token` (a single-key agent token for `fetch --token`): the agent's side of the bootstrap draft's
 * enrollment and refresh (§8.2, §10).
 *
 * @module
 */

import { enroll, requestAgentToken } from '../../agent/enrollment-client.js'
import { expectPositionals, parseArgs, UsageError } from '../args.js'
import { writeJson, type CommandRun } from '../output.js'
import { explainProviderError, providerAndKey, readAgentKey } from '../shared.js'

const PROVIDER_FLAGS = { provider: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' } } as const

/**
 * `aauth agent enroll --provider URL --code CODE --key FILE`: creates the key file if missing,
 * enrolls it, prints the agent identifier.
 */
export const agentEnroll: CommandRun = async (argv, ctx) => {
  const command = 'agent enroll'
  const { flags, positionals } = parseArgs(argv, { ...PROVIDER_FLAGS, code: { type: 'string' } }, command)
  expectPositionals(positionals, [], command)
  const { provider, keyPath } = providerAndKey(flags, ctx, command)
  if (flags.code === undefined) throw new UsageError('--code CODE is required (the one-time enrollment code from the provider)', command)
  const { key, created } = await readAgentKey(keyPath, { create: true })
  const agent = await enroll({ provider, durableKey: key, code: flags.code })
  if (flags.json) writeJson(ctx.stdout, { agent, provider, key: keyPath, created })
  else {
    ctx.stderr.write(`${created ? 'created' : 'using'} key ${keyPath} (kid ${key.kid}); enrolled at ${provider} as:\n`)
    ctx.stdout.write(`${agent}\n`)
  }
  return 0
}

/**
 * `aauth agent token --provider URL --key FILE`: an agent token bound to the enrolled key itself
 * (single-key refresh), printed for `aauth fetch --token`.
 */
export const agentToken: CommandRun = async (argv, ctx) => {
  const command = 'agent token'
  const { flags, positionals } = parseArgs(argv, PROVIDER_FLAGS, command)
  expectPositionals(positionals, [], command)
  const { provider, keyPath } = providerAndKey(flags, ctx, command)
  const { key } = await readAgentKey(keyPath, { create: false })
  const issued = await requestAgentToken({ provider, durableKey: key, singleKey: true }).catch((e: unknown) => {
    throw explainProviderError(e, provider)
  })
  if (flags.json) writeJson(ctx.stdout, { agent: issued.agent, agent_token: issued.agentToken, expires_in: issued.expiresIn })
  else ctx.stdout.write(`${issued.agentToken}\n`)
  return 0
}
