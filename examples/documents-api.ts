/**
 * The Documents API of scenario S2: an Express app with documents per department, behind one
 * `aauth()` middleware line.
 *
 * - `GET /documents/{department}` — the department's documents; needs an auth token whose scope
 *   includes the department. The person server only issues scopes in (the person's departments ∩
 *   the agent's capabilities), so an agent can narrow what its person may read, never widen it.
 * - `GET /documents/{department}/{id}` — one document, same rule.
 * - `GET /departments` — the department names; agent identity is enough.
 *
 * Every read is logged (`reads`) with the agent, the person (`ps`, directed `sub`) and what was
 * returned, so a test can check that exactly the allowed documents left the API.
 *
 * @module
 */
import express, { type Express, type Request } from 'express'
import { aauth } from '../src/resource/express.js'
import { createResource, type ResourceOptions, type RouteRequirement } from '../src/resource/index.js'

/** A document. */
export interface Document {
  readonly id: string
  readonly department: string
  readonly title: string
  readonly body: string
}

/** One read the API answered with documents. */
export interface DocumentRead {
  readonly agent: string | undefined
  readonly ps: string | undefined
  readonly sub: string | undefined
  readonly scopes: readonly string[]
  readonly documents: readonly string[]
}

/** The departments and their documents. */
export const DOCUMENTS: readonly Document[] = [
  { id: 'eng-1', department: 'engineering', title: 'Architecture overview', body: 'Services, queues and the data flow between them.' },
  { id: 'eng-2', department: 'engineering', title: 'On-call runbook', body: 'What to do when the pager goes off.' },
  { id: 'fin-1', department: 'finance', title: 'Q3 budget', body: 'Spend by team against plan.' },
  { id: 'fin-2', department: 'finance', title: 'Vendor contracts', body: 'Renewal dates and terms.' },
  { id: 'hr-1', department: 'hr', title: 'Salary bands', body: 'Bands per level and location.' },
  { id: 'hr-2', department: 'hr', title: 'Hiring plan', body: 'Open roles for next quarter.' },
  { id: 'adm-1', department: 'admin', title: 'Access review', body: 'Who has production access, and why.' },
]

/** The department names (the API's scope values). */
export const DEPARTMENTS: readonly string[] = [...new Set(DOCUMENTS.map((d) => d.department))]

/** Options of {@link documentsApi}. */
export type DocumentsApiOptions = Pick<ResourceOptions, 'issuer' | 'keys' | 'personServers' | 'allowInsecureLoopback' | 'store' | 'jwks' | 'now'>

/** What a route needs: a known department's routes need that department in the auth token's scope. */
function requirement(req: Request): RouteRequirement {
  const department = /^\/documents\/([^/]+)/.exec(req.path)?.[1]
  if (department !== undefined && DEPARTMENTS.includes(department)) return { access: 'auth', scope: department }
  return { access: 'agent' }
}

/** Builds the Documents API. */
export function documentsApi(o: DocumentsApiOptions): { app: Express; reads: DocumentRead[]; resource: ReturnType<typeof createResource> } {
  const reads: DocumentRead[] = []
  const resource = createResource({
    ...o,
    metadata: {
      name: 'Documents API',
      description: 'Company documents, by department.',
      scope_descriptions: Object.fromEntries(DEPARTMENTS.map((d) => [d, `Read the ${d} department's documents`])),
    },
  })
  const app = express()
  app.disable('x-powered-by')
  app.use(aauth(resource, requirement))
  const answer = (req: Request, documents: readonly Document[]) => {
    const access = req.aauth!
    reads.push({ agent: access.agent?.id, ps: access.person?.ps, sub: access.person?.sub, scopes: [...access.scopes].sort(), documents: documents.map((d) => d.id) })
    return documents
  }
  app.get('/departments', (_req, res) => {
    res.json({ departments: DEPARTMENTS })
  })
  app.get('/documents/:department', (req, res) => {
    const department = req.params['department']!
    if (!DEPARTMENTS.includes(department)) return void res.status(404).json({ error: 'not_found', detail: `no department "${department}"` })
    res.json({ department, documents: answer(req, DOCUMENTS.filter((d) => d.department === department)) })
  })
  app.get('/documents/:department/:id', (req, res) => {
    const doc = DOCUMENTS.find((d) => d.department === req.params['department'] && d.id === req.params['id'])
    if (doc === undefined) return void res.status(404).json({ error: 'not_found', detail: 'no such document in that department' })
    res.json(answer(req, [doc])[0])
  })
  return { app, reads, resource }
}
