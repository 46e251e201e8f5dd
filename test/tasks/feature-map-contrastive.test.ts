// feature-map-contrastive on every backend: shared fixtures (the Bolts docstring example among
// them), the float64 reference on random non-square maps with M != number of comparisons
// (forward, terms and central-difference gradients; tclip 10, 0.5 and null; one- and
// two-way), seeded draws, errors, memory.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { initBackend } from '../../src/compute/backend.ts'
import { prepare } from '../../src/compute/evaluate.ts'
import { featureMapContrastiveConfig, featureMapContrastiveOptions, parseComparisons } from '../../schemas/kinds/feature-map-contrastive.ts'
import { commonOptions } from '../../schemas/options.ts'
import { featureMapContrastive } from '../../src/tasks/feature-map-contrastive.ts'
import { plan, type MapShapes } from '../../src/tasks/feature-map-plan.ts'
import type { HostTensor } from '../../src/tensor.ts'
import type { EvalResult, Sampled } from '../../src/tasks/types.ts'
import { TEST_BACKENDS } from '../helpers/backends.ts'
import { loadFixtures, relClose, relErrNorm, toHostInputs } from '../helpers/fixtures.ts'
import { throwsCode } from './contrastive-errors.ts'
import { centralDiff, featureMapContrastiveRef, randomTensor, to64, type FmctRef } from './contrastive-reference.ts'

const kind = featureMapContrastive
const optionsSchema = commonOptions.extend(featureMapContrastiveOptions.shape).strict()
const opts = (o: Record<string, unknown> = {}): any => optionsSchema.parse(o)
const cfg = (c: Record<string, unknown> = {}): any => featureMapContrastiveConfig.parse(c)

const fixtures = loadFixtures('feature-map-contrastive')
t.same(fixtures.map(f => f.name).sort(), ['bolts_doctest_fmct', 'fmct_amdim_maps', 'fmct_doc_shapes', 'fmct_one_way'], 'the feature-map-contrastive fixtures are all here')

// Random maps: non-square, different sizes, and a fourth map with other channels that no
// comparison uses (its gradient must be zeros).
const SHAPES = [[3, 4, 2, 3], [3, 4, 3, 1], [3, 4, 1, 1], [3, 2, 2, 2]]
const anchor = SHAPES.map((s, k) => randomTensor(s, 100 + k))
const positive = SHAPES.map((s, k) => randomTensor(s, 200 + k))
const CASES = [
  { name: "'02, 10, 21' two-way, tclip 10, M = 4", config: { comparisons: '02, 10, 21', tclip: 10, bidirectional: true }, options: { seed: 7 }, maps: 4 },
  { name: "'0r, 11' one-way, tclip null, pairs given", config: { comparisons: '0r, 11', tclip: null, bidirectional: false }, options: { seed: 8, pairs: [[0, 2], [1, 1]] }, maps: 4 },
  { name: "'rr, 1r' two-way, tclip 0.5, M = 3", config: { comparisons: 'rr, 1r', tclip: 0.5, bidirectional: true }, options: { seed: 9 }, maps: 3 }
]

/** float64 reference of a result's own draws: loss, terms and gradients by central differences. */
function reference (c: typeof CASES[number], sampled: Sampled): { ref: FmctRef, grads: Float64Array[] } {
  const a64 = anchor.slice(0, c.maps).map(to64)
  const p64 = positive.slice(0, c.maps).map(to64)
  const config = cfg(c.config)
  const f = (): FmctRef => featureMapContrastiveRef(a64, p64, sampled.pairs, sampled.locations, config.tclip, config.bidirectional)
  return { ref: f(), grads: centralDiff(() => f().loss, [...a64.map(x => x.data), ...p64.map(x => x.data)]) }
}
const refCache = new Map<string, { ref: FmctRef, grads: Float64Array[] }>()

const seeded: Record<string, EvalResult> = {}
const DRAW_CONFIG = { comparisons: 'rr, 0r, 11', tclip: 10, bidirectional: true }

