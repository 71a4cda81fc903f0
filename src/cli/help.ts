/**
 * Help texts of the `aauth` command. Kept apart from the commands so that `aauth help` loads none
 * of them.
 *
 * @module
 */

const ENV = `Environment:
  AAUTH_DEV_LOOPBACK=1  development only: admit http://127.0.0.1:PORT and http://localhost:PORT
                        servers (providers, person servers, resources, token issuers)
  AAUTH_PROVIDER, AAUTH_AGENT_KEY, AAUTH_AGENT_TOKEN
                        defaults for --provider, --key and --token
  AAUTH_DEBUG=1         print stack traces with errors`

/** `aauth help`. */
export const MAIN_HELP = `aauth — AAuth agents from the command line (aauth-kit)

Usage: aauth <command> [options]

Run an agent provider and enroll agents:
  aauth agent serve --port P --domain D [--key-file FILE] [--enroll LOCAL [--ps URL]]...
      Serve an agent provider: metadata, JWKS, enrollment and agent tokens.
  aauth agent enroll --provider URL --code CODE --key FILE
      Enroll this agent's key (created if missing) with a one-time code; prints the agent id.
  aauth agent token --provider URL --key FILE
      Print a fresh agent token bound to FILE's key (for fetch --token and scripts).

Run a sample resource:
  aauth resource serve --port P [--ps URL] [--domain D | --issuer URL] [--key-file FILE]
      Serve a resource behind the aauth() middleware: GET /whoami (agent identity) and
      POST /items (scope items:write, authorized by the person server --ps).

Make signed requests:
  aauth fetch [-X METHOD] [-H 'Name: value']... [-d DATA|@FILE] [-v] [--json] URL
      curl-like: signs the request (RFC 9421) and walks the AAuth flow — challenges, person and
      auth tokens, consent at the person server, polling, retries. -v shows every step.

Tokens and keys:
  aauth token inspect TOKEN   decode, verify against the issuer's JWKS, show validity and problems
  aauth token decode TOKEN    decode only, no verification
  aauth keygen [--alg Ed25519|ES256] [--out FILE]
                              generate a key pair (the private key file gets mode 0600)

  aauth help COMMAND | aauth COMMAND --help   details of one command
  aauth --version

--json on any command prints one JSON object (a JSON line for the serve commands) on stdout, for
scripts.
Errors are printed as "aauth: <code>: <message>" on stderr.
Exit codes: 0 success, 1 HTTP error status or protocol error, 2 usage error.

${ENV}
`

/** `aauth agent serve --help`. */
export const AGENT_SERVE_HELP = `Usage: aauth agent serve --port P --domain D [options]

Serves an agent provider (AP): /.well-known/aauth-agent.json, /.well-known/jwks.json,
POST /enroll (one-time codes) and POST /token (agent tokens, two-key or single-key refresh).

  --port P            port to listen on (0: any free port; the one chosen is printed)
  --domain D          the provider's domain; the issuer is https://D. Agents are aauth:NAME@D.
  --host ADDR         address to bind (default 127.0.0.1)
  --key-file FILE     the provider's signing key, created (mode 0600) if missing. Without it an
                      ephemeral key is used and tokens stop verifying when the process exits.
  --name NAME         display name in the metadata
  --enroll LOCAL      create a one-time enrollment code for agent aauth:LOCAL@D (repeatable)
  --ps URL            the person server put into the tokens of agents enrolled with --enroll
  --code-ttl SECONDS  lifetime of the enrollment codes (default 900)
  --token-lifetime SECONDS
                      agent token lifetime (default 3600, at most 86400)
  -v, --verbose       log each request to stderr
  --json              print the startup information as one JSON line

Production: the issuer is https://D and the provider speaks plain HTTP on 127.0.0.1 — put it
behind a reverse proxy that terminates TLS for D and forwards to --host/--port.

Development: with AAUTH_DEV_LOOPBACK=1 the provider binds 127.0.0.1 and its issuer is
http://127.0.0.1:P (--domain may then be omitted; if given it must be 127.0.0.1[:P] or
localhost[:P]).

Stops cleanly on Ctrl-C (SIGINT) or SIGTERM.
`

/** `aauth agent enroll --help`. */
export const AGENT_ENROLL_HELP = `Usage: aauth agent enroll --provider URL --code CODE --key FILE [--json]

Enrolls the agent's durable key at its agent provider with a one-time enrollment code (bootstrap
draft §10). The key file is created (Ed25519, mode 0600) when it does not exist. Prints the agent
identifier the provider assigned.

  --provider URL   the agent provider's issuer URL (env AAUTH_PROVIDER)
  --code CODE      the one-time code the provider's operator created
  --key FILE       the agent's durable private key (env AAUTH_AGENT_KEY)
  --json           print {"agent", "provider", "key", "created"}
`

/** `aauth agent token --help`. */
export const AGENT_TOKEN_HELP = `Usage: aauth agent token --provider URL --key FILE [--json]

Requests an agent token bound to FILE's key itself (single-key refresh) and prints it, so that
"aauth fetch --token TOKEN --key FILE" can sign with it. aauth fetch --provider does not need this:
it refreshes tokens itself, each bound to a fresh ephemeral key (two-key refresh).

  --provider URL   the agent provider's issuer URL (env AAUTH_PROVIDER)
  --key FILE       the enrolled durable private key (env AAUTH_AGENT_KEY)
  --json           print {"agent", "agent_token", "expires_in"}
`

