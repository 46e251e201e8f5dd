// POST /v1/tasks/{id}/loss on the main thread: the instance supplies kind and config, the
// client inputs and options. Kinds without parameters go through the same prepare() as
// POST /v1/loss/{kind}. cpc's parameters live in the home worker, so prepare()'s
// parameter check cannot run here: the options, the inputs' structure and their finiteness
// are checked here, and z against the config in the worker (src/store/held.ts, with the
// same checkCpc) before anything is computed.
import { LossServerError } from '../errors.ts'
import { eachTensor, optionsSchemaOf, prepare, zodToError, type PreparedOptions, type PreparedRequest } from '../compute/evaluate.ts'
import { firstNonFinite } from '../compute/finite.ts'
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
    for (const [name, form] of Object.entries(kind.inputs)) {
      const v = inputs[name]
      if (v === undefined) throw new LossServerError('invalid_body', `inputs.${name} is required for kind '${kind.name}'`, ['inputs', name])
      if ((form === 'list') !== Array.isArray(v)) throw new LossServerError('invalid_body', `inputs.${name} must be ${form === 'list' ? 'a list of tensors' : 'one tensor'} for kind '${kind.name}'`, ['inputs', name])
    }
    for (const name of Object.keys(inputs)) {
      if (!(name in kind.inputs)) throw new LossServerError('invalid_body', `unknown input '${name}' for kind '${kind.name}'; expected ${Object.keys(kind.inputs).join(', ')}`, ['inputs', name])
    }
    eachTensor(inputs, ['inputs'], (t, path) => {
      const i = firstNonFinite(t.data)
      if (i >= 0) throw new LossServerError('non_finite', `${path.join('.')} has ${t.data[i]} at flat index ${i}`, [...path, 'data', i])
    })
    request = { kind: kind.name, config: meta.config, inputs, options: parsed.data as PreparedOptions }
  }
  const update = request.options.update ?? meta.optimizer !== null
  if (update && meta.optimizer === null) {
    throw new LossServerError('invalid_body', `options.update: task instance ${meta.id} has no optimizer (${kind.hasParams ? 'create it with one' : `kind '${kind.name}' has no parameters`})`, ['options', 'update'])
  }
  return { request, update }
}
