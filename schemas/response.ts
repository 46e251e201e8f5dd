// The answer of an evaluation (API.md "Response of an evaluation").
import { z } from 'zod'
import { tensorSchema } from './tensor.ts'

export const evaluationMeta = z.object({
  backend: z.string().describe('the tfjs backend that computed it: tensorflow, tensorflow-gpu, wasm, cpu'),
  worker: z.number().int().min(0).describe('index of the worker that computed it'),
  queue_ms: z.number().min(0).describe('time waiting for a worker'),
  compute_ms: z.number().min(0).describe('time inside the worker')
}).meta({ id: 'EvaluationMeta' })

export const sampled = z.object({
  pairs: z.array(z.tuple([z.number().int(), z.number().int()])).describe('[ai, pi] per comparison, after resolving r'),
  locations: z.array(z.array(z.array(z.number().int()))).describe('per comparison, per direction, b flat indices y*w + x'),
  seed: z.number().int().optional().describe('the seed of the draws (given or drawn): send it back to reproduce them')
}).meta({ id: 'Sampled' })

export const evaluationResponse = z.object({
  loss: z.number().describe('the scalar that the gradients belong to'),
  terms: z.record(z.string(), z.unknown()).describe("the kind's parts: losses/regularizer, nce/regularizer, steps"),
  grads: z.record(z.string(), z.union([tensorSchema, z.array(tensorSchema)])).optional().describe('d(loss)/d(inputs), same structure as inputs; in the dtype of each input unless options.grad_dtype'),
  param_grads: z.record(z.string(), tensorSchema).optional().describe('cpc with options.param_grads: d(loss)/d(params)'),
  sampled: sampled.optional().describe('feature-map-contrastive: the random choices that were used'),
  step: z.number().int().optional().describe('task instances: optimizer steps applied so far'),
  meta: evaluationMeta
}).meta({ id: 'EvaluationResponse' })

export type EvaluationResponse = z.input<typeof evaluationResponse>
