// Prometheus metrics (prom-client), one registry per app so tests can build several apps in
// one process. What moves: requests by kind, transport and status; queue, compute and total
// latency; queue depth and busy workers; bytes in and out; live tfjs tensors per worker.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { getKind } from '../../src/tasks/registry.ts'
import type { JobRecord } from '../../src/pool/pool.ts'

export interface Metrics {
  registry: Registry
  /** one answered evaluation (HTTP response or stream answer) */
  request (kind: string, transport: 'http' | 'ws', status: number, seconds: number): void
  bytes (direction: 'in' | 'out', transport: 'http' | 'ws', n: number): void
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

const LATENCY = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/** A kind label never takes client-chosen values (unbounded label cardinality). */
const kindLabel = (kind: string): string => (getKind(kind) ? kind : 'unknown')

export default fp(async function metrics (app: FastifyInstance) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'ssl_loss_' })
  const pool = app.pool
  const requests = new Counter({ name: 'ssl_loss_requests_total', help: 'evaluations answered, by kind, transport and status', labelNames: ['kind', 'transport', 'status'], registers: [registry] })
  const total = new Histogram({ name: 'ssl_loss_request_seconds', help: 'time from request to answer', labelNames: ['kind', 'transport'], buckets: LATENCY, registers: [registry] })
  const queue = new Histogram({ name: 'ssl_loss_queue_seconds', help: 'time waiting for a worker', labelNames: ['kind'], buckets: LATENCY, registers: [registry] })
  const compute = new Histogram({ name: 'ssl_loss_compute_seconds', help: 'time computing in a worker', labelNames: ['kind'], buckets: LATENCY, registers: [registry] })
  const jobs = new Counter({ name: 'ssl_loss_jobs_total', help: 'jobs the pool finished, by kind and outcome', labelNames: ['kind', 'outcome'], registers: [registry] })
  const restarts = new Counter({ name: 'ssl_loss_worker_restarts_total', help: 'workers replaced after a crash, hang or timeout', registers: [registry] })
  const bytes = new Counter({ name: 'ssl_loss_bytes_total', help: 'body and frame bytes received (in) and sent (out)', labelNames: ['direction', 'transport'], registers: [registry] })
  /* eslint-disable no-new */
  new Gauge({ name: 'ssl_loss_queue_depth', help: 'requests waiting for a worker', registers: [registry], collect () { this.set(pool.queueDepth) } })
  new Gauge({ name: 'ssl_loss_busy_workers', help: 'workers computing now', registers: [registry], collect () { this.set(pool.busyWorkers) } })
  new Gauge({ name: 'ssl_loss_workers', help: 'workers, by state', labelNames: ['state'], registers: [registry], collect () {
    this.reset()
    for (const w of pool.workers()) this.inc({ state: w.state })
  } })
  new Gauge({ name: 'ssl_loss_worker_live_tensors', help: 'live tfjs tensors in each worker after its last job', labelNames: ['worker'], registers: [registry], collect () {
    for (const w of pool.workers()) this.set({ worker: String(w.index) }, w.liveTensors)
  } })

  pool.on('done', (r: JobRecord) => {
    const kind = kindLabel(r.kind)
    jobs.inc({ kind, outcome: r.outcome })
    if (r.outcome === 'ok') {
      queue.observe({ kind }, r.queueMs / 1000)
      compute.observe({ kind }, r.computeMs / 1000)
    }
  })
  pool.on('restart', () => restarts.inc())

  const m: Metrics = {
    registry,
    request (kind, transport, status, seconds) {
      requests.inc({ kind: kindLabel(kind), transport, status: String(status) })
      total.observe({ kind: kindLabel(kind), transport }, seconds)
    },
    bytes (direction, transport, n) {
      if (n > 0) bytes.inc({ direction, transport }, n)
    }
  }
  app.decorate('metrics', m)

  // HTTP evaluations are counted here, whatever answered them (route, error handler, 413/415).
  app.addHook('onResponse', async (request, reply) => {
    const kind = (request.params as { kind?: string } | undefined)?.kind
    if (request.routeOptions.url !== '/v1/loss/:kind' || kind === undefined) return
    m.request(kind, 'http', reply.statusCode, reply.elapsedTime / 1000)
    m.bytes('in', 'http', Number(request.headers['content-length'] ?? 0))
    m.bytes('out', 'http', Number(reply.getHeader('content-length') ?? 0))
  })
}, { name: 'metrics', dependencies: ['pool'] })
