// Prometheus metrics (prom-client), one registry per app so tests can build several apps in
// one process. What moves: requests by kind, transport and status; queue, compute and total
// latency; queue depth and busy workers; bytes in and out; live tfjs tensors per worker.
// Calls on task instances (POST /v1/tasks/{id}/loss, GET/PUT .../state, stream `task`
// frames) count as requests of the instance's kind, and also in task_calls_total by
// operation. Label values come from the server's tables (kind names, the instance's kind),
// never from a client's string: an unknown kind or instance is `unknown`.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { getKind } from '../../src/tasks/registry.ts'
import type { JobRecord } from '../../src/pool/pool.ts'
import { TASK_ID } from '../../schemas/task.ts'

export interface Metrics {
  registry: Registry
  /**
   * One answered evaluation (HTTP response or stream answer). `target`: a kind name, or a
   * task instance id (a stream `task` frame: labelled with the instance's kind).
   */
  request (target: string, transport: 'http' | 'ws', status: number, seconds: number): void
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

/** HTTP routes of task instances that are counted, and their `op` label. */
const TASK_ROUTES: Record<string, TaskOp> = {
  'POST /v1/tasks/:id/loss': 'loss',
  'GET /v1/tasks/:id/state': 'state_export',
  'PUT /v1/tasks/:id/state': 'state_import'
}
type TaskOp = 'loss' | 'state_export' | 'state_import'

export default fp(async function metrics (app: FastifyInstance) {
  const tasks = app.tasks.registry
  /** the instance's kind, whoever owns it; 'unknown' for an id the server does not hold */
  const taskKindLabel = (id: string | undefined): string => kindLabel((id !== undefined && tasks.kindOf(id)) || '')
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
  const taskCalls = new Counter({ name: 'ssl_loss_task_calls_total', help: 'calls on task instances answered, by the instance\'s kind, operation (loss, state_export, state_import), transport and status', labelNames: ['kind', 'op', 'transport', 'status'], registers: [registry] })
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

  const count = (kind: string, transport: 'http' | 'ws', status: number, seconds: number): void => {
    requests.inc({ kind, transport, status: String(status) })
    total.observe({ kind, transport }, seconds)
  }
  const countTask = (id: string | undefined, op: TaskOp, transport: 'http' | 'ws', status: number, seconds: number): void => {
    const kind = taskKindLabel(id)
    count(kind, transport, status, seconds)
    taskCalls.inc({ kind, op, transport, status: String(status) })
  }

  const m: Metrics = {
    registry,
    request (target, transport, status, seconds) {
      if (TASK_ID.test(target)) countTask(target, 'loss', transport, status, seconds)
      else count(kindLabel(target), transport, status, seconds)
    },
    bytes (direction, transport, n) {
      if (n > 0) bytes.inc({ direction, transport }, n)
    }
  }
  app.decorate('metrics', m)

  // HTTP evaluations and instance calls are counted here, whatever answered them (route,
  // error handler, 401/404/413/415).
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url
    const params = request.params as { kind?: string, id?: string } | undefined
    const seconds = reply.elapsedTime / 1000
    if (route === '/v1/loss/:kind' && params?.kind !== undefined) count(kindLabel(params.kind), 'http', reply.statusCode, seconds)
    else {
      const op = TASK_ROUTES[`${request.method} ${route}`]
      if (op === undefined) return
      countTask(params?.id, op, 'http', reply.statusCode, seconds)
    }
    m.bytes('in', 'http', Number(request.headers['content-length'] ?? 0))
    m.bytes('out', 'http', Number(reply.getHeader('content-length') ?? 0))
  })
}, { name: 'metrics', dependencies: ['pool', 'store'] })
