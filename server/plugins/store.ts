// Task instances as a service (`app.tasks`): the registry restored from --data-dir at
// start (damaged checkpoints are quarantined and logged, the server starts with the rest),
// and the one evaluation path that HTTP (routes/v1/tasks.ts) and WebSocket `task` frames
// share: wire tensors -> prepared request -> the instance's home worker -> answer.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/config.ts'
import { LossServerError } from '../../src/errors.ts'
import { TaskRegistry } from '../../src/store/registry.ts'
import { prepareTaskRequest } from '../../src/store/task-request.ts'
import { decodeTensorTree, encodeTensorTree } from '../../src/wire/tensor-codec.ts'
import type { WireDtype } from '../../src/tensor.ts'
import type { EvaluationResponse } from '../../schemas/response.ts'
import type { EvaluateOptions } from './evaluator.ts'

/** An evaluation body addressed to an instance (HTTP body or stream frame fields). */
export interface TaskEvaluationBody {
  inputs?: unknown
  options?: Record<string, unknown>
  config?: unknown
  params?: unknown
}

export interface TaskService {
  registry: TaskRegistry
  evaluate (id: string, owner: string | null, body: TaskEvaluationBody, opts: EvaluateOptions): Promise<EvaluationResponse>
}

declare module 'fastify' {
  interface FastifyInstance {
    tasks: TaskService
  }
}

export function makeTaskService (registry: TaskRegistry, config: Pick<Config, 'maxElements'>): TaskService {
  const limits = { maxElements: config.maxElements }
  return {
    registry,
    async evaluate (id, owner, body, opts) {
      const meta = registry.meta(id, owner) // 404 before anything is decoded
      for (const key of ['config', 'params'] as const) {
        if (body[key] !== undefined) throw new LossServerError('invalid_body', `'${key}' belongs to task instance ${id} (fixed at creation${key === 'params' ? '; replace them with PUT /v1/tasks/{id}/state' : ''}); send only inputs and options`, [key])
      }
      if (body.inputs === undefined) throw new LossServerError('invalid_body', `'inputs' is required for kind '${meta.kind}'`, ['inputs'])
      const inputs = decodeTensorTree(body.inputs, ['inputs'], limits)
      const { request, update } = prepareTaskRequest(meta, inputs.tensors, body.options)
      const { result, step, meta: runMeta } = await registry.loss(id, owner, request, update, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.owned ? { owned: new Set([opts.owned]) } : {})
      })
      const gradDtype = request.options.grad_dtype as WireDtype | undefined
      return {
        loss: result.loss,
        terms: result.terms,
        ...(result.grads ? { grads: encodeTensorTree(result.grads, gradDtype ?? inputs.dtypes, opts.form) } : {}),
        ...(result.paramGrads ? { param_grads: encodeTensorTree(result.paramGrads, gradDtype ?? 'float32', opts.form) as EvaluationResponse['param_grads'] } : {}),
        ...(result.sampled ? { sampled: result.sampled } : {}),
        step,
        meta: runMeta
      } as EvaluationResponse
    }
  }
}

export default fp(async function store (app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts
  const registry = new TaskRegistry(app.pool, {
    dataDir: config.dataDir,
    checkpointEvery: config.checkpointEvery,
    maxInstances: config.maxInstances,
    maxInstanceBytes: config.maxInstanceBytes
  })
  // fails fast (the app does not start) when the data directory cannot be created or written
  const report = registry.restore()
  for (const q of report.quarantined) app.log.warn({ file: q.file, movedTo: q.movedTo, reason: q.reason }, `damaged task checkpoint ${q.file} set aside: ${q.reason}`)
  if (report.removedTemp.length) app.log.info({ files: report.removedTemp }, 'removed temp files of interrupted checkpoint writes')
  app.log.info({ dataDir: config.dataDir, restored: report.instances.length, quarantined: report.quarantined.length, checkpointEvery: config.checkpointEvery }, 'task instances restored')
  app.decorate('tasks', makeTaskService(registry, config))
}, { name: 'store', dependencies: ['pool'] })
