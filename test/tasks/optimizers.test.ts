// Optimizers against PyTorch: multi-step trajectories of several parameter tensors with
// gradients of mixed scales, compared (1) with a float64 replay of the same formulas, always,
// and (2) with torch.optim itself through scripts/optimizer-reference.py when torch imports
// (rel 1e-6: torch's CPU sqrt is not always correctly rounded, so "bitwise" is counted and
// printed, not asserted). Plus the schema, the state export/import and its validation.
import t, { type Test } from 'tap'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LossServerError } from '../../src/errors.ts'
import { Prng } from '../../src/tasks/prng.ts'
import { createOptimizer, parseOptimizerSpec, type Optimizer } from '../../src/tasks/optimizers/index.ts'
import { optimizerSpec, type OptimizerSpec, type OptimizerSpecInput } from '../../schemas/optimizer.ts'
import { hasPythonModules, pythonScript } from '../helpers/python.ts'

const REFERENCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'optimizer-reference.py')
const STEPS = 7
// 30 and 17 elements: more than one AVX512 vector plus a remainder in torch's kernels
const SHAPES: Record<string, number[]> = { 'enc.weight': [3, 2, 5], 'enc.bias': [17], 'head.weight': [4, 3], scale: [1] }

const CASES: OptimizerSpecInput[] = [
  { name: 'adam' },
  { name: 'adam', lr: 0.01, betas: [0.3, 0.99], eps: 1e-6, weight_decay: 0.05, amsgrad: true },
  { name: 'adam', lr: 0.002, betas: [0.8, 0.9], weight_decay: 0.01 },
  { name: 'sgd', lr: 0.05 },
  { name: 'sgd', lr: 0.02, momentum: 0.9, dampening: 0.25, weight_decay: 0.01 },
  { name: 'sgd', lr: 0.01, momentum: 0.7, nesterov: true, weight_decay: 0.001 }
]

function normal (rng: Prng): number {
  // Box-Muller; 1 - u keeps the log finite
  return Math.sqrt(-2 * Math.log(1 - rng.float())) * Math.cos(2 * Math.PI * rng.float())
}

function initialParams (seed: number): Record<string, Float32Array> {
  const rng = new Prng(seed)
  const out: Record<string, Float32Array> = {}
  for (const [name, shape] of Object.entries(SHAPES)) out[name] = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => normal(rng))
  return out
}

/** Per step, per parameter: gradients spanning 1e-4..10 in magnitude, a few exact zeros. */
function gradientSequence (seed: number): Array<Record<string, Float32Array>> {
  const rng = new Prng(seed)
  const scales = [1e-4, 1e-2, 1, 10]
  return Array.from({ length: STEPS }, () => {
    const g: Record<string, Float32Array> = {}
    for (const [name, shape] of Object.entries(SHAPES)) {
      g[name] = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.float() < 0.05 ? 0 : normal(rng) * scales[rng.int(scales.length)])
    }
    return g
  })
}

interface Snapshot { params: Record<string, Float64Array | Float32Array>, state: Record<string, Float64Array | Float32Array> }

