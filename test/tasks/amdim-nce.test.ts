// amdim-nce on every backend: shared fixtures, the float64 reference on random inputs (tclip
// 10, 0.5, 40 (above nce-core's FIXED_SHIFT_MAX: the row-max path) and null; forward, terms and central-difference gradients), a dominant partner
// (no cancellation), errors, memory.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { initBackend } from '../../src/compute/backend.ts'
import { prepare } from '../../src/compute/evaluate.ts'
import { amdimNceConfig } from '../../schemas/kinds/amdim-nce.ts'
import { commonOptions } from '../../schemas/options.ts'
import { amdimNce } from '../../src/tasks/amdim-nce.ts'
import type { HostTensor } from '../../src/tensor.ts'
import { TEST_BACKENDS } from '../helpers/backends.ts'
import { loadFixtures, relClose, relErrNorm, toHostInputs } from '../helpers/fixtures.ts'
import { throwsCode } from './contrastive-errors.ts'
import { amdimNceRef, centralDiff, randomTensor, to64 } from './contrastive-reference.ts'

const fixtures = loadFixtures('amdim-nce')
const opts = (o: Record<string, unknown> = {}): any => commonOptions.strict().parse(o)
t.same(fixtures.map(f => f.name), ['amdim_nce_small'], 'the amdim-nce fixtures are all here')

// Random (b, d) anchor and (d, b·L) positive; scale 2 so that tclip 0.5 saturates some scores.
const b = 4
const d = 5
const L = 3
const anchor = randomTensor([b, d], 31, 2)
const positive = randomTensor([d, b * L], 32, 2)
const cases = [10, 0.5, 40, null].map(tclip => {
  const a = to64(anchor).data
  const p = to64(positive).data
  const ref = amdimNceRef(a, p, b, d, L, tclip)
  const f = (): number => { const r = amdimNceRef(a, p, b, d, L, tclip); return r.nce + r.regularizer }
  return { tclip, ref, grads: centralDiff(f, [a, p]) }
})

// The partner dominates: near-orthogonal anchors 5·e_i and partner columns 5(l + 2)·e_i (plus
// 1% noise), so the positives score 25 and 37.5 against negatives near 0 and nce ≈ e^{n − p} is
// ~1e-10; (row total − partner block) in float32 would give 0 or garbage.
const domA = randomTensor([3, 4], 41, 0.01)
const domP = randomTensor([4, 6], 42, 0.01)
for (let i = 0; i < 3; i++) {
  domA.data[i * 4 + i] = 5
  for (let l = 0; l < 2; l++) domP.data[i * 6 + i * 2 + l] = 5 * (l + 2)
}
const domRef = amdimNceRef(to64(domA).data, to64(domP).data, 3, 4, 2, null)

for (const backend of TEST_BACKENDS) {
  t.test(`amdim-nce on ${backend}`, async t => {
    await initBackend(backend)

    for (const fx of fixtures) {
      const config = amdimNceConfig.parse(fx.request.config ?? {})
      const inputs = toHostInputs(fx.request.inputs)
      const options = opts(fx.request.options as Record<string, unknown>)
      amdimNce.check(config, inputs, undefined, options)
      const r = amdimNce.evaluate(config, inputs, undefined, options)
      t.ok(relClose(r.loss, fx.expected.loss), `${fx.name}: loss ${r.loss} vs ${fx.expected.loss}`)
      for (const term of ['nce', 'regularizer']) {
        t.ok(relClose(r.terms[term] as number, fx.expected.terms![term] as number), `${fx.name}: ${term} ${r.terms[term]} vs ${fx.expected.terms![term]}`)
      }
      for (const name of ['anchor', 'positive']) {
        const g = r.grads![name] as HostTensor
        t.same(g.shape, (fx.expected.grads[name] as any).shape, `${fx.name}: grads.${name} shape`)
        const err = relErrNorm(g.data, (fx.expected.grads[name] as any).data)
        t.ok(err <= 1e-4, `${fx.name}: grads.${name} rel err ${err}`)
      }
    }

    for (const c of cases) {
      const r = amdimNce.evaluate({ tclip: c.tclip }, { anchor, positive }, undefined, opts())
      t.ok(relClose(r.terms.nce as number, c.ref.nce), `random, tclip ${c.tclip}: nce ${r.terms.nce} vs float64 ${c.ref.nce}`)
      t.ok(relClose(r.terms.regularizer as number, c.ref.regularizer), `random, tclip ${c.tclip}: regularizer ${r.terms.regularizer} vs float64 ${c.ref.regularizer}`)
      t.ok(relClose(r.loss, c.ref.nce + c.ref.regularizer), `random, tclip ${c.tclip}: loss = nce + regularizer`)
      const ea = relErrNorm((r.grads!.anchor as HostTensor).data, c.grads[0])
      const ep = relErrNorm((r.grads!.positive as HostTensor).data, c.grads[1])
      t.ok(ea <= 1e-4 && ep <= 1e-4, `random, tclip ${c.tclip}: gradient rel errs ${ea}, ${ep} vs central differences`)
    }
    t.not(cases[0].ref.nce, cases[3].ref.nce, 'clipping changes the value (the tclip cases differ)')

    const dom = amdimNce.evaluate({ tclip: null }, { anchor: domA, positive: domP }, undefined, opts())
    t.ok(domRef.nce < 1e-8 && relClose(dom.terms.nce as number, domRef.nce, 1e-4), `dominant partner: nce ${dom.terms.nce} vs float64 ${domRef.nce}`)

    const noGrad = amdimNce.evaluate({ tclip: 10 }, { anchor, positive }, undefined, opts({ gradients: false }))
    t.equal(noGrad.grads, undefined, 'gradients: false returns no grads')
    t.ok(relClose(noGrad.loss, cases[0].ref.nce + cases[0].ref.regularizer), 'gradients: false gives the same loss')

    const before = tf.memory().numTensors
    for (let i = 0; i < 100; i++) amdimNce.evaluate({ tclip: i % 2 === 0 ? 10 : null }, { anchor, positive }, undefined, opts({ gradients: i % 3 !== 0 }))
    t.equal(tf.memory().numTensors, before, '100 evaluations leave the live tensor count unchanged')
  })
}

