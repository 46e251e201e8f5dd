// A task instance as one safetensors file (src/store/safetensors.ts), used three ways:
//  - the checkpoint on disk (<data-dir>/<id>.safetensors): parameters, optimizer state and
//    the instance's description, so one atomic rename commits all of it at once (two files,
//    tensors and JSON, could be caught half-renamed by a crash);
//  - GET /v1/tasks/{id}/state: the same without the private fields (id, owner);
//  - PUT /v1/tasks/{id}/state: a file from us or from Python, e.g.
//    safetensors.torch.save_file(cpc_task.state_dict(), path).
// Names: parameters by their PyTorch state_dict() key (target_cnn.weight, ...), optimizer
// state as `optimizer.` + the names of src/tasks/optimizers/index.ts (`optimizer.step`, a
// scalar like torch's, and `optimizer.<param>.exp_avg`, ...). Metadata values are strings
// (the format allows nothing else): kind, config (JSON), step, optimizer (JSON or "null").
import { LossServerError, type RequestPath } from '../errors.ts'
import { parseOptimizerSpec, createOptimizer, STEP_KEY, type OptimizerSpec } from '../tasks/optimizers/index.ts'
import { getKind } from '../tasks/registry.ts'
import { firstNonFinite } from '../compute/finite.ts'
import { isTaskId } from './ids.ts'
import { paramShapes, shapeMap, type InstanceMeta, type ParamShape } from './instance.ts'
import { readSafetensors, writeSafetensors, type ReadTensor, type TensorToWrite } from './safetensors.ts'

export const FORMAT = 'ssl-loss-server/task-state/1'
export const OPT_PREFIX = 'optimizer.'

/** Parameters and optimizer state as float32 host arrays. */
export interface InstanceState {
  params: Record<string, Float32Array>
  /** Optimizer.state(): `step` and the per-parameter tensors; absent without an optimizer */
  optimizer?: Record<string, Float32Array>
  step: number
}

export interface EncodeOptions {
  /** include the optimizer state (checkpoints always do) */
  optimizer: boolean
  /** add the private fields a checkpoint needs to restore the instance (id, owner, created_at, seed) */
  checkpoint: boolean
}

export function encodeStateFile (meta: InstanceMeta, state: InstanceState, opts: EncodeOptions): Buffer {
  const shapes = shapeMap(paramShapes(meta.kind, meta.config))
  const tensors: Record<string, TensorToWrite> = {}
  for (const [name, shape] of Object.entries(shapes)) tensors[name] = { dtype: 'F32', shape, data: state.params[name] }
  if (opts.optimizer && state.optimizer) {
    for (const [key, data] of Object.entries(state.optimizer)) {
      const shape = key === STEP_KEY ? [] : shapes[key.slice(0, key.lastIndexOf('.'))]
      tensors[OPT_PREFIX + key] = { dtype: 'F32', shape, data }
    }
  }
  const metadata: Record<string, string> = {
    format: FORMAT,
    kind: meta.kind,
    config: JSON.stringify(meta.config),
    step: String(state.step),
    optimizer: JSON.stringify(meta.optimizer)
  }
  if (opts.checkpoint) {
    metadata.id = meta.id
    metadata.owner = meta.owner ?? ''
    metadata.created_at = meta.created_at
    metadata.seed = String(meta.seed)
  }
  return writeSafetensors(tensors, metadata)
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`

/** Splits a file's tensors into parameters and optimizer entries (prefix removed). */
function split (tensors: Record<string, ReadTensor>): { params: Record<string, ReadTensor>, optimizer: Record<string, ReadTensor> } {
  const params = Object.create(null) as Record<string, ReadTensor>
  const optimizer = Object.create(null) as Record<string, ReadTensor>
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith(OPT_PREFIX)) optimizer[name.slice(OPT_PREFIX.length)] = t
    else params[name] = t
  }
  return { params, optimizer }
}

/** Exactly the expected parameters, each with its shape and finite values; copies them. */
function takeParams (shapes: ParamShape[], given: Record<string, ReadTensor>, base: RequestPath): Record<string, Float32Array> {
  const expected = new Map(shapes.map(s => [s.name, s.shape]))
  for (const name of Object.keys(given)) {
    if (!expected.has(name)) {
      const hint = shapes.length ? `expected the state_dict() keys ${shapes[0].name}, ..., ${shapes[shapes.length - 1].name} (${shapes.length} tensors)` : 'this kind holds no parameters'
      throw new LossServerError('invalid_body', `unexpected tensor '${name}'; ${hint}`, [...base, name])
    }
  }
  const out: Record<string, Float32Array> = {}
  for (const { name, shape } of shapes) {
    const t = given[name]
    if (t === undefined) throw new LossServerError('invalid_body', `missing tensor '${name}' (shape ${fmt(shape)})`, [...base, name])
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new LossServerError('shape_mismatch', `tensor '${name}' must have shape ${fmt(shape)} for this instance's config, got ${fmt(t.shape)}`, [...base, name, 'shape'])
    }
    const bad = firstNonFinite(t.data)
    if (bad >= 0) throw new LossServerError('non_finite', `tensor '${name}' has ${t.data[bad]} at flat index ${bad}`, [...base, name, 'data', bad])
    out[name] = t.data.slice() // a buffer of its own (the file's buffer is not kept)
  }
  return out
}

