// Options common to every evaluation (../shared/spec/API.md "Request body of an evaluation").
// Kind-specific options live beside each kind's config in schemas/kinds/.
import { z } from 'zod'

export const wireDtype = z.enum(['float32', 'float16', 'bfloat16', 'float64'])

export const commonOptions = z.object({
  gradients: z.boolean().default(true).describe('return d(loss)/d(inputs)'),
  param_grads: z.boolean().default(false).describe('cpc: return d(loss)/d(params)'),
  grad_dtype: wireDtype.optional().describe('dtype of returned gradients; default: the dtype of the tensor each belongs to'),
  seed: z.number().int().min(0).max(0xFFFFFFFF).optional().describe('uint32; makes random choices reproducible'),
  update: z.boolean().optional().describe('task instances: apply one optimizer step (default true when the instance has an optimizer)')
})
export type CommonOptionsInput = z.input<typeof commonOptions>