/** The same update rules in float64, written from the torch docs' pseudo-code. */
function float64Trajectory (spec: OptimizerSpec, init: Record<string, Float32Array>, grads: Array<Record<string, Float32Array>>): Snapshot[] {
  const p: Record<string, Float64Array> = {}
  const st: Record<string, Float64Array> = {}
  for (const [n, v] of Object.entries(init)) p[n] = Float64Array.from(v)
  const out: Snapshot[] = []
  grads.forEach((gs, k) => {
    const step = k + 1
    for (const n of Object.keys(p)) {
      const len = p[n].length
      if (spec.name === 'adam') {
        const [b1, b2] = spec.betas
        if (k === 0) {
          st[`${n}.exp_avg`] = new Float64Array(len)
          st[`${n}.exp_avg_sq`] = new Float64Array(len)
          if (spec.amsgrad) st[`${n}.max_exp_avg_sq`] = new Float64Array(len)
        }
        const m = st[`${n}.exp_avg`]
        const v = st[`${n}.exp_avg_sq`]
        const vmax = st[`${n}.max_exp_avg_sq`]
        for (let i = 0; i < len; i++) {
          const g = gs[n][i] + spec.weight_decay * p[n][i]
          m[i] = b1 * m[i] + (1 - b1) * g
          v[i] = b2 * v[i] + (1 - b2) * g * g
          let vv = v[i]
          if (vmax) { vmax[i] = Math.max(vmax[i], v[i]); vv = vmax[i] }
          const denom = Math.sqrt(vv) / Math.sqrt(1 - b2 ** step) + spec.eps
          p[n][i] -= (spec.lr / (1 - b1 ** step)) * m[i] / denom
        }
      } else {
        if (k === 0 && spec.momentum !== 0) st[`${n}.momentum_buffer`] = new Float64Array(len)
        const buf = st[`${n}.momentum_buffer`]
        for (let i = 0; i < len; i++) {
          let g = gs[n][i] + spec.weight_decay * p[n][i]
          if (buf) {
            buf[i] = k === 0 ? g : spec.momentum * buf[i] + (1 - spec.dampening) * g
            g = spec.nesterov ? g + spec.momentum * buf[i] : buf[i]
          }
          p[n][i] -= spec.lr * g
        }
      }
    }
    const snapState: Record<string, Float64Array> = { step: Float64Array.of(step) }
    for (const [key, v] of Object.entries(st)) snapState[key] = v.slice()
    const snapParams: Record<string, Float64Array> = {}
    for (const [n, v] of Object.entries(p)) snapParams[n] = v.slice()
    out.push({ params: snapParams, state: snapState })
  })
  return out
}

function ourTrajectory (spec: OptimizerSpecInput, init: Record<string, Float32Array>, grads: Array<Record<string, Float32Array>>): { opt: Optimizer, snaps: Snapshot[] } {
  const opt = createOptimizer(spec, SHAPES)
  const params: Record<string, Float32Array> = {}
  for (const [n, v] of Object.entries(init)) params[n] = v.slice()
  const snaps = grads.map(g => {
    opt.step(params, g)
    const p: Record<string, Float32Array> = {}
    for (const [n, v] of Object.entries(params)) p[n] = v.slice()
    return { params: p, state: opt.state() }
  })
  return { opt, snaps }
}

/** Worst violation of |a - b| <= rel * (|b| + max|b| of the tensor * floor); <= 1 passes. */
function worst (a: ArrayLike<number>, b: ArrayLike<number>, rel: number, floor: number): { ratio: number, index: number, identical: number } {
  let scale = 0
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]))
  let ratio = a.length === b.length ? 0 : Infinity
  let index = -1
  let identical = 0
  for (let i = 0; i < b.length; i++) {
    if (Object.is(Math.fround(a[i]), Math.fround(b[i]))) identical++
    const r = Math.abs(a[i] - b[i]) / (rel * (Math.abs(b[i]) + floor * scale) + 1e-30)
    if (r > ratio) { ratio = r; index = i }
  }
  return { ratio, index, identical }
}

function compareSnapshots (t: Test, ours: Snapshot[], ref: Snapshot[], rel: number, floor: number, label: string): void {
  let elements = 0
  let identical = 0
  let worstSeen = { ratio: 0, where: '' }
  t.equal(ours.length, ref.length, `${label}: ${ref.length} steps`)
  ours.forEach((snap, k) => {
    for (const part of ['params', 'state'] as const) {
      t.same(Object.keys(snap[part]).sort(), Object.keys(ref[k][part]).sort(), `${label} step ${k + 1}: ${part} names`)
      for (const [name, ref_] of Object.entries(ref[k][part])) {
        const w = worst(snap[part][name], ref_, rel, floor)
        elements += ref_.length
        identical += w.identical
        if (w.ratio > worstSeen.ratio) worstSeen = { ratio: w.ratio, where: `step ${k + 1} ${part} ${name}[${w.index}]: ${snap[part][name][w.index]} vs ${ref_[w.index]}` }
      }
    }
  })
  t.comment(`${label}: ${identical}/${elements} elements bit-identical; worst ${worstSeen.ratio.toFixed(3)} of tolerance (${worstSeen.where})`)
  t.ok(worstSeen.ratio <= 1, `${label}: every element within rel ${rel} (worst ${worstSeen.ratio.toFixed(3)} of tolerance at ${worstSeen.where})`)
}

