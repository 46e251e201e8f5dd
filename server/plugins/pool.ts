// The worker pool as a service: created from the config (or handed in by a test), closed
// after the last HTTP request has been answered (onClose runs after the server closed).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { childProcessEnv, type Config } from '../../src/config.ts'
import { WorkerPool } from '../../src/pool/pool.ts'
import { placeWorkers } from '../../src/pool/placement.ts'

declare module 'fastify' {
  interface FastifyInstance {
    pool: WorkerPool
  }
}

export function poolFromConfig (config: Config): WorkerPool {
  const placement = placeWorkers({
    backend: config.backend,
    ...(config.workers !== undefined ? { workers: config.workers } : {}),
    cores: config.cores,
    gpuDevices: config.gpuDevices,
    baseEnv: childProcessEnv()
  })
  return new WorkerPool({ placement, queueSize: config.queueSize, timeoutMs: config.requestTimeoutMs })
}

export default fp(async function pool (app: FastifyInstance, opts: { config: Config, pool?: WorkerPool }) {
  const pool = opts.pool ?? poolFromConfig(opts.config)
  pool.on('restart', (index: number) => app.log.warn({ worker: index }, 'worker stopped; replacing it'))
  pool.on('init_failed', (index: number, message: string) => app.log.error({ worker: index }, `worker failed to start: ${message}`))
  app.decorate('pool', pool)
  app.addHook('onClose', async () => { await pool.close() })
}, { name: 'pool' })
