// Graceful shutdown, first half: from the moment close() starts, new HTTP requests get
// 503 not_ready (with Retry-After) while the ones in flight finish; liveness still answers.
// (Fastify's own return503OnClosing is off: its body is not the API's error body.)
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { LossServerError } from '../../src/errors.ts'
import { sendError } from './errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: { draining: boolean }
  }
}

export default fp(async function lifecycle (app: FastifyInstance) {
  const state = { draining: false }
  app.decorate('lifecycle', state)
  // Keep-alive connections that were busy when close() began become idle later and would hold
  // server.close() open for --keep-alive-timeout: close them as they go idle while draining.
  let sweeper: NodeJS.Timeout | undefined
  app.addHook('preClose', async () => {
    state.draining = true
    sweeper = setInterval(() => app.server.closeIdleConnections(), 250)
    sweeper.unref()
  })
  app.addHook('onClose', async () => { clearInterval(sweeper) })
  // answers finished while draining close their connection, so keep-alive sockets do not
  // hold the server open for keepAliveTimeout (72 s in Fastify) after the last answer
  app.addHook('onSend', async (_request, reply) => { if (state.draining) reply.header('connection', 'close') })
  app.addHook('onRequest', async (request, reply) => {
    if (!state.draining || request.url === '/health/live') return
    reply.header('connection', 'close')
    return sendError(request, reply, new LossServerError('not_ready', 'the server is shutting down; retry on another instance'))
  })
}, { name: 'lifecycle', dependencies: ['errors'] })