/**
 * Validates optimizer entries with the optimizer's own loader (names, shapes, finiteness,
 * step counter) and returns Optimizer.state() of the result.
 */
function takeOptimizer (spec: OptimizerSpec, shapes: ParamShape[], given: Record<string, ReadTensor>, base: RequestPath): Record<string, Float32Array> {
  const step = given[STEP_KEY]
  if (step !== undefined && step.shape.length > 1) {
    throw new LossServerError('shape_mismatch', `tensor '${OPT_PREFIX}${STEP_KEY}' must be a scalar (shape [] or [1]), got ${fmt(step.shape)}`, [...base, OPT_PREFIX + STEP_KEY, 'shape'])
  }
  const scratch = createOptimizer(spec, shapeMap(shapes))
  const entries = Object.fromEntries(Object.entries(given).map(([k, t]) => [k, k === STEP_KEY ? t.data : { shape: t.shape, data: t.data }]))
  try {
    scratch.loadState(entries, base)
  } catch (err) {
    // name the tensor as it appears in the file
    if (err instanceof LossServerError && err.path && err.path.length > base.length) {
      const key = String(err.path[base.length])
      throw new LossServerError(err.code, err.message.replace(`optimizer state '${key}'`, `tensor '${OPT_PREFIX}${key}'`), [...base, OPT_PREFIX + key])
    }
    throw err
  }
  return scratch.state()
}

export interface ImportedState extends InstanceState {
  /** the file carried optimizer state (otherwise the optimizer starts afresh) */
  hasOptimizer: boolean
}

/**
 * A file sent to PUT /v1/tasks/{id}/state, checked against the instance: every error is a
 * 400 whose path names the tensor (['state', key, ...]). F16/BF16/F64 are converted to
 * float32 by the reader. Without optimizer tensors the optimizer restarts (step 0), as a
 * new torch.optim optimizer over loaded weights would.
 */
export function decodeImport (buf: Uint8Array, meta: InstanceMeta): ImportedState {
  const base: RequestPath = ['state']
  const file = readSafetensors(buf, { path: base })
  const kind = file.metadata.kind
  if (kind !== undefined && kind !== meta.kind) {
    throw new LossServerError('invalid_body', `the file's metadata says kind '${kind}', but instance ${meta.id} is '${meta.kind}'`, [...base, '__metadata__', 'kind'])
  }
  const shapes = paramShapes(meta.kind, meta.config)
  const { params, optimizer } = split(file.tensors)
  const out = takeParams(shapes, params, base)
  const keys = Object.keys(optimizer)
  if (keys.length === 0) return { params: out, step: 0, hasOptimizer: false }
  if (meta.optimizer === null) {
    throw new LossServerError('invalid_body', `tensor '${OPT_PREFIX}${keys[0]}': instance ${meta.id} has no optimizer`, [...base, OPT_PREFIX + keys[0]])
  }
  const state = takeOptimizer(meta.optimizer, shapes, optimizer, base)
  return { params: out, optimizer: state, step: state[STEP_KEY][0], hasOptimizer: true }
}