interface Case { input: OptimizerSpecInput, spec: OptimizerSpec, init: Record<string, Float32Array>, grads: Array<Record<string, Float32Array>> }
const cases: Case[] = CASES.map((input, c) => ({ input, spec: parseOptimizerSpec(input), init: initialParams(1000 + c), grads: gradientSequence(2000 + c) }))

// One Python process for every case (importing torch takes seconds); started on first use.
let torchRun: Promise<{ skip?: string, error?: string, version?: string, cases?: Snapshot[][] }> | undefined
function torchTrajectories (): NonNullable<typeof torchRun> {
  torchRun ??= (async () => {
    const body = JSON.stringify({
      cases: cases.map(c => ({
        optimizer: c.spec,
        params: Object.fromEntries(Object.entries(c.init).map(([n, v]) => [n, { shape: SHAPES[n], data: Array.from(v) }])),
        grads: c.grads.map(g => Object.fromEntries(Object.entries(g).map(([n, v]) => [n, Array.from(v)])))
      }))
    })
    const r = await pythonScript(REFERENCE, body)
    if (!r.ok) {
      // missing python or torch: skip with the reason; anything else is a failure
      const avail = await hasPythonModules(['torch'])
      return avail.ok ? { error: `scripts/optimizer-reference.py failed: ${r.reason}` } : { skip: `torch comparison skipped: ${avail.reason}` }
    }
    const out = JSON.parse(r.stdout.toString('utf8')) as { torch: string, cases: Array<Array<{ params: Record<string, number[]>, state: Record<string, number[]> }>> }
    const f32 = (o: Record<string, number[]>): Record<string, Float32Array> => Object.fromEntries(Object.entries(o).map(([n, v]) => [n, Float32Array.from(v)]))
    return { version: out.torch, cases: out.cases.map(steps => steps.map(s => ({ params: f32(s.params), state: f32(s.state) }))) }
  })()
  return torchRun
}

for (const [c, { input, spec, init, grads }] of cases.entries()) {
  const label = JSON.stringify(input)

  t.test(`${label} vs float64 replay`, async t => {
    const { snaps } = ourTrajectory(input, init, grads)
    // float32 vs float64: a few float32 ulps, amplified at most by the sqrt/division
    compareSnapshots(t, snaps, float64Trajectory(spec, init, grads), 2e-5, 1e-3, 'float64')
    // the parameters moved, and not uniformly (the test is not vacuous)
    const moved = snaps[STEPS - 1].params['enc.weight'].map((v, i) => v - init['enc.weight'][i])
    t.ok(moved.some(d => d !== 0) && new Set(moved).size > 5, 'parameters moved by different amounts')
  })

  t.test(`${label} vs torch.optim`, async t => {
    const ref = await torchTrajectories()
    if (ref.skip) { t.comment(ref.skip); t.skip(ref.skip, async () => {}); return }
    t.notOk(ref.error, ref.error ?? 'reference ran')
    if (!ref.cases) return
    const { snaps } = ourTrajectory(input, init, grads)
    compareSnapshots(t, snaps, ref.cases[c], 1e-6, 1e-3, `torch ${ref.version}`)
  })
}

