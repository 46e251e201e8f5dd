// Task instances (../shared/spec/API.md "Task instances"): server-held config, parameters
// (cpc) and optimizer. The same schemas validate HTTP bodies and document them (OpenAPI).
import { z } from 'zod'
import { kindName } from './request.ts'
import { optimizerSpec } from './optimizer.ts'
import { tensorSchema } from './tensor.ts'

/** Server-made ids: 't_' and 20 base32 characters (100 random bits). Checked before any use. */
export const TASK_ID = /^t_[a-z2-7]{20}$/
export const taskId = z.string().regex(TASK_ID).describe("a task instance id, e.g. 't_3kq7...' (made by the server)")

const object = z.record(z.string(), z.unknown())

/** POST /v1/tasks, as the edge validates it: config and optimizer go to their own parsers. */
export const createTaskEnvelope = z.strictObject({
  kind: z.string(),
  config: object.optional(),
  seed: z.number().int().min(0).max(0xFFFFFFFF).optional(),
  optimizer: object.optional()
})
export type CreateTaskEnvelope = z.output<typeof createTaskEnvelope>

/** The documented form. */
export const createTaskRequest = z.strictObject({
  kind: kindName,
  config: object.optional().describe("the kind's hyper-parameters (Bolts defaults), fixed for the instance's life"),
  seed: z.number().int().min(0).max(0xFFFFFFFF).optional().describe('uint32: seeds the PyTorch-style U(±1/√fan_in) init of cpc parameters (default: random)'),
  optimizer: optimizerSpec.optional().describe('adam or sgd with torch.optim defaults; only for kinds with parameters (cpc)')
}).meta({ id: 'CreateTaskRequest' })

/** POST /v1/tasks/{id}/loss: config and params come from the instance. */
export const taskLossEnvelope = z.strictObject({
  inputs: z.record(z.string(), z.unknown()),
  options: object.optional()
})
export type TaskLossEnvelope = z.output<typeof taskLossEnvelope>

export const taskLossRequest = z.strictObject({
  inputs: z.record(z.string(), z.union([tensorSchema, z.array(tensorSchema)])).describe("the kind's input tensors"),
  options: object.optional().describe('as for POST /v1/loss/{kind}, plus update (default: true when the instance has an optimizer)')
}).meta({ id: 'TaskLossRequest' })

export const taskInfo = z.object({
  id: taskId,
  kind: kindName,
  config: object.describe('the full config, defaults applied'),
  step: z.number().int().min(0).describe('optimizer steps applied so far'),
  params: z.array(z.object({ name: z.string(), shape: z.array(z.number().int()) })).describe('cpc: parameters in state_dict() order; empty for other kinds'),
  optimizer: optimizerSpec.nullable().describe('the optimizer with every default filled in, or null'),
  created_at: z.string().describe('ISO 8601')
}).meta({ id: 'TaskInfo' })
export type TaskInfo = z.input<typeof taskInfo>

export const taskList = z.object({ tasks: z.array(taskInfo) }).meta({ id: 'TaskList' })

/** GET /v1/tasks/{id}/state?optimizer=true */
export const stateQuery = z.strictObject({
  optimizer: z.enum(['true', 'false', '1', '0']).optional().describe('also export the optimizer state (optimizer.* tensors)')
})
