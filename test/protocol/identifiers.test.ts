import { describe, expect, it } from 'vitest'
import { assertEndpointUrl, assertServerIdentifier, IdentifierError, isAgentIdentifier, parseAgentIdentifier } from '../../src/protocol/index.js'

const violation = (f: () => unknown): string | undefined => {
  try {
    f()
    return undefined
  } catch (e) {
    expect(e).toBeInstanceOf(IdentifierError)
    return (e as IdentifierError).violation
  }
}

describe('agent identifiers (main draft §Agent Identifiers)', () => {
  it.each([
    ['aauth:assistant-v2@agent.example'],
    ['aauth:planner.7f3c@vendor.example'],
    ['aauth:planner.7f3c+search1@vendor.example'],
    ['aauth:Planner@x.example'],
    ['aauth:a_b@xn--nxasmq6b.example'],
    [`aauth:${'a'.repeat(255)}@agent.example`],
  ])('ID-01 accepts %s', (id) => {
    expect(isAgentIdentifier(id)).toBe(true)
  })

  it.each([
    ['My Agent@agent.example', 'scheme'],
    ['aauth:My Agent@agent.example', 'local_character'],
    ['aauth:@agent.example', 'local_empty'],
    [`aauth:${'a'.repeat(256)}@agent.example`, 'local_too_long'],
    ['aauth:agent@http://agent.example', 'scheme'],
    ['aauth:agent@agent.example:8443', 'port'],
    ['aauth:agent@agent.example/x', 'path'],
    ['aauth:agent@Agent.Example', 'uppercase'],
    ['aauth:agent@agent..example', 'host'],
    ['aauth:agent', 'missing_at'],
    ['aauth:+x@agent.example', 'subagent_form'],
    ['aauth:a+@agent.example', 'subagent_form'],
    ['aauth:a+b+c@agent.example', 'subagent_form'],
    ['aauth:agent@bücher.example', 'non_ascii'],
    [42, 'not_a_string'],
  ])('ID-01..03 rejects %s (%s)', (id, v) => {
    expect(violation(() => parseAgentIdentifier(id))).toBe(v)
  })

  it('ID-05 compares case-sensitively and never folds the local part', () => {
    expect(parseAgentIdentifier('aauth:Agent@x.example').local).toBe('Agent')
    expect(parseAgentIdentifier('aauth:Agent@x.example').id).not.toBe('aauth:agent@x.example')
  })

  it('ID-04 names the parent of a sub-agent for display only', () => {
    expect(parseAgentIdentifier('aauth:planner.7f3c+search1@vendor.example').parentByName).toBe('aauth:planner.7f3c@vendor.example')
    expect(parseAgentIdentifier('aauth:planner@vendor.example').parentByName).toBeUndefined()
  })

  it('dev loopback domains only with allowInsecureLoopback', () => {
    expect(isAgentIdentifier('aauth:bot@127.0.0.1:8080')).toBe(false)
    expect(isAgentIdentifier('aauth:bot@127.0.0.1:8080', { allowInsecureLoopback: true })).toBe(true)
    expect(isAgentIdentifier('aauth:bot@10.0.0.1:8080', { allowInsecureLoopback: true })).toBe(false)
  })
})

describe('server identifiers (main draft §Server Identifiers)', () => {
  it.each([['https://agent.example'], ['https://xn--nxasmq6b.example'], ['https://a-b.c.example']])('ID-06 accepts %s', (v) => {
    expect(() => assertServerIdentifier(v)).not.toThrow()
  })

  it.each([
    ['http://agent.example', 'scheme'],
    ['HTTPS://agent.example', 'uppercase'],
    ['https://Agent.Example', 'uppercase'],
    ['https://agent.example:8443', 'port'],
    ['https://agent.example/v1', 'path'],
    ['https://agent.example/', 'trailing_slash'],
    ['https://agent.example?x=1', 'query'],
    ['https://agent.example#f', 'fragment'],
    ['https://user@agent.example', 'userinfo'],
    ['https://bücher.example', 'non_ascii'],
    ['https://[::1]', 'host'],
    ['https://-bad.example', 'host'],
    ['agent.example', 'scheme'],
    [null, 'not_a_string'],
  ])('ID-06 rejects %s (%s)', (v, expected) => {
    expect(violation(() => assertServerIdentifier(v))).toBe(expected)
  })

  it('dev loopback: http://127.0.0.1:PORT and http://localhost:PORT only when opted in', () => {
    expect(violation(() => assertServerIdentifier('http://127.0.0.1:4000'))).toBe('scheme')
    expect(() => assertServerIdentifier('http://127.0.0.1:4000', { allowInsecureLoopback: true })).not.toThrow()
    expect(() => assertServerIdentifier('http://localhost:4000', { allowInsecureLoopback: true })).not.toThrow()
    expect(violation(() => assertServerIdentifier('http://10.1.2.3:4000', { allowInsecureLoopback: true }))).toBe('scheme')
    expect(violation(() => assertServerIdentifier('http://127.0.0.1:4000/x', { allowInsecureLoopback: true }))).toBe('scheme')
  })
})

describe('endpoint URLs (main draft §Endpoint and Other URLs)', () => {
  it('ID-08 endpoints: https, no query, no fragment', () => {
    expect(() => assertEndpointUrl('https://ps.example/token', 'endpoint')).not.toThrow()
    expect(violation(() => assertEndpointUrl('https://ps.example/token?x=1', 'endpoint'))).toBe('query')
    expect(violation(() => assertEndpointUrl('https://ps.example/token#x', 'endpoint'))).toBe('fragment')
    expect(violation(() => assertEndpointUrl('http://ps.example/token', 'endpoint'))).toBe('scheme')
  })
  it('ID-10 other URLs: https only (query allowed)', () => {
    expect(() => assertEndpointUrl('https://ps.example/jwks?v=2', 'url')).not.toThrow()
    expect(violation(() => assertEndpointUrl('http://ps.example/jwks', 'url'))).toBe('scheme')
  })
})
