/**
 * From a realm's claims to the Person Server's person record: who the person is
 * (`preferred_username`, `name`, `email`) and what they may delegate — their **permissions**, the
 * left side of the organisation's intersection rule (person's permissions ∩ agent's capabilities;
 * scenario S2). By default the permissions are the person's realm roles (`realm_access.roles`,
 * without Keycloak's built-in roles) plus the values of a departments claim and, optionally,
 * group names (`/engineering` → `engineering`).
 *
 * A realm person's record id is derived from the realm issuer and the person's `sub` (stable
 * across renames), and the record is refreshed at every login and exchange, so a role removed in
 * Keycloak is gone from the next token the PS issues.
 *
 * @module
 */

import { createHash } from 'node:crypto'
import type { JWTPayload } from 'jose'
import { AAuthError } from '../../protocol/index.js'
import type { PersonRecord, PersonServerStore } from '../../person-server/index.js'

/** How realm claims become a person record. */
export interface PersonMapping {
  /**
   * A claim holding the person's departments (a string or an array of strings), e.g. a Keycloak
   * user-attribute mapper named `departments`. Default `'departments'`; `false` to ignore.
   */
  readonly departmentsClaim?: string | false
  /** A claim holding group paths (Keycloak's group-membership mapper, `groups`). Default: not used. */
  readonly groupsClaim?: string
  /**
   * Realm roles that count as permissions: `true` (every role except Keycloak's built-ins:
   * `offline_access`, `uma_authorization`, `default-roles-*`), `false` (none), or an allowlist.
   * Default `true`.
   */
  readonly roles?: boolean | readonly string[]
  /** Replaces the whole computation: the person's permissions from the claims. */
  readonly permissions?: (claims: JWTPayload) => readonly string[]
  /** The person's tenant (organisation), e.g. from a claim. Default: none. */
  readonly tenant?: (claims: JWTPayload) => string | undefined
}

const BUILT_IN_ROLE = /^(offline_access|uma_authorization|default-roles-.*)$/

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v]
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

/** A (possibly dotted, e.g. `realm_access.roles`) claim's value. */
export function claimAt(claims: JWTPayload, path: string): unknown {
  let v: unknown = claims
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined
    v = (v as Record<string, unknown>)[part]
  }
  return v
}

/** The permissions {@link PersonMapping} gives these claims (sorted, unique). */
export function permissionsOf(claims: JWTPayload, mapping: PersonMapping = {}): string[] {
  if (mapping.permissions !== undefined) return [...new Set(mapping.permissions(claims))].sort()
  const out = new Set<string>()
  const roles = mapping.roles ?? true
  if (roles !== false) {
    for (const r of strings(claimAt(claims, 'realm_access.roles'))) {
      if (roles === true ? !BUILT_IN_ROLE.test(r) : roles.includes(r)) out.add(r)
    }
  }
  const dept = mapping.departmentsClaim ?? 'departments'
  if (dept !== false) for (const d of strings(claimAt(claims, dept))) out.add(d)
  if (mapping.groupsClaim !== undefined) {
    for (const g of strings(claimAt(claims, mapping.groupsClaim))) {
      const name = g.split('/').filter((p) => p !== '').pop()
      if (name !== undefined) out.add(name)
    }
  }
  return [...out].sort()
}

/** The PS person id of a realm person: stable for (realm issuer, `sub`). */
export function realmPersonId(realmIssuer: string, sub: string): string {
  return `oidc-${createHash('sha256').update(`${realmIssuer}\u0000${sub}`).digest('base64url').slice(0, 32)}`
}

/** The person record for these (verified) claims, keeping `createdAt` of an existing record. */
export function personFromClaims(realmIssuer: string, claims: JWTPayload, mapping: PersonMapping = {}, existing?: PersonRecord, now: number = Date.now()): PersonRecord {
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new AAuthError('invalid_token', 'the realm token has no sub')
  const username = typeof claims['preferred_username'] === 'string' && claims['preferred_username'] !== '' ? claims['preferred_username'] : claims.sub
  const name = typeof claims['name'] === 'string' && claims['name'] !== '' ? claims['name'] : username
  const email = typeof claims['email'] === 'string' ? claims['email'] : undefined
  const tenant = mapping.tenant?.(claims)
  return {
    id: realmPersonId(realmIssuer, claims.sub),
    username,
    displayName: name,
    ...(email === undefined ? {} : { email }),
    permissions: permissionsOf(claims, mapping),
    ...(tenant === undefined ? {} : { tenant }),
    createdAt: existing?.createdAt ?? now,
  }
}

/**
 * Creates or refreshes the record of a realm person.
 *
 * @throws {AAuthError} `invalid_request` when the username already belongs to another person
 *   (e.g. a local password account): the PS never merges two identities by name.
 */
export async function upsertRealmPerson(store: Pick<PersonServerStore, 'getPerson' | 'getPersonByUsername' | 'commit'>, realmIssuer: string, claims: JWTPayload, mapping: PersonMapping = {}, now: number = Date.now()): Promise<PersonRecord> {
  const id = realmPersonId(realmIssuer, String(claims.sub ?? ''))
  const existing = await store.getPerson(id)
  const person = personFromClaims(realmIssuer, claims, mapping, existing, now)
  const holder = await store.getPersonByUsername(person.username)
  if (holder !== undefined && holder.id !== person.id) {
    throw new AAuthError('invalid_request', `the username "${person.username}" belongs to another account on this Person Server`)
  }
  const unchanged = existing !== undefined && JSON.stringify(existing) === JSON.stringify(person)
  if (!unchanged) await store.commit({ persons: [person] })
  return person
}
