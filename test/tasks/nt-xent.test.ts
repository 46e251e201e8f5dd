// nt-xent on every backend: shared fixtures, the float64 reference on random inputs (forward and
// central-difference gradients, with and without normalize), huge logits, errors, memory.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { initBackend } from '../../src/compute/backend.ts'
import { prepare } from '../../src/compute/evaluate.ts'
import { ntXentConfig, ntXentOptions } from '../../schemas/kinds/nt-xent.ts'
import { commonOptions } from '../../schemas/options.ts'
import { ntXent } from '../../src/tasks/nt-xent.ts'
import type { HostTensor } from '../../src/tensor.ts'
import { TEST_BACKENDS } from '../helpers/backends.ts'
import { loadFixtures, relClose, relErrNorm, toHostInputs } from '../helpers/fixtures.ts'
import { throwsCode } from './contrastive-errors.ts'
import { centralDiff, ntXentRef, randomTensor, to64 } from './contrastive-reference.ts'

const fixtures = loadFixtures('nt-xent')
const optionsSchema = commonOptions.extend(ntXentOptions.shape).strict()
const opts = (o: Record<string, unknown> = {}): any => optionsSchema.parse(o)

t.same(fixtures.map(f => f.name).sort(), ['nt_xent_cold', 'nt_xent_small'], 'the nt-xent fixtures are all here')

// Random inputs and their float64 reference, computed once.
const b = 5
const d = 7
const o1 = randomTensor([b, d], 11)
const o2 = randomTensor([b, d], 12)
const refs = [false, true].map(normalize => {
  const x1 = to64(o1).data
  const x2 = to64(o2).data
  const f = (): number => ntXentRef(x1, x2, b, d, 0.3, normalize)
  return { normalize, loss: f(), grads: centralDiff(f, [x1, x2]) }
})

// Huge logits: rows of norm 10 at temperature 1e-3 give logits up to 1e5 (Bolts: inf / NaN).
const hot1 = randomTensor([4, 6], 21)
const hot2 = randomTensor([4, 6], 22)
for (const h of [hot1, hot2]) {
  for (let k = 0; k < 4; k++) {
    const row = h.data.subarray(k * 6, (k + 1) * 6)
    const norm = Math.hypot(...row)
    for (let c = 0; c < 6; c++) row[c] = Math.fround(10 * row[c] / norm)
  }
}
const hotRef = ntXentRef(to64(hot1).data, to64(hot2).data, 4, 6, 1e-3)
// Aligned views (out_2 = out_1 + 1% noise): every positive dominates, the loss is tiny and a
// (total - positive) or exp-then-sum form would lose it entirely.
const near2: HostTensor = { shape: [4, 6], data: hot1.data.map((v, i) => Math.fround(v + 0.1 * hot2.data[i] / 10)) }
const nearRef = ntXentRef(to64(hot1).data, to64(near2).data, 4, 6, 2)

// The pass shifts each row by a Cauchy–Schwarz bound h_k = ‖x_k‖·max_{j≠k}‖x_j‖ / T and redoes
// the pass with the exact row max when a row's sum underflows (src/tasks/nt-xent-pass.ts). Both
// paths are checked against float64 central differences: a warm batch (the bound holds) and a
// cold one, rows of norm 3 at T = 0.05, where some row's bound exceeds its largest negative logit
// by more than ln(1e25) (asserted below, so the test keeps covering the exact-max path).
const warm1 = randomTensor([12, 5], 31)
const warm2 = randomTensor([12, 5], 32)
const cold1 = randomTensor([6, 5], 41)
const cold2 = randomTensor([6, 5], 42)
for (const h of [cold1, cold2]) {
  for (let k = 0; k < 6; k++) {
    const row = h.data.subarray(k * 5, (k + 1) * 5)
    const norm = Math.hypot(...row)
    for (let c = 0; c < 5; c++) row[c] = Math.fround(3 * row[c] / norm)
  }
}
function boundSlack (o1: HostTensor, o2: HostTensor, temperature: number): number {
  const [b, d] = o1.shape
  const rows = [...Array.from({ length: b }, (_, k) => o1.data.subarray(k * d, (k + 1) * d)), ...Array.from({ length: b }, (_, k) => o2.data.subarray(k * d, (k + 1) * d))]
  const norms = rows.map(r => Math.hypot(...r))
  let worst = -Infinity
  rows.forEach((r, k) => {
    const bound = norms[k] * Math.max(...norms.filter((_, j) => j !== k)) / temperature
    const largest = Math.max(...rows.filter((_, j) => j !== k && j !== (k + b) % (2 * b)).map(q => r.reduce((a, v, c) => a + v * q[c], 0) / temperature))
    worst = Math.max(worst, bound - largest)
  })
  return worst
}
t.ok(boundSlack(cold1, cold2, 0.05) > Math.log(1e25), `the cold batch underflows the bound shift (slack ${boundSlack(cold1, cold2, 0.05)})`)
t.ok(boundSlack(warm1, warm2, 0.1) < 20, `the warm batch does not (slack ${boundSlack(warm1, warm2, 0.1)})`)
const shiftCases = [
  { name: 'warm b 12, T 0.1, normalize', o1: warm1, o2: warm2, temperature: 0.1, normalize: true },
  { name: 'warm b 12, T 0.1', o1: warm1, o2: warm2, temperature: 0.1, normalize: false },
  { name: 'cold b 6, T 0.05', o1: cold1, o2: cold2, temperature: 0.05, normalize: false }
].map(c => {
  const x1 = to64(c.o1).data
  const x2 = to64(c.o2).data
  const f = (): number => ntXentRef(x1, x2, c.o1.shape[0], c.o1.shape[1], c.temperature, c.normalize)
  return { ...c, loss: f(), grads: centralDiff(f, [x1, x2], 1e-6) }
})

