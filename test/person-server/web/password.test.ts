/** scrypt password hashing (web/password.ts). */
import { describe, expect, it } from 'vitest'
import { hashPassword, verifyPassword } from '../../../src/person-server/web/password.js'

describe('password hashing', () => {
  it('round-trips with the default parameters and the documented format', async () => {
    const stored = await hashPassword('s3cret pass')
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
    expect(await verifyPassword('s3cret pass', stored)).toBe(true)
    expect(await verifyPassword('s3cret pasS', stored)).toBe(false)
    expect(await verifyPassword('', stored)).toBe(false)
  })
  it('salts: the same password hashes differently', async () => {
    const [a, b] = await Promise.all([hashPassword('same', { N: 2 ** 14 }), hashPassword('same', { N: 2 ** 14 })])
    expect(a).not.toBe(b)
  })
  it('normalises Unicode (NFC)', async () => {
    const stored = await hashPassword('caf\u00e9', { N: 2 ** 14 })
    expect(await verifyPassword('cafe\u0301', stored)).toBe(true)
  })
  it('refuses bad input when hashing', async () => {
    await expect(hashPassword('')).rejects.toThrow(RangeError)
    await expect(hashPassword('x'.repeat(2000))).rejects.toThrow(RangeError)
    await expect(hashPassword('x', { N: 1000 })).rejects.toThrow(RangeError)
  })
  it('answers false, never throws, for malformed stored values', async () => {
    const good = await hashPassword('pw', { N: 2 ** 14 })
    const parts = good.split('$')
    const malformed: unknown[] = [
      undefined,
      null,
      '',
      'plain-text-password',
      'bcrypt$2b$10$abc',
      parts.slice(0, 5).join('$'),
      [...parts, 'extra'].join('$'),
      ['scrypt', 'abc', ...parts.slice(2)].join('$'),
      ['scrypt', '1000', ...parts.slice(2)].join('$'), // not a power of two
      ['scrypt', String(2 ** 30), ...parts.slice(2)].join('$'), // too costly
      ['scrypt', parts[1], '0', ...parts.slice(3)].join('$'),
      ['scrypt', parts[1], parts[2], '99', ...parts.slice(4)].join('$'),
      [...parts.slice(0, 4), 'not*base64', parts[5]].join('$'),
      [...parts.slice(0, 4), parts[4], 'c2hvcnQ'].join('$'), // 5-byte key
      [...parts.slice(0, 5), parts[5]!.slice(0, -2) + 'AA'].join('$'), // wrong hash
      'x'.repeat(10_000),
    ]
    for (const stored of malformed) expect(await verifyPassword('pw', stored as string)).toBe(false)
    expect(await verifyPassword('pw', good)).toBe(true)
  })
})
