// A prepared request computed on the active backend: what a worker runs (worker.ts). Kept
// apart from evaluate.ts `prepare`, which the main thread loads without tfjs.
import { LossServerError } from '../errors.ts'
import { getTaskKind } from '../tasks/compute-registry.ts'
import type { EvalResult } from '../tasks/types.ts'
import type { PreparedRequest } from './evaluate.ts'

export function evaluate (req: PreparedRequest): EvalResult {
  const kind = getTaskKind(req.kind)
  if (!kind) throw new LossServerError('unknown_kind', `unknown kind '${req.kind}'`, ['kind'])
  return kind.evaluate(req.config, req.inputs, req.params, req.options)
}