/** `aauth resource serve --help`. */
export const RESOURCE_SERVE_HELP = `Usage: aauth resource serve --port P [options]

Serves a sample resource for trying agents: a Hono app behind the aauth() middleware of
aauth-kit/hono, with its metadata (/.well-known/aauth-resource.json), JWKS, revocation and
authorization endpoints, and two routes:

  GET  /whoami   agent identity (an agent token): 200 {"agent": "<verified agent id>"}
  POST /items    three-party authorization: an auth token with scope items:write from the person
                 server given with --ps; the agent is challenged for a person token, then for an
                 auth token (with a resource token), and gets 201 {"item": {...the JSON body,
                 "id"}, "person": {"ps", "sub"}}. Without --ps it answers 501 with a problem body
                 (error "not_configured") saying to restart with --ps; /whoami works either way.

  --port P            port to listen on (0: any free port; the one chosen is printed)
  --ps URL            the person server whose auth tokens POST /items accepts (the only one)
  --domain D          the resource's domain; the issuer is https://D
  --issuer URL        the issuer itself, instead of --domain (e.g. https://api.example behind a
                      proxy; with AAUTH_DEV_LOOPBACK=1 also http://127.0.0.1:P, P the port given)
  --host ADDR         address to bind (default 127.0.0.1)
  --key-file FILE     the resource's signing key (resource tokens), created (mode 0600) if missing.
                      Without it an ephemeral key is used.
  --name NAME         display name in the metadata (default "aauth sample resource")
  -v, --verbose       log each request to stderr
  --json              print the startup information (issuer, metadata, key, ps, routes) as one
                      JSON line

Production: the issuer is https://D (or --issuer) and the resource speaks plain HTTP on
127.0.0.1 — put it behind a reverse proxy that terminates TLS and forwards to --host/--port.

Development: with AAUTH_DEV_LOOPBACK=1 the resource binds 127.0.0.1 and its issuer is
http://127.0.0.1:P; --domain and --issuer may be omitted. Try it:
  AAUTH_DEV_LOOPBACK=1 aauth resource serve --port 8081
  AAUTH_DEV_LOOPBACK=1 aauth fetch --provider URL --key FILE http://127.0.0.1:8081/whoami

Stops cleanly on Ctrl-C (SIGINT) or SIGTERM.
`

/** `aauth fetch --help`. */
export const FETCH_HELP = `Usage: aauth fetch [options] URL

Sends a request signed with the agent's key (RFC 9421 HTTP Message Signatures) and walks the AAuth
flow as needed: requirement=agent-token / person-token / auth-token challenges, the person
server's consent (202 polling, interaction, clarification), Signature-Error retries and same-origin
redirects. The response body goes to stdout, like curl.

Request:
  -X, --request METHOD   method (default GET, or POST with -d)
  -H, --header 'N: v'    add a header (repeatable)
  -d, --data DATA        request body; @FILE reads a file, @- reads stdin. Without a Content-Type
                         header, application/json is sent when the data parses as JSON, else
                         text/plain.
  --scope S              the scope this call needs (chooses among held auth tokens)
  --justification TEXT   why the agent asks, shown to the person at consent (Markdown)
  --timeout SECONDS      give up after this long, waiting for the person included (default 600)

Agent credentials (one of):
  --provider URL --key FILE   tokens from the agent provider, refreshed before expiry, each bound
                              to a fresh ephemeral key named by FILE's enrolled key (two-key)
  --token TOKEN --key FILE    a fixed agent token bound to FILE's key (see aauth agent token)
  Environment: AAUTH_PROVIDER, AAUTH_AGENT_TOKEN, AAUTH_AGENT_KEY.

Output:
  -v, --verbose          print every protocol step on stderr: each request with the token it
                         presents, its covered components and signature base; each response with
                         AAuth-Requirement / Signature-Error; tokens obtained; polls; retries
  --json                 print one object {status, headers, body, steps} instead of the body

When the person must approve, the consent URL is printed on stderr (with a live waiting indicator
on a terminal). A question relayed from the person is asked on the terminal; an empty answer
withdraws the request. Without a terminal, clarification questions end the call with an error.

Exit codes: 0 for a 2xx response, 1 for another status or a protocol error, 2 for usage errors.
`

/** `aauth token inspect --help`. */
export const TOKEN_INSPECT_HELP = `Usage: aauth token inspect TOKEN [--json]

Decodes an AAuth token (aa-agent+jwt, aa-person+jwt, aa-resource+jwt, aa-auth+jwt; TOKEN "-"
reads stdin), then verifies it against its issuer's JWKS when the issuer can be reached: signature,
lifetime and the claims its type requires ("aud" is taken as given). Shows type, issuer, subject,
audience, issue and expiry times, the key it is bound to (cnf), the claims, and any problems.

Exit codes: 0 when the token verifies, or when it is well-formed but its issuer cannot be reached
(reported as "not verified"); 1 when verification fails (bad signature, expired, malformed).
`

/** `aauth token decode --help`. */
export const TOKEN_DECODE_HELP = `Usage: aauth token decode TOKEN [--json]

Decodes an AAuth JWT and shows its type and claims. Nothing is verified: see aauth token inspect.
`

/** `aauth keygen --help`. */
export const KEYGEN_HELP = `Usage: aauth keygen [--alg Ed25519|ES256] [--out FILE] [--json]

Generates a key pair. With --out, the private JWK is written to FILE with mode 0600 (an existing
file is never overwritten) and the public JWK is printed; otherwise the private JWK is printed.
`
