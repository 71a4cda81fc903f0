/**
 * The Booking API of scenario S1: a Hono app behind one `aauth()` middleware line.
 *
 * - `GET /flights?to=SYD` — agent identity is enough.
 * - `POST /bookings {fare, amount, refundable}` — an auth token with `bookings:write`. The API
 *   decides per call: a refundable fare up to `approvalAbove` is booked at once; anything else is
 *   held, and the person is asked to approve this exact call (an R3 per-call proposal: amount,
 *   fare, refundable), then it runs once.
 * - `GET /bookings` — the person's own bookings (a person token identifies them).
 *
 * The operations are declared once (`r3.operations`): the metadata advertises an OpenAPI
 * description with `x-aauth-access-mode` annotations, and the person server gets class R3
 * documents and per-call proposals from `/aauth/r3/…`.
 *
 * @module
 */
import { Hono, type Context } from 'hono'
import { aauth, type AAuthEnv } from '../src/resource/hono.js'
import { createResource, type PerCallSpec, type ResourceOptions, type RouteRequirement } from '../src/resource/index.js'

/** One booking, as stored. */
export interface Booking {
  readonly id: string
  /** The person, `(ps, sub)`: the directed identifier is only meaningful with its PS. */
  readonly ps: string
  readonly sub: string
  readonly agent: string | undefined
  readonly fare: string
  readonly amount: number
  readonly refundable: boolean
  readonly mission: string | undefined
}

/** Options of {@link bookingApi}. */
export interface BookingApiOptions extends Pick<ResourceOptions, 'issuer' | 'keys' | 'personServers' | 'allowInsecureLoopback' | 'store' | 'jwks' | 'now'> {
  /** Refundable bookings above this amount need the person's approval per call. Default 1,000. */
  readonly approvalAbove?: number
  /** How the per-call challenge is delivered: `202` holding the call (default) or `401`. */
  readonly perCallDelivery?: '202' | '401'
}

const FARES = [
  { fare: 'ECO-SYD', to: 'SYD', amount: 320, refundable: true },
  { fare: 'BIZ-SYD', to: 'SYD', amount: 9000, refundable: false },
  { fare: 'ECO-MEL', to: 'MEL', amount: 280, refundable: true },
]

/** What the API asks the person about a booking, or `undefined` when it books at once. */
function bookingApproval(body: unknown, approvalAbove: number): PerCallSpec | { deny: string } | undefined {
  const b = (body ?? {}) as { fare?: unknown; amount?: unknown; refundable?: unknown }
  if (typeof b.fare !== 'string' || typeof b.amount !== 'number' || !Number.isFinite(b.amount) || b.amount <= 0 || typeof b.refundable !== 'boolean') {
    return { deny: 'a booking is {fare: string, amount: positive number, refundable: boolean}' }
  }
  if (b.refundable && b.amount <= approvalAbove) return undefined
  const amount = b.amount.toLocaleString('en-US')
  return {
    parameters: { fare: b.fare, amount: b.amount, refundable: b.refundable },
    display: {
      summary: `Book fare ${b.fare} for $${amount}${b.refundable ? '' : ', non-refundable'}`,
      amount: b.amount,
      currency: 'USD',
      fare: b.fare,
      refundable: b.refundable,
      ...(b.refundable ? {} : { irreversible: 'This fare cannot be refunded once booked.' }),
      detail: `## Action\nBook a flight\n\n## Details\nFare ${b.fare}, $${amount}, ${b.refundable ? 'refundable' : '**non-refundable**'}`,
    },
  }
}

/** Builds the Booking API. `bookings` is its (in-memory) table. */
export function bookingApi(o: BookingApiOptions): { app: Hono<AAuthEnv>; bookings: Booking[]; resource: ReturnType<typeof createResource> } {
  const approvalAbove = o.approvalAbove ?? 1000
  const bookings: Booking[] = []
  const resource = createResource({
    ...o,
    metadata: {
      name: 'Booking API',
      description: 'Flights and bookings for the travel agent.',
      scope_descriptions: { 'bookings:write': 'Book flights in your name' },
    },
    r3: {
      operations: [
        { operationId: 'listFlights', method: 'GET', path: '/flights', scope: 'flights:read', accessMode: 'agent-token', display: { summary: 'Search flights' } },
        {
          operationId: 'createBooking',
          method: 'POST',
          path: '/bookings',
          scope: 'bookings:write',
          accessMode: 'auth-token',
          display: { summary: 'Book flights in your name', implications: 'Bookings are charged to your account.' },
          perCall: (call) => bookingApproval(call.body, approvalAbove),
        },
        { operationId: 'listBookings', method: 'GET', path: '/bookings', scope: 'bookings:read', accessMode: 'person-token', display: { summary: 'See your bookings' } },
      ],
      ...(o.perCallDelivery === undefined ? {} : { perCallDelivery: o.perCallDelivery }),
    },
  })
  const app = new Hono<AAuthEnv>()
  const requirement = (c: Context): RouteRequirement => {
    if (c.req.path === '/bookings' && c.req.method === 'POST') return { access: 'auth', scope: 'bookings:write' }
    if (c.req.path === '/bookings') return { access: 'person' }
    return { access: 'agent' }
  }
  app.use('*', aauth(resource, requirement, { app }))
  app.get('/flights', (c) => c.json({ flights: FARES.filter((f) => f.to === (c.req.query('to') ?? f.to)) }))
  app.post('/bookings', async (c) => {
    const access = c.get('aauth')
    const b = (await c.req.json()) as { fare: string; amount: number; refundable: boolean }
    const booking: Booking = {
      id: `bk-${bookings.length + 1}`,
      ps: access.person!.ps,
      sub: access.person!.sub,
      agent: access.agent?.id,
      fare: b.fare,
      amount: b.amount,
      refundable: b.refundable,
      mission: access.mission,
    }
    bookings.push(booking)
    return c.json({ id: booking.id, fare: booking.fare, amount: booking.amount, refundable: booking.refundable }, 201)
  })
  app.get('/bookings', (c) => {
    const p = c.get('aauth').person!
    return c.json({ bookings: bookings.filter((b) => b.ps === p.ps && b.sub === p.sub).map(({ id, fare, amount, refundable }) => ({ id, fare, amount, refundable })) })
  })
  return { app, bookings, resource }
}
