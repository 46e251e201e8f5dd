// POST /v1/tasks/{id}/loss on the main thread: the instance supplies kind and config, the
// client inputs and options. Kinds without parameters go through the same prepare() as
// POST /v1/loss/{kind}. cpc's parameters live in the home worker, so prepare()'s
// parameter check cannot run here: the options, the inputs' structure and their finiteness
// are checked here, and z against the config in the worker (src/store/held.ts, with the
// same checkCpc) before anything is computed.
import { LossServerError } from '../errors.ts'
import { checkFiniteTree, checkInputForms, optionsSchemaOf, prepare, zodToError, type PreparedOptions, type PreparedRequest } from '../compute/evaluate.ts'
import { getKind } from '../tasks/registry.ts'
import type { Inputs } from '../tasks/types.ts'
import type { InstanceMeta } from './instance.ts'

export interface TaskRequest {
  request: PreparedRequest
  /** apply one optimizer step: options.update, by default whether the instance has an optimizer */
  update: boolean
}

export function prepareTaskRequest (meta: InstanceMeta, inputs: Inputs, options: unknown): TaskRequest {
  const kind = getKind(meta.kind)!
  let request: PreparedRequest
  if (!kind.hasParams) {
    request = prepare(meta.kind, { config: meta.config, inputs, ...(options !== undefined ? { options } : {}) })
  } else {
    const parsed = optionsSchemaOf(kind).safeParse(options ?? {})
    if (!parsed.success) throw zodToError(parsed.error, ['options'], 'invalid_body')
    checkInputForms(kind, inputs)
    checkFiniteTree(inputs, ['inputs'])
    request = { kind: kind.name, config: meta.config, inputs, options: parsed.data as PreparedOptions }
  }
  const update = request.options.update ?? meta.optimizer !== null
  if (update && meta.optimizer === null) {
    throw new LossServerError('invalid_body', `options.update: task instance ${meta.id} has no optimizer (${kind.hasParams ? 'create it with one' : `kind '${kind.name}' has no parameters`})`, ['options', 'update'])
  }
  return { request, update }
}