for (const backend of TEST_BACKENDS) {
  t.test(`feature-map-contrastive on ${backend}`, async t => {
    await initBackend(backend)

    for (const fx of fixtures) {
      const config = cfg(fx.request.config)
      const inputs = toHostInputs(fx.request.inputs)
      const options = opts(fx.request.options as Record<string, unknown>)
      kind.check(config, inputs, undefined, options)
      const r = kind.evaluate(config, inputs, undefined, options)
      t.ok(relClose(r.loss, fx.expected.loss), `${fx.name}: loss ${r.loss} vs ${fx.expected.loss}`)
      const losses = r.terms.losses as number[]
      const expLosses = fx.expected.terms!.losses as number[]
      t.equal(losses.length, expLosses.length, `${fx.name}: one loss per comparison`)
      expLosses.forEach((e, k) => t.ok(relClose(losses[k], e), `${fx.name}: losses[${k}] ${losses[k]} vs ${e}`))
      t.ok(relClose(r.terms.regularizer as number, fx.expected.terms!.regularizer as number), `${fx.name}: regularizer ${r.terms.regularizer} vs ${fx.expected.terms!.regularizer}`)
      t.same(r.sampled!.pairs, (fx.request.options as any).pairs, `${fx.name}: sampled.pairs are the given pairs`)
      t.same(r.sampled!.locations, (fx.request.options as any).locations, `${fx.name}: sampled.locations are the given locations`)
      for (const side of ['anchor', 'positive']) {
        const gs = r.grads![side] as HostTensor[]
        const exp = fx.expected.grads[side] as any[]
        t.equal(gs.length, exp.length, `${fx.name}: one gradient per ${side} map`)
        exp.forEach((e, k) => {
          t.same(gs[k].shape, e.shape, `${fx.name}: grads.${side}[${k}] shape`)
          const err = relErrNorm(gs[k].data, e.data)
          t.ok(err <= 1e-4, `${fx.name}: grads.${side}[${k}] rel err ${err}`)
        })
      }
    }

    for (const c of CASES) {
      const inputs = { anchor: anchor.slice(0, c.maps), positive: positive.slice(0, c.maps) }
      const config = cfg(c.config)
      const options = opts(c.options)
      kind.check(config, inputs, undefined, options)
      const r = kind.evaluate(config, inputs, undefined, options)
      if (!refCache.has(c.name)) refCache.set(c.name, reference(c, r.sampled!))
      const { ref, grads } = refCache.get(c.name)!
      t.ok(relClose(r.loss, ref.loss), `${c.name}: loss ${r.loss} vs float64 ${ref.loss}`)
      t.ok(ref.losses.every((l, k) => relClose((r.terms.losses as number[])[k], l)), `${c.name}: losses ${JSON.stringify(r.terms.losses)} vs ${JSON.stringify(ref.losses)}`)
      t.ok(relClose(r.terms.regularizer as number, ref.regularizer), `${c.name}: regularizer ${r.terms.regularizer} vs ${ref.regularizer}`)
      const ours = [...(r.grads!.anchor as HostTensor[]), ...(r.grads!.positive as HostTensor[])]
      const errs = ours.map((g, i) => relErrNorm(g.data, grads[i]))
      t.ok(errs.every(e => e <= 1e-4), `${c.name}: gradient rel errs vs central differences ${errs.map(e => e.toExponential(1)).join(', ')}`)
      ours.forEach((g, i) => t.same(g.shape, i < c.maps ? SHAPES[i] : SHAPES[i - c.maps], `${c.name}: gradient ${i} has its input's shape`))
    }
    const one = kind.evaluate(cfg(CASES[0].config), { anchor, positive }, undefined, opts(CASES[0].options))
    t.ok((one.grads!.anchor as HostTensor[])[3].data.every(v => v === 0) && (one.grads!.positive as HostTensor[])[3].data.every(v => v === 0), 'an unused map gets a zero gradient')

    seeded[backend] = kind.evaluate(cfg(DRAW_CONFIG), { anchor: anchor.slice(0, 3), positive: positive.slice(0, 3) }, undefined, opts({ seed: 123 }))

    const unseeded = kind.evaluate(cfg(), { anchor, positive }, undefined, opts())
    const replay = kind.evaluate(cfg(), { anchor, positive }, undefined, opts({ seed: unseeded.sampled!.seed }))
    t.ok(Number.isInteger(unseeded.sampled!.seed) && unseeded.sampled!.seed >= 0 && unseeded.sampled!.seed < 2 ** 32, `without a seed, the drawn seed ${unseeded.sampled!.seed} is reported`)
    t.same(replay.sampled, unseeded.sampled, 'replaying the reported seed gives the same draws')
    t.equal(replay.loss, unseeded.loss, 'and the same loss')

    const noGrad = kind.evaluate(cfg(), { anchor, positive }, undefined, opts({ seed: 5, gradients: false }))
    t.equal(noGrad.grads, undefined, 'gradients: false returns no grads')

    const before = tf.memory().numTensors
    for (let i = 0; i < 100; i++) {
      const c = CASES[i % CASES.length]
      kind.evaluate(cfg(c.config), { anchor: anchor.slice(0, c.maps), positive: positive.slice(0, c.maps) }, undefined, opts({ ...c.options, seed: i, gradients: i % 4 !== 0 }))
    }
    t.equal(tf.memory().numTensors, before, '100 evaluations leave the live tensor count unchanged')
  })
}