for (const backend of TEST_BACKENDS) {
  t.test(`nt-xent on ${backend}`, async t => {
    await initBackend(backend)

    for (const fx of fixtures) {
      const config = ntXentConfig.parse(fx.request.config ?? {})
      const inputs = toHostInputs(fx.request.inputs)
      const options = opts(fx.request.options as Record<string, unknown>)
      ntXent.check(config, inputs, undefined, options)
      const r = ntXent.evaluate(config, inputs, undefined, options)
      t.ok(relClose(r.loss, fx.expected.loss), `${fx.name}: loss ${r.loss} vs ${fx.expected.loss}`)
      t.same(r.terms, {}, `${fx.name}: no terms`)
      for (const name of ['out_1', 'out_2']) {
        const g = r.grads![name] as HostTensor
        t.same(g.shape, (fx.expected.grads[name] as any).shape, `${fx.name}: grads.${name} shape`)
        t.ok(g.data instanceof Float32Array, `${fx.name}: grads.${name} is float32`)
        const err = relErrNorm(g.data, (fx.expected.grads[name] as any).data)
        t.ok(err <= 1e-4, `${fx.name}: grads.${name} rel err ${err}`)
      }
    }

    for (const ref of refs) {
      const r = ntXent.evaluate({ temperature: 0.3 }, { out_1: o1, out_2: o2 }, undefined, opts({ normalize: ref.normalize }))
      t.ok(relClose(r.loss, ref.loss), `random (normalize ${ref.normalize}): loss ${r.loss} vs float64 ${ref.loss}`)
      const e1 = relErrNorm((r.grads!.out_1 as HostTensor).data, ref.grads[0])
      const e2 = relErrNorm((r.grads!.out_2 as HostTensor).data, ref.grads[1])
      t.ok(e1 <= 1e-4 && e2 <= 1e-4, `random (normalize ${ref.normalize}): gradient rel errs ${e1}, ${e2} vs central differences`)
    }

    const hot = ntXent.evaluate({ temperature: 1e-3 }, { out_1: hot1, out_2: hot2 }, undefined, opts())
    t.ok(Number.isFinite(hot.loss), `huge logits: finite loss ${hot.loss}`)
    // float32 logits of size 1e5 carry ~1e5 * 2^-24 * sqrt(d) of rounding each.
    t.ok(Math.abs(hot.loss - hotRef) <= 1e5 * 1e-6, `huge logits: loss ${hot.loss} vs float64 log-space ${hotRef}`)
    t.ok([hot.grads!.out_1, hot.grads!.out_2].every(g => (g as HostTensor).data.every(Number.isFinite)), 'huge logits: finite gradients')

    const near = ntXent.evaluate({ temperature: 2 }, { out_1: hot1, out_2: near2 }, undefined, opts())
    t.ok(nearRef < 1e-6 && relClose(near.loss, nearRef, 1e-4), `dominant positives: loss ${near.loss} vs float64 ${nearRef}`)

    for (const c of shiftCases) {
      const r = ntXent.evaluate({ temperature: c.temperature }, { out_1: c.o1, out_2: c.o2 }, undefined, opts({ normalize: c.normalize }))
      t.ok(relClose(r.loss, c.loss), `${c.name}: loss ${r.loss} vs float64 ${c.loss}`)
      const e1 = relErrNorm((r.grads!.out_1 as HostTensor).data, c.grads[0])
      const e2 = relErrNorm((r.grads!.out_2 as HostTensor).data, c.grads[1])
      t.ok(e1 <= 1e-4 && e2 <= 1e-4, `${c.name}: gradient rel errs ${e1}, ${e2} vs central differences`)
      const lossOnly = ntXent.evaluate({ temperature: c.temperature }, { out_1: c.o1, out_2: c.o2 }, undefined, opts({ normalize: c.normalize, gradients: false }))
      t.ok(relClose(lossOnly.loss, c.loss), `${c.name}, gradients false: loss ${lossOnly.loss}`)
    }

    // Logits past float32's range: 422 non_finite, never NaN in an answer.
    const huge = { shape: [2, 2], data: Float32Array.from([1e19, 1e19, -1e19, 1e19]) }
    throwsCode(t, () => ntXent.evaluate({ temperature: 0.5 }, { out_1: huge, out_2: huge }, undefined, opts()), 'non_finite', ['inputs'], /overflowed/, 'overflowing logits')

    const noGrad = ntXent.evaluate({ temperature: 0.5 }, { out_1: o1, out_2: o2 }, undefined, opts({ gradients: false }))
    t.equal(noGrad.grads, undefined, 'gradients: false returns no grads')

    const before = tf.memory().numTensors
    for (let i = 0; i < 100; i++) ntXent.evaluate({ temperature: 0.5 }, { out_1: o1, out_2: o2 }, undefined, opts({ normalize: i % 2 === 0, gradients: i % 3 !== 0 }))
    t.equal(tf.memory().numTensors, before, '100 evaluations leave the live tensor count unchanged')
  })
}

