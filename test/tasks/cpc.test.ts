// cpc on every backend: the shared fixtures (PyTorch-checked), a float64 transcription of
// Bolts, the free zero gradient of target_cnn.bias, the step weightings, worker-held
// parameters, and tensor memory.
import t from 'tap'
import * as tf from '@tensorflow/tfjs'
import { initBackend, liveTensors } from '../../src/compute/backend.ts'
import { cpcConfig, type CpcConfig, type CpcConfigInput } from '../../schemas/kinds/cpc.ts'
import { cpc, cpcLossAndGrads, evaluateCpc, stepWeights, type ParamTensors } from '../../src/tasks/cpc.ts'
import { initParams } from '../../src/tasks/cpc-params.ts'
import { Prng } from '../../src/tasks/prng.ts'
import type { HostTensor } from '../../src/tensor.ts'
import type { Params } from '../../src/tasks/types.ts'
import { missingBackends, requireAllBackends, TEST_BACKENDS } from '../helpers/backends.ts'
import { loadFixtures, paramGradClose, relClose, relErrNorm, toHost, type JsonTensor } from '../helpers/fixtures.ts'
import { cpc64 } from './cpc-reference64.ts'

if (missingBackends().length) {
  if (requireAllBackends()) t.fail(`backends missing: ${missingBackends().join(', ')}`)
  else t.comment(`NOTE: backends missing here: ${missingBackends().join(', ')}`)
}

const FULL = { gradients: true, param_grads: true }

function randomZ (shape: number[], seed: number): HostTensor {
  const prng = new Prng(seed)
  const n = shape.reduce((a, d) => a * d, 1)
  return { shape, data: Float32Array.from({ length: n }, () => prng.uniform(-1, 1)) }
}

function tinyCase (over: Partial<CpcConfigInput>, zShape: number[], seed: number): { config: CpcConfig, z: HostTensor, params: Params } {
  const config = cpcConfig.parse({ num_input_channels: zShape[1], target_dim: 4, hidden_channels: 5, num_blocks: 2, ...over })
  return { config, z: randomZ(zShape, seed), params: initParams(config, seed + 1) }
}

const fixtures = loadFixtures('cpc')
t.ok(fixtures.length >= 2, 'cpc fixtures are present (cpc_tiny, cpc_rect)')