function damaged (message: string): Error {
  return new Error(message)
}

/**
 * A checkpoint read back: everything is checked (format, description, each tensor against
 * the config, the optimizer state, the step in the metadata against the optimizer's), so a
 * damaged file is refused whole, never half-loaded. Throws an Error whose message is the
 * reason (for the quarantine log).
 */
export function decodeCheckpoint (buf: Uint8Array, expectId: string): { meta: InstanceMeta, state: InstanceState } {
  let file
  try {
    file = readSafetensors(buf, { path: [] })
  } catch (err) {
    throw damaged((err as Error).message)
  }
  const md = file.metadata
  if (md.format !== FORMAT) throw damaged(`metadata format is ${JSON.stringify(md.format)}, expected ${FORMAT}`)
  if (md.id !== expectId || !isTaskId(md.id)) throw damaged(`metadata id ${JSON.stringify(md.id)} does not match the file name (${expectId})`)
  const kind = getKind(md.kind ?? '')
  if (!kind) throw damaged(`metadata kind ${JSON.stringify(md.kind)} is not a kind`)
  const json = (key: string): unknown => {
    try {
      return JSON.parse(md[key] ?? '')
    } catch {
      throw damaged(`metadata ${key} is not JSON: ${JSON.stringify(md[key])?.slice(0, 80)}`)
    }
  }
  const config = kind.configSchema.safeParse(json('config'))
  if (!config.success) throw damaged(`metadata config is not a valid ${kind.name} config: ${config.error.issues[0].message}`)
  const optimizerJson = json('optimizer')
  let optimizer: OptimizerSpec | null = null
  if (optimizerJson !== null) {
    try {
      optimizer = parseOptimizerSpec(optimizerJson)
    } catch (err) {
      throw damaged(`metadata optimizer: ${(err as Error).message}`)
    }
  }
  const owner = md.owner ?? ''
  if (owner !== '' && !/^[0-9a-f]{64}$/.test(owner)) throw damaged('metadata owner is not a SHA-256 digest')
  const seed = Number(md.seed)
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xFFFFFFFF) throw damaged(`metadata seed ${JSON.stringify(md.seed)} is not a uint32`)
  if (typeof md.created_at !== 'string' || Number.isNaN(Date.parse(md.created_at))) throw damaged('metadata created_at is not a date')
  const step = Number(md.step)
  if (!Number.isInteger(step) || step < 0) throw damaged(`metadata step ${JSON.stringify(md.step)} is not a step count`)

  const meta: InstanceMeta = { id: md.id, kind: kind.name, config: config.data as Record<string, unknown>, optimizer, owner: owner === '' ? null : owner, created_at: md.created_at, seed }
  const shapes = paramShapes(meta.kind, meta.config)
  const { params, optimizer: optEntries } = split(file.tensors)
  try {
    const p = takeParams(shapes, params, [])
    if (optimizer === null) {
      if (Object.keys(optEntries).length > 0) throw damaged('optimizer tensors in a checkpoint of an instance without optimizer')
      if (step !== 0) throw damaged(`metadata step ${step} but the instance has no optimizer`)
      return { meta, state: { params: p, step: 0 } }
    }
    const state = takeOptimizer(optimizer, shapes, optEntries, [])
    if (state[STEP_KEY][0] !== step) throw damaged(`metadata step ${step} disagrees with the optimizer's step ${state[STEP_KEY][0]}`)
    return { meta, state: { params: p, optimizer: state, step } }
  } catch (err) {
    throw damaged((err as Error).message)
  }
}