t.test('the same seed gives the same draws and loss on every backend', async t => {
  const results = Object.entries(seeded)
  t.equal(results.length, TEST_BACKENDS.length, `a seeded result from each of ${TEST_BACKENDS.join(', ')}`)
  const [first, r0] = results[0]
  for (const [backend, r] of results.slice(1)) {
    t.same(r.sampled, r0.sampled, `${backend} drew what ${first} drew`)
    t.ok(relClose(r.loss, r0.loss), `${backend} loss ${r.loss} vs ${first} ${r0.loss}`)
  }
})

t.test('plan: seeded draws, overrides, r resolution', async t => {
  const shapes: MapShapes = [[4, 3, 7, 7], [4, 3, 5, 5], [4, 3, 1, 1]]
  const config = cfg({ comparisons: 'rr, r0, 12', bidirectional: true })
  const seen = new Set<number>()
  for (let seed = 0; seed < 60; seed++) {
    const s = plan(config, shapes, {}, seed)
    t.ok(s.pairs.every(([a, p]) => a >= 0 && a < 3 && p >= 0 && p < 3), `seed ${seed}: every resolved index is < M`)
    t.ok(s.pairs[1][1] === 0 && s.pairs[2][0] === 1 && s.pairs[2][1] === 2, `seed ${seed}: fixed digits stay`)
    t.ok(s.locations.every((perDir, k) => perDir.length === 2 && perDir.every(locs => locs.length === 4 && locs.every(l => l >= 0 && l < shapes[s.pairs[k][0]][2] * shapes[s.pairs[k][0]][3]))), `seed ${seed}: b locations per direction inside the sampled map`)
    seen.add(s.pairs[0][0])
  }
  t.same([...seen].sort(), [0, 1, 2], "'r' draws every map index over 60 seeds")
  t.same(plan(config, shapes, {}, 42), plan(config, shapes, {}, 42), 'same seed, same draws')
  t.notSame(plan(config, shapes, {}, 1).locations, plan(config, shapes, {}, 2).locations, 'different seeds, different locations')
  const pairs: Array<[number, number]> = [[2, 1], [0, 0], [1, 2]]
  t.same(plan(config, shapes, { pairs }, 3).pairs, pairs, 'options.pairs replaces the draws')
  const locations = [[[0, 0, 0, 0], [0, 0, 0, 0]], [[1, 2, 3, 4], [5, 6, 7, 8]], [[24, 0, 1, 2], [3, 4, 5, 6]]]
  const withLocs = plan(config, shapes, { pairs, locations }, 3)
  t.same(withLocs.locations, locations, 'options.locations replaces the draws')
  t.equal(withLocs.seed, 3, 'the seed is reported')
  const oneWay = plan(cfg({ comparisons: '00', bidirectional: false }), shapes, {}, 3)
  t.equal(oneWay.locations[0].length, 1, 'one-way comparisons sample one direction')

  // A drawn pair can compare maps of different channels: evaluate reports it, naming the draw.
  const mixed: MapShapes = [[2, 4, 2, 2], [2, 3, 2, 2]]
  let caught: any
  for (let seed = 0; seed < 20 && !caught; seed++) {
    try { plan(cfg({ comparisons: 'r0' }), mixed, {}, seed) } catch (err) { caught = err }
  }
  t.equal(caught?.code, 'shape_mismatch', 'a drawn channel mismatch is a shape_mismatch')
  t.match(caught?.message, /anchor\[1\] \(c = 3\).*positive\[0\] \(c = 4\)/, 'naming both maps and channels')
})

