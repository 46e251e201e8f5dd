// cpc parameters: Bolts' CPCTask.state_dict() keys, shapes and count, and PyTorch's default
// init drawn from the seeded PRNG.
import t from 'tap'
import { cpcConfig } from '../../schemas/kinds/cpc.ts'
import { cpcParamCount, cpcParamSpecs, initParams } from '../../src/tasks/cpc-params.ts'
import { sizeOf } from '../../src/tensor.ts'

t.test('state_dict() keys and shapes', async t => {
  const specs = cpcParamSpecs(cpcConfig.parse({ num_input_channels: 4, target_dim: 6, hidden_channels: 8, num_blocks: 2 }))
  t.same(specs.map(s => [s.name, s.shape]), [
    ['target_cnn.weight', [6, 4, 1, 1]], ['target_cnn.bias', [6]],
    ['pred_cnn.weight', [6, 4, 1, 1]], ['pred_cnn.bias', [6]],
    ['context_cnn.blocks.0.0.weight', [8, 4, 1, 1]], ['context_cnn.blocks.0.0.bias', [8]],
    ['context_cnn.blocks.0.2.weight', [8, 8, 1, 3]], ['context_cnn.blocks.0.2.bias', [8]],
    ['context_cnn.blocks.0.4.weight', [8, 8, 2, 1]], ['context_cnn.blocks.0.4.bias', [8]],
    ['context_cnn.blocks.0.6.weight', [4, 8, 1, 1]], ['context_cnn.blocks.0.6.bias', [4]],
    ['context_cnn.blocks.1.0.weight', [8, 4, 1, 1]], ['context_cnn.blocks.1.0.bias', [8]],
    ['context_cnn.blocks.1.2.weight', [8, 8, 1, 3]], ['context_cnn.blocks.1.2.bias', [8]],
    ['context_cnn.blocks.1.4.weight', [8, 8, 2, 1]], ['context_cnn.blocks.1.4.bias', [8]],
    ['context_cnn.blocks.1.6.weight', [4, 8, 1, 1]], ['context_cnn.blocks.1.6.bias', [4]]
  ])
  t.same(specs.filter(s => s.name.startsWith('context_cnn.blocks.0.')).map(s => s.fanIn), [4, 4, 24, 24, 16, 16, 8, 8], 'fan_in = in * kh * kw')
})

t.test('count: 2693·C + 1,642,368 at the defaults (LOSSES.md)', async t => {
  for (const c of [1, 3, 64, 2048]) {
    const config = cpcConfig.parse({ num_input_channels: c })
    t.equal(cpcParamCount(config), 2693 * c + 1642368, `C = ${c}`)
  }
  t.equal(cpcParamCount(cpcConfig.parse({ num_input_channels: 2048 })), 7157632, "Bolts' CPC v2 head (C 2048): 7,157,632")
})

t.test('initParams: PyTorch default init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), deterministic by seed', async t => {
  const config = cpcConfig.parse({ num_input_channels: 5, target_dim: 7, hidden_channels: 12, num_blocks: 3 })
  const a = initParams(config, 42)
  const specs = cpcParamSpecs(config)
  t.same(Object.keys(a), specs.map(s => s.name), 'every parameter, in state_dict() order')
  for (const s of specs) {
    const p = a[s.name]
    t.same(p.shape, s.shape, `${s.name} shape`)
    t.equal(p.data.length, sizeOf(s.shape))
    const bound = Math.fround(1 / Math.sqrt(s.fanIn))
    const max = Math.max(...p.data.map(Math.abs))
    t.ok(max <= bound, `${s.name}: max |v| ${max} <= 1/sqrt(${s.fanIn})`)
    if (p.data.length >= 100) t.ok(max > 0.8 * bound, `${s.name}: the draws fill the range (max ${max})`)
  }
  const big = a['context_cnn.blocks.0.2.weight'].data
  const mean = big.reduce((s, v) => s + v, 0) / big.length
  const bound = 1 / Math.sqrt(36)
  t.ok(Math.abs(mean) < 0.1 * bound, `mean ${mean} near 0`)
  const variance = big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length
  t.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.15, `variance ${variance} near bound^2 / 3`)

  const b = initParams(config, 42)
  t.same(Object.values(b).map(p => Array.from(p.data)), Object.values(a).map(p => Array.from(p.data)), 'same seed, same parameters')
  const c = initParams(config, 43)
  t.not(c['target_cnn.weight'].data[0], a['target_cnn.weight'].data[0], 'another seed, other parameters')
  // Draw order: parameters in state_dict() order, elements row-major; a longer prefix of the
  // same stream, so the first parameter does not depend on the rest of the config.
  const other = initParams({ ...config, num_blocks: 1 }, 42)
  t.same(Array.from(other['pred_cnn.bias'].data), Array.from(a['pred_cnn.bias'].data), 'the first parameters do not depend on num_blocks')
})
