// A task instance's optimizer: PyTorch's update rules (./adam.ts, ./sgd.ts) plus the
// bookkeeping torch keeps in optimizer.state — per-parameter tensors and a step counter —
// exported and imported by name so that task state can travel as safetensors.
//
// State names: `<param>.exp_avg`, `<param>.exp_avg_sq`, `<param>.max_exp_avg_sq` (adam,
// amsgrad), `<param>.momentum_buffer` (sgd, momentum != 0), and `step`. Before the first
// step only `step` exists: torch creates the per-parameter state lazily, and SGD's momentum
// buffer starts as a copy of the first gradient, so "absent" differs from "zeros".
// A store that keeps parameters and optimizer state in one file namespaces these names.
import { z } from 'zod'
import { optimizerSpec, type OptimizerSpec, type OptimizerSpecInput } from '../../../schemas/optimizer.ts'
import { LossServerError, formatPath, type RequestPath } from '../../errors.ts'
import { sizeOf } from '../../tensor.ts'
import { adamSlots, adamStep } from './adam.ts'
import { sgdSlots, sgdStep } from './sgd.ts'

export const STEP_KEY = 'step'
// torch keeps `step` as a float32 tensor, so `step_t += 1` stops counting at 2^24.
const MAX_STEP = 2 ** 24

export type StateEntry = Float32Array | { shape: readonly number[], data: Float32Array }

export interface Optimizer {
  readonly spec: OptimizerSpec
  /** optimizer steps applied so far (torch's float32 `step`) */
  readonly steps: number
  /** One update of every parameter, in place. `grads` must hold one gradient per parameter. */
  step (params: Record<string, Float32Array>, grads: Record<string, Float32Array>): void
  /** Copies of the state tensors by name (see the file comment). */
  state (): Record<string, Float32Array>
  /** The names state() has after `steps` steps (default: now). */
  stateKeys (steps?: number): string[]
  /** Replaces the state with copies of the given tensors; validates all of them first. */
  loadState (state: Record<string, StateEntry>, path?: RequestPath): void
}

/** Validates an optimizer spec (defaults applied); invalid_config naming the value and path. */
export function parseOptimizerSpec (input: unknown, path: RequestPath = ['optimizer']): OptimizerSpec {
  const r = optimizerSpec.safeParse(input)
  if (r.success) return r.data
  throw specError(r.error, input, path)
}

function specError (err: z.ZodError, input: unknown, prefix: RequestPath): LossServerError {
  const issue = err.issues[0]
  const rel = issue.path.map(p => (typeof p === 'symbol' ? String(p) : p))
  let value: unknown = input
  for (const p of rel) value = value !== null && typeof value === 'object' ? (value as any)[p] : undefined
  const path = [...prefix, ...rel]
  const got = value === undefined ? '' : `, got ${preview(value)}`
  return new LossServerError('invalid_config', `${formatPath(path)}: ${issue.message}${got}`, path)
}

/**
 * The offending value for the message, at most 80 characters: a client's value can be
 * nested thousands deep (JSON.stringify would overflow the stack: a 500 found by the
 * task-route fuzz) or megabytes long.
 */
function preview (value: unknown): string {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = Array.isArray(value) ? 'an array' : `a ${typeof value}`
  }
  return text.length > 80 ? `${text.slice(0, 80)}…` : text
}

function internal (message: string): LossServerError {
  return new LossServerError('internal', `optimizer: ${message}`)
}