t.test('schema: torch defaults and invalid values', async t => {
  t.same(optimizerSpec.parse({ name: 'adam' }), { name: 'adam', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false })
  t.same(optimizerSpec.parse({ name: 'sgd' }), { name: 'sgd', lr: 1e-3, momentum: 0, dampening: 0, weight_decay: 0, nesterov: false })
  const bad: Array<[unknown, Array<string | number>, RegExp]> = [
    [{ name: 'adam', lr: -1 }, ['optimizer', 'lr'], /got -1/],
    [{ name: 'adam', betas: [0.9, 1] }, ['optimizer', 'betas', 1], /got 1/],
    [{ name: 'adam', eps: -1e-8 }, ['optimizer', 'eps'], /got -1e-8/],
    [{ name: 'adam', momentum: 0.9 }, ['optimizer'], /momentum/],
    [{ name: 'sgd', amsgrad: true }, ['optimizer'], /amsgrad/],
    [{ name: 'sgd', nesterov: true }, ['optimizer', 'nesterov'], /nesterov requires momentum > 0 and dampening 0/],
    [{ name: 'sgd', nesterov: true, momentum: 0.9, dampening: 0.1 }, ['optimizer', 'nesterov'], /dampening/],
    [{ name: 'sgd', momentum: -0.5 }, ['optimizer', 'momentum'], /got -0.5/],
    [{ name: 'rmsprop' }, ['optimizer', 'name'], /adam.*sgd|got "rmsprop"/],
    [{ name: 'adam', amsgrad: 'yes' }, ['optimizer', 'amsgrad'], /got "yes"/]
  ]
  for (const [input, path, msg] of bad) {
    const e = t.throws(() => createOptimizer(input as OptimizerSpecInput, SHAPES)) as unknown
    t.ok(e instanceof LossServerError, `${JSON.stringify(input)} -> LossServerError`)
    t.equal((e as LossServerError).code, 'invalid_config')
    t.same((e as LossServerError).path, path, `${JSON.stringify(input)} path`)
    t.match((e as LossServerError).message, msg)
  }
})

t.test('a deeply nested or huge invalid value is named in at most 80 characters, never a stack overflow', async t => {
  let deep: unknown = 1
  for (let i = 0; i < 5000; i++) deep = [deep]
  const huge = 'x'.repeat(1_000_000)
  for (const [input, path] of [[{ name: 'adam', lr: deep }, ['optimizer', 'lr']], [{ name: 'adam', lr: huge }, ['optimizer', 'lr']]] as const) {
    const e = t.throws(() => createOptimizer(input as unknown as OptimizerSpecInput, SHAPES)) as unknown
    t.ok(e instanceof LossServerError, 'a LossServerError, not a RangeError')
    t.equal((e as LossServerError).code, 'invalid_config')
    t.same((e as LossServerError).path, path)
    t.ok((e as LossServerError).message.length < 200, `short message: ${(e as LossServerError).message.length} chars`)
  }
})

t.test('sgd momentum buffer starts as the first gradient (torch), and state appears after step 1', async t => {
  const opt = createOptimizer({ name: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0.5 }, { w: [2] })
  t.same(Object.keys(opt.state()), ['step'])
  const w = Float32Array.of(1, -1)
  opt.step({ w }, { w: Float32Array.of(2, 4) })
  // buf = g (not (1 - dampening) * g); w -= lr * buf
  t.same(Array.from(opt.state()['w.momentum_buffer']), [2, 4])
  t.same(Array.from(w), [Math.fround(1 - Math.fround(0.1) * 2), Math.fround(-1 - Math.fround(0.1) * 4)])
  opt.step({ w }, { w: Float32Array.of(2, 4) })
  // buf = 0.9 * 2 + 0.5 * 2 = 2.8
  t.ok(Math.abs(opt.state()['w.momentum_buffer'][0] - 2.8) < 1e-6)
  t.equal(opt.steps, 2)
})

t.test('adam first step moves every parameter by about lr against the gradient sign', async t => {
  const opt = createOptimizer({ name: 'adam', lr: 0.01 }, { w: [4] })
  const w = Float32Array.of(0, 0, 0, 0)
  opt.step({ w }, { w: Float32Array.of(3, -0.001, 1e4, 0) })
  // m / sqrt(v) = g / |g| after bias correction; a zero gradient does not move
  t.ok(Math.abs(w[0] + 0.01) < 1e-7 && Math.abs(w[1] - 0.01) < 1e-7 && Math.abs(w[2] + 0.01) < 1e-7, `moved ${Array.from(w)}`)
  t.equal(w[3], 0)
  t.same(Object.keys(opt.state()).sort(), ['step', 'w.exp_avg', 'w.exp_avg_sq'])
})

