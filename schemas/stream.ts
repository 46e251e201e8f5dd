// WebSocket frames (API.md "WebSocket stream"): each binary frame is one msgpack map, a
// request with an `id` and a `kind` (or a `task`), answered by one frame with the same id.
import { z } from 'zod'
import { evaluationFields, kindName } from './request.ts'
import { tensorSchema } from './tensor.ts'
import { evaluationResponse } from './response.ts'
import { errorDetail } from './error.ts'

export const frameId = z.union([z.string().max(256), z.number().int()]).describe('chosen by the client; ties the answer to the request')

function frameFields<T extends z.ZodType> (tensor: T) {
  return {
    id: frameId,
    kind: z.string().optional().describe('one of ' + kindName.options.join(', ')),
    task: z.string().optional().describe('a task instance id (instead of kind)'),
    ...evaluationFields(tensor)
  }
}

const exactlyOneTarget = (f: { kind?: string, task?: string }): boolean => (f.kind === undefined) !== (f.task === undefined)
const targetIssue = { message: "a frame names exactly one of 'kind' or 'task'", path: ['kind'] }

/** What the edge validates (tensors go to the codec, as in schemas/request.ts). */
export const streamFrameEnvelope = z.object(frameFields(z.unknown())).strict().refine(exactlyOneTarget, targetIssue)

/** The documented frame. */
export const streamFrame = z.object(frameFields(tensorSchema)).strict().refine(exactlyOneTarget, targetIssue).meta({ id: 'StreamFrame' })

export const streamAnswer = z.union([
  z.object({ id: frameId.nullable(), ok: z.literal(true), result: evaluationResponse }),
  z.object({ id: frameId.nullable().describe('null when the frame was unreadable'), ok: z.literal(false), error: errorDetail })
]).meta({ id: 'StreamAnswer' })

export type StreamFrameEnvelope = z.output<typeof streamFrameEnvelope>