for (const backend of TEST_BACKENDS) {
  t.test(`cpc on ${backend}`, async t => {
    await initBackend(backend)

    for (const f of fixtures) {
      t.test(`fixture ${f.name}`, async t => {
        const config = cpcConfig.parse(f.request.config)
        const params: Params = Object.fromEntries(Object.entries(f.request.params ?? {}).map(([k, v]) => [k, toHost(v)]))
        const inputs = { z: toHost(f.request.inputs.z as JsonTensor) }
        cpc.check(config, inputs, params, FULL)
        const r = cpc.evaluate(config, inputs, params, FULL)
        t.ok(relClose(r.loss, f.expected.loss, 1e-5), `loss ${r.loss} vs ${f.expected.loss}`)
        const gz = r.grads?.z as HostTensor
        t.same(gz.shape, (f.expected.grads.z as JsonTensor).shape, 'grads.z has the shape of z')
        const err = relErrNorm(gz.data, (f.expected.grads.z as JsonTensor).data)
        t.ok(err <= 1e-4, `grads.z relative error ${err}`)
        const sampled = f.expected.param_grads_sampled ?? []
        t.ok(sampled.length > 0, 'the fixture samples parameter gradients')
        const bad = sampled.filter(s => !paramGradClose(r.paramGrads![s.name].data[s.index], s.value))
        t.same(bad.map(s => `${s.name}[${s.index}]: ${r.paramGrads![s.name].data[s.index]} vs ${s.value}`), [], `all ${sampled.length} sampled parameter gradients match`)
        t.same(Object.keys(r.paramGrads!), Object.keys(params), 'a gradient for every parameter, in state_dict() order')
        for (const [name, p] of Object.entries(params)) t.same(r.paramGrads![name].shape, p.shape, `${name} gradient in PyTorch layout`)
        const steps = (r.terms as { steps: Array<{ offset: number, loss: number, weight: number }> }).steps
        const h = inputs.z.shape[2]
        t.same(steps.map(s => s.offset), Array.from({ length: h - 2 }, (_, i) => i + 1), 'one step per offset 1..h-2')
        t.same(steps.map(s => s.weight), stepWeights('bolts', h), "'bolts' weights are the offsets")
        t.ok(relClose(steps.reduce((a, s) => a + s.weight * s.loss, 0), r.loss, 1e-6), 'loss = sum of weight * step loss')
      })
    }

    t.test('agrees with a float64 transcription of Bolts (square and rectangular, smallest maps)', async t => {
      const shapes = [[2, 3, 4, 5], [3, 2, 3, 3], [1, 2, 6, 3], [2, 2, 3, 7], [2, 3, 5, 4]]
      for (const [k, shape] of shapes.entries()) {
        const { config, z, params } = tinyCase({ embed_scale: 0.7 }, shape, 100 + k)
        const ref = cpc64(config, z, params)
        const r = cpc.evaluate(config, { z }, params, { gradients: false, param_grads: false })
        t.ok(relClose(r.loss, ref.loss, 1e-5), `z ${shape.join('x')}: loss ${r.loss} vs float64 ${ref.loss}`)
        const steps = (r.terms as { steps: Array<{ loss: number }> }).steps
        t.ok(steps.every((s, i) => relClose(s.loss, ref.steps[i], 1e-5)), `z ${shape.join('x')}: every CE_i matches`)
        t.equal(r.grads, undefined, 'no grads when options.gradients is false')
        t.equal(r.paramGrads, undefined, 'no parameter gradients unless asked')
      }
    })

    t.test('the gradient of target_cnn.bias is 0: a shift of every target shifts each logit row equally', async t => {
      const { config, z, params } = tinyCase({ embed_scale: 1 }, [3, 3, 5, 4], 7)
      for (let i = 0; i < params['target_cnn.bias'].data.length; i++) params['target_cnn.bias'].data[i] = 3 * (i + 1)
      const r = cpc.evaluate(config, { z }, params, FULL)
      const scale = Math.max(...r.paramGrads!['pred_cnn.bias'].data.map(Math.abs), ...r.paramGrads!['target_cnn.weight'].data.map(Math.abs))
      const worst = Math.max(...r.paramGrads!['target_cnn.bias'].data.map(Math.abs))
      t.ok(scale > 1e-3, `other gradients are not small (${scale})`)
      t.ok(worst <= 1e-5 * scale, `max |d loss / d target_cnn.bias| = ${worst} (other gradients up to ${scale})`)
    })

    t.test("'uniform' has the same step losses as 'bolts', weighted 1", async t => {
      const bolts = tinyCase({}, [2, 3, 6, 4], 21)
      const uniform = { ...bolts, config: { ...bolts.config, step_weighting: 'uniform' as const } }
      const rb = cpc.evaluate(bolts.config, { z: bolts.z }, bolts.params, FULL)
      const ru = cpc.evaluate(uniform.config, { z: uniform.z }, uniform.params, FULL)
      const sb = (rb.terms as { steps: Array<{ loss: number, weight: number }> }).steps
      const su = (ru.terms as { steps: Array<{ loss: number, weight: number }> }).steps
      t.same(su.map(s => s.weight), [1, 1, 1, 1])
      t.same(sb.map(s => s.weight), [1, 2, 3, 4])
      t.ok(su.every((s, i) => relClose(s.loss, sb[i].loss, 1e-6)), 'same CE_i')
      t.ok(relClose(ru.loss, su.reduce((a, s) => a + s.loss, 0), 1e-6), 'uniform loss = sum of CE_i')
      t.ok(relClose(rb.loss, sb.reduce((a, s, i) => a + (i + 1) * s.loss, 0), 1e-6), 'bolts loss = sum of i * CE_i')
      t.ok(ru.loss < rb.loss, 'bolts weights the later steps more')
    })

    t.test('worker-held parameters: evaluateCpc on tf.Variables matches the stateless path and leaves them alive', async t => {
      const { config, z, params } = tinyCase({}, [2, 3, 4, 4], 33)
      const held: ParamTensors = Object.fromEntries(Object.entries(params).map(([k, p]) => [k, tf.variable(tf.tensor(p.data, p.shape))]))
      const before = liveTensors()
      const a = evaluateCpc(config, z, held, FULL)
      const b = cpc.evaluate(config, { z }, params, FULL)
      t.equal(liveTensors(), before, 'no tensor left behind')
      t.equal(a.loss, b.loss)
      t.same(Array.from(a.paramGrads!['context_cnn.blocks.1.4.weight'].data), Array.from(b.paramGrads!['context_cnn.blocks.1.4.weight'].data))
      t.notOk(held['pred_cnn.weight'].isDisposed, 'the held parameters stay alive')
      // cpcLossAndGrads hands back tensors, e.g. for an optimizer step on the worker
      const loss = tf.tidy(() => {
        const r = cpcLossAndGrads(config, tf.tensor(z.data, z.shape), held, { z: false, params: true })
        t.equal(r.z, undefined, 'no z gradient when not asked')
        t.same(r.params!['pred_cnn.weight'].shape, params['pred_cnn.weight'].shape)
        return r.loss
      })
      t.equal(loss.dataSync()[0], a.loss)
      loss.dispose()
      t.equal(liveTensors(), before, 'no tensor left behind by cpcLossAndGrads in a tidy')
      tf.dispose(Object.values(held))
    })

    t.test('100 evaluations leave the live tensor count unchanged', async t => {
      const { config, z, params } = tinyCase({}, [2, 3, 4, 4], 44)
      cpc.evaluate(config, { z }, params, FULL)
      const before = tf.memory().numTensors
      const flags = [FULL, { gradients: true, param_grads: false }, { gradients: false, param_grads: true }, { gradients: false, param_grads: false }]
      for (let i = 0; i < 100; i++) cpc.evaluate(config, { z }, params, flags[i % flags.length])
      t.equal(tf.memory().numTensors, before)
    })
  })
}