t.test('nt-xent config and options schemas', async t => {
  t.same(ntXentConfig.parse({}), { temperature: 0.5 }, 'Bolts default temperature 0.5')
  t.same(ntXentOptions.parse({}), { normalize: false }, 'normalize defaults to false')
  for (const bad of [{ temperature: 0 }, { temperature: -1 }, { temperature: 'hot' }, { temperature: null }, { tau: 0.5 }]) {
    t.notOk(ntXentConfig.safeParse(bad).success, `rejects config ${JSON.stringify(bad)}`)
  }
  const tensor = (shape: number[]): any => ({ shape, data: new Float32Array(shape.reduce((a, x) => a * x, 1)) })
  throwsCode(t, () => prepare('nt-xent', { config: { temperature: -2 }, inputs: { out_1: tensor([2, 2]), out_2: tensor([2, 2]) } }), 'invalid_config', ['config', 'temperature'], /temperature/, 'negative temperature via prepare')
  throwsCode(t, () => prepare('nt-xent', { config: { temperature: 1, extra: 1 }, inputs: { out_1: tensor([2, 2]), out_2: tensor([2, 2]) } }), 'invalid_config', ['config'], /extra/, 'unknown config key via prepare')
  throwsCode(t, () => prepare('nt-xent', { inputs: { out_1: tensor([2, 2]), out_2: tensor([2, 2]) }, options: { normalize: 'yes' } }), 'invalid_body', ['options', 'normalize'], /normalize/, 'bad normalize via prepare')
})

t.test('nt-xent check errors', async t => {
  const x = (shape: number[]): HostTensor => ({ shape, data: new Float32Array(shape.reduce((a, v) => a * v, 1)) })
  const check = (inputs: any, params?: any): void => ntXent.check({ temperature: 0.5 }, inputs, params, opts())
  throwsCode(t, () => check({ out_1: x([2, 3, 1]), out_2: x([2, 3]) }), 'invalid_tensor', ['inputs', 'out_1', 'shape'], /rank 2.*\[2, 3, 1\]/, 'out_1 of rank 3')
  throwsCode(t, () => check({ out_1: x([4, 3]), out_2: x([4, 5]) }), 'shape_mismatch', ['inputs', 'out_2', 'shape'], /\[4, 5\].*\[4, 3\]/, 'out_2 shape differs')
  throwsCode(t, () => check({ out_1: x([1, 3]), out_2: x([1, 3]) }), 'invalid_config', ['inputs', 'out_1', 'shape'], /b = 1/, 'b = 1')
  throwsCode(t, () => check({ out_1: x([2, 0]), out_2: x([2, 0]) }), 'invalid_tensor', ['inputs', 'out_1', 'shape'], /\[2, 0\]/, 'd = 0')
  throwsCode(t, () => check({ out_1: x([2, 3]) }), 'invalid_body', ['inputs', 'out_2'], /out_2/, 'out_2 missing')
  throwsCode(t, () => check({ out_1: x([2, 3]), out_2: [x([2, 3])] }), 'invalid_body', ['inputs', 'out_2'], /out_2/, 'out_2 given as a list')
  throwsCode(t, () => check({ out_1: x([2, 3]), out_2: x([2, 3]) }, {}), 'invalid_body', ['params'], /nt-xent/, 'params given')
  throwsCode(t, () => check({ out_1: { shape: [2, 3], data: new Float32Array(5) }, out_2: x([2, 3]) }), 'invalid_tensor', ['inputs', 'out_1', 'data'], /6 elements.*5/, 'data length differs from the shape')
  t.doesNotThrow(() => check({ out_1: x([2, 3]), out_2: x([2, 3]) }), 'a valid request passes')
})
