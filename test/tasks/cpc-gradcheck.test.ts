// cpc gradients on every backend against central differences of the float64 transcription of
// Bolts (test/tasks/cpc-reference64.ts), on fresh random inputs and parameters: every element
// of z and two elements of every parameter.
import t from 'tap'
import { initBackend } from '../../src/compute/backend.ts'
import { cpcConfig } from '../../schemas/kinds/cpc.ts'
import { cpc } from '../../src/tasks/cpc.ts'
import { initParams } from '../../src/tasks/cpc-params.ts'
import { Prng } from '../../src/tasks/prng.ts'
import type { HostTensor } from '../../src/tensor.ts'
import { TEST_BACKENDS } from '../helpers/backends.ts'
import { relErrNorm } from '../helpers/fixtures.ts'
import { cpc64, to64, type Params64, type T64 } from './cpc-reference64.ts'

const EPS = 1e-5
const close = (g: number, fd: number): boolean => Math.abs(g - fd) <= 1e-5 + 2e-3 * Math.abs(fd)

const config = cpcConfig.parse({ num_input_channels: 3, target_dim: 4, hidden_channels: 5, num_blocks: 2, embed_scale: 1 })
const prng = new Prng(2024)
const z: HostTensor = { shape: [2, 3, 4, 5], data: Float32Array.from({ length: 120 }, () => prng.uniform(-1, 1)) }
const params = initParams(config, 99)
const params64: Params64 = Object.fromEntries(Object.entries(params).map(([k, p]) => [k, to64(p)]))

/** d loss / d x[i] by central differences, x a float64 copy that the loss reads. */
function central (x: T64, i: number, loss: () => number): number {
  const v = x.data[i]
  x.data[i] = v + EPS
  const up = loss()
  x.data[i] = v - EPS
  const down = loss()
  x.data[i] = v
  return (up - down) / (2 * EPS)
}

const z64 = to64(z)
const fdZ = Array.from(z64.data, (_, i) => central(z64, i, () => cpc64(config, z64, params64).loss))
const fdParams: Array<{ name: string, index: number, value: number }> = []
for (const [name, p] of Object.entries(params64)) {
  for (const index of [prng.int(p.data.length), prng.int(p.data.length)]) {
    fdParams.push({ name, index, value: central(p as T64, index, () => cpc64(config, z, params64).loss) })
  }
}
t.ok(fdZ.some(v => Math.abs(v) > 1e-2), 'the z gradient is not trivially small')

for (const backend of TEST_BACKENDS) {
  t.test(`cpc gradients on ${backend} match central differences of the float64 reference`, async t => {
    await initBackend(backend)
    const r = cpc.evaluate(config, { z }, params, { gradients: true, param_grads: true })
    const gz = (r.grads!.z as HostTensor).data
    const err = relErrNorm(gz, fdZ)
    t.ok(err <= 1e-4, `grads.z: ||g - fd|| / ||fd|| = ${err}`)
    const badZ = fdZ.map((fd, i) => [i, gz[i], fd]).filter(([, g, fd]) => !close(g, fd))
    t.same(badZ, [], 'every element of grads.z')
    const badP = fdParams.filter(s => !close(r.paramGrads![s.name].data[s.index], s.value))
      .map(s => `${s.name}[${s.index}]: ${r.paramGrads![s.name].data[s.index]} vs ${s.value}`)
    t.same(badP, [], `${fdParams.length} sampled parameter gradients`)
  })
}
