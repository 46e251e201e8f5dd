// GET /health/live (the process answers) and GET /health/ready (every worker has loaded its
// backend and run its warm-up evaluation, and the server is not shutting down).
import type { FastifyInstance } from 'fastify'
import { LossServerError } from '../../../src/errors.ts'
import { sendError } from '../../plugins/errors.ts'

export default async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/live', async () => ({ status: 'live' }))
  app.get('/ready', async (request, reply) => {
    const workers = app.pool.workers()
    if (app.pool.isReady() && !app.lifecycle.draining) return { status: 'ready', backend: app.pool.backend()?.backend, workers }
    const why = app.lifecycle.draining ? 'the server is shutting down' : `workers not warm yet: ${workers.map(w => `${w.index} ${w.state}`).join(', ')}`
    return sendError(request, reply, new LossServerError('not_ready', why))
  })
}
