// Evaluation bodies out, answers in: the part shared by HTTP and the stream.
import type { WireDtype } from '../tensor.ts'
import type { WireForm } from '../wire/tensor-codec.ts'
import { LossClientError } from './errors.ts'
import { toWire, treeFromWire, treeToWire } from './tensors.ts'
import type { LossRequest, LossResult } from './types.ts'

/** The API.md body of `req`, tensors in `form` (undefined fields left out). */
export function evaluationBody (req: Partial<LossRequest>, form: WireForm, defaultDtype: WireDtype = 'float32'): Record<string, unknown> {
  const dtype = req.dtype ?? defaultDtype
  const out: Record<string, unknown> = {}
  if (req.config !== undefined) out.config = req.config
  out.inputs = treeToWire(req.inputs ?? {}, form, dtype, ['inputs'])
  if (req.params !== undefined) {
    out.params = Object.fromEntries(Object.entries(req.params).map(([k, t]) => [k, toWire(t, form, 'float32', ['params', k])]))
  }
  if (req.options !== undefined) out.options = req.options
  return out
}

/** A decoded answer body as a LossResult (tensors to float32 host memory). */
export function lossResult (answer: unknown): LossResult {
  if (answer === null || typeof answer !== 'object' || typeof (answer as { loss?: unknown }).loss !== 'number') {
    throw new LossClientError(0, 'invalid_answer', 'the server\'s answer is not an evaluation result (no numeric loss)')
  }
  const a = answer as Record<string, unknown>
  const out = { ...a } as unknown as LossResult
  if (a.grads !== undefined) out.grads = treeFromWire(a.grads, ['grads'])
  if (a.param_grads !== undefined) out.param_grads = treeFromWire(a.param_grads, ['param_grads']) as LossResult['param_grads']
  return out
}
