// GET /metrics: Prometheus text format (server/plugins/metrics.ts defines what is measured).
import type { FastifyInstance } from 'fastify'

export default async function metricsRoutes (app: FastifyInstance): Promise<void> {
  app.get('/metrics', async (_request, reply) => {
    reply.type(app.metrics.registry.contentType)
    return app.metrics.registry.metrics()
  })
}