t.test('amdim-nce config schema', async t => {
  t.same(amdimNceConfig.parse({}), { tclip: 10 }, 'Bolts default tclip 10.0')
  t.same(amdimNceConfig.parse({ tclip: null }), { tclip: null }, 'tclip null = no clipping')
  for (const bad of [{ tclip: 0 }, { tclip: -1 }, { tclip: '10' }, { clip: 10 }]) {
    t.notOk(amdimNceConfig.safeParse(bad).success, `rejects config ${JSON.stringify(bad)}`)
  }
  const x = (shape: number[]): any => ({ shape, data: new Float32Array(shape.reduce((a, v) => a * v, 1)) })
  throwsCode(t, () => prepare('amdim-nce', { config: { tclip: 0 }, inputs: { anchor: x([2, 2]), positive: x([2, 2]) } }), 'invalid_config', ['config', 'tclip'], /tclip/, 'tclip 0 via prepare')
  throwsCode(t, () => prepare('amdim-nce', { config: { tclip: 10, mask: 1 }, inputs: { anchor: x([2, 2]), positive: x([2, 2]) } }), 'invalid_config', ['config'], /mask/, 'unknown config key via prepare')
})

t.test('amdim-nce check errors', async t => {
  const x = (shape: number[]): HostTensor => ({ shape, data: new Float32Array(shape.reduce((a, v) => a * v, 1)) })
  const check = (inputs: any, params?: any): void => amdimNce.check({ tclip: 10 }, inputs, params, opts())
  throwsCode(t, () => check({ anchor: x([2, 3, 1]), positive: x([3, 4]) }), 'invalid_tensor', ['inputs', 'anchor', 'shape'], /rank 2.*\[2, 3, 1\]/, 'anchor of rank 3')
  throwsCode(t, () => check({ anchor: x([2, 3]), positive: x([12]) }), 'invalid_tensor', ['inputs', 'positive', 'shape'], /rank 2.*\[12\]/, 'positive of rank 1')
  throwsCode(t, () => check({ anchor: x([2, 3]), positive: x([4, 6]) }), 'shape_mismatch', ['inputs', 'positive', 'shape'], /4.*d = 3/, 'positive d differs from anchor d')
  throwsCode(t, () => check({ anchor: x([4, 3]), positive: x([3, 6]) }), 'shape_mismatch', ['inputs', 'positive', 'shape'], /6.*multiple of b = 4/, 'b·L not a multiple of b')
  throwsCode(t, () => check({ anchor: x([1, 3]), positive: x([3, 5]) }), 'invalid_config', ['inputs', 'anchor', 'shape'], /b = 1/, 'b = 1')
  throwsCode(t, () => check({ anchor: x([2, 3]) }), 'invalid_body', ['inputs', 'positive'], /positive/, 'positive missing')
  throwsCode(t, () => check({ anchor: x([2, 3]), positive: x([3, 4]) }, { w: x([1]) }), 'invalid_body', ['params'], /amdim-nce/, 'params given')
  t.doesNotThrow(() => check({ anchor: x([2, 3]), positive: x([3, 4]) }), 'a valid request passes')
})
