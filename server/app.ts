// The service as one Fastify plugin (fastify/demo's src/app.ts): third-party plugins and our
// services first, then the routes, where the folder is the URL prefix. Tests build exactly
// this with buildServer(); server/start.ts only adds listen and signals.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { Config } from '../src/config.ts'
import type { WorkerPool } from '../src/pool/pool.ts'
import errors from './plugins/errors.ts'
import lifecycle from './plugins/lifecycle.ts'
import wireBody from './plugins/wire-body.ts'
import pool from './plugins/pool.ts'
import evaluator from './plugins/evaluator.ts'
import metrics from './plugins/metrics.ts'
import websocket from './plugins/websocket.ts'
import auth from './plugins/auth.ts'
import store from './plugins/store.ts'
import security from './plugins/security.ts'
import limits, { httpServerOptions } from './plugins/limits.ts'
import lossRoutes from './routes/v1/loss.ts'
import streamRoutes from './routes/v1/stream.ts'
import taskRoutes from './routes/v1/tasks.ts'
import healthRoutes from './routes/health/index.ts'
import metricsRoutes from './routes/metrics.ts'
import docsRoutes from './routes/docs.ts'

export interface AppOptions {
  config: Config
  /** a pool built by the caller (tests); by default one is made from the config */
  pool?: WorkerPool
}

export async function serviceApp (app: FastifyInstance, opts: AppOptions): Promise<void> {
  const { config } = opts
  await app.register(errors, { bodyLimit: config.bodyLimit })
  await app.register(lifecycle)
  await app.register(security, { corsOrigin: config.corsOrigin })
  await app.register(wireBody, { bodyLimit: config.bodyLimit })
  await app.register(pool, { config, ...(opts.pool ? { pool: opts.pool } : {}) })
  await app.register(evaluator, { config })
  await app.register(auth, { config })
  await app.register(store, { config })
  await app.register(metrics)
  await app.register(limits, { config })
  await app.register(websocket, { maxPayload: config.wsMaxPayload })

  app.addHook('onSend', async (request, reply) => { reply.header('x-request-id', request.id) })

  await app.register(lossRoutes, { prefix: '/v1' })
  await app.register(taskRoutes, { prefix: '/v1', bodyLimit: config.bodyLimit })
  await app.register(streamRoutes, { prefix: '/v1', maxInFlight: config.maxInFlightPerConnection })
  await app.register(healthRoutes, { prefix: '/health' })
  await app.register(metricsRoutes)
  await app.register(docsRoutes)
}

export function serverOptions (config: Config): FastifyServerOptions {
  return {
    // the API key never reaches the log
    logger: { level: config.logLevel, redact: ['req.headers.authorization'] },
    bodyLimit: config.bodyLimit,
    // our own 503 not_ready body while draining (server/plugins/lifecycle.ts)
    return503OnClosing: false,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // slowloris timeouts, keep-alive, the API error body for errors before a request exists
    ...httpServerOptions(config)
  }
}

/** The app as production runs it, not yet listening. */
export async function buildServer (config: Config, opts: Omit<AppOptions, 'config'> = {}): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(config))
  await app.register(fp(serviceApp, { name: 'ssl-loss-server' }), { config, ...opts })
  return app
}
