// The core's entry point on the main thread: `prepare` validates a decoded request (no
// tfjs, cheap, so a bad request never takes a worker slot); a worker computes it with
// compute-request.ts `evaluate` on the active backend. Both raise LossServerError for anything the client did.
import { z } from 'zod'
import { commonOptions } from '../../schemas/options.ts'
import { LossServerError, type RequestPath } from '../errors.ts'
import type { HostTensor } from '../tensor.ts'
import { getKind, kindNames } from '../tasks/registry.ts'
import type { CommonOptions, Inputs, KindName, KindSpec, Params } from '../tasks/types.ts'
import { firstNonFinite } from './finite.ts'

/** A request after the wire codec decoded its tensors to float32 host memory. */
export interface DecodedBody {
  config?: unknown
  inputs?: Inputs
  params?: Params
  options?: unknown
}

export type PreparedOptions = CommonOptions & { grad_dtype?: string, update?: boolean } & Record<string, unknown>

export interface PreparedRequest {
  kind: KindName
  config: any
  inputs: Inputs
  params?: Params
  options: PreparedOptions
}

/** Turns the first zod issue into our error: code, message naming the value, path. */
export function zodToError (err: z.ZodError, prefix: RequestPath, code: 'invalid_config' | 'invalid_body'): LossServerError {
  const issue = err.issues[0]
  const path = [...prefix, ...issue.path.map(p => (typeof p === 'symbol' ? String(p) : p))]
  const where = path.length ? path.join('.') : 'body'
  return new LossServerError(code, `${where}: ${issue.message}`, path)
}

// One merged options schema per kind, built once: zod 4 compiles a schema on its first parse,
// and extend().strict() per request rebuilt and recompiled it every time (prepare of nt-xent
// b 64, quiet: 0.090 -> 0.036 ms median; a fifth of the main thread's time in a loaded profile).
const optionsSchemas = new Map<KindName, z.ZodType>()

/** commonOptions merged with the kind's own options, strict (unknown keys are refused). */
export function optionsSchemaOf (kind: KindSpec): z.ZodType {
  let schema = optionsSchemas.get(kind.name)
  if (!schema) {
    schema = commonOptions.extend(kind.optionsSchema.shape).strict()
    optionsSchemas.set(kind.name, schema)
  }
  return schema
}

export function prepare (kindName: string, body: DecodedBody): PreparedRequest {
  const kind = getKind(kindName)
  if (!kind) throw new LossServerError('unknown_kind', `unknown kind '${kindName}'; expected one of ${kindNames().join(', ')}`, ['kind'])

  const config = kind.configSchema.safeParse(body.config ?? {})
  if (!config.success) throw zodToError(config.error, ['config'], 'invalid_config')

  const options = optionsSchemaOf(kind).safeParse(body.options ?? {})
  if (!options.success) throw zodToError(options.error, ['options'], 'invalid_body')

  const inputs = body.inputs
  if (inputs === undefined || inputs === null || typeof inputs !== 'object') throw new LossServerError('invalid_body', `'inputs' is required for kind '${kind.name}'`, ['inputs'])
  checkInputForms(kind, inputs)
  if (body.params !== undefined && !kind.hasParams) throw new LossServerError('invalid_body', `kind '${kind.name}' takes no params`, ['params'])

  checkFiniteTree(inputs, ['inputs'])
  if (body.params) checkFiniteTree(body.params, ['params'])

  kind.check(config.data, inputs, body.params, options.data as PreparedOptions)
  return { kind: kind.name, config: config.data, inputs, ...(body.params ? { params: body.params } : {}), options: options.data as PreparedOptions }
}

/** Every input the kind takes is there, in its form (one tensor or a list), and no other. */
export function checkInputForms (kind: KindSpec, inputs: Inputs): void {
  for (const [name, form] of Object.entries(kind.inputs)) {
    const v = inputs[name]
    if (v === undefined) throw new LossServerError('invalid_body', `inputs.${name} is required for kind '${kind.name}'`, ['inputs', name])
    if (form === 'list' && !Array.isArray(v)) throw new LossServerError('invalid_body', `inputs.${name} must be a list of tensors for kind '${kind.name}'`, ['inputs', name])
    if (form === 'tensor' && Array.isArray(v)) throw new LossServerError('invalid_body', `inputs.${name} must be one tensor for kind '${kind.name}', not a list`, ['inputs', name])
  }
  for (const name of Object.keys(inputs)) {
    if (!(name in kind.inputs)) throw new LossServerError('invalid_body', `unknown input '${name}' for kind '${kind.name}'; expected ${Object.keys(kind.inputs).join(', ')}`, ['inputs', name])
  }
}

/** The first NaN or ±Infinity of a tree of tensors is non_finite, naming its path and element. */
export function checkFiniteTree (tree: Record<string, HostTensor | HostTensor[]>, prefix: RequestPath): void {
  eachTensor(tree, prefix, checkFinite)
}

function eachTensor (tree: Record<string, HostTensor | HostTensor[]>, prefix: RequestPath, fn: (t: HostTensor, path: RequestPath) => void): void {
  for (const [name, v] of Object.entries(tree)) {
    if (Array.isArray(v)) v.forEach((t, i) => fn(t, [...prefix, name, i]))
    else fn(v, [...prefix, name])
  }
}

function checkFinite (t: HostTensor, path: RequestPath): void {
  const i = firstNonFinite(t.data)
  if (i < 0) return
  const v = t.data[i]
  const what = Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'
  const index: number[] = []
  let rest = i
  for (let d = t.shape.length - 1; d >= 0; d--) { index.unshift(rest % t.shape[d]); rest = Math.floor(rest / t.shape[d]) }
  const where = path.map(p => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').slice(1)
  throw new LossServerError('non_finite', `${where} has ${what} at flat index ${i} (element [${index.join(', ')}])`, [...path, 'data', i])
}
