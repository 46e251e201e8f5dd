// cpc's bad requests: each becomes a LossServerError with the API.md code, a message naming
// the values, and a path into the request body. Checked without tfjs (cpc.check) and through
// the main-thread entry point (prepare), which also applies the config schema.
import t, { type Test } from 'tap'
import { LossServerError } from '../../src/errors.ts'
import { prepare, type DecodedBody } from '../../src/compute/evaluate.ts'
import { cpcConfig } from '../../schemas/kinds/cpc.ts'
import { cpc } from '../../src/tasks/cpc.ts'
import { initParams } from '../../src/tasks/cpc-params.ts'
import type { HostTensor } from '../../src/tensor.ts'
import type { Params } from '../../src/tasks/types.ts'

const CONFIG = { num_input_channels: 3, target_dim: 4, hidden_channels: 5, num_blocks: 1 }
const config = cpcConfig.parse(CONFIG)
const zOf = (shape: number[]): HostTensor => ({ shape, data: new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(0.5) })
const goodParams = (): Params => initParams(config, 1)
const body = (over: Partial<DecodedBody> = {}): DecodedBody => ({ config: CONFIG, inputs: { z: zOf([2, 3, 4, 4]) }, params: goodParams(), ...over })

function expectError (t: Test, fn: () => unknown, code: string, path: Array<string | number>, message: RegExp, what: string): void {
  try {
    fn()
    t.fail(`${what}: no error`)
  } catch (err) {
    t.ok(err instanceof LossServerError, `${what}: a LossServerError (${(err as Error).message})`)
    const e = err as LossServerError
    t.equal(e.code, code, `${what}: code`)
    t.same(e.path, path, `${what}: path`)
    t.match(e.message, message, `${what}: message`)
    t.equal(e.status, 400, `${what}: status 400`)
  }
}

t.test('a good request passes', async t => {
  const req = prepare('cpc', body())
  t.equal(req.kind, 'cpc')
  t.same(req.config, { ...CONFIG, embed_scale: 0.1, step_weighting: 'bolts' }, 'Bolts defaults filled in')
  t.same(cpcConfig.parse({ num_input_channels: 2048 }), { num_input_channels: 2048, target_dim: 64, embed_scale: 0.1, hidden_channels: 256, num_blocks: 5, step_weighting: 'bolts' }, "Bolts' defaults")
})

t.test('config', async t => {
  expectError(t, () => prepare('cpc', body({ config: {} })), 'invalid_config', ['config', 'num_input_channels'], /num_input_channels/, 'missing num_input_channels')
  expectError(t, () => prepare('cpc', body({ config: { ...CONFIG, num_input_channels: 2.5 } })), 'invalid_config', ['config', 'num_input_channels'], /num_input_channels/, 'fractional channels')
  expectError(t, () => prepare('cpc', body({ config: { ...CONFIG, num_blocks: 0 } })), 'invalid_config', ['config', 'num_blocks'], /num_blocks/, 'zero blocks')
  expectError(t, () => prepare('cpc', body({ config: { ...CONFIG, step_weighting: 'linear' } })), 'invalid_config', ['config', 'step_weighting'], /step_weighting/, 'unknown weighting')
  expectError(t, () => prepare('cpc', body({ config: { ...CONFIG, targetdim: 8 } })), 'invalid_config', ['config'], /targetdim/, 'unknown config key')
  expectError(t, () => prepare('cpc', body({ options: { pairs: [[0, 0]] } })), 'invalid_body', ['options'], /pairs/, 'an option of another kind')
})

t.test('inputs.z', async t => {
  const check = (z: HostTensor, params: Params | undefined = goodParams()) => () => cpc.check(config, { z }, params, { gradients: true, param_grads: false })
  expectError(t, check(zOf([2, 3, 16])), 'invalid_tensor', ['inputs', 'z', 'shape'], /rank 4.*\[2, 3, 16\]/, 'rank 3')
  expectError(t, check({ shape: [2, 3, 4, 4], data: new Float32Array(5) }), 'invalid_tensor', ['inputs', 'z', 'data'], /96.*5/, 'data length')
  expectError(t, check(zOf([0, 3, 4, 4])), 'shape_mismatch', ['inputs', 'z', 'shape'], /batch of at least 1/, 'empty batch')
  expectError(t, check(zOf([2, 5, 4, 4])), 'shape_mismatch', ['inputs', 'z', 'shape'], /5 channels.*num_input_channels is 3/, 'channels')
  expectError(t, check(zOf([2, 3, 2, 4])), 'shape_mismatch', ['inputs', 'z', 'shape'], /h >= 3 and w >= 3.*h=2, w=4/, 'h = 2')
  expectError(t, check(zOf([2, 3, 5, 2])), 'shape_mismatch', ['inputs', 'z', 'shape'], /h >= 3 and w >= 3.*h=5, w=2/, 'w = 2')
  t.doesNotThrow(check(zOf([1, 3, 3, 3])), 'the smallest map, 3x3 with one sample, is fine')
  const bad = zOf([2, 3, 4, 4])
  bad.data[17] = NaN
  expectError(t, () => prepare('cpc', body({ inputs: { z: bad } })), 'non_finite', ['inputs', 'z', 'data', 17], /NaN/, 'NaN in z')
  expectError(t, () => prepare('cpc', body({ inputs: { z: [zOf([2, 3, 4, 4])] } })), 'invalid_body', ['inputs', 'z'], /one tensor/, 'a list instead of a tensor')
})

t.test('params', async t => {
  const check = (params: Params | undefined) => () => cpc.check(config, { z: zOf([2, 3, 4, 4]) }, params, { gradients: true, param_grads: false })
  expectError(t, check(undefined), 'invalid_body', ['params'], /needs 'params'/, 'no params')
  expectError(t, () => prepare('cpc', body({ params: undefined })), 'invalid_body', ['params'], /needs 'params'/, 'no params through prepare')
  const missing = goodParams()
  delete missing['context_cnn.blocks.0.4.bias']
  expectError(t, check(missing), 'invalid_body', ['params', 'context_cnn.blocks.0.4.bias'], /missing.*context_cnn\.blocks\.0\.4\.bias.*\[5\]/, 'missing parameter')
  const extra = { ...goodParams(), 'context_cnn.blocks.1.0.weight': { shape: [5, 3, 1, 1], data: new Float32Array(15) } }
  expectError(t, check(extra), 'invalid_body', ['params', 'context_cnn.blocks.1.0.weight'], /unknown cpc parameter 'context_cnn\.blocks\.1\.0\.weight'/, 'a block beyond num_blocks')
  const wrongShape = goodParams()
  wrongShape['context_cnn.blocks.0.2.weight'] = { shape: [5, 5, 3, 1], data: new Float32Array(75) }
  expectError(t, check(wrongShape), 'shape_mismatch', ['params', 'context_cnn.blocks.0.2.weight', 'shape'], /\[5, 5, 1, 3\].*got \[5, 5, 3, 1\]/, 'transposed kernel')
  const wrongLength = goodParams()
  wrongLength['pred_cnn.bias'] = { shape: [4], data: new Float32Array(3) }
  expectError(t, check(wrongLength), 'invalid_tensor', ['params', 'pred_cnn.bias', 'data'], /needs 4.*got 3/, 'data length')
})
