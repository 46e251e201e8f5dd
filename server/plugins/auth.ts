// API keys (--api-keys): every /v1 route, the WebSocket upgrade (GET /v1/stream) included,
// and /metrics with --metrics-auth, require `Authorization: Bearer <key>`; otherwise 401
// `unauthorized` with WWW-Authenticate (RFC 6750). Keys are compared as SHA-256 digests
// with crypto.timingSafeEqual against every configured key (equal lengths, no early
// exit), so the time taken says nothing about how much of a key was right. The digest is
// also the owner of the instances the key creates (stored with them; the key itself is
// never stored or logged: the log redacts the header). Health stays open.
// Without keys every request is anonymous (owner null) and a server bound beyond loopback
// says so in the log.
import fp from 'fastify-plugin'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../../src/config.ts'
import { LossServerError } from '../../src/errors.ts'
import { sendError } from './errors.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** SHA-256 (hex) of the caller's API key; null when the server runs without keys */
    owner: string | null
  }
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/** The digest of the configured key that `header` carries, or undefined. */
export function authenticate (header: string | undefined, digests: Buffer[]): Buffer | undefined {
  const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  // a missing or malformed header still costs one comparison per key
  const presented = sha256(m ? m[1] : '')
  let match: Buffer | undefined
  for (const d of digests) if (timingSafeEqual(d, presented) && m) match = d
  return match
}

export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::ffff:127.0.0.1'
}

function isProtected (request: FastifyRequest, metricsAuth: boolean): boolean {
  // the matched route, not the raw URL (no prefix tricks); unmatched URLs answer 404 anyway
  const route = request.routeOptions.url
  if (route === undefined) return false
  return route === '/v1' || route.startsWith('/v1/') || (metricsAuth && route === '/metrics')
}

export default fp(async function auth (app: FastifyInstance, opts: { config: Config }) {
  const { apiKeys, metricsAuth, host } = opts.config
  app.decorateRequest('owner', null)
  if (apiKeys.length === 0) {
    if (!isLoopback(host)) app.log.warn({ host }, `listening on ${host} without API keys: anyone who reaches this address can use the server and every task instance; set --api-keys`)
    return
  }
  const digests = apiKeys.map(sha256)
  app.addHook('onRequest', async (request, reply) => {
    if (!isProtected(request, metricsAuth)) return
    const match = authenticate(request.headers.authorization, digests)
    if (!match) {
      reply.header('www-authenticate', 'Bearer realm="ssl-loss-server"')
      const message = request.headers.authorization === undefined ? 'an API key is required: send Authorization: Bearer <key>' : 'the API key is not valid'
      // a refused WebSocket upgrade's socket is released by server/plugins/limits.ts, as every
      // refused upgrade's is
      return sendError(request, reply, new LossServerError('unauthorized', message))
    }
    request.owner = match.toString('hex')
  })
}, { name: 'auth', dependencies: ['errors'] })
