// One evaluation from a validated body to an answer, shared by HTTP and the WebSocket
// stream: wire tensors -> HostTensor (codec, sizes checked before allocating) -> prepare
// (config/options/semantic checks on the main thread) -> a worker -> gradients encoded in
// the dtype of the tensor they belong to (or options.grad_dtype) and in the answer's form.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { LossServerError } from '../../src/errors.ts'
import type { Config } from '../../src/config.ts'
import { prepare } from '../../src/compute/evaluate.ts'
import { getKind, kindNames } from '../../src/tasks/registry.ts'
import { decodeTensorTree, encodeTensorTree, type WireForm } from '../../src/wire/tensor-codec.ts'
import type { WireDtype } from '../../src/tensor.ts'
import type { Params } from '../../src/tasks/types.ts'
import type { WorkerPool } from '../../src/pool/pool.ts'
import type { EvaluationEnvelope } from '../../schemas/request.ts'
import type { EvaluationResponse } from '../../schemas/response.ts'

export interface EvaluateOptions {
  form: WireForm
  signal?: AbortSignal
  /** a body buffer that only this request's tensors view (moved to the worker, not copied) */
  owned?: ArrayBuffer
}

export interface Evaluator {
  evaluate (kind: string, body: EvaluationEnvelope, opts: EvaluateOptions): Promise<EvaluationResponse>
}

export function unknownKind (kind: string): LossServerError {
  return new LossServerError('unknown_kind', `unknown kind '${kind}'; expected one of ${kindNames().join(', ')}`, ['kind'])
}

export function makeEvaluator (pool: WorkerPool, config: Pick<Config, 'maxElements'>): Evaluator {
  const limits = { maxElements: config.maxElements }
  return {
    async evaluate (kind, body, opts) {
      if (!getKind(kind)) throw unknownKind(kind)
      const inputs = decodeTensorTree(body.inputs, ['inputs'], limits)
      const params = body.params === undefined ? undefined : decodeTensorTree(body.params, ['params'], limits, { lists: false })
      const prepared = prepare(kind, {
        inputs: inputs.tensors,
        ...(body.config !== undefined ? { config: body.config } : {}),
        ...(params ? { params: params.tensors as Params } : {}), // lists: false, so one tensor per name
        ...(body.options !== undefined ? { options: body.options } : {})
      })
      const { result, meta } = await pool.run(prepared, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.owned ? { owned: new Set([opts.owned]) } : {})
      })
      const gradDtype = prepared.options.grad_dtype as WireDtype | undefined
      return {
        loss: result.loss,
        terms: result.terms,
        ...(result.grads ? { grads: encodeTensorTree(result.grads, gradDtype ?? inputs.dtypes, opts.form) } : {}),
        ...(result.paramGrads ? { param_grads: encodeTensorTree(result.paramGrads, gradDtype ?? params?.dtypes ?? 'float32', opts.form) as EvaluationResponse['param_grads'] } : {}),
        ...(result.sampled ? { sampled: result.sampled } : {}),
        meta
      } as EvaluationResponse
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    evaluator: Evaluator
  }
}

export default fp(async function evaluator (app: FastifyInstance, opts: { config: Config }) {
  app.decorate('evaluator', makeEvaluator(app.pool, opts.config))
}, { name: 'evaluator', dependencies: ['pool'] })
