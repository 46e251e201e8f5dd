// The error body of every 4xx/5xx (API.md "Errors"), also the `error` of a failed stream answer.
import { z } from 'zod'

export const errorDetail = z.object({
  code: z.string().describe('stable code: invalid_body, invalid_tensor, shape_mismatch, non_finite, invalid_config, unknown_kind, too_large, unsupported_media_type, overloaded, not_ready, worker_failed, timeout, internal, ...'),
  message: z.string().describe('what, where and why, naming the offending values'),
  path: z.array(z.union([z.string(), z.number().int()])).optional().describe('where in the request, e.g. ["inputs", "anchor", 1, "shape"]')
}).meta({ id: 'ErrorDetail' })

export const errorBody = z.object({ error: errorDetail }).meta({ id: 'ErrorBody' })

export type ErrorBodyShape = z.output<typeof errorBody>