t.test('feature-map-contrastive schemas', async t => {
  t.same(cfg(), { comparisons: '00, 11', tclip: 10, bidirectional: true }, 'Bolts defaults')
  t.same(cfg({ tclip: null }).tclip, null, 'tclip null = no clipping')
  for (const bad of [{ tclip: 0 }, { bidirectional: 'yes' }, { comparisons: 1 }, { comparison: '00' }]) {
    t.notOk(featureMapContrastiveConfig.safeParse(bad).success, `rejects config ${JSON.stringify(bad)}`)
  }
  t.same(parseComparisons(' 01 ,r1,  rr '), { ok: true, tokens: [[0, 1], ['r', 1], ['r', 'r']] }, 'tokens are trimmed; "01" means (0, 1)')
  for (const bad of ['012', '0', '0x', '0 1', '01,', '', '-1']) {
    t.notOk(parseComparisons(bad).ok, `rejects comparisons '${bad}'`)
  }
  const x = (shape: number[]): any => ({ shape, data: new Float32Array(shape.reduce((a, v) => a * v, 1)) })
  const inputs = { anchor: [x([2, 3, 2, 2]), x([2, 3, 2, 2])], positive: [x([2, 3, 2, 2]), x([2, 3, 2, 2])] }
  throwsCode(t, () => prepare('feature-map-contrastive', { config: { comparisons: '00, 1x' }, inputs }), 'invalid_config', ['config', 'comparisons'], /'1x'/, 'bad token via prepare')
  throwsCode(t, () => prepare('feature-map-contrastive', { config: { tclip: -1 }, inputs }), 'invalid_config', ['config', 'tclip'], /tclip/, 'negative tclip via prepare')
  throwsCode(t, () => prepare('feature-map-contrastive', { config: { extra: 1 }, inputs }), 'invalid_config', ['config'], /extra/, 'unknown config key via prepare')
  throwsCode(t, () => prepare('feature-map-contrastive', { inputs, options: { locations: [[[0, -1]]] } }), 'invalid_body', ['options', 'locations', 0, 0, 1], /locations/, 'negative location via prepare')
  throwsCode(t, () => prepare('feature-map-contrastive', { inputs, options: { pairs: [[0, 1.5]] } }), 'invalid_body', ['options', 'pairs', 0, 1], /pairs/, 'fractional pair via prepare')
  t.doesNotThrow(() => prepare('feature-map-contrastive', { inputs, options: { seed: 1 } }), 'a valid request passes prepare')
})

