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
  AAUTH_PS_POSTGRES_URL default for --postgres of the person-server commands
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

Run a person server (aauth ps … is the same as aauth person-server …):
  aauth person-server serve --port P [--domain D | --issuer URL] [--db FILE | --postgres URL]
      Serve a Person Server: metadata, person and auth tokens, consent pages, the person's
      dashboard, audit and revocation; --org FILE for organisation mode.
  aauth person-server add-person --username U (--db FILE | --postgres URL) < password
      Add a person who logs in with the password read from stdin; prints the person's id.
  aauth person-server audit (--db FILE | --postgres URL) [--person U] [--agent ID] [--from ISO]...
      Show the audit trail: who let which agent do what, where, and why.

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

const STORE_HELP = `  --db FILE           the SQLite database file (its directory must exist)
  --postgres URL      a PostgreSQL database instead: postgres://user:password@host:port/db
                      (env AAUTH_PS_POSTGRES_URL; an explicit --db wins over it)
  --schema NAME       with --postgres: the schema of the tables, created when missing
                      (default: the connection's search_path, normally public)`

/** `aauth person-server serve --help`. */
export const PERSON_SERVER_SERVE_HELP = `Usage: aauth person-server serve --port P [options]
       aauth ps serve --port P [options]

Serves a Person Server (PS): /.well-known/aauth-person.json, JWKS, the person and auth token
endpoints (POST /person, /token), pending URLs, the permission, audit, interaction and revocation
endpoints, and the person's web pages: /login, the consent page /interaction (where people enter
the code an agent shows them) and the dashboard /account (agents, grants, audit trail).

  --port P            port to listen on (0: any free port; the one chosen is printed)
  --domain D          the person server's domain; the issuer is https://D
  --issuer URL        the issuer itself, instead of --domain (e.g. https://ps.example behind a
                      proxy; with AAUTH_DEV_LOOPBACK=1 also http://127.0.0.1:P, P the port given)
  --host ADDR         address to bind (default 127.0.0.1)
  --key-file FILE     the signing key of the person and auth tokens, created (mode 0600) if
                      missing. Without it an ephemeral key is used and the tokens issued stop
                      verifying when the process exits.
${STORE_HELP.replace('(its directory must exist)', '(default ./aauth-ps.sqlite; created if\n                      missing, its directory must exist)')}
  --name NAME         display name in the metadata and on the pages
  --org FILE          organisation mode: a JSON policy naming the agents the organisation
                      authorises and the scopes each may ever be given:
                        {"agents": {"aauth:assistant@agents.example": {"scopes": ["calendar.read"]}},
                         "consent": "preauthorised"}
                      Other agents are refused. A person may delegate only scopes that are both
                      the agent's and in the person's --permissions (add-person). "consent":
                      "preauthorised" (default) issues within that without asking the person;
                      "ask" still asks.
  -v, --verbose       log each request to stderr
  --json              print the startup information (issuer, metadata, consent, dashboard,
                      store, key) as one JSON line

People log in with a username and password: add them with aauth person-server add-person (on the
same --db or --postgres; the server need not be stopped).

Production: the issuer is https://D (or --issuer) and the PS speaks plain HTTP on 127.0.0.1 — put
it behind a reverse proxy that terminates TLS and forwards to --host/--port. Session cookies are
Secure. Keep --key-file and the store: the tokens issued and people's sessions depend on them.

Development: with AAUTH_DEV_LOOPBACK=1 the PS binds 127.0.0.1, its issuer is http://127.0.0.1:P
(--domain and --issuer may be omitted), it accepts agents and resources on http://127.0.0.1:PORT
and its cookies work over plain HTTP. Try it:
  printf '%s\\n' 'a long password' | aauth ps add-person --username alice --db ps.sqlite
  AAUTH_DEV_LOOPBACK=1 aauth ps serve --port 8700 --db ps.sqlite --key-file ps.key
  AAUTH_DEV_LOOPBACK=1 aauth agent serve --port 8600 --enroll bot --ps http://127.0.0.1:8700

Stops cleanly on Ctrl-C (SIGINT) or SIGTERM.
`

/** `aauth person-server add-person --help`. */
export const PERSON_SERVER_ADD_PERSON_HELP = `Usage: aauth person-server add-person --username U [options] (--db FILE | --postgres URL)
       aauth ps add-person …

Adds a person to the Person Server's store: they log in at the PS's /login with the username and
the password, which is read from stdin — one line, never from a flag (on a terminal it is asked
twice, without echo). It is stored as a scrypt hash. Prints the new person's id (random). The
SQLite file is created if missing; a running server sees the person at once.

  --username U        the login name (unique; at most 200 characters)
  --display-name N    the name shown on the pages (default: the username)
  --email E           the person's e-mail address
  --permissions a,b   organisation mode (serve --org): the scope values this person may delegate
                      to agents. Without it the person is not restricted (a personal PS) — but in
                      organisation mode may then delegate nothing.
  --tenant T          the tenant claim, for organisation deployments
${STORE_HELP}
  --json              print the person {id, username, displayName, …} (never the hash)

Example:
  printf '%s\\n' "$PASSWORD" | aauth ps add-person --username alice --display-name Alice --db ps.sqlite

Exit codes: 0 added; 2 for usage errors, among them a username already taken and an empty password.
`

/** `aauth person-server audit --help`. */
export const PERSON_SERVER_AUDIT_HELP = `Usage: aauth person-server audit (--db FILE | --postgres URL) [filters] [--limit N] [--json]
       aauth ps audit …

Shows the Person Server's audit trail, oldest first: tokens issued, grants made and revoked,
requests approved and denied, agents bound and revoked, with who, what, where and why. The table
has the time (UTC), the event type, the person (username), the agent (with its parent for a
sub-agent), the resource, the scope ("(act as person)" for a person token), the mission
(shortened), the decision and the reason.

Filters (combined):
  --person USERNAME   events of this person
  --agent AGENT_ID    events of this agent (aauth:name@domain; a sub-agent is its own agent)
  --mission S256      events under this mission (its s256 hash)
  --from ISO          at or after: 2025-01-31, 2025-01-31T09:30Z, 2025-01-31T09:30:00+02:00
                      (UTC when no zone is given)
  --to ISO            before this time; a date alone includes that whole day
  --limit N           at most N events (1 to 1000, default 100); when more match, stderr says
                      where the next ones start
${STORE_HELP.replace('(its directory must exist)', '(must exist)')}
  --json              one JSON object per line: the stored event (seq, at in epoch ms, type,
                      personId, agentSub, parentAgent, resource, scope, missionS256, decision,
                      reason, detail) with "time" (ISO 8601) and the person's "username"
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