t.test('state export and import: a resumed trajectory is bit-identical', async t => {
  for (const input of CASES) {
    const init = initialParams(7)
    const grads = gradientSequence(8)
    const whole = ourTrajectory(input, init, grads).snaps[STEPS - 1]
    const first = ourTrajectory(input, init, grads.slice(0, 3))
    const resumed = createOptimizer(input, SHAPES)
    resumed.loadState(first.snaps[2].state as Record<string, Float32Array>)
    t.equal(resumed.steps, 3)
    const params = first.snaps[2].params as Record<string, Float32Array>
    for (const g of grads.slice(3)) resumed.step(params, g)
    t.same(params, whole.params, `${JSON.stringify(input)}: params`)
    t.same(resumed.state(), whole.state, `${JSON.stringify(input)}: state`)
  }
})

t.test('loadState validates every entry before changing anything', async t => {
  const opt = createOptimizer({ name: 'adam', amsgrad: true }, { a: [2, 2], b: [3] })
  const p = { a: new Float32Array(4).fill(1), b: new Float32Array(3).fill(1) }
  opt.step(p, { a: new Float32Array(4).fill(0.5), b: new Float32Array(3).fill(-0.5) })
  const good = opt.state()
  t.same(Object.keys(good).sort(), ['a.exp_avg', 'a.exp_avg_sq', 'a.max_exp_avg_sq', 'b.exp_avg', 'b.exp_avg_sq', 'b.max_exp_avg_sq', 'step'])
  const cases: Array<[string, Record<string, any>, string, string, RegExp]> = [
    ['missing step', { ...good, step: undefined }, 'invalid_body', 'step', /missing/],
    ['fractional step', { ...good, step: Float32Array.of(1.5) }, 'invalid_body', 'step', /1\.5/],
    ['missing slot', { ...good, 'b.exp_avg_sq': undefined }, 'invalid_body', 'b.exp_avg_sq', /missing/],
    ['unknown key', { ...good, 'c.exp_avg': new Float32Array(1) }, 'invalid_body', 'c.exp_avg', /unexpected/],
    ['momentum buffer in adam', { ...good, 'a.momentum_buffer': new Float32Array(4) }, 'invalid_body', 'a.momentum_buffer', /unexpected/],
    ['wrong length', { ...good, 'a.exp_avg': new Float32Array(3) }, 'invalid_body', 'a.exp_avg', /expected 4 elements.*got 3/],
    ['wrong shape', { ...good, 'a.exp_avg': { shape: [4], data: new Float32Array(4) } }, 'invalid_body', 'a.exp_avg', /\[2, 2\].*\[4\]/],
    ['NaN', { ...good, 'b.exp_avg': Float32Array.of(0, NaN, 0) }, 'non_finite', 'b.exp_avg', /element 1 is NaN/],
    ['negative second moment', { ...good, 'b.exp_avg_sq': Float32Array.of(0, -1, 0) }, 'invalid_body', 'b.exp_avg_sq', /-1/]
  ]
  for (const [what, state, code, key, msg] of cases) {
    for (const k of Object.keys(state)) if (state[k] === undefined) delete state[k]
    const e = t.throws(() => opt.loadState(state), what) as LossServerError
    t.equal(e.code, code, `${what}: code`)
    t.same(e.path, ['state', key], `${what}: path`)
    t.match(e.message, msg, `${what}: message`)
  }
  t.same(opt.state(), good, 'state unchanged after the rejected imports')
  // step 0: only the counter
  opt.loadState({ step: Float32Array.of(0) })
  t.same(opt.state(), { step: Float32Array.of(0) })
})

t.test('step() rejects missing or mis-sized gradients as internal errors', async t => {
  const opt = createOptimizer({ name: 'sgd' }, { a: [2] })
  const e1 = t.throws(() => opt.step({ a: new Float32Array(2) }, {})) as LossServerError
  t.equal(e1.code, 'internal')
  t.match(e1.message, /gradient of 'a'/)
  const e2 = t.throws(() => opt.step({ a: new Float32Array(3) }, { a: new Float32Array(2) })) as LossServerError
  t.match(e2.message, /parameter 'a' needs a Float32Array of 2 elements, got 3/)
  const e3 = t.throws(() => opt.step({ a: new Float32Array(2) }, { a: new Float32Array(2), b: new Float32Array(1) })) as LossServerError
  t.match(e3.message, /unknown parameter 'b'/)
  t.equal(opt.steps, 0, 'nothing applied')
})