t.test('feature-map-contrastive check errors', async t => {
  const x = (shape: number[]): HostTensor => ({ shape, data: new Float32Array(shape.reduce((a, v) => a * v, 1)) })
  const maps = (shapes: number[][]): HostTensor[] => shapes.map(x)
  const two = (): any => ({ anchor: maps([[2, 3, 2, 2], [2, 3, 3, 1]]), positive: maps([[2, 3, 2, 2], [2, 3, 3, 1]]) })
  const check = (config: Record<string, unknown>, inputs: any, options: Record<string, unknown> = {}, params?: any): void =>
    kind.check({ comparisons: '00, 11', tclip: 10, bidirectional: true, ...config } as any, inputs, params, opts(options))

  throwsCode(t, () => check({ comparisons: '00, 1x' }, two()), 'invalid_config', ['config', 'comparisons'], /'1x'/, 'bad comparisons token')
  throwsCode(t, () => check({ comparisons: '00, 012' }, two()), 'invalid_config', ['config', 'comparisons'], /'012'/, 'three-character token')
  throwsCode(t, () => check({ comparisons: '02' }, two()), 'invalid_config', ['config', 'comparisons'], /map 2.*M = 2/, 'comparison index >= M')
  throwsCode(t, () => check({ comparisons: '01' }, { anchor: maps([[2, 3, 2, 2], [2, 5, 2, 2]]), positive: maps([[2, 3, 2, 2], [2, 5, 2, 2]]) }), 'shape_mismatch', ['inputs', 'positive', 1, 'shape'], /anchor\[0\] \(c = 3\).*positive\[1\] \(c = 5\)/, 'channel mismatch between compared maps')
  throwsCode(t, () => check({}, { anchor: maps([[2, 3, 2, 2], [2, 3, 3]]), positive: maps([[2, 3, 2, 2], [2, 3, 3]]) }), 'invalid_tensor', ['inputs', 'anchor', 1, 'shape'], /rank 4.*\[2, 3, 3\]/, 'rank not 4')
  throwsCode(t, () => check({}, { anchor: maps([[2, 3, 2, 2], [2, 3, 3, 1]]), positive: maps([[2, 3, 2, 2], [2, 3, 1, 3]]) }), 'shape_mismatch', ['inputs', 'positive', 1, 'shape'], /\[2, 3, 1, 3\].*\[2, 3, 3, 1\]/, 'anchor/positive shapes differ')
  throwsCode(t, () => check({}, { anchor: maps([[2, 3, 2, 2], [3, 3, 2, 2]]), positive: maps([[2, 3, 2, 2], [3, 3, 2, 2]]) }), 'shape_mismatch', ['inputs', 'anchor', 1, 'shape'], /batch size 3.*2/, 'b differs between maps')
  throwsCode(t, () => check({}, { anchor: maps([[1, 3, 2, 2]]), positive: maps([[1, 3, 2, 2]]) }), 'invalid_config', ['inputs', 'anchor', 0, 'shape'], /b = 1/, 'b = 1')
  throwsCode(t, () => check({}, { anchor: [], positive: [] }), 'invalid_body', ['inputs', 'anchor'], /empty/, 'empty anchor list')
  throwsCode(t, () => check({}, { anchor: maps([[2, 3, 2, 2], [2, 3, 3, 1]]), positive: maps([[2, 3, 2, 2]]) }), 'shape_mismatch', ['inputs', 'positive'], /1 maps.*2/, 'positive has fewer maps')
  throwsCode(t, () => check({}, two(), {}, { w: x([1]) }), 'invalid_body', ['params'], /feature-map-contrastive/, 'params given')

  throwsCode(t, () => check({ comparisons: '0r, 11' }, two(), { pairs: [[0, 1]] }), 'invalid_config', ['options', 'pairs'], /1 pairs.*2/, 'pairs length differs from comparisons')
  throwsCode(t, () => check({ comparisons: '0r, 11' }, two(), { pairs: [[1, 1], [1, 1]] }), 'invalid_config', ['options', 'pairs', 0, 0], /\[1, 1\].*'0r'.*fixed to 0/, 'a pair contradicts a fixed digit')
  throwsCode(t, () => check({ comparisons: '0r, 11' }, two(), { pairs: [[0, 2], [1, 1]] }), 'invalid_config', ['options', 'pairs', 0, 1], /= 2.*M = 2/, 'a pair index >= M')
  t.doesNotThrow(() => check({ comparisons: '0r, 11' }, two(), { pairs: [[0, 1], [1, 1]] }), "'r' positions accept any index < M")

  const locs = [[[0, 1], [2, 3]], [[0, 1], [2, 1]]]
  t.doesNotThrow(() => check({}, two(), { locations: locs }), 'valid locations pass')
  throwsCode(t, () => check({}, two(), { locations: [locs[0]] }), 'invalid_config', ['options', 'locations'], /1 entries.*2 comparisons/, 'locations: one entry per comparison')
  throwsCode(t, () => check({}, two(), { locations: [locs[0], [[0, 1]]] }), 'invalid_config', ['options', 'locations', 1], /1 directions.*2/, 'locations: one list per direction')
  throwsCode(t, () => check({ bidirectional: false }, two(), { locations: locs }), 'invalid_config', ['options', 'locations', 0], /2 directions.*1/, 'locations: one-way has one direction')
  throwsCode(t, () => check({}, two(), { locations: [locs[0], [[0, 1, 2], [0, 1]]] }), 'invalid_config', ['options', 'locations', 1, 0], /3 locations.*b = 2/, 'locations: b per direction')
  throwsCode(t, () => check({}, two(), { locations: [locs[0], [[0, 1], [2, 3]]] }), 'invalid_config', ['options', 'locations', 1, 1, 1], /= 3.*positive\[1\] is 3x1/, 'a location >= h*w of the sampled map')
})
