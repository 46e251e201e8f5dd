// The body of an evaluation (API.md "Request body of an evaluation"), the one schema for HTTP
// bodies and WebSocket frames (schemas/stream.ts extends it). Tensors are described by
// schemas/tensor.ts; at the edge their contents are checked by the wire codec
// (src/wire/tensor-codec.ts), which checks sizes before it allocates anything, so the
// envelope that validates a body takes each tensor as it comes.
import { z } from 'zod'
import { tensorListSchema, tensorSchema } from './tensor.ts'

export const KIND_NAMES = ['feature-map-contrastive', 'cpc', 'amdim-nce', 'nt-xent'] as const
export const kindName = z.enum(KIND_NAMES).describe('the loss to evaluate')

const object = z.record(z.string(), z.unknown())

/** The fields of an evaluation body, with `tensor` standing for one tensor's schema. */
export function evaluationFields<T extends z.ZodType> (tensor: T) {
  return {
    config: object.optional().describe("the kind's hyper-parameters; absent fields take Lightning Bolts' defaults"),
    inputs: z.record(z.string(), z.union([tensor, z.array(tensor)])).describe("the kind's input tensors by name; feature maps are lists"),
    params: z.record(z.string(), tensor).optional().describe('cpc: the task parameters by PyTorch state_dict() key'),
    options: object.optional().describe('gradients (true), param_grads (false), grad_dtype, seed, and the kind\'s options')
  }
}

/** What the edge validates: the structure; each tensor goes to the codec. */
export const evaluationEnvelope = z.object(evaluationFields(z.unknown())).strict()

/** The documented contract (OpenAPI), tensors spelled out. */
export const evaluationRequest = z.object({
  ...evaluationFields(tensorSchema),
  inputs: z.record(z.string(), z.union([tensorSchema, tensorListSchema])).describe("the kind's input tensors by name; feature maps are lists")
}).strict().meta({ id: 'EvaluationRequest' })

export type EvaluationEnvelope = z.output<typeof evaluationEnvelope>