export function createOptimizer (specInput: OptimizerSpecInput | OptimizerSpec, paramShapes: Record<string, readonly number[]>): Optimizer {
  const spec = parseOptimizerSpec(specInput)
  const names = Object.keys(paramShapes)
  const sizes = new Map<string, number>()
  for (const name of names) {
    const shape = paramShapes[name]
    if (!Array.isArray(shape) || !shape.every(d => Number.isSafeInteger(d) && d >= 0)) throw internal(`parameter '${name}' has an invalid shape ${JSON.stringify(shape)}`)
    sizes.set(name, sizeOf(shape))
  }
  const slotNames = spec.name === 'adam' ? adamSlots(spec) : sgdSlots(spec)
  let steps = 0
  // slots.get(param)[k] is the tensor named `${param}.${slotNames[k]}`; empty before step 1
  let slots = new Map<string, Float32Array[]>()

  const stateKeys = (at = steps): string[] => {
    const keys = [STEP_KEY]
    if (at > 0) for (const name of names) for (const s of slotNames) keys.push(`${name}.${s}`)
    return keys
  }

  const step = (params: Record<string, Float32Array>, grads: Record<string, Float32Array>): void => {
    for (const name of names) {
      const n = sizes.get(name)!
      const p = Object.hasOwn(params, name) ? params[name] : undefined
      const g = Object.hasOwn(grads, name) ? grads[name] : undefined
      if (!(p instanceof Float32Array) || p.length !== n) throw internal(`parameter '${name}' needs a Float32Array of ${n} elements, got ${p instanceof Float32Array ? p.length : typeof p}`)
      if (!(g instanceof Float32Array) || g.length !== n) throw internal(`gradient of '${name}' needs a Float32Array of ${n} elements, got ${g instanceof Float32Array ? g.length : typeof g}`)
    }
    for (const name of Object.keys(grads)) if (!sizes.has(name)) throw internal(`gradient for unknown parameter '${name}'`)
    const first = steps === 0
    if (first) for (const name of names) slots.set(name, slotNames.map(() => new Float32Array(sizes.get(name)!)))
    steps = Math.fround(steps + 1)
    for (const name of names) {
      const s = slots.get(name)!
      if (spec.name === 'adam') adamStep(spec, params[name], grads[name], s, steps)
      else sgdStep(spec, params[name], grads[name], s, first)
    }
  }

  const state = (): Record<string, Float32Array> => {
    const out: Record<string, Float32Array> = { [STEP_KEY]: Float32Array.of(steps) }
    if (steps > 0) {
      for (const name of names) slotNames.forEach((s, k) => { out[`${name}.${s}`] = slots.get(name)![k].slice() })
    }
    return out
  }

  const loadState = (input: Record<string, StateEntry>, path: RequestPath = ['state']): void => {
    const bad = (key: string, message: string, code: 'invalid_body' | 'non_finite' = 'invalid_body'): LossServerError =>
      new LossServerError(code, `optimizer state '${key}': ${message}`, [...path, key])
    const get = (key: string): { shape?: readonly number[], data: Float32Array } | undefined => {
      if (!Object.hasOwn(input, key)) return undefined
      const e = input[key]
      if (e instanceof Float32Array) return { data: e }
      if (e !== null && typeof e === 'object' && e.data instanceof Float32Array) return e
      throw bad(key, 'expected float32 data')
    }
    const stepEntry = get(STEP_KEY)
    if (!stepEntry) throw bad(STEP_KEY, `missing (the ${spec.name} optimizer's step counter)`)
    if (stepEntry.data.length !== 1) throw bad(STEP_KEY, `expected one element, got ${stepEntry.data.length}`)
    const at = stepEntry.data[0]
    if (!Number.isInteger(at) || at < 0 || at > MAX_STEP) throw bad(STEP_KEY, `expected an integer in [0, ${MAX_STEP}], got ${at}`)
    const expected = stateKeys(at)
    for (const key of Object.keys(input)) {
      if (!expected.includes(key)) throw bad(key, `unexpected for ${spec.name} after ${at} steps; expected ${expected.join(', ')}`)
    }
    const loaded = new Map<string, Float32Array[]>()
    if (at > 0) {
      for (const name of names) {
        const n = sizes.get(name)!
        loaded.set(name, slotNames.map(s => {
          const key = `${name}.${s}`
          const e = get(key)
          if (!e) throw bad(key, `missing (${spec.name} after ${at} steps)`)
          if (e.data.length !== n) throw bad(key, `expected ${n} elements like '${name}' [${paramShapes[name].join(', ')}], got ${e.data.length}`)
          if (e.shape && (e.shape.length !== paramShapes[name].length || e.shape.some((d, i) => d !== paramShapes[name][i]))) {
            throw bad(key, `expected shape [${paramShapes[name].join(', ')}] like '${name}', got [${e.shape.join(', ')}]`)
          }
          for (let i = 0; i < n; i++) {
            const v = e.data[i]
            if (!Number.isFinite(v)) throw bad(key, `element ${i} is ${v}`, 'non_finite')
            // sqrt of a negative second moment would be NaN
            if (v < 0 && s !== 'exp_avg' && s !== 'momentum_buffer') throw bad(key, `element ${i} is ${v}; a second moment is >= 0`)
          }
          return e.data.slice()
        }))
      }
    }
    steps = at
    slots = loaded
  }

  return {
    spec,
    get steps () { return steps },
    step,
    state,
    stateKeys,
    loadState
  }
}

export { adamStep, adamSlots } from './adam.ts'
export { sgdStep, sgdSlots } from './sgd.ts'
export type { OptimizerSpec, OptimizerSpecInput } from '../../../schemas/optimizer.ts'
