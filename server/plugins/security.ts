// Security headers on every answer and CORS, off unless --cors-origin (issue 6/6).
// - X-Content-Type-Options: nosniff, so a browser never reinterprets an answer's type;
// - Cache-Control: no-store on API answers (losses and gradients are per request; errors
//   and health are live); the docs are static and may be revalidated;
// - a Content-Security-Policy for /docs, a page with no scripts of its own that links to the
//   OpenAPI document: nothing but same-origin links, no framing (OWASP Secure Headers);
// - no X-Powered-By (Fastify sends none; a test keeps it that way), Referrer-Policy no-referrer.
// CORS (Fetch standard, "CORS protocol"): with --cors-origin '*' any origin, or a
// comma-separated allow-list whose matching Origin is echoed with Vary: Origin; a preflight
// from an allowed origin is 204, from any other origin 403. Without the flag no
// Access-Control-* header is ever sent, so browsers keep other sites out.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LossServerError } from '../../src/errors.ts'
import { sendError } from './errors.ts'

export const DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const ALLOW_METHODS = 'GET, POST, PUT, DELETE, OPTIONS'
const ALLOW_HEADERS = 'content-type, accept, authorization, x-api-key, x-request-id'
const EXPOSE_HEADERS = 'x-request-id, retry-after'

/** '' -> off; '*' -> any; 'https://a, https://b' -> those. */
export function parseCorsOrigin (value: string): { any: boolean, origins: Set<string> } | undefined {
  const list = value.split(',').map(s => s.trim()).filter(Boolean)
  if (list.length === 0) return undefined
  return { any: list.includes('*'), origins: new Set(list) }
}

const isDocs = (url: string): boolean => url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?')

export default fp(async function security (app: FastifyInstance, opts: { corsOrigin: string }) {
  const cors = parseCorsOrigin(opts.corsOrigin)

  /** the Access-Control-Allow-Origin value for this request, or undefined (not allowed / off) */
  const allowedOrigin = (request: FastifyRequest): string | undefined => {
    const origin = request.headers.origin
    if (!cors || origin === undefined) return undefined
    if (cors.any) return '*'
    return cors.origins.has(origin) ? origin : undefined
  }

  const corsHeaders = (request: FastifyRequest, reply: FastifyReply): void => {
    const allowed = allowedOrigin(request)
    if (!cors) return
    if (!cors.any) reply.header('vary', 'Origin')
    if (allowed === undefined) return
    reply.header('access-control-allow-origin', allowed)
    reply.header('access-control-expose-headers', EXPOSE_HEADERS)
  }

  app.addHook('onRequest', async (request, reply) => {
    // a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method
    if (!cors || request.method !== 'OPTIONS' || request.headers.origin === undefined || request.headers['access-control-request-method'] === undefined) return
    if (allowedOrigin(request) === undefined) {
      return sendError(request, reply, new LossServerError('forbidden', `origin '${request.headers.origin}' is not allowed (--cors-origin)`))
    }
    reply.header('access-control-allow-methods', ALLOW_METHODS)
    reply.header('access-control-allow-headers', ALLOW_HEADERS)
    reply.header('access-control-max-age', '600')
    return reply.code(204).send()
  })

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
    reply.removeHeader('x-powered-by')
    if (isDocs(request.url)) {
      reply.header('cache-control', 'no-cache')
      reply.header('content-security-policy', DOCS_CSP)
      reply.header('x-frame-options', 'DENY')
    } else {
      reply.header('cache-control', 'no-store')
    }
    corsHeaders(request, reply)
  })
}, { name: 'security', dependencies: ['errors'] })
