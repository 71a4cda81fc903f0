/**
 * `aauth-kit/bridges/keycloak`: people from a Keycloak realm (or any OpenID Provider). The Person
 * Server delegates login to the realm (authorization code with PKCE) and maps the person's roles
 * and departments to permissions; an app holding a person's realm access token exchanges it
 * (RFC 8693) with the agent's signed request for an AAuth auth token whose scope is the person's
 * permissions ∩ the agent's capabilities.
 *
 * @module
 */

export * from './realm.js'
export * from './person-mapping.js'
export * from './oidc-login.js'
export * from './token-exchange.js'
export * from './exchange-client.js'
